//! The delivery loop of one job (a chunk, or a pack of buffered chunks): place what is
//! pending, start calls, fold their results in, back off, until everything is accepted or
//! the deadline passes.

use super::attempt::Sent;
use super::dedupe::ChunkKey;
use super::retry::Next;
use super::Context;
use crate::batch::Records;
use crate::schedule::Outcome;
use crate::telemetry::log::Level;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub(super) enum JobEnd {
    All,
    Partly { pending: usize, reason: String },
}

pub(super) struct Job {
    pub(super) ctx: Arc<Context>,
    pub(super) records: Arc<Records>,
    pub(super) keys: Arc<Vec<u64>>,
    pub(super) deadline: Instant,
    /// The chunk and its record count (sync mode): accepted records go to the journal.
    pub(super) chunk: Option<(ChunkKey, usize)>,
}

impl Job {
    /// Sends every record not yet `accepted`, resending only what was not accepted, until
    /// all are accepted or the deadline passes. Calls in flight at the deadline are waited
    /// for (each has its own timeout), so `accepted` is exact when this returns.
    pub(super) async fn deliver(&self, accepted: &mut [bool]) -> JobEnd {
        let n = accepted.len();
        let mut done = accepted.iter().filter(|&&a| a).count();
        let mut ready: Vec<u32> = (0..n as u32).filter(|&i| !accepted[i as usize]).collect();
        // Records waiting out a backoff: (when, records).
        let mut delayed: Vec<(Instant, Vec<u32>)> = Vec::new();
        let mut set: JoinSet<Sent> = JoinSet::new();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut attempt = 0u32;
        let mut reason = String::from("no answer yet");

        loop {
            let now = Instant::now();
            if now >= self.deadline {
                let _ = cancel_tx.send(true);
                while let Some(j) = set.join_next().await {
                    if let Ok(s) = j {
                        let mut sorted = Sorted::default();
                        self.absorb(s, accepted, &mut done, &mut sorted);
                        if !sorted.reason.is_empty() {
                            reason = sorted.reason;
                        }
                    }
                }
                return if done == n {
                    JobEnd::All
                } else {
                    JobEnd::Partly {
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
                    JobEnd::All
                } else {
                    // Only lost tasks can leave records unaccounted for.
                    JobEnd::Partly {
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
                reason = if self.ctx.router.eligible().is_empty() {
                    "no delivery stream is in the rotation".into()
                } else {
                    "the streams' capacity is taken until past flush_timeout".into()
                };
                // No stream can be tried before the deadline: waiting for it would only
                // hold Fluent Bit's worker.
                let chance = self.ctx.router.next_chance();
                if set.is_empty()
                    && delayed.is_empty()
                    && chance.is_none_or(|t| t > self.deadline.into_std())
                {
                    return JobEnd::Partly {
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
            let mut sorted = Sorted::default();
            self.absorb(sent, accepted, &mut done, &mut sorted);
            if !sorted.reason.is_empty() {
                reason = std::mem::take(&mut sorted.reason);
            }
            ready.extend(sorted.again);
            if sorted.held > 0 {
                // `auto_retry_requests off`: failed records wait for Fluent Bit's retry.
                reason = format!("{reason} (auto_retry_requests is off)");
            }
            let later = sorted.later;
            if !later.is_empty() {
                attempt += 1;
                self.ctx.counters.add_retried(later.len() as u64);
                let at = Instant::now() + self.ctx.policy.backoff.delay(attempt);
                delayed.push((at, later));
            }
        }
    }

    /// Folds one call's result into `accepted`; sorts what must go again by the retry
    /// policy into `again` (placed at once), `later` (after a backoff) and `held` (left for
    /// Fluent Bit's retry).
    fn absorb(&self, s: Sent, accepted: &mut [bool], done: &mut usize, out: &mut Sorted) {
        let router = &self.ctx.router;
        let policy = &self.ctx.policy;
        let Some(result) = s.result else {
            router.cancelled(&s.stream);
            out.push(policy.untried(), &s.idx);
            return;
        };
        let (idx, rest) = s.idx.split_at(s.idx.len() - s.rest);
        out.push(policy.untried(), rest);
        let name = &s.stream.name;
        let outcome = match result {
            Ok(entries) => {
                let (mut acc, mut bytes, mut thr, mut fail) = (0, 0, 0, 0);
                // Newly accepted records, only when a journal takes them.
                let journal = self.chunk.filter(|_| self.ctx.delivered.journaled());
                let mut newly = Vec::new();
                let mut thr_bytes = 0;
                for (&i, e) in idx.iter().zip(&entries) {
                    match e {
                        None => {
                            if !accepted[i as usize] {
                                accepted[i as usize] = true;
                                *done += 1;
                                if journal.is_some() {
                                    newly.push(i);
                                }
                            }
                            acc += 1;
                            bytes += self.records.record_len(i as usize) as u64;
                        }
                        Some(f) => {
                            if f.throttled {
                                thr += 1;
                                thr_bytes += self.records.record_len(i as usize) as u64;
                            } else {
                                fail += 1;
                                out.reason = format!("{name}: records failed with {}", f.code);
                            }
                            out.push(policy.record(Some(f)), &[i]);
                        }
                    }
                }
                if let Some((key, n)) = journal {
                    self.ctx.delivered.accepted(key, n, &newly);
                }
                if thr > 0 {
                    out.reason = format!("{name}: {thr} record(s) throttled");
                }
                self.ctx.counters.add_accepted(acc, bytes);
                self.ctx.counters.add_billed(s.billed);
                Outcome::Done {
                    accepted: acc,
                    bytes,
                    throttled: thr,
                    throttled_bytes: thr_bytes,
                    failed: fail,
                    frames: s.frames,
                    billed: s.billed,
                }
            }
            Err(err) => {
                out.reason = format!("{name}: {err}");
                let (next, outcome) = policy.call(err, s.sent_frames);
                if matches!(outcome, Outcome::Refused) {
                    self.ctx.log.limited(
                        "invalid-request",
                        Level::Error,
                        format_args!(
                            "{name} refused a request of {} Firehose records ({}): sending its records again later; please report this",
                            s.sent_frames, out.reason
                        ),
                    );
                }
                out.push(next, idx);
                outcome
            }
        };
        let call = crate::schedule::Call {
            round: s.round,
            sent: s.sent,
        };
        router.report(&s.stream, call, &outcome);
    }
}

/// Records sorted by what comes next, and the latest reason something did not go.
#[derive(Default)]
pub(super) struct Sorted {
    pub again: Vec<u32>,
    pub later: Vec<u32>,
    pub held: usize,
    pub reason: String,
}

impl Sorted {
    fn push(&mut self, next: Next, idx: &[u32]) {
        match next {
            Next::Accept => {}
            Next::Replace => self.again.extend_from_slice(idx),
            Next::BackOff => self.later.extend_from_slice(idx),
            Next::Hold => self.held += idx.len(),
        }
    }
}
