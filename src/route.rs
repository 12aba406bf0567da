//! The set of delivery streams and the choice of stream for each share of records.
//!
//! Interface kept small on purpose (`spread`, `report`) so that capacity-aware scheduling,
//! throttle feedback, health and discovery can replace the even spread without touching
//! `deliver` or `batch`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Counters of one stream (monotonic, for logs and metrics).
#[derive(Debug, Default)]
pub struct StreamStats {
    pub requests: AtomicU64,
    pub accepted_records: AtomicU64,
    pub accepted_bytes: AtomicU64,
    pub throttled_records: AtomicU64,
    pub failed_records: AtomicU64,
    pub failed_calls: AtomicU64,
}

/// One delivery stream.
#[derive(Debug)]
pub struct Stream {
    pub name: String,
    /// Bounds the PutRecordBatch calls in flight to this stream.
    pub permits: Arc<Semaphore>,
    pub stats: StreamStats,
}

/// What one call to a stream came to, for the router's bookkeeping.
#[derive(Debug, Clone, Copy)]
pub enum Report {
    /// `accepted` records (of `bytes` bytes) taken, `throttled` and `failed` not.
    Batch {
        accepted: u64,
        bytes: u64,
        throttled: u64,
        failed: u64,
    },
    /// The whole call failed.
    CallFailed,
}

#[derive(Debug)]
pub struct Router {
    streams: Vec<Arc<Stream>>,
    cursor: AtomicUsize,
}

impl Router {
    pub fn new(names: &[String], max_in_flight: usize) -> Router {
        Router {
            streams: names
                .iter()
                .map(|n| {
                    Arc::new(Stream {
                        name: n.clone(),
                        permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
                        stats: StreamStats::default(),
                    })
                })
                .collect(),
            cursor: AtomicUsize::new(0),
        }
    }

    pub fn streams(&self) -> &[Arc<Stream>] {
        &self.streams
    }

    /// Spreads `pending` evenly over the streams not `excluded`, starting at a rotating
    /// stream so that small flushes and retried records move on to the next stream.
    /// Returns (stream index, share) pairs with non-empty shares.
    pub fn spread<'a>(&self, pending: &'a [u32], excluded: &[bool]) -> Vec<(usize, &'a [u32])> {
        let usable: Vec<usize> = (0..self.streams.len())
            .filter(|&i| !excluded.get(i).copied().unwrap_or(false))
            .collect();
        if usable.is_empty() || pending.is_empty() {
            return Vec::new();
        }
        let k = usable.len();
        let first = self.cursor.fetch_add(1, Ordering::Relaxed) % k;
        let n = pending.len();
        (0..k)
            .map(|j| {
                let share = &pending[j * n / k..(j + 1) * n / k];
                (usable[(first + j) % k], share)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect()
    }

    /// Records what a call to stream `i` came to.
    pub fn report(&self, i: usize, r: Report) {
        let Some(s) = self.streams.get(i) else { return };
        s.stats.requests.fetch_add(1, Ordering::Relaxed);
        match r {
            Report::Batch {
                accepted,
                bytes,
                throttled,
                failed,
            } => {
                s.stats
                    .accepted_records
                    .fetch_add(accepted, Ordering::Relaxed);
                s.stats.accepted_bytes.fetch_add(bytes, Ordering::Relaxed);
                s.stats
                    .throttled_records
                    .fetch_add(throttled, Ordering::Relaxed);
                s.stats.failed_records.fetch_add(failed, Ordering::Relaxed);
            }
            Report::CallFailed => {
                s.stats.failed_calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_evenly_and_skips_excluded() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let r = Router::new(&names, 2);
        let pending: Vec<u32> = (0..10).collect();
        let shares = r.spread(&pending, &[false; 3]);
        let mut sizes: Vec<usize> = shares.iter().map(|(_, s)| s.len()).collect();
        sizes.sort();
        assert_eq!(sizes, vec![3, 3, 4]);
        let all: Vec<u32> = shares.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, pending);

        let shares = r.spread(&pending, &[false, true, false]);
        assert!(shares.iter().all(|(i, _)| *i != 1));
        assert!(r.spread(&pending, &[true; 3]).is_empty());
    }

    #[test]
    fn single_records_rotate_over_streams() {
        let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let r = Router::new(&names, 1);
        let one = [7u32];
        let a = r.spread(&one, &[false, false])[0].0;
        let b = r.spread(&one, &[false, false])[0].0;
        assert_ne!(a, b);
    }
}
