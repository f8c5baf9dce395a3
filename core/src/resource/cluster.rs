//! Validated cluster model: what a `Cluster` (CDS) resource means to skiff.
//!
//! The rules follow gRPC's: gRFC A27 (EDS clusters, `lrs_server`), A37 (aggregate and
//! LOGICAL_DNS clusters), A32 (circuit breaking), A42/A48/A52 (LB policy, see
//! [`super::lb_policy`]), A50 (outlier detection, see [`super::outlier`]) and A29 (TLS, see
//! [`super::tls`]). Unsupported values are rejected; fields gRPC ignores are recorded in
//! [`Ignored`]. Paths are proto field names relative to the `Cluster`.

use std::sync::Arc;

use super::lb_policy::{LbPolicy, validate_cluster_lb_policy};
use super::outlier::{OutlierDetection, validate_outlier_detection};
use super::tls::{UpstreamTls, merge_ignored, validate_upstream_transport_socket};
use super::{Ignored, ValidationError};
use crate::pb::envoy::config::cluster::v3 as clusterpb;
use crate::pb::envoy::config::core::v3 as corepb;
use crate::pb::envoy::extensions::clusters::aggregate::v3 as aggregatepb;

/// `max_requests` when no DEFAULT-priority threshold sets it (gRFC A32, Envoy's default).
pub const DEFAULT_MAX_REQUESTS: u32 = 1024;

/// How a cluster finds its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterDiscovery {
    /// `type: EDS` (gRFC A27): endpoints come from the EDS resource named
    /// [`ClusterConfig::eds_resource_name`], over the same ADS stream.
    Eds {
        /// `eds_cluster_config.service_name`, `None` when empty (then the cluster name is the
        /// EDS resource name). istiod sets it to the cluster name.
        service_name: Option<String>,
    },
    /// `type: LOGICAL_DNS` (gRFC A37): resolve `host` and connect to the addresses found.
    LogicalDns {
        /// Host name (or IP literal) from the single `load_assignment` endpoint.
        host: String,
        /// Port from the same endpoint, 1..=65535.
        port: u16,
    },
    /// Custom cluster type `envoy.clusters.aggregate` (gRFC A37): try these clusters in
    /// priority order. Never empty, no empty names.
    Aggregate {
        /// `ClusterConfig.clusters`, highest priority first.
        clusters: Vec<String>,
    },
}

/// A validated `Cluster`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// `name` (the CDS resource name), e.g. `outbound|7000|v1|echo.default.svc.cluster.local`.
    pub name: String,
    /// Where the endpoints come from.
    pub discovery: ClusterDiscovery,
    /// The balancer inside each locality (from `lb_policy` + `*_lb_config`, or the first
    /// supported entry of `load_balancing_policy`, gRFC A52). For aggregate clusters gRFC A75
    /// uses the leaf clusters' policies; this one is validated but not used.
    pub lb_policy: LbPolicy,
    /// Circuit breaker: most RPCs in flight to this cluster at once (gRFC A32;
    /// `circuit_breakers.thresholds[priority=DEFAULT].max_requests`, default 1024).
    pub max_requests: u32,
    /// `outlier_detection`, `None` when the field is absent (then nothing is ejected).
    pub outlier_detection: Option<OutlierDetection>,
    /// `transport_socket` TLS (gRFC A29); `None` means plaintext.
    pub tls: Option<UpstreamTls>,
    /// `lrs_server` is set (to `self`, the only form allowed): report load to the management
    /// server this cluster came from (gRFC A27).
    pub lrs_report_to_self: bool,
}

impl ClusterConfig {
    /// The EDS resource to subscribe to: `service_name` if set, else the cluster name
    /// (gRFC A27). `None` for non-EDS clusters.
    pub fn eds_resource_name(&self) -> Option<&str> {
        match &self.discovery {
            ClusterDiscovery::Eds { service_name } => {
                Some(service_name.as_deref().unwrap_or(&self.name))
            }
            _ => None,
        }
    }
}

/// Shared, immutable cluster: snapshots hand these out without copying.
pub type SharedCluster = Arc<ClusterConfig>;

/// Validates a `Cluster` resource (gRFC A27, A29, A32, A37, A42, A48, A50, A52).
///
/// Rejected, among others: discovery types other than EDS / LOGICAL_DNS / aggregate, EDS config
/// sources other than `ads` / `self`, LB policies skiff cannot run, out-of-range LB and outlier
/// detection values, transport sockets other than TLS from certificate-provider instances,
/// `transport_socket_matches`, and `lrs_server` other than `self`.
pub fn validate_cluster(
    cluster: &clusterpb::Cluster,
    ignored: &mut Ignored,
) -> Result<ClusterConfig, ValidationError> {
    if cluster.name.is_empty() {
        return Err(ValidationError::new(
            "name",
            "must not be empty: it is the CDS resource name",
        ));
    }
    let discovery = discovery(cluster, ignored)?;
    let lb_policy = if matches!(discovery, ClusterDiscovery::Aggregate { .. })
        && cluster.load_balancing_policy.is_none()
        && cluster.lb_policy == clusterpb::cluster::LbPolicy::ClusterProvided as i32
    {
        // Envoy documents CLUSTER_PROVIDED as the lb_policy of an aggregate cluster, and
        // gRFC A75 takes the LB policy from the leaf clusters anyway, so accept it here.
        ignored.note("lb_policy");
        LbPolicy::RoundRobin
    } else {
        validate_cluster_lb_policy(cluster, ignored)?
    };
    let max_requests = max_requests(cluster.circuit_breakers.as_ref(), ignored);

    let outlier_detection = match &cluster.outlier_detection {
        None => None,
        Some(od) => {
            let mut inner = Ignored::default();
            let od = validate_outlier_detection(od, &mut inner)
                .map_err(|e| e.within("outlier_detection"))?;
            merge_ignored(ignored, "outlier_detection", &inner);
            Some(od)
        }
    };

    // A29 does not support per-endpoint transport sockets; ignoring them could send plaintext
    // where the control plane asked for TLS.
    if !cluster.transport_socket_matches.is_empty() {
        return Err(ValidationError::new(
            "transport_socket_matches",
            "not supported: set transport_socket (gRFC A29)",
        ));
    }
    if cluster.transport_socket_matcher.is_some() {
        return Err(ValidationError::new(
            "transport_socket_matcher",
            "not supported: set transport_socket (gRFC A29)",
        ));
    }
    let tls = match &cluster.transport_socket {
        None => None,
        Some(ts) => {
            let mut inner = Ignored::default();
            let tls = validate_upstream_transport_socket(ts, &mut inner)
                .map_err(|e| e.within("transport_socket"))?;
            merge_ignored(ignored, "transport_socket", &inner);
            Some(tls)
        }
    };

    let lrs_report_to_self = match &cluster.lrs_server {
        None => false,
        Some(cs) => match &cs.config_source_specifier {
            Some(corepb::config_source::ConfigSourceSpecifier::Self_(_)) => true,
            _ => {
                return Err(ValidationError::new(
                    "lrs_server",
                    "only self is supported: load is reported to the management server the \
                     cluster came from (gRFC A27)",
                ));
            }
        },
    };

    note_ignored_cluster_fields(cluster, ignored);

    Ok(ClusterConfig {
        name: cluster.name.clone(),
        discovery,
        lb_policy,
        max_requests,
        outlier_detection,
        tls,
        lrs_report_to_self,
    })
}

