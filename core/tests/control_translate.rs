//! Golden test: YAML → xDS (rendered as JSON), plus istiod naming checks.
//!
//! `core/tests/data/control/mesh.yaml` exercises every feature of the YAML subset;
//! `mesh.golden.json` is the expected translation. After an intended change, regenerate with
//! `SKIFF_BLESS=1 cargo test -p skiff-core --test control_translate` and review the diff.

use prost::Message;
use serde_json::{Value, json};
use skiff_core::control::config;
use skiff_core::control::interfaces::{InterfaceOrigin, InterfaceRegistry};
use skiff_core::control::json::resources_to_json;
use skiff_core::control::resources::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use skiff_core::control::{Translation, translate};
use skiff_core::pb::envoy::config::cluster::v3 as cluster;
use skiff_core::pb::envoy::config::listener::v3 as listener;
use skiff_core::pb::envoy::config::route::v3 as route;
use skiff_core::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;

const MESH: &str = include_str!("data/control/mesh.yaml");
const GOLDEN: &str = include_str!("data/control/mesh.golden.json");

fn translate_yaml(file: &str, text: &str) -> Translation {
    let loaded = config::parse_str(file, text).unwrap_or_else(|e| panic!("{e}"));
    translate(&loaded.config, &InterfaceRegistry::new()).unwrap_or_else(|e| panic!("{e}"))
}

