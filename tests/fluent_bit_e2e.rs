//! The plugin inside a real Fluent Bit (`-e libfirehose_fanout.so`), shipping to the Firehose
//! stand-in on 127.0.0.1; every record is counted at the receiving end.

mod common;

use common::fluent_bit::{
    append_lines, binary, free_port, lost_and_duplicated, wait_delivered, workdir, write_parsers,
    FluentBit,
};
use firehose_emulator::{Emulator, EmulatorConfig, Quota, StreamSpec};
use std::path::Path;
use std::time::Duration;

const STREAMS: [&str; 4] = ["e2e-0", "e2e-1", "e2e-2", "e2e-3"];

fn emulator(quota_bytes: Option<f64>) -> Emulator {
    Emulator::start(EmulatorConfig {
        streams: STREAMS
            .iter()
            .map(|s| {
                let mut spec = StreamSpec::new(*s);
                spec.quota = quota_bytes.map(|b| Quota {
                    records_per_second: Some(5_000.0),
                    bytes_per_second: Some(b),
                    requests_per_second: Some(2_000.0),
                    whole_request: false,
                });
                spec
            })
            .collect(),
        seed: Some(11),
        ..Default::default()
    })
    .expect("emulator starts")
}

/// A classic config: tail of `input` (JSON lines) → firehose_fanout with `output` lines.
fn tail_config(dir: &Path, input: &Path, service: &str, output: &str) -> std::path::PathBuf {
    let parsers = write_parsers(dir);
    let conf = dir.join("fluent-bit.conf");
    std::fs::write(
        &conf,
        format!(
            "[SERVICE]
    Flush        1
    Grace        5
    Log_Level    info
    Parsers_File {parsers}
{service}
[INPUT]
    Name             tail
    Tag              app.log
    Path             {input}
    Parser           json
    Read_from_Head   On
    Refresh_Interval 1
    Buffer_Chunk_Size 256k
    Buffer_Max_Size  256k

[OUTPUT]
    Name             firehose_fanout
    Match            app.*
    region           us-east-1
    Retry_Limit      False
{output}
",
            parsers = parsers.display(),
            input = input.display(),
        ),
    )
    .expect("write the config");
    conf
}

/// Tail of `n` lines → 4 streams with quotas (4 × 1.5 MiB/s), 2 workers, the given mode.
fn tail_to_four_streams(name: &str, mode: &str) {
    let Some(bin) = binary() else { return };
    let emu = emulator(Some(1.5 * 1024.0 * 1024.0));
    let dir = workdir(name);
    let input = dir.join("app.jsonl");
    let n = 60_000u64;
    append_lines(&input, 0..n, 80);
    let conf = tail_config(
        &dir,
        &input,
        "",
        &format!(
            "    endpoint {}\n    delivery_streams {}\n    stream_bytes_per_second 1.5MiB\n    stream_records_per_second 5000\n    delivery_mode {mode}\n    workers 2\n",
            emu.endpoint(),
            STREAMS.join(", ")
        ),
    );
    let mut fb = FluentBit::start(&bin, &conf, &[]);
    let seen = wait_delivered(&emu, &STREAMS, n as usize, Duration::from_secs(90));
    let (lost, dup) = lost_and_duplicated(&seen, n);
    assert!(fb.alive(), "Fluent Bit died:\n{}", fb.tail());
    assert_eq!((lost, dup), (0, 0), "lost, duplicated\n{}", fb.tail());
    // Spread over every stream.
    for s in STREAMS {
        assert!(emu.records(s).len() > 0, "nothing on {s}");
    }
    let st = fb.stop(Duration::from_secs(20));
    assert!(
        st.is_some_and(|s| s.success()),
        "exit: {st:?}\n{}",
        fb.tail()
    );
    let log = fb.log();
    assert!(
        log.contains("[output:firehose_fanout:firehose_fanout.0] started"),
        "{log}"
    );
}

#[test]
fn tail_to_four_streams_sync() {
    tail_to_four_streams("tail-sync", "sync");
}

#[test]
fn tail_to_four_streams_async() {
    tail_to_four_streams("tail-async", "async");
}

#[test]
fn unreachable_at_start_then_reachable() {
    let Some(bin) = binary() else { return };
    let port = free_port();
    let dir = workdir("unreachable-at-start");
    let input = dir.join("app.jsonl");
    let n = 5_000u64;
    append_lines(&input, 0..n, 40);
    let conf = tail_config(
        &dir,
        &input,
        "",
        &format!(
            "    endpoint http://127.0.0.1:{port}\n    delivery_streams {}\n    workers 2\n",
            STREAMS.join(", ")
        ),
    );
    let mut fb = FluentBit::start(&bin, &conf, &[]);
    std::thread::sleep(Duration::from_secs(4));
    assert!(fb.alive(), "Fluent Bit died:\n{}", fb.tail());
    let emu = Emulator::start(EmulatorConfig {
        bind: ([127, 0, 0, 1], port).into(),
        streams: STREAMS.iter().map(|s| StreamSpec::new(*s)).collect(),
        ..Default::default()
    })
    .expect("emulator on the port");
    let seen = wait_delivered(&emu, &STREAMS, n as usize, Duration::from_secs(60));
    assert_eq!(lost_and_duplicated(&seen, n), (0, 0), "{}", fb.tail());
    // Small records on an S3 destination: aggregation is decided once the streams answer.
    let firehose_records: usize = STREAMS.iter().map(|s| emu.records(s).len()).sum();
    assert!(
        firehose_records < n as usize / 10,
        "{firehose_records} Firehose records for {n} log records: aggregation stayed off\n{}",
        fb.tail()
    );
}
