//! Checks shared by the fuzz targets: an independent reading of the chunk format (the
//! oracle the plugin's decoder is compared with), a strict iterative JSON validator, and
//! the properties every prepared chunk must have.
//!
//! Nothing here reuses the plugin's own lexer or encoder: the oracle is written from the
//! ABI description (`docs` of the shared Fluent Bit proxy ABI), so a disagreement is a bug
//! in one of the two.

use firehose_fanout::batch::MAX_RECORD_BYTES;
use firehose_fanout::config::{keys, Config};
use firehose_fanout::codec::encode::EncodeOptions;
use firehose_fanout::delivery::{prepare, Prepared};
use firehose_fanout::codec::timefmt::TimeFormat;

// ---------------------------------------------------------------------------------------
// An independent msgpack walker
// ---------------------------------------------------------------------------------------

/// One msgpack header as the oracle sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head {
    Scalar,
    Uint(u64),
    Int(i64),
    Float(f64),
    Ext { ty: i8, start: usize, len: usize },
    Array(u64),
    Map(u64),
}

fn be(buf: &[u8], pos: usize, n: usize) -> Option<u64> {
    let b = buf.get(pos..pos.checked_add(n)?)?;
    Some(b.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
}

/// Reads the header at `pos`: `(head, position after the header and any byte payload)`.
pub fn head(buf: &[u8], pos: usize) -> Option<(Head, usize)> {
    let m = *buf.get(pos)?;
    let p = pos + 1;
    let payload = |lenlen: usize| -> Option<(Head, usize)> {
        let len = be(buf, p, lenlen)? as usize;
        let start = p + lenlen;
        let end = start.checked_add(len)?;
        (end <= buf.len()).then_some((Head::Scalar, end))
    };
    let ext = |lenlen: usize, fixed: usize| -> Option<(Head, usize)> {
        let len = if lenlen == 0 {
            fixed
        } else {
            be(buf, p, lenlen)? as usize
        };
        let ty = *buf.get(p + lenlen)? as i8;
        let start = p + lenlen + 1;
        let end = start.checked_add(len)?;
        (end <= buf.len()).then_some((Head::Ext { ty, start, len }, end))
    };
    let num = |n: usize| be(buf, p, n).map(|v| (v, p + n));
    Some(match m {
        0x00..=0x7f => (Head::Uint(m as u64), p),
        0x80..=0x8f => (Head::Map((m & 0xf) as u64), p),
        0x90..=0x9f => (Head::Array((m & 0xf) as u64), p),
        0xa0..=0xbf => {
            let end = p + (m & 0x1f) as usize;
            if end > buf.len() {
                return None;
            }
            (Head::Scalar, end)
        }
        0xc0 | 0xc2 | 0xc3 => (Head::Scalar, p),
        0xc1 => return None,
        0xc4 | 0xd9 => payload(1)?,
        0xc5 | 0xda => payload(2)?,
        0xc6 | 0xdb => payload(4)?,
        0xc7 => ext(1, 0)?,
        0xc8 => ext(2, 0)?,
        0xc9 => ext(4, 0)?,
        0xca => {
            let (v, e) = num(4)?;
            (Head::Float(f32::from_bits(v as u32) as f64), e)
        }
        0xcb => {
            let (v, e) = num(8)?;
            (Head::Float(f64::from_bits(v)), e)
        }
        0xcc => num(1).map(|(v, e)| (Head::Uint(v), e))?,
        0xcd => num(2).map(|(v, e)| (Head::Uint(v), e))?,
        0xce => num(4).map(|(v, e)| (Head::Uint(v), e))?,
        0xcf => num(8).map(|(v, e)| (Head::Uint(v), e))?,
        0xd0 => num(1).map(|(v, e)| (Head::Int(v as u8 as i8 as i64), e))?,
        0xd1 => num(2).map(|(v, e)| (Head::Int(v as u16 as i16 as i64), e))?,
        0xd2 => num(4).map(|(v, e)| (Head::Int(v as u32 as i32 as i64), e))?,
        0xd3 => num(8).map(|(v, e)| (Head::Int(v as i64), e))?,
        0xd4 => ext(0, 1)?,
        0xd5 => ext(0, 2)?,
        0xd6 => ext(0, 4)?,
        0xd7 => ext(0, 8)?,
        0xd8 => ext(0, 16)?,
        0xdc => num(2).map(|(v, e)| (Head::Array(v), e))?,
        0xdd => num(4).map(|(v, e)| (Head::Array(v), e))?,
        0xde => num(2).map(|(v, e)| (Head::Map(v), e))?,
        0xdf => num(4).map(|(v, e)| (Head::Map(v), e))?,
        0xe0..=0xff => (Head::Int(m as i8 as i64), p),
    })
}

/// End of the whole value at `pos`, without recursion; `None` if it is broken or runs
/// past the buffer.
pub fn value_end(buf: &[u8], pos: usize) -> Option<usize> {
    let mut pending: u64 = 1;
    let mut p = pos;
    while pending > 0 {
        pending -= 1;
        let (h, next) = head(buf, p)?;
        p = next;
        match h {
            Head::Array(n) => pending += n,
            Head::Map(n) => pending += 2 * n,
            _ => {}
        }
    }
    Some(p)
}

// ---------------------------------------------------------------------------------------
// The oracle: what a correct decoder makes of a chunk
// ---------------------------------------------------------------------------------------

/// Counts a correct decoder reports for a chunk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub records: usize,
    pub group_markers: usize,
    pub malformed: usize,
}

