//! Property tests (stable Rust, proptest) of the data path and the configuration:
//!
//! (a) arbitrary msgpack values (every type: bin, ext, EventTime, non-string and nested
//!     keys, invalid UTF-8, NaN/±inf, every width of every header) wrapped as Fluent Bit
//!     events → `flush::prepare` gives one record per event, a JSON object ending in '\n'
//!     that equals an independent reference conversion written here;
//! (b) arbitrary bytes as chunks never panic, and bytes appended after (or cuts into) valid
//!     events keep exactly the whole valid events;
//! (c) `Config::from_lookup` with arbitrary properties never panics and either accepts or
//!     names a key in its error;
//! (d) `TimeFormat` never panics on arbitrary format strings that parse, for any time.
//!
//! 256 cases per property by default (PROPTEST_CASES overrides). Failures are not
//! persisted to files; proptest prints the minimal failing input.

use firehose_fanout::codec::decode::EventTime;
use firehose_fanout::codec::encode::EncodeOptions;
use firehose_fanout::codec::timefmt::TimeFormat;
use firehose_fanout::config::{keys, Config, ConfigError};
use firehose_fanout::delivery::prepare;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::Value;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    c.failure_persistence = None;
    c
}

// ---------------------------------------------------------------------------------------
// msgpack values and a writer that picks any valid width for every header
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum V {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Str(Vec<u8>),
    Bin(Vec<u8>),
    Ext(i8, Vec<u8>),
    Array(Vec<V>),
    Map(Vec<(V, V)>),
}

/// A small xorshift generator: which of the valid encodings each header gets.
struct Widths(u64);

impl Widths {
    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        options[(self.0 % options.len() as u64) as usize]
    }
}

fn put_len(
    out: &mut Vec<u8>,
    w: &mut Widths,
    len: usize,
    fix: Option<(u8, usize)>,
    m8: Option<u8>,
    m16: u8,
    m32: u8,
) {
    let mut opts: Vec<u8> = Vec::new();
    if fix.is_some_and(|(_, max)| len <= max) {
        opts.push(0);
    }
    if m8.is_some() && len <= 0xff {
        opts.push(1);
    }
    if len <= 0xffff {
        opts.push(2);
    }
    opts.push(3);
    match w.pick(&opts) {
        0 => out.push(fix.map(|f| f.0).unwrap_or(0) | len as u8),
        1 => out.extend([m8.unwrap_or(0), len as u8]),
        2 => {
            out.push(m16);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(m32);
            out.extend((len as u32).to_be_bytes());
        }
    }
}

