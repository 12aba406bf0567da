//! The chunk builder against hand-checked bytes and a real Fluent Bit chunk.

use flb_host::chunk::{
    json_to_msgpack, write_json_text, ChunkBuilder, EventTime, MsgValue, Timestamp,
};
use serde_json::json;

/// `dummy_chunk.msgpack` from a real Fluent Bit v5.1.1 (`dummy` input).
const REAL_DUMMY: [u8; 28] = [
    0x92, 0x92, 0xd7, 0x00, 0x6b, 0x0a, 0x13, 0x5d, 0x0d, 0x4e, 0x81, 0xc9, 0x80, 0x81, 0xa7, b'm',
    b'e', b's', b's', b'a', b'g', b'e', 0xa5, b'd', b'u', b'm', b'm', b'y',
];

#[test]
fn v2_event_matches_real_fluent_bit_bytes() {
    let mut c = ChunkBuilder::new();
    c.push_v2(
        EventTime::new(0x6b0a135d, 0x0d4e81c9),
        &json!({}),
        &json!({"message": "dummy"}),
    );
    assert_eq!(c.event_count(), 1);
    assert_eq!(c.finish(), REAL_DUMMY);

    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/dummy_chunk.msgpack");
    if let Ok(bytes) = std::fs::read(shared) {
        assert_eq!(bytes, REAL_DUMMY);
    }
}

#[test]
fn group_markers() {
    let mut c = ChunkBuilder::new();
    c.push_group_start(&json!({}), &json!({})).push_group_end();
    let b = c.finish();
    assert_eq!(
        b,
        [
            0x92, 0x92, 0xd7, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0x80, //
            0x92, 0x92, 0xd7, 0x00, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0x80, 0x80,
        ]
    );
}

#[test]
fn legacy_timestamps() {
    let mut c = ChunkBuilder::new();
    c.push_legacy(1_700_000_000i64, &json!({"a": 1}))
        .push_legacy(1.5f64, &json!({}))
        .push_legacy(EventTime::new(1, 2), &json!({}))
        .push_v2(Timestamp::Int(-1), &json!({}), &json!({}));
    let b = c.finish();
    let mut expect = vec![0x92, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x81, 0xa1, b'a', 0x01];
    expect.extend_from_slice(&[0x92, 0xcb]);
    expect.extend_from_slice(&1.5f64.to_be_bytes());
    expect.push(0x80);
    expect.extend_from_slice(&[0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2, 0x80]);
    expect.extend_from_slice(&[0x92, 0x92, 0xff, 0x80, 0x80]);
    assert_eq!(b, expect);
}

#[test]
fn json_conversion() {
    // keys in sorted order, so the bytes are the same with or without
    // serde_json's preserve_order feature
    let v = json!({"a": [1, "y"], "b": true, "f": 0.5, "i": -3, "n": null, "s": "x", "u": 300});
    let b = json_to_msgpack(&v);
    let mut expect = vec![0x87];
    expect.extend_from_slice(&[0xa1, b'a', 0x92, 0x01, 0xa1, b'y']);
    expect.extend_from_slice(&[0xa1, b'b', 0xc3]);
    expect.extend_from_slice(&[0xa1, b'f', 0xcb]);
    expect.extend_from_slice(&0.5f64.to_be_bytes());
    expect.extend_from_slice(&[0xa1, b'i', 0xfd]);
    expect.extend_from_slice(&[0xa1, b'n', 0xc0]);
    expect.extend_from_slice(&[0xa1, b's', 0xa1, b'x']);
    expect.extend_from_slice(&[0xa1, b'u', 0xcd, 0x01, 0x2c]);
    assert_eq!(b, expect);
    assert_eq!(MsgValue::from_json(&v).encode(), expect);
}

#[test]
fn json_text_conversion() {
    // Same bytes as from a Value when the keys are sorted ...
    let text = r#" {"a": [1, "y"], "b": true, "f": 0.5, "i": -3, "n": null, "s": "x", "u": 300}
"#;
    let mut b = Vec::new();
    write_json_text(&mut b, text.as_bytes()).unwrap();
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(b, json_to_msgpack(&v));
    // ... and the text's order (duplicates too) when they are not.
    let mut b = Vec::new();
    write_json_text(
        &mut b,
        br#"{"z": 1, "a": {"k": [], "k": 18446744073709551615}, "m": -1.5e3}"#,
    )
    .unwrap();
    let expect = MsgValue::str_map(vec![
        ("z", MsgValue::Uint(1)),
        (
            "a",
            MsgValue::str_map(vec![
                ("k", MsgValue::Array(vec![])),
                ("k", MsgValue::Uint(u64::MAX)),
            ]),
        ),
        ("m", MsgValue::F64(-1500.0)),
    ]);
    assert_eq!(b, expect.encode());
    // Scalars, and errors.
    let mut b = Vec::new();
    write_json_text(&mut b, b"\"\\u00e9\"").unwrap();
    assert_eq!(b, MsgValue::str("\u{e9}").encode());
    for bad in [&b"{\"a\":"[..], b"{} {}", b"", b"[1,]", b"nul"] {
        assert!(write_json_text(&mut Vec::new(), bad).is_err(), "{bad:?}");
    }
}

#[test]
fn builder_clear_keeps_building() {
    let mut c = ChunkBuilder::new();
    c.push_v2(EventTime::new(1, 2), &json!({}), &json!({"a": 1}));
    let first = c.to_vec();
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.event_count(), 0);
    c.push_v2(EventTime::new(1, 2), &json!({}), &json!({"a": 1}));
    assert_eq!((c.as_bytes(), c.event_count()), (&first[..], 1));
}

#[test]
fn raw_bodies() {
    let body = MsgValue::map(vec![
        (MsgValue::Int(1), MsgValue::Bin(vec![0xde, 0xad])),
        (MsgValue::str("e"), MsgValue::Ext(5, vec![1, 2, 3, 4])),
        (MsgValue::StrBytes(vec![0xff]), MsgValue::F32(1.0)),
        (MsgValue::Nil, MsgValue::Raw(vec![0xc3])),
    ])
    .encode();
    let mut c = ChunkBuilder::new();
    c.push_v2_raw_body(EventTime::new(0, 0), &body)
        .push_raw(&[0xc1]);
    assert_eq!(c.event_count(), 1);
    let b = c.finish();
    let mut expect = vec![0x92, 0x92, 0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x80];
    expect.extend_from_slice(&[0x84, 0x01, 0xc4, 0x02, 0xde, 0xad]);
    expect.extend_from_slice(&[0xa1, b'e', 0xd6, 0x05, 1, 2, 3, 4]);
    expect.extend_from_slice(&[0xa1, 0xff, 0xca]);
    expect.extend_from_slice(&1.0f32.to_be_bytes());
    expect.extend_from_slice(&[0xc0, 0xc3, 0xc1]);
    assert_eq!(b, expect);
}