enum Ts {
    Time,
    Group,
    Invalid,
}

fn classify_ts(buf: &[u8], h: Head) -> Ts {
    match h {
        Head::Ext {
            ty: 0,
            start,
            len: 8,
        } => {
            let sec = be(buf, start, 4).unwrap_or(0);
            let nsec = be(buf, start + 4, 4).unwrap_or(0);
            if sec >= 0xFFFF_FFFE {
                Ts::Group
            } else if nsec >= 1_000_000_000 {
                Ts::Invalid
            } else {
                Ts::Time
            }
        }
        Head::Uint(v) if v <= i64::MAX as u64 => Ts::Time,
        Head::Int(-1) | Head::Int(-2) => Ts::Group,
        Head::Int(v) if v >= 0 => Ts::Time,
        Head::Float(f) if (0.0..=1.0e15).contains(&f) => Ts::Time,
        _ => Ts::Invalid,
    }
}

/// Reads a chunk as the ABI describes it: `[[TIMESTAMP, METADATA...], BODY]` or
/// `[TIMESTAMP, BODY]`, each object whole; broken msgpack ends the chunk (one malformed).
pub fn expected(buf: &[u8]) -> Expected {
    let mut e = Expected::default();
    let mut pos = 0;
    while pos < buf.len() {
        let Some(end) = value_end(buf, pos) else {
            e.malformed += 1;
            break;
        };
        // The object is whole msgpack: classify it.
        let (h, mut p) = head(buf, pos).expect("whole value");
        pos = end;
        if h != Head::Array(2) {
            e.malformed += 1;
            continue;
        }
        let (first, after_first) = head(buf, p).expect("whole value");
        let ts = match first {
            Head::Array(n) if n >= 1 => {
                let (t, _) = head(buf, after_first).expect("whole value");
                classify_ts(buf, t)
            }
            Head::Array(_) | Head::Map(_) => Ts::Invalid,
            t => classify_ts(buf, t),
        };
        p = value_end(buf, p).expect("whole value");
        let (body, _) = head(buf, p).expect("whole value");
        match ts {
            Ts::Group => e.group_markers += 1,
            Ts::Invalid => e.malformed += 1,
            Ts::Time if matches!(body, Head::Map(_)) => e.records += 1,
            Ts::Time => e.malformed += 1,
        }
    }
    e
}

/// Bug found by this fuzzer (see docs/reliability.md), now fixed: map keys nested inside map
/// keys re-escaped their text at every level (up to 15), so a record grew as 2^depth (a
/// 45-byte event became a 98 KB record). The encoder now refuses keys nested more than 3
/// deep or longer than 4 KiB as text. Set to true to skip such inputs again (as while the
/// bug was open); `FUZZ_STRICT=1` checks them regardless.
pub const KNOWN_BUG_KEY_AMPLIFICATION: bool = false;
pub const AMPLIFICATION_SAFE_KEY_DEPTH: usize = 4;

/// How many non-string map keys enclose the most deeply "keyed" value of the buffer
/// (the encoder re-escapes once per such level). Stops at broken msgpack.
pub fn key_depth(buf: &[u8]) -> usize {
    // (items left, is a map, items read so far, key depth of the container)
    let mut stack: Vec<(u64, bool, u64, usize)> = Vec::new();
    let mut pos = 0;
    let mut max = 0;
    while pos < buf.len() {
        let marker = buf[pos];
        let Some((h, next)) = head(buf, pos) else {
            break;
        };
        pos = next;
        let (in_key, parent_depth) = match stack.last_mut() {
            Some((left, is_map, read, d)) => {
                *left -= 1;
                let in_key = *is_map && *read % 2 == 0;
                *read += 1;
                (in_key, *d)
            }
            None => (false, 0),
        };
        let is_str = matches!(marker, 0xa0..=0xbf | 0xd9 | 0xda | 0xdb);
        let depth = parent_depth + usize::from(in_key && !is_str);
        max = max.max(depth);
        match h {
            Head::Array(n) if n > 0 => stack.push((n, false, 0, depth)),
            Head::Map(n) if n > 0 => stack.push((2 * n, true, 0, depth)),
            _ => {}
        }
        while stack.last().is_some_and(|f| f.0 == 0) {
            stack.pop();
        }
    }
    max
}

