//! Streams as capacity: quotas kept, throttling learned, failing streams skipped, streams
//! discovered by prefix, balance modes, and no duplicates when Fluent Bit retries a chunk.
//! Through the real library (flb-host) against the stand-in (emulator) on 127.0.0.1.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, Quota, StreamSpec};
use flb_host::chunk::{ChunkBuilder, EventTime};
use flb_host::{Plugin, FLB_OK, FLB_RETRY};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

fn emulator(streams: Vec<StreamSpec>) -> Emulator {
    common::test_env();
    Emulator::start(EmulatorConfig {
        streams,
        seed: Some(11),
        ..Default::default()
    })
    .expect("emulator starts")
}

fn load() -> Plugin {
    common::test_env();
    Plugin::load(common::plugin_path()).expect("plugin loads")
}

fn chunk(first: u64, n: u64, pad: usize) -> Vec<u8> {
    let mut b = ChunkBuilder::new();
    let filler = "x".repeat(pad);
    for seq in first..first + n {
        b.push_v2(
            EventTime {
                sec: 1_764_000_000,
                nsec: 0,
            },
            &json!({}),
            &json!({"seq": seq, "pod": format!("pod-{}", seq % 7), "log": filler}),
        );
    }
    b.finish()
}

/// seq → (arrivals, streams it arrived on).
fn arrivals(emu: &Emulator) -> BTreeMap<u64, Vec<String>> {
    let mut seen: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for s in emu.stream_names() {
        for rec in emu.records(&s) {
            for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_slice(line).expect("JSON");
                seen.entry(v["seq"].as_u64().expect("seq"))
                    .or_default()
                    .push(s.clone());
            }
        }
    }
    seen
}

fn assert_exactly_once(emu: &Emulator, n: u64) -> BTreeMap<u64, Vec<String>> {
    let seen = arrivals(emu);
    let lost = (0..n).filter(|s| !seen.contains_key(s)).count();
    let dup = seen.values().filter(|v| v.len() > 1).count();
    assert_eq!((lost, dup), (0, 0), "lost, duplicated");
    assert_eq!(seen.len() as u64, n);
    seen
}

fn per_stream(seen: &BTreeMap<u64, Vec<String>>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for v in seen.values() {
        *m.entry(v[0].clone()).or_insert(0) += 1;
    }
    m
}

