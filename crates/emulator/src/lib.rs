//! A local stand-in for Amazon Kinesis Data Firehose.
//!
//! The emulator speaks the Firehose API the way `aws-sdk-firehose` (and the
//! other AWS SDKs) use it: AWS JSON 1.1 over HTTP, `POST /` with
//! `X-Amz-Target: Firehose_20150804.<Operation>`, signatures ignored (or checked, with
//! `signing_secret`). It
//! implements `PutRecord`, `PutRecordBatch`, `CreateDeliveryStream`,
//! `DeleteDeliveryStream`, `DescribeDeliveryStream` and
//! `ListDeliveryStreams`, and enforces the real API limits with the real
//! error codes (500 records, 4 MiB and 1,000 KiB per record for
//! `PutRecordBatch`).
//!
//! On top of that it offers what a test of a Firehose producer needs:
//! per-stream throughput quotas ([`Quota`]), fault injection ([`Faults`]:
//! failing records, failing requests, latency, outages, dropped
//! connections, actions denied as IAM denies them; seedable), the accepted records in memory
//! ([`Emulator::records`]), counters ([`Emulator::stats`], `GET /stats`), an
//! optional S3-like output folder ([`output`]), and an optional TLS mode with
//! a throwaway CA made at run time ([`tls`], [`EmulatorConfig::tls`]).
//!
//! ```no_run
//! use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};
//!
//! let emulator = Emulator::start(EmulatorConfig {
//!     streams: vec![StreamSpec::new("logs")],
//!     ..Default::default()
//! })?;
//! // Point the SDK at emulator.endpoint(), send records, then:
//! let records: Vec<Vec<u8>> = emulator.records("logs");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # HTTP endpoints
//! * `POST /` with `X-Amz-Target`: the Firehose API ([`api`]).
//! * `GET /stats`: [`Stats`] as JSON.
//! * `GET /healthz`: `{"ok":true}`.
//! * `/admin/...`: a small JSON control API ([`admin`]).
//!
//! # Errors on the wire
//! Errors carry the code both in the `x-amzn-ErrorType` header and in the
//! `__type` member of the body, so the SDK reports them as its typed errors
//! (`err.as_service_error()`, `code()`). Validation errors are 400;
//! `ServiceUnavailableException` is 500 for quota throttling (configurable
//! with [`EmulatorConfig::throttle_status`]) and 503 for outages. The SDK's
//! standard retry strategy retries 500/502/503/504 responses by itself
//! (3 attempts by default): disable it in tests that count requests.

pub mod admin;
pub mod api;
pub mod client;
pub mod config;
pub mod destination;
pub mod error;
pub mod faults;
pub mod output;
pub mod quota;
pub mod server;
pub mod sigv4;
pub mod state;
pub mod stats;
pub mod timeutil;
pub mod tls;

pub use config::{EmulatorConfig, Faults, Quota, StreamSpec, StreamStatus};
pub use destination::{
    BufferingHints, DestinationSpec, DynamicPartitioningConfiguration, ProcessingConfiguration,
    Processor, ProcessorParameter,
};
pub use error::ApiError;
pub use server::{serve, Emulator, EmulatorHandle, Server};
pub use state::StoredRecord;
pub use stats::{SeriesPoint, Stats, StreamStats};
pub use tls::TlsIdentity;
