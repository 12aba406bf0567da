//! Backoff between delivery rounds: exponential with full jitter.

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

#[cfg(test)]
mod tests {
    use super::*;

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
