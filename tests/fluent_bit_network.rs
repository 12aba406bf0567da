//! How the plugin's calls leave a real Fluent Bit: through a proxy (the `proxy` key with
//! credentials, `https_proxy` / `HTTPS_PROXY` from the environment, `no_proxy`), and with
//! the plugin's user agent. A forward-proxy stand-in on 127.0.0.1 counts the tunnels. And
//! what they carry to a stream with dynamic partitioning: aggregates deaggregation splits.

mod common;

use common::fluent_bit::{
    binary, lost_and_duplicated, start_tail, wait_delivered, workdir, Extra, FluentBit,
};
use common::proxy::Proxy;
use firehose_emulator::{
    DestinationSpec, Emulator, EmulatorConfig, ProcessingConfiguration, Processor, StreamSpec,
    TlsIdentity,
};
use std::time::Duration;

const STREAMS: [&str; 2] = ["px-0", "px-1"];

/// A TLS emulator whose certificate names `names`, and its CA file in `dir`.
fn tls_emulator(names: &[&str], dir: &std::path::Path) -> (Emulator, std::path::PathBuf) {
    let identity = TlsIdentity::generate_for(names.iter().copied()).expect("a test CA");
    let ca = identity.write_ca(dir).expect("CA file");
    let emu = Emulator::start(EmulatorConfig {
        streams: STREAMS.iter().map(|s| StreamSpec::new(*s)).collect(),
        tls: Some(identity),
        signing_secret: Some(common::TEST_SECRET.into()),
        ..Default::default()
    })
    .expect("emulator with TLS");
    (emu, ca)
}

/// Tails `n` records into the emulator at `endpoint`; returns Fluent Bit once all arrived
/// exactly once.
/// The port of the stand-in's endpoint.
fn port_of(emu: &Emulator) -> String {
    let endpoint = emu.endpoint();
    endpoint.rsplit(':').next().unwrap_or_default().to_string()
}

fn deliver(
    name: &str,
    endpoint: &str,
    emu: &Emulator,
    output: &str,
    env: &[(&str, &str)],
    dir: &std::path::Path,
) -> FluentBit {
    let Some(bin) = binary() else {
        unreachable!("checked by the caller")
    };
    let n = 5_000u64;
    let extra = Extra {
        output,
        env,
        ..Extra::default()
    };
    let (_, mut fb) = start_tail(&bin, dir, endpoint, &STREAMS, (0..n, 40), extra);
    let seen = wait_delivered(emu, &STREAMS, n as usize, Duration::from_secs(60));
    assert!(fb.alive(), "{name}: Fluent Bit died:\n{}", fb.tail());
    assert_eq!(
        lost_and_duplicated(&seen, n),
        (0, 0),
        "{name}\n{}",
        fb.tail()
    );
    fb
}

#[test]
fn the_proxy_key_with_credentials_tunnels_every_call_and_never_logs_the_password() {
    if binary().is_none() {
        return;
    }
    let dir = workdir("proxy-key");
    let (emu, ca) = tls_emulator(&["127.0.0.1"], &dir);
    let proxy = Proxy::start();
    let url = format!("http://alice:s3cret-pw@127.0.0.1:{}", proxy.port);
    let output = format!(
        "    ca_file {}\n    proxy {url}\n    user_agent_suffix team/payments\n    workers 2\n",
        ca.display()
    );
    let mut fb = deliver("proxy key", &emu.endpoint(), &emu, &output, &[], &dir);
    let tunnels = proxy.tunnels();
    let port = port_of(&emu);
    assert!(!tunnels.is_empty(), "no CONNECT seen");
    assert!(
        tunnels
            .iter()
            .all(|t| t.target == format!("127.0.0.1:{port}")),
        "{tunnels:?}"
    );
    // Basic base64("alice:s3cret-pw")
    assert!(
        tunnels
            .iter()
            .all(|t| t.authorization.as_deref() == Some("Basic YWxpY2U6czNjcmV0LXB3")),
        "{tunnels:?}"
    );
    fb.wait_log(
        &format!(
            "proxy http://***@127.0.0.1:{} (from the proxy key)",
            proxy.port
        ),
        Duration::from_secs(5),
    );
    assert!(
        !fb.log().contains("s3cret-pw"),
        "the password is in the log"
    );
    // Every Firehose call names the plugin, its version and the suffix.
    let agents = emu.stats().user_agents;
    assert!(!agents.is_empty());
    let ours = format!(
        "firehose-fanout/{} team/payments",
        env!("CARGO_PKG_VERSION")
    );
    assert!(agents.keys().all(|ua| ua.contains(&ours)), "{agents:?}");
    assert!(
        agents.keys().all(|ua| ua.contains("app/firehose-fanout-")),
        "{agents:?}"
    );
    let st = fb.stop(Duration::from_secs(20));
    assert!(st.is_some_and(|s| s.success()), "{st:?}");
}

