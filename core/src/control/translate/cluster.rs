//! Clusters (`grpcgen/cds.go`) and ClusterLoadAssignments (istiod's standard EDS, which the
//! proxyless `grpc/<EDS type>` generator maps to).

use std::collections::BTreeMap;

use crate::pb::envoy::config::cluster::v3 as cluster;
use crate::pb::envoy::config::core::v3 as core_pb;
use crate::pb::envoy::config::endpoint::v3 as endpoint;
use crate::pb::envoy::extensions::transport_sockets::tls::v3 as tls;
use crate::pb::envoy::r#type::matcher::v3 as matcher;

use super::super::config::{
    ClientTlsMode, LoadBalancer, Locality, OutlierDetection, ServicePort, TrafficPolicy,
    labels_match,
};
use super::listener::{ads_config_source, socket_address};
use super::{Service, any, cluster_name};

/// The transport socket name gRPC looks for (grpc-go `securityConfigFromCluster`; istiod's
/// `transportSocketName`).
pub(crate) const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";
/// The bootstrap certificate provider instance istio-agent writes (`certificate_providers.default`).
pub(crate) const CERT_PROVIDER_INSTANCE: &str = "default";
/// Certificate name of the workload certificate inside the provider.
pub(crate) const CERT_NAME: &str = "default";
/// Certificate name of the CA bundle inside the provider.
pub(crate) const ROOT_CA_NAME: &str = "ROOTCA";
/// The SPIFFE trust domain SANs are built in (Istio's default).
pub(crate) const TRUST_DOMAIN: &str = "cluster.local";

