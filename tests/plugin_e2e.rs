//! The built plugin, loaded with dlopen exactly as Fluent Bit does (crates/flb-host), shipping
//! to the Firehose stand-in (crates/emulator) on 127.0.0.1.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, Faults, StreamSpec};
use flb_host::chunk::{ChunkBuilder, EventTime};
use flb_host::{Plugin, FLB_ERROR, FLB_OK, FLB_RETRY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn emulator(streams: &[&str]) -> Emulator {
    common::test_env();
    Emulator::start(EmulatorConfig {
        streams: streams.iter().map(|s| StreamSpec::new(*s)).collect(),
        seed: Some(7),
        signing_secret: Some(common::TEST_SECRET.into()),
        ..Default::default()
    })
    .expect("emulator starts")
}

fn load() -> Plugin {
    common::test_env();
    Plugin::load(common::plugin_path()).expect("plugin loads")
}

/// A chunk of `n` records with `seq` from `first`, in Fluent Bit's v2 layout.
fn chunk(first: u64, n: u64) -> Vec<u8> {
    let mut b = ChunkBuilder::new();
    for seq in first..first + n {
        b.push_v2(
            EventTime { sec: 1_764_000_000 + seq as i64, nsec: 0 },
            &json!({}),
            &json!({"seq": seq, "log": format!("line {seq} of the test"), "kubernetes": {"pod": "p"}}),
        );
    }
    b.finish()
}

/// seq → how many times it arrived, over the given streams.
fn arrivals(emu: &Emulator, streams: &[&str]) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for s in streams {
        for rec in emu.records(s) {
            for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_slice(line).expect("JSON record");
                *seen.entry(v["seq"].as_u64().expect("seq")).or_insert(0) += 1;
            }
        }
    }
    seen
}

fn assert_exactly_once(seen: &BTreeMap<u64, usize>, range: std::ops::Range<u64>) {
    let missing: Vec<u64> = range.clone().filter(|s| !seen.contains_key(s)).collect();
    let dup: Vec<(&u64, &usize)> = seen.iter().filter(|(_, &c)| c != 1).collect();
    assert!(
        missing.is_empty(),
        "{} records lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        dup.is_empty(),
        "{} records duplicated, first {:?}",
        dup.len(),
        &dup[..dup.len().min(5)]
    );
    assert_eq!(seen.len() as u64, range.end - range.start);
}

fn props<'a>(
    emu: &'a str,
    streams: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("region", "us-east-1"),
        ("endpoint", emu),
        ("delivery_streams", streams),
    ];
    p.extend_from_slice(extra);
    p
}

