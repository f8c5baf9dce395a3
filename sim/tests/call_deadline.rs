//! gRFC A31 deadlines: the route's max_stream_duration caps the application's timeout; expiry
//! ends the call with DEADLINE_EXCEEDED and says where the deadline came from.

use std::time::Duration;

use skiff_core::plane::FailureSource;
use skiff_sim::build::Service;
use skiff_sim::{Behavior, MeshWorld};

const TARGET: &str = "xds:///echo.default.svc.cluster.local:7000";

fn world(seed: u64, msd: Option<Duration>) -> (MeshWorld, skiff_core::ids::ChannelId) {
    let mut w = MeshWorld::new(seed);
    w.add_backends(&["10.0.0.1:7000"]);
    w.backend("10.0.0.1:7000").behavior = Behavior::Hang;
    let mut s = Service::new("echo.default.svc.cluster.local", 7000, &["10.0.0.1:7000"]);
    if let Some(d) = msd {
        s = s.with_max_stream_duration(d);
    }
    w.server.set(s.pack());
    let ch = w.open_channel(TARGET);
    w.run_for(Duration::from_secs(1));
    (w, ch)
}

#[test]
fn route_max_stream_duration_wins_when_shorter() {
    let (mut w, ch) = world(41, Some(Duration::from_millis(500)));
    let start = w.now();
    let c = w.start_call(ch, "/echo.Echo/Slow", &[], Some(Duration::from_secs(5)));
    w.run_for(Duration::from_secs(6));
    let (at, r) = w.results.get(&c).unwrap().clone();
    let e = r.unwrap_err();
    assert_eq!((e.code, e.source), (4, FailureSource::Deadline));
    assert!(e.message.contains("max_stream_duration"), "{e}");
    assert_eq!(
        at.saturating_duration_since(start),
        Duration::from_millis(500)
    );
}

#[test]
fn application_deadline_wins_when_shorter() {
    let (mut w, ch) = world(42, Some(Duration::from_secs(10)));
    let start = w.now();
    let c = w.start_call(ch, "/echo.Echo/Slow", &[], Some(Duration::from_millis(200)));
    w.run_for(Duration::from_secs(1));
    let (at, r) = w.results.get(&c).unwrap().clone();
    let e = r.unwrap_err();
    assert_eq!(e.code, 4);
    assert!(!e.message.contains("max_stream_duration"));
    assert_eq!(
        at.saturating_duration_since(start),
        Duration::from_millis(200)
    );
}

#[test]
fn no_deadline_anywhere_means_none() {
    let (mut w, ch) = world(43, None);
    let c = w.start_call(ch, "/echo.Echo/Slow", &[], None);
    w.run_for(Duration::from_secs(120));
    assert!(w.result(c).is_none(), "still running");
    w.mesh.cancel_call(w.now(), c);
    w.drain();
    assert_eq!(
        w.result(c).unwrap().clone().unwrap_err().source,
        FailureSource::Cancelled
    );
}
