//! Golden tests of the record encoding: every msgpack type and every key that shapes a
//! record.

use firehose_fanout::codec::encode::EncodeOptions;
use firehose_fanout::config::Config;
use firehose_fanout::delivery::{prepare, Prepared};
use rmp::encode as w;

/// 2024-02-29T13:05:09.123456789Z
const SEC: u32 = 1_709_211_909;
const NSEC: u32 = 123_456_789;

fn event(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut buf = Vec::new();
    w::write_array_len(&mut buf, 2).unwrap();
    w::write_array_len(&mut buf, 2).unwrap();
    w::write_ext_meta(&mut buf, 8, 0).unwrap();
    buf.extend_from_slice(&SEC.to_be_bytes());
    buf.extend_from_slice(&NSEC.to_be_bytes());
    w::write_map_len(&mut buf, 0).unwrap();
    body(&mut buf);
    buf
}

fn opts(props: &[(&str, &str)]) -> EncodeOptions {
    let mut all: Vec<(&str, &str)> = vec![("region", "us-east-1"), ("delivery_streams", "s")];
    all.extend_from_slice(props);
    Config::from_lookup(|k| {
        all.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    })
    .expect("valid config")
    .encode
}

fn encode_with(props: &[(&str, &str)], chunk: &[u8]) -> (Prepared, String) {
    let p = prepare(&opts(props), chunk);
    let text = (0..p.records.len())
        .map(|i| String::from_utf8_lossy(p.records.get(i)).into_owned())
        .collect();
    (p, text)
}

fn encode(props: &[(&str, &str)], body: impl FnOnce(&mut Vec<u8>)) -> String {
    encode_with(props, &event(body)).1
}

#[test]
fn every_msgpack_type() {
    let out = encode(&[], |b| {
        w::write_map_len(b, 18).unwrap();
        w::write_str(b, "nil").unwrap();
        w::write_nil(b).unwrap();
        w::write_str(b, "t").unwrap();
        w::write_bool(b, true).unwrap();
        w::write_str(b, "f").unwrap();
        w::write_bool(b, false).unwrap();
        w::write_str(b, "u64").unwrap();
        w::write_u64(b, u64::MAX).unwrap();
        w::write_str(b, "i64").unwrap();
        w::write_i64(b, i64::MIN).unwrap();
        w::write_str(b, "neg").unwrap();
        w::write_sint(b, -5).unwrap();
        w::write_str(b, "f32").unwrap();
        w::write_f32(b, 0.5).unwrap();
        w::write_str(b, "f64").unwrap();
        w::write_f64(b, -1.25e-7).unwrap();
        w::write_str(b, "nan").unwrap();
        w::write_f64(b, f64::NAN).unwrap();
        w::write_str(b, "inf").unwrap();
        w::write_f32(b, f32::INFINITY).unwrap();
        w::write_str(b, "ninf").unwrap();
        w::write_f64(b, f64::NEG_INFINITY).unwrap();
        w::write_str(b, "esc").unwrap();
        w::write_str(b, "q\"b\\n\nt\tc\u{1}é😀/").unwrap();
        w::write_str(b, "bad_utf8").unwrap();
        w::write_str_len(b, 3).unwrap();
        b.extend_from_slice(&[b'a', 0xff, b'b']);
        w::write_str(b, "bin").unwrap();
        w::write_bin(b, &[0, 1, 2, 250]).unwrap();
        w::write_str(b, "ext").unwrap();
        w::write_ext_meta(b, 3, 5).unwrap();
        b.extend_from_slice(b"abc");
        w::write_str(b, "evtime").unwrap();
        w::write_ext_meta(b, 8, 0).unwrap();
        b.extend_from_slice(&10u32.to_be_bytes());
        b.extend_from_slice(&5_000u32.to_be_bytes());
        w::write_str(b, "nested").unwrap();
        w::write_map_len(b, 2).unwrap();
        w::write_str(b, "arr").unwrap();
        w::write_array_len(b, 3).unwrap();
        w::write_uint(b, 1).unwrap();
        w::write_array_len(b, 0).unwrap();
        w::write_map_len(b, 0).unwrap();
        w::write_str(b, "m").unwrap();
        w::write_map_len(b, 1).unwrap();
        w::write_str(b, "x").unwrap();
        w::write_nil(b).unwrap();
        w::write_str(b, "empty").unwrap();
        w::write_str(b, "").unwrap();
    });
    assert_eq!(
        out,
        concat!(
            r#"{"nil":null,"t":true,"f":false,"u64":18446744073709551615,"i64":-9223372036854775808,"#,
            r#""neg":-5,"f32":0.5,"f64":-1.25e-7,"nan":null,"inf":null,"ninf":null,"#,
            r#""esc":"q\"b\\n\nt\tc\u0001é😀/","bad_utf8":"a�b","bin":"AAEC+g==","ext":"YWJj","#,
            r#""evtime":10.000005000,"nested":{"arr":[1,[],{}],"m":{"x":null}},"empty":""}"#,
            "\n"
        )
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["bad_utf8"], "a\u{fffd}b");
}

