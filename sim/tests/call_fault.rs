//! gRFC A33 fault injection: an abort of 25 % of RPCs fails about a quarter of them with the
//! configured status, before any attempt is sent.

use std::time::Duration;

use skiff_core::plane::FailureSource;
use skiff_sim::MeshWorld;
use skiff_sim::build::Service;

#[test]
fn abort_ratio_matches_the_configured_percentage() {
    let mut w = MeshWorld::new(51);
    w.add_backends(&["10.0.0.1:7000"]);
    w.server.set(
        Service::new("echo.default.svc.cluster.local", 7000, &["10.0.0.1:7000"])
            .with_fault_abort(8, 250_000)
            .pack(),
    );
    let ch = w.open_channel("xds:///echo.default.svc.cluster.local:7000");
    w.run_for(Duration::from_secs(1));
    // Batches of 400 stay under the default circuit breaker (1024 in flight).
    let mut calls = Vec::new();
    for _ in 0..10 {
        calls.extend((0..400).map(|_| w.start_call(ch, "/echo.Echo/Say", &[], None)));
        w.run_for(Duration::from_millis(100));
    }
    let mut aborted = 0;
    for c in &calls {
        match w.result(*c).expect("ended") {
            Ok(()) => assert_eq!(w.attempts_of(*c).len(), 1),
            Err(e) => {
                assert_eq!((e.code, e.source), (8, FailureSource::Fault));
                assert!(w.attempts_of(*c).is_empty(), "aborted before sending");
                aborted += 1;
            }
        }
    }
    // 25 % of 4000 = 1000; binomial sd ≈ 27.
    assert!((900..1100).contains(&aborted), "{aborted}");
}
