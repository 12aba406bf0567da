//! The path of one chunk: decode → encode → batch → route → deliver, until every record is
//! accepted or the flush deadline passes.

use crate::batch::{self, Records, MAX_RECORD_BYTES};
use crate::decode::{DecodeStats, Decoder, Item};
use crate::deliver::{self, CallError};
use crate::encode::{EncodeError, EncodeOptions, Encoder};
use crate::instance::Shared;
use crate::route::Report;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio::time::Instant;

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

/// A chunk decoded and encoded into records.
#[derive(Debug, Default)]
pub struct Prepared {
    pub records: Records,
    pub decode: DecodeStats,
    /// Records larger than Firehose's 1,000 KiB limit: dropped.
    pub oversize: usize,
    /// Records without the configured `log_key`: dropped.
    pub missing_log_key: usize,
}

/// Decodes and encodes a whole chunk. Runs on the plugin's threads, never on Fluent Bit's.
pub fn prepare(opts: &EncodeOptions, chunk: &[u8]) -> Prepared {
    let mut p = Prepared {
        // JSON is usually a little larger than msgpack.
        records: Records::with_capacity(chunk.len() + chunk.len() / 4),
        ..Default::default()
    };
    let mut enc = Encoder::new(opts.clone(), MAX_RECORD_BYTES);
    for item in Decoder::new(chunk) {
        match item {
            Item::GroupMarker => p.decode.group_markers += 1,
            Item::Malformed(_) => p.decode.malformed += 1,
            Item::Record(ev) => {
                p.decode.records += 1;
                match enc.encode(&ev, p.records.buffer()) {
                    Ok(()) => p.records.commit(),
                    Err(e) => {
                        p.records.discard();
                        match e {
                            EncodeError::TooLarge(_) => p.oversize += 1,
                            EncodeError::MissingLogKey => p.missing_log_key += 1,
                            EncodeError::Malformed(_) | EncodeError::KeysTooDeep => {
                                p.decode.malformed += 1
                            }
                        }
                    }
                }
            }
        }
    }
    p
}

/// Runs one flush to its outcome.
pub async fn run(shared: Arc<Shared>, chunk: Vec<u8>, tag: String) -> FlushCode {
    let log = &shared.log;
    let cfg = &shared.config;
    let deadline = Instant::now() + cfg.flush_timeout;
    let chunk_len = chunk.len();
    let p = prepare(&cfg.encode, &chunk);
    drop(chunk);

    if p.decode.malformed > 0 {
        log.warn(format_args!(
            "tag {tag}: skipped {} malformed event(s) of the chunk",
            p.decode.malformed
        ));
    }
    if p.oversize > 0 {
        log.error(format_args!(
            "tag {tag}: dropped {} record(s) larger than Firehose's limit of {} bytes",
            p.oversize, MAX_RECORD_BYTES
        ));
    }
    if p.missing_log_key > 0 {
        log.warn(format_args!(
            "tag {tag}: dropped {} record(s) without the log_key field '{}'",
            p.missing_log_key,
            cfg.encode.log_key.as_deref().unwrap_or("")
        ));
    }
    shared
        .counters
        .add_dropped((p.oversize + p.missing_log_key) as u64);
    shared.counters.add_malformed(p.decode.malformed as u64);

    if p.records.is_empty() {
        if p.decode.records == 0 && p.decode.malformed == 0 && p.decode.group_markers > 0 {
            return FlushCode::Ok; // only group markers: nothing to ship
        }
        log.error(format_args!(
            "tag {tag}: nothing in the chunk can be delivered ({} bytes, {} events, {} malformed, {} dropped): answering FLB_ERROR",
            chunk_len, p.decode.records, p.decode.malformed, p.oversize + p.missing_log_key
        ));
        return FlushCode::Error;
    }

    let n = p.records.len();
    let records = Arc::new(p.records);
    let (accepted, outcome) = deliver_all(&shared, records, deadline).await;
    debug_assert_eq!(accepted.len(), n);
    match outcome {
        Delivered::All => FlushCode::Ok,
        Delivered::Partly { pending, reason } => {
            log.warn(format_args!(
                "tag {tag}: {} of {n} record(s) accepted, {pending} still pending ({reason}): answering FLB_RETRY",
                n - pending,
            ));
            FlushCode::Retry
        }
    }
}

enum Delivered {
    All,
    Partly { pending: usize, reason: String },
}

