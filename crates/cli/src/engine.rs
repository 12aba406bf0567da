//! Fluent Bit's side of a flush: a queue of chunks, N workers flushing them through the
//! plugin's C ABI, and the scheduler's answer to `FLB_RETRY` (the same chunk again after
//! a backoff with full jitter, up to a retry limit).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flb_host::{FlushOn, FlushOptions, FlushStack, Instance, FLB_OK, FLB_RETRY};
use indicatif::ProgressBar;

use crate::units::RetryLimit;

/// A chunk ready to flush.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub data: Vec<u8>,
    /// Records in it (group markers not counted).
    pub records: u64,
}

#[derive(Debug)]
struct Job {
    chunk: Chunk,
    /// Retries done so far.
    retries: u32,
    ready_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    fresh: VecDeque<Chunk>,
    retries: Vec<Job>,
    producing: bool,
    stopped: bool,
    in_flight: usize,
    /// Bytes of the chunks held: queued, in flight, waiting to retry.
    held_bytes: usize,
}

/// Chunks waiting for a worker: new ones (bounded, so the producer waits like an input
/// paused by back-pressure) and retries (each with the time it may go again).
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    cv: Condvar,
    capacity: usize,
    /// Fluent Bit's `Mem_Buf_Limit`: the input pauses while the chunks held reach it.
    mem_buf_limit: Option<usize>,
}

