//! The LDS → RDS → CDS → EDS cascade from one watched listener, and the ACKs along the way.

use std::time::Duration;

use skiff_core::resource::snapshot::ListenerStatus;
use skiff_core::xds::snapshot::build_snapshot;
use skiff_core::xds::{Protocol, ResourceStatus, ResourceType};
use skiff_sim::{World, build};

const HOST: &str = "echo.default.svc.cluster.local";
const LISTENER: &str = "echo.default.svc.cluster.local:7000";
const CLUSTER: &str = "outbound|7000||echo.default.svc.cluster.local";

#[test]
fn one_watch_fetches_the_whole_tree_and_acks_each_response() {
    let mut w = World::new(1, Protocol::StateOfTheWorld);
    w.server.set(build::service(
        HOST,
        7000,
        &["10.0.0.1:7000", "10.0.0.2:7000"],
    ));
    w.client.watch(w.now(), ResourceType::Listener, LISTENER);
    w.run_for(Duration::from_secs(1));

    for (ty, name) in [
        (ResourceType::Listener, LISTENER),
        (ResourceType::RouteConfiguration, CLUSTER),
        (ResourceType::Cluster, CLUSTER),
        (ResourceType::ClusterLoadAssignment, CLUSTER),
    ] {
        let e = w
            .client
            .entry(ty, name)
            .unwrap_or_else(|| panic!("{ty} {name} cached"));
        assert_eq!(e.status, ResourceStatus::Acked, "{ty} {name}");
        assert_eq!(e.version, "1");
        assert!(e.value.is_some());
        assert_eq!(w.client.version_info(ty), "1", "{ty} acked version");
    }

    // One ADS stream carried everything; each type was requested, then ACKed once with the
    // response's nonce and version.
    let streams: std::collections::BTreeSet<_> = w.requests.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(streams.len(), 1);
    for ty in ResourceType::ALL {
        let reqs: Vec<_> = w
            .requests
            .iter()
            .filter(|(_, _, r)| r.type_url == ty.type_url())
            .map(|(_, _, r)| r.clone())
            .collect();
        assert_eq!(reqs.len(), 2, "{ty}: subscribe then ACK: {reqs:#?}");
        assert_eq!(reqs[0].response_nonce, "");
        assert_eq!(reqs[0].version_info, "");
        assert!(!reqs[1].response_nonce.is_empty());
        assert_eq!(reqs[1].version_info, "1");
        assert!(reqs[1].error_detail.is_none());
    }
    // The node goes out exactly once per stream, on the first request.
    let with_node = w
        .requests
        .iter()
        .filter(|(_, _, r)| r.node.is_some())
        .count();
    assert_eq!(with_node, 1);
    assert!(w.requests[0].2.node.is_some());

    let snap = build_snapshot(&w.client, [LISTENER], None);
    assert_eq!(snap.status.get(LISTENER), Some(&ListenerStatus::Ready));
    assert!(snap.clusters.contains_key(CLUSTER));
    let eps = snap.endpoints.get(CLUSTER).expect("endpoints in snapshot");
    assert_eq!(eps.localities[0].endpoints.len(), 2);
}

#[test]
fn snapshot_waits_for_the_whole_tree() {
    let mut w = World::new(2, Protocol::StateOfTheWorld);
    // Everything but the endpoints: the listener is not ready yet (gRFC A74).
    let mut res = build::service(HOST, 7000, &["10.0.0.1:7000"]);
    let eds = res.pop().unwrap();
    w.server.set(res);
    w.client.watch(w.now(), ResourceType::Listener, LISTENER);
    w.run_for(Duration::from_secs(1));
    let snap = build_snapshot(&w.client, [LISTENER], None);
    assert_eq!(snap.status.get(LISTENER), Some(&ListenerStatus::Pending));
    assert!(snap.clusters.is_empty(), "no partial view is published");

    w.server.set([eds]);
    w.run_for(Duration::from_secs(1));
    let snap = build_snapshot(&w.client, [LISTENER], Some(&snap));
    assert_eq!(snap.status.get(LISTENER), Some(&ListenerStatus::Ready));
    assert_eq!(snap.generation, 2);
}
