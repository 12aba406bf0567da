//! `delivery_mode async`: FLB_OK once a chunk is in the bounded buffer, FLB_RETRY when the
//! buffer is full (backpressure, never a drop), and a drain at exit.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, Faults, StreamSpec};
use flb_host::{Instance, Plugin, FLB_OK, FLB_RETRY};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn chunk(first: u64, n: u64, pad: usize) -> Vec<u8> {
    common::seq_chunk(first, n, &"p".repeat(pad))
}

fn counts(emu: &Emulator, stream: &str) -> BTreeMap<u64, u32> {
    let mut m = BTreeMap::new();
    for r in emu.records(stream) {
        common::count_seqs(&r, &mut m);
    }
    m
}

/// An instance in async mode sending to `stream`, with `extra` properties.
fn start(plugin: &Plugin, emu: &Emulator, stream: &str, extra: &[(&str, &str)]) -> Instance {
    let ep = emu.endpoint();
    let mut props = vec![
        ("region", "us-east-1"),
        ("endpoint", ep.as_str()),
        ("delivery_streams", stream),
        ("delivery_mode", "async"),
    ];
    props.extend_from_slice(extra);
    plugin.init(&props).expect("init")
}

fn setup(stream: &str) -> (Emulator, Plugin) {
    common::test_env();
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new(stream)],
        ..Default::default()
    })
    .expect("emulator");
    (emu, Plugin::load(common::plugin_path()).expect("load"))
}

#[test]
fn answers_at_once_and_delivers_in_the_background() {
    let (emu, plugin) = setup("as");
    emu.set_faults(
        Some("as"),
        Faults {
            latency: Duration::from_millis(400),
            ..Default::default()
        },
    );
    let ins = start(&plugin, &emu, "as", &[]);
    let t = Instant::now();
    for k in 0..5 {
        assert_eq!(ins.flush(&chunk(k * 100, 100, 50), "t"), FLB_OK);
    }
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "did not wait for delivery: {:?}",
        t.elapsed()
    );
    assert_eq!(ins.exit(), FLB_OK, "exit drains the buffer");
    let c = counts(&emu, "as");
    assert_eq!(c.len(), 500);
    assert!(c.values().all(|&n| n == 1));
}

#[test]
fn a_full_buffer_pushes_back_and_nothing_is_lost() {
    let (emu, plugin) = setup("full");
    emu.set_faults(
        Some("full"),
        Faults {
            outage: true,
            ..Default::default()
        },
    );
    let ins = start(
        &plugin,
        &emu,
        "full",
        &[
            ("buffer_max_bytes", "1MiB"),
            ("flush_timeout", "300ms"),
            ("retry_initial_backoff", "20ms"),
            ("retry_max_backoff", "100ms"),
        ],
    );
    let chunks: Vec<Vec<u8>> = (0..4).map(|k| chunk(k * 1000, 1000, 420)).collect();
    assert!(chunks[0].len() > 400_000 && chunks[0].len() < 520_000);
    assert_eq!(ins.flush(&chunks[0], "t"), FLB_OK);
    assert_eq!(ins.flush(&chunks[1], "t"), FLB_OK);
    assert_eq!(
        ins.flush(&chunks[2], "t"),
        FLB_RETRY,
        "the buffer is full: Fluent Bit keeps it"
    );
    assert!(!flb_host::logs_containing("buffer_max_bytes (1048576) is full").is_empty());
    // The service comes back; Fluent Bit retries the refused chunk.
    emu.set_faults(Some("full"), Faults::default());
    // Like Fluent Bit: a refused chunk is offered again later until it is taken.
    let t = Instant::now();
    for c in &chunks[2..] {
        while ins.flush(c, "t") != FLB_OK {
            assert!(t.elapsed() < Duration::from_secs(10), "the buffer drains");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(ins.exit(), FLB_OK);
    let c = counts(&emu, "full");
    assert_eq!(c.len(), 4000, "everything delivered");
    assert!(c.values().all(|&n| n == 1), "once");
}

#[test]
fn what_cannot_drain_by_shutdown_timeout_is_reported_lost() {
    let (emu, plugin) = setup("stuck");
    emu.set_faults(
        Some("stuck"),
        Faults {
            outage: true,
            ..Default::default()
        },
    );
    let ins = start(
        &plugin,
        &emu,
        "stuck",
        &[("shutdown_timeout", "500ms"), ("flush_timeout", "200ms")],
    );
    let data = chunk(0, 10, 10);
    assert_eq!(ins.flush(&data, "t"), FLB_OK);
    let t = Instant::now();
    assert_eq!(ins.exit(), FLB_OK);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "exit is bounded: {:?}",
        t.elapsed()
    );
    let lost = flb_host::logs_containing("were not delivered within shutdown_timeout");
    assert_eq!(lost.len(), 1);
    assert!(
        lost[0].message.contains(&format!("{} bytes", data.len())),
        "{}",
        lost[0].message
    );
}

/// Small chunks: in sync mode each is its own aggregate and is rounded up to 5 KB on its
/// own; async mode packs buffered chunks so their records share aggregates.
#[test]
fn small_chunks_share_aggregates_and_the_bill() {
    let (emu, plugin) = setup("pack");
    let ins = start(
        &plugin,
        &emu,
        "pack",
        &[("aggregation", "on"), ("buffer_linger", "60s")],
    );
    // 200 chunks of 50 records of ~120 bytes: ~6 KB each, 2 units each on their own.
    let chunks = 200;
    for k in 0..chunks {
        assert_eq!(ins.flush(&chunk(k * 50, 50, 60), "t"), FLB_OK);
    }
    assert_eq!(ins.exit(), FLB_OK, "exit packs and drains what lingers");
    let c = counts(&emu, "pack");
    assert_eq!(c.len(), 200 * 50);
    assert!(c.values().all(|&n| n == 1), "once");
    let s = emu.stats().streams["pack"].clone();
    assert!(
        s.accepted_records < 10,
        "{} Firehose records for {chunks} chunks",
        s.accepted_records
    );
    let ratio = s.billed_bytes as f64 / s.accepted_bytes as f64;
    assert!(
        ratio <= 1.01,
        "billed {} for {} bytes ({ratio:.4})",
        s.billed_bytes,
        s.accepted_bytes
    );
}

/// A lone chunk does not wait for company longer than `buffer_linger`.
#[test]
fn a_lone_chunk_goes_after_the_linger() {
    let (emu, plugin) = setup("lone");
    let ins = start(&plugin, &emu, "lone", &[("buffer_linger", "100ms")]);
    assert_eq!(ins.flush(&chunk(0, 10, 10), "t"), FLB_OK);
    let t = Instant::now();
    while counts(&emu, "lone").len() < 10 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "delivered without exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ins.exit(), FLB_OK);
    assert!(counts(&emu, "lone").values().all(|&n| n == 1));
}

#[test]
fn an_empty_buffer_takes_a_chunk_larger_than_buffer_max_bytes() {
    // Fluent Bit's chunks reach ~2 MB; a 1 MiB buffer must still take one, or the chunk
    // would be answered FLB_RETRY for ever (and dropped at Retry_Limit).
    let (emu, plugin) = setup("big");
    let ins = start(&plugin, &emu, "big", &[("buffer_max_bytes", "1MiB")]);
    let big = chunk(0, 4000, 420);
    assert!(big.len() > 1024 * 1024);
    assert_eq!(ins.flush(&big, "t"), FLB_OK);
    assert_eq!(ins.exit(), FLB_OK);
    let c = counts(&emu, "big");
    assert_eq!(c.len(), 4000);
    assert!(c.values().all(|&n| n == 1));
}
