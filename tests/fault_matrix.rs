//! The fault matrix: each case runs chunks through the real library (Fluent Bit's retry
//! simulated by flushing the same chunk again after FLB_RETRY) against the stand-in with a
//! fault, and ends with every record delivered exactly once, checked by sequence number.
//! Timings are short so the suite stays fast; `fault_soak` in crates/cli/benches is the long
//! variant.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, Faults, Quota, StreamSpec};
use flb_host::chunk::{ChunkBuilder, EventTime};
use flb_host::{Instance, Plugin, FLB_ERROR, FLB_OK, FLB_RETRY};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const STREAMS: [&str; 3] = ["f0", "f1", "f2"];

fn emulator_with(out: Option<&Path>, bind: Option<std::net::SocketAddr>) -> Emulator {
    common::test_env();
    let mut cfg = EmulatorConfig {
        streams: STREAMS.iter().map(|s| StreamSpec::new(*s)).collect(),
        seed: Some(5),
        output_dir: out.map(Path::to_path_buf),
        ..Default::default()
    };
    if let Some(b) = bind {
        cfg.bind = b;
    }
    Emulator::start(cfg).expect("emulator")
}

fn chunk(first: u64, n: u64) -> Vec<u8> {
    let mut b = ChunkBuilder::new();
    for seq in first..first + n {
        b.push_v2(
            EventTime {
                sec: 1_764_000_000,
                nsec: 0,
            },
            &json!({}),
            &json!({"seq": seq, "log": format!("fault matrix record {seq}")}),
        );
    }
    b.finish()
}

fn init(plugin: &Plugin, ep: &str, extra: &[(&str, &str)]) -> Instance {
    let mut p = vec![
        ("region", "us-east-1"),
        ("endpoint", ep),
        ("delivery_streams", "f0,f1,f2"),
        ("flush_timeout", "1s"),
        ("request_timeout", "700ms"),
        ("retry_initial_backoff", "20ms"),
        ("retry_max_backoff", "200ms"),
        ("health_probe_interval", "200ms"),
    ];
    p.extend_from_slice(extra);
    plugin.init(&p).expect("init")
}

/// Flushes `chunks` chunks of `per` records from `workers` threads, each chunk again and
/// again until FLB_OK, like Fluent Bit with `Retry_Limit no_limits`. Returns the number of
/// FLB_RETRY answers.
fn run(ins: &Instance, chunks: u64, per: u64, workers: u64) -> u64 {
    let retries = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..workers {
            let retries = &retries;
            s.spawn(move || {
                for c in (w..chunks).step_by(workers as usize) {
                    let data = chunk(c * per, per);
                    let t = Instant::now();
                    loop {
                        match ins.flush(&data, "fault") {
                            FLB_OK => break,
                            FLB_RETRY => {
                                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                assert!(
                                    t.elapsed() < Duration::from_secs(60),
                                    "chunk {c} never got through"
                                );
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            other => panic!("chunk {c}: {other}"),
                        }
                    }
                }
            });
        }
    });
    retries.into_inner()
}

fn assert_exactly_once(emu: &Emulator, n: u64) {
    let mut seen = BTreeMap::new();
    for s in STREAMS {
        for r in emu.records(s) {
            common::count_seqs(&r, &mut seen);
        }
    }
    check(&seen, n);
}

fn check(seen: &BTreeMap<u64, u32>, n: u64) {
    let lost = (0..n).filter(|s| !seen.contains_key(s)).count();
    let dup: u64 = seen.values().map(|&c| c.saturating_sub(1) as u64).sum();
    assert_eq!((lost, dup), (0, 0), "lost, duplicated of {n}");
}

#[test]
fn twenty_percent_of_requests_fail_with_5xx() {
    let emu = emulator_with(None, None);
    emu.set_faults(
        None,
        Faults {
            request_failure_rate: 0.2,
            request_failure_status: 500,
            ..Default::default()
        },
    );
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(&plugin, &emu.endpoint(), &[("aggregation", "off")]);
    run(&ins, 12, 500, 3);
    ins.exit();
    assert!(emu.stats().faulted_requests > 0);
    assert_exactly_once(&emu, 6000);
}

#[test]
fn ten_percent_of_records_fail_aggregated_or_not() {
    for agg in ["off", "on"] {
        let emu = emulator_with(None, None);
        emu.set_faults(
            None,
            Faults {
                record_failure_rate: 0.1,
                ..Default::default()
            },
        );
        let plugin = Plugin::load(common::plugin_path()).unwrap();
        let ins = init(
            &plugin,
            &emu.endpoint(),
            &[("aggregation", agg), ("aggregation_max_bytes", "8192")],
        );
        run(&ins, 8, 500, 2);
        ins.exit();
        let failed: u64 = emu.stats().streams.values().map(|s| s.failed_records).sum();
        assert!(failed > 0, "aggregation {agg}: failures were injected");
        assert_exactly_once(&emu, 4000);
    }
}

#[test]
fn throttling_ten_times_below_the_load() {
    // 3 streams of 300 records/s each (the plugin believes 500,000); 6,000 records.
    let emu = emulator_with(None, None);
    for s in STREAMS {
        emu.set_quota(
            s,
            Some(Quota {
                records_per_second: Some(300.0),
                ..Default::default()
            }),
        );
    }
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(&plugin, &emu.endpoint(), &[("aggregation", "off")]);
    let retries = run(&ins, 6, 1000, 3);
    ins.exit();
    let throttled: u64 = emu
        .stats()
        .streams
        .values()
        .map(|s| s.throttled_records)
        .sum();
    assert!(
        throttled > 0 && retries > 0,
        "throttled {throttled}, FLB_RETRY {retries}"
    );
    assert_exactly_once(&emu, 6000);
}

