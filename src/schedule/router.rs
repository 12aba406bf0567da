//! The router: the set of streams (configured and discovered), where a batch goes and
//! when (placement), and key affinity (rendezvous hashing).

use super::stream::*;
use super::{Packing, Placement, RouterOptions};
use crate::telemetry::log::Logger;
use crate::telemetry::metrics::StreamStats;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub struct Router {
    pub(super) opts: RouterOptions,
    pub(super) streams: RwLock<Arc<Vec<Arc<Stream>>>>,
    /// Every stream's counters since the instance started, by name, in order of first use.
    pub(super) stats: Mutex<Vec<(String, Arc<StreamStats>)>>,
    pub(super) cursor: AtomicUsize,
    pub(super) log: Logger,
    /// Signalled when a stream out of the rotation answers again (what waited for the
    /// endpoint, such as describing streams, can go now).
    pub recovered: tokio::sync::Notify,
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
            recovered: tokio::sync::Notify::new(),
        };
        let streams = configured
            .iter()
            .map(|n| Arc::new(r.new_stream(n, true, now)))
            .collect();
        *r.streams.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(streams);
        r
    }

    /// A stream with the counters it had before, if it was in use once already.
    pub(super) fn new_stream(&self, name: &str, configured: bool, now: Instant) -> Stream {
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
    pub(super) fn need(&self, s: &Stream, records: usize, bytes: usize) -> [f64; 3] {
        let frames = if s.aggregates() {
            let by_bytes = bytes.div_ceil(self.opts.aggregate_max.max(1)).max(1);
            let by_members = s.aggregate_members().map_or(1, |m| records.div_ceil(m));
            by_bytes.max(by_members)
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

    /// Sets how the stream `name` packs log records.
    pub fn set_packing(&self, name: &str, packing: Packing) {
        if let Some(s) = self.streams().iter().find(|s| s.name == name) {
            s.set_packing(packing);
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
                let (_, _, wait) = self.quote(s, &mut st, prefix, now);
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
            let (records, need, wait) = self.quote(s, &mut st, prefix, now);
            if wait > latest {
                return None;
            }
            self.take(&mut st, need, wait, now);
            let round = st.round;
            drop(st);
            return Some((
                Placement {
                    stream: s.clone(),
                    wait,
                    round,
                },
                records,
            ));
        }
        None
    }

    /// What placing the batch's longest fitting prefix on `s` takes now: its records, the
    /// tokens it needs and the wait for them.
    fn quote(
        &self,
        s: &Stream,
        st: &mut State,
        prefix: &dyn Fn(usize) -> (usize, usize),
        now: Instant,
    ) -> (usize, [f64; 3], Duration) {
        st.refill(self.opts.quota, self.opts.quota_max, now);
        // A probe of a stream out of the rotation carries one record: if it fails, little
        // went there; if it succeeds, the stream's destination can be learned before the
        // bulk goes (aggregation auto).
        let max_bytes = match st.health {
            Health::Up => self.call_bytes(st),
            Health::Down { .. } => 1,
        };
        let (records, bytes) = prefix(max_bytes);
        let need = self.need(s, records, bytes);
        (records, need, st.wait_for(self.opts.quota, need))
    }

    /// The most bytes one call to a stream should carry: `CALL_SECS` of its learned rate,
    /// in whole 5 KB billing units, at least 64 KiB.
    pub(super) fn call_bytes(&self, st: &State) -> usize {
        let unit = crate::batch::BILLING_UNIT as f64;
        let rate = rates(self.opts.quota, st.scale)[1];
        let bytes = (rate * CALL_SECS / unit).floor() * unit;
        (bytes as usize).max(64 * 1024)
    }

    /// The most bytes one aggregate (Firehose record) to `s` should carry now: a quarter
    /// of a call (`call_bytes`), in whole 5 KB billing units, at least 64 KiB. Firehose
    /// takes or refuses a record whole: on a stream whose quota is a few MiB/s, one
    /// refused 1 MB aggregate is a second's worth resent; smaller pieces keep most of a
    /// throttled call. Streams of 8 MiB/s and more keep full-size aggregates.
    pub fn aggregate_bytes(&self, s: &Stream) -> usize {
        let unit = crate::batch::BILLING_UNIT as usize;
        let call = self.call_bytes(&s.lock());
        (call / 4 / unit * unit).max(64 * 1024)
    }

    /// Takes a placement's tokens; a stream out of the rotation holds its probe slot until
    /// the call can have answered.
    pub(super) fn take(&self, st: &mut State, need: [f64; 3], wait: Duration, now: Instant) {
        st.note_demand(need, now);
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
        st.refill(self.opts.quota, self.opts.quota_max, now);
        let wait = st.wait_for(self.opts.quota, need);
        if wait > latest {
            return None;
        }
        self.take(&mut st, need, wait, now);
        Some(Placement {
            stream: s.clone(),
            wait,
            round: st.round,
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
}

/// A 64-bit finaliser (splitmix64), for rendezvous scores.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
