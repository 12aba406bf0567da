//! Delivery: one chunk (or a pack of buffered chunks) from records to accepted, with
//! placement per `balance` mode, one task per call, and a retry policy; what a retried
//! chunk already delivered is remembered (`dedupe`).

mod attempt;
pub mod dedupe;
mod flush;
mod job;
pub mod journal;
mod place;
mod prepare;
pub mod retry;

pub use flush::{run, run_packed, Buffered, KeySource};
pub use prepare::{prepare, prepare_keyed, Prepared};

use crate::config::Config;
use crate::schedule::Router;
use crate::telemetry::log::Logger;
use crate::telemetry::metrics::Counters;
use dedupe::Delivered;
use retry::Policy;
use std::sync::Arc;

/// What delivering needs, and nothing else: the settings, the log, the data-plane client,
/// the streams, the retry policy, the counters, and the memory of retried chunks.
pub struct Context {
    pub config: Config,
    pub log: Logger,
    pub client: aws_sdk_firehose::Client,
    pub router: Arc<Router>,
    pub policy: Policy,
    pub counters: Arc<Counters>,
    /// Records accepted of chunks that Fluent Bit will retry.
    pub delivered: Delivered,
}

/// What a flush answers Fluent Bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushCode {
    /// Every decodable record was accepted.
    Ok,
    /// Some records are still pending: send the same chunk again later.
    Retry,
    /// Nothing in the chunk can ever be delivered.
    Error,
}

/// How a flush ended, for the one who answers Fluent Bit.
#[derive(Debug)]
pub struct Finished {
    pub code: FlushCode,
    /// Every record was accepted: the chunk's record count, to remember the chunk in case
    /// Fluent Bit stopped waiting and sends it again.
    pub all_delivered: Option<usize>,
}

impl From<FlushCode> for Finished {
    fn from(code: FlushCode) -> Self {
        Finished {
            code,
            all_delivered: None,
        }
    }
}

/// Lends a chunk's bytes to the plugin's threads for the length of one flush call.
pub trait Lender: Send + Sync {
    /// Calls `f` once with the bytes, or with `None` once the loan has ended (the flush
    /// has answered: nothing is left to do with it).
    fn read(&self, f: &mut dyn FnMut(Option<&[u8]>));
}

/// A flush's chunk: copied, or lent by the caller (sync mode reads it in place).
pub enum Chunk {
    Owned(Vec<u8>),
    Lent(Arc<dyn Lender>),
}

impl Chunk {
    /// Calls `f` once with the bytes (`None`: the loan has ended).
    pub fn read(&self, f: &mut dyn FnMut(Option<&[u8]>)) {
        match self {
            Chunk::Owned(v) => f(Some(v)),
            Chunk::Lent(l) => l.read(f),
        }
    }

    /// The bytes as an owned copy (empty once a loan has ended).
    pub fn into_owned(self) -> Vec<u8> {
        match self {
            Chunk::Owned(v) => v,
            lent => {
                let mut v = Vec::new();
                lent.read(&mut |b| v = b.map(<[u8]>::to_vec).unwrap_or_default());
                v
            }
        }
    }
}
