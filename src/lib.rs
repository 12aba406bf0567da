//! firehose-fanout: a Fluent Bit output plugin that ships log records to Amazon Kinesis
//! Data Firehose, spread over many delivery streams.
//!
//! The data path, one module each: [`ffi`] → [`config`] → [`decode`] → [`encode`] →
//! [`batch`] → [`route`] → [`deliver`], driven by [`flush`] inside an [`instance`] on the
//! shared [`runtime`].

pub mod batch;
pub mod client;
pub mod compress;
pub mod config;
pub mod decode;
pub mod dedupe;
pub mod deliver;
pub mod discover;
pub mod encode;
pub mod ffi;
pub mod flush;
pub mod instance;
pub mod log;
pub mod metrics;
pub mod msgpack;
pub mod retry;
pub mod route;
pub mod runtime;
pub mod timefmt;

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