fn props(ep: &str, extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut p = vec![
        ("region".to_string(), "us-east-1".to_string()),
        ("endpoint".to_string(), ep.to_string()),
        ("retry_initial_backoff".to_string(), "20ms".to_string()),
        ("retry_max_backoff".to_string(), "200ms".to_string()),
        // Per-record behaviour is what these tests look at; aggregation has its own tests.
        ("aggregation".to_string(), "off".to_string()),
    ];
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

fn init(plugin: &Plugin, p: &[(String, String)]) -> flb_host::Instance {
    let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    plugin.init(&refs).expect("init")
}

fn bytes_quota(b: f64) -> Quota {
    Quota {
        bytes_per_second: Some(b),
        ..Default::default()
    }
}

#[test]
fn the_configured_quota_is_kept_so_nothing_is_throttled() {
    // Two streams of 200 KiB/s; 1.2 MB of records takes about 3 s, with no throttling
    // because the plugin never sends faster than the quota.
    let emu = emulator(vec![
        StreamSpec::new("q0").with_quota(bytes_quota(200.0 * 1024.0)),
        StreamSpec::new("q1").with_quota(bytes_quota(200.0 * 1024.0)),
    ]);
    let plugin = load();
    let ins = init(
        &plugin,
        &props(
            &emu.endpoint(),
            &[
                ("delivery_streams", "q0,q1"),
                ("stream_bytes_per_second", "190KiB"),
            ],
        ),
    );
    let t = Instant::now();
    for k in 0..4 {
        assert_eq!(ins.flush(&chunk(k * 1000, 1000, 200), "t"), FLB_OK);
    }
    let took = t.elapsed();
    let seen = assert_exactly_once(&emu, 4000);
    let shares = per_stream(&seen);
    assert!(
        shares.values().all(|&c| c > 1500),
        "both streams carry load: {shares:?}"
    );
    let throttled: u64 = emu
        .stats()
        .streams
        .values()
        .map(|s| s.throttled_requests)
        .sum();
    assert_eq!(throttled, 0, "no call was throttled");
    // ~1.0 MB at 2 × 190 KiB/s (half a second of burst each): at least 1.5 s
    assert!(took > Duration::from_millis(1500), "quota kept: {took:?}");
    ins.exit();
}

#[test]
fn a_lower_real_quota_is_learned_and_the_overflow_goes_to_the_other_stream() {
    // The plugin believes both streams take 5 MiB/s; "slow" really takes 50 KiB/s.
    let emu = emulator(vec![
        StreamSpec::new("slow").with_quota(bytes_quota(50.0 * 1024.0)),
        StreamSpec::new("fast"),
    ]);
    let plugin = load();
    let ins = init(
        &plugin,
        &props(&emu.endpoint(), &[("delivery_streams", "slow,fast")]),
    );
    for k in 0..6 {
        assert_eq!(ins.flush(&chunk(k * 1000, 1000, 200), "t"), FLB_OK);
    }
    let seen = assert_exactly_once(&emu, 6000);
    let shares = per_stream(&seen);
    let slow = shares.get("slow").copied().unwrap_or(0);
    assert!(slow < 2000, "the slow stream got less: {shares:?}");
    let stats = emu.stats();
    assert!(
        stats.streams["slow"].throttled_records > 0,
        "it was throttled"
    );
    ins.exit();
}

#[test]
fn a_deleted_stream_loses_nothing_and_leaves_the_rotation() {
    let emu = emulator(vec![
        StreamSpec::new("d0"),
        StreamSpec::new("d1"),
        StreamSpec::new("d2"),
    ]);
    let plugin = load();
    let ins = init(
        &plugin,
        &props(&emu.endpoint(), &[("delivery_streams", "d0,d1,d2")]),
    );
    assert_eq!(ins.flush(&chunk(0, 1500, 50), "t"), FLB_OK);
    let on_d1 = arrivals(&emu).values().filter(|v| v[0] == "d1").count();
    assert_eq!(on_d1, 500);
    // The emulator forgets a deleted stream's records; what matters is what comes after.
    assert!(emu.delete_stream("d1"));
    for k in 1..4 {
        assert_eq!(ins.flush(&chunk(k * 1500, 1500, 50), "t"), FLB_OK);
    }
    let seen = arrivals(&emu);
    assert!(seen.values().all(|v| v.len() == 1), "no duplicates");
    assert!(
        (1500..6000).all(|s| seen.contains_key(&s)),
        "nothing sent after the delete is lost"
    );
    assert_eq!(seen.len(), 6000 - on_d1);
    let warn = flb_host::logs_containing("d1 leaves the rotation");
    assert_eq!(warn.len(), 1, "logged once: {:?}", flb_host::logs());
    ins.exit();
}

#[test]
fn no_healthy_stream_answers_retry_never_drops() {
    let emu = emulator(vec![StreamSpec::new("only")]);
    let plugin = load();
    let ins = init(
        &plugin,
        &props(
            &emu.endpoint(),
            &[("delivery_streams", "gone"), ("flush_timeout", "800ms")],
        ),
    );
    assert_eq!(ins.flush(&chunk(0, 10, 10), "t"), FLB_RETRY);
    ins.exit();
}

#[test]
fn streams_are_discovered_by_prefix_and_join_and_leave_live() {
    let emu = emulator(vec![
        StreamSpec::new("logs-a"),
        StreamSpec::new("logs-b"),
        StreamSpec::new("other"),
    ]);
    let plugin = load();
    let ins = init(
        &plugin,
        &props(
            &emu.endpoint(),
            &[
                ("delivery_stream_prefix", "logs-"),
                ("discovery_interval", "300ms"),
            ],
        ),
    );
    assert_eq!(ins.flush(&chunk(0, 900, 10), "t"), FLB_OK);
    let shares = per_stream(&arrivals(&emu));
    assert_eq!(shares.get("logs-a"), Some(&450), "{shares:?}");
    assert_eq!(shares.get("logs-b"), Some(&450));
    assert!(!shares.contains_key("other"));

    emu.create_stream(StreamSpec::new("logs-c"));
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !flb_host::logs_containing("joined (prefix 'logs-'): logs-c").is_empty(),
        "{:?}",
        flb_host::logs()
    );
    assert_eq!(ins.flush(&chunk(900, 900, 10), "t"), FLB_OK);
    let shares = per_stream(&arrivals(&emu));
    assert_eq!(
        shares.get("logs-c"),
        Some(&300),
        "the new stream carries traffic: {shares:?}"
    );

    assert!(emu.delete_stream("logs-a"));
    std::thread::sleep(Duration::from_millis(800));
    assert!(!flb_host::logs_containing("left (no longer listed or not ACTIVE): logs-a").is_empty());
    assert_eq!(ins.flush(&chunk(1800, 900, 10), "t"), FLB_OK);
    let seen = arrivals(&emu);
    // The emulator forgets a deleted stream's records (450 + 300); the rest are all there.
    assert!(
        (1800..2700).all(|s| seen.contains_key(&s)),
        "nothing sent after the delete is lost"
    );
    assert_eq!(seen.len(), 2700 - 750);
    assert!(seen.values().all(|v| v.len() == 1 && v[0] != "logs-a"));
    ins.exit();
}

