//! Transparent retry: an attempt refused by the server's transport (GOAWAY, REFUSED_STREAM)
//! never reached the application, so it is re-picked at once without using a retry.

use std::time::Duration;

use skiff_sim::build::Service;
use skiff_sim::{Behavior, MeshWorld};

#[test]
fn refused_streams_are_retried_transparently() {
    let mut w = MeshWorld::new(81);
    w.add_backends(&["10.0.0.1:7000", "10.0.0.2:7000"]);
    w.backend("10.0.0.1:7000").behavior = Behavior::Refuse;
    // No retry policy at all: only transparent retries can save these calls.
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
    let calls: Vec<_> = (0..20)
        .map(|_| w.start_call(ch, "/echo.Echo/Say", &[], None))
        .collect();
    w.run_for(Duration::from_secs(1));
    let mut transparent = 0;
    for c in calls {
        assert_eq!(w.result(c), Some(&Ok(())), "no failed RPCs");
        let a = w.attempts_of(c);
        if a.len() > 1 {
            transparent += 1;
            assert_eq!(a[0].address.to_string(), "10.0.0.1:7000");
            // Immediately: no backoff.
            assert_eq!(a[1].at, w.attempts_of(c)[0].at + Duration::from_millis(2));
        }
        assert_eq!(a.last().unwrap().address.to_string(), "10.0.0.2:7000");
    }
    assert!(transparent >= 5, "{transparent}");
}
