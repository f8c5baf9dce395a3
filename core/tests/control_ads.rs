//! The ADS server protocol, SotW and Delta, through the control plane.

use prost::Message;
use prost_types::value::Kind;
use skiff_core::control::ControlPlane;
use skiff_core::control::ads::{AdsError, AdsRequest, AdsResponse};
use skiff_core::control::config::{self, MeshConfig};
use skiff_core::control::resources::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::config::cluster::v3::Cluster;
use skiff_core::pb::envoy::config::core::v3::Node;
use skiff_core::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use skiff_core::pb::envoy::config::listener::v3::Listener;
use skiff_core::pb::envoy::config::route::v3::RouteConfiguration;
use skiff_core::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use skiff_core::pb::google::rpc::Status;
use skiff_core::time::Instant;

const MESH: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{number: 7000, name: grpc}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}, weight: 2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc}]
  endpoints:
  - {address: 10.0.9.9}
";

const ECHO_L: &str = "echo.default.svc.cluster.local:7000";
const ECHO_RDS: &str = "outbound|7000||echo.default.svc.cluster.local";
const ECHO_C: &str = "outbound|7000||echo.default.svc.cluster.local";
const ECHO_V1: &str = "outbound|7000|v1|echo.default.svc.cluster.local";
const ECHO_V2: &str = "outbound|7000|v2|echo.default.svc.cluster.local";
const GREETER_L: &str = "greeter.default.svc.cluster.local:50051";
const GREETER_RDS: &str = "outbound|50051||greeter.default.svc.cluster.local";
const GREETER_INBOUND: &str = "xds.istio.io/grpc/lds/inbound/10.0.9.9:50051";

