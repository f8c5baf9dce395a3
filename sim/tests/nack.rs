//! gRFC A46: a response with an invalid resource is NACKed (nonce of the response, version of
//! the last accepted response, every error listed) while its valid resources are applied.

use std::time::Duration;

use skiff_core::xds::{Protocol, ResourceStatus, ResourceType, XdsEvent};
use skiff_sim::{World, build};

#[test]
fn bad_cluster_is_nacked_and_good_ones_applied() {
    let mut w = World::new(3, Protocol::StateOfTheWorld);
    w.server.set([build::pack(&build::eds_cluster("good"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "good");
    w.client.watch(w.now(), ResourceType::Cluster, "bad");
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.client.version_info(ResourceType::Cluster), "1");

    // Version 2: "good" changes, "bad" is invalid.
    let mut good = build::eds_cluster("good");
    good.eds_cluster_config.as_mut().unwrap().service_name = "good-v2".into();
    w.server.set([
        build::pack(&good),
        build::pack(&build::invalid_cluster("bad")),
    ]);
    let t = w.now();
    w.run_for(Duration::from_secs(1));

    let nack = w
        .requests
        .iter()
        .filter(|(at, _, r)| *at >= t && r.type_url == ResourceType::Cluster.type_url())
        .map(|(_, _, r)| r.clone())
        .find(|r| r.error_detail.is_some())
        .expect("a NACK was sent");
    assert_eq!(
        nack.version_info, "1",
        "NACK carries the last accepted version"
    );
    assert_eq!(
        nack.response_nonce,
        w.server.last_nonce(ResourceType::Cluster).unwrap()
    );
    let msg = &nack.error_detail.as_ref().unwrap().message;
    assert!(msg.contains("CDS bad"), "{msg}");
    assert!(!msg.contains("CDS good"), "{msg}");

    // The valid resource in the same response was applied...
    let good = w.client.entry(ResourceType::Cluster, "good").unwrap();
    assert_eq!(good.status, ResourceStatus::Acked);
    assert_eq!(good.version, "2");
    // ... and EDS followed it to the new service name.
    assert!(
        w.client
            .subscribed(ResourceType::ClusterLoadAssignment)
            .any(|n| n == "good-v2")
    );
    let bad = w.client.entry(ResourceType::Cluster, "bad").unwrap();
    assert_eq!(bad.status, ResourceStatus::Nacked);
    assert!(
        bad.rejection
            .as_ref()
            .unwrap()
            .error
            .contains("cluster_discovery_type")
            || bad.rejection.is_some()
    );
    assert_eq!(w.client.version_info(ResourceType::Cluster), "1");
    assert!(w.events_since(t).any(|e| matches!(
        e,
        XdsEvent::Nacked {
            ty: ResourceType::Cluster,
            ..
        }
    )));

    // The control plane fixes it: ACK, and the type's version moves on.
    w.server.set([build::pack(&build::eds_cluster("bad"))]);
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.client.version_info(ResourceType::Cluster), "3");
    let bad = w.client.entry(ResourceType::Cluster, "bad").unwrap();
    assert_eq!(bad.status, ResourceStatus::Acked);
    assert!(bad.rejection.is_none());
}

#[test]
fn previous_good_value_keeps_serving_after_a_nack() {
    let mut w = World::new(4, Protocol::StateOfTheWorld);
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));
    w.server.set([build::pack(&build::invalid_cluster("c"))]);
    w.run_for(Duration::from_secs(1));
    let e = w.client.entry(ResourceType::Cluster, "c").unwrap();
    assert_eq!(e.status, ResourceStatus::Nacked);
    assert_eq!(e.version, "1", "still serving version 1");
    assert!(e.value.is_some());
    let dump = w.client.config_dump();
    let d = dump.iter().find(|d| d.name == "c").unwrap();
    assert_eq!(d.error.as_ref().unwrap().0, "2");
}
