//! Configuration of the emulator: the server as a whole ([`EmulatorConfig`]),
//! each delivery stream ([`StreamSpec`]), throughput quotas ([`Quota`]) and
//! fault injection ([`Faults`]).
//!
//! Every type here is `serde`-(de)serializable so that a CLI can read the
//! whole configuration from a JSON file and the admin endpoints can take the
//! same shapes. Durations are written as milliseconds (`*_ms` keys).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::destination::DestinationSpec;
use crate::tls::TlsIdentity;

/// Account id used in every ARN the emulator hands out.
pub const ACCOUNT_ID: &str = "123456789012";
/// Region used in every ARN the emulator hands out.
pub const REGION: &str = "us-east-1";

/// Default HTTP status of a throttled (over quota) request: the Firehose
/// service model declares `ServiceUnavailableException` a server fault
/// without an explicit status, which AWS JSON protocols send as 500.
pub const DEFAULT_THROTTLE_STATUS: u16 = 500;

/// Configuration of a whole emulator instance.
///
/// Build it with struct-update syntax on top of [`Default`]:
///
/// ```
/// use firehose_emulator::{EmulatorConfig, StreamSpec};
/// let config = EmulatorConfig {
///     streams: vec![StreamSpec::new("logs-1"), StreamSpec::new("logs-2")],
///     seed: Some(7),
///     ..Default::default()
/// };
/// assert_eq!(config.buffer_size_mib, 5);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Address to listen on. Default `127.0.0.1:0` (an ephemeral port).
    pub bind: SocketAddr,
    /// Streams that exist (ACTIVE) from the start.
    pub streams: Vec<StreamSpec>,
    /// When set, accepted records are also delivered as S3-like objects below
    /// this folder (see [`crate::output`]).
    pub output_dir: Option<PathBuf>,
    /// Default buffer size hint in MiB for the output folder (a stream's own
    /// `BufferingHints` win). Default 5.
    pub buffer_size_mib: u32,
    /// Default buffer interval hint for the output folder (a stream's own
    /// `BufferingHints` win). Default 300 s.
    #[serde(rename = "buffer_interval_ms", with = "duration_ms")]
    pub buffer_interval: Duration,
    /// Seed for the random generator behind fault injection, so that a test
    /// sending the same requests in the same order sees the same faults.
    pub seed: Option<u64>,
    /// Faults applied to every request (in addition to per-stream faults).
    pub faults: Faults,
    /// How long a stream created through `CreateDeliveryStream` stays
    /// `CREATING` before it turns `ACTIVE`. Default zero (ACTIVE at once).
    #[serde(rename = "create_delay_ms", with = "duration_ms")]
    pub create_delay: Duration,
    /// HTTP status of a request rejected whole because of a quota
    /// (`ServiceUnavailableException`, "Slow down."). Default 500.
    pub throttle_status: u16,
    /// Keep at most this many accepted records per stream in memory (the
    /// oldest are dropped first). `None` (the default) keeps everything.
    pub record_retention: Option<usize>,
    /// When set, the server speaks TLS (HTTPS) with this identity's server
    /// certificate, and `endpoint()` is `https://...`; clients trust
    /// [`TlsIdentity::ca_pem`] (or the file from [`TlsIdentity::write_ca`]).
    /// `None` (the default): plain HTTP. Not part of the JSON form (a JSON
    /// `tls` key is an unknown field).
    #[serde(skip)]
    pub tls: Option<TlsIdentity>,
    /// When set, every API request must carry a valid AWS SigV4 signature made with this
    /// secret access key (any access key id): the signature is computed again over the
    /// request as it arrived, body included, as the real service does. A mismatch answers
    /// 400 `InvalidSignatureException`. `None` (the default): signatures are not checked.
    pub signing_secret: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            streams: Vec::new(),
            output_dir: None,
            buffer_size_mib: 5,
            buffer_interval: Duration::from_secs(300),
            seed: None,
            faults: Faults::default(),
            create_delay: Duration::ZERO,
            throttle_status: DEFAULT_THROTTLE_STATUS,
            record_retention: None,
            tls: None,
            signing_secret: None,
        }
    }
}

