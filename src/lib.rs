//! firehose-fanout: a Fluent Bit output plugin that ships log records to Amazon Kinesis
//! Data Firehose, spread over many delivery streams.
//!
//! The data path, one folder each, every dependency pointing down this list:
//! [`ffi`] (the C symbols) → [`instance`] (an `[OUTPUT]`, its sync and async front ends,
//! background tasks) → [`delivery`] (one chunk to its outcome: prepare, place, call, retry)
//! → [`schedule`] (streams as capacity), [`firehose`] (the SDK calls), [`batch`] (records
//! into calls), [`codec`] (msgpack → JSON lines) → [`config`]; [`telemetry`] (log, metrics)
//! is used by all.
#![deny(unsafe_code)]

pub mod batch;
pub mod codec;
pub mod config;
pub mod delivery;
#[allow(unsafe_code)]
pub mod ffi;
pub mod firehose;
pub mod instance;
pub mod schedule;
pub mod telemetry;

/// The name used in `[OUTPUT] Name`.
pub const PLUGIN_NAME: &str = "firehose_fanout";

/// The registration description: what it is, with version and git revision.
pub fn description() -> String {
    format!(
        "Amazon Kinesis Data Firehose, fanned out over many delivery streams (firehose-fanout {} {})",
        env!("CARGO_PKG_VERSION"),
        env!("FIREHOSE_FANOUT_GIT_REV")
    )
}
