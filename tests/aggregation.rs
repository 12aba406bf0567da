//! Aggregation (many log records in one Firehose record, only where the reader cannot tell),
//! compression of each Firehose record, and what Firehose bills.

mod common;

use firehose_emulator::{
    DestinationSpec, Emulator, EmulatorConfig, ProcessingConfiguration, Processor, StreamSpec,
};
use flb_host::{Plugin, FLB_OK};
use serde_json::Value;
use std::io::Read;

fn emulator(streams: Vec<StreamSpec>) -> Emulator {
    common::test_env();
    Emulator::start(EmulatorConfig {
        streams,
        ..Default::default()
    })
    .expect("emulator")
}

fn chunk(first: u64, n: u64) -> Vec<u8> {
    common::seq_chunk(
        first,
        n,
        "a short line of about a hundred bytes, like most container logs are",
    )
}

fn seqs_of(lines: &[u8]) -> Vec<u64> {
    lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<Value>(l).expect("JSON line")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect()
}

fn init(plugin: &Plugin, ep: &str, streams: &str, extra: &[(&str, &str)]) -> flb_host::Instance {
    let mut p = vec![
        ("region", "us-east-1"),
        ("endpoint", ep),
        ("delivery_streams", streams),
    ];
    p.extend_from_slice(extra);
    plugin.init(&p).expect("init")
}

#[test]
fn auto_aggregates_only_plain_s3_destinations() {
    let lambda =
        DestinationSpec::default().with_processing(ProcessingConfiguration::enabled(vec![
            Processor::new("Lambda").with_parameter(
                "LambdaArn",
                "arn:aws:lambda:us-east-1:123456789012:function:f",
            ),
        ]));
    let emu = emulator(vec![
        StreamSpec::new("plain"),
        StreamSpec::new("lambda").with_destination(lambda),
        StreamSpec::new("partitioned")
            .with_destination(DestinationSpec::default().with_dynamic_partitioning(true)),
    ]);
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let ins = init(&plugin, &emu.endpoint(), "plain,lambda,partitioned", &[]);
    assert_eq!(ins.flush(&chunk(0, 3000), "t"), FLB_OK);
    let plain = emu.records("plain");
    let plain_lines: usize = plain.iter().map(|r| seqs_of(r).len()).sum();
    assert!(
        plain_lines >= 500 && plain.len() * 100 <= plain_lines,
        "plain: {} records carry {plain_lines} lines",
        plain.len()
    );
    let mut all: Vec<u64> = plain.iter().flat_map(|r| seqs_of(r)).collect();
    for s in ["lambda", "partitioned"] {
        let recs = emu.records(s);
        assert!(!recs.is_empty());
        assert!(
            recs.iter().all(|r| seqs_of(r).len() == 1),
            "{s}: one log record per Firehose record"
        );
        all.extend(recs.iter().flat_map(|r| seqs_of(r)));
    }
    all.sort_unstable();
    assert_eq!(all, (0..3000).collect::<Vec<_>>());
    ins.exit();

    // The core plugin's `simple_aggregation true` means on, whatever the destination.
    let before = emu.records("lambda").len();
    let ins = init(
        &plugin,
        &emu.endpoint(),
        "lambda",
        &[("simple_aggregation", "true")],
    );
    assert_eq!(ins.flush(&chunk(3000, 1000), "t"), FLB_OK);
    let after = emu.records("lambda");
    assert_eq!(
        after.len(),
        before + 1,
        "1,000 log records in one Firehose record"
    );
    assert_eq!(
        seqs_of(after.last().unwrap()),
        (3000..4000).collect::<Vec<_>>()
    );
    ins.exit();
}

#[test]
fn compressed_aggregates_make_valid_multi_member_files() {
    let emu = emulator(vec![StreamSpec::new("gz"), StreamSpec::new("zs")]);
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    for (stream, codec) in [("gz", "gzip"), ("zs", "zstd")] {
        let ins = init(
            &plugin,
            &emu.endpoint(),
            stream,
            &[("compression", codec), ("aggregation_max_bytes", "65536")],
        );
        assert_eq!(ins.flush(&chunk(0, 2000), "t"), FLB_OK);
        assert_eq!(ins.flush(&chunk(2000, 2000), "t"), FLB_OK);
        ins.exit();
        let recs = emu.records(stream);
        assert!(recs.len() > 2, "several members (64 KiB aggregates)");
        // What S3 gets is the records back to back: one multi-member file.
        let object: Vec<u8> = recs.concat();
        let mut text = Vec::new();
        if codec == "gzip" {
            flate2::read::MultiGzDecoder::new(&object[..])
                .read_to_end(&mut text)
                .unwrap();
        } else {
            text = zstd::stream::decode_all(&object[..]).unwrap();
        }
        assert_eq!(seqs_of(&text), (0..4000).collect::<Vec<_>>());
        assert!(
            object.len() * 5 < text.len(),
            "{codec} compresses: {} of {}",
            object.len(),
            text.len()
        );
    }
}

