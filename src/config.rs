//! Typed, validated settings of one `[OUTPUT]` instance, read from Fluent Bit properties.
//!
//! Every error names the key, the value and what is accepted, because it is the only thing
//! a user sees when Fluent Bit refuses to start.

use crate::batch::MAX_RECORD_BYTES;
use crate::compress::Compression;
use crate::encode::{EncodeOptions, DEFAULT_TIME_FORMAT};
use crate::route::{Balance, Quota};
use crate::timefmt::TimeFormat;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{key} = '{value}' is not valid: {expected}")]
    Invalid {
        key: &'static str,
        value: String,
        expected: String,
    },
    #[error("delivery_streams is empty: set delivery_streams (a comma-separated list of Firehose delivery stream names) or delivery_stream_prefix (streams whose names start with it are found and used)")]
    NoStreams,
    #[error("region is not set: set region to the AWS region of the delivery streams (for example us-east-1), or set AWS_REGION")]
    NoRegion,
    #[error("{key} = '{path}' cannot be used: {reason}")]
    CaFile {
        key: &'static str,
        path: String,
        reason: String,
    },
}

/// When a flush answers (`delivery_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// FLB_OK only when every record was accepted.
    Sync,
    /// FLB_OK once the chunk is in the plugin's bounded buffer.
    Async,
}

/// Whether many log records go into one Firehose record (`aggregation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Only for streams whose destination is S3 without record-level processing (no
    /// Lambda processor, no dynamic partitioning), where the reader cannot tell.
    Auto,
    On,
    Off,
}

/// Where credentials come from beyond the default chain.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Shared config/credentials profile (`profile`).
    pub profile: Option<String>,
    /// Role to assume through STS (`role_arn`).
    pub role_arn: Option<String>,
    /// Secret shared with the role's trust policy; never logged.
    pub external_id: Option<String>,
    pub sts_endpoint: Option<String>,
    pub role_session_name: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "<set>"))
            .field("sts_endpoint", &self.sts_endpoint)
            .field("role_session_name", &self.role_session_name)
            .finish()
    }
}

/// Everything an instance needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub region: String,
    pub streams: Vec<String>,
    pub credentials: Credentials,
    /// Endpoint URL override (`endpoint`, with `port` applied).
    pub endpoint: Option<String>,
    /// Extra PEM trust roots (`ca_file` / `tls.ca_file`), already read.
    pub ca_pem: Option<Vec<u8>>,
    pub encode: EncodeOptions,
    /// Longest a flush waits for delivery before answering FLB_RETRY.
    pub flush_timeout: Duration,
    /// Timeout of one PutRecordBatch attempt.
    pub request_timeout: Duration,
    /// First backoff step after a failed attempt; doubles up to `retry_max_backoff`.
    pub retry_initial_backoff: Duration,
    pub retry_max_backoff: Duration,
    /// PutRecordBatch calls in flight at once, per stream.
    pub max_in_flight_per_stream: usize,
    /// Threads of the shared runtime (the first instance to start decides).
    pub worker_threads: usize,
    /// Streams whose names start with this are discovered and used.
    pub stream_prefix: Option<String>,
    pub discovery_interval: Duration,
    pub balance: Balance,
    /// Top-level key whose value keeps records together (`balance key`).
    pub partition_key: Option<String>,
    /// Per-stream quota the scheduler keeps to.
    pub quota: Quota,
    /// How often a stream out of the rotation is tried again.
    pub health_probe_interval: Duration,
    /// Chunks whose delivered records are remembered across Fluent Bit's retries.
    pub retry_memory_chunks: usize,
    pub aggregation: Aggregation,
    /// Largest aggregate, in bytes (before compression).
    pub aggregation_max_bytes: usize,
    pub compression: Compression,
    /// Retry failed records within a flush (`auto_retry_requests`, the core plugin's key).
    pub auto_retry: bool,
    /// How often metrics are pushed to Fluent Bit's cmetrics context.
    pub metrics_interval: Duration,
    /// How often a summary line is logged where the host has no cmetrics functions.
    pub summary_interval: Duration,
    pub delivery_mode: DeliveryMode,
    /// Async mode: most bytes of chunks held for delivery.
    pub buffer_max_bytes: usize,
    /// Async mode: how long exit waits for the buffer to drain.
    pub shutdown_timeout: Duration,
    /// Async mode: how long a buffered chunk may wait for others to share its aggregates.
    pub buffer_linger: Duration,
}

