//! istiod-shaped xDS resources for the benchmarks, built as protobufs the way a control plane
//! sends them (then encoded, decoded and validated like a real config).
//!
//! Shapes follow what istiod's proxyless generator emits (and what skiff's embedded control plane
//! mirrors in `skiff_core::control::translate`): `outbound|PORT|SUBSET|HOST` names, EDS over ADS,
//! HEALTHY endpoints with explicit weights grouped by zone, `RING_HASH` / `LEAST_REQUEST` from
//! DestinationRules, circuit breakers, outlier detection, mTLS through the `default` certificate
//! provider, Istio's default retry policy, `case_sensitive: true` route matches with sorted
//! header matchers.

use prost::{Message, Name};
use prost_types::Any;
use skiff_core::pb::envoy::config::cluster::v3 as cluster_pb;
use skiff_core::pb::envoy::config::core::v3 as core_pb;
use skiff_core::pb::envoy::config::endpoint::v3 as ep_pb;
use skiff_core::pb::envoy::config::route::v3 as route_pb;
use skiff_core::pb::envoy::extensions::transport_sockets::tls::v3 as tls_pb;
use skiff_core::pb::envoy::r#type::matcher::v3 as matcher_pb;

/// Packs a message into an `Any`.
pub fn pack<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// The port every benchmark service listens on.
pub const PORT: u32 = 7000;

/// `svcN.default.svc.cluster.local`.
pub fn host(n: usize) -> String {
    format!("svc{n}.default.svc.cluster.local")
}

/// istiod's cluster name `outbound|PORT|SUBSET|HOST`.
pub fn cluster_name(port: u32, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// How a benchmark cluster balances, as a DestinationRule would set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lb {
    /// Unset (gRPC's default, `ROUND_ROBIN`).
    RoundRobin,
    /// `LEAST_REQUEST`, choice_count 2.
    LeastRequest,
    /// `RING_HASH` with `minimum_ring_size` 1024 (istiod's consistentHash).
    RingHash,
}

/// An istiod-shaped EDS cluster: circuit breaker, outlier detection, mTLS.
pub fn cluster(name: &str, lb: Lb, max_requests: u32) -> cluster_pb::Cluster {
    let mut c = cluster_pb::Cluster {
        name: name.to_string(),
        alt_stat_name: format!("{name};"),
        cluster_discovery_type: Some(cluster_pb::cluster::ClusterDiscoveryType::Type(
            cluster_pb::cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster_pb::cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: name.to_string(),
        }),
        circuit_breakers: Some(cluster_pb::CircuitBreakers {
            thresholds: vec![cluster_pb::circuit_breakers::Thresholds {
                max_requests: Some(max_requests),
                ..Default::default()
            }],
            ..Default::default()
        }),
        outlier_detection: Some(cluster_pb::OutlierDetection {
            enforcing_success_rate: Some(0),
            consecutive_5xx: Some(5),
            enforcing_consecutive_5xx: Some(100),
            interval: Some(prost_types::Duration {
                seconds: 10,
                nanos: 0,
            }),
            base_ejection_time: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
            max_ejection_percent: Some(50),
            ..Default::default()
        }),
        ..Default::default()
    };
    match lb {
        Lb::RoundRobin => {}
        Lb::LeastRequest => c.lb_policy = cluster_pb::cluster::LbPolicy::LeastRequest as i32,
        Lb::RingHash => {
            c.lb_policy = cluster_pb::cluster::LbPolicy::RingHash as i32;
            c.lb_config = Some(cluster_pb::cluster::LbConfig::RingHashLbConfig(
                cluster_pb::cluster::RingHashLbConfig {
                    minimum_ring_size: Some(1024),
                    ..Default::default()
                },
            ));
        }
    }
    let ctx = tls_pb::UpstreamTlsContext {
        common_tls_context: Some(common_tls_context(&[format!(
            "spiffe://cluster.local/ns/default/sa/{}",
            name.rsplit('|').next().unwrap_or(name)
        )])),
        ..Default::default()
    };
    c.transport_socket = Some(core_pb::TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(core_pb::transport_socket::ConfigType::TypedConfig(pack(
            &ctx,
        ))),
    });
    c
}

