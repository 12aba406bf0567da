//! The keys, read in groups: where the records go, how they are spread, packed and
//! delivered, how the calls reach AWS, how a record is written.

use super::limits::MAX_RECORD_BYTES;
use super::time_format::TimeFormat;
use super::values::*;
use super::JournalSettings;
use super::{keys, Aggregation, Balance, Compression, ConfigError, Credentials, DeliveryMode};
use super::{EncodeOptions, Quota, DEFAULT_TIME_FORMAT};
use std::time::Duration;

/// A key's trimmed value; empty counts as unset.
pub(super) type Get<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) fn region(get: Get) -> Result<String, ConfigError> {
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
    Ok(region)
}

/// The streams by name, the prefix to discover more, and how often to look.
pub(super) fn streams(get: Get) -> Result<(Vec<String>, Option<String>, Duration), ConfigError> {
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
    Ok((streams, stream_prefix, discovery_interval))
}

/// How records are spread: balance mode, partition key, quota, probes, retry memory.
pub(super) struct Scheduling {
    pub balance: Balance,
    pub partition_key: Option<String>,
    pub quota: Quota,
    pub quota_max: Quota,
    pub health_probe_interval: Duration,
    pub retry_memory_chunks: usize,
}

pub(super) fn scheduling(get: Get) -> Result<Scheduling, ConfigError> {
    let balance = match get(keys::BALANCE) {
        None => Balance::Adaptive,
        Some(b) => Balance::parse(&b)
            .ok_or_else(|| invalid(keys::BALANCE, &b, "adaptive, round_robin, random or key"))?,
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
    // A key set is a hard cap; a key left unset is a starting estimate the scheduler may
    // probe above, up to the ceiling.
    let c = Quota::probe_ceiling();
    let max = |key, set: f64, ceiling: f64| if get(key).is_some() { set } else { ceiling };
    let quota_max = Quota {
        records: max(keys::STREAM_RECORDS_PER_SECOND, quota.records, c.records),
        bytes: max(keys::STREAM_BYTES_PER_SECOND, quota.bytes, c.bytes),
        requests: max(keys::STREAM_REQUESTS_PER_SECOND, quota.requests, c.requests),
    };
    let health_probe_interval =
        duration(&get, keys::HEALTH_PROBE_INTERVAL, Duration::from_secs(30))?;
    let retry_memory_chunks = count(&get, keys::RETRY_MEMORY_CHUNKS, 1024, 0..=1_000_000)?;
    Ok(Scheduling {
        balance,
        partition_key,
        quota,
        quota_max,
        health_probe_interval,
        retry_memory_chunks,
    })
}

/// How records are packed: aggregation, its size, compression.
pub(super) fn packing(get: Get) -> Result<(Aggregation, usize, Compression), ConfigError> {
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
    Ok((aggregation, aggregation_max_bytes, compression))
}

/// Metrics push and summary intervals.
pub(super) fn telemetry(get: Get) -> Result<(Duration, Duration), ConfigError> {
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
    Ok((metrics_interval, summary_interval))
}

/// Sync or async, and the async buffer.
pub(super) struct Mode {
    pub delivery_mode: DeliveryMode,
    pub buffer_max_bytes: usize,
    pub shutdown_timeout: Duration,
    pub buffer_linger: Duration,
    pub auto_retry: bool,
}

pub(super) fn mode(get: Get) -> Result<Mode, ConfigError> {
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
    Ok(Mode {
        delivery_mode,
        buffer_max_bytes,
        shutdown_timeout,
        buffer_linger,
        auto_retry,
    })
}

/// The endpoint, the credentials and the extra trust roots. Fluent Bit consumes `tls.*`
/// keys itself before a proxy plugin can see them, so `ca_file` is the spelling that works
/// there; `tls.ca_file` works in other hosts.
pub(super) struct Reach {
    pub endpoint: Option<String>,
    pub credentials: Credentials,
    pub ca_pem: Option<Vec<u8>>,
}

pub(super) fn reach(get: Get) -> Result<Reach, ConfigError> {
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
                    reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into(),
                });
            }
            Some(pem)
        }
    };
    Ok(Reach {
        endpoint,
        credentials,
        ca_pem,
    })
}

/// How a record is written.
pub(super) fn encoding(get: Get) -> Result<EncodeOptions, ConfigError> {
    let time_format_text = get(keys::TIME_KEY_FORMAT).unwrap_or_else(|| DEFAULT_TIME_FORMAT.into());
    let time_format = TimeFormat::parse(&time_format_text)
        .map_err(|e| invalid(keys::TIME_KEY_FORMAT, &time_format_text, &e.to_string()))?;
    let data_keys = get(keys::DATA_KEYS).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    });
    let truncate_oversize = match get(keys::OVERSIZE_POLICY).map(|v| v.to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "drop" => false,
        Some(v) if v == "truncate" => true,
        Some(v) => return Err(invalid(keys::OVERSIZE_POLICY, &v, "drop or truncate")),
    };
    let encode = EncodeOptions {
        time_key: get(keys::TIME_KEY),
        time_format,
        log_key: get(keys::LOG_KEY),
        data_keys,
        replace_dots: get(keys::REPLACE_DOTS),
        truncate_oversize,
    };
    Ok(encode)
}

/// Timeouts, backoff, calls in flight, threads.
pub(super) struct Timing {
    pub flush_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_initial_backoff: Duration,
    pub retry_max_backoff: Duration,
    pub max_in_flight_per_stream: usize,
    pub worker_threads: usize,
}

pub(super) fn timing(get: Get) -> Result<Timing, ConfigError> {
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
    Ok(Timing {
        flush_timeout,
        request_timeout,
        retry_initial_backoff,
        retry_max_backoff: retry_max_backoff.max(retry_initial_backoff),
        max_in_flight_per_stream,
        worker_threads,
    })
}

/// The on-disk journal of accepted records (`journal_path`), if any.
pub(super) fn journal(
    get: Get,
    mode: DeliveryMode,
    retry_memory_chunks: usize,
) -> Result<Option<JournalSettings>, ConfigError> {
    let sync_interval = duration(&get, keys::JOURNAL_SYNC_INTERVAL, Duration::from_secs(1))?;
    if sync_interval > Duration::from_secs(60) {
        return Err(invalid(
            keys::JOURNAL_SYNC_INTERVAL,
            &get(keys::JOURNAL_SYNC_INTERVAL).unwrap_or_default(),
            "at most 60s (0 syncs after every write)",
        ));
    }
    let max_bytes = size(&get, keys::JOURNAL_MAX_BYTES, 16 << 20, 64 << 10..=1 << 30)?;
    let Some(path) = get(keys::JOURNAL_PATH) else {
        return Ok(None);
    };
    if mode == DeliveryMode::Async {
        return Err(invalid(
            keys::JOURNAL_PATH,
            &path,
            "unset with delivery_mode async (chunks are answered before they are delivered, so a crash loses what was buffered; use delivery_mode sync with a journal)",
        ));
    }
    if retry_memory_chunks == 0 {
        return Err(invalid(
            keys::RETRY_MEMORY_CHUNKS,
            "0",
            "at least 1 with journal_path (the journal keeps that many chunks)",
        ));
    }
    Ok(Some(JournalSettings {
        folder: path.into(),
        sync_interval,
        max_bytes: max_bytes as u64,
    }))
}
