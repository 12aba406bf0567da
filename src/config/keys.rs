//! The keys of an `[OUTPUT]` section, as Fluent Bit passes them (case-insensitive).

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
pub const JOURNAL_PATH: &str = "journal_path";
pub const JOURNAL_SYNC_INTERVAL: &str = "journal_sync_interval";
pub const JOURNAL_MAX_BYTES: &str = "journal_max_bytes";
pub const PROXY: &str = "proxy";
pub const NO_PROXY: &str = "no_proxy";
pub const USE_FIPS_ENDPOINT: &str = "use_fips_endpoint";
pub const USE_DUALSTACK_ENDPOINT: &str = "use_dualstack_endpoint";
pub const USER_AGENT_SUFFIX: &str = "user_agent_suffix";
pub const OVERSIZE_POLICY: &str = "oversize_policy";

/// Every key, for tests and tools (a unit test checks the list is complete).
pub const ALL: &[&str] = &[
    REGION,
    DELIVERY_STREAMS,
    DELIVERY_STREAM,
    ENDPOINT,
    PORT,
    TLS_CA_FILE,
    CA_FILE,
    TIME_KEY,
    TIME_KEY_FORMAT,
    LOG_KEY,
    DATA_KEYS,
    REPLACE_DOTS,
    FLUSH_TIMEOUT,
    REQUEST_TIMEOUT,
    RETRY_INITIAL_BACKOFF,
    RETRY_MAX_BACKOFF,
    MAX_IN_FLIGHT_PER_STREAM,
    WORKER_THREADS,
    DELIVERY_STREAM_PREFIX,
    DISCOVERY_INTERVAL,
    BALANCE,
    PARTITION_KEY,
    STREAM_RECORDS_PER_SECOND,
    STREAM_BYTES_PER_SECOND,
    STREAM_REQUESTS_PER_SECOND,
    HEALTH_PROBE_INTERVAL,
    RETRY_MEMORY_CHUNKS,
    PROFILE,
    ROLE_ARN,
    EXTERNAL_ID,
    STS_ENDPOINT,
    ROLE_SESSION_NAME,
    AGGREGATION,
    AGGREGATION_MAX_BYTES,
    SIMPLE_AGGREGATION,
    COMPRESSION,
    COMPRESSION_LEVEL,
    AUTO_RETRY_REQUESTS,
    METRICS_INTERVAL,
    SUMMARY_INTERVAL,
    DELIVERY_MODE,
    BUFFER_MAX_BYTES,
    SHUTDOWN_TIMEOUT,
    BUFFER_LINGER,
    JOURNAL_PATH,
    JOURNAL_SYNC_INTERVAL,
    JOURNAL_MAX_BYTES,
    PROXY,
    NO_PROXY,
    USE_FIPS_ENDPOINT,
    USE_DUALSTACK_ENDPOINT,
    USER_AGENT_SUFFIX,
    OVERSIZE_POLICY,
];

#[cfg(test)]
mod tests {
    /// ALL names every `pub const` of this file.
    #[test]
    fn all_lists_every_key() {
        let src = include_str!("keys.rs");
        let declared = src
            .lines()
            .filter(|l| l.starts_with("pub const ") && l.contains(": &str"))
            .count();
        assert_eq!(declared, super::ALL.len());
    }
}
