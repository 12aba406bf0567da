//! Hostile chunks through the real library (`dlopen`ed by crates/flb-host, shipping to the
//! Firehose stand-in on 127.0.0.1): truncation, wrong types, lying lengths, deep nesting,
//! invalid UTF-8, huge keys, odd floats and exts, NULL pointers, broken markers.
//!
//! For every case: the flush answers a valid code (no panic: a panic inside a flush would
//! answer FLB_RETRY, which no case here expects), the answer is the right one (FLB_ERROR
//! when nothing decodes; FLB_OK with the good records delivered exactly once when only
//! some events are bad), and the skipped events are counted in the log line
//! "tag T: skipped N malformed event(s) of the chunk". Each case also runs through
//! `flush::prepare` in this process, where a panic fails the test directly.
//!
//! Logs are process-global and tests run in parallel: every case has its own tag, and a
//! case whose log line is checked gets its own instance (repeated log lines are held back
//! per instance for 10 s). `flb_host::clear_logs()` is never called.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};
use firehose_fanout::codec::encode::EncodeOptions;
use firehose_fanout::delivery::{prepare, Prepared};
use flb_host::chunk::{ChunkBuilder, EventTime, MsgValue};
use flb_host::{Instance, Plugin, FLB_ERROR, FLB_OK, FLB_RETRY};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

// ---------------------------------------------------------------------------------------
// An allocator that records the largest single request made while a thread asks for it
// (used to show that no allocation follows a declared length)
// ---------------------------------------------------------------------------------------

struct Tracking;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: forwards to the system allocator unchanged; only reads/writes const-initialised
// thread-locals (no allocation, no destructor) on the side.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// `prepare` with default options, and the largest single allocation it made.
fn prepare_tracked(chunk: &[u8]) -> (Prepared, usize) {
    LARGEST.with(|l| l.set(0));
    TRACK.with(|t| t.set(true));
    let p = prepare(&EncodeOptions::default(), chunk);
    TRACK.with(|t| t.set(false));
    (p, LARGEST.with(|l| l.get()))
}

// ---------------------------------------------------------------------------------------
// The memory test runs alone: every other test holds the lock shared
// ---------------------------------------------------------------------------------------

static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// The rig: an emulator, the loaded plugin, one instance per case
// ---------------------------------------------------------------------------------------

struct Rig {
    plugin: Plugin,
    emu: Emulator,
}

impl Rig {
    fn new(streams: &[&str]) -> Rig {
        common::test_env();
        let emu = Emulator::start(EmulatorConfig {
            streams: streams.iter().map(|s| StreamSpec::new(*s)).collect(),
            seed: Some(7),
            ..Default::default()
        })
        .expect("emulator starts");
        let plugin = Plugin::load(common::plugin_path()).expect("plugin loads");
        Rig { plugin, emu }
    }

    fn instance_with(&self, stream: &str, extra: &[(&str, &str)]) -> Instance {
        let ep = self.emu.endpoint();
        let mut props = vec![
            ("region", "us-east-1"),
            ("endpoint", ep.as_str()),
            ("delivery_streams", stream),
            ("flush_timeout", "10s"),
        ];
        props.extend_from_slice(extra);
        self.plugin.init(&props).expect("init")
    }

    fn instance(&self, stream: &str) -> Instance {
        self.instance_with(stream, &[])
    }

    /// Every JSON line the stream received so far (Firehose records may hold many).
    fn lines(&self, stream: &str) -> Vec<String> {
        let mut out = Vec::new();
        for rec in self.emu.records(stream) {
            for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                out.push(String::from_utf8(line.to_vec()).expect("records are UTF-8"));
            }
        }
        out
    }
}

/// Flushes on a 64 KiB worker thread and checks the code is one Fluent Bit knows and
/// that nothing about a panic was logged for the tag.
fn flush(ins: &Instance, chunk: &[u8], tag: &str) -> i32 {
    let code = ins.flush(chunk, tag);
    assert!(
        [FLB_ERROR, FLB_OK, FLB_RETRY].contains(&code),
        "{tag}: invalid flush code {code}"
    );
    no_panic_logged(tag);
    code
}

fn no_panic_logged(tag: &str) {
    let bad: Vec<_> = flb_host::logs()
        .into_iter()
        .filter(|l| l.message.contains(tag) && l.message.to_lowercase().contains("panic"))
        .collect();
    assert!(bad.is_empty(), "{tag}: panic logged: {bad:?}");
    assert!(
        flb_host::violations().is_empty(),
        "ABI violations: {:?}",
        flb_host::violations()
    );
}

/// The plugin's count line for `tag`, if any.
fn malformed_line(tag: &str) -> Option<String> {
    let needle = format!("tag {tag}: skipped ");
    flb_host::logs()
        .into_iter()
        .map(|l| l.message)
        .find(|m| m.contains(&needle))
}

fn assert_malformed_logged(tag: &str, n: usize) {
    let want = format!("tag {tag}: skipped {n} malformed event(s) of the chunk");
    match malformed_line(tag) {
        Some(m) => assert!(m.contains(&want), "{tag}: log says {m:?}, wanted {want:?}"),
        None => panic!("{tag}: no malformed count logged (wanted {want:?})"),
    }
}

