//! `firehose-fanout check` through the real binary: classic and YAML files and `-p`, against
//! the emulator (streams, destinations, actions denied as IAM denies them) and moto. Only
//! 127.0.0.1 is ever reached: static credentials, no instance metadata.

#[path = "../../../tests/common/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use firehose_emulator::{
    DestinationSpec, Emulator, EmulatorConfig, Faults, ProcessingConfiguration, Processor,
    StreamSpec,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_firehose-fanout");
const SECRET: &str = "check-test-secret-never-printed";

/// The binary with static credentials only: no profile, no instance metadata.
fn check(args: &[&str]) -> Output {
    check_with(args, &[])
}

/// `check` with more environment variables.
fn check_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("check").args(args);
    for v in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        c.env_remove(v);
    }
    c.env("AWS_ACCESS_KEY_ID", "AKIDCHECKTEST9876")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/firehose-fanout-check-test")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/firehose-fanout-check-test",
        )
        .env("CHECK_TEST_PREFIX", "logs-")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let out = c.output().expect("run firehose-fanout check");
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(SECRET), "the secret key was printed:\n{all}");
    assert!(
        !all.contains("AKIDCHECKTEST9876"),
        "the whole access key id was printed:\n{all}"
    );
    out
}

/// `check -p region=us-east-1 -p endpoint=ENDPOINT -p STREAMS` and `extra` arguments.
fn check_props(endpoint: &str, streams: &str, extra: &[&str]) -> Output {
    let ep = format!("endpoint={endpoint}");
    let mut args = vec!["-p", "region=us-east-1", "-p", &ep, "-p", streams];
    args.extend_from_slice(extra);
    check(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ffcheck-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write config");
        p.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lambda_destination() -> DestinationSpec {
    DestinationSpec::default().with_processing(ProcessingConfiguration::enabled(vec![
        Processor::new("Lambda").with_parameter(
            "LambdaArn",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ),
    ]))
}

fn emulator(streams: Vec<StreamSpec>, faults: Faults) -> Emulator {
    Emulator::start(EmulatorConfig {
        streams,
        faults,
        ..Default::default()
    })
    .expect("emulator")
}

fn classic(endpoint: &str, streams: &str) -> String {
    format!(
        "[SERVICE]\n    Flush 1\n\n[INPUT]\n    Name dummy\n\n[OUTPUT]\n    Name              firehose_fanout\n    Match             *\n    region            us-east-1\n    endpoint          {endpoint}\n    delivery_streams  {streams}\n    workers           2\n    Retry_Limit       False\n"
    )
}

fn sent(emu: &Emulator) -> u64 {
    emu.stats()
        .streams
        .values()
        .map(|s| s.accepted_records)
        .sum()
}

#[test]
fn classic_file_with_working_streams_would_deliver() {
    let emu = emulator(
        vec![StreamSpec::new("logs-0"), StreamSpec::new("logs-1")],
        Faults::default(),
    );
    let dir = TempDir::new("classic-ok");
    let conf = dir.write(
        "fluent-bit.conf",
        &classic(&emu.endpoint(), "logs-0, logs-1"),
    );
    let out = check(&["-c", &conf]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    for want in [
        "[OUTPUT] firehose_fanout.0",
        "fluent-bit.conf:7",
        "environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), access key …9876",
        "stream logs-0 (delivery_streams)",
        "stream logs-1 (delivery_streams)",
        "status          ACTIVE",
        "destination     S3 arn:aws:s3:::",
        "aggregation     yes: S3 destination without record processing",
        "quota assumed   500000 records/s, 5 MiB/s, 2000 requests/s",
        "=> would deliver",
        "1 of 1 output would deliver",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    for action in [
        "firehose:ListDeliveryStreams",
        "firehose:DescribeDeliveryStream",
        "firehose:PutRecordBatch",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(action))
            .unwrap_or_else(|| panic!("no {action} line in:\n{text}"));
        assert!(line.contains("allowed"), "{line}");
    }
    assert!(text.contains("refused as invalid (InvalidArgumentException); nothing was sent"));
    assert_eq!(sent(&emu), 0, "the check delivered records");
}

#[test]
fn yaml_file_with_a_prefix_explains_each_streams_aggregation() {
    let emu = emulator(
        vec![
            StreamSpec::new("logs-a"),
            StreamSpec::new("logs-lambda").with_destination(lambda_destination()),
            StreamSpec::new("other"),
        ],
        Faults::default(),
    );
    let dir = TempDir::new("yaml-ok");
    let yaml = dir.write(
        "fluent-bit.yaml",
        &format!(
            "service:\n  flush: 1\npipeline:\n  inputs:\n    - name: dummy\n  outputs:\n    - name: stdout\n      match: '*'\n    - name: firehose_fanout\n      alias: to-firehose\n      match: kube.*\n      region: us-east-1\n      endpoint: {}\n      delivery_stream_prefix: ${{CHECK_TEST_PREFIX}}\n      port: 4443\n      storage.total_limit_size: 5G\n      retry_limit: false\n",
            emu.endpoint()
        ),
    );
    let out = check(&["-c", &yaml, "--json"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    assert_eq!(v["would_deliver"], true);
    let o = &v["outputs"][0];
    assert_eq!(o["name"], "to-firehose");
    assert_eq!(o["match"], "kube.*");
    let streams = o["streams"].as_array().expect("streams");
    let names: Vec<&str> = streams.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        names,
        ["logs-a", "logs-lambda"],
        "found by prefix, not 'other'"
    );
    assert_eq!(streams[0]["from"], "delivery_stream_prefix");
    assert_eq!(streams[0]["aggregation"], true);
    assert_eq!(streams[1]["aggregation"], false);
    assert_eq!(
        streams[1]["aggregation_why"],
        "a processor (Lambda or another) sees each Firehose record"
    );
    assert_eq!(
        streams[0]["quota"]["bytes_per_second"],
        5.0 * 1024.0 * 1024.0
    );
    let warnings = o["warnings"].to_string();
    assert!(
        warnings.contains("port 4443 is kept by Fluent Bit"),
        "{warnings}"
    );
    assert_eq!(
        o["actions"][0]["action"], "firehose:ListDeliveryStreams",
        "{o}"
    );
    assert_eq!(o["actions"][0]["result"], "allowed");
}

#[test]
fn a_missing_stream_is_named_and_fails_the_check() {
    let emu = emulator(vec![StreamSpec::new("logs-0")], Faults::default());
    let dir = TempDir::new("missing");
    let conf = dir.write("f.conf", &classic(&emu.endpoint(), "logs-0,logs-gone"));
    let out = check(&["-c", &conf]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(
        text.contains("problem: delivery stream logs-gone does not exist in us-east-1"),
        "{text}"
    );
    assert!(
        text.contains("PutRecordBatch  not checked: the stream does not exist"),
        "{text}"
    );
    assert!(text.contains("would NOT deliver: 1 problem"), "{text}");
    assert!(text.contains("0 of 1 output would deliver"), "{text}");
}

#[test]
fn a_denied_put_is_named_and_nothing_is_sent() {
    let denied = Faults {
        deny_actions: vec!["PutRecordBatch".into()],
        ..Default::default()
    };
    let emu = emulator(
        vec![
            StreamSpec::new("logs-0"),
            StreamSpec::new("logs-1").with_faults(denied),
        ],
        Faults::default(),
    );
    let out = check_props(&emu.endpoint(), "delivery_streams=logs-0,logs-1", &[]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(
        text.contains("problem: firehose:PutRecordBatch is denied on logs-1"),
        "{text}"
    );
    let put_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("firehose:PutRecordBatch"))
        .unwrap_or_default();
    assert!(put_line.ends_with("denied on logs-1"), "{put_line}\n{text}");
    assert!(!text.contains("problem: firehose:PutRecordBatch is denied on logs-0"));
    assert_eq!(sent(&emu), 0);
}

#[test]
fn a_denied_list_fails_discovery_by_prefix_but_not_named_streams() {
    let deny_list = Faults {
        deny_actions: vec!["ListDeliveryStreams".into()],
        ..Default::default()
    };
    let emu = emulator(vec![StreamSpec::new("logs-0")], deny_list);
    let by_prefix = check_props(&emu.endpoint(), "delivery_stream_prefix=logs-", &[]);
    let text = stdout(&by_prefix);
    assert_eq!(code(&by_prefix), 1, "{text}");
    assert!(
        text.contains("problem: firehose:ListDeliveryStreams is denied"),
        "{text}"
    );
    let named = check_props(&emu.endpoint(), "delivery_streams=logs-0", &[]);
    let text = stdout(&named);
    assert_eq!(code(&named), 0, "{text}");
    assert!(
        text.contains("the plugin calls it only with delivery_stream_prefix"),
        "{text}"
    );
}

#[test]
fn a_denied_describe_keeps_aggregation_off_with_a_warning() {
    let emu = emulator(
        vec![StreamSpec::new("logs-0")],
        Faults {
            deny_actions: vec!["DescribeDeliveryStream".into()],
            ..Default::default()
        },
    );
    let out = check_props(&emu.endpoint(), "delivery_streams=logs-0", &["--json"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let o = &v["outputs"][0];
    assert_eq!(o["actions"][1]["action"], "firehose:DescribeDeliveryStream");
    assert_eq!(o["actions"][1]["result"], "denied");
    assert_eq!(o["streams"][0]["aggregation"], false);
    assert_eq!(o["streams"][0]["status"], "unknown");
    assert!(
        o["warnings"].to_string().contains("aggregation stays off"),
        "{o}"
    );
}

#[test]
fn configuration_errors_exit_2_with_the_plugins_message() {
    let bad = check(&[
        "-p",
        "region=us-east-1",
        "-p",
        "delivery_streams=a",
        "-p",
        "balance=fastest",
    ]);
    assert_eq!(code(&bad), 2);
    let err = stderr(&bad);
    assert!(
        err.contains("configuration error: balance = 'fastest' is not valid"),
        "{err}"
    );
    assert!(stdout(&bad).is_empty());

    let dir = TempDir::new("bad");
    let conf = dir.write(
        "f.conf",
        "[OUTPUT]\n    Name firehose_fanout\n    region us-east-1\n    delivery_streams a\n    flush_timeout soon\n",
    );
    let out = check(&["-c", &conf]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("firehose_fanout.0"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("flush_timeout = 'soon'"),
        "{}",
        stderr(&out)
    );

    let none = dir.write("none.conf", "[OUTPUT]\n    Name stdout\n    Match *\n");
    let out = check(&["-c", &none]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no output with name firehose_fanout (of 1 output in the file)"),
        "{}",
        stderr(&out)
    );
    let out = check(&["-c", "/nonexistent/fluent-bit.conf"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot be read"), "{}", stderr(&out));
    assert_eq!(code(&check(&[])), 2);
}

#[test]
fn the_shipped_configurations_check_against_the_emulator() {
    let emu = emulator(
        vec![StreamSpec::new("logs-0"), StreamSpec::new("logs-1")],
        Faults::default(),
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fluent-bit");
    for file in ["fluent-bit.conf", "fluent-bit.yaml"] {
        let path = root.join(file).display().to_string();
        // As in the DaemonSet, the environment gives the region and the prefix; -p points
        // the output at the stand-in.
        let out = check_with(
            &["-c", &path, "-p", &format!("endpoint={}", emu.endpoint())],
            &[
                ("AWS_REGION", "us-east-1"),
                ("FIREHOSE_STREAM_PREFIX", "logs-"),
            ],
        );
        let text = stdout(&out);
        assert_eq!(code(&out), 0, "{file}:\n{text}{}", stderr(&out));
        assert!(
            text.contains("stream logs-0 (delivery_stream_prefix)"),
            "{text}"
        );
        assert!(
            text.contains("stream logs-1 (delivery_stream_prefix)"),
            "{text}"
        );
        assert!(!text.contains("warning:"), "{text}");
    }
}

#[test]
fn against_moto() {
    let moto = moto::start_moto();
    let ep = format!("http://127.0.0.1:{}", moto.port);
    let (status, _) = moto::http(moto.port, "PUT", "/check-logs", b"").expect("create bucket");
    assert_eq!(status, 200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fh = aws_sdk_firehose::Client::from_conf(
        aws_sdk_firehose::Config::builder()
            .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
            .region(aws_sdk_firehose::config::Region::new("us-east-1"))
            .endpoint_url(&ep)
            .credentials_provider(aws_sdk_firehose::config::Credentials::new(
                "AKIDMOTO", "secret", None, None, "test",
            ))
            .build(),
    );
    rt.block_on(
        fh.create_delivery_stream()
            .delivery_stream_name("moto-0")
            .extended_s3_destination_configuration(
                aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                    .role_arn("arn:aws:iam::123456789012:role/firehose")
                    .bucket_arn("arn:aws:s3:::check-logs")
                    .build()
                    .expect("destination"),
            )
            .send(),
    )
    .expect("create delivery stream");
    let props = |streams: &str| check_props(&ep, streams, &["--json"]);
    let out = props("delivery_stream_prefix=moto-");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let s = &v["outputs"][0]["streams"][0];
    assert_eq!(s["name"], "moto-0");
    assert_eq!(s["status"], "ACTIVE");
    // moto's DescribeDeliveryStream answer lacks members the SDK requires: the plugin reads
    // the status from the raw body and does not aggregate, and the check says so.
    assert_eq!(s["destination"], "unknown");
    assert_eq!(s["aggregation"], false);
    assert_eq!(
        s["aggregation_why"],
        "the DescribeDeliveryStream answer could not be read in full"
    );
    // moto takes the call without records (AWS refuses it) and writes an empty object:
    // no record reached the bucket.
    assert!(
        s["put_record_batch"]
            .as_str()
            .is_some_and(|p| p.starts_with("allowed: a call with no records was accepted")),
        "{s}"
    );
    let (status, listing) = moto::http(moto.port, "GET", "/check-logs", b"").expect("list");
    assert_eq!(status, 200);
    let listing = String::from_utf8_lossy(&listing);
    let sizes: Vec<&str> = listing
        .split("<Size>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Size>").map(|(n, _)| n))
        .collect();
    assert!(sizes.iter().all(|n| *n == "0"), "{listing}");

    // role_arn: the chain's credentials are exchanged through moto's STS, as the plugin does.
    let role = check_props(
        &ep,
        "delivery_streams=moto-0",
        &[
            "-p",
            "role_arn=arn:aws:iam::123456789012:role/fluent-bit",
            "-p",
            &format!("sts_endpoint={ep}"),
        ],
    );
    let text = stdout(&role);
    assert_eq!(code(&role), 0, "{text}{}", stderr(&role));
    assert!(
        text.contains("role arn:aws:iam::123456789012:role/fluent-bit, assumed through STS with environment variables"),
        "{text}"
    );
    assert!(
        !text.contains("access key …9876"),
        "the role's key, not the chain's: {text}"
    );

    let out = props("delivery_streams=moto-0,moto-9");
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("delivery stream moto-9 does not exist"));
}
