//! Responses that cross ACKs in flight: the client always echoes the nonce of the last response
//! it received (the world checks that on every request); the server ignores stale ones; the
//! client converges on the newest version.

use std::time::Duration;

use skiff_core::xds::{Protocol, ResourceType};
use skiff_sim::{World, build};

#[test]
fn back_to_back_pushes_converge_on_the_newest_version() {
    let mut w = World::new(5, Protocol::StateOfTheWorld);
    w.latency = Duration::from_millis(20);
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));

    // Two pushes 5 ms apart: the ACK of the first is in flight when the second is sent, so it
    // reaches the server with a stale nonce.
    let mut c = build::eds_cluster("c");
    c.eds_cluster_config.as_mut().unwrap().service_name = "v2".into();
    w.server.set([build::pack(&c)]);
    w.run_for(Duration::from_millis(5));
    c.eds_cluster_config.as_mut().unwrap().service_name = "v3".into();
    w.server.set([build::pack(&c)]);
    w.run_for(Duration::from_secs(1));

    assert_eq!(w.client.version_info(ResourceType::Cluster), "3");
    let acks: Vec<_> = w
        .server
        .seen
        .iter()
        .filter(|r| r.type_url == ResourceType::Cluster.type_url() && !r.nonce.is_empty())
        .collect();
    let stale = acks.iter().filter(|r| r.version_info == "2").count();
    assert_eq!(
        stale, 1,
        "the ACK of version 2 crossed the push of version 3"
    );
    assert_eq!(acks.last().unwrap().version_info, "3");
    assert!(
        w.client
            .subscribed(ResourceType::ClusterLoadAssignment)
            .any(|n| n == "v3")
    );
    assert!(
        !w.client
            .subscribed(ResourceType::ClusterLoadAssignment)
            .any(|n| n == "v2")
    );
}
