//! Incremental (Delta) xDS: subscribe, unsubscribe, removal, resume with initial versions.

use std::time::Duration;

use skiff_core::resource::snapshot::ListenerStatus;
use skiff_core::xds::snapshot::build_snapshot;
use skiff_core::xds::{Protocol, ResourceStatus, ResourceType};
use skiff_sim::{World, build};

const LISTENER: &str = "echo.default.svc.cluster.local:7000";

#[test]
fn delta_cascade_subscribe_unsubscribe_and_removal() {
    let mut w = World::new(14, Protocol::Delta);
    w.server.set(build::service(
        "echo.default.svc.cluster.local",
        7000,
        &["10.0.0.1:7000"],
    ));
    w.client.watch(w.now(), ResourceType::Listener, LISTENER);
    w.run_for(Duration::from_secs(1));
    let snap = build_snapshot(&w.client, [LISTENER], None);
    assert_eq!(snap.status.get(LISTENER), Some(&ListenerStatus::Ready));
    // Every type subscribed once by name.
    for ty in ResourceType::ALL {
        let subs: Vec<_> = w
            .server
            .seen
            .iter()
            .filter(|r| r.type_url == ty.type_url() && !r.names.is_empty())
            .collect();
        assert_eq!(subs.len(), 1, "{ty}");
    }

    // Watch a second cluster directly, then drop it: subscribe and unsubscribe go out.
    w.server.set([build::pack(&build::eds_cluster("extra"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "extra");
    w.run_for(Duration::from_secs(1));
    assert_eq!(
        w.client
            .entry(ResourceType::Cluster, "extra")
            .unwrap()
            .status,
        ResourceStatus::Acked
    );
    w.client.unwatch(w.now(), ResourceType::Cluster, "extra");
    w.run_for(Duration::from_secs(1));
    assert!(w.client.entry(ResourceType::Cluster, "extra").is_none());
    assert!(
        w.server
            .seen
            .iter()
            .any(|r| r.unsubscribe == vec!["extra".to_string()])
    );
    assert!(
        w.server
            .seen
            .iter()
            .any(|r| r.unsubscribe == vec!["extra".to_string()]
                && r.type_url == ResourceType::Cluster.type_url())
    );
    // "extra"'s endpoints were unsubscribed too.
    assert!(
        w.server
            .seen
            .iter()
            .any(|r| r.unsubscribe == vec!["extra".to_string()]
                && r.type_url == ResourceType::ClusterLoadAssignment.type_url())
    );

    // The server removes the endpoints: explicit removal.
    w.server.delete(
        ResourceType::ClusterLoadAssignment,
        "outbound|7000||echo.default.svc.cluster.local",
    );
    w.run_for(Duration::from_secs(1));
    let e = w
        .client
        .entry(
            ResourceType::ClusterLoadAssignment,
            "outbound|7000||echo.default.svc.cluster.local",
        )
        .unwrap();
    assert_eq!(e.status, ResourceStatus::DoesNotExist);
}

#[test]
fn delta_resume_sends_initial_resource_versions() {
    let mut w = World::new(15, Protocol::Delta);
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));
    let before = w.server.seen.len();
    w.server.reset_stream("restart");
    w.run_for(Duration::from_secs(5));
    let resumed = w.server.seen[before..]
        .iter()
        .find(|r| r.type_url == ResourceType::Cluster.type_url())
        .expect("resubscribed");
    assert_eq!(resumed.names, vec!["c".to_string()]);
    assert_eq!(resumed.initial_versions, vec!["c".to_string()]);
    // The server knew the client had version 1: nothing was resent for "c".
    assert_eq!(
        w.client.entry(ResourceType::Cluster, "c").unwrap().version,
        "1"
    );
}