/// `FUZZ_STRICT=1` in the environment: check the known bugs too (to confirm a fix).
pub fn strict() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("FUZZ_STRICT").is_some_and(|v| v == "1"))
}

// ---------------------------------------------------------------------------------------
// A strict JSON validator (RFC 8259), iterative so that deep nesting cannot overflow it
// ---------------------------------------------------------------------------------------

/// Whether `s` is exactly one JSON value with no whitespace anywhere outside strings
/// (the encoder writes none), and whether that value is an object.
pub fn json_compact(s: &[u8]) -> Result<bool, String> {
    if std::str::from_utf8(s).is_err() {
        return Err("not UTF-8".into());
    }
    #[derive(Clone, Copy, PartialEq)]
    enum C {
        Arr,
        Obj,
    }
    let mut stack: Vec<C> = Vec::new();
    let mut i = 0;
    let top_is_object = s.first() == Some(&b'{');
    let err = |i: usize, what: &str| Err(format!("{what} at byte {i}"));
    // Expecting a value at i.
    'value: loop {
        match s.get(i) {
            Some(b'{') => {
                i += 1;
                if s.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    stack.push(C::Obj);
                    // a key
                    i = string(s, i).ok_or_else(|| format!("bad key at byte {i}"))?;
                    if s.get(i) != Some(&b':') {
                        return err(i, "missing ':'");
                    }
                    i += 1;
                    continue 'value;
                }
            }
            Some(b'[') => {
                i += 1;
                if s.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(C::Arr);
                    continue 'value;
                }
            }
            Some(b'"') => i = string(s, i).ok_or_else(|| format!("bad string at byte {i}"))?,
            Some(b't') if s[i..].starts_with(b"true") => i += 4,
            Some(b'f') if s[i..].starts_with(b"false") => i += 5,
            Some(b'n') if s[i..].starts_with(b"null") => i += 4,
            Some(b'-' | b'0'..=b'9') => {
                i = number(s, i).ok_or_else(|| format!("bad number at byte {i}"))?
            }
            _ => return err(i, "expected a value"),
        }
        // After a value: close containers or go to the next item.
        loop {
            match stack.last() {
                None => {
                    return if i == s.len() {
                        Ok(top_is_object)
                    } else {
                        err(i, "trailing bytes")
                    };
                }
                Some(&c) => match (c, s.get(i)) {
                    (C::Arr, Some(b',')) => {
                        i += 1;
                        continue 'value;
                    }
                    (C::Obj, Some(b',')) => {
                        i += 1;
                        i = string(s, i).ok_or_else(|| format!("bad key at byte {i}"))?;
                        if s.get(i) != Some(&b':') {
                            return err(i, "missing ':'");
                        }
                        i += 1;
                        continue 'value;
                    }
                    (C::Arr, Some(b']')) | (C::Obj, Some(b'}')) => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return err(i, "expected ',' or a closing bracket"),
                },
            }
        }
    }
}

/// End of the JSON string at `i`.
fn string(s: &[u8], mut i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *s.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = s.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0x00..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// End of the JSON number at `i`.
fn number(s: &[u8], mut i: usize) -> Option<usize> {
    let digits = |s: &[u8], mut i: usize| {
        let st = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > st).then_some(i)
    };
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    if s.get(i) == Some(&b'0') {
        i += 1;
    } else {
        i = digits(s, i)?;
    }
    if s.get(i) == Some(&b'.') {
        i = digits(s, i + 1)?;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(s, i)?;
    }
    Some(i)
}

// ---------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------

/// The option sets the decode/encode target runs every input through.
pub fn option_sets() -> Vec<(&'static str, EncodeOptions)> {
    let fmt = |f: &str| TimeFormat::parse(f).expect("a valid time format");
    vec![
        ("default", EncodeOptions::default()),
        (
            "time_key",
            EncodeOptions {
                time_key: Some("@timestamp".into()),
                time_format: fmt(
                    "%Y-%m-%dT%H:%M:%S.%LZ %a %b %j %e %I%p %s %9N %6N %C %y %D %u %w %z %Z",
                ),
                ..Default::default()
            },
        ),
        (
            "log_key",
            EncodeOptions {
                log_key: Some("log".into()),
                ..Default::default()
            },
        ),
        (
            "data_keys",
            EncodeOptions {
                data_keys: Some(vec!["log".into(), "a".into(), "k.x".into()]),
                ..Default::default()
            },
        ),
        (
            "replace_dots",
            EncodeOptions {
                replace_dots: Some("_".into()),
                time_key: Some("t.k".into()),
                ..Default::default()
            },
        ),
    ]
}

