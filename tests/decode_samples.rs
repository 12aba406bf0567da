//! Decoding the real chunks captured from Fluent Bit (tests/data/samples, a copy of the
//! shared samples) into the records the README there says a correct decoder yields.

use firehose_fanout::codec::decode::{Decoder, EventTime, Item};
use firehose_fanout::codec::encode::EncodeOptions;
use firehose_fanout::delivery::prepare;
use serde_json::Value;

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn json_records(chunk: &[u8]) -> Vec<Value> {
    let p = prepare(&EncodeOptions::default(), chunk);
    assert_eq!(p.decode.malformed, 0);
    (0..p.records.len())
        .map(|i| {
            let r = p.records.get(i);
            assert_eq!(r.last(), Some(&b'\n'), "each record ends with a newline");
            serde_json::from_slice(r).expect("each record is one JSON object")
        })
        .collect()
}

#[test]
fn dummy_chunk_is_one_record() {
    let recs = json_records(&sample("dummy_chunk.msgpack"));
    assert_eq!(recs, vec![serde_json::json!({"message": "dummy"})]);
}

#[test]
fn dummy_chunk_with_metadata_is_ten_records() {
    let chunk = sample("dummy_chunk_multi_meta.msgpack");
    let recs = json_records(&chunk);
    assert_eq!(recs.len(), 10);
    for r in &recs {
        assert_eq!(r["message"], "dummy");
        assert_eq!(r["n"], 42);
        assert_eq!(r["f"], 1.5);
        assert_eq!(r["nested"], serde_json::json!({"a": [1, true, null]}));
        // metadata is not part of the body
        assert!(r.get("k").is_none());
    }
    let times: Vec<EventTime> = Decoder::new(&chunk)
        .filter_map(|i| match i {
            Item::Record(e) => Some(e.time),
            _ => None,
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(times[0].sec > 1_700_000_000);
}

#[test]
fn k8s_chunk_is_2000_records_in_order() {
    let recs = json_records(&sample("k8s_tail_chunk.msgpack"));
    assert_eq!(recs.len(), 2000);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
        assert_eq!(r["kubernetes"]["namespace_name"], "production");
        assert!(r["kubernetes"]["labels"]["app"].is_string());
        assert!(r["log"].as_str().is_some_and(|l| l.len() > 200));
    }
}

#[test]
fn groups_and_legacy_yield_exactly_five_records() {
    let chunk = sample("handmade_groups_and_legacy.msgpack");
    let items: Vec<Item> = Decoder::new(&chunk).collect();
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, Item::GroupMarker))
            .count(),
        2
    );
    let times: Vec<EventTime> = items
        .iter()
        .filter_map(|i| match i {
            Item::Record(e) => Some(e.time),
            _ => None,
        })
        .collect();
    assert_eq!(times.len(), 5);
    // the integer and float legacy timestamps
    assert_eq!(times[3].nsec, 0);
    assert!(times[4].sec > 1_700_000_000);
    let recs = json_records(&chunk);
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert_eq!(recs[0]["message"], "order 0 placed");
    assert_eq!(recs[4]["message"], "legacy float timestamp");
}

#[test]
fn every_sample_truncated_anywhere_never_panics_and_keeps_whole_events() {
    for name in [
        "dummy_chunk.msgpack",
        "dummy_chunk_multi_meta.msgpack",
        "handmade_groups_and_legacy.msgpack",
    ] {
        let chunk = sample(name);
        let full = prepare(&EncodeOptions::default(), &chunk).records.len();
        for cut in 0..chunk.len() {
            let p = prepare(&EncodeOptions::default(), &chunk[..cut]);
            assert!(p.records.len() <= full);
            if cut > 0 && cut < chunk.len() {
                // a cut inside an event is one malformed event at most... or a clean
                // boundary with none
                assert!(p.decode.malformed <= 1, "{name} cut at {cut}");
            }
        }
    }
}
