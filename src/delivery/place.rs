//! Where each batch goes, per `balance` mode: adaptive (the stream that can take it
//! soonest, one call's worth at a time), round robin, random, or by key.

use super::attempt::Sent;
use super::job::Job;
use crate::batch;
use crate::schedule::{Balance, Placement};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

impl Job {
    /// Places what it can of `ready` on streams and starts the calls; returns what could
    /// not be placed.
    pub(super) fn place(
        &self,
        ready: Vec<u32>,
        set: &mut JoinSet<Sent>,
        cancel: &watch::Receiver<bool>,
    ) -> Vec<u32> {
        let router = &self.ctx.router;
        let latest = self.deadline.saturating_duration_since(Instant::now());
        let mut left = Vec::new();
        let bytes_of = |b: &[u32]| {
            b.iter()
                .map(|&i| self.records.record_len(i as usize))
                .sum::<usize>()
        };
        match self.ctx.config.balance {
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
                            round: stream.round(),
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
                let key_mode = self.ctx.config.balance == Balance::Key;
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
                                round: stream.round(),
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
        if self.ctx.router.all_aggregate() {
            usize::MAX
        } else {
            batch::MAX_BATCH_RECORDS
        }
    }
}