#[test]
fn billing_with_aggregation_is_close_to_the_raw_bytes() {
    let emu = emulator(vec![
        StreamSpec::new("bill-agg"),
        StreamSpec::new("bill-single"),
    ]);
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let mut ratio = Vec::new();
    for (stream, agg) in [("bill-agg", "on"), ("bill-single", "off")] {
        let ins = init(&plugin, &emu.endpoint(), stream, &[("aggregation", agg)]);
        for k in 0..5 {
            assert_eq!(ins.flush(&chunk(k * 2000, 2000), "t"), FLB_OK);
        }
        ins.exit();
        // The instance's closing line carries its byte counts: find it by its stream.
        let started = flb_host::logs_containing(&format!("delivery stream(s) [{stream}]"));
        let prefix = started[0].message.split("] ").next().unwrap().to_string();
        let stop = flb_host::logs()
            .into_iter()
            .find(|l| l.message.starts_with(&prefix) && l.message.contains("stopping:"))
            .expect("closing line");
        let num = |after: &str| -> f64 {
            let s = stop.message.split(after).nth(1).unwrap();
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (raw, billed) = (num("record(s) ("), num("billed as "));
        assert!(raw > 800_000.0, "{}", stop.message);
        ratio.push(billed / raw);
    }
    assert!(ratio[0] <= 1.01, "aggregated: billed/raw {:.3}", ratio[0]);
    assert!(
        ratio[1] > 40.0,
        "one ~110-byte record each is billed 5 KB: {:.1}",
        ratio[1]
    );
}

#[test]
fn small_aggregates_never_make_a_call_of_more_than_500_firehose_records() {
    // 1 KiB aggregates of ~150-byte records: a 2 MB chunk is ~2,000 Firehose records, which
    // one PutRecordBatch call cannot carry (Firehose refuses more than 500 with
    // InvalidArgumentException; the stand-in does too).
    let emu = emulator(vec![StreamSpec::new("cap-a"), StreamSpec::new("cap-b")]);
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let ins = init(
        &plugin,
        &emu.endpoint(),
        "cap-a, cap-b",
        &[
            ("aggregation", "on"),
            ("aggregation_max_bytes", "1KiB"),
            ("stream_bytes_per_second", "1000MiB"),
        ],
    );
    let n = 14_000;
    assert_eq!(ins.flush(&chunk(0, n), "t"), FLB_OK);
    let mut seen = std::collections::BTreeMap::new();
    for s in ["cap-a", "cap-b"] {
        for r in emu.records(s) {
            common::count_seqs(&r, &mut seen);
        }
    }
    assert_eq!(seen.len() as u64, n);
    assert!(seen.values().all(|&c| c == 1));
    let st = emu.stats();
    assert_eq!(st.rejected_requests, 0, "no call was refused");
    assert!(
        flb_host::logs_containing("leaves the rotation").is_empty(),
        "no stream left the rotation"
    );
    ins.exit();
}

/// Dynamic partitioning whose processors include `RecordDeAggregation` with these
/// parameters (and a JQ metadata extraction, as such streams have).
fn deaggregating(params: &[(&str, &str)]) -> DestinationSpec {
    let mut deagg = Processor::new("RecordDeAggregation");
    for (k, v) in params {
        deagg = deagg.with_parameter(*k, *v);
    }
    DestinationSpec::default()
        .with_dynamic_partitioning(true)
        .with_processing(ProcessingConfiguration::enabled(vec![
            deagg,
            Processor::new("MetadataExtraction")
                .with_parameter(
                    "MetadataExtractionQuery",
                    "{ns: .kubernetes.namespace_name}",
                )
                .with_parameter("JsonParsingEngine", "JQ-1.6"),
        ]))
}

#[test]
fn dynamic_partitioning_with_deaggregation_gets_aggregates_of_at_most_500_records() {
    let emu = emulator(vec![
        StreamSpec::new("json").with_destination(deaggregating(&[("SubRecordType", "JSON")])),
        StreamSpec::new("lines").with_destination(deaggregating(&[
            ("SubRecordType", "DELIMITED"),
            ("Delimiter", "Cg=="),
        ])),
        StreamSpec::new("pipe").with_destination(deaggregating(&[
            ("SubRecordType", "DELIMITED"),
            ("Delimiter", "fA=="),
        ])),
    ]);
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let n = 2_600u64;
    for (i, s) in ["json", "lines", "pipe"].into_iter().enumerate() {
        let ins = init(&plugin, &emu.endpoint(), s, &[]);
        let first = i as u64 * n;
        assert_eq!(ins.flush(&chunk(first, n), "t"), FLB_OK);
        ins.exit();
        let recs = emu.records(s);
        let mut seqs: Vec<u64> = recs.iter().flat_map(|r| seqs_of(r)).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (first..first + n).collect::<Vec<_>>(), "{s}");
        let most = recs.iter().map(|r| seqs_of(r).len()).max().unwrap_or(0);
        if s == "pipe" {
            // Split on another delimiter: newline-separated aggregates would not split.
            assert_eq!(most, 1, "{s}: one log record per Firehose record");
        } else {
            assert_eq!(most, 500, "{s}: aggregates of up to 500 records");
            assert_eq!(recs.len(), 6, "{s}: 2,600 records in 6 Firehose records");
            let said = format!("delivery stream {s}: aggregates of at most 500 records");
            assert!(flb_host::logs().iter().any(|l| l.message.contains(&said)));
        }
        assert_eq!(
            emu.stats().streams[s].deaggregation_failed_records,
            0,
            "{s}"
        );
    }

    // Records that are raw text (log_key) are not JSON objects: no JSON deaggregation.
    let ins = init(&plugin, &emu.endpoint(), "json", &[("log_key", "log")]);
    let before = emu.records("json").len();
    assert_eq!(ins.flush(&chunk(10_000, 50), "t"), FLB_OK);
    ins.exit();
    assert_eq!(emu.records("json").len(), before + 50);

    // Forced on (`aggregation on`) the cap does not apply: the emulator sees what
    // Firehose's deaggregation would refuse.
    let ins = init(&plugin, &emu.endpoint(), "lines", &[("aggregation", "on")]);
    assert_eq!(ins.flush(&chunk(20_000, 1_000), "t"), FLB_OK);
    ins.exit();
    assert_eq!(emu.stats().streams["lines"].deaggregation_failed_records, 1);
}