impl EmulatorConfig {
    /// Parses a configuration from JSON (the format the CLI reads).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// A delivery stream to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Delivery stream name (1–64 characters of `[a-zA-Z0-9_.-]`).
    pub name: String,
    /// Throughput quota; `None` means unlimited.
    #[serde(default)]
    pub quota: Option<Quota>,
    /// Faults applied to requests addressed to this stream.
    #[serde(default)]
    pub faults: Faults,
    /// Destination reported by `DescribeDeliveryStream`.
    #[serde(default)]
    pub destination: DestinationSpec,
}

impl StreamSpec {
    /// A stream with no quota, no faults and the default S3 destination.
    pub fn new(name: impl Into<String>) -> Self {
        StreamSpec {
            name: name.into(),
            quota: None,
            faults: Faults::default(),
            destination: DestinationSpec::default(),
        }
    }

    /// Sets the quota.
    pub fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Sets the per-stream faults.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the destination.
    pub fn with_destination(mut self, destination: DestinationSpec) -> Self {
        self.destination = destination;
        self
    }
}

/// Per-stream throughput quota, enforced with token buckets that refill at
/// the given rate and hold at most one second of burst.
///
/// A record (or request) larger than the whole one-second burst is admitted
/// when the bucket is full and leaves it in debt, so the long-run rate holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    /// Records per second (AWS default 5,000 in most regions).
    pub records_per_second: Option<f64>,
    /// Decoded data bytes per second (AWS default 5 MiB in most regions).
    pub bytes_per_second: Option<f64>,
    /// Put requests per second (AWS default 2,000). Always enforced on the
    /// whole request.
    pub requests_per_second: Option<f64>,
    /// `false` (default): once the record or byte budget is spent, the
    /// remaining records of a `PutRecordBatch` fail one by one with
    /// `ServiceUnavailableException` while the earlier ones are accepted.
    /// `true`: a request that does not fit is rejected whole with
    /// `ServiceUnavailableException` and nothing is accepted.
    pub whole_request: bool,
}

/// Fault injection settings, per stream or global.
///
/// All rates are probabilities in `0.0..=1.0`. Global and per-stream faults
/// add up: latencies are summed, and a request (or record) is rolled against
/// the global settings first, then against the stream's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Probability that an otherwise accepted record fails.
    pub record_failure_rate: f64,
    /// `ErrorCode` of such a record; default `InternalFailure`.
    pub record_error_code: Option<String>,
    /// Probability that a whole request fails.
    pub request_failure_rate: f64,
    /// HTTP status of such a failure; `0` means 500.
    pub request_failure_status: u16,
    /// Error type (`__type`) of such a failure; default `InternalFailure`.
    pub request_failure_code: Option<String>,
    /// Fixed latency added to every request.
    #[serde(rename = "latency_ms", with = "duration_ms")]
    pub latency: Duration,
    /// Random extra latency, uniform in `0..=latency_jitter`.
    #[serde(rename = "latency_jitter_ms", with = "duration_ms")]
    pub latency_jitter: Duration,
    /// While `true`, every request fails with 503 `ServiceUnavailableException`.
    pub outage: bool,
    /// Probability that the connection is closed without any response.
    pub reset_rate: f64,
    /// Operations refused with 400 `AccessDeniedException`, as IAM refuses a caller whose
    /// policy lacks `firehose:<Operation>`: `["PutRecordBatch"]`, `["ListDeliveryStreams"]`.
    pub deny_actions: Vec<String>,
}

impl Faults {
    /// `true` when these settings inject nothing.
    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }

    /// The error code of an injected record failure.
    pub fn record_error_code(&self) -> &str {
        self.record_error_code
            .as_deref()
            .unwrap_or("InternalFailure")
    }

    /// The HTTP status of an injected request failure.
    pub fn request_failure_status(&self) -> u16 {
        if self.request_failure_status == 0 {
            500
        } else {
            self.request_failure_status
        }
    }

    /// The error type of an injected request failure.
    pub fn request_failure_code(&self) -> &str {
        self.request_failure_code
            .as_deref()
            .unwrap_or("InternalFailure")
    }
}

