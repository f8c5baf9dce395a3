//! gRFC A50 outlier detection: an endpoint failing most RPCs is ejected at the next interval,
//! gets no traffic while ejected, and returns after base_ejection_time.

use std::time::Duration;

use skiff_core::plane::PlaneEvent;
use skiff_sim::build::Service;
use skiff_sim::{Behavior, MeshWorld};

#[test]
fn failing_endpoint_is_ejected_and_returns() {
    let mut w = MeshWorld::new(71);
    let addrs = ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"];
    w.add_backends(&addrs);
    w.backend("10.0.0.3:7000").behavior = Behavior::Fail(14);
    w.server.set(
        Service::new("echo.default.svc.cluster.local", 7000, &addrs)
            .with_failure_percentage_ejection(Duration::from_secs(10), 50)
            .pack(),
    );
    let ch = w.open_channel("xds:///echo.default.svc.cluster.local:7000");
    w.run_for(Duration::from_secs(1));
    // 9 s of traffic: 10 RPCs per second.
    for _ in 0..90 {
        w.start_call(ch, "/echo.Echo/Say", &[], None);
        w.run_for(Duration::from_millis(100));
    }
    w.run_for(Duration::from_secs(2));
    let ejected_at = w
        .events
        .iter()
        .find_map(|(t, e)| match e {
            PlaneEvent::Ejected { address, .. } if address.to_string() == "10.0.0.3:7000" => {
                Some(*t)
            }
            _ => None,
        })
        .expect("10.0.0.3 ejected");
    // While ejected, it gets nothing (the world also checks this on every attempt).
    let before = w.attempts.len();
    for _ in 0..30 {
        w.start_call(ch, "/echo.Echo/Say", &[], None);
        w.run_for(Duration::from_millis(100));
    }
    assert!(
        w.attempts[before..]
            .iter()
            .all(|a| a.address.to_string() != "10.0.0.3:7000")
    );
    // Back after base_ejection_time (30 s), at an interval boundary.
    w.backend("10.0.0.3:7000").behavior = Behavior::Ok;
    w.run_for(Duration::from_secs(40));
    let back_at = w
        .events
        .iter()
        .find_map(|(t, e)| match e {
            PlaneEvent::Unejected { address, .. } if address.to_string() == "10.0.0.3:7000" => {
                Some(*t)
            }
            _ => None,
        })
        .expect("returned");
    let out_for = back_at.saturating_duration_since(ejected_at);
    assert!(
        out_for >= Duration::from_secs(30) && out_for <= Duration::from_secs(40),
        "{out_for:?}"
    );
    let before = w.attempts.len();
    for _ in 0..30 {
        w.start_call(ch, "/echo.Echo/Say", &[], None);
    }
    w.run_for(Duration::from_secs(1));
    assert!(
        w.attempts[before..]
            .iter()
            .any(|a| a.address.to_string() == "10.0.0.3:7000"),
        "traffic returns"
    );
}
