//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};

/// An SDK client for `endpoint` with static test credentials and the SDK's
/// own retries turned off (so every call is exactly one HTTP request).
pub fn client(endpoint: &str) -> aws_sdk_firehose::Client {
    client_with_retries(endpoint, RetryConfig::disabled())
}

/// An SDK client for `endpoint` with the given retry configuration.
pub fn client_with_retries(endpoint: &str, retry: RetryConfig) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(retry)
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

/// An emulator with the named streams and otherwise default settings.
pub fn emulator(streams: &[&str]) -> Emulator {
    emulator_with(streams, EmulatorConfig::default())
}

/// An emulator with the named streams added to `config`.
pub fn emulator_with(streams: &[&str], mut config: EmulatorConfig) -> Emulator {
    config
        .streams
        .extend(streams.iter().map(|s| StreamSpec::new(*s)));
    Emulator::start(config).expect("emulator starts")
}

/// SDK records with the given payloads.
pub fn records<I, T>(payloads: I) -> Vec<Record>
where
    I: IntoIterator<Item = T>,
    T: Into<Vec<u8>>,
{
    payloads
        .into_iter()
        .map(|p| {
            Record::builder()
                .data(Blob::new(p.into()))
                .build()
                .expect("record builds")
        })
        .collect()
}

/// The HTTP status of an SDK error, if a response came back.
pub fn status_of<E, R>(err: &aws_sdk_firehose::error::SdkError<E, R>) -> Option<u16>
where
    R: HttpStatus,
{
    err.raw_response().map(HttpStatus::status_u16)
}

/// Access to the status of the SDK's raw response type.
pub trait HttpStatus {
    fn status_u16(&self) -> u16;
}

impl HttpStatus for aws_sdk_firehose::config::http::HttpResponse {
    fn status_u16(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A raw HTTP/1.1 exchange.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one request over a fresh connection (`Connection: close`) and
/// reads the whole answer. Blocking.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// A Firehose API call over raw HTTP.
pub fn api(addr: SocketAddr, operation: &str, body: &str) -> Reply {
    let target = format!("Firehose_20150804.{operation}");
    http(
        addr,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", &target),
        ],
        body.as_bytes(),
    )
}

/// A fresh, empty temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "firehose-emulator-test-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Every regular file below `dir`, recursively, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
