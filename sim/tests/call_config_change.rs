//! Configuration changes while RPCs are in flight: in-flight attempts finish where they were
//! sent, new RPCs follow the new endpoints, and a removed endpoint gets nothing more (the world
//! checks every attempt against the current assignment).

use std::time::Duration;

use skiff_sim::MeshWorld;
use skiff_sim::build::Service;

#[test]
fn endpoints_change_mid_call() {
    let mut w = MeshWorld::new(91);
    w.add_backends(&["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]);
    w.backend("10.0.0.1:7000").latency = Duration::from_millis(500);
    w.server.set(
        Service::new(
            "echo.default.svc.cluster.local",
            7000,
            &["10.0.0.1:7000", "10.0.0.2:7000"],
        )
        .pack(),
    );
    let ch = w.open_channel("xds:///echo.default.svc.cluster.local:7000");
    w.run_for(Duration::from_secs(1));
    let calls: Vec<_> = (0..4)
        .map(|_| w.start_call(ch, "/echo.Echo/Say", &[], None))
        .collect();
    // Mid-call: 10.0.0.1 leaves, 10.0.0.3 joins.
    w.run_for(Duration::from_millis(100));
    w.server.set(
        Service::new(
            "echo.default.svc.cluster.local",
            7000,
            &["10.0.0.2:7000", "10.0.0.3:7000"],
        )
        .pack(),
    );
    w.run_for(Duration::from_secs(1));
    for c in &calls {
        assert_eq!(w.result(*c), Some(&Ok(())), "in-flight calls finish");
    }
    let before = w.attempts.len();
    let later: Vec<_> = (0..10)
        .map(|_| w.start_call(ch, "/echo.Echo/Say", &[], None))
        .collect();
    w.run_for(Duration::from_secs(1));
    for c in later {
        assert_eq!(w.result(c), Some(&Ok(())));
    }
    let used: std::collections::BTreeSet<String> = w.attempts[before..]
        .iter()
        .map(|a| a.address.to_string())
        .collect();
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec!["10.0.0.2:7000".to_string(), "10.0.0.3:7000".to_string()]
    );
}