fn discovery(
    cluster: &clusterpb::Cluster,
    ignored: &mut Ignored,
) -> Result<ClusterDiscovery, ValidationError> {
    use clusterpb::cluster::ClusterDiscoveryType as T;
    use clusterpb::cluster::DiscoveryType as D;
    let kind = match &cluster.cluster_discovery_type {
        Some(T::ClusterType(ct)) => return aggregate(ct, cluster, ignored),
        Some(T::Type(t)) => D::try_from(*t)
            .map_err(|_| ValidationError::new("type", format!("unknown discovery type {t}")))?,
        // An unset oneof is proto3's default, STATIC.
        None => D::Static,
    };
    let reject = |what: &str| {
        Err(ValidationError::new(
            "type",
            format!(
                "{what} clusters are not supported: use EDS, LOGICAL_DNS or an aggregate \
                 cluster_type (gRFC A27, A37)"
            ),
        ))
    };
    match kind {
        D::Eds => eds(cluster, ignored),
        D::LogicalDns => logical_dns(cluster, ignored),
        D::Static => reject("STATIC (the default when type is unset)"),
        D::StrictDns => reject("STRICT_DNS"),
        D::OriginalDst => reject("ORIGINAL_DST"),
    }
}

fn eds(
    cluster: &clusterpb::Cluster,
    ignored: &mut Ignored,
) -> Result<ClusterDiscovery, ValidationError> {
    use corepb::config_source::ConfigSourceSpecifier as S;
    let Some(cfg) = &cluster.eds_cluster_config else {
        return Err(ValidationError::new(
            "eds_cluster_config",
            "must be set for an EDS cluster, with eds_config ads or self (gRFC A27)",
        ));
    };
    let Some(source) = &cfg.eds_config else {
        return Err(ValidationError::new(
            "eds_cluster_config.eds_config",
            "must be set to ads or self (gRFC A27)",
        ));
    };
    match &source.config_source_specifier {
        // istiod sends `ads: {}`; grpc-go also accepts `self`.
        Some(S::Ads(_)) | Some(S::Self_(_)) => {}
        _ => {
            return Err(ValidationError::new(
                "eds_cluster_config.eds_config",
                "only ads or self config sources are supported: endpoints come over the same \
                 ADS stream (gRFC A27)",
            ));
        }
    }
    for (name, set) in [
        (
            "eds_cluster_config.eds_config.initial_fetch_timeout",
            source.initial_fetch_timeout.is_some(),
        ),
        (
            "eds_cluster_config.eds_config.resource_api_version",
            source.resource_api_version != 0,
        ),
        (
            "eds_cluster_config.eds_config.authorities",
            !source.authorities.is_empty(),
        ),
        ("load_assignment", cluster.load_assignment.is_some()),
    ] {
        if set {
            ignored.note(name);
        }
    }
    let service_name = (!cfg.service_name.is_empty()).then(|| cfg.service_name.clone());
    // gRFC A47: a new-style (xdstp:) cluster name cannot double as an EDS resource name.
    if service_name.is_none() && cluster.name.starts_with("xdstp:") {
        return Err(ValidationError::new(
            "eds_cluster_config.service_name",
            "must be set when the cluster name is an xdstp: name (gRFC A47)",
        ));
    }
    Ok(ClusterDiscovery::Eds { service_name })
}

fn logical_dns(
    cluster: &clusterpb::Cluster,
    ignored: &mut Ignored,
) -> Result<ClusterDiscovery, ValidationError> {
    use crate::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    use corepb::address::Address as A;
    use corepb::socket_address::PortSpecifier;
    // A37: load_assignment with exactly one locality holding exactly one endpoint.
    let Some(la) = &cluster.load_assignment else {
        return Err(ValidationError::new(
            "load_assignment",
            "must be set for a LOGICAL_DNS cluster (gRFC A37)",
        ));
    };
    let [locality] = la.endpoints.as_slice() else {
        return Err(ValidationError::new(
            "load_assignment.endpoints",
            format!(
                "must have exactly one locality for a LOGICAL_DNS cluster, got {} (gRFC A37)",
                la.endpoints.len()
            ),
        ));
    };
    let [lb_endpoint] = locality.lb_endpoints.as_slice() else {
        return Err(ValidationError::new(
            "load_assignment.endpoints[0].lb_endpoints",
            format!(
                "must have exactly one endpoint for a LOGICAL_DNS cluster, got {} (gRFC A37)",
                locality.lb_endpoints.len()
            ),
        ));
    };
    const EP: &str = "load_assignment.endpoints[0].lb_endpoints[0].endpoint";
    let Some(HostIdentifier::Endpoint(ep)) = &lb_endpoint.host_identifier else {
        return Err(ValidationError::new(EP, "must be set (gRFC A37)"));
    };
    let Some(A::SocketAddress(sa)) = ep.address.as_ref().and_then(|a| a.address.as_ref()) else {
        return Err(ValidationError::new(
            format!("{EP}.address.socket_address"),
            "must be set (gRFC A37)",
        ));
    };
    if sa.address.is_empty() {
        return Err(ValidationError::new(
            format!("{EP}.address.socket_address.address"),
            "must not be empty (gRFC A37)",
        ));
    }
    // A custom resolver would have to be honoured to find the right addresses.
    if !sa.resolver_name.is_empty() {
        return Err(ValidationError::new(
            format!("{EP}.address.socket_address.resolver_name"),
            format!("custom resolver {:?} is not supported", sa.resolver_name),
        ));
    }
    let port = match &sa.port_specifier {
        Some(PortSpecifier::PortValue(p)) => u16::try_from(*p).ok().filter(|p| *p != 0),
        _ => None,
    };
    let Some(port) = port else {
        return Err(ValidationError::new(
            format!("{EP}.address.socket_address.port_value"),
            "must be set to a TCP port in 1..=65535 (gRFC A37)",
        ));
    };
    if cluster.eds_cluster_config.is_some() {
        ignored.note("eds_cluster_config");
    }
    Ok(ClusterDiscovery::LogicalDns {
        host: sa.address.clone(),
        port,
    })
}