fn put_uint(out: &mut Vec<u8>, w: &mut Widths, u: u64) {
    let mut opts = vec![0xcf];
    if u < 128 {
        opts.push(0x00);
    }
    if u <= 0xff {
        opts.push(0xcc);
    }
    if u <= 0xffff {
        opts.push(0xcd);
    }
    if u <= 0xffff_ffff {
        opts.push(0xce);
    }
    // non-negative values in the signed encodings
    if u <= i64::MAX as u64 {
        opts.push(0xd3);
    }
    if u <= i32::MAX as u64 {
        opts.push(0xd2);
    }
    if u <= i8::MAX as u64 {
        opts.push(0xd0);
    }
    match w.pick(&opts) {
        0x00 => out.push(u as u8),
        0xcc => out.extend([0xcc, u as u8]),
        0xcd => {
            out.push(0xcd);
            out.extend((u as u16).to_be_bytes());
        }
        0xce => {
            out.push(0xce);
            out.extend((u as u32).to_be_bytes());
        }
        0xd0 => out.extend([0xd0, u as u8]),
        0xd2 => {
            out.push(0xd2);
            out.extend((u as i32).to_be_bytes());
        }
        0xd3 => {
            out.push(0xd3);
            out.extend((u as i64).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend(u.to_be_bytes());
        }
    }
}

fn put_int(out: &mut Vec<u8>, w: &mut Widths, i: i64) {
    if i >= 0 {
        return put_uint(out, w, i as u64);
    }
    let mut opts = vec![0xd3];
    if i >= -32 {
        opts.push(0xe0);
    }
    if i >= i8::MIN as i64 {
        opts.push(0xd0);
    }
    if i >= i16::MIN as i64 {
        opts.push(0xd1);
    }
    if i >= i32::MIN as i64 {
        opts.push(0xd2);
    }
    match w.pick(&opts) {
        0xe0 => out.push(i as i8 as u8),
        0xd0 => out.extend([0xd0, i as i8 as u8]),
        0xd1 => {
            out.push(0xd1);
            out.extend((i as i16).to_be_bytes());
        }
        0xd2 => {
            out.push(0xd2);
            out.extend((i as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend(i.to_be_bytes());
        }
    }
}

fn put(out: &mut Vec<u8>, w: &mut Widths, v: &V) {
    match v {
        V::Nil => out.push(0xc0),
        V::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        V::Uint(u) => put_uint(out, w, *u),
        V::Int(i) => put_int(out, w, *i),
        V::F32(f) => {
            out.push(0xca);
            out.extend(f.to_bits().to_be_bytes());
        }
        V::F64(f) => {
            out.push(0xcb);
            out.extend(f.to_bits().to_be_bytes());
        }
        V::Str(b) => {
            put_len(out, w, b.len(), Some((0xa0, 31)), Some(0xd9), 0xda, 0xdb);
            out.extend(b);
        }
        V::Bin(b) => {
            put_len(out, w, b.len(), None, Some(0xc4), 0xc5, 0xc6);
            out.extend(b);
        }
        V::Ext(ty, d) => {
            let fixed = match d.len() {
                1 => Some(0xd4),
                2 => Some(0xd5),
                4 => Some(0xd6),
                8 => Some(0xd7),
                16 => Some(0xd8),
                _ => None,
            };
            match fixed {
                Some(m) if w.pick(&[true, false]) => out.push(m),
                _ => put_len(out, w, d.len(), None, Some(0xc7), 0xc8, 0xc9),
            }
            out.push(*ty as u8);
            out.extend(d);
        }
        V::Array(a) => {
            put_len(out, w, a.len(), Some((0x90, 15)), None, 0xdc, 0xdd);
            for x in a {
                put(out, w, x);
            }
        }
        V::Map(m) => {
            put_len(out, w, m.len(), Some((0x80, 15)), None, 0xde, 0xdf);
            for (k, x) in m {
                put(out, w, k);
                put(out, w, x);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

fn bytes_str() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => any::<String>().prop_map(String::into_bytes),
        1 => "[a-z.\"\\\\\n\t\u{0}\u{7f}\u{e9}\u{1F600}]{0,12}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::num::f64::ANY,
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
    ]
}

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        proptest::num::f32::ANY,
        any::<u32>().prop_map(f32::from_bits),
        Just(f32::NAN),
        Just(f32::INFINITY),
    ]
}

fn leaf() -> impl Strategy<Value = V> {
    prop_oneof![
        1 => Just(V::Nil),
        1 => any::<bool>().prop_map(V::Bool),
        1 => any::<u64>().prop_map(V::Uint),
        1 => any::<i64>().prop_map(V::Int),
        1 => (-40i64..200).prop_map(V::Int),
        1 => any_f32().prop_map(V::F32),
        1 => any_f64().prop_map(V::F64),
        3 => bytes_str().prop_map(V::Str),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(V::Bin),
        1 => (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(t, d)| V::Ext(t, d)),
        1 => (any::<i8>(), prop::sample::select(vec![1usize, 2, 4, 8, 16]))
            .prop_map(|(t, n)| V::Ext(t, vec![0xa5; n])),
        // EventTime (ext 0, 8 bytes), any seconds and nanoseconds
        1 => (any::<u32>(), any::<u32>()).prop_map(|(s, n)| {
            let mut d = s.to_be_bytes().to_vec();
            d.extend(n.to_be_bytes());
            V::Ext(0, d)
        }),
    ]
}

fn value() -> BoxedStrategy<V> {
    leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(V::Array),
                proptest::collection::vec((key(inner.clone()), inner), 0..6).prop_map(V::Map),
            ]
        })
        .boxed()
}