fn golden_json(t: &Translation) -> String {
    let interfaces: serde_json::Map<String, Value> = t
        .interfaces
        .map
        .iter()
        .map(|(k, v)| {
            let origin = match &v.origin {
                InterfaceOrigin::Config(s) => format!("config {}:{}", s.file, s.line),
                InterfaceOrigin::Announced(nodes) => format!("announced by {}", nodes.join(",")),
            };
            (
                k.clone(),
                json!({ "target": v.target.to_string(), "origin": origin }),
            )
        })
        .collect();
    let doc = json!({
        "warnings": t.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "interfaces": interfaces,
        "resources": resources_to_json(&t.resources),
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap();
    s.push('\n');
    s
}

#[allow(clippy::disallowed_methods)] // Test-only: the bless switch and golden file write.
fn bless(path: &str, contents: &str) -> bool {
    if std::env::var("SKIFF_BLESS").is_ok_and(|v| v == "1") {
        let full = format!("{}/tests/data/control/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(full, contents).unwrap();
        return true;
    }
    false
}

fn assert_golden(path: &str, actual: &str, expected: &str) {
    if bless(path, actual) || actual == expected {
        return;
    }
    let diff = actual
        .lines()
        .zip(expected.lines())
        .enumerate()
        .find(|(_, (a, e))| a != e)
        .map(|(i, (a, e))| {
            format!(
                "first difference at line {}:\n  actual:   {a}\n  expected: {e}",
                i + 1
            )
        })
        .unwrap_or_else(|| "files differ in length".into());
    panic!("{path} is out of date ({diff}); rerun with SKIFF_BLESS=1 and review the diff");
}

#[test]
fn golden_mesh_translation() {
    let t = translate_yaml("mesh.yaml", MESH);
    assert_golden("mesh.golden.json", &golden_json(&t), GOLDEN);
}

#[test]
fn translation_is_deterministic() {
    let a = translate_yaml("mesh.yaml", MESH);
    let b = translate_yaml("mesh.yaml", MESH);
    assert_eq!(a.resources, b.resources);
    assert_eq!(a.resources.system_version(), b.resources.system_version());
}

fn decode_any<M: Message + Default>(a: &prost_types::Any) -> M {
    M::decode(a.value.as_slice()).unwrap()
}

/// The names istiod's grpcgen gives, for the configuration in the design brief.
#[test]
fn names_follow_istiod() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{number: 7000, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo.default.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}]
"#;
    let t = translate_yaml("naming.yaml", yaml);
    let r = &t.resources;
    let names = |ty: &str| -> Vec<String> { r.of_type(ty).unwrap().keys().cloned().collect() };
    assert_eq!(
        names(LISTENER),
        [
            "echo.default.svc.cluster.local:7000",
            "xds.istio.io/grpc/lds/inbound/10.0.0.1:7000"
        ]
    );
    assert_eq!(
        names(ROUTE),
        ["outbound|7000||echo.default.svc.cluster.local"]
    );
    assert_eq!(
        names(CLUSTER),
        [
            "outbound|7000|v1|echo.default.svc.cluster.local",
            "outbound|7000||echo.default.svc.cluster.local"
        ]
    );
    assert_eq!(names(ENDPOINT), names(CLUSTER));

    // Listener → RDS name.
    let l: listener::Listener = decode_any(
        &r.get(LISTENER, "echo.default.svc.cluster.local:7000")
            .unwrap()
            .resource,
    );
    let m: hcm::HttpConnectionManager = decode_any(
        l.api_listener
            .as_ref()
            .unwrap()
            .api_listener
            .as_ref()
            .unwrap(),
    );
    let filters: Vec<&str> = m.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        filters,
        ["envoy.filters.http.fault", "envoy.filters.http.router"]
    );
    match m.route_specifier.unwrap() {
        hcm::http_connection_manager::RouteSpecifier::Rds(rds) => {
            assert_eq!(
                rds.route_config_name,
                "outbound|7000||echo.default.svc.cluster.local"
            );
            assert!(rds.config_source.unwrap().config_source_specifier.is_some());
        }
        other => panic!("{other:?}"),
    }

    // EDS service_name = cluster name.
    let c: cluster::Cluster = decode_any(
        &r.get(CLUSTER, "outbound|7000|v1|echo.default.svc.cluster.local")
            .unwrap()
            .resource,
    );
    assert_eq!(c.eds_cluster_config.unwrap().service_name, c.name);
    assert_eq!(
        c.alt_stat_name,
        "outbound|7000|v1|echo.default.svc.cluster.local;"
    );

    // Route configuration: one vhost with istiod's domains and the default route + retry policy.
    let rc: route::RouteConfiguration = decode_any(
        &r.get(ROUTE, "outbound|7000||echo.default.svc.cluster.local")
            .unwrap()
            .resource,
    );
    let vh = &rc.virtual_hosts[0];
    assert_eq!(vh.name, "echo.default.svc.cluster.local:7000");
    assert_eq!(
        vh.domains,
        [
            "echo.default.svc.cluster.local",
            "echo.default.svc.cluster.local:7000",
            "echo.default.svc.cluster.local.",
            "echo.default.svc.cluster.local.:7000",
            "echo",
            "echo:7000",
            "echo.default.svc",
            "echo.default.svc:7000",
            "echo.default",
            "echo.default:7000",
        ]
    );
    let Some(route::route::Action::Route(action)) = &vh.routes[0].action else {
        panic!()
    };
    let retry = action.retry_policy.as_ref().unwrap();
    assert_eq!(retry.num_retries, Some(2));
    assert_eq!(
        retry.retry_on,
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );

    // Server listener: inline `inbound` route configuration with a non-forwarding action.
    let s: listener::Listener = decode_any(
        &r.get(LISTENER, "xds.istio.io/grpc/lds/inbound/10.0.0.1:7000")
            .unwrap()
            .resource,
    );
    assert_eq!(s.filter_chains.len(), 1);
    assert_eq!(s.filter_chains[0].name, "inbound-plaintext");
    let m: hcm::HttpConnectionManager = match &s.filter_chains[0].filters[0].config_type {
        Some(listener::filter::ConfigType::TypedConfig(a)) => decode_any(a),
        other => panic!("{other:?}"),
    };
    let Some(hcm::http_connection_manager::RouteSpecifier::RouteConfig(rc)) = m.route_specifier
    else {
        panic!()
    };
    assert_eq!(rc.name, "inbound");
    assert_eq!(rc.virtual_hosts[0].domains, ["*"]);
    assert!(matches!(
        rc.virtual_hosts[0].routes[0].action,
        Some(route::route::Action::NonForwardingAction(_))
    ));
}

#[test]
fn interface_listener_routes_like_its_host() {
    let t = translate_yaml("mesh.yaml", MESH);
    let r = &t.resources;
    let host: listener::Listener = decode_any(
        &r.get(LISTENER, "echo.default.svc.cluster.local:7000")
            .unwrap()
            .resource,
    );
    let iface: listener::Listener =
        decode_any(&r.get(LISTENER, "echo.EchoService").unwrap().resource);
    assert_eq!(iface.name, "echo.EchoService");
    assert_eq!(
        iface.api_listener, host.api_listener,
        "same HCM, same RDS name"
    );
    let rc: route::RouteConfiguration = decode_any(
        &r.get(ROUTE, "outbound|7000||echo.default.svc.cluster.local")
            .unwrap()
            .resource,
    );
    assert!(
        rc.virtual_hosts[0]
            .domains
            .iter()
            .any(|d| d == "echo.EchoService")
    );
    assert!(
        rc.virtual_hosts[0]
            .domains
            .iter()
            .any(|d| d == "grpc.health.v1.Health")
    );
}
