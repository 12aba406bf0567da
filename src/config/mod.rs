//! Typed, validated settings of one `[OUTPUT]` instance, read from Fluent Bit properties.
//!
//! Every error names the key, the value and what is accepted, because it is the only thing
//! a user sees when Fluent Bit refuses to start.

pub mod keys;
mod network;
mod sections;
mod settings;
pub mod time_format;
mod values;

pub use network::{redact_userinfo, Network, Proxy};
pub use settings::{limits, Balance, Compression, EncodeOptions, Quota, DEFAULT_TIME_FORMAT};
use std::time::Duration;
use thiserror::Error;
pub use values::{parse_duration, plain_http_off_host, valid_stream_name};

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
    /// Proxy, FIPS / dual-stack endpoints, user agent.
    pub network: Network,
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
    /// Per-stream quota the scheduler starts from (and keeps to, for the keys set).
    pub quota: Quota,
    /// The most each of the quota's rates may be learned up to: the value of a key set,
    /// `Quota::probe_ceiling` for a key left unset.
    pub quota_max: Quota,
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
    /// The on-disk journal of accepted records, if `journal_path` is set.
    pub journal: Option<JournalSettings>,
}

/// Where and how the journal of accepted records is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalSettings {
    /// A folder; the journal is a file in it named after the instance.
    pub folder: std::path::PathBuf,
    /// How often written entries are `fdatasync`ed (zero: after every entry).
    pub sync_interval: Duration,
    /// Compacted when it grows past this.
    pub max_bytes: u64,
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
        let get: sections::Get = &get;
        let region = sections::region(get)?;
        let (streams, stream_prefix, discovery_interval) = sections::streams(get)?;
        let sched = sections::scheduling(get)?;
        let (aggregation, aggregation_max_bytes, compression) = sections::packing(get)?;
        let (metrics_interval, summary_interval) = sections::telemetry(get)?;
        let mode = sections::mode(get)?;
        let sections::Reach {
            endpoint,
            credentials,
            ca_pem,
        } = sections::reach(get)?;
        let encode = sections::encoding(get)?;
        let t = sections::timing(get)?;
        let journal = sections::journal(get, mode.delivery_mode, sched.retry_memory_chunks)?;
        let network = network::network(get)?;
        Ok(Config {
            region,
            streams,
            credentials,
            endpoint,
            ca_pem,
            network,
            encode,
            flush_timeout: t.flush_timeout,
            request_timeout: t.request_timeout,
            retry_initial_backoff: t.retry_initial_backoff,
            retry_max_backoff: t.retry_max_backoff,
            max_in_flight_per_stream: t.max_in_flight_per_stream,
            worker_threads: t.worker_threads,
            stream_prefix,
            discovery_interval,
            balance: sched.balance,
            partition_key: sched.partition_key,
            quota: sched.quota,
            quota_max: sched.quota_max,
            health_probe_interval: sched.health_probe_interval,
            retry_memory_chunks: sched.retry_memory_chunks,
            aggregation,
            aggregation_max_bytes,
            compression,
            auto_retry: mode.auto_retry,
            metrics_interval,
            summary_interval,
            delivery_mode: mode.delivery_mode,
            buffer_max_bytes: mode.buffer_max_bytes,
            shutdown_timeout: mode.shutdown_timeout,
            buffer_linger: mode.buffer_linger,
            journal,
        })
    }
}