/// Status of a delivery stream, as `DescribeDeliveryStream` reports it.
/// Only `ACTIVE` streams accept records; puts to any other stream fail with
/// `ResourceNotFoundException`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    /// Accepts records.
    #[default]
    Active,
    /// Being created.
    Creating,
    /// Creation failed.
    CreatingFailed,
    /// Being deleted.
    Deleting,
    /// Deletion failed.
    DeletingFailed,
}

impl StreamStatus {
    /// The wire name (`ACTIVE`, `CREATING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Creating => "CREATING",
            StreamStatus::CreatingFailed => "CREATING_FAILED",
            StreamStatus::Deleting => "DELETING",
            StreamStatus::DeletingFailed => "DELETING_FAILED",
        }
    }
}

impl std::fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StreamStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ACTIVE" => StreamStatus::Active,
            "CREATING" => StreamStatus::Creating,
            "CREATING_FAILED" => StreamStatus::CreatingFailed,
            "DELETING" => StreamStatus::Deleting,
            "DELETING_FAILED" => StreamStatus::DeletingFailed,
            other => return Err(format!("unknown delivery stream status {other:?}")),
        })
    }
}

/// Checks a delivery stream name against the Firehose rules
/// (1–64 characters of `[a-zA-Z0-9_.-]`).
pub fn validate_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "DeliveryStreamName must be 1 to 64 characters long, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "DeliveryStreamName {name:?} must match the pattern [a-zA-Z0-9_.-]+"
        ));
    }
    Ok(())
}

/// Serde helper: a [`Duration`] written as a number of milliseconds.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = d.as_secs_f64() * 1000.0;
        if ms.fract() == 0.0 && ms <= u64::MAX as f64 {
            s.serialize_u64(ms as u64)
        } else {
            s.serialize_f64(ms)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        if !ms.is_finite() || ms < 0.0 {
            return Err(D::Error::custom(format!(
                "a duration in milliseconds must be a finite number >= 0, got {ms}"
            )));
        }
        Ok(Duration::from_secs_f64(ms / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_round_trip() {
        let config = EmulatorConfig {
            streams: vec![StreamSpec::new("a").with_quota(Quota {
                records_per_second: Some(10.0),
                ..Default::default()
            })],
            faults: Faults {
                latency: Duration::from_millis(25),
                record_failure_rate: 0.5,
                ..Default::default()
            },
            seed: Some(3),
            ..Default::default()
        };
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains("\"latency_ms\":25"), "{text}");
        let back = EmulatorConfig::from_json(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn config_json_minimal_and_unknown_keys() {
        let c = EmulatorConfig::from_json(
            r#"{"bind":"127.0.0.1:4573","streams":[{"name":"x"}],"buffer_interval_ms":1500}"#,
        )
        .unwrap();
        assert_eq!(c.bind.port(), 4573);
        assert_eq!(c.streams[0].name, "x");
        assert_eq!(c.buffer_interval, Duration::from_millis(1500));
        assert!(EmulatorConfig::from_json(r#"{"bogus":1}"#).is_err());
        assert!(EmulatorConfig::from_json(r#"{"tls":true}"#).is_err());
        assert!(c.tls.is_none());
        assert!(EmulatorConfig::from_json(r#"{"buffer_interval_ms":-1}"#).is_err());
    }

    #[test]
    fn stream_names() {
        assert!(validate_stream_name("my-stream_1.a").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name(&"a".repeat(65)).is_err());
        assert!(validate_stream_name("bad name").is_err());
    }

    #[test]
    fn status_names() {
        for s in [
            StreamStatus::Active,
            StreamStatus::Creating,
            StreamStatus::CreatingFailed,
            StreamStatus::Deleting,
            StreamStatus::DeletingFailed,
        ] {
            assert_eq!(s.as_str().parse::<StreamStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }
}