#[test]
fn non_string_keys_become_their_json_text() {
    let out = encode(&[], |b| {
        w::write_map_len(b, 5).unwrap();
        w::write_uint(b, 7).unwrap();
        w::write_str(b, "int").unwrap();
        w::write_bool(b, true).unwrap();
        w::write_str(b, "bool").unwrap();
        w::write_nil(b).unwrap();
        w::write_str(b, "nil").unwrap();
        w::write_array_len(b, 2).unwrap();
        w::write_uint(b, 1).unwrap();
        w::write_str(b, "a").unwrap();
        w::write_str(b, "array").unwrap();
        w::write_map_len(b, 1).unwrap();
        w::write_str(b, "k").unwrap();
        w::write_f64(b, 2.5).unwrap();
        w::write_str(b, "map").unwrap();
    });
    assert_eq!(
        out,
        "{\"7\":\"int\",\"true\":\"bool\",\"null\":\"nil\",\"[1,\\\"a\\\"]\":\"array\",\"{\\\"k\\\":2.5}\":\"map\"}\n"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["[1,\"a\"]"], "array");
}

fn simple_body(b: &mut Vec<u8>) {
    w::write_map_len(b, 3).unwrap();
    w::write_str(b, "log").unwrap();
    w::write_str(b, "line \"one\"").unwrap();
    w::write_str(b, "kubernetes.pod").unwrap();
    w::write_map_len(b, 1).unwrap();
    w::write_str(b, "a.b").unwrap();
    w::write_uint(b, 1).unwrap();
    w::write_str(b, "level").unwrap();
    w::write_str(b, "info").unwrap();
}

#[test]
fn time_key_and_formats() {
    assert_eq!(
        encode(&[("time_key", "@timestamp")], simple_body),
        "{\"log\":\"line \\\"one\\\"\",\"kubernetes.pod\":{\"a.b\":1},\"level\":\"info\",\"@timestamp\":\"2024-02-29T13:05:09\"}\n"
    );
    let with = |f: &str| {
        let out = encode(&[("time_key", "t"), ("time_key_format", f)], simple_body);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["t"].as_str().unwrap().to_string()
    };
    assert_eq!(with("%Y-%m-%dT%H:%M:%S.%LZ"), "2024-02-29T13:05:09.123Z");
    assert_eq!(with("%s.%6N"), "1709211909.123456");
    assert_eq!(with("%d/%b/%Y:%H:%M:%S %z"), "29/Feb/2024:13:05:09 +0000");
    assert_eq!(with("%9N"), "123456789");
}

#[test]
fn log_key_ships_the_raw_value() {
    assert_eq!(encode(&[("log_key", "log")], simple_body), "line \"one\"\n");
    assert_eq!(
        encode(&[("log_key", "kubernetes.pod")], simple_body),
        "{\"a.b\":1}\n"
    );
    let (p, text) = encode_with(&[("log_key", "absent")], &event(simple_body));
    assert_eq!(text, "");
    assert_eq!(p.missing_log_key, 1);
}