fn assert_nothing_malformed_logged(tag: &str) {
    assert_eq!(
        malformed_line(tag),
        None,
        "{tag}: unexpected malformed count"
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Chunk pieces
// ---------------------------------------------------------------------------------------

const T0: u32 = 1_764_000_000;

/// `[[EventTime, {}], BODY]` with BODY as raw msgpack.
fn v2(body: &[u8]) -> Vec<u8> {
    let mut c = ChunkBuilder::new();
    c.push_v2_raw_body(EventTime::new(T0 as i64, 5), body);
    c.finish()
}

/// A good event and the exact JSON line it becomes.
fn good(seq: u64) -> (Vec<u8>, String) {
    let body = MsgValue::str_map(vec![
        ("seq", MsgValue::Uint(seq)),
        ("msg", MsgValue::str("good")),
    ]);
    (
        v2(&body.encode()),
        format!("{{\"seq\":{seq},\"msg\":\"good\"}}"),
    )
}

fn body_kv(k: &str, v: MsgValue) -> Vec<u8> {
    MsgValue::str_map(vec![(k, v)]).encode()
}

/// One case: a chunk, the code it must get, the exact lines it must deliver, and how many
/// events it must count as malformed.
struct Case {
    tag: String,
    chunk: Vec<u8>,
    code: i32,
    lines: Vec<String>,
    malformed: usize,
}

impl Case {
    fn new(tag: &str, chunk: Vec<u8>, code: i32, lines: Vec<String>, malformed: usize) -> Case {
        Case {
            tag: format!("hostile.{tag}"),
            chunk,
            code,
            lines,
            malformed,
        }
    }
}

/// Runs each case on its own instance (fresh log limits) and its own stream, through the
/// plugin and through `prepare` in-process.
fn run_cases(test: &str, cases: Vec<Case>) {
    let _g = shared();
    let streams: Vec<String> = (0..cases.len()).map(|i| format!("{test}-{i}")).collect();
    let names: Vec<&str> = streams.iter().map(String::as_str).collect();
    let rig = Rig::new(&names);
    for (case, stream) in cases.into_iter().zip(&streams) {
        let tag = &case.tag;
        let (p, _) = prepare_tracked(&case.chunk);
        assert_eq!(
            p.decode.malformed, case.malformed,
            "{tag}: prepare counts malformed events ({:?})",
            p.decode
        );
        assert_eq!(
            p.records.len(),
            case.lines.len(),
            "{tag}: prepare's record count"
        );
        let ins = rig.instance(stream);
        let code = flush(&ins, &case.chunk, tag);
        assert_eq!(code, case.code, "{tag}: flush code");
        assert_eq!(
            sorted(rig.lines(stream)),
            sorted(case.lines.clone()),
            "{tag}: delivered lines (each good record exactly once)"
        );
        if case.malformed > 0 {
            assert_malformed_logged(tag, case.malformed);
        } else {
            assert_nothing_malformed_logged(tag);
        }
        if code == FLB_ERROR {
            let needle = format!("tag {tag}: nothing in the chunk can be delivered");
            assert!(
                !flb_host::logs_containing(&needle).is_empty(),
                "{tag}: FLB_ERROR without its reason in the log"
            );
        }
        ins.exit();
    }
}

/// Where each top-level msgpack object of `buf` ends (independent of the plugin's lexer).
fn object_ends(buf: &[u8]) -> Vec<usize> {
    fn be(buf: &[u8], p: usize, n: usize) -> usize {
        buf[p..p + n].iter().fold(0, |a, &b| (a << 8) | b as usize)
    }
    let mut ends = Vec::new();
    let mut p = 0;
    while p < buf.len() {
        let mut pending = 1usize;
        while pending > 0 {
            pending -= 1;
            let m = buf[p];
            p += 1;
            match m {
                0x80..=0x8f => pending += 2 * (m & 0xf) as usize,
                0x90..=0x9f => pending += (m & 0xf) as usize,
                0xa0..=0xbf => p += (m & 0x1f) as usize,
                0xc4 | 0xd9 => p += 1 + be(buf, p, 1),
                0xc5 | 0xda => p += 2 + be(buf, p, 2),
                0xc6 | 0xdb => p += 4 + be(buf, p, 4),
                0xc7 => p += 2 + be(buf, p, 1),
                0xc8 => p += 3 + be(buf, p, 2),
                0xc9 => p += 5 + be(buf, p, 4),
                0xca => p += 4,
                0xcb => p += 8,
                0xcc | 0xd0 => p += 1,
                0xcd | 0xd1 => p += 2,
                0xce | 0xd2 => p += 4,
                0xcf | 0xd3 => p += 8,
                0xd4 => p += 2,
                0xd5 => p += 3,
                0xd6 => p += 5,
                0xd7 => p += 9,
                0xd8 => p += 17,
                0xdc => {
                    pending += be(buf, p, 2);
                    p += 2
                }
                0xdd => {
                    pending += be(buf, p, 4);
                    p += 4
                }
                0xde => {
                    pending += 2 * be(buf, p, 2);
                    p += 2
                }
                0xdf => {
                    pending += 2 * be(buf, p, 4);
                    p += 4
                }
                _ => {}
            }
        }
        ends.push(p);
    }
    assert_eq!(p, buf.len(), "sample is whole msgpack");
    ends
}

/// Whether the v2 event at `start` is a group marker (EventTime seconds -1 / -2).
fn is_marker(buf: &[u8], start: usize) -> bool {
    buf[start..].starts_with(&[0x92, 0x92, 0xd7, 0x00, 0xff, 0xff, 0xff])
        && matches!(buf[start + 7], 0xfe | 0xff)
}

fn sample(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/samples")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------------------

/// Every prefix of the small real samples, through the plugin: the whole events before
/// the cut are delivered exactly once, the cut event counts as one malformed event.
#[test]
fn every_prefix_of_the_small_samples() {
    let _g = shared();
    let samples = [
        "dummy_chunk.msgpack",
        "dummy_chunk_multi_meta.msgpack",
        "handmade_groups_and_legacy.msgpack",
    ];
    let rig = Rig::new(&["trunc-0", "trunc-1", "trunc-2"]);
    for (si, name) in samples.iter().enumerate() {
        let data = sample(name);
        let ends = object_ends(&data);
        let starts: Vec<usize> = std::iter::once(0)
            .chain(ends.iter().copied())
            .take(ends.len())
            .collect();
        let stream = format!("trunc-{si}");
        let ins = rig.instance(&stream);
        let mut delivered = 0;
        let mut first_cut_checked = false;
        for len in 0..=data.len() {
            let prefix = &data[..len];
            let whole = ends.iter().filter(|&&e| e <= len).count();
            let records = (0..whole).filter(|&i| !is_marker(&data, starts[i])).count();
            let cut = !ends.contains(&len) && len > 0;
            let tag = format!("hostile.trunc.{si}.{len}");

            let (p, _) = prepare_tracked(prefix);
            assert_eq!(p.records.len(), records, "{tag}: records");
            assert_eq!(p.decode.malformed, cut as usize, "{tag}: malformed");

            // Whole events only (or nothing at all): nothing undeliverable in it.
            let want = if records > 0 || !cut {
                FLB_OK
            } else {
                FLB_ERROR
            };
            assert_eq!(flush(&ins, prefix, &tag), want, "{tag}: code");
            let lines = rig.lines(&stream);
            assert_eq!(lines.len(), delivered + records, "{tag}: delivered once");
            for l in &lines[delivered..] {
                serde_json::from_str::<serde_json::Value>(l).expect("a JSON record");
            }
            delivered = lines.len();
            if cut && !first_cut_checked {
                // Later lines of this instance are held back (one per 10 s).
                assert_malformed_logged(&tag, 1);
                first_cut_checked = true;
            }
        }
        assert!(first_cut_checked);
        ins.exit();
    }
}

/// The 1.7 MB Kubernetes sample: every prefix inside its first three events in-process,
/// and cuts all over it through the plugin (each delivering `seq` 0..k exactly once).
#[test]
fn prefixes_of_the_kubernetes_sample() {
    let _g = shared();
    let data = sample("k8s_tail_chunk.msgpack");
    let ends = object_ends(&data);
    assert_eq!(ends.len(), 2000);
    for len in 0..=ends[2] + 1 {
        let (p, largest) = prepare_tracked(&data[..len]);
        let whole = ends.iter().filter(|&&e| e <= len).count();
        assert_eq!(p.records.len(), whole, "prefix {len}");
        assert_eq!(
            p.decode.malformed,
            (len > 0 && !ends.contains(&len)) as usize
        );
        assert!(
            largest <= 4 * len + 64 * 1024,
            "prefix {len}: allocated {largest}"
        );
    }

    let rig = Rig::new(&["k8s"]);
    let ins = rig.instance("k8s");
    // Fixed pseudo-random cuts, plus cuts one byte around event boundaries and the whole.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut cuts: Vec<usize> = (0..12)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % data.len() as u64) as usize
        })
        .collect();
    for i in [0usize, 1, 999, 1998] {
        cuts.extend([ends[i] - 1, ends[i], ends[i] + 1]);
    }
    cuts.push(data.len());
    let mut seen = 0;
    for (n, &len) in cuts.iter().enumerate() {
        let tag = format!("hostile.k8s.{n}.{len}");
        let whole = ends.iter().filter(|&&e| e <= len).count();
        let code = flush(&ins, &data[..len], &tag);
        assert_eq!(code, if whole > 0 { FLB_OK } else { FLB_ERROR }, "{tag}");
        let lines = rig.lines("k8s");
        let mut seqs: Vec<u64> = lines[seen..]
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON record");
                v["seq"].as_u64().expect("seq")
            })
            .collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (0..whole as u64).collect::<Vec<_>>(),
            "{tag}: seq 0..{whole} once"
        );
        seen = lines.len();
    }
    ins.exit();
}