/// Mostly string keys; any value otherwise (nested maps as keys included).
fn key(any_value: BoxedStrategy<V>) -> BoxedStrategy<V> {
    prop_oneof![3 => bytes_str().prop_map(V::Str), 1 => any_value].boxed()
}

fn body() -> impl Strategy<Value = V> {
    proptest::collection::vec((key(value()), value()), 0..8).prop_map(V::Map)
}

/// A TIMESTAMP the decoder must accept (encoded bytes).
fn timestamp() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u32..0xFFFF_FFFE, 0u32..1_000_000_000).prop_map(|(s, n)| {
            let mut b = vec![0xd7, 0x00];
            b.extend(s.to_be_bytes());
            b.extend(n.to_be_bytes());
            b
        }),
        (0u64..=i64::MAX as u64).prop_map(|u| {
            let mut b = vec![0xcf];
            b.extend(u.to_be_bytes());
            b
        }),
        (0i64..=i64::MAX).prop_map(|i| {
            let mut b = vec![0xd3];
            b.extend(i.to_be_bytes());
            b
        }),
        (0u8..128).prop_map(|u| vec![u]),
        (0.0f64..=1.0e15).prop_map(|f| {
            let mut b = vec![0xcb];
            b.extend(f.to_bits().to_be_bytes());
            b
        }),
        (0.0f32..1.0e14).prop_map(|f| {
            let mut b = vec![0xca];
            b.extend(f.to_bits().to_be_bytes());
            b
        }),
    ]
}

#[derive(Debug, Clone)]
struct Ev {
    v2: bool,
    ts: Vec<u8>,
    meta: V,
    body: V,
    widths: u64,
}

fn event() -> impl Strategy<Value = Ev> {
    (any::<bool>(), timestamp(), value(), body(), any::<u64>()).prop_map(
        |(v2, ts, meta, body, widths)| Ev {
            v2,
            ts,
            meta,
            body,
            widths: widths | 1,
        },
    )
}

fn write_event(out: &mut Vec<u8>, e: &Ev) {
    let mut w = Widths(e.widths);
    // The event's own array headers in any width too: only "two items" matters.
    put_len(out, &mut w, 2, Some((0x90, 15)), None, 0xdc, 0xdd);
    if e.v2 {
        put_len(out, &mut w, 2, Some((0x90, 15)), None, 0xdc, 0xdd);
        out.extend(&e.ts);
        put(out, &mut w, &e.meta);
    } else {
        out.extend(&e.ts);
    }
    put(out, &mut w, &e.body);
}

/// The chunk and where each event ends.
fn chunk_of(events: &[Ev]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    for e in events {
        write_event(&mut out, e);
        ends.push(out.len());
    }
    (out, ends)
}

// ---------------------------------------------------------------------------------------
// The reference conversion (README "What a record looks like"), independent of src/
// ---------------------------------------------------------------------------------------

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// EventTime → "seconds.nanoseconds" (9 digits; nanoseconds above 999,999,999 wrap, as
/// the encoder does).
fn event_time_text(d: &[u8]) -> String {
    let sec = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let nsec = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    format!("{sec}.{:09}", nsec % 1_000_000_000)
}