/// Key names, in one place for the README table and the tests.
pub mod keys {
    pub const REGION: &str = "region";
    pub const DELIVERY_STREAMS: &str = "delivery_streams";
    pub const DELIVERY_STREAM: &str = "delivery_stream";
    pub const ENDPOINT: &str = "endpoint";
    pub const PORT: &str = "port";
    pub const TLS_CA_FILE: &str = "tls.ca_file";
    pub const CA_FILE: &str = "ca_file";
    pub const TIME_KEY: &str = "time_key";
    pub const TIME_KEY_FORMAT: &str = "time_key_format";
    pub const LOG_KEY: &str = "log_key";
    pub const DATA_KEYS: &str = "data_keys";
    pub const REPLACE_DOTS: &str = "replace_dots";
    pub const FLUSH_TIMEOUT: &str = "flush_timeout";
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    pub const RETRY_INITIAL_BACKOFF: &str = "retry_initial_backoff";
    pub const RETRY_MAX_BACKOFF: &str = "retry_max_backoff";
    pub const MAX_IN_FLIGHT_PER_STREAM: &str = "max_in_flight_per_stream";
    pub const WORKER_THREADS: &str = "worker_threads";
    pub const DELIVERY_STREAM_PREFIX: &str = "delivery_stream_prefix";
    pub const DISCOVERY_INTERVAL: &str = "discovery_interval";
    pub const BALANCE: &str = "balance";
    pub const PARTITION_KEY: &str = "partition_key";
    pub const STREAM_RECORDS_PER_SECOND: &str = "stream_records_per_second";
    pub const STREAM_BYTES_PER_SECOND: &str = "stream_bytes_per_second";
    pub const STREAM_REQUESTS_PER_SECOND: &str = "stream_requests_per_second";
    pub const HEALTH_PROBE_INTERVAL: &str = "health_probe_interval";
    pub const RETRY_MEMORY_CHUNKS: &str = "retry_memory_chunks";
    pub const PROFILE: &str = "profile";
    pub const ROLE_ARN: &str = "role_arn";
    pub const EXTERNAL_ID: &str = "external_id";
    pub const STS_ENDPOINT: &str = "sts_endpoint";
    pub const ROLE_SESSION_NAME: &str = "role_session_name";
    pub const AGGREGATION: &str = "aggregation";
    pub const AGGREGATION_MAX_BYTES: &str = "aggregation_max_bytes";
    pub const SIMPLE_AGGREGATION: &str = "simple_aggregation";
    pub const COMPRESSION: &str = "compression";
    pub const COMPRESSION_LEVEL: &str = "compression_level";
    pub const AUTO_RETRY_REQUESTS: &str = "auto_retry_requests";
    pub const METRICS_INTERVAL: &str = "metrics_interval";
    pub const SUMMARY_INTERVAL: &str = "summary_interval";
    pub const DELIVERY_MODE: &str = "delivery_mode";
    pub const BUFFER_MAX_BYTES: &str = "buffer_max_bytes";
    pub const SHUTDOWN_TIMEOUT: &str = "shutdown_timeout";
    pub const BUFFER_LINGER: &str = "buffer_linger";
}