#[test]
fn https_proxy_from_the_environment_in_either_case() {
    if binary().is_none() {
        return;
    }
    // A name no resolver knows: only the proxy can reach it (it maps `.test` to loopback).
    let host = "firehose.proxy.test";
    for var in ["https_proxy", "HTTPS_PROXY"] {
        let dir = workdir(&format!("proxy-env-{var}"));
        let (emu, ca) = tls_emulator(&[host], &dir);
        let proxy = Proxy::start();
        let port = port_of(&emu);
        let endpoint = format!("https://{host}:{port}");
        let output = format!("    ca_file {}\n", ca.display());
        let url = proxy.url();
        let mut fb = deliver(var, &endpoint, &emu, &output, &[(var, &url)], &dir);
        let tunnels = proxy.tunnels();
        assert!(!tunnels.is_empty(), "{var}: no CONNECT seen");
        assert!(
            tunnels.iter().all(|t| t.target == format!("{host}:{port}")),
            "{tunnels:?}"
        );
        fb.wait_log(
            &format!("proxy {url} (from HTTPS_PROXY)"),
            Duration::from_secs(5),
        );
        let _ = fb.stop(Duration::from_secs(20));
    }
}

#[test]
fn no_proxy_and_loopback_go_direct() {
    if binary().is_none() {
        return;
    }
    // An environment proxy never carries loopback traffic; the key's no_proxy is honoured.
    let cases: [(&str, &str, bool); 2] = [
        ("env-loopback", "", true),
        (
            "key-no-proxy",
            "    proxy {P}\n    no_proxy 127.0.0.1\n",
            false,
        ),
    ];
    for (name, output, from_env) in cases {
        let dir = workdir(&format!("proxy-{name}"));
        let (emu, ca) = tls_emulator(&["127.0.0.1"], &dir);
        let proxy = Proxy::start();
        let output = format!(
            "    ca_file {}\n{}",
            ca.display(),
            output.replace("{P}", &proxy.url())
        );
        let url = proxy.url();
        let env: Vec<(&str, &str)> = if from_env {
            vec![("HTTPS_PROXY", url.as_str())]
        } else {
            Vec::new()
        };
        let mut fb = deliver(name, &emu.endpoint(), &emu, &output, &env, &dir);
        assert!(proxy.seen().is_empty(), "{name}: {:?}", proxy.seen());
        let _ = fb.stop(Duration::from_secs(20));
    }
}

#[test]
fn dynamic_partitioning_with_json_deaggregation_gets_aggregates_it_can_split() {
    let Some(bin) = binary() else { return };
    let dest = DestinationSpec::default()
        .with_dynamic_partitioning(true)
        .with_processing(ProcessingConfiguration::enabled(vec![Processor::new(
            "RecordDeAggregation",
        )
        .with_parameter("SubRecordType", "JSON")]));
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("dp").with_destination(dest)],
        ..Default::default()
    })
    .expect("emulator");
    let dir = workdir("dynamic-partitioning");
    let n = 20_000u64;
    let extra = Extra {
        output: "    workers 2\n",
        ..Extra::default()
    };
    let (_, mut fb) = start_tail(&bin, &dir, &emu.endpoint(), &["dp"], (0..n, 40), extra);
    let seen = wait_delivered(&emu, &["dp"], n as usize, Duration::from_secs(60));
    assert_eq!(lost_and_duplicated(&seen, n), (0, 0), "{}", fb.tail());
    let records = emu.records("dp");
    let most = records
        .iter()
        .map(|r| r.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count())
        .max()
        .unwrap_or(0);
    assert!(
        most <= 500 && most > 100,
        "at most 500 per aggregate: {most}"
    );
    assert!(
        records.len() < n as usize / 100,
        "{} Firehose records",
        records.len()
    );
    assert_eq!(emu.stats().streams["dp"].deaggregation_failed_records, 0);
    fb.wait_log(
        "delivery stream dp: aggregates of at most 500 records (dynamic partitioning that splits JSON",
        Duration::from_secs(5),
    );
    let _ = fb.stop(Duration::from_secs(20));
}

#[test]
fn oversize_records_are_truncated_to_fit_with_a_marker() {
    let Some(bin) = binary() else { return };
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("big")],
        ..Default::default()
    })
    .expect("emulator");
    let dir = workdir("oversize");
    // Lines 0..10 normal; 10..13 carry a log of 1.5 MB (over Firehose's 1,000 KiB).
    let input = dir.join("app.jsonl");
    common::fluent_bit::append_lines(&input, 0..10, 40);
    common::fluent_bit::append_lines(&input, 10..13, 1_500_000);
    let output = format!(
        "    endpoint {}\n    delivery_streams big\n    oversize_policy truncate\n",
        emu.endpoint()
    );
    let conf =
        common::fluent_bit::tail_config(&dir, &input, "", "    Buffer_Max_Size  4M\n", &output);
    let mut fb = FluentBit::start(&bin, &conf, &[]);
    let seen = wait_delivered(&emu, &["big"], 13, Duration::from_secs(60));
    assert_eq!(lost_and_duplicated(&seen, 13), (0, 0), "{}", fb.tail());
    let marker = "...[truncated by firehose_fanout]";
    let mut cut = 0;
    for rec in emu.records("big") {
        for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(line.len() <= 1_024_000, "{} bytes", line.len());
            let v: serde_json::Value = serde_json::from_slice(line).expect("valid JSON");
            let log = v["log"].as_str().expect("log");
            if v["seq"].as_u64().is_some_and(|s| s >= 10) {
                assert!(log.ends_with(marker), "seq {} not cut", v["seq"]);
                cut += 1;
            } else {
                assert!(!log.contains(marker));
            }
        }
    }
    assert_eq!(cut, 3);
    let _ = fb.stop(Duration::from_secs(20));
}