#[test]
fn data_keys_keep_only_those_keys() {
    assert_eq!(
        encode(&[("data_keys", "level, log")], simple_body),
        "{\"log\":\"line \\\"one\\\"\",\"level\":\"info\"}\n"
    );
    assert_eq!(encode(&[("data_keys", "nothing")], simple_body), "{}\n");
}

#[test]
fn replace_dots_in_keys_at_every_level() {
    assert_eq!(
        encode(&[("replace_dots", "_")], simple_body),
        "{\"log\":\"line \\\"one\\\"\",\"kubernetes_pod\":{\"a_b\":1},\"level\":\"info\"}\n"
    );
}

#[test]
fn deep_nesting_encodes_without_recursion() {
    let depth = 100_000;
    let out = encode(&[], |b| {
        w::write_map_len(b, 1).unwrap();
        w::write_str(b, "deep").unwrap();
        for _ in 0..depth {
            w::write_array_len(b, 1).unwrap();
        }
        w::write_nil(b).unwrap();
    });
    let expected = format!(
        "{{\"deep\":{}null{}}}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(out, expected);
}

#[test]
fn oversize_records_are_dropped_and_counted_the_rest_kept() {
    let mut chunk = event(|b| {
        w::write_map_len(b, 1).unwrap();
        w::write_str(b, "big").unwrap();
        w::write_str(b, &"x".repeat(1_100_000)).unwrap();
    });
    chunk.extend(event(simple_body));
    let (p, text) = encode_with(&[("data_keys", "big,level")], &chunk);
    assert_eq!(p.oversize, 1);
    assert_eq!(text, "{\"level\":\"info\"}\n");
}

#[test]
fn malformed_events_are_skipped_and_counted() {
    let mut chunk = event(simple_body);
    // an event whose body is a string, and one with a bad timestamp
    w::write_array_len(&mut chunk, 2).unwrap();
    w::write_uint(&mut chunk, 1).unwrap();
    w::write_str(&mut chunk, "not a map").unwrap();
    w::write_array_len(&mut chunk, 2).unwrap();
    w::write_str(&mut chunk, "when?").unwrap();
    w::write_map_len(&mut chunk, 0).unwrap();
    chunk.extend(event(simple_body));
    let (p, _) = encode_with(&[], &chunk);
    assert_eq!(p.records.len(), 2);
    assert_eq!(p.decode.malformed, 2);
}

/// The JSON text `{"<key>":<value>}`.
fn wrap(key: &str, value: &str) -> String {
    format!("{{{}:{value}}}", serde_json::to_string(key).unwrap())
}

fn base64(d: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(d)
}

#[test]
fn keys_nested_in_keys_are_bounded_and_kept() {
    // A map whose key is a map whose key is a map ... 40 levels. Three levels of keys are
    // JSON text (each re-escaping the one below); the map at the fourth becomes base64 of
    // its msgpack bytes, so the record ships with a bounded size and no deep recursion.
    let levels = 40;
    let (p, text) = encode_with(
        &[],
        &event(|b| {
            for _ in 0..levels {
                w::write_map_len(b, 1).unwrap();
            }
            w::write_str(b, "k").unwrap();
            for _ in 0..levels {
                w::write_nil(b).unwrap();
            }
        }),
    );
    assert_eq!((p.records.len(), p.decode.malformed), (1, 0));
    // The fourth key: maps 5..=40 with "k" innermost and their nil values.
    let mut fourth = vec![0x81u8; levels - 4];
    fourth.extend_from_slice(b"\xa1k");
    fourth.extend(vec![0xc0u8; levels - 4]);
    let mut want = wrap(&base64(&fourth), "null");
    for _ in 0..3 {
        want = wrap(&want, "null");
    }
    assert_eq!(text, format!("{want}\n"));

    // Scalars hold no keys: a number four keys deep is still its text.
    let (_, text) = encode_with(
        &[],
        &event(|b| {
            for _ in 0..4 {
                w::write_map_len(b, 1).unwrap();
            }
            w::write_uint(b, 7).unwrap();
            for _ in 0..4 {
                w::write_nil(b).unwrap();
            }
        }),
    );
    let mut want = wrap("7", "null");
    for _ in 0..3 {
        want = wrap(&want, "null");
    }
    assert_eq!(text, format!("{want}\n"));
}

#[test]
fn a_key_text_over_4_kib_becomes_base64_of_its_bytes() {
    let items = 3000; // [0,0,...]: 6,001 bytes of text, 3,003 of msgpack
    let mut key = Vec::new();
    w::write_array_len(&mut key, items).unwrap();
    key.extend(vec![0u8; items as usize]);
    let (p, text) = encode_with(
        &[],
        &event(|b| {
            w::write_map_len(b, 1).unwrap();
            b.extend_from_slice(&key);
            w::write_uint(b, 1).unwrap();
        }),
    );
    assert_eq!(p.decode.malformed, 0);
    assert_eq!(text, format!("{}\n", wrap(&base64(&key), "1")));
}

/// A record with a big `log` (`big` bytes of `unit`), a small `msg` and a number.
fn oversize(unit: &str, big: usize) -> Vec<u8> {
    let log = unit.repeat(big / unit.len());
    event(|b| {
        w::write_map_len(b, 3).unwrap();
        w::write_str(b, "msg").unwrap();
        w::write_str(b, "kept \"as is\"").unwrap();
        w::write_str(b, "log").unwrap();
        w::write_str(b, &log).unwrap();
        w::write_str(b, "n").unwrap();
        w::write_u32(b, 7).unwrap();
    })
}

#[test]
fn oversize_records_are_dropped_or_truncated_to_valid_one_line_json() {
    use firehose_fanout::batch::MAX_RECORD_BYTES;
    use firehose_fanout::codec::encode::TRUNCATED_MARKER;
    // drop (the default)
    let (p, _) = encode_with(&[], &oversize("a", 1_200_000));
    assert_eq!((p.records.len(), p.oversize, p.truncated), (0, 1, 0));
    // truncate: ASCII, multi-byte text, and text that JSON escapes
    for unit in ["a", "é€😀", "\"\\\n"] {
        let (p, text) = encode_with(
            &[("oversize_policy", "truncate")],
            &oversize(unit, 1_200_000),
        );
        assert_eq!(
            (p.records.len(), p.oversize, p.truncated),
            (1, 0, 1),
            "{unit:?}"
        );
        let rec = p.records.get(0);
        assert!(rec.len() <= MAX_RECORD_BYTES, "{}", rec.len());
        // As little cut as fits: within a few bytes of the limit.
        assert!(
            rec.len() + 64 >= MAX_RECORD_BYTES,
            "{unit:?}: {}",
            rec.len()
        );
        assert_eq!(text.matches('\n').count(), 1, "one line");
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let log = v["log"].as_str().expect("log");
        assert!(log.ends_with(TRUNCATED_MARKER), "{unit:?}");
        assert!(log.starts_with(unit));
        assert_eq!(v["msg"], "kept \"as is\"");
        assert_eq!(v["n"], 7);
    }
    // A record that fits is untouched.
    let (p, text) = encode_with(&[("oversize_policy", "truncate")], &oversize("a", 1000));
    assert_eq!((p.truncated, text.contains(TRUNCATED_MARKER)), (0, false));
    // log_key: raw text cut on a character boundary.
    let (p, text) = encode_with(
        &[("oversize_policy", "truncate"), ("log_key", "log")],
        &oversize("é", 1_200_000),
    );
    assert_eq!(p.truncated, 1);
    assert!(text.ends_with(&format!("{TRUNCATED_MARKER}\n")));
    assert!(p.records.get(0).len() <= MAX_RECORD_BYTES);
}
