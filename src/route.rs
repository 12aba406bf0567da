//! Streams as capacity: which stream takes a batch, and when.
//!
//! Each stream has token buckets for records, bytes and requests per second (its quota). In
//! `adaptive` mode a batch goes to the stream that can take it soonest, and waits until
//! then, so no quota is ever exceeded by this node. Throttling lowers a stream's effective
//! rate (multiplicative decrease); time without throttling raises it back towards the
//! configured quota (additive increase), so a lower real quota, or other nodes sharing the
//! stream, are learned rather than configured. Streams that answer "not found", "access
//! denied" or keep failing leave the rotation and are probed now and then.

use crate::log::Logger;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How records are spread over streams (`balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Capacity-aware: the stream that can take the batch soonest, within its quota.
    Adaptive,
    /// Batches in turn, no capacity model (for comparison).
    RoundRobin,
    /// A random stream per record, the classic workaround (for comparison).
    Random,
    /// Records with the same `partition_key` value stay on one stream (rendezvous hashing).
    Key,
}

impl Balance {
    pub fn parse(v: &str) -> Option<Balance> {
        Some(match v.to_ascii_lowercase().as_str() {
            "adaptive" => Balance::Adaptive,
            "round_robin" | "roundrobin" => Balance::RoundRobin,
            "random" => Balance::Random,
            "key" => Balance::Key,
            _ => return None,
        })
    }
}

/// A stream's quota per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub records: f64,
    pub bytes: f64,
    pub requests: f64,
}

impl Default for Quota {
    /// The big regions' per-stream quota.
    fn default() -> Self {
        Quota {
            records: 500_000.0,
            bytes: 5.0 * 1024.0 * 1024.0,
            requests: 2_000.0,
        }
    }
}

/// Tuning of the scheduler; defaults suit Firehose.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    pub balance: Balance,
    pub quota: Quota,
    pub max_in_flight: usize,
    /// How often a stream out of the rotation for a lasting reason (not found, access
    /// denied) is tried again.
    pub probe_interval: Duration,
    /// How long one call may take (`request_timeout`): a probe slot is held at most this
    /// long past its send time, even if its call never reports.
    pub call_timeout: Duration,
    /// Size of an aggregate, for streams that aggregate (see `Stream::aggregates`).
    pub aggregate_max: usize,
    /// Whether new streams aggregate before anything is known of them.
    pub aggregate_default: bool,
}

/// Multiplicative decrease on throttling.
const DECREASE: f64 = 0.8;
/// Additive increase: fraction of the configured quota regained per second without throttling.
const INCREASE_PER_SEC: f64 = 0.02;
/// The effective rate never drops below this fraction of the quota.
const MIN_SCALE: f64 = 0.01;
/// Seconds of quota a stream may take at once after idling (the bucket's depth).
const BURST_SECS: f64 = 0.5;
/// A call carries at most this many seconds of its stream's learned byte rate.
const CALL_SECS: f64 = 0.5;
/// Latency counts against a stream in steps of this many seconds.
const SLOW_STEP: f64 = 0.25;
/// A stream's remembered latency halves every this many seconds without calls.
const LATENCY_HALF_LIFE: f64 = 10.0;
/// Calls in flight per stream at first; adapts up to `max_in_flight`.
const INITIAL_IN_FLIGHT: usize = 2;
/// Consecutive failed calls (network, 5xx) after which a stream leaves the rotation.
const MAX_CONSECUTIVE_ERRORS: u32 = 5;
/// A stream that left for a transient reason (network, 5xx) is probed after this, then
/// after twice as long, up to `TRANSIENT_PROBE_MAX`: an outage costs little more than its
/// length, and a probe (one call) every few seconds costs nothing.
const TRANSIENT_PROBE_FIRST: Duration = Duration::from_millis(500);
const TRANSIENT_PROBE_MAX: Duration = Duration::from_secs(2);
/// Pauses of a stream throttled again and again with nothing accepted.
const THROTTLE_PAUSE_FIRST: Duration = Duration::from_millis(100);
const THROTTLE_PAUSE_MAX: Duration = Duration::from_secs(2);

/// Counters of one stream (monotonic, for logs and metrics).
#[derive(Debug, Default)]
pub struct StreamStats {
    pub requests: AtomicU64,
    pub accepted_records: AtomicU64,
    pub accepted_bytes: AtomicU64,
    pub throttled_records: AtomicU64,
    pub throttled_requests: AtomicU64,
    /// Firehose records accepted (aggregates count once).
    pub accepted_frames: AtomicU64,
    /// What Firehose bills for the accepted records: each rounded up to 5 KB.
    pub billed_bytes: AtomicU64,
    pub failed_records: AtomicU64,
    pub failed_calls: AtomicU64,
}

#[derive(Debug, Clone, PartialEq)]
enum Health {
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
struct State {
    /// Effective rate as a fraction of the quota (AIMD).
    scale: f64,
    /// Tokens for records, bytes, requests; negative when reserved ahead.
    tokens: [f64; 3],
    refilled: Instant,
    /// When the rate last went down or up.
    decreased: Instant,
    increased: Instant,
    /// Records were accepted since the last decrease. Throttling with nothing accepted in
    /// between (an outage answered "slow down") lowers the rate once, not once per call:
    /// the rate is learned from a stream that takes records, and recovers at once.
    accepted_since_decrease: bool,
    /// Throttled again with nothing accepted: the stream takes no calls until then (0.1 s,
    /// doubling up to 2 s, cleared when records are accepted), so an outage answered
    /// "slow down" is not hammered, and delivery resumes within 2 s of its end.
    paused_until: Option<Instant>,
    pause: Duration,
    health: Health,
    consecutive_errors: u32,
    /// Recent call latency, seconds (moving average), and when it was last measured.
    latency: f64,
    latency_at: Instant,
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
    limit: AtomicUsize,
    /// Permits to retire as calls finish, after the limit went down.
    debt: AtomicUsize,
    /// Shared with the router's registry, so a stream that leaves and joins again keeps
    /// counting from where it was (metrics are monotonic for the life of the instance).
    pub stats: Arc<StreamStats>,
    /// Hash of the name, for rendezvous hashing.
    name_hash: u64,
    /// Many log records go into one Firehose record (where the reader cannot tell).
    aggregate: AtomicBool,
    state: Mutex<State>,
}

impl Stream {
    fn new(
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
            aggregate: AtomicBool::new(opts.aggregate_default),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
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

    fn grow(&self, max: usize) {
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

    fn shrink(&self) {
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
        self.aggregate.load(Ordering::Relaxed)
    }

    pub fn set_aggregates(&self, on: bool) {
        self.aggregate.store(on, Ordering::Relaxed)
    }
}

fn rates(q: Quota, scale: f64) -> [f64; 3] {
    [q.records * scale, q.bytes * scale, q.requests * scale]
}

impl State {
    fn refill(&mut self, q: Quota, now: Instant) {
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
    fn wait_for(&self, q: Quota, need: [f64; 3]) -> Duration {
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

    fn take(&mut self, need: [f64; 3]) {
        for (t, n) in self.tokens.iter_mut().zip(need) {
            *t -= n;
        }
    }

    /// The recent latency, halved for every `LATENCY_HALF_LIFE` without a call (so a stream
    /// that was slow is tried again).
    fn recent_latency(&self, now: Instant) -> f64 {
        let idle = now.saturating_duration_since(self.latency_at).as_secs_f64();
        self.latency * 0.5f64.powf(idle / LATENCY_HALF_LIFE)
    }

    fn note_latency(&mut self, took: Duration, now: Instant) {
        self.latency = (self.recent_latency(now) + took.as_secs_f64()) / 2.0;
        self.latency_at = now;
    }

    /// What a slow stream adds to the time a batch placed there takes: its latency in whole
    /// `SLOW_STEP`s, so that differences of milliseconds between healthy streams never
    /// decide where a batch goes.
    fn slowness(&self, now: Instant) -> Duration {
        let steps = (self.recent_latency(now) / SLOW_STEP).floor();
        Duration::from_secs_f64(steps * SLOW_STEP)
    }

    /// Can a batch go here now? Up, or down but due for a probe.
    fn eligible(&self, now: Instant) -> bool {
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
    fn next_chance(&self, now: Instant) -> Instant {
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

/// A batch placed on a stream: send after `wait`.
#[derive(Debug, Clone)]
pub struct Placement {
    pub stream: Arc<Stream>,
    pub wait: Duration,
}

/// What a call came to, for the router's model.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The call went through; `throttled` of its log records were refused for quota.
    Done {
        accepted: u64,
        bytes: u64,
        throttled: u64,
        failed: u64,
        /// Firehose records accepted and what they are billed.
        frames: u64,
        billed: u64,
    },
    /// The whole call was throttled.
    Throttled,
    /// The stream cannot take records as it stands (not found, access denied, invalid).
    StreamError(String),
    /// The request was refused as built (nothing said about the stream).
    Refused,
    /// Network, timeout, 5xx.
    Transient(String),
}

pub struct Router {
    opts: RouterOptions,
    streams: RwLock<Arc<Vec<Arc<Stream>>>>,
    /// Every stream's counters since the instance started, by name, in order of first use.
    stats: Mutex<Vec<(String, Arc<StreamStats>)>>,
    cursor: AtomicUsize,
    log: Logger,
}

impl Router {
    pub fn new(configured: &[String], opts: RouterOptions, log: Logger) -> Router {
        let now = Instant::now();
        let r = Router {
            opts,
            streams: RwLock::new(Arc::new(Vec::new())),
            stats: Mutex::new(Vec::new()),
            cursor: AtomicUsize::new(0),
            log,
        };
        let streams = configured
            .iter()
            .map(|n| Arc::new(r.new_stream(n, true, now)))
            .collect();
        *r.streams.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(streams);
        r
    }

    /// A stream with the counters it had before, if it was in use once already.
    fn new_stream(&self, name: &str, configured: bool, now: Instant) -> Stream {
        let mut all = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let stats = match all.iter().find(|(n, _)| n == name) {
            Some((_, s)) => s.clone(),
            None => {
                let s = Arc::new(StreamStats::default());
                all.push((name.to_string(), s.clone()));
                s
            }
        };
        Stream::new(name, configured, &self.opts, stats, now)
    }

    /// The counters of every stream used since the start, those that left included.
    pub fn all_stats(&self) -> Vec<(String, Arc<StreamStats>)> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn options(&self) -> &RouterOptions {
        &self.opts
    }

    /// The streams as they are now.
    pub fn streams(&self) -> Arc<Vec<Arc<Stream>>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the discovered streams: new names join, discovered ones not listed leave;
    /// configured streams always stay. Returns (joined, left).
    pub fn set_discovered(&self, names: &[String]) -> (Vec<String>, Vec<String>) {
        let now = Instant::now();
        let mut guard = self.streams.write().unwrap_or_else(|p| p.into_inner());
        let old = guard.clone();
        let mut next: Vec<Arc<Stream>> = old
            .iter()
            .filter(|s| s.configured || names.contains(&s.name))
            .cloned()
            .collect();
        let left: Vec<String> = old
            .iter()
            .filter(|s| !s.configured && !names.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        let mut joined = Vec::new();
        for n in names {
            if !next.iter().any(|s| &s.name == n) {
                next.push(Arc::new(self.new_stream(n, false, now)));
                joined.push(n.clone());
            }
        }
        *guard = Arc::new(next);
        (joined, left)
    }

    /// Tokens a batch takes on stream `s`: aggregates count as Firehose records.
    fn need(&self, s: &Stream, records: usize, bytes: usize) -> [f64; 3] {
        let frames = if s.aggregates() {
            bytes.div_ceil(self.opts.aggregate_max.max(1)).max(1)
        } else {
            records
        };
        [frames as f64, bytes as f64, 1.0]
    }

    /// Whether every stream in the rotation aggregates (batches may then hold more than
    /// 500 log records).
    pub fn all_aggregate(&self) -> bool {
        let streams = self.streams();
        !streams.is_empty() && streams.iter().all(|s| s.aggregates())
    }

    /// Sets whether the stream `name` aggregates.
    pub fn set_aggregates(&self, name: &str, on: bool) {
        if let Some(s) = self.streams().iter().find(|s| s.name == name) {
            s.set_aggregates(on);
        }
    }

    /// `place_capped` for a whole batch (tests).
    #[cfg(test)]
    pub fn place(&self, records: usize, bytes: usize, latest: Duration) -> Option<Placement> {
        self.place_capped(&|_| (records, bytes), latest)
            .map(|(p, _)| p)
    }

    /// Adaptive choice: the eligible stream that can take the batch soonest; its tokens are
    /// reserved. `None` when no stream is eligible, or none could send before `latest`.
    /// Only as much of a batch as one call to the chosen stream should carry is placed: at
    /// most `CALL_SECS` of that stream's learned byte rate, so that a call fits a stream
    /// whose real quota is far below the configured one (a whole 2 MB chunk in one call
    /// never would). `prefix(max_bytes)` gives the records and bytes of the batch's longest
    /// prefix within `max_bytes` (at least one record). Returns how many records it placed.
    pub fn place_capped(
        &self,
        prefix: &dyn Fn(usize) -> (usize, usize),
        latest: Duration,
    ) -> Option<(Placement, usize)> {
        let streams = self.streams();
        let n = streams.len();
        // Another flush may take the chosen stream's probe slot between the choice and the
        // reservation: choose again (each round, one stream fewer is eligible).
        for _ in 0..=n {
            let now = Instant::now();
            let start = self.cursor.fetch_add(1, Ordering::Relaxed);
            // done by (token wait + slowness), in-flight, index
            let mut best: Option<(Duration, usize, usize)> = None;
            for k in 0..n {
                let i = (start + k) % n;
                let s = &streams[i];
                let mut st = s.lock();
                if !st.eligible(now) {
                    continue;
                }
                st.refill(self.opts.quota, now);
                let (records, bytes) = prefix(self.call_bytes(&st));
                let wait = st.wait_for(self.opts.quota, self.need(s, records, bytes));
                // A slow stream is used when it still finishes first (the others' capacity
                // is taken), so one slow stream does not hold up every flush.
                let done = wait + st.slowness(now);
                let busy = s.in_flight();
                let better = match best {
                    None => true,
                    Some((d, b, _)) => done < d || (done == d && busy < b),
                };
                if better {
                    best = Some((done, busy, i));
                }
            }
            let (_, _, i) = best?;
            let s = &streams[i];
            // The size and the wait again, under the lock that takes the tokens, so two
            // flushes never spend the same tokens.
            let mut st = s.lock();
            if !st.eligible(now) {
                continue;
            }
            st.refill(self.opts.quota, now);
            let (records, bytes) = prefix(self.call_bytes(&st));
            let need = self.need(s, records, bytes);
            let wait = st.wait_for(self.opts.quota, need);
            if wait > latest {
                return None;
            }
            self.take(&mut st, need, wait, now);
            drop(st);
            return Some((
                Placement {
                    stream: s.clone(),
                    wait,
                },
                records,
            ));
        }
        None
    }

    /// The most bytes one call to a stream should carry: `CALL_SECS` of its learned rate,
    /// in whole 5 KB billing units, at least 64 KiB.
    fn call_bytes(&self, st: &State) -> usize {
        let unit = crate::batch::BILLING_UNIT as f64;
        let bytes = (self.opts.quota.bytes * st.scale * CALL_SECS / unit).floor() * unit;
        (bytes as usize).max(64 * 1024)
    }

    /// Takes a placement's tokens; a stream out of the rotation holds its probe slot until
    /// the call can have answered.
    fn take(&self, st: &mut State, need: [f64; 3], wait: Duration, now: Instant) {
        st.take(need);
        if let Health::Down { probe_until, .. } = &mut st.health {
            *probe_until = Some(now + wait + self.opts.call_timeout + Duration::from_secs(1));
        }
    }

    /// Places a batch on a given stream (key mode), waiting for its capacity.
    pub fn place_on(
        &self,
        s: &Arc<Stream>,
        records: usize,
        bytes: usize,
        latest: Duration,
    ) -> Option<Placement> {
        let now = Instant::now();
        let need = self.need(s, records, bytes);
        let mut st = s.lock();
        if !st.eligible(now) {
            return None;
        }
        st.refill(self.opts.quota, now);
        let wait = st.wait_for(self.opts.quota, need);
        if wait > latest {
            return None;
        }
        self.take(&mut st, need, wait, now);
        Some(Placement {
            stream: s.clone(),
            wait,
        })
    }

    /// A placed call that was never sent (cancelled at the flush deadline): a probe slot it
    /// held is free again.
    pub fn cancelled(&self, s: &Stream) {
        if let Health::Down { probe_until, .. } = &mut s.lock().health {
            *probe_until = None;
        }
    }

    /// When a batch could next be placed on some stream: now if one is in the rotation,
    /// else the soonest probe; `None` without any stream.
    pub fn next_chance(&self) -> Option<Instant> {
        let now = Instant::now();
        self.streams()
            .iter()
            .map(|s| s.lock().next_chance(now))
            .min()
    }

    /// Eligible streams now, in a rotating order.
    pub fn eligible(&self) -> Vec<Arc<Stream>> {
        let now = Instant::now();
        let streams = self.streams();
        let n = streams.len();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| streams[(start + k) % n].clone())
            .filter(|s| s.lock().eligible(now))
            .collect()
    }

    /// Rendezvous hashing: the eligible stream with the highest score for this key, so a
    /// new stream takes over only about 1/N of the keys.
    pub fn stream_for_key(&self, key_hash: u64, eligible: &[Arc<Stream>]) -> Option<Arc<Stream>> {
        eligible
            .iter()
            .max_by_key(|s| mix(key_hash ^ s.name_hash))
            .cloned()
    }

    /// Takes the outcome of a call sent at `sent` into the model.
    pub fn report(&self, s: &Stream, sent: Instant, outcome: &Outcome) {
        let now = Instant::now();
        s.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut st = s.lock();
        st.note_latency(now.saturating_duration_since(sent), now);
        let was_down = matches!(st.health, Health::Down { .. });
        match outcome {
            Outcome::Done {
                accepted,
                bytes,
                throttled,
                failed,
                frames,
                billed,
            } => {
                s.stats
                    .accepted_frames
                    .fetch_add(*frames, Ordering::Relaxed);
                s.stats.billed_bytes.fetch_add(*billed, Ordering::Relaxed);
                s.stats
                    .accepted_records
                    .fetch_add(*accepted, Ordering::Relaxed);
                s.stats.accepted_bytes.fetch_add(*bytes, Ordering::Relaxed);
                s.stats
                    .throttled_records
                    .fetch_add(*throttled, Ordering::Relaxed);
                s.stats.failed_records.fetch_add(*failed, Ordering::Relaxed);
                st.consecutive_errors = 0;
                st.health = Health::Up;
                if *accepted > 0 {
                    st.accepted_since_decrease = true;
                    st.paused_until = None;
                    st.pause = Duration::ZERO;
                }
                if *throttled > 0 {
                    s.stats.throttled_requests.fetch_add(1, Ordering::Relaxed);
                    Self::throttled(&mut st, sent, now);
                    s.shrink();
                } else {
                    s.grow(self.opts.max_in_flight);
                }
            }
            Outcome::Throttled => {
                s.stats.throttled_requests.fetch_add(1, Ordering::Relaxed);
                s.stats.failed_calls.fetch_add(1, Ordering::Relaxed);
                st.consecutive_errors = 0;
                st.health = Health::Up;
                Self::throttled(&mut st, sent, now);
                s.shrink();
            }
            Outcome::Refused => {
                s.stats.failed_calls.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::StreamError(reason) => {
                s.stats.failed_calls.fetch_add(1, Ordering::Relaxed);
                self.down(s, &mut st, reason, false, now);
            }
            Outcome::Transient(reason) => {
                s.stats.failed_calls.fetch_add(1, Ordering::Relaxed);
                s.shrink();
                st.consecutive_errors += 1;
                if st.consecutive_errors >= MAX_CONSECUTIVE_ERRORS || was_down {
                    self.down(s, &mut st, reason, true, now);
                }
            }
        }
        if was_down && st.health == Health::Up {
            self.log.info(format_args!(
                "delivery stream {} answers again: back in the rotation",
                s.name
            ));
        }
    }

    fn throttled(st: &mut State, sent: Instant, now: Instant) {
        // Calls sent before the last decrease reflect the old rate: one decrease per round.
        if sent < st.decreased {
            return;
        }
        if !st.accepted_since_decrease {
            st.pause = (st.pause * 2).clamp(THROTTLE_PAUSE_FIRST, THROTTLE_PAUSE_MAX);
            st.paused_until = Some(now + st.pause);
            return;
        }
        st.accepted_since_decrease = false;
        st.scale = (st.scale * DECREASE).max(MIN_SCALE);
        st.decreased = now;
        st.increased = now;
        // The stream is over quota now: what was banked is gone.
        for t in st.tokens.iter_mut() {
            *t = t.min(0.0);
        }
    }

    /// Takes a stream out of the rotation. A transient reason is probed soon (the delay
    /// doubling while probes fail); a lasting one every `probe_interval`.
    fn down(&self, s: &Stream, st: &mut State, reason: &str, transient: bool, now: Instant) {
        let first = matches!(st.health, Health::Up);
        let delay = match (&st.health, transient) {
            (_, false) => self.opts.probe_interval,
            (
                Health::Down {
                    transient: true,
                    delay,
                    ..
                },
                true,
            ) => (*delay * 2).min(TRANSIENT_PROBE_MAX),
            _ => TRANSIENT_PROBE_FIRST,
        }
        .min(self.opts.probe_interval);
        st.health = Health::Down {
            reason: reason.to_string(),
            next_probe: now + delay,
            probe_until: None,
            transient,
            delay,
        };
        if first {
            let when = if transient {
                format!("within {TRANSIENT_PROBE_MAX:?}")
            } else {
                format!("every {:?}", self.opts.probe_interval)
            };
            self.log.warn(format_args!(
                "delivery stream {} leaves the rotation ({reason}); it is tried again {when}",
                s.name
            ));
        }
    }
}

/// A 64-bit finaliser (splitmix64), for rendezvous scores.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Level, StderrSink};

    fn router(names: &[&str], quota: Quota, balance: Balance) -> Router {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        Router::new(
            &names,
            RouterOptions {
                balance,
                quota,
                max_in_flight: 4,
                probe_interval: Duration::from_millis(50),
                call_timeout: Duration::from_millis(200),
                aggregate_max: 1_000_000,
                aggregate_default: false,
            },
            Logger::new(Arc::new(StderrSink(Level::Error)), "test"),
        )
    }

    fn q(bytes: f64) -> Quota {
        Quota {
            records: 1e9,
            bytes,
            requests: 1e9,
        }
    }

    #[test]
    fn placement_spreads_by_capacity_and_never_exceeds_it() {
        let r = router(&["a", "b"], q(1000.0), Balance::Adaptive);
        // 500 bytes of burst each: the first two batches go at once, to different streams
        let p1 = r.place(1, 500, Duration::from_secs(10)).unwrap();
        let p2 = r.place(1, 500, Duration::from_secs(10)).unwrap();
        assert_ne!(p1.stream.name, p2.stream.name);
        assert!(p1.wait.is_zero() && p2.wait.is_zero());
        // the third waits about half a second on whichever stream
        let p3 = r.place(1, 500, Duration::from_secs(10)).unwrap();
        assert!(p3.wait >= Duration::from_millis(400), "{:?}", p3.wait);
        // and a batch that cannot go before `latest` is not placed
        assert!(r.place(1, 5000, Duration::from_millis(100)).is_none());
    }

    #[test]
    fn a_call_carries_at_most_half_a_second_of_its_streams_learned_rate() {
        // 4 MiB/s configured: a call may carry 2 MiB; 100 records of 40 KB each.
        let r = router(&["a"], q(4.0 * 1024.0 * 1024.0), Balance::Adaptive);
        let prefix = |max: usize| {
            let k = (max / 40_000).clamp(1, 100);
            (k, k * 40_000)
        };
        let (_, k) = r.place_capped(&prefix, Duration::from_secs(60)).unwrap();
        assert_eq!(k, 2 * 1024 * 1024 / 40_000);
        // Throttled: 80 % of the rate, so a call carries 80 % as much (in 5 KB units).
        let s = r.streams()[0].clone();
        r.report(&s, Instant::now(), &Outcome::Throttled);
        let (_, k) = r.place_capped(&prefix, Duration::from_secs(60)).unwrap();
        let cap = (0.8_f64 * 2.0 * 1024.0 * 1024.0 / 5120.0).floor() as usize * 5120;
        assert_eq!(k, cap / 40_000);
        // Never less than one record, however slow the stream.
        let one = |_: usize| (1, 3_000_000);
        assert_eq!(
            r.place_capped(&one, Duration::from_secs(3600)).unwrap().1,
            1
        );
    }

    #[test]
    fn a_slow_stream_is_passed_over_while_others_have_capacity_and_tried_again_later() {
        let r = router(&["fast", "slow"], q(1e9), Balance::Adaptive);
        let (fast, slow) = (r.streams()[0].clone(), r.streams()[1].clone());
        let now = Instant::now();
        let done = Outcome::Done {
            accepted: 1,
            bytes: 1,
            throttled: 0,
            failed: 0,
            frames: 1,
            billed: 5120,
        };
        r.report(&fast, now - Duration::from_millis(30), &done);
        r.report(&slow, now - Duration::from_secs(2), &done);
        for _ in 0..10 {
            let p = r.place(1, 1, Duration::from_secs(1)).unwrap();
            assert_eq!(p.stream.name, "fast");
        }
        // A few milliseconds of difference decide nothing: both are used.
        let r2 = router(&["a", "b"], q(1e9), Balance::Adaptive);
        r2.report(&r2.streams()[0], now - Duration::from_millis(20), &done);
        r2.report(&r2.streams()[1], now - Duration::from_millis(90), &done);
        let names: std::collections::HashSet<String> = (0..10)
            .map(|_| {
                r2.place(1, 1, Duration::from_secs(1))
                    .unwrap()
                    .stream
                    .name
                    .clone()
            })
            .collect();
        assert_eq!(names.len(), 2);
        // Unused, the slow stream's latency fades (half every 10 s): it is tried again.
        let st = slow.lock();
        assert!(st.slowness(now) >= Duration::from_millis(750));
        assert!(st.slowness(now + Duration::from_secs(30)) < Duration::from_millis(250));
    }

    #[test]
    fn throttling_lowers_the_rate_once_per_round_and_recovers() {
        let r = router(&["a"], q(1000.0), Balance::Adaptive);
        let s = r.streams()[0].clone();
        let sent = Instant::now();
        r.report(&s, sent, &Outcome::Throttled);
        r.report(&s, sent, &Outcome::Throttled); // same round: no second decrease
        let rate = s.effective_rate(r.options().quota).bytes;
        assert!((rate - 800.0).abs() < 1.0, "{rate}");
        // An outage answered "slow down": call after call throttled, nothing accepted in
        // between. The rate is not driven to the floor (it would take minutes to recover).
        for _ in 0..50 {
            r.report(&s, Instant::now(), &Outcome::Throttled);
        }
        let rate = s.effective_rate(r.options().quota).bytes;
        assert!((rate - 800.0).abs() < 1.0, "{rate}");
        // Meanwhile the stream pauses (doubling up to 2 s) rather than being hammered.
        let paused = s.lock().paused_until.unwrap() - Instant::now();
        assert!(paused > Duration::from_millis(1500) && paused <= THROTTLE_PAUSE_MAX);
        assert!(r.next_chance().unwrap() > Instant::now() + Duration::from_millis(1500));
        // Records accepted, then throttled again: a new round, a new decrease.
        r.report(&s, Instant::now(), &done());
        assert!(s.lock().paused_until.is_none());
        r.report(&s, Instant::now(), &Outcome::Throttled);
        assert!(s.effective_rate(r.options().quota).bytes < 700.0);
    }

    #[test]
    fn failing_streams_leave_and_are_probed() {
        let r = router(&["a", "b"], q(1e9), Balance::Adaptive);
        let a = r.streams()[0].clone();
        r.report(
            &a,
            Instant::now(),
            &Outcome::StreamError("ResourceNotFoundException".into()),
        );
        assert!(!a.is_up());
        for _ in 0..10 {
            let p = r.place(1, 1, Duration::from_secs(1)).unwrap();
            assert_eq!(p.stream.name, "b");
        }
        std::thread::sleep(Duration::from_millis(60));
        // due for a probe: one batch may go there, then it is held until the answer
        let probes = (0..10)
            .filter(|_| r.place(1, 1, Duration::from_secs(1)).unwrap().stream.name == "a")
            .count();
        assert_eq!(probes, 1);
        r.report(
            &a,
            Instant::now(),
            &Outcome::Done {
                accepted: 1,
                bytes: 1,
                throttled: 0,
                failed: 0,
                frames: 1,
                billed: 5120,
            },
        );
        assert!(a.is_up());
        // five transient errors in a row take a stream out too
        for _ in 0..5 {
            r.report(&a, Instant::now(), &Outcome::Transient("timeout".into()));
        }
        assert!(!a.is_up());
    }

    #[test]
    fn in_flight_limit_grows_while_saturated_and_halves_on_throttling() {
        let r = router(&["a"], q(1e12), Balance::Adaptive);
        let s = r.streams()[0].clone();
        assert_eq!(s.in_flight_limit(), 2);
        let done = Outcome::Done {
            accepted: 1,
            bytes: 1,
            throttled: 0,
            failed: 0,
            frames: 1,
            billed: 5120,
        };
        // not saturated: no growth
        r.report(&s, Instant::now(), &done);
        assert_eq!(s.in_flight_limit(), 2);
        // saturated: grows by one per success, up to the max (4 here)
        let mut held = Vec::new();
        for _ in 0..6 {
            while let Ok(p) = s.permits.clone().try_acquire_owned() {
                held.push(p);
            }
            r.report(&s, Instant::now(), &done);
        }
        assert_eq!(s.in_flight_limit(), 4);
        r.report(&s, Instant::now(), &Outcome::Throttled);
        assert_eq!(s.in_flight_limit(), 2);
        // the two extra permits are retired as calls finish
        let mut retired = 0;
        for p in held.drain(..) {
            if s.retire_permit() {
                p.forget();
                retired += 1;
            }
        }
        assert_eq!(retired, 2);
        assert_eq!(s.permits.available_permits(), 2);
    }

    #[test]
    fn rendezvous_moves_about_one_nth_of_keys_when_a_stream_joins() {
        let r = router(&["s0", "s1", "s2", "s3"], Quota::default(), Balance::Key);
        let before: Vec<String> = (0..10_000u64)
            .map(|k| {
                r.stream_for_key(mix(k), &r.eligible())
                    .unwrap()
                    .name
                    .clone()
            })
            .collect();
        r.set_discovered(&["s4".to_string()]);
        let moved = (0..10_000u64)
            .filter(|&k| {
                r.stream_for_key(mix(k), &r.eligible()).unwrap().name != before[k as usize]
            })
            .count();
        // 1/5 of the keys should move to the new stream, and only those
        assert!((1500..2500).contains(&moved), "{moved}");
        let to_new = (0..10_000u64)
            .filter(|&k| r.stream_for_key(mix(k), &r.eligible()).unwrap().name == "s4")
            .count();
        assert_eq!(moved, to_new);
    }

    #[test]
    fn discovery_adds_and_removes_only_discovered_streams() {
        let r = router(&["fixed"], Quota::default(), Balance::Adaptive);
        let (j, l) = r.set_discovered(&["p-1".into(), "p-2".into()]);
        assert_eq!((j.len(), l.len()), (2, 0));
        let (j, l) = r.set_discovered(&["p-2".into(), "fixed".into()]);
        assert_eq!((j, l), (vec![], vec!["p-1".to_string()]));
        let names: Vec<String> = r.streams().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, vec!["fixed", "p-2"]);
    }

    fn done() -> Outcome {
        Outcome::Done {
            accepted: 1,
            bytes: 1,
            throttled: 0,
            failed: 0,
            frames: 1,
            billed: 5120,
        }
    }

    #[test]
    fn a_probe_that_never_reports_frees_its_slot() {
        let r = router(&["a"], q(1e9), Balance::Adaptive);
        let a = r.streams()[0].clone();
        r.report(&a, Instant::now(), &Outcome::StreamError("denied".into()));
        std::thread::sleep(Duration::from_millis(60));
        assert!(r.place(1, 1, Duration::from_secs(1)).is_some(), "probe due");
        assert!(
            r.place(1, 1, Duration::from_secs(1)).is_none(),
            "one probe at a time"
        );
        // Cancelled at the flush deadline, before it was sent: the slot is free again.
        r.cancelled(&a);
        assert!(r.place(1, 1, Duration::from_secs(1)).is_some());
        // Lost without a word (a task that died): free once the call would have ended
        // (call_timeout 200 ms + 1 s here).
        assert!(r.place(1, 1, Duration::from_secs(1)).is_none());
        std::thread::sleep(Duration::from_millis(1300));
        assert!(r.place(1, 1, Duration::from_secs(1)).is_some());
    }

    #[test]
    fn a_stream_out_for_a_transient_reason_is_probed_soon() {
        let mut r = router(&["a", "b"], q(1e9), Balance::Adaptive);
        r.opts.probe_interval = Duration::from_secs(30);
        let (a, b) = (r.streams()[0].clone(), r.streams()[1].clone());
        let next = |s: &Stream| match &s.lock().health {
            Health::Down { next_probe, .. } => next_probe.saturating_duration_since(Instant::now()),
            Health::Up => Duration::ZERO,
        };
        for _ in 0..MAX_CONSECUTIVE_ERRORS {
            r.report(&a, Instant::now(), &Outcome::Transient("503".into()));
        }
        assert!(!a.is_up());
        assert!(next(&a) <= TRANSIENT_PROBE_FIRST, "{:?}", next(&a));
        // Failed probes double the delay, up to two seconds, never the 30 s of lasting causes.
        let mut delays = Vec::new();
        for _ in 0..5 {
            r.report(&a, Instant::now(), &Outcome::Transient("503".into()));
            delays.push(next(&a));
        }
        assert!(delays[0] > Duration::from_millis(900) && delays[0] <= Duration::from_secs(1));
        assert!(delays[4] > Duration::from_millis(1900) && delays[4] <= TRANSIENT_PROBE_MAX);
        // Not found / denied: every probe_interval.
        r.report(
            &b,
            Instant::now(),
            &Outcome::StreamError("ResourceNotFoundException".into()),
        );
        assert!(next(&b) > Duration::from_secs(29));
        // A request refused as built says nothing about the stream.
        r.report(&a, Instant::now(), &done());
        for _ in 0..10 {
            r.report(&a, Instant::now(), &Outcome::Refused);
        }
        assert!(a.is_up());
    }

    #[test]
    fn next_chance_is_now_while_a_stream_is_up_else_the_soonest_probe() {
        let mut r = router(&["a"], q(1e9), Balance::Adaptive);
        r.opts.probe_interval = Duration::from_secs(30);
        assert!(r.next_chance().unwrap() <= Instant::now());
        let a = r.streams()[0].clone();
        r.report(&a, Instant::now(), &Outcome::StreamError("denied".into()));
        let t = r.next_chance().unwrap();
        assert!(t > Instant::now() + Duration::from_secs(29));
        let empty = router(&[], q(1e9), Balance::Adaptive);
        assert!(empty.next_chance().is_none());
    }

    #[test]
    fn concurrent_placements_never_spend_the_same_tokens() {
        // 1,000 bytes/s: 500 bytes of burst, so at most five 100-byte batches go at once.
        for _ in 0..20 {
            let r = Arc::new(router(&["a"], q(1000.0), Balance::Adaptive));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let r = r.clone();
                    std::thread::spawn(move || {
                        (0..2)
                            .filter(|_| {
                                r.place(1, 100, Duration::from_secs(60))
                                    .is_some_and(|p| p.wait.is_zero())
                            })
                            .count()
                    })
                })
                .collect();
            let now: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert!(
                now <= 5,
                "{now} batches went at once on 500 bytes of tokens"
            );
        }
    }

    #[test]
    fn a_stream_that_leaves_and_joins_again_keeps_its_counters() {
        let r = router(&[], q(1e9), Balance::Adaptive);
        r.set_discovered(&["p-1".into()]);
        let s = r.streams()[0].clone();
        r.report(&s, Instant::now(), &done());
        r.set_discovered(&[]);
        assert!(r.streams().is_empty());
        r.set_discovered(&["p-1".into()]);
        let again = r.streams()[0].clone();
        assert_eq!(again.stats.accepted_records.load(Ordering::Relaxed), 1);
        r.report(&again, Instant::now(), &done());
        let all = r.all_stats();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.accepted_records.load(Ordering::Relaxed), 2);
    }
}
