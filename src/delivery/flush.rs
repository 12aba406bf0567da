//! One flush from start to outcome (sync mode), and buffered chunks delivered until done
//! (async mode).

use super::job::{Job, JobEnd};
use super::prepare::encode_chunk;
use super::{Chunk, Context, Finished, FlushCode};
use crate::batch::Records;
use crate::delivery::dedupe::ChunkKey;
use crate::telemetry::log::Level;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::time::Instant;

/// A sync flush's chunk, and its key in the retry memory, worked out once and only when
/// needed: hashing every chunk costs ~5 % of the plugin's CPU, and most chunks are
/// delivered whole and never come back. Needed for a journal, for a chunk of the tag and
/// length of one remembered, for records left pending, or for a late outcome after the
/// waiter gave up; the waiter hashes it as it gives up, while the chunk is still lent.
pub struct KeySource {
    chunk: Chunk,
    tag: String,
    known: OnceLock<ChunkKey>,
}

impl KeySource {
    pub fn new(chunk: Chunk, tag: String) -> KeySource {
        KeySource {
            chunk,
            tag,
            known: OnceLock::new(),
        }
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The key, hashing the chunk the first time; `None` only if the loan ended before
    /// anyone hashed it.
    pub fn get(&self) -> Option<ChunkKey> {
        if let Some(k) = self.known.get() {
            return Some(*k);
        }
        let mut key = None;
        self.chunk
            .read(&mut |b| key = b.map(|b| ChunkKey::of(&self.tag, b)));
        let key = key?;
        Some(*self.known.get_or_init(|| key))
    }
}

/// Runs one flush to its outcome. The chunk is read in place once, to encode it (hashed
/// then too when its key will surely be needed); records left pending are remembered
/// under its key before the flush answers FLB_RETRY.
pub async fn run(ctx: Arc<Context>, source: &KeySource) -> Finished {
    let log = &ctx.log;
    let tag = source.tag();
    let deadline = Instant::now() + ctx.config.flush_timeout;
    let mut encoded = None;
    source.chunk.read(&mut |bytes| {
        encoded = bytes.map(|c| {
            if ctx.delivered.journaled() || ctx.delivered.may_hold(tag, c.len()) {
                let _ = source.known.set(ChunkKey::of(tag, c));
            }
            encode_chunk(&ctx, c, tag)
        });
    });
    // None: the loan ended first, i.e. the flush already answered (it gave up waiting).
    let Some(p) = encoded else {
        return FlushCode::Retry.into();
    };
    let p = match p {
        Ok(p) => p,
        Err(code) => return code.into(),
    };

    let n = p.records.len();
    // Fluent Bit retries the very same chunk: what was accepted then is not sent again.
    // A chunk not hashed above cannot be among the remembered ones.
    let key = source.known.get().copied();
    let mut accepted = key
        .and_then(|key| ctx.delivered.take(&key, n))
        .unwrap_or_else(|| vec![false; n]);
    let before = accepted.iter().filter(|&&a| a).count();
    if before > 0 {
        log.debug(format_args!(
            "tag {tag}: retry of a chunk: {before} of {n} record(s) were delivered before, sending the other {}",
            n - before
        ));
    }
    let job = Job {
        ctx: ctx.clone(),
        records: Arc::new(p.records),
        keys: Arc::new(p.keys),
        deadline,
        // Hashed above whenever there is a journal.
        chunk: key.map(|key| (key, n)),
    };
    let outcome = job.deliver(&mut accepted).await;
    match outcome {
        JobEnd::All => {
            if let Some(key) = key {
                ctx.delivered.done(key, n);
            }
            Finished {
                code: FlushCode::Ok,
                all_delivered: Some(n),
            }
        }
        JobEnd::Partly { pending, reason } => {
            match source.get() {
                Some(key) => ctx.delivered.remember(key, &accepted),
                None => log.warn(format_args!(
                    "tag {tag}: the chunk could not be read again to remember its {} accepted record(s): a retry sends them again",
                    n - pending
                )),
            }
            log.limited("flush-retry", Level::Warn, format_args!(
                "tag {tag}: {} of {n} record(s) accepted, {pending} still pending ({reason}): answering FLB_RETRY",
                n - pending,
            ));
            FlushCode::Retry.into()
        }
    }
}

/// A chunk Fluent Bit was told is done (async mode).
pub struct Buffered {
    pub chunk: Vec<u8>,
    pub tag: String,
}

/// Async mode: delivers chunks Fluent Bit was already told are done, packed together so
/// that their records share aggregates (one 5 KB rounding per pack, not per chunk), trying
/// again (only the records not yet accepted) until all are delivered or the instance stops.
pub async fn run_packed(ctx: Arc<Context>, chunks: Vec<Buffered>, stopping: &AtomicBool) {
    let mut records = Records::default();
    let mut keys = Vec::new();
    for b in chunks {
        if let Ok(p) = encode_chunk(&ctx, &b.chunk, &b.tag) {
            records.append(p.records);
            keys.extend(p.keys);
        }
    }
    let n = records.len();
    let mut accepted = vec![false; n];
    let records = Arc::new(records);
    let keys = Arc::new(keys);
    let mut attempt = 0;
    // Nothing to send (every chunk undeliverable) ends at once.
    while accepted.iter().any(|a| !a) {
        let job = Job {
            ctx: ctx.clone(),
            records: records.clone(),
            keys: keys.clone(),
            deadline: Instant::now() + ctx.config.flush_timeout,
            // Fluent Bit was told these are done: after a crash nothing flushes them again.
            chunk: None,
        };
        match job.deliver(&mut accepted).await {
            JobEnd::All => break,
            JobEnd::Partly { pending, reason } => {
                let stopping = stopping.load(Ordering::Acquire);
                ctx.log.limited(
                    "buffer-retry",
                    Level::Warn,
                    format_args!(
                    "buffered records: {} of {n} accepted, {pending} still pending ({reason}): {}",
                    n - pending,
                    if stopping { "the instance is stopping" } else { "trying again" },
                ),
                );
                if stopping {
                    break;
                }
            }
        }
        attempt += 1;
        tokio::time::sleep(ctx.policy.backoff.delay(attempt)).await;
    }
}
