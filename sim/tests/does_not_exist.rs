//! gRFC A57: a requested resource that does not arrive within 15 s does not exist; LDS/CDS
//! resources absent from a SotW response do not exist at once.

use std::time::Duration;

use skiff_core::resource::snapshot::ListenerStatus;
use skiff_core::xds::snapshot::build_snapshot;
use skiff_core::xds::{Protocol, ResourceStatus, ResourceType, XdsEvent};
use skiff_sim::{World, build};

#[test]
fn missing_route_config_times_out_after_15s() {
    let mut w = World::new(6, Protocol::StateOfTheWorld);
    w.server
        .set([build::pack(&build::listener("l:80", "missing-routes"))]);
    w.client.watch(w.now(), ResourceType::Listener, "l:80");
    let start = w.now();
    w.run_for(Duration::from_secs(14));
    let e = w
        .client
        .entry(ResourceType::RouteConfiguration, "missing-routes")
        .unwrap();
    assert_eq!(e.status, ResourceStatus::Requested, "not yet at 14 s");
    w.run_for(Duration::from_secs(2));
    let e = w
        .client
        .entry(ResourceType::RouteConfiguration, "missing-routes")
        .unwrap();
    assert_eq!(e.status, ResourceStatus::DoesNotExist);
    let (at, _) = w
        .events
        .iter()
        .find(|(_, e)| {
            matches!(
                e,
                XdsEvent::DoesNotExist {
                    ty: ResourceType::RouteConfiguration,
                    ..
                }
            )
        })
        .unwrap();
    let waited = at.saturating_duration_since(start);
    assert!(
        waited >= Duration::from_secs(15) && waited < Duration::from_millis(15_100),
        "{waited:?}"
    );
}

#[test]
fn stalled_server_listener_does_not_exist_after_15s() {
    let mut w = World::new(7, Protocol::StateOfTheWorld);
    w.server.stalled = true;
    w.client.watch(w.now(), ResourceType::Listener, "quiet:80");
    w.run_for(Duration::from_secs(16));
    assert_eq!(
        w.client
            .entry(ResourceType::Listener, "quiet:80")
            .unwrap()
            .status,
        ResourceStatus::DoesNotExist
    );
    let snap = build_snapshot(&w.client, ["quiet:80"], None);
    assert_eq!(
        snap.status.get("quiet:80"),
        Some(&ListenerStatus::DoesNotExist)
    );
}

#[test]
fn listener_absent_from_sotw_response_does_not_exist_immediately() {
    let mut w = World::new(8, Protocol::StateOfTheWorld);
    w.server
        .set([build::pack(&build::listener("other:80", "r"))]);
    w.client.watch(w.now(), ResourceType::Listener, "nope:80");
    w.run_for(Duration::from_millis(100));
    assert_eq!(
        w.client
            .entry(ResourceType::Listener, "nope:80")
            .unwrap()
            .status,
        ResourceStatus::DoesNotExist
    );
}

#[test]
fn timer_stops_while_the_stream_is_down_and_restarts_on_the_new_stream() {
    let mut w = World::new(9, Protocol::StateOfTheWorld);
    w.server.stalled = true;
    w.client
        .watch(w.now(), ResourceType::RouteConfiguration, "r");
    w.run_for(Duration::from_secs(10));
    // The stream breaks at 10 s; the server refuses connections for 20 s.
    w.server.refuse = true;
    w.server.reset_stream("restart");
    w.run_for(Duration::from_secs(20));
    assert_eq!(
        w.client
            .entry(ResourceType::RouteConfiguration, "r")
            .unwrap()
            .status,
        ResourceStatus::Requested,
        "no timer runs without a live stream"
    );
    w.server.refuse = false;
    w.run_for(Duration::from_secs(60));
    assert_eq!(
        w.client
            .entry(ResourceType::RouteConfiguration, "r")
            .unwrap()
            .status,
        ResourceStatus::DoesNotExist
    );
}
