//! The path of one chunk: decode → encode → batch → route → deliver, until every record is
//! accepted or the flush deadline passes.

use crate::batch::{self, Framing, Records, MAX_RECORD_BYTES};
use crate::decode::{DecodeStats, Decoder, Item};
use crate::dedupe::ChunkKey;
use crate::deliver::{self, CallError, RecordFailure};
use crate::encode::{self, EncodeError, EncodeOptions, Encoder};
use crate::instance::{Chunk, Shared};
use crate::log::Level;
use crate::route::{Balance, Outcome, Placement, Stream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
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
    /// Hash of each record's `partition_key` value (only with `balance key`).
    pub keys: Vec<u64>,
    pub decode: DecodeStats,
    /// Records larger than Firehose's 1,000 KiB limit: dropped.
    pub oversize: usize,
    /// Records without the configured `log_key`: dropped.
    pub missing_log_key: usize,
}

/// Decodes and encodes a whole chunk. Runs on the plugin's threads, never on Fluent Bit's.
pub fn prepare(opts: &EncodeOptions, chunk: &[u8]) -> Prepared {
    prepare_keyed(opts, None, MAX_RECORD_BYTES, chunk)
}

/// As `prepare`, with records up to `max_record` bytes, also hashing each record's
/// `partition_key` value.
pub fn prepare_keyed(
    opts: &EncodeOptions,
    partition_key: Option<&str>,
    max_record: usize,
    chunk: &[u8],
) -> Prepared {
    let mut p = Prepared {
        // JSON is usually a little larger than msgpack.
        records: Records::with_capacity(chunk.len() + chunk.len() / 4),
        ..Default::default()
    };
    let mut enc = Encoder::new(opts.clone(), max_record);
    for item in Decoder::new(chunk) {
        match item {
            Item::GroupMarker => p.decode.group_markers += 1,
            Item::Malformed(_) => p.decode.malformed += 1,
            Item::Record(ev) => {
                p.decode.records += 1;
                match enc.encode(&ev, p.records.buffer()) {
                    Ok(()) => {
                        p.records.commit();
                        if let Some(k) = partition_key {
                            p.keys.push(encode::key_hash(&ev, k));
                        }
                    }
                    Err(e) => {
                        p.records.discard();
                        match e {
                            EncodeError::TooLarge(_) => p.oversize += 1,
                            EncodeError::MissingLogKey => p.missing_log_key += 1,
                            EncodeError::Malformed(_) => p.decode.malformed += 1,
                        }
                    }
                }
            }
        }
    }
    p
}

/// Decodes and encodes a chunk on the plugin's threads, logs and counts what had to be
/// skipped. `Err`: nothing in it to send (the code to answer).
fn encode_chunk(shared: &Shared, chunk: &[u8], tag: &str) -> Result<Prepared, FlushCode> {
    let log = &shared.log;
    let cfg = &shared.config;
    let partition_key = match cfg.balance {
        Balance::Key => cfg.partition_key.as_deref(),
        _ => None,
    };
    // Compressed, a record must still fit Firehose's limit.
    let max_record = cfg.compression.max_input();
    let p = prepare_keyed(&cfg.encode, partition_key, max_record, chunk);
    if p.decode.malformed > 0 {
        log.limited(
            "malformed",
            Level::Warn,
            format_args!(
                "tag {tag}: skipped {} malformed event(s) of the chunk",
                p.decode.malformed
            ),
        );
    }
    if p.oversize > 0 {
        log.limited(
            "oversize",
            Level::Error,
            format_args!(
                "tag {tag}: dropped {} record(s) larger than Firehose's limit of {} bytes",
                p.oversize, max_record
            ),
        );
    }
    if p.missing_log_key > 0 {
        log.limited(
            "missing-log-key",
            Level::Warn,
            format_args!(
                "tag {tag}: dropped {} record(s) without the log_key field '{}'",
                p.missing_log_key,
                cfg.encode.log_key.as_deref().unwrap_or("")
            ),
        );
    }
    shared
        .counters
        .add_dropped((p.oversize + p.missing_log_key) as u64);
    shared.counters.add_malformed(p.decode.malformed as u64);

    if p.records.is_empty() {
        if p.decode.records == 0 && p.decode.malformed == 0 {
            return Err(FlushCode::Ok); // empty, or only group markers: nothing to ship
        }
        log.limited("undeliverable", Level::Error, format_args!(
            "tag {tag}: nothing in the chunk can be delivered ({} bytes, {} events, {} malformed, {} dropped): answering FLB_ERROR",
            chunk.len(), p.decode.records, p.decode.malformed, p.oversize + p.missing_log_key
        ));
        return Err(FlushCode::Error);
    }
    Ok(p)
}

