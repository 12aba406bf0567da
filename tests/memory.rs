//! Memory bounds: a long outage at full input rate does not grow memory beyond what the
//! configuration bounds, and init/flush/exit cycles do not leak. Alone in their test binary
//! so other tests' allocations do not blur the figures (they run one after the other).

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, Faults, StreamSpec};
use flb_host::{Plugin, FLB_OK, FLB_RETRY};
use std::sync::Mutex;

/// The tests of this file measure the process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn chunk(first: u64, n: u64) -> Vec<u8> {
    common::seq_chunk(
        first,
        n,
        &"an outage keeps every chunk in Fluent Bit's hands".repeat(4),
    )
}

#[test]
fn a_long_outage_at_full_input_rate_stays_bounded() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::test_env();
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("o0"), StreamSpec::new("o1")],
        ..Default::default()
    })
    .unwrap();
    emu.set_faults(
        None,
        Faults {
            outage: true,
            ..Default::default()
        },
    );
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ep = emu.endpoint();
    let ins = plugin
        .init(&[
            ("region", "us-east-1"),
            ("endpoint", &ep),
            ("delivery_streams", "o0,o1"),
            ("flush_timeout", "100ms"),
            ("retry_initial_backoff", "10ms"),
        ])
        .unwrap();
    // Distinct ~400 KB chunks, as fast as two workers can flush, for 120 flushes: in sync
    // mode the plugin holds only the chunks being flushed, plus its retry memory (nothing
    // was accepted here, so nothing is remembered).
    let chunks: Vec<Vec<u8>> = (0..8).map(|k| chunk(k * 2000, 2000)).collect();
    for c in &chunks[..2] {
        assert_eq!(ins.flush(c, "warm"), FLB_RETRY);
    }
    let before = rss_kib();
    std::thread::scope(|s| {
        for w in 0..2 {
            let (ins, chunks) = (&ins, &chunks);
            s.spawn(move || {
                for k in 0..60 {
                    assert_eq!(
                        ins.flush(&chunks[(w * 60 + k) % chunks.len()], "outage"),
                        FLB_RETRY
                    );
                }
            });
        }
    });
    let grown = rss_kib().saturating_sub(before);
    println!("RSS growth over 120 flushes during an outage: {grown} KiB");
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
    ins.exit();
}

#[test]
fn init_flush_exit_cycles_do_not_leak() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cycles: usize = std::env::var("FF_MEMORY_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    common::test_env();
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("c0")],
        record_retention: Some(16),
        ..Default::default()
    })
    .unwrap();
    let plugin = Plugin::load(common::plugin_path()).unwrap();
    let ep = emu.endpoint();
    let props = [
        ("region", "us-east-1"),
        ("endpoint", ep.as_str()),
        ("delivery_streams", "c0"),
        ("aggregation", "off"),
    ];
    // One instance stays alive so the shared runtime persists, as in Fluent Bit.
    let anchor = plugin.init(&props).unwrap();
    let data = chunk(0, 5);
    let cycle = || {
        let ins = plugin.init(&props).unwrap();
        assert_eq!(ins.flush(&data, "cycle"), FLB_OK);
        assert_eq!(ins.exit(), FLB_OK);
        // The host keeps every log line; that store is not the plugin's memory.
        flb_host::clear_logs();
    };
    // Warm up: allocator pools, the runtime's threads, the emulator's buffers.
    for _ in 0..cycles / 3 {
        cycle();
    }
    let before = rss_kib();
    for _ in 0..cycles {
        cycle();
    }
    let grown = rss_kib().saturating_sub(before);
    println!("RSS growth over {cycles} init/flush/exit cycles after warm-up: {grown} KiB");
    // A leak of even 1 KiB per cycle would show as more than the whole budget here.
    assert!(
        grown < (cycles as u64 / 2).max(1024),
        "RSS grew by {grown} KiB"
    );
    anchor.exit();
}
