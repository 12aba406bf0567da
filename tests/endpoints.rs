//! FIPS and dual-stack endpoints (the keys and the SDK's environment variables) resolve the
//! right Firehose and STS hosts, logged at start — seen without reaching AWS: every call
//! goes to a proxy stand-in on 127.0.0.1 that records the host asked for and refuses it.
//! Its own test binary: it sets process environment variables.

mod common;

use common::proxy::Proxy;
use flb_host::Plugin;
use std::time::{Duration, Instant};

/// Starts an instance with `props` (and the proxy), waits until the proxy was asked for a
/// tunnel, stops it; returns the hosts asked for and the start-up line.
fn hosts_asked(plugin: &Plugin, props: &[(&str, &str)]) -> (Vec<String>, String) {
    let proxy = Proxy::start();
    let url = proxy.url();
    let mut all = vec![
        ("region", "us-east-1"),
        ("delivery_streams", "s"),
        ("proxy", url.as_str()),
        ("request_timeout", "2s"),
    ];
    all.extend_from_slice(props);
    flb_host::clear_logs();
    let ins = plugin.init(&all).expect("init");
    let until = Instant::now() + Duration::from_secs(20);
    while proxy.tunnels().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = ins.exit();
    let started = flb_host::logs_containing("started: region")
        .into_iter()
        .map(|l| l.message)
        .next()
        .unwrap_or_default();
    let hosts = proxy.tunnels().into_iter().map(|t| t.target).collect();
    (hosts, started)
}

#[test]
fn fips_and_dual_stack_from_keys_and_environment() {
    common::test_env();
    let plugin = Plugin::load(common::plugin_path()).expect("load");

    let (hosts, started) = hosts_asked(&plugin, &[]);
    assert!(
        hosts
            .iter()
            .all(|h| h == "firehose.us-east-1.amazonaws.com:443"),
        "{hosts:?}"
    );
    assert!(
        started.contains("Firehose endpoint https://firehose.us-east-1.amazonaws.com"),
        "{started}"
    );

    let (hosts, started) = hosts_asked(&plugin, &[("use_fips_endpoint", "on")]);
    assert!(
        hosts
            .iter()
            .all(|h| h == "firehose-fips.us-east-1.amazonaws.com:443"),
        "{hosts:?}"
    );
    assert!(
        started.contains("https://firehose-fips.us-east-1.amazonaws.com"),
        "{started}"
    );

    let (hosts, _) = hosts_asked(&plugin, &[("use_dualstack_endpoint", "true")]);
    assert!(
        hosts.iter().all(|h| h == "firehose.us-east-1.api.aws:443"),
        "{hosts:?}"
    );

    // STS for role_arn: credentials are fetched first, from the FIPS STS endpoint.
    let (hosts, started) = hosts_asked(
        &plugin,
        &[
            ("use_fips_endpoint", "on"),
            ("role_arn", "arn:aws:iam::123456789012:role/fluent-bit"),
        ],
    );
    assert!(
        hosts.contains(&"sts-fips.us-east-1.amazonaws.com:443".to_string()),
        "{hosts:?}"
    );
    assert!(
        started.contains("STS endpoint https://sts-fips.us-east-1.amazonaws.com"),
        "{started}"
    );

    // The SDK's environment variables, when the keys are unset.
    std::env::set_var("AWS_USE_FIPS_ENDPOINT", "true");
    std::env::set_var("AWS_USE_DUALSTACK_ENDPOINT", "true");
    let (hosts, started) = hosts_asked(&plugin, &[]);
    std::env::remove_var("AWS_USE_FIPS_ENDPOINT");
    std::env::remove_var("AWS_USE_DUALSTACK_ENDPOINT");
    assert!(
        hosts
            .iter()
            .all(|h| h == "firehose-fips.us-east-1.api.aws:443"),
        "{hosts:?}"
    );
    assert!(
        started.contains("https://firehose-fips.us-east-1.api.aws"),
        "{started}"
    );
    assert!(!hosts.is_empty());
}
