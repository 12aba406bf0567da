//! The retry policy: what a call's outcome means for its records (accept, place again at
//! once, back off, or leave to Fluent Bit), and the backoff between rounds (exponential
//! with full jitter).

use crate::firehose::put::{CallError, RecordFailure};
use crate::schedule::Outcome;

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Delay before round `attempt` (1-based): uniform in [0, min(max, initial·2^(attempt-1))].
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        cap.mul_f64(fastrand::f64())
    }
}

/// What becomes of records after a call, by the retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Taken by Firehose: done.
    Accept,
    /// Placed again at once on the best stream (throttled, refused by the stream, never
    /// sent): capacity elsewhere is used without waiting.
    Replace,
    /// Sent again after a backoff (failed).
    BackOff,
    /// Left for Fluent Bit's retry of the chunk (`auto_retry_requests off`).
    Hold,
}

/// The retry policy of an instance: the backoff, and how outcomes map to what comes next.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub backoff: Backoff,
    /// `balance adaptive`: throttled records move at once; other modes back off instead.
    pub adaptive: bool,
    /// `auto_retry_requests`: failed records are retried within the flush.
    pub auto_retry: bool,
}

impl Policy {
    /// Applies the mode: re-placing needs the adaptive scheduler, backing off needs
    /// `auto_retry_requests`.
    fn mode(&self, next: Next) -> Next {
        match next {
            Next::Replace if !self.adaptive => self.mode(Next::BackOff),
            Next::BackOff if !self.auto_retry => Next::Hold,
            n => n,
        }
    }

    /// One record of a call that went through.
    pub fn record(&self, failure: Option<&RecordFailure>) -> Next {
        match failure {
            None => Next::Accept,
            Some(f) if f.throttled => self.mode(Next::Replace),
            Some(_) => self.mode(Next::BackOff),
        }
    }

    /// Records that were never tried (cancelled before sending, or beyond what one call
    /// carries): placed again, no attempt spent.
    pub fn untried(&self) -> Next {
        Next::Replace
    }

    /// A call that failed whole: what its records do, and what it says of the stream.
    /// `frames` is how many Firehose records the call carried.
    pub fn call(&self, err: CallError, frames: usize) -> (Next, Outcome) {
        match err {
            CallError::Throttled(_) => (self.mode(Next::Replace), Outcome::Throttled),
            // A refused request of several Firehose records says nothing about the stream
            // (the plugin built it wrong): never take the stream out for it. One record
            // refused is the stream's doing (a Kinesis-sourced stream takes no puts).
            CallError::Invalid { .. } if frames > 1 => (self.mode(Next::BackOff), Outcome::Refused),
            CallError::Stream { code, message } | CallError::Invalid { code, message } => (
                self.mode(Next::Replace),
                Outcome::StreamError(format!("{code}: {message}")),
            ),
            CallError::Transient(m) => (self.mode(Next::BackOff), Outcome::Transient(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_what_comes_next_by_mode() {
        let b = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let p = Policy {
            backoff: b,
            adaptive: true,
            auto_retry: true,
        };
        let thr = RecordFailure {
            throttled: true,
            code: "ServiceUnavailableException".into(),
        };
        let fail = RecordFailure {
            throttled: false,
            code: "InternalFailure".into(),
        };
        assert_eq!(p.record(None), Next::Accept);
        assert_eq!(p.record(Some(&thr)), Next::Replace);
        assert_eq!(p.record(Some(&fail)), Next::BackOff);
        let invalid = || CallError::Invalid {
            code: "InvalidArgumentException".into(),
            message: "m".into(),
        };
        assert!(matches!(
            p.call(invalid(), 3),
            (Next::BackOff, Outcome::Refused)
        ));
        assert!(matches!(
            p.call(invalid(), 1),
            (Next::Replace, Outcome::StreamError(_))
        ));
        assert!(matches!(
            p.call(CallError::Transient("t".into()), 1),
            (Next::BackOff, Outcome::Transient(_))
        ));
        // Other balance modes back off instead of moving at once; without
        // auto_retry_requests, retries are Fluent Bit's.
        let rr = Policy {
            adaptive: false,
            ..p
        };
        assert_eq!(rr.record(Some(&thr)), Next::BackOff);
        let off = Policy {
            adaptive: false,
            auto_retry: false,
            backoff: b,
        };
        assert_eq!(off.record(Some(&thr)), Next::Hold);
        assert_eq!(off.record(Some(&fail)), Next::Hold);
        assert_eq!(off.untried(), Next::Replace);
    }

    #[test]
    fn grows_and_stays_under_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..40 {
            let cap = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20))).min(b.max);
            for _ in 0..50 {
                assert!(b.delay(attempt) <= cap);
            }
        }
        let spread: Vec<Duration> = (0..200).map(|_| b.delay(10)).collect();
        assert!(spread.iter().any(|d| *d < Duration::from_millis(300)));
        assert!(spread.iter().any(|d| *d > Duration::from_millis(700)));
    }
}
