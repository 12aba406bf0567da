//! End to end against moto, a real third-party AWS emulator: delivery streams with S3
//! destinations, records read back from its S3; and role assumption through its STS.
//! `moto_server` comes from .ci/install-moto.sh (target/tools/moto-venv), $MOTO_SERVER, or
//! PATH; it listens on 127.0.0.1 only.

mod common;

use common::moto::{http, start_moto};
use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};
use flb_host::chunk::{ChunkBuilder, EventTime};
use flb_host::{Plugin, FLB_OK};
use serde_json::{json, Value};

fn firehose_client(endpoint: &str) -> aws_sdk_firehose::Client {
    let conf = aws_sdk_firehose::Config::builder()
        .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
        .region(aws_sdk_firehose::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_firehose::config::Credentials::new(
            "AKIDMOTO", "secret", None, None, "test",
        ))
        .build();
    aws_sdk_firehose::Client::from_conf(conf)
}

fn chunk(first: u64, n: u64) -> Vec<u8> {
    let mut b = ChunkBuilder::new();
    for seq in first..first + n {
        b.push_v2(
            EventTime { sec: 1_764_000_000 + seq as i64, nsec: 0 },
            &json!({}),
            &json!({"seq": seq, "log": format!("line {seq}"), "kubernetes": {"namespace_name": "prod"}}),
        );
    }
    b.finish()
}

#[test]
fn records_reach_moto_s3_exactly_once_over_three_streams() {
    common::test_env();
    let moto = start_moto();
    let ep = format!("http://127.0.0.1:{}", moto.port);
    let (status, _) = http(moto.port, "PUT", "/fanout-logs", b"").expect("create bucket");
    assert_eq!(status, 200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fh = firehose_client(&ep);
    for i in 0..3 {
        rt.block_on(
            fh.create_delivery_stream()
                .delivery_stream_name(format!("moto-{i}"))
                .extended_s3_destination_configuration(
                    aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                        .role_arn("arn:aws:iam::123456789012:role/firehose")
                        .bucket_arn("arn:aws:s3:::fanout-logs")
                        .prefix(format!("moto-{i}/"))
                        .build()
                        .unwrap(),
                )
                .send(),
        )
        .expect("create delivery stream");
    }

    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let ins = plugin
        .init(&[
            ("region", "us-east-1"),
            ("endpoint", ep.as_str()),
            ("delivery_stream_prefix", "moto-"),
            ("time_key", "@timestamp"),
        ])
        .expect("init");
    for k in 0..3 {
        assert_eq!(ins.flush(&chunk(k * 1000, 1000), "kube.prod"), FLB_OK);
    }
    assert_eq!(ins.exit(), FLB_OK);

    // moto writes each delivered batch to its S3: read every object back.
    let (status, listing) = http(
        moto.port,
        "GET",
        "/fanout-logs?list-type=2&max-keys=1000",
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    let listing = String::from_utf8_lossy(&listing).to_string();
    let keys: Vec<&str> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .collect();
    assert!(!keys.is_empty(), "objects in S3: {listing}");
    let mut count = vec![0u32; 3000];
    let mut per_stream = [0u32; 3];
    for key in &keys {
        let (status, body) = http(moto.port, "GET", &format!("/fanout-logs/{key}"), b"").unwrap();
        assert_eq!(status, 200, "{key}: {}", String::from_utf8_lossy(&body));
        let stream: usize = key[5..6].parse().expect("moto-N/ prefix");
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).expect("a JSON line");
            let seq = v["seq"].as_u64().expect("seq") as usize;
            assert_eq!(v["log"], format!("line {seq}"));
            assert_eq!(v["kubernetes"]["namespace_name"], "prod");
            assert!(v["@timestamp"]
                .as_str()
                .is_some_and(|t| t.starts_with("2025-11-")));
            count[seq] += 1;
            per_stream[stream] += 1;
        }
    }
    assert!(count.iter().all(|&c| c == 1), "every record exactly once");
    assert!(per_stream.iter().all(|&n| n == 1000), "{per_stream:?}");
}

#[test]
fn requests_are_signed_with_the_assumed_roles_credentials() {
    common::test_env();
    let moto = start_moto();
    let sts = format!("http://127.0.0.1:{}", moto.port);
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("r")],
        ..Default::default()
    })
    .expect("emulator");
    let ep = emu.endpoint();
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    flb_host::clear_logs();
    let ins = plugin
        .init(&[
            ("region", "us-east-1"),
            ("endpoint", ep.as_str()),
            ("delivery_streams", "r"),
            ("role_arn", "arn:aws:iam::123456789012:role/fluent-bit"),
            ("external_id", "do-not-log-this-id"),
            ("sts_endpoint", sts.as_str()),
            ("role_session_name", "fanout-test"),
        ])
        .expect("init");
    assert_eq!(ins.flush(&chunk(0, 50), "t"), FLB_OK);
    assert_eq!(ins.exit(), FLB_OK);
    let keys = emu.stats().access_keys;
    assert!(!keys.is_empty());
    let static_key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    assert!(
        keys.keys().all(|k| *k != static_key),
        "no request signed with the base credentials: {keys:?}"
    );
    // moto issues temporary keys (ASIA...) for AssumeRole
    assert!(keys.keys().all(|k| k.starts_with("ASIA")), "{keys:?}");
    assert!(flb_host::logs()
        .iter()
        .all(|l| !l.message.contains("do-not-log-this-id")));
}

#[test]
fn sts_and_firehose_calls_go_through_the_proxy_key() {
    common::test_env();
    let moto = start_moto();
    let proxy = common::proxy::Proxy::start();
    let sts = format!("http://127.0.0.1:{}", moto.port);
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("p")],
        ..Default::default()
    })
    .expect("emulator");
    let ep = emu.endpoint();
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let proxy_url = proxy.url();
    let ins = plugin
        .init(&[
            ("region", "us-east-1"),
            ("endpoint", ep.as_str()),
            ("delivery_streams", "p"),
            ("role_arn", "arn:aws:iam::123456789012:role/fluent-bit"),
            ("sts_endpoint", sts.as_str()),
            ("proxy", proxy_url.as_str()),
        ])
        .expect("init");
    assert_eq!(ins.flush(&chunk(0, 20), "t"), FLB_OK);
    assert_eq!(ins.exit(), FLB_OK);
    // Plain http through a proxy: absolute-form requests, one connection per origin.
    let targets: Vec<String> = proxy.seen().into_iter().map(|s| s.target).collect();
    let emu_authority = ep.trim_start_matches("http://").to_string();
    assert!(
        targets.contains(&format!("127.0.0.1:{}", moto.port)),
        "STS did not go through the proxy: {targets:?}"
    );
    assert!(targets.contains(&emu_authority), "{targets:?}");
    // ... and the records went with the assumed role's keys.
    assert!(emu
        .stats()
        .access_keys
        .keys()
        .all(|k| k.starts_with("ASIA")));
}