fn ads() -> core_pb::ConfigSource {
    core_pb::ConfigSource {
        config_source_specifier: Some(core_pb::config_source::ConfigSourceSpecifier::Ads(
            core_pb::AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

/// istiod's `buildCommonTLSContext`: the `default` provider for the workload certificate and
/// `ROOTCA` for the CA, in the current and the deprecated fields.
#[allow(deprecated)]
fn common_tls_context(sans: &[String]) -> tls_pb::CommonTlsContext {
    let plugin = |cert: &str| tls_pb::CertificateProviderPluginInstance {
        instance_name: "default".into(),
        certificate_name: cert.into(),
    };
    let legacy = |cert: &str| tls_pb::common_tls_context::CertificateProviderInstance {
        instance_name: "default".into(),
        certificate_name: cert.into(),
    };
    tls_pb::CommonTlsContext {
        tls_certificate_provider_instance: Some(plugin("default")),
        tls_certificate_certificate_provider_instance: Some(legacy("default")),
        validation_context_type: Some(
            tls_pb::common_tls_context::ValidationContextType::CombinedValidationContext(
                tls_pb::common_tls_context::CombinedCertificateValidationContext {
                    default_validation_context: Some(tls_pb::CertificateValidationContext {
                        match_subject_alt_names: sans
                            .iter()
                            .map(|s| matcher_pb::StringMatcher {
                                match_pattern: Some(
                                    matcher_pb::string_matcher::MatchPattern::Exact(s.clone()),
                                ),
                                ..Default::default()
                            })
                            .collect(),
                        ca_certificate_provider_instance: Some(plugin("ROOTCA")),
                        ..Default::default()
                    }),
                    validation_context_certificate_provider_instance: Some(legacy("ROOTCA")),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    }
}

/// The IPv4 address of flat endpoint `i` of cluster `c` (unique per cluster).
pub fn endpoint_ip(c: usize, i: usize) -> String {
    let i = i as u32;
    format!(
        "10.{}.{}.{}",
        (c % 200) + (i >> 16) as usize % 50,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

/// A ClusterLoadAssignment as istiod sends it: `zones` localities (`region-1` / `zone-K`) of
/// `per_zone` HEALTHY endpoints each, endpoint weight `weight(i)` (flat index `i`), locality
/// weight = sum of its endpoint weights. `cluster_index` makes addresses differ between
/// clusters.
pub fn load_assignment(
    name: &str,
    cluster_index: usize,
    zones: usize,
    per_zone: usize,
    weight: impl Fn(usize) -> u32,
) -> ep_pb::ClusterLoadAssignment {
    let endpoints = (0..zones)
        .map(|z| {
            let lb_endpoints: Vec<ep_pb::LbEndpoint> = (0..per_zone)
                .map(|j| {
                    let i = z * per_zone + j;
                    lb_endpoint(&endpoint_ip(cluster_index, i), 8080, weight(i))
                })
                .collect();
            let total: u32 = lb_endpoints
                .iter()
                .map(|e| e.load_balancing_weight.unwrap_or(1))
                .sum();
            ep_pb::LocalityLbEndpoints {
                locality: Some(core_pb::Locality {
                    region: "region-1".into(),
                    zone: format!("zone-{z}"),
                    sub_zone: String::new(),
                }),
                load_balancing_weight: Some(total),
                lb_endpoints,
                ..Default::default()
            }
        })
        .collect();
    ep_pb::ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints,
        ..Default::default()
    }
}

/// One HEALTHY endpoint with an explicit weight (istiod's shape).
pub fn lb_endpoint(ip: &str, port: u32, weight: u32) -> ep_pb::LbEndpoint {
    ep_pb::LbEndpoint {
        health_status: core_pb::HealthStatus::Healthy as i32,
        load_balancing_weight: Some(weight),
        host_identifier: Some(ep_pb::lb_endpoint::HostIdentifier::Endpoint(
            ep_pb::Endpoint {
                address: Some(core_pb::Address {
                    address: Some(core_pb::address::Address::SocketAddress(
                        core_pb::SocketAddress {
                            address: ip.to_string(),
                            port_specifier: Some(
                                core_pb::socket_address::PortSpecifier::PortValue(port),
                            ),
                            ..Default::default()
                        },
                    )),
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

// ---- the realistic routing table ------------------------------------------------------------

/// How many gRPC services the realistic table routes by path (two routes each).
pub const SERVICES: usize = 48;
/// Routes in the realistic table.
pub const ROUTES: usize = 100;
/// Clusters in the realistic table.
pub const CLUSTERS: usize = 100;
/// Endpoints per cluster in the realistic table (two zones of five).
pub const ENDPOINTS_PER_CLUSTER: usize = 10;
/// The authority the realistic table's channel dials.
pub const AUTHORITY: &str = "svc0.default.svc.cluster.local:7000";
/// The header the consistent-hash routes hash on.
pub const HASH_HEADER: &str = "x-user-id";

/// The cluster names of the realistic table, in index order.
pub fn table_cluster_names() -> Vec<String> {
    (0..CLUSTERS)
        .map(|c| {
            let subset = if c < 2 * SERVICES && c.is_multiple_of(2) {
                "v2"
            } else {
                ""
            };
            cluster_name(PORT, subset, &host(c))
        })
        .collect()
}

/// The LB policy of cluster `c` of the realistic table: 60% round robin (gRPC's default),
/// 20% least request, 20% ring hash.
pub fn table_lb(c: usize) -> Lb {
    match c % 10 {
        6 | 7 => Lb::LeastRequest,
        8 | 9 => Lb::RingHash,
        _ => Lb::RoundRobin,
    }
}

fn string_match(p: matcher_pb::string_matcher::MatchPattern) -> matcher_pb::StringMatcher {
    matcher_pb::StringMatcher {
        match_pattern: Some(p),
        ..Default::default()
    }
}

fn header(
    name: &str,
    m: route_pb::header_matcher::HeaderMatchSpecifier,
) -> route_pb::HeaderMatcher {
    route_pb::HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(m),
        ..Default::default()
    }
}

fn exact_header(name: &str, value: &str) -> route_pb::HeaderMatcher {
    use matcher_pb::string_matcher::MatchPattern;
    header(
        name,
        route_pb::header_matcher::HeaderMatchSpecifier::StringMatch(string_match(
            MatchPattern::Exact(value.into()),
        )),
    )
}

/// Istio's default retry policy with the previous-hosts predicate.
fn retry_policy() -> route_pb::RetryPolicy {
    route_pb::RetryPolicy {
        retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
            .into(),
        num_retries: Some(2),
        host_selection_retry_max_attempts: 5,
        retry_host_predicate: vec![route_pb::retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".into(),
            config_type: Some(
                route_pb::retry_policy::retry_host_predicate::ConfigType::TypedConfig(Any {
                    type_url: "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate".into(),
                    value: Vec::new(),
                }),
            ),
        }],
        ..Default::default()
    }
}

enum Dest {
    One(usize),
    /// (cluster, weight) pairs.
    Split(Vec<(usize, u32)>),
}

#[allow(deprecated)] // istiod sets max_grpc_timeout.
fn route(
    name: String,
    path: route_pb::route_match::PathSpecifier,
    mut headers: Vec<route_pb::HeaderMatcher>,
    dest: Dest,
) -> route_pb::Route {
    use route_pb::route_action::ClusterSpecifier;
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    let names = table_cluster_names();
    let first = match &dest {
        Dest::One(c) => *c,
        Dest::Split(v) => v.first().map_or(0, |(c, _)| *c),
    };
    let cluster_specifier = match dest {
        Dest::One(c) => ClusterSpecifier::Cluster(names[c].clone()),
        Dest::Split(v) => ClusterSpecifier::WeightedClusters(route_pb::WeightedCluster {
            clusters: v
                .into_iter()
                .map(|(c, w)| route_pb::weighted_cluster::ClusterWeight {
                    name: names[c].clone(),
                    weight: Some(w),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    };
    let consistent_hash = table_lb(first) == Lb::RingHash;
    let mut retry = retry_policy();
    if consistent_hash {
        retry.retry_host_predicate.clear();
    }
    let hash_policy = if consistent_hash {
        vec![route_pb::route_action::HashPolicy {
            policy_specifier: Some(
                route_pb::route_action::hash_policy::PolicySpecifier::Header(
                    route_pb::route_action::hash_policy::Header {
                        header_name: HASH_HEADER.into(),
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        }]
    } else {
        Vec::new()
    };
    route_pb::Route {
        name,
        r#match: Some(route_pb::RouteMatch {
            path_specifier: Some(path),
            headers,
            case_sensitive: Some(true),
            ..Default::default()
        }),
        decorator: Some(route_pb::Decorator {
            operation: format!("{AUTHORITY}/*"),
            ..Default::default()
        }),
        action: Some(route_pb::route::Action::Route(route_pb::RouteAction {
            cluster_specifier: Some(cluster_specifier),
            retry_policy: Some(retry),
            hash_policy,
            timeout: Some(prost_types::Duration::default()),
            max_grpc_timeout: Some(prost_types::Duration::default()),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The gRPC service path prefix of service `k`.
pub fn service_prefix(k: usize) -> String {
    format!("/acme.pkg{k}.v1.Service{k}/")
}

/// The realistic route configuration: one virtual host (istiod's domain list) with 100 routes.
///
/// - routes `2k` / `2k+1` for the 48 services `k`: prefix `/acme.pkgK.v1.ServiceK/`; the first
///   also requires `x-tenant: tenant-K` (exact) and, for even `k`, `x-version` with prefix `v2`,
///   and goes to the `v2` subset cluster `2k`; the second is the service's default route, to
///   cluster `2k+1`, or for `k.is_multiple_of(3)` a 90/10 weighted split between `2k+1` and `2k`;
/// - route 96: exact path `/grpc.health.v1.Health/Check`;
/// - route 97: regex path `/acme\.admin\.v[0-9]+\.Admin/.*` with `x-debug` present;
/// - route 98: prefix `/` with a `user-agent` regex `grpc-go/1\.[0-9]+\..*` (safe_regex);
/// - route 99: the catch-all `/`.
pub fn route_configuration() -> route_pb::RouteConfiguration {
    use matcher_pb::string_matcher::MatchPattern;
    use route_pb::header_matcher::HeaderMatchSpecifier as H;
    use route_pb::route_match::PathSpecifier as P;
    let mut routes = Vec::with_capacity(ROUTES);
    for k in 0..SERVICES {
        let mut headers = vec![exact_header("x-tenant", &format!("tenant-{k}"))];
        if k.is_multiple_of(2) {
            headers.push(header(
                "x-version",
                H::StringMatch(string_match(MatchPattern::Prefix("v2".into()))),
            ));
        }
        routes.push(route(
            format!("svc{k}-v2"),
            P::Prefix(service_prefix(k)),
            headers,
            Dest::One(2 * k),
        ));
        let dest = if k.is_multiple_of(3) {
            Dest::Split(vec![(2 * k + 1, 90), (2 * k, 10)])
        } else {
            Dest::One(2 * k + 1)
        };
        routes.push(route(
            format!("svc{k}-default"),
            P::Prefix(service_prefix(k)),
            Vec::new(),
            dest,
        ));
    }
    routes.push(route(
        "health".into(),
        P::Path("/grpc.health.v1.Health/Check".into()),
        Vec::new(),
        Dest::One(96),
    ));
    routes.push(route(
        "admin".into(),
        P::SafeRegex(matcher_pb::RegexMatcher {
            regex: r"/acme\.admin\.v[0-9]+\.Admin/.*".into(),
            ..Default::default()
        }),
        vec![header("x-debug", H::PresentMatch(true))],
        Dest::One(97),
    ));
    routes.push(route(
        "go-clients".into(),
        P::Prefix("/".into()),
        vec![header(
            "user-agent",
            H::StringMatch(string_match(MatchPattern::SafeRegex(
                matcher_pb::RegexMatcher {
                    regex: r"grpc-go/1\.[0-9]+\..*".into(),
                    ..Default::default()
                },
            ))),
        )],
        Dest::One(98),
    ));
    routes.push(route(
        "default".into(),
        P::Prefix("/".into()),
        Vec::new(),
        Dest::One(99),
    ));
    debug_assert_eq!(routes.len(), ROUTES);
    let h = host(0);
    route_pb::RouteConfiguration {
        name: cluster_name(PORT, "", &h),
        virtual_hosts: vec![route_pb::VirtualHost {
            name: AUTHORITY.into(),
            domains: vec![
                h.clone(),
                format!("{h}:{PORT}"),
                format!("{h}."),
                format!("{h}.:{PORT}"),
                "svc0".into(),
                format!("svc0:{PORT}"),
                "svc0.default.svc".into(),
                format!("svc0.default.svc:{PORT}"),
                "svc0.default".into(),
                format!("svc0.default:{PORT}"),
                "10.96.0.10".into(),
                format!("10.96.0.10:{PORT}"),
            ],
            routes,
            include_request_attempt_count: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One request of the realistic mix: `:path` and metadata, as owned strings.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// `:path`.
    pub path: String,
    /// Metadata, in wire order.
    pub headers: Vec<(String, String)>,
}

/// A deterministic mix of `n` requests over the realistic table: mostly calls to the 48
/// services (uniformly, half of them carrying the tenant header of their `v2` route), plus
/// health checks, admin calls and unknown services. Every request carries the usual gRPC
/// metadata (content-type, user-agent, te, grpc-timeout, a request id) and a user id.
pub fn request_mix(n: usize) -> Vec<RequestSpec> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: deterministic, dependency-free.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|i| {
            let r = next();
            let k = (r % SERVICES as u64) as usize;
            let kind = (r >> 32) % 100;
            let mut headers = vec![
                ("content-type".to_string(), "application/grpc".to_string()),
                (
                    "user-agent".to_string(),
                    "grpc-java-netty/1.68.1".to_string(),
                ),
                ("te".to_string(), "trailers".to_string()),
                ("grpc-timeout".to_string(), "2S".to_string()),
                ("x-request-id".to_string(), format!("{:016x}", next())),
                (HASH_HEADER.to_string(), format!("user-{}", next() % 10_000)),
            ];
            let path = match kind {
                0..=44 => {
                    headers.push(("x-tenant".into(), format!("tenant-{k}")));
                    if k.is_multiple_of(2) {
                        headers.push(("x-version".into(), "v2.3".into()));
                    }
                    format!("{}Method{}", service_prefix(k), i % 7)
                }
                45..=89 => {
                    headers.push(("x-tenant".into(), "tenant-other".into()));
                    format!("{}Method{}", service_prefix(k), i % 7)
                }
                90..=94 => "/grpc.health.v1.Health/Check".into(),
                95..=96 => {
                    headers.push(("x-debug".into(), "1".into()));
                    "/acme.admin.v2.Admin/Dump".into()
                }
                97 => {
                    headers[1].1 = "grpc-go/1.66.2".into();
                    "/acme.unknown.v1.Other/Call".into()
                }
                _ => "/acme.unknown.v1.Other/Call".into(),
            };
            RequestSpec { path, headers }
        })
        .collect()
}
