//! One flush from start to outcome (sync mode), and buffered chunks delivered until done
//! (async mode).

use super::job::{Job, JobEnd};
use super::prepare::encode_chunk;
use super::{Chunk, Context, Finished, FlushCode};
use crate::batch::Records;
use crate::delivery::dedupe::ChunkKey;
use crate::telemetry::log::Level;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

/// Runs one flush to its outcome. The chunk is read once, to encode it (a lent chunk in
/// place), and let go before delivery.
pub async fn run(ctx: Arc<Context>, chunk: Chunk, tag: &str) -> Finished {
    let log = &ctx.log;
    let deadline = Instant::now() + ctx.config.flush_timeout;
    let mut encoded = None;
    chunk.read(&mut |bytes| {
        encoded = bytes.map(|c| (ChunkKey::of(tag, c), encode_chunk(&ctx, c, tag)));
    });
    drop(chunk);
    // None: the loan ended first, i.e. the flush already answered (it gave up waiting).
    let Some((key, p)) = encoded else {
        return FlushCode::Retry.into();
    };
    let p = match p {
        Ok(p) => p,
        Err(code) => return code.into(),
    };

    let n = p.records.len();
    // Fluent Bit retries the very same chunk: what was accepted then is not sent again.
    let mut accepted = ctx
        .delivered
        .take(&key, n)
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
        chunk: Some((key, n)),
    };
    let outcome = job.deliver(&mut accepted).await;
    match outcome {
        JobEnd::All => {
            ctx.delivered.done(key, n);
            Finished {
                code: FlushCode::Ok,
                all_delivered: Some((key, n)),
            }
        }
        JobEnd::Partly { pending, reason } => {
            ctx.delivered.remember(key, &accepted);
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