fn aggregate(
    ct: &clusterpb::cluster::CustomClusterType,
    cluster: &clusterpb::Cluster,
    ignored: &mut Ignored,
) -> Result<ClusterDiscovery, ValidationError> {
    use prost::Name;
    let Some(any) = &ct.typed_config else {
        return Err(ValidationError::new(
            "cluster_type.typed_config",
            "must be set to an envoy.extensions.clusters.aggregate.v3.ClusterConfig (gRFC A37)",
        ));
    };
    // A37 identifies the aggregate cluster by the config's type, not by `name`.
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    if type_name != aggregatepb::ClusterConfig::full_name() {
        return Err(ValidationError::new(
            "cluster_type",
            format!(
                "unsupported custom cluster type {:?} ({}): only envoy.clusters.aggregate is \
                 supported (gRFC A37)",
                ct.name, any.type_url
            ),
        ));
    }
    let cfg: aggregatepb::ClusterConfig = any.to_msg().map_err(|e| {
        ValidationError::new(
            "cluster_type.typed_config",
            format!("cannot decode ClusterConfig: {e}"),
        )
    })?;
    if cfg.clusters.is_empty() {
        return Err(ValidationError::new(
            "cluster_type.typed_config.clusters",
            "must name at least one cluster (gRFC A37)",
        ));
    }
    if let Some(i) = cfg.clusters.iter().position(String::is_empty) {
        return Err(ValidationError::new(
            format!("cluster_type.typed_config.clusters[{i}]"),
            "must not be empty: it is a CDS resource name",
        ));
    }
    for (name, set) in [
        ("eds_cluster_config", cluster.eds_cluster_config.is_some()),
        ("load_assignment", cluster.load_assignment.is_some()),
    ] {
        if set {
            ignored.note(name);
        }
    }
    Ok(ClusterDiscovery::Aggregate {
        clusters: cfg.clusters,
    })
}

/// gRFC A32: "gRPC will look only at the first entry in the list for priority DEFAULT", and of
/// it only `max_requests`; everything else is recorded as ignored.
fn max_requests(cb: Option<&clusterpb::CircuitBreakers>, ignored: &mut Ignored) -> u32 {
    let Some(cb) = cb else {
        return DEFAULT_MAX_REQUESTS;
    };
    let mut found = None;
    for (i, t) in cb.thresholds.iter().enumerate() {
        // istiod sends its threshold without a priority, which is DEFAULT (0).
        if found.is_some() || t.priority != corepb::RoutingPriority::Default as i32 {
            ignored.note(format!("circuit_breakers.thresholds[{i}]"));
            continue;
        }
        found = Some(t.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS));
        for (name, set) in [
            ("max_connections", t.max_connections.is_some()),
            ("max_pending_requests", t.max_pending_requests.is_some()),
            ("max_retries", t.max_retries.is_some()),
            ("retry_budget", t.retry_budget.is_some()),
            ("track_remaining", t.track_remaining),
            ("max_connection_pools", t.max_connection_pools.is_some()),
        ] {
            if set {
                ignored.note(format!("circuit_breakers.thresholds[{i}].{name}"));
            }
        }
    }
    if !cb.per_host_thresholds.is_empty() {
        ignored.note("circuit_breakers.per_host_thresholds");
    }
    found.unwrap_or(DEFAULT_MAX_REQUESTS)
}