#[test]
fn registers_as_a_go_proxy_output() {
    let plugin = load();
    assert_eq!(plugin.name(), "firehose_fanout");
    assert_eq!(plugin.proxy_kind(), 11);
    assert_eq!(plugin.plugin_type(), 2);
    assert_eq!(plugin.event_type(), 0);
    assert!(plugin.description().contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn records_are_spread_evenly_and_arrive_once() {
    let emu = emulator(&["s0", "s1", "s2"]);
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin.init(&props(&ep, "s0,s1,s2", &[])).expect("init");
    assert_eq!(ins.flush(&chunk(0, 3000), "kube.test"), FLB_OK);
    let seen = arrivals(&emu, &["s0", "s1", "s2"]);
    assert_exactly_once(&seen, 0..3000);
    for s in ["s0", "s1", "s2"] {
        let n: usize = emu
            .records(s)
            .iter()
            .map(|r| r.iter().filter(|&&b| b == b'\n').count())
            .sum();
        // Aggregated parts are equal in bytes, cut on 5 KB billing units: a few records
        // either way.
        assert!(n.abs_diff(1000) <= 30, "stream {s} gets an even share: {n}");
    }
    // the emulator's streams go to S3 without processing: records are aggregated, each
    // Firehose record being whole JSON lines
    let recs = emu.records("s0");
    assert!(
        recs.len() < 1000,
        "aggregated: {} Firehose records",
        recs.len()
    );
    assert!(recs.iter().all(|r| r.ends_with(b"\n")));
    let first_line = recs[0].split(|&b| b == b'\n').next().unwrap();
    let first: Value = serde_json::from_slice(first_line).unwrap();
    assert_eq!(first["kubernetes"]["pod"], "p");
    assert_eq!(ins.exit(), FLB_OK);
}

#[test]
fn without_aggregation_each_log_record_is_one_firehose_record() {
    let emu = emulator(&["n0", "n1"]);
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin
        .init(&props(&ep, "n0,n1", &[("aggregation", "off")]))
        .expect("init");
    assert_eq!(ins.flush(&chunk(0, 600), "t"), FLB_OK);
    let recs: Vec<Vec<u8>> = emu
        .records("n0")
        .into_iter()
        .chain(emu.records("n1"))
        .collect();
    assert_eq!(recs.len(), 600);
    for r in &recs {
        let v: Value = serde_json::from_slice(r).expect("one JSON object per record");
        assert!(v["seq"].is_u64());
    }
    ins.exit();
}

#[test]
fn ten_percent_record_failures_still_deliver_each_record_once() {
    let emu = emulator(&["a", "b"]);
    emu.set_faults(
        None,
        Faults {
            record_failure_rate: 0.10,
            ..Default::default()
        },
    );
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin
        .init(&props(
            &ep,
            "a,b",
            &[
                ("retry_initial_backoff", "10ms"),
                ("retry_max_backoff", "100ms"),
                ("aggregation", "off"),
            ],
        ))
        .expect("init");
    assert_eq!(ins.flush(&chunk(0, 5000), "t"), FLB_OK);
    assert_exactly_once(&arrivals(&emu, &["a", "b"]), 0..5000);
    let failed: u64 = emu.stats().streams.values().map(|s| s.failed_records).sum();
    assert!(
        failed > 300,
        "the fault injection did fail records ({failed})"
    );
    ins.exit();
}

#[test]
fn outage_answers_retry_within_flush_timeout_then_the_retry_delivers_once() {
    let emu = emulator(&["a", "b"]);
    emu.set_faults(
        None,
        Faults {
            outage: true,
            ..Default::default()
        },
    );
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin
        .init(&props(
            &ep,
            "a,b",
            &[
                ("flush_timeout", "1500ms"),
                ("retry_initial_backoff", "20ms"),
            ],
        ))
        .expect("init");
    let data = chunk(0, 800);
    let t = Instant::now();
    assert_eq!(ins.flush(&data, "outage-test"), FLB_RETRY);
    let took = t.elapsed();
    // Gives up at the deadline, after waiting for the calls in flight then (a second of
    // margin for them: valgrind runs this test too, many times slower).
    assert!(
        took < Duration::from_millis(1500 + 1000),
        "answered after {took:?}"
    );
    let tries: u64 = emu
        .stats()
        .streams
        .values()
        .map(|s| s.requests + s.faulted_requests)
        .sum();
    assert!(
        tries >= 4,
        "kept retrying until the deadline ({tries} requests)"
    );
    assert!(
        flb_host::logs_containing("tag outage-test: 0 of 800 record(s) accepted")
            .iter()
            .any(|l| l.message.contains("answering FLB_RETRY")),
        "the outcome is logged: {:?}",
        flb_host::logs()
    );
    assert!(arrivals(&emu, &["a", "b"]).is_empty());

    // Fluent Bit sends the same chunk again (after its retry wait) once the service is
    // back; streams paused by the outage take calls again within 2 s.
    emu.set_faults(None, Faults::default());
    let t = Instant::now();
    while ins.flush(&data, "t") != FLB_OK {
        assert!(t.elapsed() < Duration::from_secs(10), "the retry delivers");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_exactly_once(&arrivals(&emu, &["a", "b"]), 0..800);
    ins.exit();
}

#[test]
fn a_missing_stream_is_skipped_and_its_records_go_elsewhere() {
    let emu = emulator(&["real"]);
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin
        .init(&props(
            &ep,
            "ghost,real",
            &[("retry_initial_backoff", "10ms")],
        ))
        .expect("init");
    assert_eq!(ins.flush(&chunk(0, 1000), "t"), FLB_OK);
    assert_exactly_once(&arrivals(&emu, &["real"]), 0..1000);
    assert!(!flb_host::logs_containing("ghost").is_empty());
    ins.exit();
}

#[test]
fn bad_configuration_fails_init_with_a_message() {
    let plugin = load();
    let err = plugin
        .init(&[("region", "us-east-1")])
        .expect_err("init must fail");
    assert!(
        matches!(err, flb_host::HostError::InitFailed(c) if c <= 0),
        "{err:?}"
    );
    let lines = flb_host::logs_containing("delivery_streams is empty");
    assert_eq!(lines.len(), 1, "{:?}", flb_host::logs());
    assert_eq!(lines[0].level, flb_host::FLB_LOG_ERROR);
    assert!(lines[0].message.contains("[output:firehose_fanout:"));
    let err = plugin.init(&[
        ("region", "us-east-1"),
        ("delivery_streams", "a"),
        ("flush_timeout", "later"),
    ]);
    assert!(err.is_err());
    assert_eq!(
        flb_host::logs_containing("flush_timeout = 'later'").len(),
        1
    );
}

#[test]
fn undecodable_chunks_answer_error_and_malformed_events_are_counted() {
    let emu = emulator(&["a"]);
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin.init(&props(&ep, "a", &[])).expect("init");
    // First, as the count line of a kind is written at most once per 10 s per instance.
    let mut data = chunk(0, 10);
    data.extend_from_slice(&[0x92, 0xa1, b'x', 0xa1, b'y']); // [ "x", "y" ]: not an event
    data.extend(chunk(10, 10));
    assert_eq!(ins.flush(&data, "malformed-test"), FLB_OK);
    assert_exactly_once(&arrivals(&emu, &["a"]), 0..20);
    assert!(
        !flb_host::logs_containing("tag malformed-test: skipped 1 malformed").is_empty(),
        "{:?}",
        flb_host::logs()
    );
    assert_eq!(ins.flush(b"\xc1\xc1\xc1", "undecodable-test"), FLB_ERROR);
    assert_eq!(
        flb_host::logs_containing("tag undecodable-test: nothing in the chunk can be delivered")
            .len(),
        1
    );
    // An empty chunk has nothing to deliver: done, without an error line.
    assert_eq!(ins.flush(&[], "empty-test"), FLB_OK);
    // SAFETY: NULL data and NULL tag are what this test is about; the host passes them on.
    let code = unsafe { ins.flush_raw(std::ptr::null(), 0, std::ptr::null()) };
    assert_eq!(code, FLB_OK);
    // SAFETY: as above; NULL data with a size is a broken call, answered FLB_ERROR.
    let code = unsafe { ins.flush_raw(std::ptr::null(), 5, std::ptr::null()) };
    assert_eq!(code, FLB_ERROR);
    assert!(flb_host::logs_containing("tag empty-test").is_empty());
    ins.exit();
}

#[test]
fn flushes_run_concurrently_on_small_stacks_across_instances() {
    let emu = emulator(&["x0", "x1", "y0"]);
    let ep = emu.endpoint();
    let plugin = load();
    let ix = plugin.init(&props(&ep, "x0,x1", &[])).expect("init x");
    let iy = plugin.init(&props(&ep, "y0", &[])).expect("init y");
    std::thread::scope(|s| {
        for w in 0..4u64 {
            let (ix, iy) = (&ix, &iy);
            s.spawn(move || {
                assert_eq!(ix.flush(&chunk(w * 1000, 1000), "x"), FLB_OK);
                assert_eq!(iy.flush(&chunk(w * 1000, 1000), "y"), FLB_OK);
            });
        }
    });
    assert_exactly_once(&arrivals(&emu, &["x0", "x1"]), 0..4000);
    assert_exactly_once(&arrivals(&emu, &["y0"]), 0..4000);

    // Inside a 64 KiB coroutine stack with no guard page, like Fluent Bit's.
    let report = ix.flush_coro(&chunk(90_000, 2000), "x");
    assert_eq!(report.code, FLB_OK);
    assert!(!report.stack_overflowed);
    let used = report.stack_used_bytes.expect("high-water mark");
    assert!(
        used < 24 * 1024,
        "the flush used {used} bytes of its 64 KiB stack"
    );
    assert_eq!(ix.exit(), FLB_OK);
    assert_eq!(iy.exit(), FLB_OK);
}

#[test]
fn engine_thread_flush_warns_once_to_set_workers() {
    let emu = emulator(&["a"]);
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin.init(&props(&ep, "a", &[])).expect("init");
    assert_eq!(ins.flush_on_engine_thread(&chunk(0, 5), "t"), FLB_OK);
    assert_eq!(ins.flush_on_engine_thread(&chunk(5, 5), "t"), FLB_OK);
    assert_eq!(
        flb_host::logs_containing("workers 1").len(),
        1,
        "{:?}",
        flb_host::logs()
    );
    ins.exit();
}

#[test]
fn auto_retry_requests_off_leaves_failed_records_to_fluent_bits_retry() {
    let emu = emulator(&["ar"]);
    emu.set_faults(
        Some("ar"),
        Faults {
            record_failure_rate: 0.5,
            ..Default::default()
        },
    );
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin
        .init(&props(
            &ep,
            "ar",
            &[("auto_retry_requests", "off"), ("aggregation", "off")],
        ))
        .expect("init");
    let data = chunk(0, 400);
    let t = Instant::now();
    assert_eq!(ins.flush(&data, "ar-test"), FLB_RETRY);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "answered at once, not at flush_timeout"
    );
    let first = arrivals(&emu, &["ar"]).len();
    assert!(first > 100 && first < 300, "about half accepted: {first}");
    // Fluent Bit's retries send only what is missing, until all is there, once.
    emu.set_faults(Some("ar"), Faults::default());
    assert_eq!(ins.flush(&data, "ar-test"), FLB_OK);
    assert_exactly_once(&arrivals(&emu, &["ar"]), 0..400);
    ins.exit();
}

#[test]
fn with_no_stream_to_try_before_the_deadline_a_flush_answers_at_once() {
    // The only stream does not exist: it leaves the rotation and is probed every 30 s.
    // Waiting out a 10 s flush_timeout would only hold Fluent Bit's worker.
    let emu = emulator(&["other"]);
    let ep = emu.endpoint();
    let plugin = load();
    let ins = plugin
        .init(&props(
            &ep,
            "gone",
            &[("flush_timeout", "10s"), ("health_probe_interval", "30s")],
        ))
        .expect("init");
    let t = Instant::now();
    assert_eq!(ins.flush(&chunk(0, 10), "t"), FLB_RETRY);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "held the worker {:?}",
        t.elapsed()
    );
    ins.exit();
}
