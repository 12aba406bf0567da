//! TLS mode: the emulator behind `https://127.0.0.1:PORT` with a throwaway
//! CA, reached by the AWS SDK trusting only that CA (as the plugin does with
//! `ca_file`), and refused by clients that do not trust it.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_firehose::error::SdkError;
use aws_smithy_http_client::tls;
use common::{records, temp_dir};
use firehose_emulator::{Emulator, EmulatorConfig, Faults, Server, StreamSpec, TlsIdentity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// An SDK client for `endpoint` whose HTTPS client trusts exactly `trust`
/// (built the way the plugin's `src/client.rs` builds it for `ca_file`).
fn sdk_client(endpoint: &str, trust: tls::TrustStore) -> aws_sdk_firehose::Client {
    let ctx = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("TLS context");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(ctx)
        .build_https();
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .http_client(http)
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

/// Trusts only the CA in the PEM file at `ca_file` (no system roots).
fn trusting_only(ca_file: &Path) -> tls::TrustStore {
    let pem = std::fs::read(ca_file).expect("read ca_file");
    tls::TrustStore::empty().with_pem_certificate(pem)
}

fn tls_emulator(streams: &[&str]) -> (Emulator, TlsIdentity) {
    let identity = TlsIdentity::generate().expect("TLS identity");
    let emu = Emulator::start(EmulatorConfig {
        streams: streams.iter().map(|s| StreamSpec::new(*s)).collect(),
        tls: Some(identity.clone()),
        ..Default::default()
    })
    .expect("emulator starts");
    (emu, identity)
}

fn payloads(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{{\"tag\":\"{tag}\",\"i\":{i}}}\n").into_bytes())
        .collect()
}

/// A raw HTTP/1.1 exchange over TLS (rustls, trusting only `ca_der`,
/// verifying `server_name`). Returns the status, the body and the ALPN
/// protocol the server picked.
async fn https(
    addr: SocketAddr,
    server_name: &str,
    ca_der: &[u8],
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String, Option<Vec<u8>>)> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .expect("CA is a valid trust anchor");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(server_name.to_string()).expect("server name");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut stream = connector.connect(name, tcp).await?;
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw).await {
        Ok(_) => {}
        // A peer that closes without close_notify: keep what came.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Ok((status, body.to_string(), alpn))
}

#[tokio::test]
async fn sdk_puts_over_tls_trusting_only_the_generated_ca() {
    let (emu, identity) = tls_emulator(&["logs"]);
    let endpoint = emu.endpoint();
    assert_eq!(endpoint, format!("https://127.0.0.1:{}", emu.addr().port()));
    assert_eq!(emu.tls(), Some(&identity));
    assert_eq!(emu.handle().endpoint(), endpoint);

    let dir = temp_dir("tls-ca");
    let ca_file = identity.write_ca(&dir).expect("write CA");
    let fh = sdk_client(&endpoint, trusting_only(&ca_file));

    let mut expected = Vec::new();
    for batch in 0..3 {
        let data = payloads(100, &format!("b{batch}"));
        let out = fh
            .put_record_batch()
            .delivery_stream_name("logs")
            .set_records(Some(records(data.clone())))
            .send()
            .await
            .expect("batch accepted over TLS");
        assert_eq!(out.failed_put_count(), 0);
        assert_eq!(out.request_responses().len(), 100);
        expected.extend(data);
    }
    assert_eq!(emu.records("logs"), expected);
    let stats = emu.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.streams["logs"].accepted_records, 300);

    // Faults and limits behave as over plain HTTP.
    emu.set_faults(
        Some("logs"),
        Faults {
            record_failure_rate: 1.0,
            record_error_code: Some("ServiceUnavailableException".into()),
            ..Default::default()
        },
    );
    let out = fh
        .put_record_batch()
        .delivery_stream_name("logs")
        .set_records(Some(records(payloads(10, "failing"))))
        .send()
        .await
        .expect("answered");
    assert_eq!(out.failed_put_count(), 10);
    assert!(out
        .request_responses()
        .iter()
        .all(|r| r.error_code() == Some("ServiceUnavailableException")));

    emu.set_faults(
        Some("logs"),
        Faults {
            reset_rate: 1.0,
            ..Default::default()
        },
    );
    let err = fh
        .put_record_batch()
        .delivery_stream_name("logs")
        .set_records(Some(records(payloads(1, "reset"))))
        .send()
        .await
        .expect_err("connection dropped");
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "{err:?}"
    );
    emu.set_faults(Some("logs"), Faults::default());

    let err = fh
        .put_record_batch()
        .delivery_stream_name("logs")
        .set_records(Some(records(vec![b"x".to_vec(); 501])))
        .send()
        .await
        .expect_err("501 records are too many");
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_invalid_argument_exception()));

    let out = fh
        .put_record_batch()
        .delivery_stream_name("logs")
        .set_records(Some(records(payloads(5, "after"))))
        .send()
        .await
        .expect("accepted again");
    assert_eq!(out.failed_put_count(), 0);
    assert_eq!(emu.records("logs").len(), 305);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn http_endpoints_over_tls_for_every_server_name() {
    let (emu, identity) = tls_emulator(&["a"]);
    let addr = emu.addr();
    let ca = identity.ca_der();

    // The certificate is valid for the IP and for localhost; ALPN is http/1.1.
    for name in ["127.0.0.1", "localhost"] {
        let (status, body, alpn) = https(addr, name, ca, "GET", "/healthz", "")
            .await
            .unwrap_or_else(|e| panic!("TLS to {name}: {e}"));
        assert_eq!((status, body.as_str()), (200, "{\"ok\":true}"));
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    }
    // ...and not for another name.
    let err = https(addr, "example.com", ca, "GET", "/healthz", "")
        .await
        .expect_err("wrong name");
    assert!(err.to_string().contains("certificate"), "{err}");

    // The admin API and /stats.
    let (status, _, _) = https(
        addr,
        "127.0.0.1",
        ca,
        "POST",
        "/admin/streams",
        r#"{"name":"b"}"#,
    )
    .await
    .expect("admin");
    assert_eq!(status, 200);
    assert_eq!(emu.stream_names(), ["a", "b"]);
    let (status, body, _) = https(addr, "127.0.0.1", ca, "GET", "/stats", "")
        .await
        .expect("stats");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    assert!(stats["streams"]["b"].is_object(), "{body}");

    // Unknown routes answer as over plain HTTP.
    let (status, body, _) = https(addr, "127.0.0.1", ca, "GET", "/nowhere", "")
        .await
        .expect("404");
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn clients_that_do_not_trust_the_ca_fail_the_handshake() {
    let (emu, identity) = tls_emulator(&["logs"]);
    let endpoint = emu.endpoint();
    let put = |fh: aws_sdk_firehose::Client| async move {
        fh.put_record_batch()
            .delivery_stream_name("logs")
            .set_records(Some(records(payloads(3, "untrusted"))))
            .send()
            .await
    };

    // The SDK's own default client (system roots only).
    let err = put(common::client(&endpoint))
        .await
        .expect_err("system roots do not include the test CA");
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");

    // A client that trusts another throwaway CA.
    let other = TlsIdentity::generate().expect("other identity");
    let dir = temp_dir("tls-other-ca");
    let other_ca = other.write_ca(&dir).expect("write other CA");
    let err = put(sdk_client(&endpoint, trusting_only(&other_ca)))
        .await
        .expect_err("another CA is not ours");
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");

    // A raw rustls client with the wrong CA, to see the reason.
    let err = https(
        emu.addr(),
        "127.0.0.1",
        other.ca_der(),
        "GET",
        "/healthz",
        "",
    )
    .await
    .expect_err("handshake fails");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = common::client(&format!("http://{}", emu.addr()));
    let err = plain
        .put_record_batch()
        .delivery_stream_name("logs")
        .set_records(Some(records(payloads(1, "plain"))))
        .send()
        .await
        .expect_err("plain HTTP is not served");
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "{err:?}"
    );

    // Nothing arrived, and nothing counted as a request.
    assert!(emu.records("logs").is_empty());
    assert_eq!(emu.stats().requests, 0);

    // The right CA still works on the same server.
    let ca_file = identity.write_ca(&dir).expect("write CA");
    let out = put(sdk_client(&endpoint, trusting_only(&ca_file)))
        .await
        .expect("trusted");
    assert_eq!(out.failed_put_count(), 0);
    assert_eq!(emu.records("logs").len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_in_the_callers_runtime_serves_tls_too() {
    let identity = TlsIdentity::generate().expect("TLS identity");
    let server = Server::bind(EmulatorConfig {
        streams: vec![StreamSpec::new("s")],
        tls: Some(identity.clone()),
        ..Default::default()
    })
    .await
    .expect("bind");
    let handle = server.handle();
    assert!(handle.endpoint().starts_with("https://127.0.0.1:"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let trust =
        tls::TrustStore::empty().with_pem_certificate(identity.ca_pem().as_bytes().to_vec());
    let fh = sdk_client(&handle.endpoint(), trust);
    let out = fh
        .put_record_batch()
        .delivery_stream_name("s")
        .set_records(Some(records(payloads(7, "server"))))
        .send()
        .await
        .expect("accepted");
    assert_eq!(out.failed_put_count(), 0);
    assert_eq!(handle.records("s"), payloads(7, "server"));

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server stops")
        .expect("join")
        .expect("run");
}