fn mesh(text: &str) -> MeshConfig {
    config::parse_str("mesh.yaml", text)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn plane() -> ControlPlane {
    ControlPlane::new(Instant::ZERO, mesh(MESH)).unwrap()
}

fn s(n: u32) -> AdsStreamId {
    AdsStreamId::new(n, 0)
}

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn sotw(type_url: &str, names: &[&str], version: &str, nonce: &str) -> AdsRequest {
    AdsRequest::Sotw(DiscoveryRequest {
        type_url: type_url.into(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    })
}

fn nack(type_url: &str, names: &[&str], version: &str, nonce: &str) -> AdsRequest {
    let AdsRequest::Sotw(mut r) = sotw(type_url, names, version, nonce) else {
        unreachable!()
    };
    r.error_detail = Some(Status {
        code: 3,
        message: "bad resource".into(),
        ..Default::default()
    });
    AdsRequest::Sotw(r)
}

fn delta(type_url: &str, sub: &[&str], unsub: &[&str], nonce: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: type_url.into(),
        resource_names_subscribe: sub.iter().map(|n| n.to_string()).collect(),
        resource_names_unsubscribe: unsub.iter().map(|n| n.to_string()).collect(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

fn drain(cp: &mut ControlPlane) -> Vec<(AdsStreamId, AdsResponse)> {
    std::iter::from_fn(|| cp.poll_output()).collect()
}

fn name_of(a: &prost_types::Any) -> String {
    let v = a.value.as_slice();
    match a.type_url.as_str() {
        LISTENER => Listener::decode(v).unwrap().name,
        ROUTE => RouteConfiguration::decode(v).unwrap().name,
        CLUSTER => Cluster::decode(v).unwrap().name,
        ENDPOINT => ClusterLoadAssignment::decode(v).unwrap().cluster_name,
        other => panic!("unexpected {other}"),
    }
}

/// `(type_url, resource names, version, nonce)` of a SotW response.
fn sotw_summary(r: &AdsResponse) -> (String, Vec<String>, String, String) {
    let AdsResponse::Sotw(r) = r else {
        panic!("expected SotW")
    };
    (
        r.type_url.clone(),
        r.resources.iter().map(name_of).collect(),
        r.version_info.clone(),
        r.nonce.clone(),
    )
}

fn one(
    out: Vec<(AdsStreamId, AdsResponse)>,
    stream: AdsStreamId,
) -> (String, Vec<String>, String, String) {
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].0, stream);
    sotw_summary(&out[0].1)
}

#[test]
fn sotw_wildcard_lds_and_cds() {
    let mut cp = plane();
    cp.handle_request(t(0), s(1), sotw(LISTENER, &[], "", ""))
        .unwrap();
    let (ty, names, _, nonce) = one(drain(&mut cp), s(1));
    assert_eq!(ty, LISTENER);
    // Wildcard LDS: client listeners only, never the server (inbound) ones.
    assert_eq!(names, [ECHO_L, GREETER_L]);
    assert_eq!(nonce, "1");

    // The ACK repeats the (empty) names: still wildcard, nothing to send.
    let version = cp.config_dump().ads.streams[0].types[0]
        .last_sent
        .clone()
        .unwrap()
        .version;
    cp.handle_request(t(1), s(1), sotw(LISTENER, &[], &version, "1"))
        .unwrap();
    assert!(drain(&mut cp).is_empty());
    let dump = cp.config_dump().ads;
    assert!(dump.streams[0].types[0].wildcard);
    assert_eq!(
        dump.streams[0].types[0].acked.as_ref().unwrap().version,
        version
    );

    cp.handle_request(t(1), s(1), sotw(CLUSTER, &["*"], "", ""))
        .unwrap();
    let (_, names, _, _) = one(drain(&mut cp), s(1));
    assert_eq!(
        names,
        [
            "outbound|50051||greeter.default.svc.cluster.local",
            ECHO_V1,
            ECHO_V2,
            ECHO_C
        ]
    );

    // Route configurations are never wildcard: an empty first request means nothing.
    cp.handle_request(t(1), s(1), sotw(ROUTE, &[], "", ""))
        .unwrap();
    let (_, names, _, _) = one(drain(&mut cp), s(1));
    assert!(names.is_empty());
}

#[test]
fn sotw_named_subscription_ack_and_change() {
    let mut cp = plane();
    cp.handle_request(t(0), s(1), sotw(LISTENER, &[ECHO_L, "nope:1"], "", ""))
        .unwrap();
    let (_, names, v1, n1) = one(drain(&mut cp), s(1));
    // Names that do not exist are simply absent (the client's does-not-exist handling).
    assert_eq!(names, [ECHO_L]);
    cp.handle_request(t(1), s(1), sotw(LISTENER, &[ECHO_L, "nope:1"], &v1, &n1))
        .unwrap();
    assert!(drain(&mut cp).is_empty(), "an ACK is not answered");

    // A changed subscription (riding on an ACK) gets the full set for that type.
    cp.handle_request(t(2), s(1), sotw(LISTENER, &[ECHO_L, GREETER_L], &v1, &n1))
        .unwrap();
    let (_, names, v2, n2) = one(drain(&mut cp), s(1));
    assert_eq!(names, [ECHO_L, GREETER_L]);
    assert_ne!(v1, v2);
    assert_ne!(n1, n2);

    // Unsubscribing is sending the smaller list.
    cp.handle_request(t(3), s(1), sotw(LISTENER, &[GREETER_L], &v2, &n2))
        .unwrap();
    let (_, names, _, _) = one(drain(&mut cp), s(1));
    assert_eq!(names, [GREETER_L]);
}

#[test]
fn sotw_nack_is_recorded_and_not_resent() {
    let mut cp = plane();
    cp.handle_request(t(0), s(1), sotw(ENDPOINT, &[ECHO_V1], "", ""))
        .unwrap();
    let (_, _, v, n) = one(drain(&mut cp), s(1));
    cp.handle_request(t(1), s(1), nack(ENDPOINT, &[ECHO_V1], "", &n))
        .unwrap();
    assert!(drain(&mut cp).is_empty());
    let dump = cp.config_dump().ads;
    let ty = &dump.streams[0].types[0];
    let nacked = ty.nacked.as_ref().unwrap();
    assert_eq!(
        (nacked.version.as_str(), nacked.message.as_str()),
        (v.as_str(), "bad resource")
    );
    assert!(ty.acked.is_none());

    // Same configuration again: same version, not resent.
    cp.set_config(t(2), mesh(MESH)).unwrap();
    assert!(drain(&mut cp).is_empty());
    // A change to that resource is a new version: sent.
    cp.set_config(
        t(3),
        mesh(&MESH.replace("10.0.0.1, labels", "10.0.0.1, weight: 5, labels")),
    )
    .unwrap();
    let (ty, names, v2, _) = one(drain(&mut cp), s(1));
    assert_eq!((ty.as_str(), names), (ENDPOINT, vec![ECHO_V1.to_string()]));
    assert_ne!(v2, v);
}

#[test]
fn sotw_stale_nonce_is_ignored() {
    let mut cp = plane();
    cp.handle_request(t(0), s(1), sotw(ENDPOINT, &[ECHO_V1], "", ""))
        .unwrap();
    let (_, _, v1, n1) = one(drain(&mut cp), s(1));
    // A push the client has not seen yet.
    cp.set_config(
        t(1),
        mesh(&MESH.replace("10.0.0.1, labels", "10.0.0.1, weight: 5, labels")),
    )
    .unwrap();
    let (_, _, v2, n2) = one(drain(&mut cp), s(1));
    // The client, still on n1, changes its subscription: stale, ignored entirely.
    cp.handle_request(t(2), s(1), sotw(ENDPOINT, &[ECHO_V1, ECHO_V2], &v1, &n1))
        .unwrap();
    assert!(drain(&mut cp).is_empty());
    let dump = cp.config_dump().ads;
    let ty = &dump.streams[0].types[0];
    assert_eq!(ty.stale_nonces_ignored, 1);
    assert_eq!(ty.subscribed, [ECHO_V1]);
    // It then catches up: ACK of n2 with the new list → the new list is answered.
    cp.handle_request(t(3), s(1), sotw(ENDPOINT, &[ECHO_V1, ECHO_V2], &v2, &n2))
        .unwrap();
    let (_, names, _, _) = one(drain(&mut cp), s(1));
    assert_eq!(names, [ECHO_V1, ECHO_V2]);
}

#[test]
fn sotw_push_only_changed_types() {
    let mut cp = plane();
    cp.handle_request(t(0), s(1), sotw(LISTENER, &[ECHO_L], "", ""))
        .unwrap();
    cp.handle_request(t(0), s(1), sotw(ROUTE, &[ECHO_RDS], "", ""))
        .unwrap();
    cp.handle_request(t(0), s(1), sotw(CLUSTER, &[ECHO_C, ECHO_V1], "", ""))
        .unwrap();
    cp.handle_request(t(0), s(1), sotw(ENDPOINT, &[ECHO_C, ECHO_V1], "", ""))
        .unwrap();
    assert_eq!(drain(&mut cp).len(), 4);

    // An endpoint weight changes: only EDS moves.
    cp.set_config(
        t(1),
        mesh(&MESH.replace("10.0.0.1, labels", "10.0.0.1, weight: 5, labels")),
    )
    .unwrap();
    let out = drain(&mut cp);
    let types: Vec<String> = out.iter().map(|(_, r)| r.type_url().to_string()).collect();
    assert_eq!(types, [ENDPOINT]);

    // A VirtualService: only RDS moves (and only for the host it routes).
    let with_vs = format!(
        "{MESH}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: echo}}\n\
         spec:\n  hosts: [echo]\n  http:\n  - route: [{{destination: {{host: echo, subset: v1}}}}]\n    timeout: 3s\n"
    )
    .replace("10.0.0.1, labels", "10.0.0.1, weight: 5, labels");
    cp.set_config(t(2), mesh(&with_vs)).unwrap();
    let out = drain(&mut cp);
    let types: Vec<String> = out.iter().map(|(_, r)| r.type_url().to_string()).collect();
    assert_eq!(types, [ROUTE]);

    // A second stream subscribed only to greeter's route sees nothing of it.
    cp.handle_request(t(3), s(2), sotw(ROUTE, &[GREETER_RDS], "", ""))
        .unwrap();
    drain(&mut cp);
    cp.set_config(t(4), mesh(&with_vs.replace("timeout: 3s", "timeout: 4s")))
        .unwrap();
    let out = drain(&mut cp);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, s(1));
}

fn delta_summary(r: &AdsResponse) -> (Vec<String>, Vec<String>, String, String) {
    let AdsResponse::Delta(r) = r else {
        panic!("expected Delta")
    };
    (
        r.resources.iter().map(|x| x.name.clone()).collect(),
        r.removed_resources.clone(),
        r.system_version_info.clone(),
        r.nonce.clone(),
    )
}

fn one_delta(out: Vec<(AdsStreamId, AdsResponse)>) -> (Vec<String>, Vec<String>, String, String) {
    assert_eq!(out.len(), 1, "{out:#?}");
    delta_summary(&out[0].1)
}

#[test]
fn delta_wildcard_removal_and_nack() {
    let mut cp = plane();
    cp.handle_request(t(0), s(1), AdsRequest::Delta(delta(CLUSTER, &[], &[], "")))
        .unwrap();
    let (names, removed, sys, nonce) = one_delta(drain(&mut cp));
    assert_eq!(names.len(), 4);
    assert!(removed.is_empty());
    assert_eq!(sys, cp.resources().system_version());
    cp.handle_request(
        t(1),
        s(1),
        AdsRequest::Delta(delta(CLUSTER, &[], &[], &nonce)),
    )
    .unwrap();
    assert!(drain(&mut cp).is_empty());
    assert!(cp.config_dump().ads.streams[0].types[0].acked.is_some());

    // The DestinationRule goes away: its subset clusters are removed, nothing else is resent.
    let no_dr = MESH.replace("kind: DestinationRule", "kind: DestinationRule-gone");
    let no_dr = no_dr
        .split("---")
        .filter(|d| !d.contains("DestinationRule-gone"))
        .collect::<Vec<_>>()
        .join("---");
    cp.set_config(t(2), mesh(&no_dr)).unwrap();
    let (names, removed, _, nonce) = one_delta(drain(&mut cp));
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(removed, [ECHO_V1, ECHO_V2]);

    // A NACK is recorded against that response.
    let mut r = delta(CLUSTER, &[], &[], &nonce);
    r.error_detail = Some(Status {
        code: 3,
        message: "no".into(),
        ..Default::default()
    });
    cp.handle_request(t(3), s(1), AdsRequest::Delta(r)).unwrap();
    assert!(drain(&mut cp).is_empty());
    assert_eq!(
        cp.config_dump().ads.streams[0].types[0]
            .nacked
            .as_ref()
            .unwrap()
            .message,
        "no"
    );
}

#[test]
fn delta_named_subscribe_unsubscribe_and_absent() {
    let mut cp = plane();
    cp.handle_request(
        t(0),
        s(1),
        AdsRequest::Delta(delta(ENDPOINT, &[ECHO_V1, "outbound|1||nope"], &[], "")),
    )
    .unwrap();
    let (names, removed, _, _) = one_delta(drain(&mut cp));
    assert_eq!(names, [ECHO_V1]);
    // A subscribed name that does not exist is reported as removed, once.
    assert_eq!(removed, ["outbound|1||nope"]);

    cp.handle_request(
        t(1),
        s(1),
        AdsRequest::Delta(delta(ENDPOINT, &[ECHO_V2], &[], "")),
    )
    .unwrap();
    let (names, removed, _, _) = one_delta(drain(&mut cp));
    assert_eq!((names, removed), (vec![ECHO_V2.to_string()], vec![]));

    // Unsubscribed resources are no longer pushed; subscribed ones are.
    cp.handle_request(
        t(2),
        s(1),
        AdsRequest::Delta(delta(ENDPOINT, &[], &[ECHO_V1], "")),
    )
    .unwrap();
    assert!(drain(&mut cp).is_empty());
    let changed = MESH
        .replace("10.0.0.1, labels", "10.0.0.1, weight: 5, labels")
        .replace(
            "10.0.0.2, labels: {version: v2}, weight: 2",
            "10.0.0.2, labels: {version: v2}, weight: 7",
        );
    cp.set_config(t(3), mesh(&changed)).unwrap();
    let (names, removed, _, _) = one_delta(drain(&mut cp));
    assert_eq!((names, removed), (vec![ECHO_V2.to_string()], vec![]));
    let dump = cp.config_dump().ads;
    assert_eq!(
        dump.streams[0].types[0].subscribed,
        ["outbound|1||nope", ECHO_V2]
    );
}

#[test]
fn delta_initial_resource_versions_skip_what_the_client_has() {
    let mut cp = plane();
    let v1 = cp
        .resources()
        .get(ENDPOINT, ECHO_V1)
        .unwrap()
        .version
        .clone();
    let mut r = delta(ENDPOINT, &[ECHO_V1, ECHO_V2], &[], "");
    r.initial_resource_versions.insert(ECHO_V1.into(), v1);
    r.initial_resource_versions
        .insert(ECHO_V2.into(), "stale".into());
    r.initial_resource_versions
        .insert("outbound|9||gone".into(), "x".into());
    cp.handle_request(t(0), s(1), AdsRequest::Delta(r)).unwrap();
    let (names, removed, _, _) = one_delta(drain(&mut cp));
    assert_eq!(names, [ECHO_V2]);
    // The client had a resource that no longer exists (and is no longer subscribed).
    assert_eq!(removed, ["outbound|9||gone"]);
}

fn node(metadata: &[(&str, prost_types::Value)]) -> Node {
    Node {
        id: "sidecar~10.0.9.9~greeter-1.default~default.svc.cluster.local".into(),
        metadata: Some(prost_types::Struct {
            fields: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }),
        ..Default::default()
    }
}

fn string(s: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

#[test]
fn interface_listener_appears_when_a_server_announces_it() {
    let mut cp = plane();
    // A client dials xds:///helloworld.Greeter before any provider is up.
    cp.handle_request(t(0), s(1), sotw(LISTENER, &["helloworld.Greeter"], "", ""))
        .unwrap();
    cp.handle_request(t(0), s(1), sotw(ROUTE, &[GREETER_RDS], "", ""))
        .unwrap();
    let out = drain(&mut cp);
    assert!(sotw_summary(&out[0].1).1.is_empty());

    // The provider connects: node metadata names the interface; its own inbound listener
    // subscription (gRFC A36) tells which service it is.
    let AdsRequest::Sotw(mut r) = sotw(LISTENER, &[GREETER_INBOUND], "", "") else {
        unreachable!()
    };
    r.node = Some(node(&[
        ("GENERATOR", string("grpc")),
        ("SKIFF_INTERFACES", string("helloworld.Greeter")),
    ]));
    cp.handle_request(t(1), s(2), AdsRequest::Sotw(r)).unwrap();
    let out = drain(&mut cp);
    let mine: Vec<_> = out
        .iter()
        .filter(|(id, _)| *id == s(2))
        .map(|(_, r)| sotw_summary(r).1)
        .collect();
    assert_eq!(mine, [vec![GREETER_INBOUND.to_string()]]);
    let client: Vec<_> = out
        .iter()
        .filter(|(id, _)| *id == s(1))
        .map(|(_, r)| sotw_summary(r))
        .collect();
    assert_eq!(client.len(), 2, "{client:#?}");
    assert_eq!(client[0].0, LISTENER);
    assert_eq!(client[0].1, ["helloworld.Greeter"]);
    // The interface routes like greeter's listener, and its route configuration answers to the
    // interface name (gRPC matches virtual hosts against the dial target).
    assert_eq!(client[1].0, ROUTE);
    let AdsResponse::Sotw(rds) = &out
        .iter()
        .find(|(id, r)| *id == s(1) && r.type_url() == ROUTE)
        .unwrap()
        .1
    else {
        unreachable!()
    };
    let rc = RouteConfiguration::decode(rds.resources[0].value.as_slice()).unwrap();
    assert!(
        rc.virtual_hosts[0]
            .domains
            .contains(&"helloworld.Greeter".to_string())
    );
    let dump = cp.config_dump();
    assert_eq!(
        dump.ads.streams[1]
            .node
            .as_ref()
            .unwrap()
            .generator
            .as_deref(),
        Some("grpc")
    );
    assert_eq!(
        dump.interfaces.map["helloworld.Greeter"].target.to_string(),
        "greeter.default.svc.cluster.local:50051"
    );

    // The provider goes away: so does the interface.
    cp.handle_stream_closed(t(2), s(2));
    let out = drain(&mut cp);
    let lds = out.iter().find(|(_, r)| r.type_url() == LISTENER).unwrap();
    assert!(sotw_summary(&lds.1).1.is_empty());
}

#[test]
fn interfaces_can_be_announced_as_a_list_with_explicit_targets() {
    let mut cp = plane();
    let list = prost_types::Value {
        kind: Some(Kind::ListValue(prost_types::ListValue {
            values: vec![
                string("echo.Echo=echo.default.svc.cluster.local:7000"),
                string("x.Unknown=nowhere:1"),
            ],
        })),
    };
    let AdsRequest::Sotw(mut r) = sotw(CLUSTER, &[ECHO_C], "", "") else {
        unreachable!()
    };
    r.node = Some(node(&[("SKIFF_INTERFACES", list)]));
    cp.handle_request(t(0), s(7), AdsRequest::Sotw(r)).unwrap();
    assert!(cp.resources().get(LISTENER, "echo.Echo").is_some());
    assert!(cp.resources().get(LISTENER, "x.Unknown").is_none());
    assert_eq!(
        cp.interfaces().problems.len(),
        1,
        "{:?}",
        cp.interfaces().problems
    );
}

#[test]
fn protocol_errors() {
    let mut cp = plane();
    cp.handle_request(t(0), s(1), sotw(LISTENER, &[], "", ""))
        .unwrap();
    assert_eq!(
        cp.handle_request(t(0), s(1), AdsRequest::Delta(delta(LISTENER, &[], &[], ""))),
        Err(AdsError::MixedProtocols { stream: s(1) })
    );
    assert_eq!(
        cp.handle_request(t(0), s(2), sotw("", &[], "", "")),
        Err(AdsError::MissingTypeUrl { stream: s(2) })
    );
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut cp = plane();
        cp.handle_request(t(0), s(1), sotw(LISTENER, &[], "", ""))
            .unwrap();
        cp.handle_request(t(0), s(2), AdsRequest::Delta(delta(CLUSTER, &[], &[], "")))
            .unwrap();
        cp.set_config(t(1), mesh(&MESH.replace("weight: 2", "weight: 4")))
            .unwrap();
        drain(&mut cp)
    };
    assert_eq!(run(), run());
}