impl Queue {
    /// A queue holding at most `capacity` new chunks.
    pub fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                producing: true,
                ..Default::default()
            }),
            cv: Condvar::new(),
            capacity: capacity.max(1),
            mem_buf_limit: None,
        }
    }

    /// Pauses the producer while the chunks held (queued, in flight, waiting to retry)
    /// would pass `limit` bytes, like Fluent Bit's `Mem_Buf_Limit`.
    pub fn with_mem_buf_limit(mut self, limit: Option<usize>) -> Queue {
        self.mem_buf_limit = limit;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a chunk, waiting while the queue is full. `false` once the run is stopped.
    pub fn push(&self, chunk: Chunk) -> bool {
        let mut s = self.lock();
        let size = chunk.data.len();
        let full = |s: &State| {
            s.fresh.len() >= self.capacity
                || self
                    .mem_buf_limit
                    .is_some_and(|l| s.held_bytes > 0 && s.held_bytes + size > l)
        };
        while full(&s) && !s.stopped {
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if s.stopped {
            return false;
        }
        s.held_bytes += size;
        s.fresh.push_back(chunk);
        self.cv.notify_all();
        true
    }

    /// No more new chunks will come.
    pub fn finish_producing(&self) {
        self.lock().producing = false;
        self.cv.notify_all();
    }

    /// Stops the run: nothing more is taken; flushes in progress finish.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.cv.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Takes the next new chunk without waiting (tests).
    #[cfg(test)]
    pub fn try_take_fresh(&self) -> Option<Chunk> {
        self.lock().fresh.pop_front()
    }

    /// The next job: a retry whose time has come, else a new chunk; waits for one;
    /// `None` when everything is done or the run stopped.
    fn take(&self) -> Option<Job> {
        let mut s = self.lock();
        loop {
            if s.stopped {
                return None;
            }
            let now = Instant::now();
            let ready = s
                .retries
                .iter()
                .enumerate()
                .filter(|(_, j)| j.ready_at <= now)
                .min_by_key(|(_, j)| j.ready_at)
                .map(|(i, _)| i);
            if let Some(i) = ready {
                s.in_flight += 1;
                return Some(s.retries.swap_remove(i));
            }
            if let Some(chunk) = s.fresh.pop_front() {
                s.in_flight += 1;
                self.cv.notify_all();
                return Some(Job {
                    chunk,
                    retries: 0,
                    ready_at: now,
                });
            }
            if !s.producing && s.retries.is_empty() && s.in_flight == 0 {
                return None;
            }
            s = match s.retries.iter().map(|j| j.ready_at).min() {
                Some(at) => {
                    self.cv
                        .wait_timeout(s, at.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.cv.wait(s).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// A flush of `size` bytes is over; `retry` goes back to wait for its time.
    fn done(&self, size: usize, retry: Option<Job>) {
        let mut s = self.lock();
        s.in_flight -= 1;
        match retry {
            Some(j) => s.retries.push(j),
            None => s.held_bytes = s.held_bytes.saturating_sub(size),
        }
        self.cv.notify_all();
    }

    /// Chunks and records never flushed to the end (left when the run stopped).
    pub fn leftover(&self) -> (u64, u64) {
        let s = self.lock();
        let chunks = s.fresh.len() + s.retries.len();
        let records = s.fresh.iter().map(|c| c.records).sum::<u64>()
            + s.retries.iter().map(|j| j.chunk.records).sum::<u64>();
        (chunks as u64, records)
    }
}

/// How the workers flush.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Concurrent callers (Fluent Bit's `workers`); 0 flushes on the engine thread.
    pub workers: usize,
    pub retry_limit: RetryLimit,
    /// Base of the retry backoff (Fluent Bit's `scheduler.base`).
    pub retry_wait: Duration,
    /// Cap of the retry backoff (Fluent Bit's `scheduler.cap`).
    pub retry_wait_max: Duration,
    pub tag: String,
    /// Fluent Bit's `Mem_Buf_Limit` (bytes of chunks held before the input pauses).
    pub mem_buf_limit: Option<usize>,
}

/// What the workers saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Calls of the flush callback.
    pub flushes: u64,
    pub answered_ok: u64,
    pub answered_retry: u64,
    pub answered_error: u64,
    /// Records and chunks answered FLB_OK.
    pub acked_records: u64,
    pub acked_chunks: u64,
    /// Records in chunks answered FLB_ERROR (Fluent Bit drops them).
    pub error_records: u64,
    /// Chunks (and their records) dropped after the retry limit.
    pub given_up_chunks: u64,
    pub given_up_records: u64,
    /// Duration of every flush call.
    pub latencies: Vec<Duration>,
    /// Highest stack use of a flush (64 KiB coroutine, as Fluent Bit).
    pub max_stack_bytes: usize,
    pub stack_size: usize,
    pub stack_overflows: u64,
    /// When the last worker ran out of work.
    pub finished_at: Option<Instant>,
}

impl Outcome {
    pub fn merge(&mut self, o: Outcome) {
        self.flushes += o.flushes;
        self.answered_ok += o.answered_ok;
        self.answered_retry += o.answered_retry;
        self.answered_error += o.answered_error;
        self.acked_records += o.acked_records;
        self.acked_chunks += o.acked_chunks;
        self.error_records += o.error_records;
        self.given_up_chunks += o.given_up_chunks;
        self.given_up_records += o.given_up_records;
        self.latencies.extend(o.latencies);
        self.max_stack_bytes = self.max_stack_bytes.max(o.max_stack_bytes);
        self.stack_size = self.stack_size.max(o.stack_size);
        self.stack_overflows += o.stack_overflows;
        self.finished_at = self.finished_at.max(o.finished_at);
    }
}

/// Fluent Bit's `backoff_full_jitter`: a random wait between `base` and
/// `min(cap, base * 2^retries)`.
pub fn backoff(base: Duration, cap: Duration, retries: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32.checked_shl(retries.min(30)).unwrap_or(u32::MAX))
        .min(cap.max(base));
    let span = exp.saturating_sub(base);
    base + span.mul_f64(fastrand::f64())
}

/// One worker: takes chunks and flushes them until the queue is done.
pub fn worker(
    index: usize,
    ins: &Instance,
    queue: &Queue,
    opts: &EngineOptions,
    progress: &ProgressBar,
) -> Outcome {
    let mut out = Outcome::default();
    let flush = FlushOptions {
        on: if opts.workers == 0 {
            FlushOn::Engine
        } else {
            FlushOn::Worker(index)
        },
        stack: FlushStack::Coroutine,
        stack_size: None,
    };
    while let Some(mut job) = queue.take() {
        let size = job.chunk.data.len();
        let t0 = Instant::now();
        let report = ins.flush_with(&job.chunk.data, &opts.tag, &flush);
        out.latencies.push(t0.elapsed());
        out.flushes += 1;
        out.stack_size = out.stack_size.max(report.stack_size);
        if let Some(used) = report.stack_used_bytes {
            out.max_stack_bytes = out.max_stack_bytes.max(used);
        }
        if report.stack_overflowed {
            out.stack_overflows += 1;
        }
        let retry = match report.fluent_bit_result() {
            FLB_OK => {
                out.answered_ok += 1;
                out.acked_chunks += 1;
                out.acked_records += job.chunk.records;
                progress.inc(job.chunk.records);
                None
            }
            FLB_RETRY => {
                out.answered_retry += 1;
                let may_retry = match opts.retry_limit {
                    RetryLimit::Unlimited => true,
                    RetryLimit::Limited(n) => job.retries < n,
                };
                if may_retry {
                    job.ready_at =
                        Instant::now() + backoff(opts.retry_wait, opts.retry_wait_max, job.retries);
                    job.retries += 1;
                    Some(job)
                } else {
                    out.given_up_chunks += 1;
                    out.given_up_records += job.chunk.records;
                    progress.inc(job.chunk.records);
                    None
                }
            }
            _ => {
                out.answered_error += 1;
                out.error_records += job.chunk.records;
                progress.inc(job.chunk.records);
                None
            }
        };
        queue.done(size, retry);
    }
    out.finished_at = Some(Instant::now());
    out
}

/// The `q`-quantile (0..=1) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_range() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for r in 0..40 {
            let d = backoff(base, cap, r);
            assert!(d >= base && d <= cap, "{d:?}");
        }
        assert_eq!(backoff(base, cap, 0), base);
    }

    #[test]
    fn quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn queue_retries_come_back_and_end() {
        let q = Queue::new(2);
        assert!(q.push(Chunk {
            data: vec![1],
            records: 1
        }));
        q.finish_producing();
        let mut j = q.take().unwrap();
        j.ready_at = Instant::now() + Duration::from_millis(30);
        j.retries += 1;
        let t0 = Instant::now();
        q.done(0, Some(j));
        let again = q.take().unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(25));
        assert_eq!(again.retries, 1);
        q.done(0, None);
        assert!(q.take().is_none());
    }

    #[test]
    fn stop_releases_the_producer() {
        let q = Queue::new(1);
        assert!(q.push(Chunk {
            data: vec![],
            records: 3
        }));
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                q.push(Chunk {
                    data: vec![],
                    records: 4,
                })
            });
            std::thread::sleep(Duration::from_millis(20));
            q.stop();
            assert!(!h.join().unwrap());
        });
        assert_eq!(q.leftover(), (1, 3));
        assert!(q.take().is_none());
    }

    #[test]
    fn mem_buf_limit_pauses_the_producer_while_retries_are_held() {
        let q = Queue::new(100).with_mem_buf_limit(Some(10));
        let chunk = |n| Chunk {
            data: vec![0; n],
            records: 1,
        };
        assert!(q.push(chunk(6)));
        let mut j = q.take().unwrap();
        j.retries += 1;
        // Answered FLB_RETRY: the chunk is still held, so 6 + 6 > 10 waits.
        q.done(6, Some(j));
        std::thread::scope(|s| {
            let h = s.spawn(|| q.push(chunk(6)));
            std::thread::sleep(Duration::from_millis(50));
            assert!(!h.is_finished(), "paused while 6 of 10 bytes are held");
            let j = q.take().unwrap();
            q.done(6, None); // delivered: 0 held
            drop(j);
            assert!(h.join().unwrap());
        });
        // A chunk larger than the limit still goes when nothing else is held.
        let q = Queue::new(100).with_mem_buf_limit(Some(10));
        assert!(q.push(chunk(50)));
    }
}
