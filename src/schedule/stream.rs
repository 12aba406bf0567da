//! One delivery stream as the scheduler sees it: token buckets for its quota, the learned
//! rate (AIMD, and probing above a default quota), calls in flight, recent latency, and its
//! health (in the rotation, or out and when to probe it).

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
/// Above the configured quota (a key left at its default), until a probe first throttles:
/// the rate doubles every two seconds while demand exceeds it (a raised quota of 20 MiB/s is
/// found from the default 5 MiB/s in about 4 s; additive steps would take minutes).
pub(super) const SLOW_START_PER_SEC: f64 = std::f64::consts::SQRT_2;
/// Above the configured quota, once a probe has throttled: this fraction of the current rate
/// added per second (back from a ×0.8 decrease in about 5 s).
pub(super) const PROBE_INCREASE_PER_SEC: f64 = 0.05;
/// A rate is probed upward only while placements had to wait for it this recently.
pub(super) const DEMAND_WINDOW: Duration = Duration::from_secs(1);
/// After a probe above the configured quota throttled, the next waits this long, doubling
/// up to `PROBE_HOLD_MAX`: where the default was right, probing costs a throttled call now
/// and then, not one a second.
pub(super) const PROBE_HOLD_FIRST: Duration = Duration::from_secs(2);
pub(super) const PROBE_HOLD_MAX: Duration = Duration::from_secs(60);
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
    /// Effective records/s, bytes/s, requests/s as fractions of the configured quota
    /// (AIMD); above 1 only up to `quota_max`.
    pub(super) scale: [f64; 3],
    /// Counts the decreases: a placement carries the round it was made in, and only a
    /// throttled call placed in the current round lowers the rate again (calls reserved
    /// ahead at the old rate say nothing of the new one).
    pub(super) round: u64,
    /// When a placement last had to wait for each rate's tokens (demand exceeded it).
    pub(super) demand_at: [Option<Instant>; 3],
    /// Above the configured quota: doubling (`false`) until a probe first throttles, then
    /// additive; the next probe not before `probe_hold_until`.
    pub(super) probe_failed: bool,
    pub(super) probe_hold: Duration,
    pub(super) probe_hold_until: Option<Instant>,
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
                scale: [1.0; 3],
                round: 0,
                demand_at: [None; 3],
                probe_failed: false,
                probe_hold: Duration::ZERO,
                probe_hold_until: None,
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

    /// Effective (learned) records/s, bytes/s, requests/s now.
    pub fn effective_rate(&self, quota: Quota) -> Quota {
        let r = rates(quota, self.lock().scale);
        Quota {
            records: r[0],
            bytes: r[1],
            requests: r[2],
        }
    }

    /// The round placements are made in now (see `State::round`).
    pub fn round(&self) -> u64 {
        self.lock().round
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

pub(super) fn rates(q: Quota, scale: [f64; 3]) -> [f64; 3] {
    [
        q.records * scale[0],
        q.bytes * scale[1],
        q.requests * scale[2],
    ]
}

/// How far each rate may grow, as a fraction of the configured quota (1: a hard cap).
pub(super) fn max_scale(q: Quota, max: Quota) -> [f64; 3] {
    let m = |q: f64, max: f64| if q > 0.0 { (max / q).max(1.0) } else { 1.0 };
    [
        m(q.records, max.records),
        m(q.bytes, max.bytes),
        m(q.requests, max.requests),
    ]
}

impl State {
    pub(super) fn refill(&mut self, q: Quota, max: Quota, now: Instant) {
        let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.increase(max_scale(q, max), now);
        let r = rates(q, self.scale);
        for (t, r) in self.tokens.iter_mut().zip(r) {
            *t = (*t + r * dt).min(r * BURST_SECS);
        }
    }

    /// Raises the learned rates for the time since the last call, unless a decrease came
    /// within the last second. Below the configured quota: back towards it, additively.
    /// Above it (keys left unset): only the rates placements had to wait for lately, and
    /// not while a probe is on hold.
    fn increase(&mut self, max: [f64; 3], now: Instant) {
        let dt = now.saturating_duration_since(self.increased).as_secs_f64();
        self.increased = now;
        if now.saturating_duration_since(self.decreased).as_secs_f64() <= 1.0 {
            return;
        }
        let held = self.probe_hold_until.is_some_and(|u| now < u);
        for ((s, demand), max) in self.scale.iter_mut().zip(self.demand_at).zip(max) {
            if *s < 1.0 {
                *s = (*s + INCREASE_PER_SEC * dt).min(1.0);
                continue;
            }
            let wanted = demand.is_some_and(|t| now.saturating_duration_since(t) <= DEMAND_WINDOW);
            if held || !wanted || *s >= max {
                continue;
            }
            *s = if self.probe_failed {
                *s * (1.0 + PROBE_INCREASE_PER_SEC * dt)
            } else {
                *s * SLOW_START_PER_SEC.powf(dt)
            }
            .min(max);
        }
    }

    /// Lowers the learned rates after throttling (`DECREASE`), starting a new round. A rate
    /// that was probing above the configured quota comes back no lower than the quota (the
    /// probe failed, the default may still be right; a further throttle takes it lower),
    /// and the next probe waits.
    pub(super) fn decrease(&mut self, now: Instant) {
        let mut probing = false;
        for s in self.scale.iter_mut() {
            let floor = if *s > 1.0 {
                probing = true;
                1.0
            } else {
                MIN_SCALE
            };
            *s = (*s * DECREASE).max(floor);
        }
        if probing {
            self.probe_failed = true;
            // Doubled once per failed probe, not per decrease: the several rounds of one
            // overshoot are one failure.
            if self.probe_hold_until.is_none_or(|u| now >= u) {
                self.probe_hold = (self.probe_hold * 2).clamp(PROBE_HOLD_FIRST, PROBE_HOLD_MAX);
            }
            self.probe_hold_until = Some(now + self.probe_hold);
        }
        self.round += 1;
        self.decreased = now;
        self.increased = now;
    }

    /// Notes which rates a placement of `need` had to wait for (demand exceeded them).
    pub(super) fn note_demand(&mut self, need: [f64; 3], now: Instant) {
        for ((at, n), t) in self.demand_at.iter_mut().zip(need).zip(self.tokens) {
            if n > t {
                *at = Some(now);
            }
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

    /// Gives back the byte tokens of records the stream refused for quota: it did not take
    /// them, and their resend takes tokens again. Charged twice, every throttle would leave
    /// a gap of its size in what the stream is sent (with one stream, near-empty seconds).
    /// Only debt is cancelled: the stream is at its quota, nothing is banked.
    pub(super) fn refund(&mut self, bytes: f64) {
        if self.tokens[1] < 0.0 {
            self.tokens[1] = (self.tokens[1] + bytes).min(0.0);
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