/// Shortest round-trip digits laid out as JSON writers commonly do (fixed notation for
/// magnitudes from 1e-5 to 1e16, otherwise `1.5e300` / `5e-324`, no '+' in exponents).
fn float_text(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("exponent");
    let digits: String = mant.chars().filter(|&c| c != '.').collect();
    let len = digits.len() as i32;
    // value = digits * 10^k, 10^(kk-1) <= value < 10^kk
    let k = exp - len + 1;
    let kk = exp + 1;
    let mut out = String::new();
    if f.is_sign_negative() {
        out.push('-');
    }
    if 0 <= k && kk <= 16 {
        out.push_str(&digits);
        out.push_str(&"0".repeat(k as usize));
        out.push_str(".0");
    } else if 0 < kk && kk <= 16 {
        out.push_str(&digits[..kk as usize]);
        out.push('.');
        out.push_str(&digits[kk as usize..]);
    } else if -5 < kk && kk <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(-kk as usize));
        out.push_str(&digits);
    } else if len == 1 {
        out.push_str(&format!("{digits}e{}", kk - 1));
    } else {
        out.push_str(&format!("{}.{}e{}", &digits[..1], &digits[1..], kk - 1));
    }
    out
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// The exact JSON text of a value (what a non-string key becomes).
fn text(v: &V) -> String {
    match v {
        V::Nil => "null".into(),
        V::Bool(b) => b.to_string(),
        V::Uint(u) => u.to_string(),
        V::Int(i) => i.to_string(),
        V::F32(f) => float_text(*f as f64),
        V::F64(f) => float_text(*f),
        V::Str(b) => quote(&lossy(b)),
        V::Bin(b) => quote(&base64(b)),
        V::Ext(0, d) if d.len() == 8 => event_time_text(d),
        V::Ext(_, d) => quote(&base64(d)),
        V::Array(a) => format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(",")),
        V::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{}:{}", quote(&key_text(k)), text(x)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A map key as the string it becomes.
fn key_text(k: &V) -> String {
    match k {
        V::Str(b) => lossy(b),
        other => text(other),
    }
}

/// Whether a map key in `v` becomes base64 of its msgpack bytes (an array or map key nested
/// in keys `MAX_KEY_DEPTH` = 3 deep, or a key text over 4 KiB). The reference does not model
/// those bytes (they depend on the header widths); tests/encode_golden.rs covers them.
fn has_base64_key(v: &V, level: u32) -> bool {
    match v {
        V::Array(a) => a.iter().any(|x| has_base64_key(x, level)),
        V::Map(m) => m.iter().any(|(k, x)| {
            let base64 = match k {
                V::Str(_) => false,
                V::Array(_) | V::Map(_) if level >= 3 => true,
                other => text(other).len() > 4096,
            };
            base64 || has_base64_key(k, level + 1) || has_base64_key(x, level)
        }),
        _ => false,
    }
}

/// The JSON value a msgpack value becomes.
fn reference(v: &V) -> Value {
    match v {
        V::Nil => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::Uint(u) => Value::from(*u),
        V::Int(i) => Value::from(*i),
        V::F32(f) => serde_json::Number::from_f64(*f as f64).map_or(Value::Null, Value::Number),
        V::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        V::Str(b) => Value::String(lossy(b)),
        V::Bin(b) => Value::String(base64(b)),
        V::Ext(0, d) if d.len() == 8 => serde_json::from_str(&event_time_text(d)).expect("number"),
        V::Ext(_, d) => Value::String(base64(d)),
        V::Array(a) => Value::Array(a.iter().map(reference).collect()),
        V::Map(m) => {
            // Duplicate keys: the last one wins, as when the record is parsed.
            let mut o = serde_json::Map::new();
            for (k, x) in m {
                o.insert(key_text(k), reference(x));
            }
            Value::Object(o)
        }
    }
}

/// Equality with floats compared to within a couple of ULPs (serde_json's default float
/// parsing is not always correctly rounded).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return x == y;
            }
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x == y;
            }
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| match y.get(k) {
                    Some(w) => same(v, w),
                    None => y.iter().any(|(k2, w)| same_key(k, k2) && same(v, w)),
                })
        }
        _ => a == b,
    }
}