#[test]
fn balance_modes() {
    let emu = emulator(vec![
        StreamSpec::new("m0"),
        StreamSpec::new("m1"),
        StreamSpec::new("m2"),
    ]);
    let plugin = load();
    let ep = emu.endpoint();

    let rr = init(
        &plugin,
        &props(
            &ep,
            &[("delivery_streams", "m0,m1,m2"), ("balance", "round_robin")],
        ),
    );
    // 1,500 records of ~1 KiB: three batches of 500, one per stream
    assert_eq!(rr.flush(&chunk(0, 1500, 900), "t"), FLB_OK);
    let shares = per_stream(&arrivals(&emu));
    assert!(shares.values().all(|&c| c == 500), "{shares:?}");
    rr.exit();

    let random = init(
        &plugin,
        &props(
            &ep,
            &[("delivery_streams", "m0,m1,m2"), ("balance", "random")],
        ),
    );
    assert_eq!(random.flush(&chunk(1500, 3000, 10), "t"), FLB_OK);
    random.exit();

    let keyed = init(
        &plugin,
        &props(
            &ep,
            &[
                ("delivery_streams", "m0,m1,m2"),
                ("balance", "key"),
                ("partition_key", "pod"),
            ],
        ),
    );
    assert_eq!(keyed.flush(&chunk(4500, 2100, 10), "t"), FLB_OK);
    keyed.exit();

    let seen = assert_exactly_once(&emu, 6600);
    let random_shares: HashMap<String, usize> = per_stream(
        &seen
            .iter()
            .filter(|(s, _)| (1500..4500).contains(*s))
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
    );
    assert!(
        random_shares.values().all(|&c| (800..1200).contains(&c)),
        "{random_shares:?}"
    );
    // key: every pod's records on one stream, and more than one stream used
    let mut pod_streams: HashMap<u64, std::collections::HashSet<String>> = HashMap::new();
    for (seq, streams) in seen.iter().filter(|(s, _)| **s >= 4500) {
        pod_streams
            .entry(seq % 7)
            .or_default()
            .insert(streams[0].clone());
    }
    assert!(
        pod_streams.values().all(|s| s.len() == 1),
        "{pod_streams:?}"
    );
    let used: std::collections::HashSet<&String> = pod_streams.values().flatten().collect();
    assert!(used.len() > 1, "keys spread over streams");
}

#[test]
fn a_retried_chunk_sends_only_what_was_not_delivered() {
    // One stream that takes 300 records per second (per record): a 3,000-record chunk
    // cannot make it within a 1 s flush_timeout, so the flush answers FLB_RETRY with part
    // delivered. Fluent Bit then retries the same chunk: only the rest is sent.
    let emu = emulator(vec![StreamSpec::new("r").with_quota(Quota {
        records_per_second: Some(300.0),
        ..Default::default()
    })]);
    let plugin = load();
    let ins = init(
        &plugin,
        &props(
            &emu.endpoint(),
            &[("delivery_streams", "r"), ("flush_timeout", "1s")],
        ),
    );
    let data = chunk(0, 3000, 20);
    let mut tries = 0;
    let mut retries = 0;
    loop {
        tries += 1;
        assert!(tries < 40, "gave up after {tries} tries");
        match ins.flush(&data, "kube.retry") {
            FLB_OK => break,
            FLB_RETRY => retries += 1,
            c => panic!("unexpected {c}"),
        }
        let partial = arrivals(&emu);
        assert!(
            partial.values().all(|v| v.len() == 1),
            "no duplicate after a retry"
        );
    }
    assert!(retries > 0, "the quota did force Fluent Bit retries");
    assert_exactly_once(&emu, 3000);
    ins.exit();
}

/// One slow stream (every call takes 1.5 s) next to a fast one: after its first call the
/// slow stream is passed over while the fast one has capacity, so flushes stop waiting on
/// it; everything arrives once.
#[test]
fn a_slow_stream_does_not_hold_up_the_flushes() {
    let emu = emulator(vec![StreamSpec::new("fast"), StreamSpec::new("slow")]);
    emu.set_faults(
        Some("slow"),
        firehose_emulator::Faults {
            latency: Duration::from_millis(1500),
            ..Default::default()
        },
    );
    let plugin = load();
    let ins = init(
        &plugin,
        &props(&emu.endpoint(), &[("delivery_streams", "fast,slow")]),
    );
    let chunks = 10;
    for k in 0..chunks {
        assert_eq!(ins.flush(&chunk(k * 100, 100, 50), "t"), FLB_OK);
    }
    assert_eq!(ins.exit(), FLB_OK);
    let seen = assert_exactly_once(&emu, chunks * 100);
    let shares = per_stream(&seen);
    let slow_calls = emu.stats().streams["slow"].requests;
    assert!(
        slow_calls <= 2,
        "the slow stream took {slow_calls} calls: {shares:?}"
    );
    assert!(
        shares.get("fast").copied().unwrap_or(0) >= 900,
        "{shares:?}"
    );
}
