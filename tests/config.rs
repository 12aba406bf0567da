//! Configuration: defaults, accepted spellings, and errors that say what to change.

use firehose_fanout::config::{parse_duration, Config, ConfigError};
use std::time::Duration;

fn load(props: &[(&str, &str)]) -> Result<Config, ConfigError> {
    // Fluent Bit's property lookup is case-insensitive; mimic it.
    Config::from_lookup(|k| {
        props
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.to_string())
    })
}

fn base() -> Vec<(&'static str, &'static str)> {
    vec![("region", "eu-west-1"), ("delivery_streams", "a, b ,c,a")]
}

fn err(extra: &[(&str, &str)]) -> String {
    let mut p = base();
    p.extend_from_slice(extra);
    load(&p).expect_err("must be refused").to_string()
}

#[test]
fn defaults() {
    let c = load(&base()).unwrap();
    assert_eq!(c.region, "eu-west-1");
    assert_eq!(
        c.streams,
        vec!["a", "b", "c"],
        "trimmed, de-duplicated, in order"
    );
    assert_eq!(c.flush_timeout, Duration::from_secs(30));
    assert_eq!(c.endpoint, None);
    assert_eq!(c.encode.time_key, None);
    assert_eq!(c.max_in_flight_per_stream, 16);
    assert_eq!(c.buffer_linger, Duration::from_secs(2));
}

#[test]
fn core_plugin_spelling_and_case_insensitive_keys() {
    let c = load(&[("Region", "us-east-1"), ("Delivery_Stream", "only")]).unwrap();
    assert_eq!(c.streams, vec!["only"]);
    let c = load(&[
        ("region", "us-east-1"),
        ("delivery_stream", "x"),
        ("delivery_streams", "y,x"),
    ])
    .unwrap();
    assert_eq!(c.streams, vec!["y", "x"]);
}

#[test]
fn missing_streams_says_what_to_set() {
    let e = load(&[("region", "us-east-1")]).unwrap_err();
    assert_eq!(e, ConfigError::NoStreams);
    assert!(e.to_string().contains("set delivery_streams"));
    let e = load(&[("region", "us-east-1"), ("delivery_streams", " , ")]).unwrap_err();
    assert_eq!(e, ConfigError::NoStreams);
}