impl Config {
    /// Reads and validates every key through `get` (Fluent Bit's `output_get_property`).
    /// Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let region = get(keys::REGION)
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|v| !v.is_empty()))
            .or_else(|| {
                std::env::var("AWS_DEFAULT_REGION")
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .ok_or(ConfigError::NoRegion)?;
        if !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                keys::REGION,
                &region,
                "an AWS region name such as us-east-1",
            ));
        }

        let mut streams = Vec::new();
        for key in [keys::DELIVERY_STREAMS, keys::DELIVERY_STREAM] {
            if let Some(list) = get(key) {
                for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !valid_stream_name(name) {
                        return Err(invalid(
                            if key == keys::DELIVERY_STREAM { keys::DELIVERY_STREAM } else { keys::DELIVERY_STREAMS },
                            &list,
                            "comma-separated delivery stream names of 1-64 characters from a-z A-Z 0-9 _ . -",
                        ));
                    }
                    if !streams.iter().any(|s: &String| s == name) {
                        streams.push(name.to_string());
                    }
                }
            }
        }
        let stream_prefix = get(keys::DELIVERY_STREAM_PREFIX);
        if let Some(p) = &stream_prefix {
            if p.len() > 64
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
            {
                return Err(invalid(
                    keys::DELIVERY_STREAM_PREFIX,
                    p,
                    "the start of delivery stream names: up to 64 characters from a-z A-Z 0-9 _ . -",
                ));
            }
        }
        if streams.is_empty() && stream_prefix.is_none() {
            return Err(ConfigError::NoStreams);
        }
        let discovery_interval = duration(&get, keys::DISCOVERY_INTERVAL, Duration::from_secs(60))?;
        if discovery_interval < Duration::from_millis(100) {
            return Err(invalid(
                keys::DISCOVERY_INTERVAL,
                &format!("{discovery_interval:?}"),
                "a duration of at least 100ms, such as 60s",
            ));
        }
        let balance = match get(keys::BALANCE) {
            None => Balance::Adaptive,
            Some(b) => Balance::parse(&b).ok_or_else(|| {
                invalid(keys::BALANCE, &b, "adaptive, round_robin, random or key")
            })?,
        };
        let partition_key = get(keys::PARTITION_KEY);
        if balance == Balance::Key && partition_key.is_none() {
            return Err(ConfigError::Invalid {
                key: keys::PARTITION_KEY,
                value: String::new(),
                expected: "a top-level record key when balance is key (for example partition_key kubernetes_pod)".into(),
            });
        }
        let d = Quota::default();
        let quota = Quota {
            records: rate(&get, keys::STREAM_RECORDS_PER_SECOND, d.records)?,
            bytes: rate(&get, keys::STREAM_BYTES_PER_SECOND, d.bytes)?,
            requests: rate(&get, keys::STREAM_REQUESTS_PER_SECOND, d.requests)?,
        };
        let health_probe_interval =
            duration(&get, keys::HEALTH_PROBE_INTERVAL, Duration::from_secs(30))?;
        let retry_memory_chunks = count(&get, keys::RETRY_MEMORY_CHUNKS, 1024, 0..=1_000_000)?;
        let mut aggregation = match get(keys::AGGREGATION).map(|v| v.to_ascii_lowercase()) {
            None => Aggregation::Auto,
            Some(v) if v == "auto" => Aggregation::Auto,
            Some(v) if v == "on" || v == "true" => Aggregation::On,
            Some(v) if v == "off" || v == "false" => Aggregation::Off,
            Some(v) => return Err(invalid(keys::AGGREGATION, &v, "auto, on or off")),
        };
        // The core kinesis_firehose plugin's spelling.
        if let Some(v) = get(keys::SIMPLE_AGGREGATION) {
            if boolean(keys::SIMPLE_AGGREGATION, &v)? {
                aggregation = Aggregation::On;
            }
        }
        let aggregation_max_bytes = size(
            &get,
            keys::AGGREGATION_MAX_BYTES,
            MAX_RECORD_BYTES,
            1024..=MAX_RECORD_BYTES,
        )?;
        let level = match get(keys::COMPRESSION_LEVEL) {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| {
                invalid(
                    keys::COMPRESSION_LEVEL,
                    &v,
                    "a whole number (gzip 1-9, zstd 1-22)",
                )
            })?),
        };
        let compression_name = get(keys::COMPRESSION).unwrap_or_else(|| "none".into());
        let compression = Compression::parse(&compression_name, level).map_err(|e| {
            if level.is_some() && Compression::parse(&compression_name, None).is_ok() {
                invalid(keys::COMPRESSION_LEVEL, &level.unwrap_or(0).to_string(), &e)
            } else {
                invalid(keys::COMPRESSION, &compression_name, &e)
            }
        })?;
        let metrics_interval = duration(&get, keys::METRICS_INTERVAL, Duration::from_secs(10))?;
        let summary_interval = duration(&get, keys::SUMMARY_INTERVAL, Duration::from_secs(60))?;
        for (key, d) in [
            (keys::METRICS_INTERVAL, metrics_interval),
            (keys::SUMMARY_INTERVAL, summary_interval),
        ] {
            if d < Duration::from_millis(100) {
                return Err(invalid(
                    key,
                    &format!("{d:?}"),
                    "a duration of at least 100ms",
                ));
            }
        }
        let delivery_mode = match get(keys::DELIVERY_MODE).map(|v| v.to_ascii_lowercase()) {
            None => DeliveryMode::Sync,
            Some(v) if v == "sync" => DeliveryMode::Sync,
            Some(v) if v == "async" => DeliveryMode::Async,
            Some(v) => return Err(invalid(keys::DELIVERY_MODE, &v, "sync or async")),
        };
        let buffer_max_bytes = match get(keys::BUFFER_MAX_BYTES) {
            None => 128 * 1024 * 1024,
            Some(v) => {
                let n = rate(&|_| Some(v.clone()), keys::BUFFER_MAX_BYTES, 0.0)?;
                if n < 1024.0 * 1024.0 {
                    return Err(invalid(
                        keys::BUFFER_MAX_BYTES,
                        &v,
                        "at least 1MiB (a size such as 64MiB)",
                    ));
                }
                n as usize
            }
        };
        let shutdown_timeout = duration(&get, keys::SHUTDOWN_TIMEOUT, Duration::from_secs(10))?;
        let buffer_linger = duration(&get, keys::BUFFER_LINGER, Duration::from_secs(2))?;
        if buffer_linger > Duration::from_secs(60) {
            return Err(invalid(
                keys::BUFFER_LINGER,
                &get(keys::BUFFER_LINGER).unwrap_or_default(),
                "at most 60s (it is how long a buffered chunk may wait to be packed)",
            ));
        }
        let auto_retry = match get(keys::AUTO_RETRY_REQUESTS) {
            None => true,
            Some(v) => boolean(keys::AUTO_RETRY_REQUESTS, &v)?,
        };

        let port = match get(keys::PORT) {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| invalid(keys::PORT, &p, "a TCP port from 1 to 65535"))?,
            ),
        };
        let endpoint = match get(keys::ENDPOINT) {
            None => None,
            Some(e) => Some(parse_url(keys::ENDPOINT, &e, port)?),
        };

        // Fluent Bit consumes `tls.*` keys itself before a proxy plugin can see them, so
        // `ca_file` is the spelling that works there; `tls.ca_file` works in other hosts.
        let role_arn = get(keys::ROLE_ARN);
        if let Some(r) = &role_arn {
            if !r.starts_with("arn:") || r.split(':').count() < 6 {
                return Err(invalid(
                    keys::ROLE_ARN,
                    r,
                    "an IAM role ARN such as arn:aws:iam::123456789012:role/fluent-bit",
                ));
            }
        }
        let sts_endpoint = match get(keys::STS_ENDPOINT) {
            None => None,
            Some(e) => Some(parse_url(keys::STS_ENDPOINT, &e, None)?),
        };
        let role_session_name =
            get(keys::ROLE_SESSION_NAME).unwrap_or_else(|| "firehose-fanout".into());
        if !(2..=64).contains(&role_session_name.len())
            || !role_session_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=,.@-_".contains(&b))
        {
            return Err(invalid(
                keys::ROLE_SESSION_NAME,
                &role_session_name,
                "2-64 characters from a-z A-Z 0-9 = , . @ - _",
            ));
        }
        let credentials = Credentials {
            profile: get(keys::PROFILE),
            role_arn,
            external_id: get(keys::EXTERNAL_ID),
            sts_endpoint,
            role_session_name,
        };

        let ca = get(keys::CA_FILE)
            .map(|p| (keys::CA_FILE, p))
            .or_else(|| get(keys::TLS_CA_FILE).map(|p| (keys::TLS_CA_FILE, p)));
        let ca_pem = match ca {
            None => None,
            Some((key, path)) => {
                let pem = read_limited(&path, 1024 * 1024).map_err(|e| ConfigError::CaFile {
                    key,
                    path: path.clone(),
                    reason: e,
                })?;
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(ConfigError::CaFile {
                        key,
                        path,
                        reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"
                            .into(),
                    });
                }
                Some(pem)
            }
        };

        let time_format_text =
            get(keys::TIME_KEY_FORMAT).unwrap_or_else(|| DEFAULT_TIME_FORMAT.into());
        let time_format = TimeFormat::parse(&time_format_text)
            .map_err(|e| invalid(keys::TIME_KEY_FORMAT, &time_format_text, &e.to_string()))?;
        let data_keys = get(keys::DATA_KEYS).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        });
        let encode = EncodeOptions {
            time_key: get(keys::TIME_KEY),
            time_format,
            log_key: get(keys::LOG_KEY),
            data_keys,
            replace_dots: get(keys::REPLACE_DOTS),
        };

        let flush_timeout = duration(&get, keys::FLUSH_TIMEOUT, Duration::from_secs(30))?;
        let request_timeout = duration(&get, keys::REQUEST_TIMEOUT, Duration::from_secs(10))?;
        let retry_initial_backoff = duration(
            &get,
            keys::RETRY_INITIAL_BACKOFF,
            Duration::from_millis(100),
        )?;
        let retry_max_backoff = duration(&get, keys::RETRY_MAX_BACKOFF, Duration::from_secs(5))?;
        for (key, d) in [
            (keys::FLUSH_TIMEOUT, flush_timeout),
            (keys::REQUEST_TIMEOUT, request_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(
                    key,
                    "0",
                    "a duration above zero, such as 30s or 500ms",
                ));
            }
        }
        let max_in_flight_per_stream = count(&get, keys::MAX_IN_FLIGHT_PER_STREAM, 16, 1..=64)?;
        let worker_threads = count(&get, keys::WORKER_THREADS, 2, 1..=64)?;

        Ok(Config {
            region,
            streams,
            credentials,
            endpoint,
            ca_pem,
            encode,
            flush_timeout,
            request_timeout,
            retry_initial_backoff,
            retry_max_backoff: retry_max_backoff.max(retry_initial_backoff),
            max_in_flight_per_stream,
            worker_threads,
            stream_prefix,
            discovery_interval,
            balance,
            partition_key,
            quota,
            health_probe_interval,
            retry_memory_chunks,
            aggregation,
            aggregation_max_bytes,
            compression,
            auto_retry,
            metrics_interval,
            summary_interval,
            delivery_mode,
            buffer_max_bytes,
            shutdown_timeout,
            buffer_linger,
        })
    }
}