/// How a flush ended, for the one who answers Fluent Bit.
#[derive(Debug)]
pub struct Finished {
    pub code: FlushCode,
    /// Every record was accepted: the chunk and its record count, to remember in case
    /// Fluent Bit stopped waiting and sends the chunk again.
    pub all_delivered: Option<(ChunkKey, usize)>,
}

impl From<FlushCode> for Finished {
    fn from(code: FlushCode) -> Self {
        Finished {
            code,
            all_delivered: None,
        }
    }
}

/// Runs one flush to its outcome. The chunk is read once, to encode it (a lent chunk in
/// place), and let go before delivery.
pub async fn run(shared: Arc<Shared>, chunk: Chunk, tag: &str) -> Finished {
    let log = &shared.log;
    let deadline = Instant::now() + shared.config.flush_timeout;
    let mut encoded = None;
    chunk.read(&mut |bytes| {
        encoded = bytes.map(|c| (ChunkKey::of(tag, c), encode_chunk(&shared, c, tag)));
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
    let mut accepted = shared
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
        shared: shared.clone(),
        records: Arc::new(p.records),
        keys: Arc::new(p.keys),
        deadline,
    };
    let outcome = job.deliver(&mut accepted).await;
    match outcome {
        Delivered::All => Finished {
            code: FlushCode::Ok,
            all_delivered: Some((key, n)),
        },
        Delivered::Partly { pending, reason } => {
            shared.delivered.remember(key, &accepted);
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
pub async fn run_packed(shared: Arc<Shared>, chunks: Vec<Buffered>) {
    let size: usize = chunks.iter().map(|b| b.chunk.len()).sum();
    let mut records = Records::default();
    let mut keys = Vec::new();
    for b in chunks {
        if let Ok(p) = encode_chunk(&shared, &b.chunk, &b.tag) {
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
            shared: shared.clone(),
            records: records.clone(),
            keys: keys.clone(),
            deadline: Instant::now() + shared.config.flush_timeout,
        };
        match job.deliver(&mut accepted).await {
            Delivered::All => break,
            Delivered::Partly { pending, reason } => {
                let stopping = shared.stopping.load(std::sync::atomic::Ordering::Acquire);
                shared.log.limited(
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
        tokio::time::sleep(shared.backoff.delay(attempt)).await;
    }
    shared
        .buffered
        .fetch_sub(size, std::sync::atomic::Ordering::AcqRel);
}

enum Delivered {
    All,
    Partly { pending: usize, reason: String },
}

/// One call's result as its task reports it.
struct Sent {
    stream: Arc<Stream>,
    idx: Vec<u32>,
    sent: std::time::Instant,
    /// Per log record of `idx[..idx.len() - rest]`; `None`: cancelled before it was sent.
    result: Option<Result<Vec<Option<RecordFailure>>, CallError>>,
    /// The last `rest` records of `idx` did not fit the call (500 Firehose records, 4 MiB)
    /// and go again, untried.
    rest: usize,
    /// Firehose records the call carried.
    sent_frames: usize,
    /// Firehose records accepted, and what Firehose bills for them.
    frames: u64,
    billed: u64,
}

struct Job {
    shared: Arc<Shared>,
    records: Arc<Records>,
    keys: Arc<Vec<u64>>,
    deadline: Instant,
}

impl Job {
    /// Sends every record not yet `accepted`, resending only what was not accepted, until
    /// all are accepted or the deadline passes. Calls in flight at the deadline are waited
    /// for (each has its own timeout), so `accepted` is exact when this returns.
    async fn deliver(&self, accepted: &mut [bool]) -> Delivered {
        let n = accepted.len();
        let mut done = accepted.iter().filter(|&&a| a).count();
        let mut ready: Vec<u32> = (0..n as u32).filter(|&i| !accepted[i as usize]).collect();
        // Records waiting out a backoff: (when, records).
        let mut delayed: Vec<(Instant, Vec<u32>)> = Vec::new();
        let mut set: JoinSet<Sent> = JoinSet::new();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut attempt = 0u32;
        let mut reason = String::from("no answer yet");
        let adaptive = self.shared.config.balance == Balance::Adaptive;

        loop {
            let now = Instant::now();
            if now >= self.deadline {
                let _ = cancel_tx.send(true);
                while let Some(j) = set.join_next().await {
                    if let Ok(s) = j {
                        self.absorb(
                            s,
                            accepted,
                            &mut done,
                            &mut Vec::new(),
                            &mut Vec::new(),
                            &mut reason,
                        );
                    }
                }
                return if done == n {
                    Delivered::All
                } else {
                    Delivered::Partly {
                        pending: n - done,
                        reason: format!("flush_timeout reached; last: {reason}"),
                    }
                };
            }
            delayed.retain_mut(|(when, idx)| {
                if *when <= now {
                    ready.append(idx);
                    false
                } else {
                    true
                }
            });
            if !ready.is_empty() {
                ready.sort_unstable();
                ready = self.place(ready, &mut set, &cancel_rx);
            }
            if set.is_empty() && ready.is_empty() && delayed.is_empty() {
                return if done == n {
                    Delivered::All
                } else {
                    // Only lost tasks can leave records unaccounted for.
                    Delivered::Partly {
                        pending: n - done,
                        reason,
                    }
                };
            }
            // Wake for the next result, the next delayed batch, a retry of placement, or the
            // deadline, whichever comes first.
            let mut wake = self.deadline;
            if let Some(t) = delayed.iter().map(|(t, _)| *t).min() {
                wake = wake.min(t);
            }
            if !ready.is_empty() {
                // Nothing could place them (no stream up, or capacity beyond the deadline).
                reason = if self.shared.router.eligible().is_empty() {
                    "no delivery stream is in the rotation".into()
                } else {
                    "the streams' capacity is taken until past flush_timeout".into()
                };
                // No stream can be tried before the deadline: waiting for it would only
                // hold Fluent Bit's worker.
                let chance = self.shared.router.next_chance();
                if set.is_empty()
                    && delayed.is_empty()
                    && chance.is_none_or(|t| t > self.deadline.into_std())
                {
                    return Delivered::Partly {
                        pending: n - done,
                        reason,
                    };
                }
                wake = wake.min(now + Duration::from_millis(100));
            }
            let joined = if set.is_empty() {
                tokio::time::sleep_until(wake).await;
                continue;
            } else {
                match tokio::time::timeout_at(wake, set.join_next()).await {
                    Err(_) => continue,
                    Ok(j) => j,
                }
            };
            let Some(joined) = joined else { continue };
            let sent = match joined {
                Ok(s) => s,
                Err(e) => {
                    // A task that died leaves its records' fate unknown: they stay pending
                    // and the flush answers FLB_RETRY.
                    reason = format!("a delivery task failed: {e}");
                    continue;
                }
            };
            let mut now_again = Vec::new();
            let mut later = Vec::new();
            self.absorb(
                sent,
                accepted,
                &mut done,
                &mut now_again,
                &mut later,
                &mut reason,
            );
            // Throttled or refused records go at once to the best other stream (adaptive);
            // failed ones, and throttled ones in the other modes, after a backoff.
            if adaptive {
                ready.extend(now_again);
            } else {
                later.extend(now_again);
            }
            if !later.is_empty() && !self.shared.config.auto_retry {
                // `auto_retry_requests off`: failed records wait for Fluent Bit's retry.
                reason = format!("{reason} (auto_retry_requests is off)");
                later.clear();
            }
            if !later.is_empty() {
                attempt += 1;
                self.shared.counters.add_retried(later.len() as u64);
                let at = Instant::now() + self.shared.backoff.delay(attempt);
                delayed.push((at, later));
            }
        }
    }

    /// Folds one call's result into `accepted`; sorts what must go again into `now_again`
    /// (throttled, refused by the stream) and `later` (failed: after a backoff).
    fn absorb(
        &self,
        s: Sent,
        accepted: &mut [bool],
        done: &mut usize,
        now_again: &mut Vec<u32>,
        later: &mut Vec<u32>,
        reason: &mut String,
    ) {
        let router = &self.shared.router;
        let Some(result) = s.result else {
            router.cancelled(&s.stream);
            now_again.extend_from_slice(&s.idx);
            return;
        };
        let (idx, rest) = s.idx.split_at(s.idx.len() - s.rest);
        now_again.extend_from_slice(rest);
        let name = &s.stream.name;
        let outcome = match result {
            Ok(entries) => {
                let (mut acc, mut bytes, mut thr, mut fail) = (0, 0, 0, 0);
                for (&i, e) in idx.iter().zip(&entries) {
                    match e {
                        None => {
                            if !accepted[i as usize] {
                                accepted[i as usize] = true;
                                *done += 1;
                            }
                            acc += 1;
                            bytes += self.records.record_len(i as usize) as u64;
                        }
                        Some(f) if f.throttled => {
                            thr += 1;
                            now_again.push(i);
                        }
                        Some(f) => {
                            fail += 1;
                            *reason = format!("{name}: records failed with {}", f.code);
                            later.push(i);
                        }
                    }
                }
                if thr > 0 {
                    *reason = format!("{name}: {thr} record(s) throttled");
                }
                self.shared.counters.add_accepted(acc, bytes);
                self.shared.counters.add_billed(s.billed);
                Outcome::Done {
                    accepted: acc,
                    bytes,
                    throttled: thr,
                    failed: fail,
                    frames: s.frames,
                    billed: s.billed,
                }
            }
            Err(err) => {
                *reason = format!("{name}: {err}");
                match err {
                    CallError::Throttled(_) => {
                        now_again.extend_from_slice(idx);
                        Outcome::Throttled
                    }
                    // A refused request of several Firehose records says nothing about the
                    // stream (the plugin built it wrong): never take the stream out for it.
                    // One record refused is the stream's doing (a Kinesis-sourced stream).
                    CallError::Invalid { code, message } if s.sent_frames > 1 => {
                        self.shared.log.limited(
                            "invalid-request",
                            Level::Error,
                            format_args!(
                                "{name} refused a request of {} Firehose records ({code}: {message}): sending its records again later; please report this",
                                s.sent_frames
                            ),
                        );
                        later.extend_from_slice(idx);
                        Outcome::Refused
                    }
                    CallError::Stream { code, message } | CallError::Invalid { code, message } => {
                        now_again.extend_from_slice(idx);
                        Outcome::StreamError(format!("{code}: {message}"))
                    }
                    CallError::Transient(m) => {
                        later.extend_from_slice(idx);
                        Outcome::Transient(m)
                    }
                }
            }
        };
        router.report(&s.stream, s.sent, &outcome);
    }

    /// Places what it can of `ready` on streams and starts the calls; returns what could
    /// not be placed.
    fn place(
        &self,
        ready: Vec<u32>,
        set: &mut JoinSet<Sent>,
        cancel: &watch::Receiver<bool>,
    ) -> Vec<u32> {
        let router = &self.shared.router;
        let latest = self.deadline.saturating_duration_since(Instant::now());
        let mut left = Vec::new();
        let bytes_of = |b: &[u32]| {
            b.iter()
                .map(|&i| self.records.record_len(i as usize))
                .sum::<usize>()
        };
        match self.shared.config.balance {
            Balance::Adaptive => {
                let streams = router.eligible().len().max(1);
                let aggregated = router.all_aggregate();
                let max = self.max_records();
                for b in batch::split_even(&ready, &self.records, streams, max, aggregated) {
                    // Bytes up to and including each record of the batch.
                    let ends: Vec<usize> = b
                        .iter()
                        .scan(0, |sum, &i| {
                            *sum += self.records.record_len(i as usize);
                            Some(*sum)
                        })
                        .collect();
                    let mut done = 0; // records of `b` placed so far
                    while done < b.len() {
                        let base = if done == 0 { 0 } else { ends[done - 1] };
                        let prefix = |max_bytes: usize| {
                            let k = ends[done..]
                                .partition_point(|&e| e - base <= max_bytes)
                                .max(1);
                            (k, ends[done + k - 1] - base)
                        };
                        match router.place_capped(&prefix, latest) {
                            Some((p, k)) => {
                                self.start(p, b[done..done + k].to_vec(), set, cancel);
                                done += k;
                            }
                            None => {
                                left.extend_from_slice(&b[done..]);
                                break;
                            }
                        }
                    }
                }
            }
            Balance::RoundRobin => {
                let eligible = router.eligible();
                if eligible.is_empty() {
                    return ready;
                }
                let batches = batch::split_limited(&ready, &self.records, self.max_records());
                for (k, b) in batches.into_iter().enumerate() {
                    let stream = eligible[k % eligible.len()].clone();
                    self.start(
                        Placement {
                            stream,
                            wait: Duration::ZERO,
                        },
                        b.to_vec(),
                        set,
                        cancel,
                    );
                }
            }
            Balance::Random | Balance::Key => {
                let eligible = router.eligible();
                if eligible.is_empty() {
                    return ready;
                }
                let key_mode = self.shared.config.balance == Balance::Key;
                let mut groups: HashMap<usize, Vec<u32>> = HashMap::new();
                for &i in &ready {
                    let k = if key_mode {
                        let h = self.keys.get(i as usize).copied().unwrap_or(0);
                        let s = router.stream_for_key(h, &eligible);
                        s.and_then(|s| eligible.iter().position(|e| Arc::ptr_eq(e, &s)))
                            .unwrap_or(0)
                    } else {
                        fastrand::usize(..eligible.len())
                    };
                    groups.entry(k).or_default().push(i);
                }
                for (k, idx) in groups {
                    let stream = &eligible[k];
                    let max = if stream.aggregates() {
                        usize::MAX
                    } else {
                        batch::MAX_BATCH_RECORDS
                    };
                    for b in batch::split_limited(&idx, &self.records, max) {
                        let placed = if key_mode {
                            router.place_on(stream, b.len(), bytes_of(b), latest)
                        } else {
                            Some(Placement {
                                stream: stream.clone(),
                                wait: Duration::ZERO,
                            })
                        };
                        match placed {
                            Some(p) => self.start(p, b.to_vec(), set, cancel),
                            None => left.extend_from_slice(b),
                        }
                    }
                }
            }
        }
        left
    }

    /// Log records a call may carry: many when every stream aggregates.
    fn max_records(&self) -> usize {
        if self.shared.router.all_aggregate() {
            usize::MAX
        } else {
            batch::MAX_BATCH_RECORDS
        }
    }

    /// Starts one call: waits for the placement's time and a slot, then frames the records
    /// (aggregation, compression) and sends them.
    fn start(
        &self,
        p: Placement,
        idx: Vec<u32>,
        set: &mut JoinSet<Sent>,
        cancel: &watch::Receiver<bool>,
    ) {
        let client = self.shared.clients.data.clone();
        let records = self.records.clone();
        let cfg = &self.shared.config;
        let (compression, aggregate_max) = (cfg.compression, cfg.aggregation_max_bytes);
        let mut cancel = cancel.clone();
        set.spawn(async move {
            let stream = p.stream;
            let sent = std::time::Instant::now();
            let mut out = Sent {
                stream,
                idx,
                sent,
                result: None,
                rest: 0,
                sent_frames: 0,
                frames: 0,
                billed: 0,
            };
            if !p.wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(p.wait) => {}
                    _ = cancel.wait_for(|c| *c) => return out,
                }
            }
            let permit = tokio::select! {
                permit = out.stream.permits.clone().acquire_owned() => permit,
                _ = cancel.wait_for(|c| *c) => return out,
            };
            let framing = Framing {
                aggregate_max: out.stream.aggregates().then_some(aggregate_max),
                compression,
            };
            let frames = match batch::frame(&records, &out.idx, framing) {
                Ok(f) => f,
                Err(e) => {
                    out.result = Some(Err(CallError::Transient(format!(
                        "compressing records: {e}"
                    ))));
                    return out;
                }
            };
            let framed = frames.last().map_or(0, |f| f.members.end);
            out.rest = out.idx.len() - framed;
            out.sent_frames = frames.len();
            let shape: Vec<(std::ops::Range<usize>, usize)> = frames
                .iter()
                .map(|f| (f.members.clone(), f.data.len()))
                .collect();
            let data = frames.into_iter().map(|f| f.data).collect();
            out.sent = std::time::Instant::now();
            let result = deliver::put_records(&client, &out.stream.name, data).await;
            // A Firehose record is taken or refused whole: its outcome is each member's.
            out.result = Some(result.map(|per_frame| {
                let mut per_record = vec![None; framed];
                for ((members, len), outcome) in shape.into_iter().zip(per_frame) {
                    match outcome {
                        None => {
                            out.frames += 1;
                            out.billed += batch::billed_bytes(len);
                        }
                        Some(f) => {
                            for k in members {
                                per_record[k] = Some(f.clone());
                            }
                        }
                    }
                }
                per_record
            }));
            if let Ok(permit) = permit {
                // The stream's in-flight limit went down meanwhile: give the slot up.
                if out.stream.retire_permit() {
                    permit.forget();
                }
            }
            out
        });
    }
}