/// Sends every record, resending only the ones not accepted, until all are accepted or the
/// deadline passes. Returns which records were accepted.
async fn deliver_all(
    shared: &Arc<Shared>,
    records: Arc<Records>,
    deadline: Instant,
) -> (Vec<bool>, Delivered) {
    let router = &shared.router;
    let n = records.len();
    let mut accepted = vec![false; n];
    let mut accepted_count = 0usize;
    let mut pending: Vec<u32> = (0..n as u32).collect();
    let mut excluded = vec![false; router.streams().len()];
    let mut attempt = 0u32;
    let mut reason = String::from("no answer yet");

    loop {
        let shares = router.spread(&pending, &excluded);
        if shares.is_empty() {
            let pending = n - accepted_count;
            return (
                accepted,
                Delivered::Partly {
                    pending,
                    reason: format!("no delivery stream can take records; last error: {reason}"),
                },
            );
        }
        let mut set = JoinSet::new();
        for (si, share) in shares {
            for b in batch::split(share, &records) {
                let stream = router.streams()[si].clone();
                let client = shared.client.clone();
                let records = records.clone();
                let idx = b.to_vec();
                set.spawn(async move {
                    let _permit = stream.permits.clone().acquire_owned().await;
                    let r = deliver::put_batch(&client, &stream.name, &records, &idx).await;
                    (si, idx, r)
                });
            }
        }

        let mut next = Vec::new();
        loop {
            let joined = match tokio::time::timeout_at(deadline, set.join_next()).await {
                Ok(j) => j,
                Err(_) => {
                    // Aborted calls may or may not have arrived: their records count as
                    // pending, and Fluent Bit's retry sends them again.
                    set.abort_all();
                    let pending = n - accepted_count;
                    return (
                        accepted,
                        Delivered::Partly {
                            pending,
                            reason: format!("flush_timeout reached; last error: {reason}"),
                        },
                    );
                }
            };
            let Some(joined) = joined else { break };
            let (si, idx, result) = match joined {
                Ok(r) => r,
                Err(e) => {
                    // A task that died leaves its records' fate unknown: they stay pending
                    // until the deadline, and the flush answers FLB_RETRY.
                    reason = format!("a delivery task failed: {e}");
                    continue;
                }
            };
            let name = &router.streams()[si].name;
            match result {
                Ok(entries) => {
                    let (mut acc, mut bytes, mut thr, mut fail) = (0, 0, 0, 0);
                    for (&i, e) in idx.iter().zip(&entries) {
                        match e {
                            None => {
                                if !accepted[i as usize] {
                                    accepted[i as usize] = true;
                                    accepted_count += 1;
                                }
                                acc += 1;
                                bytes += records.record_len(i as usize) as u64;
                            }
                            Some(f) => {
                                if f.throttled {
                                    thr += 1;
                                } else {
                                    fail += 1;
                                }
                                reason = format!("{name}: records failed with {}", f.code);
                                next.push(i);
                            }
                        }
                    }
                    router.report(
                        si,
                        Report::Batch {
                            accepted: acc,
                            bytes,
                            throttled: thr,
                            failed: fail,
                        },
                    );
                    shared.counters.add_accepted(acc, bytes);
                }
                Err(err) => {
                    router.report(si, Report::CallFailed);
                    if let CallError::Stream { .. } = &err {
                        if !excluded[si] {
                            shared.log.warn(format_args!(
                                "delivery stream {name} refused a batch ({err}): its records go to the other streams"
                            ));
                        }
                        excluded[si] = true;
                    }
                    reason = format!("{name}: {err}");
                    next.extend_from_slice(&idx);
                }
            }
        }
        if next.is_empty() && accepted_count == n {
            return (accepted, Delivered::All);
        }
        if next.is_empty() {
            // Only lost tasks remain unaccounted for; wait out the deadline's verdict.
            let pending = n - accepted_count;
            return (accepted, Delivered::Partly { pending, reason });
        }
        next.sort_unstable();
        pending = next;
        attempt += 1;
        shared.counters.add_retried(pending.len() as u64);
        let delay = shared.backoff.delay(attempt);
        if Instant::now() + delay >= deadline {
            let pending = n - accepted_count;
            return (
                accepted,
                Delivered::Partly {
                    pending,
                    reason: format!("flush_timeout reached; last error: {reason}"),
                },
            );
        }
        tokio::time::sleep(delay).await;
    }
}