// ---------------------------------------------------------------------------------------
// Wrong types, extra elements, markers
// ---------------------------------------------------------------------------------------

/// `[TS, BODY]` (legacy) with a raw TIMESTAMP.
fn legacy_raw(ts: &[u8], body: &[u8]) -> Vec<u8> {
    let mut b = vec![0x92];
    b.extend_from_slice(ts);
    b.extend_from_slice(body);
    b
}

/// `[[TS, {}], BODY]` with a raw TIMESTAMP.
fn v2_raw_ts(ts: &[u8], body: &[u8]) -> Vec<u8> {
    let mut b = vec![0x92, 0x92];
    b.extend_from_slice(ts);
    b.push(0x80);
    b.extend_from_slice(body);
    b
}

fn ext(ty: i8, data: &[u8]) -> Vec<u8> {
    MsgValue::Ext(ty, data.to_vec()).encode()
}

/// The events that are not log records, each of which must count as one malformed event
/// whose extent is known (decoding goes on after it).
fn wrong_type_events() -> Vec<(&'static str, Vec<u8>)> {
    let ok_body = body_kv("k", MsgValue::str("v"));
    let mut t = Vec::new();
    for (what, ts) in [
        ("ts-str", MsgValue::str("1700000000").encode()),
        ("ts-bin", MsgValue::Bin(b"1700000000".to_vec()).encode()),
        ("ts-true", MsgValue::Bool(true).encode()),
        ("ts-nil", MsgValue::Nil.encode()),
        ("ts-neg", MsgValue::Int(-7).encode()),
        ("ts-i64min", MsgValue::Int(i64::MIN).encode()),
        ("ts-u64max", MsgValue::Uint(u64::MAX).encode()),
        ("ts-nan", MsgValue::F64(f64::NAN).encode()),
        ("ts-inf", MsgValue::F64(f64::INFINITY).encode()),
        ("ts-neginf", MsgValue::F32(f32::NEG_INFINITY).encode()),
        ("ts-negfloat", MsgValue::F64(-0.5).encode()),
        ("ts-hugefloat", MsgValue::F64(1e300).encode()),
        ("ts-nsec-1e9", {
            let mut e = vec![0xd7, 0x00];
            e.extend_from_slice(&T0.to_be_bytes());
            e.extend_from_slice(&1_000_000_000u32.to_be_bytes());
            e
        }),
        ("ts-ext0-len4", ext(0, &T0.to_be_bytes())),
        ("ts-ext0-len12", ext(0, &[0; 12])),
        ("ts-ext1-len8", ext(1, &[0, 0, 0, 1, 0, 0, 0, 0])),
        ("ts-ext-minus1", ext(-1, &T0.to_be_bytes())),
        ("ts-empty-map", vec![0x80]),
        ("ts-empty-array", vec![0x90]),
    ] {
        t.push((what, legacy_raw(&ts, &ok_body)));
        t.push((what, v2_raw_ts(&ts, &ok_body)));
    }
    let ts = EventTime::new(T0 as i64, 0).encode();
    for (what, body) in [
        (
            "body-array",
            MsgValue::Array(vec![MsgValue::str("x")]).encode(),
        ),
        ("body-int", MsgValue::Int(42).encode()),
        ("body-nil", MsgValue::Nil.encode()),
        ("body-str", MsgValue::str("message").encode()),
        ("body-bin", MsgValue::Bin(vec![0x81, 0xa1, b'k']).encode()),
        ("body-ext", ext(5, &[0x80])),
        ("body-float", MsgValue::F64(f64::NAN).encode()),
    ] {
        t.push((what, legacy_raw(&ts, &body)));
        t.push((what, v2_raw_ts(&ts, &body)));
    }
    let mut ev_map = vec![0x82, 0xa4];
    ev_map.extend_from_slice(b"time");
    ev_map.extend_from_slice(&ts);
    ev_map.extend_from_slice(&[0xa4]);
    ev_map.extend_from_slice(b"body");
    ev_map.extend_from_slice(&ok_body);
    t.push(("event-map", ev_map));
    t.push(("event-str", MsgValue::str("not an event").encode()));
    t.push(("event-nil", vec![0xc0]));
    t.push(("event-int", vec![0x07]));
    t.push(("event-empty-array", vec![0x90]));
    t.push(("event-array1", {
        let mut b = vec![0x91];
        b.extend_from_slice(&ts);
        b
    }));
    // [[ts, {}], body, extra] and [ts, body, extra]: an event has exactly two elements
    t.push(("event-extra-v2", {
        let mut b = vec![0x93, 0x92];
        b.extend_from_slice(&ts);
        b.push(0x80);
        b.extend_from_slice(&ok_body);
        b.push(0xc0);
        b
    }));
    t.push(("event-extra-legacy", {
        let mut b = vec![0x93];
        b.extend_from_slice(&ts);
        b.extend_from_slice(&ok_body);
        b.extend_from_slice(&ok_body);
        b
    }));
    // [[], body]: v2 header without a timestamp
    t.push(("v2-no-ts", {
        let mut b = vec![0x92, 0x90];
        b.extend_from_slice(&ok_body);
        b
    }));
    t
}

