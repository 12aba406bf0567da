//! The scheduler's unit tests.

use super::router::mix;
use super::stream::*;
use super::*;
use crate::telemetry::log::Logger;
use crate::telemetry::log::{Level, StderrSink};
use std::sync::atomic::Ordering;
use std::time::Instant;

fn router(names: &[&str], quota: Quota, balance: Balance) -> Router {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    Router::new(
        &names,
        RouterOptions {
            balance,
            quota,
            quota_max: quota,
            max_in_flight: 4,
            probe_interval: Duration::from_millis(50),
            call_timeout: Duration::from_millis(200),
            aggregate_max: 1_000_000,
            aggregate_default: false,
        },
        Logger::new(Arc::new(StderrSink(Level::Error)), "test"),
    )
}

/// A call placed now (in the stream's current round), sent at `sent`.
fn at(s: &Stream, sent: Instant) -> Call {
    Call {
        round: s.round(),
        sent,
    }
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
    r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
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
        throttled_bytes: 0,
        failed: 0,
        frames: 1,
        billed: 5120,
    };
    r.report(&fast, at(&fast, now - Duration::from_millis(30)), &done);
    r.report(&slow, at(&slow, now - Duration::from_secs(2)), &done);
    for _ in 0..10 {
        let p = r.place(1, 1, Duration::from_secs(1)).unwrap();
        assert_eq!(p.stream.name, "fast");
    }
    // A few milliseconds of difference decide nothing: both are used.
    let r2 = router(&["a", "b"], q(1e9), Balance::Adaptive);
    r2.report(
        &r2.streams()[0],
        at(&r2.streams()[0], now - Duration::from_millis(20)),
        &done,
    );
    r2.report(
        &r2.streams()[1],
        at(&r2.streams()[1], now - Duration::from_millis(90)),
        &done,
    );
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
    let call = at(&s, Instant::now());
    r.report(&s, call, &Outcome::Throttled);
    r.report(&s, call, &Outcome::Throttled); // same round: no second decrease
    let rate = s.effective_rate(r.options().quota).bytes;
    assert!((rate - 800.0).abs() < 1.0, "{rate}");
    // An outage answered "slow down": call after call throttled, nothing accepted in
    // between. The rate is not driven to the floor (it would take minutes to recover).
    for _ in 0..50 {
        r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
    }
    let rate = s.effective_rate(r.options().quota).bytes;
    assert!((rate - 800.0).abs() < 1.0, "{rate}");
    // Meanwhile the stream pauses (doubling up to 1 s) rather than being hammered.
    let paused = s.lock().paused_until.unwrap() - Instant::now();
    assert!(paused > Duration::from_millis(900) && paused <= THROTTLE_PAUSE_MAX);
    assert!(r.next_chance().unwrap() > Instant::now() + Duration::from_millis(900));
    // Records accepted, then throttled again: a new round, a new decrease.
    r.report(&s, at(&s, Instant::now()), &done());
    assert!(s.lock().paused_until.is_none());
    r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
    assert!(s.effective_rate(r.options().quota).bytes < 700.0);
}

#[test]
fn failing_streams_leave_and_are_probed() {
    let r = router(&["a", "b"], q(1e9), Balance::Adaptive);
    let a = r.streams()[0].clone();
    r.report(
        &a,
        at(&a, Instant::now()),
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
        at(&a, Instant::now()),
        &Outcome::Done {
            accepted: 1,
            bytes: 1,
            throttled: 0,
            throttled_bytes: 0,
            failed: 0,
            frames: 1,
            billed: 5120,
        },
    );
    assert!(a.is_up());
    // five transient errors in a row take a stream out too
    for _ in 0..5 {
        r.report(
            &a,
            at(&a, Instant::now()),
            &Outcome::Transient("timeout".into()),
        );
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
        throttled_bytes: 0,
        failed: 0,
        frames: 1,
        billed: 5120,
    };
    // not saturated: no growth
    r.report(&s, at(&s, Instant::now()), &done);
    assert_eq!(s.in_flight_limit(), 2);
    // saturated: grows by one per success, up to the max (4 here)
    let mut held = Vec::new();
    for _ in 0..6 {
        while let Ok(p) = s.permits.clone().try_acquire_owned() {
            held.push(p);
        }
        r.report(&s, at(&s, Instant::now()), &done);
    }
    assert_eq!(s.in_flight_limit(), 4);
    r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
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
        .filter(|&k| r.stream_for_key(mix(k), &r.eligible()).unwrap().name != before[k as usize])
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
        throttled_bytes: 0,
        failed: 0,
        frames: 1,
        billed: 5120,
    }
}