/// What must hold for any chunk under `opts`; panics (a fuzzer crash) with a message when
/// it does not.
pub fn check_prepared(name: &str, opts: &EncodeOptions, data: &[u8], p: &Prepared) {
    let n = p.records.len();
    assert!(
        n + p.oversize + p.missing_log_key <= p.decode.records,
        "{name}: {n} records + {} oversize + {} missing log_key > {} decoded",
        p.oversize,
        p.missing_log_key,
        p.decode.records
    );
    for i in 0..n {
        let r = p.records.get(i);
        assert!(
            r.len() <= MAX_RECORD_BYTES,
            "{name}: record {i} is over the limit"
        );
        assert_eq!(
            r.last(),
            Some(&b'\n'),
            "{name}: record {i} does not end in a newline"
        );
        if opts.log_key.is_none() {
            let body = &r[..r.len() - 1];
            match json_compact(body) {
                Ok(true) => {}
                Ok(false) => panic!("{name}: record {i} is JSON but not an object"),
                Err(e) => panic!(
                    "{name}: record {i} is not valid JSON ({e}): {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ),
            }
        }
    }
    let e = expected(data);
    let encode_failed = p.decode.records - n - p.oversize - p.missing_log_key;
    assert_eq!(
        (
            p.decode.records,
            p.decode.group_markers,
            p.decode.malformed - encode_failed
        ),
        (e.records, e.group_markers, e.malformed),
        "{name}: decoder (records, group markers, malformed) differ from the oracle"
    );
}

/// The decode/encode target: every option set, every property.
pub fn decode_encode(data: &[u8]) {
    let deep_keys = key_depth(data) > AMPLIFICATION_SAFE_KEY_DEPTH;
    if KNOWN_BUG_KEY_AMPLIFICATION && deep_keys && !strict() {
        return;
    }
    for (name, opts) in option_sets() {
        let p = prepare(&opts, data);
        check_prepared(name, &opts, data, &p);
        // No input may turn into much more output than escaping explains (at most 6 bytes
        // for a control character, a little more per level of keys within keys).
        let out = p.records.total_bytes();
        assert!(
            out <= 64 * data.len() + 4096,
            "{name}: {} input bytes became {out} bytes of records",
            data.len()
        );
    }
}

/// Every key of `firehose_fanout::config::keys` (its `ALL`, checked complete by a unit test).
pub fn known_keys() -> Vec<&'static str> {
    keys::ALL.to_vec()
}

/// A chunk every accepted configuration is tried on: two v2 events with dotted, nested
/// and non-string keys, and a legacy one.
pub fn config_probe_chunk() -> Vec<u8> {
    let mut b = Vec::new();
    for sec in [1_700_000_000u32, 1_700_000_001] {
        b.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00]);
        b.extend_from_slice(&sec.to_be_bytes());
        b.extend_from_slice(&123_456_789u32.to_be_bytes());
        b.push(0x80);
        // {"log": "a \"line\"\n", "k.x": {"y.z": 1}, 7: true}
        b.push(0x83);
        b.extend_from_slice(b"\xa3log\xa9a \"line\"\n");
        b.extend_from_slice(b"\xa3k.x\x81\xa3y.z\x01");
        b.extend_from_slice(b"\x07\xc3");
    }
    b.extend_from_slice(b"\x92\xce\x65\x53\xf1\x00\x81\xa3log\xa6legacy");
    b
}

/// The config target: `key=value` lines → `Config::from_lookup` → Ok, or an error naming
/// a key; an accepted configuration must encode the probe chunk into valid records.
pub fn config(data: &[u8]) {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(known_keys);
    let text = String::from_utf8_lossy(data);
    let mut props: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        // `#N` picks the Nth real key, so the fuzzer reaches every key without guessing.
        let k = match k
            .strip_prefix('#')
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            Some(n) => keys[n % keys.len()].to_string(),
            None => k.to_string(),
        };
        let mut v = v.to_string();
        // ca_file is read from disk: keep it to file names in the working directory, so a
        // generated "/dev/zero" or FIFO cannot hang the fuzzer.
        if k.eq_ignore_ascii_case("ca_file") || k.eq_ignore_ascii_case("tls.ca_file") {
            v = v.replace('/', "_");
        }
        props.push((k, v));
    }
    let get = |key: &str| {
        props
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    match Config::from_lookup(get) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                keys.iter().any(|k| msg.contains(k)),
                "the error names no key: {msg}"
            );
        }
        Ok(cfg) => {
            let chunk = config_probe_chunk();
            let p = prepare(&cfg.encode, &chunk);
            assert_eq!(
                p.records.len() + p.missing_log_key,
                3,
                "the probe chunk has three records"
            );
            check_prepared("config", &cfg.encode, &chunk, &p);
        }
    }
}
