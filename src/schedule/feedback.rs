//! What calls come back with, into the model: counters, the learned rate (decrease on
//! throttling, pauses while nothing is accepted), in-flight limits, and health (leaving the
//! rotation, probes, coming back).

use super::stream::*;
use super::{Call, Outcome, Router};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Router {
    /// Takes the outcome of a call into the model.
    pub fn report(&self, s: &Stream, call: Call, outcome: &Outcome) {
        let now = Instant::now();
        s.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut st = s.lock();
        st.note_latency(now.saturating_duration_since(call.sent), now);
        let was_down = matches!(st.health, Health::Down { .. });
        match outcome {
            Outcome::Done {
                accepted,
                bytes,
                throttled,
                throttled_bytes,
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
                    Self::throttled(&mut st, call.round, now);
                    st.refund(*throttled_bytes as f64);
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
                Self::throttled(&mut st, call.round, now);
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
            self.recovered.notify_one();
            self.log.info(format_args!(
                "delivery stream {} answers again: back in the rotation",
                s.name
            ));
        }
    }

    pub(super) fn throttled(st: &mut State, round: u64, now: Instant) {
        // Calls placed before the last decrease (even if sent after it, reserved ahead)
        // reflect the old rate: one decrease per round.
        if round != st.round {
            return;
        }
        if !st.accepted_since_decrease {
            st.pause = (st.pause * 2).clamp(THROTTLE_PAUSE_FIRST, THROTTLE_PAUSE_MAX);
            st.paused_until = Some(now + st.pause);
            return;
        }
        st.accepted_since_decrease = false;
        st.decrease(now);
        // The stream is over quota now: what was banked is gone.
        for t in st.tokens.iter_mut() {
            *t = t.min(0.0);
        }
    }

    /// Takes a stream out of the rotation. A transient reason is probed soon (the delay
    /// doubling while probes fail); a lasting one every `probe_interval`.
    pub(super) fn down(
        &self,
        s: &Stream,
        st: &mut State,
        reason: &str,
        transient: bool,
        now: Instant,
    ) {
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