#[test]
fn wrong_types_alone_answer_error_and_are_counted() {
    let cases = wrong_type_events()
        .into_iter()
        .enumerate()
        .map(|(i, (what, ev))| Case::new(&format!("alone.{i}.{what}"), ev, FLB_ERROR, vec![], 1))
        .collect();
    run_cases("alone", cases);
}

#[test]
fn wrong_types_among_good_events_ship_the_good_ones_once() {
    let bad = wrong_type_events();
    let mut chunk = Vec::new();
    let mut lines = Vec::new();
    for (i, (_, ev)) in bad.iter().enumerate() {
        let (g, l) = good(i as u64);
        chunk.extend_from_slice(&g);
        lines.push(l);
        chunk.extend_from_slice(ev);
    }
    let (g, l) = good(bad.len() as u64);
    chunk.extend_from_slice(&g);
    lines.push(l);
    run_cases(
        "mixed",
        vec![Case::new("mixed.all", chunk, FLB_OK, lines, bad.len())],
    );
}

#[test]
fn extra_metadata_elements_and_odd_but_valid_events_are_records() {
    let body = body_kv("k", MsgValue::str("v"));
    let line = r#"{"k":"v"}"#.to_string();
    let ts = EventTime::new(T0 as i64, 0).encode();
    // [[ts, {}, "extra", [1,2]], body]: extra metadata elements are skipped
    let mut extra_meta = vec![0x92, 0x94];
    extra_meta.extend_from_slice(&ts);
    extra_meta.extend_from_slice(&[0x80, 0xa5]);
    extra_meta.extend_from_slice(b"extra");
    extra_meta.extend_from_slice(&[0x92, 0x01, 0x02]);
    extra_meta.extend_from_slice(&body);
    // [[ts], body]: no metadata
    let mut no_meta = vec![0x92, 0x91];
    no_meta.extend_from_slice(&ts);
    no_meta.extend_from_slice(&body);
    // metadata that is not a map (ignored, not shipped)
    let mut meta_int = vec![0x92, 0x92];
    meta_int.extend_from_slice(&ts);
    meta_int.push(0x07);
    meta_int.extend_from_slice(&body);
    // timestamps: integer, float, -0.0, largest accepted float, zero, i64::MAX
    let mut timestamps = Vec::new();
    for ts in [
        MsgValue::Uint(0).encode(),
        MsgValue::Int(1_700_000_000).encode(),
        MsgValue::F64(1_700_000_000.25).encode(),
        MsgValue::F32(12.5).encode(),
        MsgValue::F64(-0.0).encode(),
        MsgValue::F64(1.0e15).encode(),
        MsgValue::Uint(i64::MAX as u64).encode(),
        // non-minimal encodings: uint64 / int64 markers for a small value
        vec![0xcf, 0, 0, 0, 0, 0, 0, 0, 9],
        vec![0xd3, 0, 0, 0, 0, 0, 0, 0, 9],
    ] {
        timestamps.extend(legacy_raw(&ts, &body));
        timestamps.extend(v2_raw_ts(&ts, &body));
    }
    let mut empty_body = v2(&[0x80]);
    empty_body.extend(v2(&[0xde, 0, 0]));
    empty_body.extend(v2(&[0xdf, 0, 0, 0, 0]));
    run_cases(
        "oddvalid",
        vec![
            Case::new("odd.extra-meta", extra_meta, FLB_OK, vec![line.clone()], 0),
            Case::new("odd.no-meta", no_meta, FLB_OK, vec![line.clone()], 0),
            Case::new("odd.meta-int", meta_int, FLB_OK, vec![line.clone()], 0),
            Case::new("odd.timestamps", timestamps, FLB_OK, vec![line; 18], 0),
            Case::new(
                "odd.empty-bodies",
                empty_body,
                FLB_OK,
                vec!["{}".into(); 3],
                0,
            ),
        ],
    );
}