/// Keys that are the JSON text of a non-string key may spell a float differently (on an
/// exact tie between two shortest round-trip spellings, writers round either way): such
/// keys are equal when their texts parse to the same value.
fn same_key(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => same(&x, &y),
        _ => false,
    }
}

fn parse_record(rec: &[u8]) -> Result<Value, String> {
    let Some(body) = rec.strip_suffix(b"\n") else {
        return Err("record does not end in a newline".into());
    };
    if body.contains(&b'\n') {
        return Err("a raw newline inside the record".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("{e}: {:?}", lossy(body)))
}

// ---------------------------------------------------------------------------------------
// (a) events → records match the reference
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn records_match_the_reference_conversion(
        events in proptest::collection::vec(event(), 1..6)
            .prop_filter("keys the reference does not model", |evs| {
                evs.iter().all(|e| !has_base64_key(&e.body, 0))
            })
    ) {
        let (chunk, _) = chunk_of(&events);
        let p = prepare(&EncodeOptions::default(), &chunk);
        prop_assert_eq!(p.decode.malformed, 0, "{:?}", p.decode);
        prop_assert_eq!(p.decode.records, events.len());
        prop_assert_eq!(p.records.len(), events.len());
        for (i, e) in events.iter().enumerate() {
            let got = parse_record(p.records.get(i)).map_err(TestCaseError::fail)?;
            prop_assert!(got.is_object(), "record {} is not an object", i);
            let want = reference(&e.body);
            prop_assert!(same(&got, &want), "record {}:\n got  {}\n want {}", i, got, want);
        }
    }

    /// The exact text of EventTime values, which float parsing would blur.
    #[test]
    fn event_time_values_are_seconds_dot_nine_digits(sec in any::<u32>(), nsec in any::<u32>()) {
        let mut d = sec.to_be_bytes().to_vec();
        d.extend(nsec.to_be_bytes());
        let body = V::Map(vec![(V::Str(b"t".to_vec()), V::Ext(0, d.clone())), (V::Ext(0, d), V::Nil)]);
        let ev = Ev { v2: true, ts: vec![0x01], meta: V::Map(vec![]), body, widths: 1 };
        let (chunk, _) = chunk_of(&[ev]);
        let p = prepare(&EncodeOptions::default(), &chunk);
        let t = format!("{sec}.{:09}", nsec % 1_000_000_000);
        prop_assert_eq!(
            std::str::from_utf8(p.records.get(0)).unwrap(),
            format!("{{\"t\":{t},\"{t}\":null}}\n")
        );
    }
}

// ---------------------------------------------------------------------------------------
// (b) arbitrary bytes
// ---------------------------------------------------------------------------------------

fn check_records(p: &firehose_fanout::delivery::Prepared) -> Result<(), TestCaseError> {
    prop_assert!(p.records.len() + p.oversize + p.missing_log_key <= p.decode.records);
    for i in 0..p.records.len() {
        match parse_record(p.records.get(i)) {
            Ok(v) => prop_assert!(v.is_object()),
            // serde_json stops at 128 levels; the record may still be fine.
            Err(e) if e.contains("recursion limit") => {}
            Err(e) => return Err(TestCaseError::fail(format!("record {i}: {e}"))),
        }
    }
    Ok(())
}