fn duration(d: core::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn proto_duration(d: core::time::Duration) -> prost_types::Duration {
    duration(d)
}

/// The default cluster and one per DestinationRule subset, for one service port.
pub(crate) fn clusters(svc: &Service<'_>, port: &ServicePort) -> Vec<cluster::Cluster> {
    let top = svc
        .dr
        .map(|dr| dr.traffic_policy.clone())
        .unwrap_or_default();
    let mut out = vec![eds_cluster(
        svc,
        &cluster_name(port.number, "", svc.host),
        &top,
    )];
    if let Some(dr) = svc.dr {
        for subset in &dr.subsets {
            let policy = top.merged_with(subset.traffic_policy.as_ref());
            out.push(eds_cluster(
                svc,
                &cluster_name(port.number, &subset.name, svc.host),
                &policy,
            ));
        }
    }
    out
}

fn eds_cluster(svc: &Service<'_>, name: &str, policy: &TrafficPolicy) -> cluster::Cluster {
    let mut c = cluster::Cluster {
        name: name.to_string(),
        // istiod: `util.DelimitedStatsPrefix(name)`, the name plus ";".
        alt_stat_name: format!("{name};"),
        cluster_discovery_type: Some(cluster::cluster::ClusterDiscoveryType::Type(
            cluster::cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::cluster::EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: name.to_string(),
        }),
        ..Default::default()
    };
    match &policy.load_balancer {
        // ROUND_ROBIN is gRPC's default: istiod leaves lb_policy unset. RANDOM and
        // PASSTHROUGH are warned about and dropped by grpcgen (`applyLoadBalancing`).
        None
        | Some(LoadBalancer::RoundRobin | LoadBalancer::Random | LoadBalancer::Passthrough) => {}
        // istiod ≥ 1.29 sends LEAST_REQUEST with no least_request_lb_config (gRFC A48
        // defaults, choice_count 2).
        Some(LoadBalancer::LeastRequest) => {
            c.lb_policy = cluster::cluster::LbPolicy::LeastRequest as i32;
        }
        // `ApplyRingHashLoadBalancer`: RING_HASH with minimum_ring_size, 1024 unless given.
        Some(LoadBalancer::ConsistentHash {
            minimum_ring_size, ..
        }) => {
            c.lb_policy = cluster::cluster::LbPolicy::RingHash as i32;
            c.lb_config = Some(cluster::cluster::LbConfig::RingHashLbConfig(
                cluster::cluster::RingHashLbConfig {
                    minimum_ring_size: Some(minimum_ring_size.unwrap_or(1024)),
                    ..Default::default()
                },
            ));
        }
    }
    // gRFC A32: only max_requests; istiod sends the threshold without a priority (= DEFAULT).
    if let Some(n) = policy.http2_max_requests.filter(|n| *n > 0) {
        c.circuit_breakers = Some(cluster::CircuitBreakers {
            thresholds: vec![cluster::circuit_breakers::Thresholds {
                max_requests: Some(n),
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    if let Some(od) = &policy.outlier_detection {
        c.outlier_detection = Some(outlier_detection(od));
    }
    if policy.tls == Some(ClientTlsMode::IstioMutual) {
        let ctx = tls::UpstreamTlsContext {
            common_tls_context: Some(common_tls_context(&service_sans(svc))),
            ..Default::default()
        };
        c.transport_socket = Some(transport_socket(any(&ctx)));
    }
    c
}

/// Outlier detection, shaped as istiod's sidecar generator writes it (`applyOutlierDetection`):
/// success-rate ejection disabled, consecutive 5xx enforced at 100 %.
///
/// Deviation: istiod's proxyless generator sends no outlier detection at all
/// (istio/api#3001). skiff sends it because its own data plane can honour it; gRPC clients
/// parse it per gRFC A50 and, since A50 ignores `consecutive_5xx`, end up with outlier
/// detection configured but no algorithm enabled, which is harmless.
fn outlier_detection(od: &OutlierDetection) -> cluster::OutlierDetection {
    let mut out = cluster::OutlierDetection {
        enforcing_success_rate: Some(0),
        ..Default::default()
    };
    if let Some(n) = od.consecutive_5xx_errors {
        out.consecutive_5xx = Some(n);
        out.enforcing_consecutive_5xx = Some(if n > 0 { 100 } else { 0 });
    }
    out.interval = od.interval.map(duration);
    out.base_ejection_time = od.base_ejection_time.map(duration);
    out.max_ejection_percent = od.max_ejection_percent.filter(|n| *n > 0);
    out
}

/// The SANs clients verify: the service's `subjectAltNames` and the SPIFFE ids of its
/// endpoints' service accounts (istiod's `push.ServiceAccounts`).
fn service_sans(svc: &Service<'_>) -> Vec<String> {
    let mut sans: Vec<String> = svc
        .endpoints
        .iter()
        .filter_map(|e| {
            e.service_account.as_ref().map(|sa| {
                format!(
                    "spiffe://{TRUST_DOMAIN}/ns/{}/sa/{sa}",
                    svc.se.meta.namespace
                )
            })
        })
        .chain(svc.se.subject_alt_names.iter().cloned())
        .collect();
    sans.sort();
    sans.dedup();
    sans
}

pub(crate) fn transport_socket(config: prost_types::Any) -> core_pb::TransportSocket {
    core_pb::TransportSocket {
        name: TLS_TRANSPORT_SOCKET.into(),
        config_type: Some(core_pb::transport_socket::ConfigType::TypedConfig(config)),
    }
}

/// istiod's `buildCommonTLSContext`: certificate provider instance `default` for the workload
/// certificate and `ROOTCA` for the CA, in both the current fields (14 /
/// `ca_certificate_provider_instance`, grpc ≥ 1.66) and the deprecated ones (11 / 4) that
/// older gRPC releases read.
#[allow(deprecated)] // The deprecated fields are sent on purpose, as istiod does.
pub(crate) fn common_tls_context(sans: &[String]) -> tls::CommonTlsContext {
    let plugin = |cert: &str| tls::CertificateProviderPluginInstance {
        instance_name: CERT_PROVIDER_INSTANCE.into(),
        certificate_name: cert.into(),
    };
    let legacy = |cert: &str| tls::common_tls_context::CertificateProviderInstance {
        instance_name: CERT_PROVIDER_INSTANCE.into(),
        certificate_name: cert.into(),
    };
    tls::CommonTlsContext {
        tls_certificate_provider_instance: Some(plugin(CERT_NAME)),
        tls_certificate_certificate_provider_instance: Some(legacy(CERT_NAME)),
        validation_context_type: Some(
            tls::common_tls_context::ValidationContextType::CombinedValidationContext(
                tls::common_tls_context::CombinedCertificateValidationContext {
                    default_validation_context: Some(tls::CertificateValidationContext {
                        match_subject_alt_names: sans
                            .iter()
                            .map(|s| matcher::StringMatcher {
                                match_pattern: Some(matcher::string_matcher::MatchPattern::Exact(
                                    s.clone(),
                                )),
                                ..Default::default()
                            })
                            .collect(),
                        ca_certificate_provider_instance: Some(plugin(ROOT_CA_NAME)),
                        ..Default::default()
                    }),
                    validation_context_certificate_provider_instance: Some(legacy(ROOT_CA_NAME)),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

/// One ClusterLoadAssignment per cluster of the port: the default cluster gets every endpoint,
/// a subset cluster those whose labels include the subset's.
pub(crate) fn load_assignments(
    svc: &Service<'_>,
    port: &ServicePort,
) -> Vec<endpoint::ClusterLoadAssignment> {
    let mut out = vec![load_assignment(
        svc,
        port,
        &cluster_name(port.number, "", svc.host),
        None,
    )];
    if let Some(dr) = svc.dr {
        for subset in &dr.subsets {
            out.push(load_assignment(
                svc,
                port,
                &cluster_name(port.number, &subset.name, svc.host),
                Some(&subset.labels),
            ));
        }
    }
    out
}

fn load_assignment(
    svc: &Service<'_>,
    port: &ServicePort,
    name: &str,
    subset: Option<&BTreeMap<String, String>>,
) -> endpoint::ClusterLoadAssignment {
    // Grouped by locality, localities in order, endpoints in declaration order.
    let mut by_locality: BTreeMap<&Locality, Vec<endpoint::LbEndpoint>> = BTreeMap::new();
    let mut weights: BTreeMap<&Locality, u32> = BTreeMap::new();
    for ep in &svc.endpoints {
        if let Some(sel) = subset
            && !labels_match(sel, &ep.labels)
        {
            continue;
        }
        // An unset weight is 1 (istiod), never 0, which EDS would treat as invalid.
        let weight = ep.weight.max(1);
        let total = weights.entry(&ep.locality).or_default();
        *total = total.saturating_add(weight);
        by_locality
            .entry(&ep.locality)
            .or_default()
            .push(endpoint::LbEndpoint {
                health_status: core_pb::HealthStatus::Healthy as i32,
                load_balancing_weight: Some(weight),
                host_identifier: Some(endpoint::lb_endpoint::HostIdentifier::Endpoint(
                    endpoint::Endpoint {
                        address: Some(socket_address(
                            &ep.address,
                            Service::endpoint_port(ep, port),
                        )),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            });
    }
    endpoint::ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: by_locality
            .into_iter()
            .map(|(loc, lb_endpoints)| endpoint::LocalityLbEndpoints {
                locality: Some(core_pb::Locality {
                    region: loc.region.clone(),
                    zone: loc.zone.clone(),
                    sub_zone: loc.sub_zone.clone(),
                }),
                load_balancing_weight: weights.get(loc).copied(),
                lb_endpoints,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
