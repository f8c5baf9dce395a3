//! The server side of ADS — skiff's embedded control plane — against skiff's real xDS client,
//! over the simulated link, in SotW and in Delta: the whole tree on one watch, pushes on config
//! change, deletions, a control-plane restart with the client's cache intact, and interface
//! listeners appearing when a provider announces itself in its node metadata (DESIGN.md §7).

use std::collections::BTreeSet;
use std::time::Duration;

use skiff_core::control::ControlPlane;
use skiff_core::control::ads::AdsProtocol;
use skiff_core::control::config::{self, MeshConfig};
use skiff_core::control::interfaces::INTERFACES_METADATA_KEY;
use skiff_core::resource::snapshot::ListenerStatus;
use skiff_core::time::Instant;
use skiff_core::xds::snapshot::build_snapshot;
use skiff_core::xds::{Protocol, ResourceStatus, ResourceType};
use skiff_sim::{PlaneServer, World};

const LISTENER: &str = "echo.default.svc.cluster.local:7000";
const CLUSTER: &str = "outbound|7000||echo.default.svc.cluster.local";
const V1: &str = "outbound|7000|v1|echo.default.svc.cluster.local";
const V2: &str = "outbound|7000|v2|echo.default.svc.cluster.local";

fn mesh(endpoints: &[&str], canary_weight: Option<u32>) -> MeshConfig {
    let mut text = String::from(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{number: 7000, name: grpc}]
  endpoints:
",
    );
    for (i, ep) in endpoints.iter().enumerate() {
        let version = if i == 0 { "v2" } else { "v1" };
        text.push_str(&format!(
            "  - {{address: {ep}, labels: {{version: {version}}}}}\n"
        ));
    }
    text.push_str(
        "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
",
    );
    if let Some(w) = canary_weight {
        text.push_str(&format!(
            "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo.default.svc.cluster.local]
  http:
  - route:
    - {{destination: {{host: echo.default.svc.cluster.local, subset: v1}}, weight: {}}}
    - {{destination: {{host: echo.default.svc.cluster.local, subset: v2}}, weight: {w}}}
",
            100 - w
        ));
    }
    config::parse_str("mesh.yaml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn world(seed: u64, protocol: Protocol, config: MeshConfig) -> World<PlaneServer> {
    let plane = ControlPlane::new(Instant::ZERO, config).expect("valid config");
    World::with_server(seed, protocol, |_| {}, PlaneServer::new(plane, protocol))
}

fn both() -> [Protocol; 2] {
    [Protocol::StateOfTheWorld, Protocol::Delta]
}

/// The endpoint addresses the client holds for an EDS resource under `LISTENER`.
fn endpoints(w: &World<PlaneServer>, eds: &str) -> BTreeSet<String> {
    endpoints_under(w, LISTENER, eds)
}