/// Bytes biased towards msgpack markers that start events, containers and lengths.
fn chunk_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        1 => prop::sample::select(vec![0x92u8, 0x91, 0x93, 0x81, 0x80, 0x90, 0xd7, 0x00, 0xa1, 0xc1, 0xdd, 0xdf, 0xdb, 0xc9, 0xff, 0xfe]),
    ];
    proptest::collection::vec(byte, 0..2048)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(data in chunk_bytes()) {
        for opts in option_sets() {
            let p = prepare(&opts, &data);
            check_records(&p)?;
        }
    }

    #[test]
    fn bytes_after_valid_events_keep_them(
        events in proptest::collection::vec(event(), 1..5),
        tail in chunk_bytes(),
    ) {
        let (mut chunk, _) = chunk_of(&events);
        let alone = prepare(&EncodeOptions::default(), &chunk);
        chunk.extend(&tail);
        let p = prepare(&EncodeOptions::default(), &chunk);
        check_records(&p)?;
        prop_assert!(p.records.len() >= events.len());
        for i in 0..events.len() {
            prop_assert_eq!(p.records.get(i), alone.records.get(i), "record {}", i);
        }
    }

    #[test]
    fn a_cut_keeps_exactly_the_whole_events(
        events in proptest::collection::vec(event(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let (chunk, ends) = chunk_of(&events);
        let len = cut.index(chunk.len() + 1);
        let p = prepare(&EncodeOptions::default(), &chunk[..len]);
        let whole = ends.iter().filter(|&&e| e <= len).count();
        prop_assert_eq!(p.records.len(), whole);
        prop_assert_eq!(p.decode.malformed, usize::from(len > 0 && !ends.contains(&len)));
    }
}

fn option_sets() -> Vec<EncodeOptions> {
    vec![
        EncodeOptions::default(),
        EncodeOptions {
            time_key: Some("@timestamp".into()),
            time_format: TimeFormat::parse("%Y-%m-%dT%H:%M:%S.%LZ %j %a %s %9N").unwrap(),
            ..Default::default()
        },
        EncodeOptions {
            log_key: Some("log".into()),
            ..Default::default()
        },
        EncodeOptions {
            data_keys: Some(vec!["log".into(), "a".into()]),
            replace_dots: Some("_".into()),
            ..Default::default()
        },
    ]
}

// ---------------------------------------------------------------------------------------
// (c) Config::from_lookup
// ---------------------------------------------------------------------------------------

/// Every key of `firehose_fanout::config::keys` (its `ALL`, checked complete by a unit test).
fn known_keys() -> Vec<&'static str> {
    keys::ALL.to_vec()
}

fn prop_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(known_keys()).prop_map(String::from),
        // the same keys in other cases (lookups are case-insensitive)
        1 => prop::sample::select(known_keys()).prop_map(|k| k.to_uppercase()),
        1 => "[a-z_.]{1,20}",
        1 => any::<String>(),
    ]
}