#[test]
fn a_probe_that_never_reports_frees_its_slot() {
    let r = router(&["a"], q(1e9), Balance::Adaptive);
    let a = r.streams()[0].clone();
    r.report(
        &a,
        at(&a, Instant::now()),
        &Outcome::StreamError("denied".into()),
    );
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
        r.report(
            &a,
            at(&a, Instant::now()),
            &Outcome::Transient("503".into()),
        );
    }
    assert!(!a.is_up());
    assert!(next(&a) <= TRANSIENT_PROBE_FIRST, "{:?}", next(&a));
    // Failed probes double the delay, up to one second, never the 30 s of lasting causes.
    let mut delays = Vec::new();
    for _ in 0..5 {
        r.report(
            &a,
            at(&a, Instant::now()),
            &Outcome::Transient("503".into()),
        );
        delays.push(next(&a));
    }
    assert!(delays[0] > Duration::from_millis(900) && delays[0] <= Duration::from_secs(1));
    assert!(delays[4] > Duration::from_millis(900) && delays[4] <= TRANSIENT_PROBE_MAX);
    // Not found / denied: every probe_interval.
    r.report(
        &b,
        at(&b, Instant::now()),
        &Outcome::StreamError("ResourceNotFoundException".into()),
    );
    assert!(next(&b) > Duration::from_secs(29));
    // A request refused as built says nothing about the stream.
    r.report(&a, at(&a, Instant::now()), &done());
    for _ in 0..10 {
        r.report(&a, at(&a, Instant::now()), &Outcome::Refused);
    }
    assert!(a.is_up());
}

#[test]
fn next_chance_is_now_while_a_stream_is_up_else_the_soonest_probe() {
    let mut r = router(&["a"], q(1e9), Balance::Adaptive);
    r.opts.probe_interval = Duration::from_secs(30);
    assert!(r.next_chance().unwrap() <= Instant::now());
    let a = r.streams()[0].clone();
    r.report(
        &a,
        at(&a, Instant::now()),
        &Outcome::StreamError("denied".into()),
    );
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
    r.report(&s, at(&s, Instant::now()), &done());
    r.set_discovered(&[]);
    assert!(r.streams().is_empty());
    r.set_discovered(&["p-1".into()]);
    let again = r.streams()[0].clone();
    assert_eq!(again.stats.accepted_records.load(Ordering::Relaxed), 1);
    r.report(&again, at(&again, Instant::now()), &done());
    let all = r.all_stats();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.accepted_records.load(Ordering::Relaxed), 2);
}

#[test]
fn a_probe_carries_one_record() {
    let r = router(&["a"], q(1e9), Balance::Adaptive);
    let a = r.streams()[0].clone();
    let prefix = |max: usize| {
        let k = (max / 100).clamp(1, 1000);
        (k, k * 100)
    };
    assert_eq!(
        r.place_capped(&prefix, Duration::from_secs(1)).unwrap().1,
        1000
    );
    r.report(
        &a,
        at(&a, Instant::now()),
        &Outcome::StreamError("denied".into()),
    );
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(
        r.place_capped(&prefix, Duration::from_secs(1)).unwrap().1,
        1
    );
}

/// A router whose byte quota is a starting estimate of `start` that may be probed up to
/// `max` (records and requests never bind).
fn probing_router(start: f64, max: f64) -> Router {
    let mut r = router(&["a"], q(start), Balance::Adaptive);
    r.opts.quota_max = Quota {
        bytes: max,
        ..q(start)
    };
    r
}

/// Places `bytes` on the stream at `now` (the fake clock), through the path production
/// uses: refill, then take (which notes whether it had to wait).
fn place_at(r: &Router, bytes: f64, now: Instant) -> Duration {
    let s = r.streams()[0].clone();
    let mut st = s.lock();
    st.refill(r.opts.quota, r.opts.quota_max, now);
    let need = [1.0, bytes, 1.0];
    let wait = st.wait_for(r.opts.quota, need);
    r.take(&mut st, need, wait, now);
    wait
}

fn bytes_rate(r: &Router) -> f64 {
    r.streams()[0].effective_rate(r.opts.quota).bytes
}

#[test]
fn an_unset_quota_is_probed_upward_while_demand_exceeds_it() {
    let r = probing_router(1000.0, 20_000.0);
    let t0 = Instant::now();
    // Demand of twice the estimate for 4 s, in steps of 100 ms: placements wait.
    let mut waited = false;
    for k in 0..40 {
        waited |= !place_at(&r, 200.0, t0 + Duration::from_millis(100 * k)).is_zero();
    }
    assert!(waited);
    // Doubling every two seconds (after the first second without a decrease): about 3.2 s
    // of growth by t = 3.9 s.
    let rate = bytes_rate(&r);
    assert!((2500.0..4000.0).contains(&rate), "{rate}");
    // Never past the ceiling, however long the demand lasts.
    for k in 40..400 {
        place_at(&r, 5_000.0, t0 + Duration::from_millis(100 * k));
    }
    assert!(
        (bytes_rate(&r) - 20_000.0).abs() < 1e-6,
        "{}",
        bytes_rate(&r)
    );
}

#[test]
fn a_quota_set_explicitly_is_a_hard_cap() {
    // quota_max = quota (a key set): the same demand never raises the rate.
    let r = router(&["a"], q(1000.0), Balance::Adaptive);
    let t0 = Instant::now();
    for k in 0..100 {
        place_at(&r, 200.0, t0 + Duration::from_millis(100 * k));
    }
    assert!((bytes_rate(&r) - 1000.0).abs() < 1e-6, "{}", bytes_rate(&r));
}