#[test]
fn bad_values_name_key_value_and_what_is_accepted() {
    let e = err(&[("flush_timeout", "soon")]);
    assert!(
        e.contains("flush_timeout = 'soon'") && e.contains("duration"),
        "{e}"
    );
    let e = err(&[("flush_timeout", "0s")]);
    assert!(e.contains("flush_timeout"), "{e}");
    let e = err(&[("endpoint", "ftp://x")]);
    assert!(
        e.contains("endpoint = 'ftp://x'") && e.contains("http://"),
        "{e}"
    );
    let e = err(&[("endpoint", "http://:99")]);
    assert!(e.contains("endpoint"), "{e}");
    let e = err(&[("endpoint", "http://h:notaport")]);
    assert!(e.contains("endpoint"), "{e}");
    let e = err(&[("port", "70000")]);
    assert!(e.contains("port = '70000'"), "{e}");
    let e = err(&[("time_key_format", "%Y %Q")]);
    assert!(e.contains("time_key_format") && e.contains("%Q"), "{e}");
    let e = err(&[("max_in_flight_per_stream", "0")]);
    assert!(
        e.contains("max_in_flight_per_stream = '0'") && e.contains("1 to 64"),
        "{e}"
    );
    let e = load(&[("region", "Not A Region"), ("delivery_streams", "a")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("region = 'Not A Region'"), "{e}");
    let e = load(&[("region", "us-east-1"), ("delivery_streams", "ok,bad name")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("delivery_streams") && e.contains("1-64 characters"),
        "{e}"
    );
    let e = err(&[("buffer_linger", "2m")]);
    assert!(
        e.contains("buffer_linger = '2m'") && e.contains("at most 60s"),
        "{e}"
    );
    let e = err(&[("tls.ca_file", "/nonexistent/ca.pem")]);
    assert!(e.contains("tls.ca_file = '/nonexistent/ca.pem'"), "{e}");
}

#[test]
fn ca_file_must_hold_a_certificate() {
    let dir = std::env::temp_dir().join(format!("ff-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a cert").unwrap();
    let e = err(&[("tls.ca_file", junk.to_str().unwrap())]);
    assert!(e.contains("no PEM certificate"), "{e}");
    let good = dir.join("ca.pem");
    std::fs::write(
        &good,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let mut p = base();
    p.push(("tls.ca_file", good.to_str().unwrap()));
    assert!(load(&p).unwrap().ca_pem.is_some());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn endpoint_and_port() {
    let mut p = base();
    p.push(("endpoint", "http://127.0.0.1:4573/"));
    assert_eq!(
        load(&p).unwrap().endpoint.as_deref(),
        Some("http://127.0.0.1:4573")
    );
    p.push(("port", "9000"));
    assert_eq!(
        load(&p).unwrap().endpoint.as_deref(),
        Some("http://127.0.0.1:9000")
    );
    // Not URLs the SDK could use: no host, a user, a query, another scheme.
    for bad in [
        "http://",
        "http://user@host",
        "https://h/?q=1",
        "ftp://h",
        "h:1",
    ] {
        let mut p = base();
        p.push(("endpoint", bad));
        assert!(load(&p).is_err(), "{bad}");
    }
    let mut p = base();
    p.push(("endpoint", "https://[::1]:8443"));
    assert_eq!(
        load(&p).unwrap().endpoint.as_deref(),
        Some("https://[::1]:8443")
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("-1s"), None);
    assert_eq!(parse_duration("1d"), None);
    assert_eq!(parse_duration(""), None);
}

#[test]
fn plain_http_is_flagged_unless_loopback() {
    use firehose_fanout::config::plain_http_off_host;
    assert!(plain_http_off_host("http://firehose.internal:8080/"));
    assert!(plain_http_off_host("http://10.0.0.5"));
    assert!(!plain_http_off_host("http://127.0.0.1:4573"));
    assert!(!plain_http_off_host("http://127.8.9.1"));
    assert!(!plain_http_off_host("http://localhost:4573"));
    assert!(!plain_http_off_host("http://[::1]:4573"));
    assert!(!plain_http_off_host(
        "https://firehose.us-east-1.amazonaws.com"
    ));
}

#[test]
fn journal_keys() {
    assert_eq!(
        load(&base()).unwrap().journal,
        None,
        "off unless journal_path is set"
    );
    let mut p = base();
    p.push(("journal_path", "/var/fluent-bit/journal"));
    let j = load(&p).unwrap().journal.expect("journal");
    assert_eq!(
        j.folder,
        std::path::PathBuf::from("/var/fluent-bit/journal")
    );
    assert_eq!(j.sync_interval, Duration::from_secs(1));
    assert_eq!(j.max_bytes, 16 << 20);
    p.push(("journal_sync_interval", "0"));
    p.push(("journal_max_bytes", "4MiB"));
    let j = load(&p).unwrap().journal.expect("journal");
    assert_eq!((j.sync_interval, j.max_bytes), (Duration::ZERO, 4 << 20));

    let path = ("journal_path", "/j");
    let e = err(&[path, ("delivery_mode", "async")]);
    assert!(
        e.contains("journal_path") && e.contains("delivery_mode sync"),
        "{e}"
    );
    let e = err(&[path, ("retry_memory_chunks", "0")]);
    assert!(
        e.contains("retry_memory_chunks") && e.contains("journal_path"),
        "{e}"
    );
    let e = err(&[path, ("journal_sync_interval", "2m")]);
    assert!(
        e.contains("journal_sync_interval") && e.contains("at most 60s"),
        "{e}"
    );
    let e = err(&[path, ("journal_max_bytes", "1KiB")]);
    assert!(e.contains("journal_max_bytes"), "{e}");
}

#[test]
fn network_keys() {
    use firehose_fanout::config::Proxy;
    let c = load(&base()).unwrap();
    assert_eq!(c.network.proxy, Proxy::Environment);
    assert_eq!((c.network.use_fips, c.network.use_dual_stack), (None, None));
    let mut p = base();
    p.extend_from_slice(&[
        ("proxy", "http://u:pw@proxy.internal:3128"),
        ("no_proxy", ".internal,10.0.0.0/8"),
        ("use_fips_endpoint", "on"),
        ("use_dualstack_endpoint", "false"),
        ("user_agent_suffix", "team/payments"),
        ("oversize_policy", "Truncate"),
    ]);
    let c = load(&p).unwrap();
    assert_eq!(
        c.network.proxy,
        Proxy::Url("http://u:pw@proxy.internal:3128".into())
    );
    assert_eq!(c.network.no_proxy.as_deref(), Some(".internal,10.0.0.0/8"));
    assert_eq!(
        (c.network.use_fips, c.network.use_dual_stack),
        (Some(true), Some(false))
    );
    assert_eq!(
        c.network.user_agent_suffix.as_deref(),
        Some("team/payments")
    );
    assert!(c.encode.truncate_oversize);
    assert!(!format!("{c:?}").contains("pw@"), "credentials in Debug");
    assert_eq!(
        load(&[base(), vec![("proxy", "none")]].concat())
            .unwrap()
            .network
            .proxy,
        Proxy::Off
    );

    let e = err(&[("proxy", "socks5://alice:pw@p:1080")]);
    assert!(
        e.contains("proxy") && e.contains("***@") && !e.contains("pw"),
        "{e}"
    );
    let e = err(&[("use_fips_endpoint", "maybe")]);
    assert!(e.contains("use_fips_endpoint"), "{e}");
    let e = err(&[
        ("use_fips_endpoint", "on"),
        ("endpoint", "https://vpce.example:443"),
    ]);
    assert!(e.contains("off when endpoint is set"), "{e}");
    let e = err(&[("user_agent_suffix", "tab\there")]);
    assert!(e.contains("user_agent_suffix"), "{e}");
    let e = err(&[("oversize_policy", "split")]);
    assert!(e.contains("drop or truncate"), "{e}");
}