fn invalid(key: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// Firehose's rule: 1-64 characters of `[a-zA-Z0-9_.-]`.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

fn parse_url(key: &'static str, e: &str, port: Option<u16>) -> Result<String, ConfigError> {
    let bad = || {
        invalid(
            key,
            e,
            "an http:// or https:// URL with a host, such as https://firehose.us-east-1.amazonaws.com",
        )
    };
    let (scheme, rest) = e.split_once("://").ok_or_else(bad)?;
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains(['@', ' ', '?', '#']) {
        return Err(bad());
    }
    // IPv6 hosts are bracketed; a port, if any, follows the host after ':'.
    let (host, port_text) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            (h, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() || port_text.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(bad());
    }
    let host = &authority[..authority.len() - port_text.map_or(0, |p| p.len() + 1)];
    let path = &rest[authority.len()..];
    Ok(match port {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => e.trim_end_matches('/').to_string(),
    })
}

/// Reads at most `limit` bytes of a file: a PEM bundle is small, and a path such as
/// /dev/zero must not hang start-up.
fn read_limited(path: &str, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes: not a CA bundle"));
    }
    Ok(buf)
}

/// Whether `url` is plain `http://` to a host other than loopback (traffic in clear text).
pub fn plain_http_off_host(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// Parses `30s`, `500ms`, `2m`, `1h`, `1.5s`, or a plain number of seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (0.0..1.0e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

fn duration(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match get(key) {
        None => Ok(default),
        Some(v) => parse_duration(&v).ok_or_else(|| {
            invalid(
                key,
                &v,
                "a duration such as 30s, 500ms, 2m or a number of seconds",
            )
        }),
    }
}

/// Fluent Bit's booleans: on/off, true/false, yes/no, 1/0.
fn boolean(key: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(invalid(key, v, "on or off (true/false, yes/no)")),
    }
}

/// A positive rate; `k`, `M` (×1000, ×1000²) and `KiB`, `MiB` (×1024, ×1024²) suffixes.
fn rate(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    let Some(v) = get(key) else {
        return Ok(default);
    };
    let t = v.trim();
    let (num, mult) = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.trim(), *m)))
    .unwrap_or((t, 1.0));
    num.parse::<f64>()
        .ok()
        .map(|n| n * mult)
        .filter(|n| n.is_finite() && *n > 0.0)
        .ok_or_else(|| {
            invalid(
                key,
                &v,
                "a positive number per second, e.g. 5MiB, 2000 or 500k",
            )
        })
}

/// A size in bytes (`65536`, `64KiB`, `1MiB`) within `range`.
fn size(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let Some(v) = get(key) else {
        return Ok(default);
    };
    rate(&|_| Some(v.clone()), key, 0.0)
        .ok()
        .map(|n| n as usize)
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            invalid(
                key,
                &v,
                &format!(
                    "a size from {} to {} bytes, e.g. 64KiB",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn count(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    match get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                invalid(
                    key,
                    &v,
                    &format!("a whole number from {} to {}", range.start(), range.end()),
                )
            }),
    }
}
