//! skiff's generated protobuf types must be wire-compatible with the `envoy-types` crate (the
//! ecosystem's reference build of the same protos) and carry Envoy's type URLs.

use envoy_types::pb::envoy::config::cluster::v3 as et_cluster;
use prost::{Message, Name};
use skiff_core::pb::envoy::config::cluster::v3 as sk_cluster;
use skiff_core::pb::envoy::config::core::v3 as sk_core;
use skiff_core::pb::envoy::config::endpoint::v3 as sk_endpoint;
use skiff_core::pb::envoy::config::listener::v3 as sk_listener;
use skiff_core::pb::envoy::config::route::v3 as sk_route;
use skiff_core::pb::envoy::service::discovery::v3 as sk_disc;

#[test]
fn type_urls_are_envoys() {
    assert_eq!(
        sk_listener::Listener::type_url(),
        "type.googleapis.com/envoy.config.listener.v3.Listener"
    );
    assert_eq!(
        sk_route::RouteConfiguration::type_url(),
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    );
    assert_eq!(
        sk_cluster::Cluster::type_url(),
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    );
    assert_eq!(
        sk_endpoint::ClusterLoadAssignment::type_url(),
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    );
}

fn sample_cluster() -> sk_cluster::Cluster {
    sk_cluster::Cluster {
        name: "outbound|7000|v1|echo.default.svc.cluster.local".into(),
        cluster_discovery_type: Some(sk_cluster::cluster::ClusterDiscoveryType::Type(
            sk_cluster::cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(sk_cluster::cluster::EdsClusterConfig {
            eds_config: Some(sk_core::ConfigSource {
                config_source_specifier: Some(sk_core::config_source::ConfigSourceSpecifier::Ads(
                    sk_core::AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
            service_name: "outbound|7000|v1|echo.default.svc.cluster.local".into(),
        }),
        lb_policy: sk_cluster::cluster::LbPolicy::LeastRequest as i32,
        circuit_breakers: Some(sk_cluster::CircuitBreakers {
            thresholds: vec![sk_cluster::circuit_breakers::Thresholds {
                max_requests: Some(100),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn cluster_round_trips_through_envoy_types() {
    let ours = sample_cluster();
    let bytes = ours.encode_to_vec();
    let theirs = et_cluster::Cluster::decode(bytes.as_slice()).expect("envoy-types decodes ours");
    assert_eq!(theirs.name, ours.name);
    assert_eq!(theirs.lb_policy, ours.lb_policy);
    let back =
        sk_cluster::Cluster::decode(theirs.encode_to_vec().as_slice()).expect("we decode theirs");
    assert_eq!(back, ours);
}

#[test]
fn discovery_response_with_any_round_trips() {
    let cluster = sample_cluster();
    let resp = sk_disc::DiscoveryResponse {
        version_info: "7".into(),
        resources: vec![prost_types::Any::from_msg(&cluster).expect("pack")],
        type_url: sk_cluster::Cluster::type_url(),
        nonce: "n1".into(),
        ..Default::default()
    };
    let bytes = resp.encode_to_vec();
    let theirs =
        envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse::decode(bytes.as_slice())
            .expect("envoy-types decodes");
    assert_eq!(theirs.resources.len(), 1);
    assert_eq!(theirs.resources[0].type_url, resp.type_url);
    let back = sk_disc::DiscoveryResponse::decode(bytes.as_slice()).expect("decode");
    let unpacked: sk_cluster::Cluster = back.resources[0].to_msg().expect("unpack");
    assert_eq!(unpacked, cluster);
}
