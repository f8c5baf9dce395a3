//! gRFC A44 retries: a retryable failure is retried on another endpoint after backoff; never
//! after the call is committed; retry throttling (A6) stops retries when the budget is spent.

use std::time::Duration;

use skiff_core::plane::FailureSource;
use skiff_core::resilience::throttle::ThrottleConfig;
use skiff_sim::build::Service;
use skiff_sim::{Behavior, MeshWorld};

const HOST: &str = "echo.default.svc.cluster.local";
const TARGET: &str = "xds:///echo.default.svc.cluster.local:7000";

fn world(seed: u64, behaviors: [Behavior; 2], retries: u32) -> MeshWorld {
    let mut w = MeshWorld::new(seed);
    w.add_backends(&["10.0.0.1:7000", "10.0.0.2:7000"]);
    w.backend("10.0.0.1:7000").behavior = behaviors[0];
    w.backend("10.0.0.2:7000").behavior = behaviors[1];
    w.server.set(
        Service::new(HOST, 7000, &["10.0.0.1:7000", "10.0.0.2:7000"])
            .with_retry("unavailable,cancelled", retries)
            .pack(),
    );
    w
}

#[test]
fn retry_succeeds_on_the_second_endpoint() {
    let mut w = world(31, [Behavior::Fail(14), Behavior::Ok], 2);
    let ch = w.open_channel(TARGET);
    w.run_for(Duration::from_secs(1));
    // One call at a time, so round robin alternates between the two endpoints within a call.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let c = w.start_call(ch, "/echo.Echo/Say", &[], None);
            w.run_for(Duration::from_millis(200));
            c
        })
        .collect();
    let mut retried = 0;
    for c in calls {
        assert_eq!(w.result(c), Some(&Ok(())), "every call succeeds");
        let attempts = w.attempts_of(c);
        let last = attempts.last().unwrap();
        assert_eq!(last.address.to_string(), "10.0.0.2:7000");
        if attempts.len() == 2 {
            retried += 1;
            assert_eq!(attempts[0].address.to_string(), "10.0.0.1:7000");
            // A44 backoff: uniform in [0, 25 ms) for the first retry.
            let gap = attempts[1].at.saturating_duration_since(attempts[0].at);
            assert!(
                gap < Duration::from_millis(25) + Duration::from_millis(3),
                "{gap:?}"
            );
        }
    }
    assert!(
        retried >= 3,
        "some calls started on the failing endpoint: {retried}"
    );
}

#[test]
fn non_retryable_codes_and_exhaustion() {
    let mut w = world(32, [Behavior::Fail(13), Behavior::Fail(13)], 3);
    let ch = w.open_channel(TARGET);
    w.run_for(Duration::from_secs(1));
    let c = w.start_call(ch, "/echo.Echo/Say", &[], None);
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.attempts_of(c).len(), 1, "INTERNAL is not in retry_on");
    let e = w.result(c).unwrap().clone().unwrap_err();
    assert_eq!((e.code, e.source), (13, FailureSource::Application));

    let mut w = world(33, [Behavior::Fail(14), Behavior::Fail(14)], 3);
    let ch = w.open_channel(TARGET);
    w.run_for(Duration::from_secs(1));
    let c = w.start_call(ch, "/echo.Echo/Say", &[], None);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.attempts_of(c).len(), 4, "num_retries 3 = 4 attempts");
    assert_eq!(w.result(c).unwrap().clone().unwrap_err().code, 14);
}

#[test]
fn no_retry_after_commit() {
    let mut w = world(
        34,
        [Behavior::FailCommitted(14), Behavior::FailCommitted(14)],
        3,
    );
    let ch = w.open_channel(TARGET);
    w.run_for(Duration::from_secs(1));
    let c = w.start_call(ch, "/echo.Echo/Say", &[], None);
    w.run_for(Duration::from_secs(1));
    assert_eq!(
        w.attempts_of(c).len(),
        1,
        "headers were received: committed"
    );
    assert_eq!(w.result(c).unwrap().clone().unwrap_err().code, 14);
}

#[test]
fn server_pushback_sets_the_delay_or_stops_retries() {
    let mut w = world(
        35,
        [
            Behavior::FailPushback(14, 300),
            Behavior::FailPushback(14, 300),
        ],
        1,
    );
    let ch = w.open_channel(TARGET);
    w.run_for(Duration::from_secs(1));
    let c = w.start_call(ch, "/echo.Echo/Say", &[], None);
    w.run_for(Duration::from_secs(2));
    let a = w.attempts_of(c);
    assert_eq!(a.len(), 2);
    let gap = a[1].at.saturating_duration_since(a[0].at);
    // 300 ms pushback after the first attempt's 2 ms latency.
    assert_eq!(gap, Duration::from_millis(302));
}

#[test]
fn retry_budget_exhaustion_stops_retries() {
    let mut w = MeshWorld::with_config(36, |c| {
        c.retry_throttle = Some(ThrottleConfig {
            max_tokens: 4,
            token_ratio: 0.1,
        })
    });
    w.add_backends(&["10.0.0.1:7000"]);
    w.backend("10.0.0.1:7000").behavior = Behavior::Fail(14);
    w.server.set(
        Service::new(HOST, 7000, &["10.0.0.1:7000"])
            .with_retry("unavailable", 4)
            .pack(),
    );
    let ch = w.open_channel(TARGET);
    w.run_for(Duration::from_secs(1));
    let first = w.start_call(ch, "/echo.Echo/Say", &[], None);
    w.run_for(Duration::from_secs(2));
    // Tokens 4 → 3 (retry allowed, 3 > 2) → 2 (not > 2): two attempts, then throttled.
    assert_eq!(w.attempts_of(first).len(), 2);
    let e = w.result(first).unwrap().clone().unwrap_err();
    assert_eq!(e.source, FailureSource::RetryBudget);
    let second = w.start_call(ch, "/echo.Echo/Say", &[], None);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.attempts_of(second).len(), 1, "no budget left: no retries");
}