/// Fields gRPC does not read. istiod sends some of them (`alt_stat_name` with a trailing `;`,
/// `common_lb_config.override_host_status`), so they must not be errors.
#[allow(deprecated)] // Reads deprecated fields only to report them as ignored.
fn note_ignored_cluster_fields(c: &clusterpb::Cluster, ignored: &mut Ignored) {
    for (name, set) in [
        ("alt_stat_name", !c.alt_stat_name.is_empty()),
        ("stats_matcher", c.stats_matcher.is_some()),
        ("connect_timeout", c.connect_timeout.is_some()),
        (
            "per_connection_buffer_limit_bytes",
            c.per_connection_buffer_limit_bytes.is_some(),
        ),
        (
            "per_connection_buffer_high_watermark_timeout",
            c.per_connection_buffer_high_watermark_timeout.is_some(),
        ),
        ("health_checks", !c.health_checks.is_empty()),
        (
            "max_requests_per_connection",
            c.max_requests_per_connection.is_some(),
        ),
        (
            "upstream_http_protocol_options",
            c.upstream_http_protocol_options.is_some(),
        ),
        (
            "common_http_protocol_options",
            c.common_http_protocol_options.is_some(),
        ),
        ("http_protocol_options", c.http_protocol_options.is_some()),
        ("http2_protocol_options", c.http2_protocol_options.is_some()),
        (
            "typed_extension_protocol_options",
            !c.typed_extension_protocol_options.is_empty(),
        ),
        ("dns_refresh_rate", c.dns_refresh_rate.is_some()),
        ("dns_jitter", c.dns_jitter.is_some()),
        (
            "dns_failure_refresh_rate",
            c.dns_failure_refresh_rate.is_some(),
        ),
        ("respect_dns_ttl", c.respect_dns_ttl),
        ("dns_lookup_family", c.dns_lookup_family != 0),
        ("dns_resolvers", !c.dns_resolvers.is_empty()),
        ("use_tcp_for_dns_lookups", c.use_tcp_for_dns_lookups),
        ("dns_resolution_config", c.dns_resolution_config.is_some()),
        (
            "typed_dns_resolver_config",
            c.typed_dns_resolver_config.is_some(),
        ),
        ("wait_for_warm_on_init", c.wait_for_warm_on_init.is_some()),
        ("cleanup_interval", c.cleanup_interval.is_some()),
        ("upstream_bind_config", c.upstream_bind_config.is_some()),
        ("lb_subset_config", c.lb_subset_config.is_some()),
        ("common_lb_config", c.common_lb_config.is_some()),
        ("metadata", c.metadata.is_some()),
        ("protocol_selection", c.protocol_selection != 0),
        (
            "upstream_connection_options",
            c.upstream_connection_options.is_some(),
        ),
        (
            "close_connections_on_host_health_failure",
            c.close_connections_on_host_health_failure,
        ),
        (
            "ignore_health_on_host_removal",
            c.ignore_health_on_host_removal,
        ),
        ("filters", !c.filters.is_empty()),
        (
            "lrs_report_endpoint_metrics",
            !c.lrs_report_endpoint_metrics.is_empty(),
        ),
        ("track_timeout_budgets", c.track_timeout_budgets),
        ("upstream_config", c.upstream_config.is_some()),
        ("track_cluster_stats", c.track_cluster_stats.is_some()),
        ("preconnect_policy", c.preconnect_policy.is_some()),
        (
            "connection_pool_per_downstream_connection",
            c.connection_pool_per_downstream_connection,
        ),
        ("queuing_policies", c.queuing_policies.is_some()),
    ] {
        if set {
            ignored.note(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::core::v3::transport_socket::ConfigType;
    use crate::pb::envoy::extensions::load_balancing_policies as lbpb;
    use crate::pb::envoy::extensions::transport_sockets::tls::v3 as tlspb;
    use crate::resource::tls::{CertInstance, SanPattern, TLS_TRANSPORT_SOCKET_NAME};
    use clusterpb::cluster::{ClusterDiscoveryType, DiscoveryType, LbConfig};
    use prost::Name;

    const NAME: &str = "outbound|7000|v1|echo.default.svc.cluster.local";

    fn any_of<M: prost::Message + Name>(m: &M) -> prost_types::Any {
        prost_types::Any::from_msg(m).unwrap()
    }

    /// The cluster istiod's grpcgen `edsCluster` builds.
    fn istio_cluster() -> clusterpb::Cluster {
        clusterpb::Cluster {
            name: NAME.into(),
            alt_stat_name: format!("{NAME};"),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
            eds_cluster_config: Some(clusterpb::cluster::EdsClusterConfig {
                service_name: NAME.into(),
                eds_config: Some(corepb::ConfigSource {
                    config_source_specifier: Some(
                        corepb::config_source::ConfigSourceSpecifier::Ads(
                            corepb::AggregatedConfigSource {},
                        ),
                    ),
                    ..Default::default()
                }),
            }),
            lb_policy: clusterpb::cluster::LbPolicy::RoundRobin as i32,
            ..Default::default()
        }
    }

    fn check(c: &clusterpb::Cluster) -> Result<ClusterConfig, ValidationError> {
        validate_cluster(c, &mut Ignored::default())
    }

    #[test]
    fn istio_eds_cluster() {
        let mut ig = Ignored::default();
        let got = validate_cluster(&istio_cluster(), &mut ig).unwrap();
        assert_eq!(
            got,
            ClusterConfig {
                name: NAME.into(),
                discovery: ClusterDiscovery::Eds {
                    service_name: Some(NAME.into()),
                },
                lb_policy: LbPolicy::RoundRobin,
                max_requests: DEFAULT_MAX_REQUESTS,
                outlier_detection: None,
                tls: None,
                lrs_report_to_self: false,
            }
        );
        assert_eq!(got.eds_resource_name(), Some(NAME));
        assert_eq!(ig.fields(), ["alt_stat_name"]);
    }

    #[test]
    fn istio_cluster_with_override_host_status_and_circuit_breaker() {
        let mut c = istio_cluster();
        c.common_lb_config = Some(clusterpb::cluster::CommonLbConfig {
            override_host_status: Some(corepb::HealthStatusSet {
                statuses: vec![corepb::HealthStatus::Healthy as i32],
            }),
            ..Default::default()
        });
        // istiod (2025+) maps http2MaxRequests; the threshold has no priority.
        c.circuit_breakers = Some(clusterpb::CircuitBreakers {
            thresholds: vec![clusterpb::circuit_breakers::Thresholds {
                max_requests: Some(100),
                max_connections: Some(10),
                ..Default::default()
            }],
            per_host_thresholds: vec![],
        });
        let mut ig = Ignored::default();
        let got = validate_cluster(&c, &mut ig).unwrap();
        assert_eq!(got.max_requests, 100);
        assert_eq!(
            ig.fields(),
            [
                "circuit_breakers.thresholds[0].max_connections",
                "alt_stat_name",
                "common_lb_config"
            ]
        );
    }

    #[test]
    fn circuit_breaker_uses_first_default_threshold() {
        let mut c = istio_cluster();
        c.circuit_breakers = Some(clusterpb::CircuitBreakers {
            thresholds: vec![
                clusterpb::circuit_breakers::Thresholds {
                    priority: corepb::RoutingPriority::High as i32,
                    max_requests: Some(5),
                    ..Default::default()
                },
                clusterpb::circuit_breakers::Thresholds {
                    max_requests: Some(7),
                    ..Default::default()
                },
                clusterpb::circuit_breakers::Thresholds {
                    max_requests: Some(9),
                    ..Default::default()
                },
            ],
            per_host_thresholds: vec![],
        });
        let mut ig = Ignored::default();
        assert_eq!(validate_cluster(&c, &mut ig).unwrap().max_requests, 7);
        assert_eq!(
            &ig.fields()[..2],
            [
                "circuit_breakers.thresholds[0]",
                "circuit_breakers.thresholds[2]"
            ]
        );

        // A DEFAULT threshold without max_requests keeps the A32 default.
        c.circuit_breakers = Some(clusterpb::CircuitBreakers {
            thresholds: vec![clusterpb::circuit_breakers::Thresholds::default()],
            per_host_thresholds: vec![],
        });
        assert_eq!(check(&c).unwrap().max_requests, 1024);
    }

    #[test]
    fn eds_config_source_must_be_ads_or_self() {
        let mut c = istio_cluster();
        c.eds_cluster_config.as_mut().unwrap().eds_config = Some(corepb::ConfigSource {
            config_source_specifier: Some(corepb::config_source::ConfigSourceSpecifier::Self_(
                corepb::SelfConfigSource::default(),
            )),
            ..Default::default()
        });
        assert!(check(&c).is_ok());

        c.eds_cluster_config.as_mut().unwrap().eds_config = Some(corepb::ConfigSource {
            config_source_specifier: Some(
                corepb::config_source::ConfigSourceSpecifier::ApiConfigSource(
                    corepb::ApiConfigSource::default(),
                ),
            ),
            ..Default::default()
        });
        assert_eq!(
            check(&c).unwrap_err().field,
            "eds_cluster_config.eds_config"
        );

        c.eds_cluster_config.as_mut().unwrap().eds_config = None;
        assert_eq!(
            check(&c).unwrap_err().field,
            "eds_cluster_config.eds_config"
        );

        c.eds_cluster_config = None;
        assert_eq!(check(&c).unwrap_err().field, "eds_cluster_config");
    }

    #[test]
    fn empty_service_name_means_cluster_name() {
        let mut c = istio_cluster();
        c.eds_cluster_config.as_mut().unwrap().service_name.clear();
        let got = check(&c).unwrap();
        assert_eq!(got.discovery, ClusterDiscovery::Eds { service_name: None });
        assert_eq!(got.eds_resource_name(), Some(NAME));

        c.name = "xdstp://authority/envoy.config.cluster.v3.Cluster/c".into();
        assert_eq!(
            check(&c).unwrap_err().field,
            "eds_cluster_config.service_name"
        );
    }

    #[test]
    fn unsupported_discovery_types_are_rejected() {
        for t in [
            DiscoveryType::Static,
            DiscoveryType::StrictDns,
            DiscoveryType::OriginalDst,
        ] {
            let mut c = istio_cluster();
            c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(t as i32));
            let err = check(&c).unwrap_err();
            assert_eq!(err.field, "type");
            assert!(err.reason.contains(t.as_str_name()), "{err}");
        }
        let mut c = istio_cluster();
        c.cluster_discovery_type = None;
        assert!(check(&c).unwrap_err().reason.contains("STATIC"));
        c.name.clear();
        assert_eq!(check(&c).unwrap_err().field, "name");
    }

    fn dns_cluster(host: &str, port: u32) -> clusterpb::Cluster {
        use crate::pb::envoy::config::endpoint::v3 as endpointpb;
        clusterpb::Cluster {
            name: "dns".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(
                DiscoveryType::LogicalDns as i32,
            )),
            load_assignment: Some(endpointpb::ClusterLoadAssignment {
                cluster_name: "dns".into(),
                endpoints: vec![endpointpb::LocalityLbEndpoints {
                    lb_endpoints: vec![endpointpb::LbEndpoint {
                        host_identifier: Some(endpointpb::lb_endpoint::HostIdentifier::Endpoint(
                            endpointpb::Endpoint {
                                address: Some(corepb::Address {
                                    address: Some(corepb::address::Address::SocketAddress(
                                        corepb::SocketAddress {
                                            address: host.into(),
                                            port_specifier: Some(
                                                corepb::socket_address::PortSpecifier::PortValue(
                                                    port,
                                                ),
                                            ),
                                            ..Default::default()
                                        },
                                    )),
                                }),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn logical_dns_cluster() {
        let got = check(&dns_cluster("echo.example.com", 443)).unwrap();
        assert_eq!(
            got.discovery,
            ClusterDiscovery::LogicalDns {
                host: "echo.example.com".into(),
                port: 443,
            }
        );
        assert_eq!(got.eds_resource_name(), None);

        let err = check(&dns_cluster("", 443)).unwrap_err();
        assert_eq!(
            err.field,
            "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address"
        );
        let err = check(&dns_cluster("h", 0)).unwrap_err();
        assert!(err.field.ends_with("port_value"), "{err}");

        let mut two = dns_cluster("h", 1);
        let la = two.load_assignment.as_mut().unwrap();
        let first = la.endpoints[0].clone();
        la.endpoints.push(first);
        assert_eq!(check(&two).unwrap_err().field, "load_assignment.endpoints");

        let mut two = dns_cluster("h", 1);
        let eps = &mut two.load_assignment.as_mut().unwrap().endpoints[0].lb_endpoints;
        let first = eps[0].clone();
        eps.push(first);
        assert_eq!(
            check(&two).unwrap_err().field,
            "load_assignment.endpoints[0].lb_endpoints"
        );

        let mut none = dns_cluster("h", 1);
        none.load_assignment = None;
        assert_eq!(check(&none).unwrap_err().field, "load_assignment");
    }

    fn aggregate_cluster(clusters: &[&str]) -> clusterpb::Cluster {
        clusterpb::Cluster {
            name: "agg".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::ClusterType(
                clusterpb::cluster::CustomClusterType {
                    name: "envoy.clusters.aggregate".into(),
                    typed_config: Some(any_of(&aggregatepb::ClusterConfig {
                        clusters: clusters.iter().map(|s| s.to_string()).collect(),
                    })),
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn aggregate_cluster_rules() {
        let got = check(&aggregate_cluster(&["primary", "fallback"])).unwrap();
        assert_eq!(
            got.discovery,
            ClusterDiscovery::Aggregate {
                clusters: vec!["primary".into(), "fallback".into()],
            }
        );
        assert_eq!(
            check(&aggregate_cluster(&[])).unwrap_err().field,
            "cluster_type.typed_config.clusters"
        );
        assert_eq!(
            check(&aggregate_cluster(&["a", ""])).unwrap_err().field,
            "cluster_type.typed_config.clusters[1]"
        );

        // Envoy's documented aggregate shape uses CLUSTER_PROVIDED.
        let mut provided = aggregate_cluster(&["a"]);
        provided.lb_policy = clusterpb::cluster::LbPolicy::ClusterProvided as i32;
        let mut ig = Ignored::default();
        assert_eq!(
            validate_cluster(&provided, &mut ig).unwrap().lb_policy,
            LbPolicy::RoundRobin
        );
        assert_eq!(ig.fields(), ["lb_policy"]);

        let mut other = aggregate_cluster(&["a"]);
        other.cluster_discovery_type = Some(ClusterDiscoveryType::ClusterType(
            clusterpb::cluster::CustomClusterType {
                name: "envoy.clusters.redis".into(),
                typed_config: Some(any_of(&corepb::Locality::default())),
            },
        ));
        assert_eq!(check(&other).unwrap_err().field, "cluster_type");

        let mut empty = aggregate_cluster(&["a"]);
        empty.cluster_discovery_type = Some(ClusterDiscoveryType::ClusterType(
            clusterpb::cluster::CustomClusterType {
                name: "envoy.clusters.aggregate".into(),
                typed_config: None,
            },
        ));
        assert_eq!(
            check(&empty).unwrap_err().field,
            "cluster_type.typed_config"
        );
    }

    #[test]
    fn least_request_without_config_gets_a48_defaults() {
        // istiod >= 1.29 sends exactly this.
        let mut c = istio_cluster();
        c.lb_policy = clusterpb::cluster::LbPolicy::LeastRequest as i32;
        let mut ig = Ignored::default();
        let got = validate_cluster(&c, &mut ig).unwrap();
        assert_eq!(got.lb_policy, LbPolicy::LeastRequest { choice_count: 2 });
        assert_eq!(ig.fields(), ["alt_stat_name"]);
    }

    fn with_lb(kind: clusterpb::cluster::LbPolicy, cfg: Option<LbConfig>) -> clusterpb::Cluster {
        let mut c = istio_cluster();
        c.lb_policy = kind as i32;
        c.lb_config = cfg;
        c
    }

    #[test]
    fn least_request_choice_count_bounds() {
        use clusterpb::cluster::LbPolicy as P;
        let lr = |n| {
            with_lb(
                P::LeastRequest,
                Some(LbConfig::LeastRequestLbConfig(
                    clusterpb::cluster::LeastRequestLbConfig {
                        choice_count: Some(n),
                        ..Default::default()
                    },
                )),
            )
        };
        assert_eq!(
            check(&lr(3)).unwrap().lb_policy,
            LbPolicy::LeastRequest { choice_count: 3 }
        );
        assert_eq!(
            check(&lr(50)).unwrap().lb_policy,
            LbPolicy::LeastRequest { choice_count: 10 }
        );
        assert_eq!(
            check(&lr(1)).unwrap_err().field,
            "least_request_lb_config.choice_count"
        );
    }

    #[test]
    fn ring_hash_bounds() {
        use clusterpb::cluster::LbPolicy as P;
        let rh = |min: Option<u64>, max: Option<u64>, hash: i32| {
            with_lb(
                P::RingHash,
                Some(LbConfig::RingHashLbConfig(
                    clusterpb::cluster::RingHashLbConfig {
                        minimum_ring_size: min,
                        maximum_ring_size: max,
                        hash_function: hash,
                    },
                )),
            )
        };
        // No config: defaults.
        assert_eq!(
            check(&with_lb(P::RingHash, None)).unwrap().lb_policy,
            LbPolicy::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8 * 1024 * 1024,
                request_hash_header: None,
            }
        );
        assert_eq!(
            check(&rh(Some(10), Some(20), 0)).unwrap().lb_policy,
            LbPolicy::RingHash {
                min_ring_size: 10,
                max_ring_size: 20,
                request_hash_header: None,
            }
        );
        let eight_m = 8 * 1024 * 1024;
        assert!(check(&rh(Some(eight_m), Some(eight_m), 0)).is_ok());
        for (min, max, field) in [
            (
                Some(eight_m + 1),
                None,
                "ring_hash_lb_config.minimum_ring_size",
            ),
            (
                None,
                Some(eight_m + 1),
                "ring_hash_lb_config.maximum_ring_size",
            ),
            (
                Some(2048),
                Some(1024),
                "ring_hash_lb_config.minimum_ring_size",
            ),
            (Some(0), None, "ring_hash_lb_config.minimum_ring_size"),
            // Default min (1024) above an explicit small max.
            (None, Some(100), "ring_hash_lb_config.minimum_ring_size"),
        ] {
            assert_eq!(check(&rh(min, max, 0)).unwrap_err().field, field);
        }
        // MURMUR_HASH_2.
        assert_eq!(
            check(&rh(None, None, 1)).unwrap_err().field,
            "ring_hash_lb_config.hash_function"
        );
    }

    #[test]
    fn maglev_random_and_unsupported_legacy_policies() {
        use clusterpb::cluster::LbPolicy as P;
        assert_eq!(
            check(&with_lb(P::Maglev, None)).unwrap().lb_policy,
            LbPolicy::Maglev { table_size: 65537 }
        );
        let mg = |n| {
            with_lb(
                P::Maglev,
                Some(LbConfig::MaglevLbConfig(
                    clusterpb::cluster::MaglevLbConfig {
                        table_size: Some(n),
                    },
                )),
            )
        };
        assert_eq!(
            check(&mg(251)).unwrap().lb_policy,
            LbPolicy::Maglev { table_size: 251 }
        );
        assert_eq!(
            check(&mg(65536)).unwrap_err().field,
            "maglev_lb_config.table_size"
        );
        assert_eq!(
            check(&mg(5_000_111)).unwrap_err().field,
            "maglev_lb_config.table_size"
        );
        assert_eq!(
            check(&with_lb(P::Random, None)).unwrap().lb_policy,
            LbPolicy::Random
        );
        for p in [P::ClusterProvided, P::LoadBalancingPolicyConfig] {
            assert_eq!(check(&with_lb(p, None)).unwrap_err().field, "lb_policy");
        }
        let mut c = istio_cluster();
        c.lb_policy = 4; // Removed ORIGINAL_DST_LB value.
        assert_eq!(check(&c).unwrap_err().field, "lb_policy");
    }

    #[test]
    fn config_for_another_policy_is_ignored() {
        use clusterpb::cluster::LbPolicy as P;
        let c = with_lb(
            P::RoundRobin,
            Some(LbConfig::RingHashLbConfig(
                clusterpb::cluster::RingHashLbConfig::default(),
            )),
        );
        let mut ig = Ignored::default();
        assert_eq!(
            validate_cluster(&c, &mut ig).unwrap().lb_policy,
            LbPolicy::RoundRobin
        );
        assert_eq!(ig.fields(), ["ring_hash_lb_config", "alt_stat_name"]);
    }

    fn policy(any: prost_types::Any) -> clusterpb::load_balancing_policy::Policy {
        clusterpb::load_balancing_policy::Policy {
            typed_extension_config: Some(corepb::TypedExtensionConfig {
                name: "p".into(),
                typed_config: Some(any),
            }),
        }
    }

    fn lb_list(policies: Vec<prost_types::Any>) -> clusterpb::LoadBalancingPolicy {
        clusterpb::LoadBalancingPolicy {
            policies: policies.into_iter().map(policy).collect(),
        }
    }

    fn with_list(list: clusterpb::LoadBalancingPolicy) -> clusterpb::Cluster {
        let mut c = istio_cluster();
        c.alt_stat_name.clear();
        c.load_balancing_policy = Some(list);
        c
    }

    fn typed_struct() -> prost_types::Any {
        // xds.type.v3.TypedStruct is not generated; only its type URL matters here.
        prost_types::Any {
            type_url: "type.googleapis.com/xds.type.v3.TypedStruct".into(),
            value: vec![],
        }
    }

    #[test]
    fn a52_list_skips_unsupported_entries() {
        let c = with_list(lb_list(vec![
            typed_struct(),
            any_of(&corepb::Locality::default()),
            any_of(&lbpb::round_robin::v3::RoundRobin::default()),
            any_of(&lbpb::ring_hash::v3::RingHash::default()),
        ]));
        let mut ig = Ignored::default();
        assert_eq!(
            validate_cluster(&c, &mut ig).unwrap().lb_policy,
            LbPolicy::RoundRobin
        );
        assert_eq!(
            ig.fields(),
            [
                "load_balancing_policy.policies[0]",
                "load_balancing_policy.policies[1]"
            ]
        );
    }

    #[test]
    fn a52_list_takes_precedence_over_lb_policy() {
        let mut c = with_list(lb_list(vec![any_of(&lbpb::pick_first::v3::PickFirst {
            shuffle_address_list: true,
        })]));
        c.lb_policy = clusterpb::cluster::LbPolicy::RingHash as i32;
        // Even an invalid legacy config does not matter once the list is present.
        c.lb_config = Some(LbConfig::RingHashLbConfig(
            clusterpb::cluster::RingHashLbConfig {
                minimum_ring_size: Some(0),
                ..Default::default()
            },
        ));
        let mut ig = Ignored::default();
        assert_eq!(
            validate_cluster(&c, &mut ig).unwrap().lb_policy,
            LbPolicy::PickFirst {
                shuffle_address_list: true
            }
        );
        assert_eq!(ig.fields(), ["lb_policy", "ring_hash_lb_config"]);
    }

    #[test]
    fn a52_list_without_supported_entry_is_rejected() {
        let err = check(&with_list(lb_list(vec![typed_struct()]))).unwrap_err();
        assert_eq!(err.field, "load_balancing_policy.policies");
        let err = check(&with_list(lb_list(vec![]))).unwrap_err();
        assert_eq!(err.field, "load_balancing_policy.policies");
    }

    #[test]
    fn a52_converts_each_supported_policy() {
        let cases: Vec<(prost_types::Any, LbPolicy)> = vec![
            (
                any_of(&lbpb::ring_hash::v3::RingHash {
                    minimum_ring_size: Some(64),
                    ..Default::default()
                }),
                LbPolicy::RingHash {
                    min_ring_size: 64,
                    max_ring_size: 8 * 1024 * 1024,
                    request_hash_header: None,
                },
            ),
            (
                any_of(&lbpb::least_request::v3::LeastRequest::default()),
                LbPolicy::LeastRequest { choice_count: 2 },
            ),
            (
                any_of(&lbpb::maglev::v3::Maglev::default()),
                LbPolicy::Maglev { table_size: 65537 },
            ),
            (
                any_of(&lbpb::random::v3::Random::default()),
                LbPolicy::Random,
            ),
            (
                any_of(&lbpb::pick_first::v3::PickFirst::default()),
                LbPolicy::PickFirst {
                    shuffle_address_list: false,
                },
            ),
        ];
        for (any, want) in cases {
            assert_eq!(
                check(&with_list(lb_list(vec![any]))).unwrap().lb_policy,
                want
            );
        }
    }

    #[test]
    fn a52_errors_in_the_chosen_entry_reject_the_cluster() {
        use lbpb::ring_hash::v3::ring_hash::HashFunction;
        let err = check(&with_list(lb_list(vec![any_of(
            &lbpb::ring_hash::v3::RingHash {
                hash_function: HashFunction::MurmurHash2 as i32,
                ..Default::default()
            },
        )])))
        .unwrap_err();
        assert_eq!(
            err.field,
            "load_balancing_policy.policies[0].typed_extension_config.typed_config.hash_function"
        );
        let err = check(&with_list(lb_list(vec![
            any_of(&lbpb::least_request::v3::LeastRequest {
                choice_count: Some(1),
                ..Default::default()
            }),
            any_of(&lbpb::round_robin::v3::RoundRobin::default()),
        ])))
        .unwrap_err();
        assert_eq!(
            err.field,
            "load_balancing_policy.policies[0].typed_extension_config.typed_config.choice_count"
        );
        // Corrupt bytes under a supported type.
        let err = check(&with_list(lb_list(vec![prost_types::Any {
            type_url: lbpb::round_robin::v3::RoundRobin::type_url(),
            value: vec![0xff, 0xff],
        }])))
        .unwrap_err();
        assert_eq!(
            err.field,
            "load_balancing_policy.policies[0].typed_extension_config.typed_config"
        );
    }

    fn wrr_locality(child: clusterpb::LoadBalancingPolicy) -> prost_types::Any {
        any_of(&lbpb::wrr_locality::v3::WrrLocality {
            endpoint_picking_policy: Some(child),
        })
    }

    #[test]
    fn wrr_locality_unwraps_to_its_child() {
        // The A52 example: a custom TypedStruct policy first, then round_robin.
        let c = with_list(lb_list(vec![wrr_locality(lb_list(vec![
            typed_struct(),
            any_of(&lbpb::round_robin::v3::RoundRobin::default()),
        ]))]));
        let mut ig = Ignored::default();
        assert_eq!(
            validate_cluster(&c, &mut ig).unwrap().lb_policy,
            LbPolicy::RoundRobin
        );
        assert_eq!(
            ig.fields(),
            [
                "load_balancing_policy.policies[0].typed_extension_config.typed_config.endpoint_picking_policy.policies[0]"
            ]
        );

        // A supported wrapper whose child list has nothing supported is an error, not a skip.
        let c = with_list(lb_list(vec![
            wrr_locality(lb_list(vec![typed_struct()])),
            any_of(&lbpb::round_robin::v3::RoundRobin::default()),
        ]));
        assert_eq!(
            check(&c).unwrap_err().field,
            "load_balancing_policy.policies[0].typed_extension_config.typed_config.endpoint_picking_policy.policies"
        );

        let c = with_list(lb_list(vec![any_of(
            &lbpb::wrr_locality::v3::WrrLocality {
                endpoint_picking_policy: None,
            },
        )]));
        assert_eq!(
            check(&c).unwrap_err().field,
            "load_balancing_policy.policies[0].typed_extension_config.typed_config.endpoint_picking_policy"
        );
    }

    #[test]
    fn nesting_limit_is_16_levels() {
        // `levels` LoadBalancingPolicy lists: levels - 1 WrrLocality wrappers around round_robin.
        let nested = |levels: usize| {
            let mut list = lb_list(vec![any_of(&lbpb::round_robin::v3::RoundRobin::default())]);
            for _ in 1..levels {
                list = lb_list(vec![wrr_locality(list)]);
            }
            with_list(list)
        };
        assert_eq!(check(&nested(16)).unwrap().lb_policy, LbPolicy::RoundRobin);
        let err = check(&nested(17)).unwrap_err();
        assert!(err.reason.contains("16"), "{err}");
        assert!(
            err.field.starts_with("load_balancing_policy.policies[0]"),
            "{err}"
        );
        assert!(err.field.ends_with("endpoint_picking_policy"), "{err}");
    }

    #[test]
    fn client_side_wrr_maps_to_weighted_round_robin() {
        use lbpb::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin;
        let c = with_list(lb_list(vec![any_of(&ClientSideWeightedRoundRobin {
            enable_oob_load_report: Some(true),
            ..Default::default()
        })]));
        let mut ig = Ignored::default();
        assert_eq!(
            validate_cluster(&c, &mut ig).unwrap().lb_policy,
            LbPolicy::WeightedRoundRobin
        );
        assert_eq!(
            ig.fields(),
            [
                "load_balancing_policy.policies[0].typed_extension_config.typed_config",
                "load_balancing_policy.policies[0].typed_extension_config.typed_config.enable_oob_load_report"
            ]
        );
        let c = with_list(lb_list(vec![any_of(&ClientSideWeightedRoundRobin {
            blackout_period: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        })]));
        assert_eq!(
            check(&c).unwrap_err().field,
            "load_balancing_policy.policies[0].typed_extension_config.typed_config.blackout_period"
        );
    }

    #[test]
    fn outlier_detection_is_validated_in_place() {
        let mut c = istio_cluster();
        c.outlier_detection = Some(clusterpb::OutlierDetection::default());
        let got = check(&c).unwrap();
        let od = got.outlier_detection.unwrap();
        assert_eq!(od.interval, core::time::Duration::from_secs(10));
        assert!(od.success_rate.is_some());

        c.outlier_detection = Some(clusterpb::OutlierDetection {
            max_ejection_percent: Some(150),
            ..Default::default()
        });
        assert_eq!(
            check(&c).unwrap_err().field,
            "outlier_detection.max_ejection_percent"
        );
    }

    fn tls_socket(ctx: &tlspb::UpstreamTlsContext) -> corepb::TransportSocket {
        corepb::TransportSocket {
            name: TLS_TRANSPORT_SOCKET_NAME.into(),
            config_type: Some(ConfigType::TypedConfig(any_of(ctx))),
        }
    }

    #[test]
    fn istio_mutual_cluster() {
        let sa = "spiffe://cluster.local/ns/default/sa/echo";
        let mut c = istio_cluster();
        let mut common = crate::resource::tls::tests::istio_common(&[sa]);
        common.alpn_protocols = vec!["h2".into()];
        c.transport_socket = Some(tls_socket(&tlspb::UpstreamTlsContext {
            common_tls_context: Some(common),
            ..Default::default()
        }));
        let mut ig = Ignored::default();
        let tls = validate_cluster(&c, &mut ig).unwrap().tls.unwrap();
        assert_eq!(
            tls.root_cert_instance,
            CertInstance {
                instance_name: "default".into(),
                certificate_name: "ROOTCA".into(),
            }
        );
        assert_eq!(
            tls.identity_cert_instance
                .as_ref()
                .map(|i| i.certificate_name.as_str()),
            Some("default")
        );
        assert_eq!(
            tls.match_subject_alt_names[0].pattern,
            SanPattern::Exact(sa.into())
        );
        assert_eq!(
            ig.fields(),
            [
                "transport_socket.typed_config.common_tls_context.alpn_protocols",
                "alt_stat_name"
            ]
        );
    }

    #[test]
    fn transport_socket_errors_name_the_path() {
        let mut c = istio_cluster();
        c.transport_socket = Some(tls_socket(&tlspb::UpstreamTlsContext {
            common_tls_context: Some(tlspb::CommonTlsContext {
                tls_certificate_sds_secret_configs: vec![tlspb::SdsSecretConfig::default()],
                ..Default::default()
            }),
            ..Default::default()
        }));
        assert_eq!(
            check(&c).unwrap_err().field,
            "transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs"
        );

        let mut c = istio_cluster();
        c.transport_socket = Some(corepb::TransportSocket {
            name: "envoy.transport_sockets.raw_buffer".into(),
            config_type: None,
        });
        assert_eq!(check(&c).unwrap_err().field, "transport_socket.name");

        let mut c = istio_cluster();
        c.transport_socket_matches = vec![clusterpb::cluster::TransportSocketMatch::default()];
        assert_eq!(check(&c).unwrap_err().field, "transport_socket_matches");
    }

    #[test]
    fn lrs_server_must_be_self() {
        let mut c = istio_cluster();
        c.lrs_server = Some(corepb::ConfigSource {
            config_source_specifier: Some(corepb::config_source::ConfigSourceSpecifier::Self_(
                corepb::SelfConfigSource::default(),
            )),
            ..Default::default()
        });
        assert!(check(&c).unwrap().lrs_report_to_self);
        c.lrs_server = Some(corepb::ConfigSource {
            config_source_specifier: Some(corepb::config_source::ConfigSourceSpecifier::Ads(
                corepb::AggregatedConfigSource {},
            )),
            ..Default::default()
        });
        assert_eq!(check(&c).unwrap_err().field, "lrs_server");
    }

    #[test]
    fn ignored_cluster_fields_are_recorded() {
        let mut c = istio_cluster();
        c.connect_timeout = Some(prost_types::Duration {
            seconds: 10,
            nanos: 0,
        });
        c.dns_lookup_family = clusterpb::cluster::DnsLookupFamily::V4Only as i32;
        c.metadata = Some(corepb::Metadata::default());
        let mut ig = Ignored::default();
        validate_cluster(&c, &mut ig).unwrap();
        assert_eq!(
            ig.fields(),
            [
                "alt_stat_name",
                "connect_timeout",
                "dns_lookup_family",
                "metadata"
            ]
        );
    }
}
