//! Streams as capacity: which stream takes a batch, and when.
//!
//! Each stream has token buckets for records, bytes and requests per second (its quota). In
//! `adaptive` mode a batch goes to the stream that can take it soonest, and waits until
//! then, so no quota is ever exceeded by this node. Throttling lowers a stream's effective
//! rate (multiplicative decrease); time without throttling raises it back towards the
//! configured quota (additive increase), so a lower real quota, or other nodes sharing the
//! stream, are learned rather than configured. A quota key left at its default is only a
//! starting estimate: while demand exceeds it and nothing throttles, the rate is probed
//! above it (up to `RouterOptions::quota_max`), so a quota AWS raised is learned too.
//! Streams that answer "not found", "access denied" or keep failing leave the rotation and
//! are probed now and then.

mod feedback;
mod router;
mod stream;
#[cfg(test)]
mod tests;

pub use crate::telemetry::metrics::StreamStats;
pub use router::Router;
pub use stream::Stream;

use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{Balance, Quota};

/// Tuning of the scheduler; defaults suit Firehose.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    pub balance: Balance,
    /// Where each stream's learned rate starts, and what it returns to after throttling.
    pub quota: Quota,
    /// The most the learned rate may reach (per rate): equal to `quota` for a key set in the
    /// configuration (a hard cap), higher for one left at its default (probed upward while
    /// demand exceeds it and nothing throttles).
    pub quota_max: Quota,
    pub max_in_flight: usize,
    /// How often a stream out of the rotation for a lasting reason (not found, access
    /// denied) is tried again.
    pub probe_interval: Duration,
    /// How long one call may take (`request_timeout`): a probe slot is held at most this
    /// long past its send time, even if its call never reports.
    pub call_timeout: Duration,
    /// Size of an aggregate, for streams that aggregate (see `Stream::aggregates`).
    pub aggregate_max: usize,
    /// Whether new streams aggregate before anything is known of them.
    pub aggregate_default: bool,
}

/// How log records of a stream are packed into Firehose records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// One log record per Firehose record: the reader sees each.
    Single,
    /// Many per Firehose record, at most `max_members` where the reader splits them again
    /// (dynamic partitioning's deaggregation takes 500).
    Aggregate { max_members: Option<usize> },
}

/// A batch placed on a stream: send after `wait`.
#[derive(Debug, Clone)]
pub struct Placement {
    pub stream: Arc<Stream>,
    pub wait: Duration,
    /// The stream's round when the tokens were taken (see `Call`).
    pub round: u64,
}

/// A call as the router needs it back with its outcome: the round of its placement (a
/// throttled call lowers the rate only if placed since the last decrease) and when it was
/// sent (its latency).
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub round: u64,
    pub sent: std::time::Instant,
}

/// What a call came to, for the router's model.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The call went through; `throttled` of its log records were refused for quota.
    Done {
        accepted: u64,
        bytes: u64,
        throttled: u64,
        /// Bytes of the throttled log records (the stream did not take them).
        throttled_bytes: u64,
        failed: u64,
        /// Firehose records accepted and what they are billed.
        frames: u64,
        billed: u64,
    },
    /// The whole call was throttled.
    Throttled,
    /// The stream cannot take records as it stands (not found, access denied, invalid).
    StreamError(String),
    /// The request was refused as built (nothing said about the stream).
    Refused,
    /// Network, timeout, 5xx.
    Transient(String),
}