fn prop_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "us-east-1", "s0", "s0, s1,s2", "a,,b", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "logs-", "30s", "500ms",
            "1.5", "0", "-1", "1e309", "nan", "inf", "2m", "1h", "99999999999999999999", "5MiB", "500k",
            "2M", "0.0001", "adaptive", "round_robin", "random", "key", "auto", "on", "off", "true",
            "no", "gzip", "zstd", "none", "lz4", "9", "22", "23", "http://127.0.0.1:4566",
            "https://[::1]:443/path", "http://", "ftp://x", "http://a@b", "65535", "65536",
            "arn:aws:iam::123456789012:role/x", "arn:", "%Y-%m-%dT%H:%M:%S.%LZ", "%Q", "%", "%3N%6N",
            "@timestamp", "log", "a,b,c", "_", "", "   ", "\u{0}", "Cargo.toml", "tests",
        ]).prop_map(String::from),
        1 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_never_panics_and_errors_name_a_key(
        props in proptest::collection::vec((prop_key(), prop_value()), 0..16),
    ) {
        // ca_file is read from disk: keep it to names in the working directory.
        let props: Vec<(String, String)> = props
            .into_iter()
            .map(|(k, v)| {
                let file_key = k.eq_ignore_ascii_case(keys::CA_FILE) || k.eq_ignore_ascii_case(keys::TLS_CA_FILE);
                let v = if file_key { v.replace('/', "_") } else { v };
                (k, v)
            })
            .collect();
        let given = |key: &str| props.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
        match Config::from_lookup(given) {
            Ok(cfg) => {
                prop_assert!(!cfg.streams.is_empty() || cfg.stream_prefix.is_some());
                prop_assert!(!cfg.region.is_empty());
            }
            Err(e) => {
                let msg = e.to_string();
                let key = match &e {
                    ConfigError::Invalid { key, .. } | ConfigError::CaFile { key, .. } => *key,
                    ConfigError::NoStreams => keys::DELIVERY_STREAMS,
                    ConfigError::NoRegion => keys::REGION,
                };
                prop_assert!(known_keys().contains(&key), "unknown key {} in {:?}", key, msg);
                prop_assert!(msg.contains(key), "the error does not name {}: {:?}", key, msg);
                if let ConfigError::Invalid { value, .. } = &e {
                    // A value was given for the key it blames (region may come from the
                    // environment; partition_key is blamed when missing).
                    if key != keys::REGION && key != keys::PARTITION_KEY {
                        prop_assert!(given(key).is_some(), "{:?} blames {} which was not given ({:?})", msg, key, value);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (d) the time formatter
// ---------------------------------------------------------------------------------------

fn format_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "%Y", "%C", "%y", "%m", "%d", "%e", "%j", "%H", "%I", "%M", "%S", "%p", "%a", "%A", "%b",
            "%B", "%h", "%F", "%T", "%D", "%R", "%s", "%u", "%w", "%z", "%Z", "%L", "%N", "%3N",
            "%6N", "%9N", "%n", "%t", "%%",
        ]).prop_map(String::from),
        1 => prop::sample::select(vec!["%", "%Q", "%4N", "%3", "%E"]).prop_map(String::from),
        2 => any::<String>(),
        2 => "[-:T. /]{0,3}",
    ];
    prop_oneof![
        4 => proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat()),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn time_formats_never_panic(
        fmt in format_string(),
        sec in prop_oneof![any::<i64>(), 0i64..=4_102_444_800, Just(i64::MAX), Just(i64::MIN)],
        nsec in prop_oneof![0u32..1_000_000_000, any::<u32>()],
    ) {
        let Ok(tf) = TimeFormat::parse(&fmt) else {
            return Ok(());
        };
        let mut out = Vec::new();
        tf.write(EventTime { sec, nsec }, &mut out);
        let s = std::str::from_utf8(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if !fmt.contains('%') {
            prop_assert_eq!(s, fmt.as_str());
        }
        if fmt == "%s" {
            prop_assert_eq!(s, sec.to_string());
        }
    }

    /// In the range the decoder produces (nanoseconds below 10^9, seconds from 0), the
    /// numeric conversions agree with each other.
    #[test]
    fn time_conversions_agree(sec in 0i64..=253_402_300_799, nsec in 0u32..1_000_000_000) {
        let tf = TimeFormat::parse("%Y|%m|%d|%H|%M|%S|%9N|%F|%T|%s|%L|%j").unwrap();
        let mut out = Vec::new();
        tf.write(EventTime { sec, nsec }, &mut out);
        let s = String::from_utf8(out).unwrap();
        let f: Vec<&str> = s.split('|').collect();
        prop_assert_eq!(f[7], format!("{}-{}-{}", f[0], f[1], f[2]));
        prop_assert_eq!(f[8], format!("{}:{}:{}", f[3], f[4], f[5]));
        prop_assert_eq!(f[9], sec.to_string());
        prop_assert_eq!(f[6], format!("{nsec:09}"));
        prop_assert_eq!(f[10], &f[6][..3]);
        let secs_of_day: i64 = f[3].parse::<i64>().unwrap() * 3600 + f[4].parse::<i64>().unwrap() * 60 + f[5].parse::<i64>().unwrap();
        prop_assert_eq!(secs_of_day, sec.rem_euclid(86_400));
        let doy: i64 = f[11].parse().unwrap();
        prop_assert!((1..=366).contains(&doy));
    }
}