#[test]
fn group_markers_only_answer_ok_and_ship_nothing() {
    let mut otel = ChunkBuilder::new();
    otel.push_group_start(
        &serde_json::json!({"schema": "otlp"}),
        &serde_json::json!({"resource": {"a": 1}}),
    )
    .push_group_end();
    // -1 / -2 as integers, v2 and legacy, one with a body that is not a map
    let mut ints = Vec::new();
    ints.extend(v2_raw_ts(&[0xff], &[0x80]));
    ints.extend(v2_raw_ts(&[0xfe], &[0x80]));
    ints.extend(legacy_raw(&[0xff], &[0x80]));
    ints.extend(legacy_raw(
        &[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
        &[0x07],
    ));
    let mut markers_and_bad = otel.to_vec();
    markers_and_bad.extend(MsgValue::str("junk").encode());
    let (g, l) = good(1);
    let mut markers_and_good = otel.to_vec();
    markers_and_good.extend(&g);
    run_cases(
        "markers",
        vec![
            Case::new("markers.otel", otel.finish(), FLB_OK, vec![], 0),
            Case::new("markers.ints", ints, FLB_OK, vec![], 0),
            Case::new("markers.and-bad", markers_and_bad, FLB_ERROR, vec![], 1),
            Case::new("markers.and-good", markers_and_good, FLB_OK, vec![l], 0),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Lying lengths and memory
// ---------------------------------------------------------------------------------------

/// 20-byte chunks whose headers claim 4 GiB (or 4 billion items), in every position.
fn lying_chunks() -> Vec<(String, Vec<u8>)> {
    let heads: [(&str, Vec<u8>); 10] = [
        ("str32", vec![0xdb, 0xff, 0xff, 0xff, 0xff]),
        ("bin32", vec![0xc6, 0xff, 0xff, 0xff, 0xff]),
        ("ext32", vec![0xc9, 0xff, 0xff, 0xff, 0xff, 0x00]),
        ("array32", vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        ("map32", vec![0xdf, 0xff, 0xff, 0xff, 0xff]),
        ("str16", vec![0xda, 0xff, 0xff]),
        ("bin16", vec![0xc5, 0xff, 0xff]),
        ("ext16", vec![0xc8, 0xff, 0xff, 0x01]),
        ("array16", vec![0xdc, 0xff, 0xff]),
        ("map16", vec![0xde, 0xff, 0xff]),
    ];
    let ts = EventTime::new(T0 as i64, 0).encode();
    let mut out = Vec::new();
    for (name, h) in heads {
        let positions: [(&str, Vec<u8>); 6] = [
            ("object", h.clone()),
            ("timestamp", [&[0x92u8][..], &h].concat()),
            ("v2-timestamp", [&[0x92u8, 0x92][..], &h].concat()),
            ("metadata", [&[0x92u8, 0x92][..], &ts, &h].concat()),
            ("body", [&[0x92u8, 0x92][..], &ts, &[0x80], &h].concat()),
            (
                "value",
                [&[0x92u8, 0x92][..], &ts, &[0x80, 0x81, 0xa1, b'k'], &h].concat(),
            ),
        ];
        for (pos, mut c) in positions {
            // pad to 20 bytes with nils (so counts and lengths are all but satisfied)
            c.resize(20.max(c.len()), 0xc0);
            out.push((format!("{name}.{pos}"), c));
        }
    }
    out
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

#[test]
fn declared_lengths_beyond_the_buffer_allocate_nothing() {
    // Alone in the process (no test runs beside it) so the peaks are this test's.
    let _x = exclusive();
    let chunks = lying_chunks();
    // In-process: no single allocation beyond a small constant for a 20-byte chunk.
    for (name, c) in &chunks {
        let (p, largest) = prepare_tracked(c);
        assert_eq!(p.records.len(), 0, "{name}");
        assert_eq!(p.decode.malformed, 1, "{name}: one malformed event");
        assert!(
            largest < 64 * 1024,
            "{name}: allocated {largest} bytes at once"
        );
    }
    let rig = Rig::new(&["lie", "lie-good"]);
    let ins = rig.instance("lie");
    let ins_good = rig.instance("lie-good");
    // Warm up (runtime, client, first connection) before measuring.
    let (g, gl) = good(0);
    assert_eq!(flush(&ins, &g, "hostile.lie.warmup"), FLB_OK);
    // Reset the peak RSS to the current RSS where the kernel allows it (Linux >= 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let hwm0 = status_kib("VmHWM:");
    let peak0 = status_kib("VmPeak:");
    for (i, (name, c)) in chunks.iter().enumerate() {
        let tag = format!("hostile.lie.{i}.{name}");
        assert_eq!(flush(&ins, c, &tag), FLB_ERROR, "{tag}");
        let r = ins.flush_coro(c, &format!("{tag}.coro"));
        assert_eq!(r.code, FLB_ERROR, "{tag} (coroutine)");
        assert!(!r.stack_overflowed, "{tag}: coroutine stack overflow");
        // After a good event: the good one ships, the lie counts as one malformed event.
        let mut chunk = good(i as u64 + 1).0;
        chunk.extend_from_slice(c);
        assert_eq!(
            flush(&ins_good, &chunk, &format!("{tag}.after-good")),
            FLB_OK
        );
    }
    let hwm1 = status_kib("VmHWM:");
    let peak1 = status_kib("VmPeak:");
    eprintln!(
        "lying lengths: {} chunks x 3 flushes; VmHWM {hwm0} -> {hwm1} KiB (+{} KiB, peak reset: {reset}); VmPeak {peak0} -> {peak1} KiB (+{} KiB)",
        chunks.len(),
        hwm1 - hwm0,
        peak1 - peak0
    );
    assert!(
        hwm1 - hwm0 < 64 * 1024,
        "peak RSS grew by {} KiB",
        hwm1 - hwm0
    );
    // A reservation following a 4 GiB header would show in the virtual peak even untouched.
    assert!(
        peak1 - peak0 < 1024 * 1024,
        "peak virtual size grew by {} KiB",
        peak1 - peak0
    );
    assert_malformed_logged(&format!("hostile.lie.0.{}", chunks[0].0), 1);
    let lines = rig.lines("lie-good");
    assert_eq!(lines.len(), chunks.len());
    assert_eq!(rig.lines("lie"), vec![gl]);
    ins.exit();
    ins_good.exit();
}

// ---------------------------------------------------------------------------------------
// Deep nesting, on the coroutine stack
// ---------------------------------------------------------------------------------------

const DEPTH: usize = 10_000;

/// `{"deep": [[[...1...]]]}` and the line it becomes.
fn deep_arrays() -> (Vec<u8>, String) {
    let mut b = vec![0x81, 0xa4];
    b.extend_from_slice(b"deep");
    b.extend(std::iter::repeat_n(0x91, DEPTH));
    b.push(0x01);
    let line = format!("{{\"deep\":{}1{}}}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    (v2(&b), line)
}

/// `{"a":{"a":...{"a":null}...}}` and its line.
fn deep_maps() -> (Vec<u8>, String) {
    let mut b = Vec::new();
    for _ in 0..DEPTH {
        b.extend_from_slice(&[0x81, 0xa1, b'a']);
    }
    b.push(0xc0);
    let line = format!("{}null{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    (v2(&b), line)
}

fn base64(d: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// The JSON text `{"<key>":1}`.
fn wrap_one(key: &str) -> String {
    format!("{{{}:1}}", serde_json::to_string(key).expect("json string"))
}

/// A key that is a 10,000-deep array: its text (20 KB) is over the 4 KiB key limit, so the
/// key becomes base64 of its msgpack bytes.
fn deep_array_key() -> (Vec<u8>, String) {
    let mut key = vec![0x91; DEPTH - 1];
    key.push(0x90);
    let mut b = vec![0x81];
    b.extend(&key);
    b.push(0x01);
    (v2(&b), wrap_one(&base64(&key)))
}

/// Map keys nested inside map keys 10,000 deep: the map at the fourth level of keys becomes
/// base64 of its msgpack bytes (each level would re-escape and recurse); that text is over
/// the 4 KiB key limit, and so on outwards, so the outermost key is base64 of its bytes.
fn deep_key_in_key() -> (Vec<u8>, String) {
    // maps whose only key is the next map
    let mut b = vec![0x81; DEPTH];
    b.extend_from_slice(&[0x80, 0x01]); // innermost key {} with value 1
    b.extend(std::iter::repeat_n(0x01, DEPTH - 1)); // the values of the outer levels
                                                    // The outermost key: everything but the body's own header and value.
    let key = &b[1..b.len() - 1];
    let line = wrap_one(&base64(key));
    (v2(&b), line)
}

/// Deep nesting where it is skipped: in the metadata, and as a non-event object.
fn deep_skipped() -> Vec<u8> {
    let mut meta = Vec::new();
    meta.extend(std::iter::repeat_n(0x91, DEPTH));
    meta.push(0xc0);
    let mut c = ChunkBuilder::new();
    c.push_v2_raw(
        EventTime::new(T0 as i64, 0),
        &meta,
        &body_kv("k", MsgValue::str("v")),
    );
    c.push_raw(&meta);
    c.finish()
}

#[test]
fn deep_nesting_on_the_coroutine_stack() {
    let _g = shared();
    let rig = Rig::new(&["deep"]);
    let (arrays, arrays_line) = deep_arrays();
    let (maps, maps_line) = deep_maps();
    let (akey, akey_line) = deep_array_key();
    let (kkey, kkey_line) = deep_key_in_key();
    let mut all = arrays.clone();
    all.extend(&maps);
    all.extend(&akey);
    all.extend(&kkey);
    all.extend(deep_skipped());
    let lines = vec![
        arrays_line,
        maps_line,
        akey_line,
        kkey_line,
        r#"{"k":"v"}"#.to_string(),
    ];

    // In-process on a thread with a 64 KiB stack: nothing recurses over the depth.
    let chunk = all.clone();
    let p = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || prepare(&EncodeOptions::default(), &chunk))
        .expect("thread")
        .join()
        .expect("prepare on a 64 KiB stack");
    assert_eq!(p.records.len(), 5);
    assert_eq!(p.decode.malformed, 1, "the bare object");

    let tag = "hostile.deep.all";
    let ins = rig.instance("deep");
    let r = ins.flush_coro(&all, tag);
    no_panic_logged(tag);
    eprintln!(
        "deep nesting ({} bytes): coroutine stack used {:?} of {} bytes",
        all.len(),
        r.stack_used_bytes,
        r.stack_size
    );
    assert_eq!(r.code, FLB_OK);
    assert!(!r.stack_overflowed, "coroutine stack overflow");
    assert!(r.stack_used_bytes.expect("measured") < 32 * 1024);
    assert_eq!(sorted(rig.lines("deep")), sorted(lines));
    assert_malformed_logged(tag, 1);
    ins.exit();
}

// ---------------------------------------------------------------------------------------
// Strings, keys, floats, exts
// ---------------------------------------------------------------------------------------

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let bad: [&[u8]; 7] = [
        b"\xff",
        b"ab\xc3(",
        b"\xed\xa0\x80 surrogate",
        b"\xc0\xaf overlong",
        b"tail \xe2\x82",
        b"\xf4\x90\x80\x80 beyond U+10FFFF",
        b"ok \xe2\x82\xac \"quoted\" \\ \n\t\x01",
    ];
    let mut entries = Vec::new();
    let mut want = serde_json::Map::new();
    for (i, b) in bad.iter().enumerate() {
        let mut key = format!("k{i}").into_bytes();
        key.extend_from_slice(b);
        entries.push((
            MsgValue::StrBytes(key.clone()),
            MsgValue::StrBytes(b.to_vec()),
        ));
        want.insert(
            String::from_utf8_lossy(&key).into_owned(),
            String::from_utf8_lossy(b).into_owned().into(),
        );
    }
    let chunk = v2(&MsgValue::Map(entries).encode());
    let (p, _) = prepare_tracked(&chunk);
    let got: serde_json::Value =
        serde_json::from_slice(p.records.get(0)).expect("valid JSON despite invalid UTF-8");
    assert_eq!(got, serde_json::Value::Object(want.clone()));
    let line = std::str::from_utf8(&p.records.get(0)[..p.records.get(0).len() - 1])
        .expect("UTF-8")
        .to_string();
    run_cases(
        "utf8",
        vec![Case::new("utf8.mixed", chunk, FLB_OK, vec![line], 0)],
    );
}

#[test]
fn huge_keys_ship_when_they_fit_and_are_dropped_with_a_count_when_not() {
    let _g = shared();
    let rig = Rig::new(&["huge"]);
    let ins = rig.instance("huge");
    // 1 MiB key: over Firehose's 1,000 KiB record limit.
    let huge = "k".repeat(1 << 20);
    let big = v2(&body_kv(&huge, MsgValue::Uint(1)));
    // 600 KB of quotes: under the limit as msgpack, over it once escaped.
    let quotes = "\"".repeat(600_000);
    let escaped = v2(&body_kv(&quotes, MsgValue::Uint(1)));
    // 900 KB key: fits.
    let fits_key = "f".repeat(900_000);
    let fits = v2(&body_kv(&fits_key, MsgValue::Uint(1)));
    let (g, gl) = good(7);

    let tag = "hostile.huge.alone";
    let r = ins.flush_coro(&big, tag);
    no_panic_logged(tag);
    eprintln!(
        "1 MiB key: coroutine stack used {:?} bytes",
        r.stack_used_bytes
    );
    assert_eq!(r.code, FLB_ERROR, "a record that can never be sent");
    assert!(!r.stack_overflowed);
    assert!(r.stack_used_bytes.expect("measured") < 32 * 1024);
    assert!(
        !flb_host::logs_containing(&format!(
            "tag {tag}: dropped 1 record(s) larger than Firehose's limit"
        ))
        .is_empty(),
        "the oversize record is counted in the log"
    );

    let mut mixed = big.clone();
    mixed.extend(&g);
    mixed.extend(&escaped);
    mixed.extend(&fits);
    let tag = "hostile.huge.mixed";
    let r = ins.flush_coro(&mixed, tag);
    no_panic_logged(tag);
    assert_eq!(r.code, FLB_OK);
    assert!(!r.stack_overflowed);
    assert!(r.stack_used_bytes.expect("measured") < 32 * 1024);
    let lines = rig.lines("huge");
    assert_eq!(
        sorted(lines),
        sorted(vec![gl, format!("{{\"{fits_key}\":1}}")])
    );
    let (p, _) = prepare_tracked(&mixed);
    assert_eq!((p.records.len(), p.oversize), (2, 2));
    ins.exit();
}

#[test]
fn nan_and_infinite_floats_become_null() {
    let body = MsgValue::str_map(vec![
        ("nan", MsgValue::F64(f64::NAN)),
        ("inf", MsgValue::F64(f64::INFINITY)),
        ("ninf", MsgValue::F64(f64::NEG_INFINITY)),
        ("nan32", MsgValue::F32(f32::NAN)),
        ("inf32", MsgValue::F32(f32::INFINITY)),
        ("neg_nan", MsgValue::F64(-f64::NAN)),
        (
            "in_array",
            MsgValue::Array(vec![MsgValue::F64(f64::NAN), MsgValue::F64(1.5)]),
        ),
        ("max", MsgValue::F64(f64::MAX)),
        ("tiny", MsgValue::F64(5e-324)),
        ("negzero", MsgValue::F64(-0.0)),
    ]);
    // NaN as a key: its JSON text, "null"
    let key_nan = MsgValue::map(vec![(MsgValue::F64(f64::NAN), MsgValue::Uint(1))]);
    let mut chunk = v2(&body.encode());
    chunk.extend(v2(&key_nan.encode()));
    let lines = vec![
        r#"{"nan":null,"inf":null,"ninf":null,"nan32":null,"inf32":null,"neg_nan":null,"in_array":[null,1.5],"max":1.7976931348623157e308,"tiny":5e-324,"negzero":-0.0}"#.to_string(),
        r#"{"null":1}"#.to_string(),
    ];
    run_cases(
        "floats",
        vec![Case::new("floats.nan-inf", chunk, FLB_OK, lines, 0)],
    );
}

#[test]
fn exts_of_any_length_are_base64_and_eventtime_a_number() {
    let b64 = |d: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(d)
    };
    let mut entries = Vec::new();
    let mut want = Vec::new();
    for (i, (ty, len)) in [
        (1i8, 1usize),
        (2, 2),
        (3, 4),
        (4, 16),
        (5, 0),
        (6, 3),
        (7, 5),
        (8, 7),
        (9, 9),
        (10, 255),
        (11, 256),
        (12, 70_000),
        (-1, 4),
        (-1, 12),
        (0, 4),
        (0, 12),
        (-128, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
        let k = format!("e{i}");
        want.push(format!("\"{k}\":\"{}\"", b64(&data)));
        entries.push((MsgValue::Str(k), MsgValue::Ext(ty, data)));
    }
    // EventTime (type 0, 8 bytes) as a value: seconds.nanoseconds; as a key: its text.
    let mut et = T0.to_be_bytes().to_vec();
    et.extend_from_slice(&5u32.to_be_bytes());
    entries.push((MsgValue::str("t"), MsgValue::Ext(0, et.clone())));
    want.push(format!("\"t\":{T0}.000000005"));
    entries.push((MsgValue::Ext(0, et), MsgValue::Bool(true)));
    want.push(format!("\"{T0}.000000005\":true"));
    // ext32 with a 3-byte payload, written by hand
    let mut raw32 = vec![0xc9, 0, 0, 0, 3, 0x21, b'a', b'b', b'c'];
    entries.push((
        MsgValue::str("e32"),
        MsgValue::Raw(std::mem::take(&mut raw32)),
    ));
    want.push(format!("\"e32\":\"{}\"", b64(b"abc")));
    let chunk = v2(&MsgValue::Map(entries).encode());
    let line = format!("{{{}}}", want.join(","));
    run_cases(
        "exts",
        vec![Case::new("exts.odd", chunk, FLB_OK, vec![line], 0)],
    );
}

// ---------------------------------------------------------------------------------------
// Broken msgpack
// ---------------------------------------------------------------------------------------

#[test]
fn c1_markers_stop_decoding_and_count_once() {
    let (g0, l0) = good(0);
    let (g1, _) = good(1);
    let mut between = g0.clone();
    between.push(0xc1);
    between.extend(&g1);
    let mut in_body = g0.clone();
    in_body.extend(v2(&[0x81, 0xa1, b'k', 0xc1]));
    in_body.extend(&g1);
    run_cases(
        "c1",
        vec![
            Case::new("c1.alone", vec![0xc1], FLB_ERROR, vec![], 1),
            Case::new("c1.many", vec![0xc1; 20], FLB_ERROR, vec![], 1),
            Case::new(
                "c1.as-ts",
                legacy_raw(&[0xc1], &[0x80]),
                FLB_ERROR,
                vec![],
                1,
            ),
            // Broken msgpack has no next event to resume at: the rest of the chunk counts
            // as one malformed event (g1 after it is not recovered).
            Case::new("c1.between", between, FLB_OK, vec![l0.clone()], 1),
            Case::new("c1.in-body", in_body, FLB_OK, vec![l0], 1),
        ],
    );
}

#[test]
fn empty_and_null_inputs() {
    let _g = shared();
    let rig = Rig::new(&["null"]);
    let (g, gl) = good(3);

    let ins = rig.instance("null");
    // An empty chunk has nothing to deliver: done.
    assert_eq!(flush(&ins, &[], "hostile.null.empty"), FLB_OK);
    let tag = CString::new("hostile.null.size0").unwrap();
    // SAFETY: `g` is readable for 0 bytes; the tag is NUL-terminated.
    let code = unsafe { ins.flush_raw(g.as_ptr(), 0, tag.as_ptr()) };
    assert_eq!(code, FLB_OK);
    let tag = CString::new("hostile.null.data").unwrap();
    // SAFETY: NULL data; the plugin must not read it whatever the size.
    let code = unsafe { ins.flush_raw(std::ptr::null(), 100, tag.as_ptr()) };
    assert_eq!(code, FLB_ERROR);
    // SAFETY: NULL data, size 0, NULL tag.
    let code = unsafe { ins.flush_raw(std::ptr::null(), 0, std::ptr::null()) };
    assert_eq!(code, FLB_OK);
    // NULL tag with good data: delivered (the tag is only used in log lines).
    // SAFETY: `g` is readable for its length.
    let code = unsafe { ins.flush_raw(g.as_ptr(), g.len(), std::ptr::null()) };
    assert_eq!(code, FLB_OK);
    assert_eq!(rig.lines("null"), vec![gl]);
    for tag in [
        "hostile.null.empty",
        "hostile.null.size0",
        "hostile.null.data",
    ] {
        no_panic_logged(tag);
    }
    // No error line for an empty chunk.
    assert!(flb_host::logs_containing("tag hostile.null.empty:").is_empty());

    // NULL context, called the way Fluent Bit calls it.
    type FlushCtx = unsafe extern "C" fn(*mut c_void, *const c_void, usize, *const c_char) -> c_int;
    let sym = rig
        .plugin
        .symbol("FLBPluginFlushCtx")
        .expect("FLBPluginFlushCtx is exported");
    // SAFETY: the exported symbol has exactly this C signature (docs: the proxy ABI).
    let flush_ctx: FlushCtx = unsafe { std::mem::transmute::<*mut c_void, FlushCtx>(sym) };
    let tag = CString::new("hostile.null.ctx").unwrap();
    // SAFETY: NULL context must be refused before anything is read; the rest is valid.
    let code = unsafe {
        flush_ctx(
            std::ptr::null_mut(),
            g.as_ptr().cast(),
            g.len(),
            tag.as_ptr(),
        )
    };
    assert_eq!(code, FLB_ERROR);
    // SAFETY: all NULL.
    let code = unsafe { flush_ctx(std::ptr::null_mut(), std::ptr::null(), 0, std::ptr::null()) };
    assert_eq!(code, FLB_ERROR);
    // The instance is still fine afterwards.
    assert_eq!(flush(&ins, &good(4).0, "hostile.null.after"), FLB_OK);
    assert_eq!(rig.lines("null").len(), 2);
    ins.exit();
}

// ---------------------------------------------------------------------------------------
// Regressions: bugs these tests and the fuzzer found (see docs/reliability.md)
// ---------------------------------------------------------------------------------------

/// A TIMESTAMP that is a map or an array is one malformed event: its contents must not be
/// read as the rest of the event, nor as events of their own.
///
/// Found while writing these tests and by the `decode_encode` fuzz target (oracle
/// mismatch in its first second). Before the fix (commit 042ba9e: `Decoder::event` skips a
/// container timestamp whole) the map below shipped a phantom record `{"evil":"yes"}` and
/// answered FLB_OK instead of FLB_ERROR.
#[test]
fn regression_container_timestamp_is_one_malformed_event() {
    let body = body_kv("k", MsgValue::str("v"));
    // {"x": [1, {"evil": "yes"}]}: a map whose value looks like a legacy event
    let ts_map = MsgValue::str_map(vec![(
        "x",
        MsgValue::Array(vec![
            MsgValue::Uint(1),
            MsgValue::str_map(vec![("evil", MsgValue::str("yes"))]),
        ]),
    )])
    .encode();
    // [1, {"evil": "yes"}] itself as the timestamp array
    let ts_arr = MsgValue::Array(vec![
        MsgValue::Uint(1),
        MsgValue::str_map(vec![("evil", MsgValue::str("yes"))]),
    ])
    .encode();
    // A lying array32 / map32 as the timestamp: the object is truncated, one malformed
    let mut lie_arr = vec![0x92, 0xdd, 0xff, 0xff, 0xff, 0xff];
    lie_arr.resize(20, 0xc0);
    let mut lie_map = vec![0x92, 0x92, 0xdf, 0xff, 0xff, 0xff, 0xff];
    lie_map.resize(20, 0xc0);
    let (g, gl) = good(9);
    let mut with_good = legacy_raw(&ts_map, &body);
    with_good.extend(&g);
    run_cases(
        "tsbox",
        vec![
            Case::new(
                "tsbox.legacy-map",
                legacy_raw(&ts_map, &body),
                FLB_ERROR,
                vec![],
                1,
            ),
            Case::new(
                "tsbox.v2-map",
                v2_raw_ts(&ts_map, &body),
                FLB_ERROR,
                vec![],
                1,
            ),
            // `[[1, {"evil": "yes"}], {"k": "v"}]` *is* a v2 event (timestamp 1, metadata
            // {"evil": "yes"}): an array timestamp in the legacy layout cannot be told apart.
            Case::new(
                "tsbox.legacy-array-is-v2",
                legacy_raw(&ts_arr, &body),
                FLB_OK,
                vec![r#"{"k":"v"}"#.to_string()],
                0,
            ),
            Case::new(
                "tsbox.v2-array",
                v2_raw_ts(&ts_arr, &body),
                FLB_ERROR,
                vec![],
                1,
            ),
            Case::new("tsbox.then-good", with_good, FLB_OK, vec![gl], 1),
            Case::new("tsbox.array32-lie", lie_arr, FLB_ERROR, vec![], 1),
            Case::new("tsbox.map32-lie", lie_map, FLB_ERROR, vec![], 1),
        ],
    );
}

/// `time_key_format` text must not break the JSON record: `"`, `\`, `%n` (newline) and
/// `%t` (tab) are either escaped in the record or refused at start-up with a line naming
/// the key. Found while writing these tests and by the `config` fuzz target (a NUL in the
/// format); fixed in commit 042ba9e (the formatted time is escaped).
#[test]
fn regression_time_key_format_cannot_break_the_record() {
    let _g = shared();
    let rig = Rig::new(&["tfmt-0", "tfmt-1", "tfmt-2", "tfmt-3"]);
    for (i, fmt) in ["%Y\"%m", "%Y\\%m", "%Y%n%m", "%Y%t%m"]
        .into_iter()
        .enumerate()
    {
        let stream = format!("tfmt-{i}");
        let ep = rig.emu.endpoint();
        let props = [
            ("region", "us-east-1"),
            ("endpoint", ep.as_str()),
            ("delivery_streams", stream.as_str()),
            ("time_key", "time"),
            ("time_key_format", fmt),
        ];
        let ins = match rig.plugin.init(&props) {
            Ok(ins) => ins,
            Err(_) => {
                // Refused at start-up: fine if the line names the key.
                assert!(
                    !flb_host::logs_containing("time_key_format").is_empty(),
                    "{fmt:?} refused without naming time_key_format"
                );
                continue;
            }
        };
        let tag = format!("hostile.tfmt.{i}");
        assert_eq!(flush(&ins, &good(i as u64).0, &tag), FLB_OK);
        let data: Vec<u8> = rig.emu.records(&stream).concat();
        let text = String::from_utf8(data).expect("UTF-8");
        let records: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(
            records.len(),
            1,
            "time_key_format {fmt:?}: one record must be one line, got {text:?}"
        );
        let v: serde_json::Value = serde_json::from_str(records[0]).unwrap_or_else(|e| {
            panic!("time_key_format {fmt:?} makes an invalid record ({e}): {text:?}")
        });
        assert!(v["time"].is_string());
        ins.exit();
    }
}

/// Map keys nested inside map keys re-escape their text at every level, so a 45-byte
/// event with 15 levels and a `"` in the innermost key becomes a 98 KB record (2^15
/// backslashes): a 2 MB chunk of them becomes 4.4 GB of records (4.3 GB peak RSS, 19 s of
/// CPU in a release build), all under Firehose's record limit, so all of it would ship.
/// A record must stay within a small multiple of its event's size.
#[test]
fn regression_nested_keys_cannot_amplify_a_chunk() {
    let _g = shared();
    let mut body = vec![0x81u8; 15];
    body.extend_from_slice(&[0xa1, b'"']);
    body.extend(std::iter::repeat_n(0x01, 15));
    let ev = v2(&body);
    assert_eq!(ev.len(), 45);
    let chunk: Vec<u8> = std::iter::repeat_n(ev.as_slice(), 20)
        .flatten()
        .copied()
        .collect();
    // In-process.
    let (p, largest) = prepare_tracked(&chunk);
    let out = p.records.total_bytes();
    // Through the plugin: what Firehose would receive (and bill).
    let rig = Rig::new(&["amp"]);
    let ins = rig.instance("amp");
    let tag = "hostile.amplify";
    let t = std::time::Instant::now();
    let code = flush(&ins, &chunk, tag);
    let took = t.elapsed();
    let shipped: usize = rig.emu.records("amp").iter().map(Vec::len).sum();
    ins.exit();
    let bound = 64 * chunk.len() + 4096;
    assert!(
        out <= bound && shipped <= bound,
        "{} input bytes became {out} bytes of records in-process ({}x; {} records, \
         {} oversize, {} malformed; largest allocation {largest} bytes) and {shipped} \
         bytes shipped to Firehose by the plugin (code {code}, {took:?})",
        chunk.len(),
        out / chunk.len(),
        p.records.len(),
        p.oversize,
        p.decode.malformed
    );
    // Bounded, and still shipped: the deep keys become base64 of their bytes.
    assert_eq!((p.records.len(), p.decode.malformed), (20, 0));
    assert_eq!(code, FLB_OK);
}
