//! gRFC A32 circuit breaking: with max_requests = 3, the fourth concurrent RPC fails with
//! UNAVAILABLE at pick time; once RPCs finish, new ones go through again.

use std::time::Duration;

use skiff_core::plane::FailureSource;
use skiff_sim::MeshWorld;
use skiff_sim::build::Service;

#[test]
fn trips_at_max_requests_and_recovers() {
    let mut w = MeshWorld::new(61);
    w.add_backends(&["10.0.0.1:7000", "10.0.0.2:7000"]);
    w.backend("10.0.0.1:7000").latency = Duration::from_millis(100);
    w.backend("10.0.0.2:7000").latency = Duration::from_millis(100);
    w.server.set(
        Service::new(
            "echo.default.svc.cluster.local",
            7000,
            &["10.0.0.1:7000", "10.0.0.2:7000"],
        )
        .with_max_requests(3)
        .pack(),
    );
    let ch = w.open_channel("xds:///echo.default.svc.cluster.local:7000");
    w.run_for(Duration::from_secs(1));
    let calls: Vec<_> = (0..5)
        .map(|_| w.start_call(ch, "/echo.Echo/Say", &[], None))
        .collect();
    // The 4th and 5th fail at once.
    for c in &calls[3..] {
        let e = w.result(*c).expect("failed at pick").clone().unwrap_err();
        assert_eq!((e.code, e.source), (14, FailureSource::CircuitBreaker));
    }
    let cluster = "outbound|7000||echo.default.svc.cluster.local";
    assert_eq!(w.mesh.cluster(cluster).unwrap().breaker.in_flight(), 3);
    w.run_for(Duration::from_millis(200));
    for c in &calls[..3] {
        assert_eq!(w.result(*c), Some(&Ok(())));
    }
    assert_eq!(w.mesh.cluster(cluster).unwrap().breaker.in_flight(), 0);
    let again = w.start_call(ch, "/echo.Echo/Say", &[], None);
    w.run_for(Duration::from_millis(200));
    assert_eq!(w.result(again), Some(&Ok(())), "recovered");
    assert_eq!(
        w.mesh.cluster(cluster).unwrap().load.circuit_breaker_drops,
        2
    );
}
