//! CSDS from the control plane's side (gRFC A40): per connected client, each resource with the
//! version it ACKed, or its NACK.

use skiff_core::control::ControlPlane;
use skiff_core::control::ads::{AdsRequest, AdsResponse};
use skiff_core::control::config;
use skiff_core::control::csds::client_status;
use skiff_core::control::resources::CLUSTER;
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::admin::v3::ClientResourceStatus;
use skiff_core::pb::envoy::config::core::v3::Node;
use skiff_core::pb::envoy::service::discovery::v3::DiscoveryRequest;
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
  - {address: 10.0.0.1}
";
const C: &str = "outbound|7000||echo.default.svc.cluster.local";

fn req(nonce: &str, version: &str, nack: bool, node: bool) -> AdsRequest {
    AdsRequest::Sotw(DiscoveryRequest {
        type_url: CLUSTER.into(),
        resource_names: vec![C.into(), "missing".into()],
        version_info: version.into(),
        response_nonce: nonce.into(),
        node: node.then(|| Node {
            id: "sidecar~10.0.0.9~app.default~default.svc.cluster.local".into(),
            ..Default::default()
        }),
        error_detail: nack.then(|| Status {
            code: 3,
            message: "bad cluster".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn last_nonce(cp: &mut ControlPlane) -> (String, String) {
    let mut out = None;
    while let Some((_, r)) = cp.poll_output() {
        if let AdsResponse::Sotw(r) = r {
            out = Some((r.nonce, r.version_info));
        }
    }
    out.expect("a response")
}

#[test]
fn acked_requested_missing_and_nacked() {
    let mesh = config::parse_str("mesh.yaml", MESH).unwrap().config;
    let mut cp = ControlPlane::new(Instant::ZERO, mesh).unwrap();
    let s = AdsStreamId::new(1, 0);
    cp.handle_request(Instant::ZERO, s, req("", "", false, true))
        .unwrap();
    let (nonce, version) = last_nonce(&mut cp);

    // Sent but not yet acknowledged: REQUESTED; a name the server does not have: DOES_NOT_EXIST.
    let dump = client_status(&cp.config_dump().ads, cp.resources());
    let cfg = &dump.config[0];
    assert_eq!(
        cfg.node.as_ref().unwrap().id,
        "sidecar~10.0.0.9~app.default~default.svc.cluster.local"
    );
    let status = |d: &skiff_core::pb::envoy::service::status::v3::ClientStatusResponse, n: &str| {
        d.config[0]
            .generic_xds_configs
            .iter()
            .find(|g| g.name == n)
            .map(|g| {
                (
                    g.client_status,
                    g.version_info.clone(),
                    g.error_state.clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(status(&dump, C).0, ClientResourceStatus::Requested as i32);
    assert_eq!(
        status(&dump, "missing").0,
        ClientResourceStatus::DoesNotExist as i32
    );
    assert!(
        cfg.generic_xds_configs
            .iter()
            .any(|g| g.xds_config.is_some())
    );

    cp.handle_request(Instant::ZERO, s, req(&nonce, &version, false, false))
        .unwrap();
    let dump = client_status(&cp.config_dump().ads, cp.resources());
    let (st, v, _) = status(&dump, C);
    assert_eq!(st, ClientResourceStatus::Acked as i32);
    assert!(!v.is_empty());

    cp.handle_request(Instant::ZERO, s, req(&nonce, "", true, false))
        .unwrap();
    let dump = client_status(&cp.config_dump().ads, cp.resources());
    let (st, _, err) = status(&dump, C);
    assert_eq!(st, ClientResourceStatus::Nacked as i32);
    assert_eq!(err.unwrap().details, "bad cluster");
}