#[test]
fn an_outage_then_recovery() {
    let emu = emulator_with(None, None);
    assert!(emu.start_outage(None, Some(Duration::from_millis(2500))));
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(&plugin, &emu.endpoint(), &[]);
    let retries = run(&ins, 6, 500, 2);
    ins.exit();
    assert!(retries > 0, "the outage made flushes retry");
    assert_exactly_once(&emu, 3000);
}

#[test]
fn responses_slower_than_the_request_timeout_lose_nothing() {
    // Half the calls answer after the 700 ms request timeout: the plugin gives up on them
    // and sends their records again. The stand-in, like Firehose, still takes a request
    // whose client gave up: those records arrive twice. Firehose has no idempotency key, so
    // no producer can tell; this is the one way the plugin duplicates, bounded by the calls
    // that time out (see docs/reliability.md). Nothing may be lost.
    let emu = emulator_with(None, None);
    emu.set_faults(
        None,
        Faults {
            latency: Duration::from_millis(300),
            latency_jitter: Duration::from_millis(900),
            ..Default::default()
        },
    );
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(
        &plugin,
        &emu.endpoint(),
        &[("aggregation", "off"), ("flush_timeout", "3s")],
    );
    run(&ins, 6, 300, 3);
    ins.exit();
    let mut seen = BTreeMap::new();
    for s in STREAMS {
        for r in emu.records(s) {
            common::count_seqs(&r, &mut seen);
        }
    }
    let lost = (0..1800).filter(|s| !seen.contains_key(s)).count();
    assert_eq!(lost, 0);
    let dup: u32 = seen.values().map(|c| c - 1).sum();
    // Each timed-out call carried at most one batch of this test's records.
    let requests: u64 = emu.stats().streams.values().map(|s| s.requests).sum();
    assert!(
        (dup as u64) < requests * 300,
        "duplicates {dup} only from timed-out calls"
    );
}

#[test]
fn connections_reset_mid_response() {
    let emu = emulator_with(None, None);
    emu.set_faults(
        None,
        Faults {
            reset_rate: 0.2,
            ..Default::default()
        },
    );
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(&plugin, &emu.endpoint(), &[("aggregation", "off")]);
    run(&ins, 10, 300, 2);
    ins.exit();
    assert!(emu.stats().resets > 0);
    assert_exactly_once(&emu, 3000);
}

#[test]
fn one_stream_deleted_mid_run() {
    let dir = std::env::temp_dir().join(format!("ff-fault-delete-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let emu = emulator_with(Some(&dir), None);
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(&plugin, &emu.endpoint(), &[]);
    run(&ins, 3, 500, 1);
    assert!(
        emu.delete_stream("f1"),
        "deleting f1 writes out what it had"
    );
    run_from(&ins, 3, 6, 500);
    ins.exit();
    emu.flush_output().unwrap();
    // Everything, before and after the delete, is in the S3-like objects.
    let mut seen = BTreeMap::new();
    for f in walk(&dir) {
        common::count_seqs(&std::fs::read(f).unwrap(), &mut seen);
    }
    check(&seen, 3000);
    std::fs::remove_dir_all(&dir).ok();
}

fn run_from(ins: &Instance, from: u64, to: u64, per: u64) {
    for c in from..to {
        let data = chunk(c * per, per);
        while ins.flush(&data, "fault") != FLB_OK {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn endpoint_unreachable_at_start() {
    // A port with nothing behind it; the stand-in starts there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ep = format!("http://127.0.0.1:{port}");
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(&plugin, &ep, &[("flush_timeout", "500ms")]);
    let data = chunk(0, 500);
    assert_eq!(
        ins.flush(&data, "fault"),
        FLB_RETRY,
        "nothing to send to: retry, never drop"
    );
    let emu = emulator_with(None, Some(format!("127.0.0.1:{port}").parse().unwrap()));
    let t = Instant::now();
    while ins.flush(&data, "fault") != FLB_OK {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the streams come back after their probe"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run_from(&ins, 1, 4, 500);
    ins.exit();
    assert_exactly_once(&emu, 2000);
}

#[test]
fn calls_outliving_flush_timeout_are_waited_for_and_exit_follows_at_once() {
    // Calls take 600 ms, flushes may take 300 ms: each flush waits for its calls in flight
    // at the deadline, so its answer is exact, then the instance exits at once. Every chunk
    // that answered FLB_OK is delivered; a retried chunk sends only what is missing.
    let emu = emulator_with(None, None);
    emu.set_faults(
        None,
        Faults {
            latency: Duration::from_millis(600),
            ..Default::default()
        },
    );
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ins = init(
        &plugin,
        &emu.endpoint(),
        &[
            ("aggregation", "off"),
            ("flush_timeout", "300ms"),
            ("request_timeout", "5s"),
        ],
    );
    let codes: Vec<(u64, i32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3u64)
            .map(|c| {
                let ins = &ins;
                s.spawn(move || (c, ins.flush(&chunk(c * 200, 200), "fault")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(ins.exit(), FLB_OK);
    let mut seen = BTreeMap::new();
    for s in STREAMS {
        for r in emu.records(s) {
            common::count_seqs(&r, &mut seen);
        }
    }
    assert!(seen.values().all(|&c| c == 1));
    for (c, code) in codes {
        assert_ne!(code, FLB_ERROR);
        if code == FLB_OK {
            assert!(
                (c * 200..c * 200 + 200).all(|s| seen.contains_key(&s)),
                "chunk {c} said OK: all there"
            );
        }
    }
}