/// The endpoint addresses the client holds for an EDS resource under the listener `root`.
fn endpoints_under(w: &World<PlaneServer>, root: &str, eds: &str) -> BTreeSet<String> {
    let snap = build_snapshot(&w.client, [root], None);
    snap.endpoints
        .get(eds)
        .map(|e| {
            e.localities
                .iter()
                .flat_map(|l| l.endpoints.iter().map(|ep| ep.address.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn set(addrs: &[&str]) -> BTreeSet<String> {
    addrs.iter().map(|a| a.to_string()).collect()
}

/// Every type the client holds is ACKed, and the control plane recorded the ACKs (no NACK).
fn assert_all_acked(w: &World<PlaneServer>) {
    for ty in ResourceType::ALL {
        for (name, e) in w.client.entries(ty) {
            assert_eq!(e.status, ResourceStatus::Acked, "{ty} {name}");
        }
    }
    let dump = w.server.plane.ads().config_dump();
    let stream = dump.streams.last().expect("a stream");
    for t in &stream.types {
        assert!(t.nacked.is_none(), "{}: {:?}", t.type_url, t.nacked);
        let sent = t.last_sent.as_ref().map(|s| s.nonce.clone());
        let acked = t.acked.as_ref().map(|a| a.nonce.clone());
        assert_eq!(sent, acked, "{}: the last response was ACKed", t.type_url);
    }
}

#[test]
fn one_watch_gets_the_whole_tree_from_the_embedded_control_plane() {
    for protocol in both() {
        let mut w = world(1, protocol, mesh(&["10.0.0.1", "10.0.0.2"], Some(10)));
        w.client.watch(w.now(), ResourceType::Listener, LISTENER);
        w.run_for(Duration::from_secs(1));

        let snap = build_snapshot(&w.client, [LISTENER], None);
        assert_eq!(
            snap.status.get(LISTENER),
            Some(&ListenerStatus::Ready),
            "{protocol:?}"
        );
        // istiod's proxyless naming: route config and clusters `outbound|PORT|SUBSET|HOST`,
        // EDS service name = cluster name.
        for c in [V1, V2] {
            assert!(snap.clusters.contains_key(c), "{protocol:?}: {c}");
        }
        assert_eq!(endpoints(&w, V1), set(&["10.0.0.2:7000"]), "{protocol:?}");
        assert_eq!(endpoints(&w, V2), set(&["10.0.0.1:7000"]), "{protocol:?}");
        assert_all_acked(&w);

        let dump = w.server.plane.ads().config_dump();
        assert_eq!(dump.streams.len(), 1);
        let expected = match protocol {
            Protocol::StateOfTheWorld => AdsProtocol::Sotw,
            Protocol::Delta => AdsProtocol::Delta,
        };
        assert_eq!(dump.streams[0].protocol, expected);
        assert_eq!(
            dump.streams[0]
                .node
                .as_ref()
                .and_then(|n| n.generator.as_deref()),
            Some("grpc")
        );
    }
}

#[test]
fn config_changes_are_pushed_and_acked() {
    for protocol in both() {
        let mut w = world(2, protocol, mesh(&["10.0.0.1", "10.0.0.2"], Some(10)));
        w.client.watch(w.now(), ResourceType::Listener, LISTENER);
        w.run_for(Duration::from_secs(1));
        let route_before = w
            .client
            .entry(ResourceType::RouteConfiguration, CLUSTER)
            .map(|e| e.version.clone())
            .expect("route cached");

        // A new v1 endpoint: only the endpoints change.
        let now = w.now();
        w.server
            .plane
            .set_config(now, mesh(&["10.0.0.1", "10.0.0.2", "10.0.0.3"], Some(10)))
            .expect("valid");
        w.run_for(Duration::from_secs(1));
        assert_eq!(
            endpoints(&w, V1),
            set(&["10.0.0.2:7000", "10.0.0.3:7000"]),
            "{protocol:?}"
        );
        assert_eq!(
            w.client
                .entry(ResourceType::RouteConfiguration, CLUSTER)
                .map(|e| e.version.clone()),
            Some(route_before.clone()),
            "{protocol:?}: the route configuration did not change"
        );
        assert_all_acked(&w);

        // The canary goes 10 % -> 50 %: the route configuration changes.
        let now = w.now();
        w.server
            .plane
            .set_config(now, mesh(&["10.0.0.1", "10.0.0.2", "10.0.0.3"], Some(50)))
            .expect("valid");
        w.run_for(Duration::from_secs(1));
        let rds = w
            .client
            .entry(ResourceType::RouteConfiguration, CLUSTER)
            .expect("route cached");
        assert_ne!(rds.version, route_before, "{protocol:?}");
        let snap = build_snapshot(&w.client, [LISTENER], None);
        let rc = snap.routes.get(CLUSTER).expect("route in snapshot");
        let text = format!("{rc:?}");
        assert!(text.contains("weight: 50"), "{protocol:?}: {text}");
        assert_all_acked(&w);
    }
}

#[test]
fn a_removed_service_is_deleted_and_the_client_sees_it() {
    for protocol in both() {
        let mut w = world(3, protocol, mesh(&["10.0.0.1", "10.0.0.2"], Some(10)));
        w.client.watch(w.now(), ResourceType::Listener, LISTENER);
        w.run_for(Duration::from_secs(1));
        assert!(w.client.entry(ResourceType::Cluster, V2).is_some());

        // The service goes away: its listener is deleted (SotW: absent from the next LDS
        // response; Delta: `removed_resources`) and the client stops treating it as ready.
        let now = w.now();
        w.server
            .plane
            .set_config(
                now,
                config::parse_str("mesh.yaml", "")
                    .expect("empty config")
                    .config,
            )
            .expect("valid");
        w.run_for(Duration::from_secs(20));
        let l = w
            .client
            .entry(ResourceType::Listener, LISTENER)
            .expect("entry kept");
        assert_eq!(l.status, ResourceStatus::DoesNotExist, "{protocol:?}");
        let snap = build_snapshot(&w.client, [LISTENER], None);
        assert_ne!(snap.status.get(LISTENER), Some(&ListenerStatus::Ready));
    }
}

#[test]
fn control_plane_restart_keeps_the_cache_and_resyncs() {
    for protocol in both() {
        let mut w = world(4, protocol, mesh(&["10.0.0.1", "10.0.0.2"], Some(10)));
        w.client.watch(w.now(), ResourceType::Listener, LISTENER);
        w.run_for(Duration::from_secs(1));

        // The control plane goes down for 5 s: streams reset, new ones refused.
        let now = w.now();
        w.server.refuse = true;
        w.server.reset_streams(now, "control plane restarting");
        w.run_for(Duration::from_secs(5));
        assert_eq!(w.server.open_streams(), 0);
        // The cache keeps serving (gRFC A57: data survives stream loss).
        assert_eq!(endpoints(&w, V1), set(&["10.0.0.2:7000"]), "{protocol:?}");

        // It comes back with a change made while it was down.
        let now = w.now();
        w.server
            .plane
            .set_config(now, mesh(&["10.0.0.1", "10.0.0.2", "10.0.0.4"], Some(10)))
            .expect("valid");
        w.server.refuse = false;
        w.run_for(Duration::from_secs(10));
        assert_eq!(w.server.open_streams(), 1, "{protocol:?}: reconnected");
        assert_eq!(
            endpoints(&w, V1),
            set(&["10.0.0.2:7000", "10.0.0.4:7000"]),
            "{protocol:?}"
        );
        assert_all_acked(&w);
        let dump = w.server.plane.ads().config_dump();
        let stream = dump.streams.last().expect("stream");
        if protocol == Protocol::Delta {
            // The client told the new stream what it had (initial_resource_versions).
            let lds = stream
                .types
                .iter()
                .find(|t| t.type_url == ResourceType::Listener.type_url())
                .expect("lds");
            assert!(
                lds.client_versions.contains_key(LISTENER),
                "{:?}",
                lds.client_versions
            );
        }
    }
}

#[test]
fn interface_listener_follows_the_providers_announcement() {
    const GREETER: &str = "helloworld.Greeter";
    for protocol in both() {
        let text = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc}]
  endpoints:
  - {address: 10.0.9.9}
";
        let cfg = config::parse_str("mesh.yaml", text).expect("valid").config;
        // The client under test is the provider: it announces the interface it serves and
        // watches its own inbound listener (gRFC A36), then also dials the interface by name.
        let plane = ControlPlane::new(Instant::ZERO, cfg).expect("valid");
        let mut w = World::with_server(
            5,
            protocol,
            |c| {
                let md = c.node.metadata.get_or_insert_with(Default::default);
                md.fields.insert(
                    INTERFACES_METADATA_KEY.to_string(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue(GREETER.into())),
                    },
                );
            },
            PlaneServer::new(plane, protocol),
        );
        let inbound = "xds.istio.io/grpc/lds/inbound/10.0.9.9:50051";
        w.client.watch(w.now(), ResourceType::Listener, inbound);
        w.run_for(Duration::from_secs(1));
        w.client.watch(w.now(), ResourceType::Listener, GREETER);
        w.run_for(Duration::from_secs(1));

        let snap = build_snapshot(&w.client, [GREETER], None);
        assert_eq!(
            snap.status.get(GREETER),
            Some(&ListenerStatus::Ready),
            "{protocol:?}: {:?}",
            w.client.entry(ResourceType::Listener, GREETER)
        );
        let eds = "outbound|50051||greeter.default.svc.cluster.local";
        let eps = endpoints_under(&w, GREETER, eds);
        assert_eq!(eps, set(&["10.0.9.9:50051"]), "{protocol:?}");
        let dump = w.server.plane.config_dump();
        assert_eq!(
            dump.interfaces.map[GREETER].target.to_string(),
            "greeter.default.svc.cluster.local:50051"
        );
        assert_all_acked(&w);
    }
}
