//! Fault injection: deciding, with a (possibly seeded) random generator,
//! whether a request is delayed, answered with an error, or has its
//! connection dropped, and whether a record fails.

use std::time::{Duration, Instant};

use crate::config::Faults;
use crate::error::{ApiError, SERVICE_UNAVAILABLE};

/// Faults plus an outage window, for one stream or for the whole emulator.
#[derive(Clone, Debug, Default)]
pub struct FaultState {
    /// The configured faults.
    pub faults: Faults,
    /// An outage in force until this instant (see
    /// [`Emulator::start_outage`](crate::Emulator::start_outage)).
    pub outage_until: Option<Instant>,
}

impl FaultState {
    /// Fault state with the given faults and no outage window.
    pub fn new(faults: Faults) -> Self {
        FaultState {
            faults,
            outage_until: None,
        }
    }

    /// `true` while an outage is in force.
    pub fn in_outage(&self, now: Instant) -> bool {
        self.faults.outage || self.outage_until.is_some_and(|until| now < until)
    }
}

/// What fault injection decided for a whole request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestFault {
    /// Close the connection without answering.
    Reset,
    /// Answer with this error (an outage or an injected failure).
    Fail(ApiError),
}

/// Where an injected request fault came from, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An outage.
    Outage,
    /// A dropped connection.
    Reset,
    /// An injected request failure.
    Failure,
}

/// `true` with probability `p` (clamped to `0..=1`).
pub fn roll(rng: &mut fastrand::Rng, p: f64) -> bool {
    if p.is_nan() || p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        rng.f64() < p
    }
}

/// The latency to add: `latency` plus a uniform share of `latency_jitter`.
pub fn latency(faults: &Faults, rng: &mut fastrand::Rng) -> Duration {
    let mut d = faults.latency;
    if !faults.latency_jitter.is_zero() {
        d += faults.latency_jitter.mul_f64(rng.f64());
    }
    d
}

/// Decides the fate of a whole request under one fault state: an outage
/// first, then a dropped connection, then an injected failure.
pub fn request_fault(
    state: &FaultState,
    now: Instant,
    rng: &mut fastrand::Rng,
) -> Option<(FaultKind, RequestFault)> {
    if state.in_outage(now) {
        return Some((
            FaultKind::Outage,
            RequestFault::Fail(ApiError::service_unavailable(
                503,
                "Service unavailable (emulated outage).",
            )),
        ));
    }
    let f = &state.faults;
    if roll(rng, f.reset_rate) {
        return Some((FaultKind::Reset, RequestFault::Reset));
    }
    if roll(rng, f.request_failure_rate) {
        let code = f.request_failure_code();
        let message = if code == SERVICE_UNAVAILABLE {
            "Service unavailable (emulated failure)."
        } else {
            "Internal service failure (emulated)."
        };
        return Some((
            FaultKind::Failure,
            RequestFault::Fail(ApiError::new(f.request_failure_status(), code, message)),
        ));
    }
    None
}

/// IAM's answer when `faults` deny `action` (an operation name) on `stream`.
pub fn denied(faults: &Faults, action: &str, stream: Option<&str>) -> Option<ApiError> {
    faults
        .deny_actions
        .iter()
        .any(|a| a == action)
        .then(|| ApiError::access_denied(action, stream))
}

/// Decides whether a record fails: returns its `(ErrorCode, ErrorMessage)`.
pub fn record_fault(faults: &Faults, rng: &mut fastrand::Rng) -> Option<(String, String)> {
    if roll(rng, faults.record_failure_rate) {
        let code = faults.record_error_code().to_string();
        let message = if code == SERVICE_UNAVAILABLE {
            crate::error::SLOW_DOWN.to_string()
        } else {
            "Internal service failure (emulated).".to_string()
        };
        Some((code, message))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roll_edges_and_rate() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(!roll(&mut rng, 0.0));
        assert!(!roll(&mut rng, f64::NAN));
        assert!(roll(&mut rng, 1.0));
        let hits = (0..100_000).filter(|_| roll(&mut rng, 0.25)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }

    #[test]
    fn outage_window() {
        let now = Instant::now();
        let mut s = FaultState::default();
        assert!(!s.in_outage(now));
        s.outage_until = Some(now + Duration::from_secs(1));
        assert!(s.in_outage(now));
        assert!(!s.in_outage(now + Duration::from_secs(2)));
        let mut rng = fastrand::Rng::with_seed(1);
        match request_fault(&s, now, &mut rng) {
            Some((FaultKind::Outage, RequestFault::Fail(e))) => {
                assert_eq!(e.status, 503);
                assert_eq!(e.code, SERVICE_UNAVAILABLE);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_failure_defaults() {
        let s = FaultState::new(Faults {
            request_failure_rate: 1.0,
            ..Default::default()
        });
        let mut rng = fastrand::Rng::with_seed(1);
        match request_fault(&s, Instant::now(), &mut rng) {
            Some((FaultKind::Failure, RequestFault::Fail(e))) => {
                assert_eq!((e.status, e.code.as_str()), (500, "InternalFailure"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn denies_only_the_listed_actions() {
        let f = Faults {
            deny_actions: vec!["PutRecordBatch".into()],
            ..Default::default()
        };
        let e = denied(&f, "PutRecordBatch", Some("logs")).expect("denied");
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, crate::error::ACCESS_DENIED)
        );
        assert!(
            e.message.contains("firehose:PutRecordBatch"),
            "{}",
            e.message
        );
        assert!(e.message.contains("deliverystream/logs"), "{}", e.message);
        assert_eq!(denied(&f, "DescribeDeliveryStream", Some("logs")), None);
        assert_eq!(denied(&Faults::default(), "PutRecordBatch", None), None);
    }

    #[test]
    fn latency_with_jitter_in_range() {
        let f = Faults {
            latency: Duration::from_millis(10),
            latency_jitter: Duration::from_millis(5),
            ..Default::default()
        };
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..100 {
            let d = latency(&f, &mut rng);
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15));
        }
    }
}
