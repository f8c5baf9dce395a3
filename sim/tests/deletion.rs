//! Resource deletion, with and without the `ignore_resource_deletion` server feature (gRFC A53).

use std::time::Duration;

use skiff_core::xds::{Protocol, ResourceStatus, ResourceType, XdsEvent};
use skiff_sim::{World, build};

#[test]
fn deleted_cluster_does_not_exist() {
    let mut w = World::new(10, Protocol::StateOfTheWorld);
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));
    assert!(w.client.resource(ResourceType::Cluster, "c").is_some());
    w.server.delete(ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));
    let e = w.client.entry(ResourceType::Cluster, "c").unwrap();
    assert_eq!(e.status, ResourceStatus::DoesNotExist);
    assert!(e.value.is_none());
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        XdsEvent::DoesNotExist {
            ty: ResourceType::Cluster,
            ..
        }
    )));
    // Its endpoints are no longer wanted.
    assert_eq!(
        w.client
            .subscribed(ResourceType::ClusterLoadAssignment)
            .count(),
        0
    );
}

#[test]
fn ignore_resource_deletion_keeps_serving() {
    let mut w = World::with_config(11, Protocol::StateOfTheWorld, |c| {
        c.ignore_resource_deletion = true
    });
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));
    w.server.delete(ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));
    let e = w.client.entry(ResourceType::Cluster, "c").unwrap();
    assert!(e.value.is_some(), "kept");
    assert!(e.deletion_ignored);
    assert_eq!(e.status, ResourceStatus::Acked);
    assert!(
        w.events
            .iter()
            .any(|(_, e)| matches!(e, XdsEvent::DeletionIgnored { .. }))
    );
    assert!(
        w.client
            .config_dump()
            .iter()
            .any(|d| d.name == "c" && d.deletion_ignored)
    );
    // When it comes back, the flag clears.
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.run_for(Duration::from_secs(1));
    assert!(
        !w.client
            .entry(ResourceType::Cluster, "c")
            .unwrap()
            .deletion_ignored
    );
}
