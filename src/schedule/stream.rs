//! One delivery stream as the scheduler sees it: token buckets for its quota, the learned
//! rate (AIMD), calls in flight, recent latency, and its health (in the rotation, or out and
//! when to probe it).

use super::{Packing, Quota, RouterOptions};
use crate::telemetry::metrics::StreamStats;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Multiplicative decrease on throttling.
pub(super) const DECREASE: f64 = 0.8;
/// Additive increase: fraction of the configured quota regained per second without throttling.
pub(super) const INCREASE_PER_SEC: f64 = 0.02;
/// The effective rate never drops below this fraction of the quota.
pub(super) const MIN_SCALE: f64 = 0.01;
/// Seconds of quota a stream may take at once after idling (the bucket's depth).
pub(super) const BURST_SECS: f64 = 0.5;
/// A call carries at most this many seconds of its stream's learned byte rate.
pub(super) const CALL_SECS: f64 = 0.5;
/// Latency counts against a stream in steps of this many seconds.
pub(super) const SLOW_STEP: f64 = 0.25;
/// A stream's remembered latency halves every this many seconds without calls.
pub(super) const LATENCY_HALF_LIFE: f64 = 10.0;
/// Calls in flight per stream at first; adapts up to `max_in_flight`.
pub(super) const INITIAL_IN_FLIGHT: usize = 2;
/// Consecutive failed calls (network, 5xx) after which a stream leaves the rotation.
pub(super) const MAX_CONSECUTIVE_ERRORS: u32 = 5;
/// A stream that left for a transient reason (network, 5xx) is probed after this, then
/// after twice as long, up to `TRANSIENT_PROBE_MAX`: an outage costs little more than its
/// length, and a probe (one call) every few seconds costs nothing.
pub(super) const TRANSIENT_PROBE_FIRST: Duration = Duration::from_millis(500);
pub(super) const TRANSIENT_PROBE_MAX: Duration = Duration::from_secs(1);
/// Pauses of a stream throttled again and again with nothing accepted.
pub(super) const THROTTLE_PAUSE_FIRST: Duration = Duration::from_millis(100);
pub(super) const THROTTLE_PAUSE_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Health {
    Up,
    Down {
        reason: String,
        next_probe: Instant,
        /// A probe is on its way until this instant (a call that never reports, cancelled
        /// or lost, frees the slot then).
        probe_until: Option<Instant>,
        /// Left for a transient reason: probed soon, `delay` doubling.
        transient: bool,
        delay: Duration,
    },
}

#[derive(Debug)]
pub(super) struct State {
    /// Effective rate as a fraction of the quota (AIMD).
    pub(super) scale: f64,
    /// Tokens for records, bytes, requests; negative when reserved ahead.
    pub(super) tokens: [f64; 3],
    pub(super) refilled: Instant,
    /// When the rate last went down or up.
    pub(super) decreased: Instant,
    pub(super) increased: Instant,
    /// Records were accepted since the last decrease. Throttling with nothing accepted in
    /// between (an outage answered "slow down") lowers the rate once, not once per call:
    /// the rate is learned from a stream that takes records, and recovers at once.
    pub(super) accepted_since_decrease: bool,
    /// Throttled again with nothing accepted: the stream takes no calls until then (0.1 s,
    /// doubling up to 1 s, cleared when records are accepted), so an outage answered
    /// "slow down" is not hammered, and delivery resumes about a second after its end.
    pub(super) paused_until: Option<Instant>,
    pub(super) pause: Duration,
    pub(super) health: Health,
    pub(super) consecutive_errors: u32,
    /// Recent call latency, seconds (moving average), and when it was last measured.
    pub(super) latency: f64,
    pub(super) latency_at: Instant,
}

/// One delivery stream.
#[derive(Debug)]
pub struct Stream {
    pub name: String,
    /// Configured by name (kept) rather than discovered by prefix (may leave).
    pub configured: bool,
    /// Bounds the PutRecordBatch calls in flight to this stream; holds `limit` permits.
    pub permits: Arc<Semaphore>,
    /// Calls allowed in flight now: grows by one while calls queue for a slot and nothing
    /// goes wrong, halves on throttling or errors (1 ..= max_in_flight).
    pub(super) limit: AtomicUsize,
    /// Permits to retire as calls finish, after the limit went down.
    pub(super) debt: AtomicUsize,
    /// Shared with the router's registry, so a stream that leaves and joins again keeps
    /// counting from where it was (metrics are monotonic for the life of the instance).
    pub stats: Arc<StreamStats>,
    /// Hash of the name, for rendezvous hashing.
    pub(super) name_hash: u64,
    /// Log records one Firehose record may carry: 0 = one (no aggregation), `usize::MAX`
    /// = as many as fit `aggregation_max_bytes`, else at most that many.
    pub(super) aggregate: AtomicUsize,
    pub(super) state: Mutex<State>,
}