#[test]
fn no_growth_while_demand_stays_below_the_rate() {
    let r = probing_router(1000.0, 20_000.0);
    let t0 = Instant::now();
    // 500 bytes/s against 1,000: nothing ever waits.
    for k in 0..100 {
        assert!(place_at(&r, 50.0, t0 + Duration::from_millis(100 * k)).is_zero());
    }
    assert!((bytes_rate(&r) - 1000.0).abs() < 1e-6, "{}", bytes_rate(&r));
}

#[test]
fn throttling_after_growth_decreases_and_holds_the_next_probe() {
    let r = probing_router(1000.0, 20_000.0);
    let s = r.streams()[0].clone();
    let t0 = Instant::now();
    for k in 0..60 {
        place_at(&r, 500.0, t0 + Duration::from_millis(100 * k));
    }
    let grown = bytes_rate(&r);
    assert!(grown > 4000.0, "{grown}");
    // Throttled: one decrease (×0.8) per round of placements.
    let call = at(&s, t0);
    r.report(&s, call, &Outcome::Throttled);
    r.report(&s, call, &Outcome::Throttled);
    let after = bytes_rate(&r);
    assert!((after - grown * DECREASE).abs() < 1.0, "{grown} -> {after}");
    // The probe failed: no growth for PROBE_HOLD_FIRST (2 s), whatever the demand, and
    // then only additive steps (5 % of the rate per second), not doubling.
    let t1 = Instant::now();
    for k in 1..=15 {
        place_at(&r, 5_000.0, t1 + Duration::from_millis(100 * k));
    }
    assert!((bytes_rate(&r) - after).abs() < 1.0, "{}", bytes_rate(&r));
    for k in 16..=40 {
        place_at(&r, 5_000.0, t1 + Duration::from_millis(100 * k));
    }
    let later = bytes_rate(&r);
    assert!(later > after && later < after * 1.2, "{after} -> {later}");
    // The rounds of decrease of one overshoot are one failed probe: the hold is not doubled.
    let r = probing_router(1000.0, 20_000.0);
    let s = r.streams()[0].clone();
    s.lock().scale[1] = 3.0;
    r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
    r.report(&s, at(&s, Instant::now()), &done());
    r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
    assert!((bytes_rate(&r) - 1920.0).abs() < 1e-6, "{}", bytes_rate(&r));
    assert_eq!(s.lock().probe_hold, PROBE_HOLD_FIRST);
    // A throttle of a probe brings the rate back no lower than the starting estimate; the
    // next one, below it, lowers it as before.
    let r = probing_router(1000.0, 20_000.0);
    let s = r.streams()[0].clone();
    s.lock().scale[1] = 1.1;
    r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
    assert!((bytes_rate(&r) - 1000.0).abs() < 1e-6, "{}", bytes_rate(&r));
    r.report(&s, at(&s, Instant::now()), &done());
    r.report(&s, at(&s, Instant::now()), &Outcome::Throttled);
    assert!((bytes_rate(&r) - 800.0).abs() < 1e-6, "{}", bytes_rate(&r));
}

#[test]
fn calls_placed_before_a_decrease_do_not_lower_the_rate_again() {
    let r = router(&["a"], q(1000.0), Balance::Adaptive);
    let s = r.streams()[0].clone();
    // Two calls reserved ahead in round 0; the first is throttled.
    let early = r.place(1, 400, Duration::from_secs(10)).unwrap();
    let late = r.place(1, 400, Duration::from_secs(10)).unwrap();
    let sent = |p: &Placement| Call {
        round: p.round,
        sent: Instant::now(),
    };
    r.report(&s, sent(&early), &Outcome::Throttled);
    r.report(&s, at(&s, Instant::now()), &done());
    // The second, sent after the decrease but placed before it, says nothing new.
    r.report(&s, sent(&late), &Outcome::Throttled);
    assert!((bytes_rate(&r) - 800.0).abs() < 1e-6, "{}", bytes_rate(&r));
}

#[test]
fn throttled_bytes_are_refunded_as_debt_only() {
    let r = router(&["a"], q(1000.0), Balance::Adaptive);
    let s = r.streams()[0].clone();
    let t0 = Instant::now();
    // 500 of burst, then 1,000 reserved ahead: 500 bytes of debt.
    place_at(&r, 1000.0, t0);
    let throttled = Outcome::Done {
        accepted: 0,
        bytes: 0,
        throttled: 2,
        throttled_bytes: 400,
        failed: 0,
        frames: 0,
        billed: 0,
    };
    r.report(&s, at(&s, t0), &throttled);
    // The stream did not take those 400 bytes: their resend is not charged twice.
    assert!(
        (s.lock().tokens[1] + 100.0).abs() < 1.0,
        "{:?}",
        s.lock().tokens
    );
    r.report(&s, at(&s, t0), &throttled);
    // Never more than the debt: nothing is banked on a stream at its quota.
    assert!(s.lock().tokens[1].abs() < 1e-9, "{:?}", s.lock().tokens);
}
