//! Throughput quotas: token buckets with one second of burst.

use std::time::Instant;

use crate::config::Quota;

/// A token bucket refilled at `rate` tokens per second, holding at most
/// `rate` tokens (one second of burst). It starts full.
///
/// A take larger than the whole capacity succeeds when the bucket is full
/// and leaves it negative (in debt); otherwise a take needs the tokens to be
/// there. This way every size eventually passes and the long-run rate holds.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. A rate that is not a positive finite number makes a
    /// bucket that never admits anything.
    pub fn new(rate: f64, now: Instant) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        };
        TokenBucket {
            rate,
            tokens: rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
    }

    /// Tokens available now (may be negative while in debt).
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// `true` if `n` tokens could be taken now.
    pub fn can_take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        self.rate > 0.0 && self.tokens >= n.min(self.rate) && self.tokens > 0.0
    }

    /// Takes `n` tokens if [`can_take`](Self::can_take) allows it.
    pub fn try_take(&mut self, n: f64, now: Instant) -> bool {
        if self.can_take(n, now) {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens unconditionally (call after `can_take`).
    fn take(&mut self, n: f64) {
        self.tokens -= n;
    }
}

/// The three buckets of a stream's [`Quota`].
#[derive(Clone, Debug)]
pub struct QuotaLimiter {
    quota: Quota,
    records: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    requests: Option<TokenBucket>,
}

impl QuotaLimiter {
    /// Fresh (full) buckets for `quota`.
    pub fn new(quota: Quota, now: Instant) -> Self {
        QuotaLimiter {
            records: quota.records_per_second.map(|r| TokenBucket::new(r, now)),
            bytes: quota.bytes_per_second.map(|r| TokenBucket::new(r, now)),
            requests: quota.requests_per_second.map(|r| TokenBucket::new(r, now)),
            quota,
        }
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Counts one request against the request quota; `false` when over it.
    pub fn admit_request(&mut self, now: Instant) -> bool {
        match self.requests.as_mut() {
            Some(b) => b.try_take(1.0, now),
            None => true,
        }
    }

    /// All or nothing: admits `records` records of `bytes` bytes in total
    /// against the record and byte quotas.
    pub fn admit_all(&mut self, records: usize, bytes: usize, now: Instant) -> bool {
        let (records, bytes) = (records as f64, bytes as f64);
        let fits =
            fits(self.records.as_mut(), records, now) && fits(self.bytes.as_mut(), bytes, now);
        if fits {
            if let Some(b) = self.records.as_mut() {
                b.take(records);
            }
            if let Some(b) = self.bytes.as_mut() {
                b.take(bytes);
            }
        }
        fits
    }

    /// Admits one record of `bytes` bytes against the record and byte quotas.
    pub fn admit_record(&mut self, bytes: usize, now: Instant) -> bool {
        self.admit_all(1, bytes, now)
    }

    /// `true` when record/byte quotas reject whole requests.
    pub fn whole_request(&self) -> bool {
        self.quota.whole_request
    }
}

fn fits(bucket: Option<&mut TokenBucket>, n: f64, now: Instant) -> bool {
    match bucket {
        Some(b) => b.can_take(n, now),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_refills_and_caps_at_one_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, t0);
        for _ in 0..10 {
            assert!(b.try_take(1.0, t0));
        }
        assert!(!b.try_take(1.0, t0));
        assert!(b.try_take(1.0, t0 + Duration::from_millis(100)));
        assert!(!b.try_take(1.0, t0 + Duration::from_millis(100)));
        // Long idle: still at most one second of burst.
        let later = t0 + Duration::from_secs(60);
        assert!((b.available(later) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn oversized_take_needs_full_bucket_and_leaves_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, t0);
        assert!(b.try_take(250.0, t0));
        assert!(b.available(t0) < 0.0);
        assert!(!b.try_take(1.0, t0 + Duration::from_secs(1)));
        assert!(b.try_take(1.0, t0 + Duration::from_millis(1600)));
    }

    #[test]
    fn zero_rate_never_admits() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, t0);
        assert!(!b.try_take(0.5, t0 + Duration::from_secs(5)));
    }

    #[test]
    fn limiter_all_or_nothing() {
        let t0 = Instant::now();
        let mut l = QuotaLimiter::new(
            Quota {
                records_per_second: Some(10.0),
                bytes_per_second: Some(1000.0),
                requests_per_second: Some(2.0),
                whole_request: true,
            },
            t0,
        );
        assert!(l.admit_request(t0));
        assert!(l.admit_request(t0));
        assert!(!l.admit_request(t0));
        assert!(l.admit_all(6, 100, t0));
        assert!(!l.admit_all(6, 100, t0)); // only 4 records left
        assert!(l.admit_all(4, 100, t0));
        assert!(!l.admit_record(1, t0));
    }
}