impl Stream {
    pub(super) fn new(
        name: &str,
        configured: bool,
        opts: &RouterOptions,
        stats: Arc<StreamStats>,
        now: Instant,
    ) -> Stream {
        let q = opts.quota;
        Stream {
            name: name.to_string(),
            configured,
            permits: Arc::new(Semaphore::new(
                INITIAL_IN_FLIGHT.min(opts.max_in_flight).max(1),
            )),
            limit: AtomicUsize::new(INITIAL_IN_FLIGHT.min(opts.max_in_flight).max(1)),
            debt: AtomicUsize::new(0),
            stats,
            name_hash: xxhash_rust::xxh3::xxh3_64(name.as_bytes()),
            aggregate: AtomicUsize::new(if opts.aggregate_default {
                usize::MAX
            } else {
                0
            }),
            state: Mutex::new(State {
                scale: 1.0,
                tokens: [
                    q.records * BURST_SECS,
                    q.bytes * BURST_SECS,
                    q.requests * BURST_SECS,
                ],
                refilled: now,
                decreased: now,
                increased: now,
                accepted_since_decrease: true,
                paused_until: None,
                pause: Duration::ZERO,
                health: Health::Up,
                consecutive_errors: 0,
                latency: 0.0,
                latency_at: now,
            }),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Effective records/s, bytes/s, requests/s now.
    pub fn effective_rate(&self, quota: Quota) -> Quota {
        let s = self.lock().scale;
        Quota {
            records: quota.records * s,
            bytes: quota.bytes * s,
            requests: quota.requests * s,
        }
    }

    pub fn is_up(&self) -> bool {
        self.lock().health == Health::Up
    }

    /// Calls allowed in flight now.
    pub fn in_flight_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight_limit()
            .saturating_sub(self.permits.available_permits())
    }

    /// After a call: true when its permit must be retired (the limit went down).
    pub fn retire_permit(&self) -> bool {
        self.debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
            .is_ok()
    }

    pub(super) fn grow(&self, max: usize) {
        // Only when every slot is taken: calls are waiting for one.
        if self.permits.available_permits() == 0
            && self.debt.load(Ordering::Acquire) == 0
            && self
                .limit
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                    (l < max).then_some(l + 1)
                })
                .is_ok()
        {
            self.permits.add_permits(1);
        }
    }

    pub(super) fn shrink(&self) {
        if let Ok(old) = self
            .limit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                (l > 1).then_some((l / 2).max(1))
            })
        {
            self.debt
                .fetch_add(old - (old / 2).max(1), Ordering::AcqRel);
        }
    }

    pub fn aggregates(&self) -> bool {
        self.aggregate.load(Ordering::Relaxed) > 0
    }

    /// The most log records in one aggregate, when the reader limits it.
    pub fn aggregate_members(&self) -> Option<usize> {
        Some(self.aggregate.load(Ordering::Relaxed)).filter(|&m| m > 0 && m < usize::MAX)
    }

    pub fn set_packing(&self, packing: Packing) {
        let v = match packing {
            Packing::Single => 0,
            Packing::Aggregate { max_members } => max_members.unwrap_or(usize::MAX).max(1),
        };
        self.aggregate.store(v, Ordering::Relaxed)
    }
}

pub(super) fn rates(q: Quota, scale: f64) -> [f64; 3] {
    [q.records * scale, q.bytes * scale, q.requests * scale]
}

impl State {
    pub(super) fn refill(&mut self, q: Quota, now: Instant) {
        let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        // Additive increase while nothing throttles, at most once per tick of time.
        let since_decrease = now.saturating_duration_since(self.decreased).as_secs_f64();
        if since_decrease > 1.0 && self.scale < 1.0 {
            let dt_inc = now.saturating_duration_since(self.increased).as_secs_f64();
            self.scale = (self.scale + INCREASE_PER_SEC * dt_inc).min(1.0);
        }
        self.increased = now;
        let r = rates(q, self.scale);
        for (t, r) in self.tokens.iter_mut().zip(r) {
            *t = (*t + r * dt).min(r * BURST_SECS);
        }
    }

    /// How long until `need` can be taken.
    pub(super) fn wait_for(&self, q: Quota, need: [f64; 3]) -> Duration {
        let r = rates(q, self.scale);
        let mut wait: f64 = 0.0;
        for ((n, t), r) in need.iter().zip(&self.tokens).zip(r) {
            let deficit = n - t;
            if deficit > 0.0 && r > 0.0 {
                wait = wait.max(deficit / r);
            }
        }
        Duration::from_secs_f64(wait.min(3600.0))
    }

    pub(super) fn take(&mut self, need: [f64; 3]) {
        for (t, n) in self.tokens.iter_mut().zip(need) {
            *t -= n;
        }
    }

    /// The recent latency, halved for every `LATENCY_HALF_LIFE` without a call (so a stream
    /// that was slow is tried again).
    pub(super) fn recent_latency(&self, now: Instant) -> f64 {
        let idle = now.saturating_duration_since(self.latency_at).as_secs_f64();
        self.latency * 0.5f64.powf(idle / LATENCY_HALF_LIFE)
    }

    pub(super) fn note_latency(&mut self, took: Duration, now: Instant) {
        self.latency = (self.recent_latency(now) + took.as_secs_f64()) / 2.0;
        self.latency_at = now;
    }

    /// What a slow stream adds to the time a batch placed there takes: its latency in whole
    /// `SLOW_STEP`s, so that differences of milliseconds between healthy streams never
    /// decide where a batch goes.
    pub(super) fn slowness(&self, now: Instant) -> Duration {
        let steps = (self.recent_latency(now) / SLOW_STEP).floor();
        Duration::from_secs_f64(steps * SLOW_STEP)
    }

    /// Can a batch go here now? Up, or down but due for a probe.
    pub(super) fn eligible(&self, now: Instant) -> bool {
        if self.paused_until.is_some_and(|u| now < u) {
            return false;
        }
        match &self.health {
            Health::Up => true,
            Health::Down {
                next_probe,
                probe_until,
                ..
            } => now >= *next_probe && probe_until.is_none_or(|u| now >= u),
        }
    }

    /// When a batch could next go here (now when up).
    pub(super) fn next_chance(&self, now: Instant) -> Instant {
        let health = match &self.health {
            Health::Up => now,
            Health::Down {
                next_probe,
                probe_until,
                ..
            } => (*next_probe).max(probe_until.unwrap_or(now)),
        };
        health.max(self.paused_until.unwrap_or(now))
    }
}
