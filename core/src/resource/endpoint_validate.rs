//! Validation of a `ClusterLoadAssignment` (EDS) into [`EndpointsConfig`].
//!
//! The rules are gRFC A27's "ClusterLoadAssignment Proto" section, A61's for
//! `additional_addresses` and A76's for `hash_key`, checked against what grpc-go's EDS parser
//! rejects. Field paths are proto field names relative to the `ClusterLoadAssignment`.
//!
//! Ignored fields of localities and endpoints are recorded once per field, with `[*]` in place
//! of the indices (`endpoints[*].lb_endpoints[*].endpoint.hostname`), so that an assignment with
//! thousands of endpoints does not produce thousands of entries. Errors always carry the real
//! indices.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use super::endpoint::{
    DropOverload, Endpoint, EndpointsConfig, HealthStatus, Locality, LocalityName,
};
use super::{Ignored, ValidationError};
use crate::pb::envoy::config::core::v3 as corepb;
use crate::pb::envoy::config::endpoint::v3 as endpointpb;
use crate::pb::envoy::r#type::v3::fractional_percent::DenominatorType;

/// The filter-metadata namespace that carries the ring-hash key (gRFC A76, Envoy ring hash docs).
pub const ENVOY_LB_METADATA: &str = "envoy.lb";
/// The key inside [`ENVOY_LB_METADATA`] whose string value places the endpoint on the ring.
pub const HASH_KEY: &str = "hash_key";

/// Validates a `ClusterLoadAssignment` (gRFC A27, A61, A76).
///
/// - Localities with `load_balancing_weight` unset or 0 are dropped (A27) and recorded as
///   ignored at `endpoints[i]`; their contents are not validated, as in gRPC.
/// - Every kept locality must have `locality` set, be unique within its priority, and the
///   priorities must be contiguous from 0; the locality weights of one priority must sum to at
///   most `u32::MAX` (A27).
/// - Every endpoint needs `endpoint.address.socket_address` with an IP literal (no hostnames:
///   EDS endpoints are never resolved) and a `port_value` in 1..=65535; the same holds for each
///   `additional_addresses` entry (A61). No address may appear twice in the assignment.
/// - Endpoint `load_balancing_weight` 0 is rejected; unset means 1.
/// - `drop_overloads` are normalised to parts per million, capped at 1,000,000.
pub fn validate_cluster_load_assignment(
    cla: &endpointpb::ClusterLoadAssignment,
    ignored: &mut Ignored,
) -> Result<EndpointsConfig, ValidationError> {
    if cla.cluster_name.is_empty() {
        return Err(ValidationError::new(
            "cluster_name",
            "must not be empty: it is the EDS resource name",
        ));
    }

    let mut localities = Vec::with_capacity(cla.endpoints.len());
    // Per priority: sum of locality weights, and the localities seen (A27 uniqueness rule).
    let mut weight_sums: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seen_localities: BTreeSet<(u32, LocalityName)> = BTreeSet::new();
    let mut seen_addresses: BTreeSet<SocketAddr> = BTreeSet::new();

    for (i, lle) in cla.endpoints.iter().enumerate() {
        let weight = lle.load_balancing_weight.unwrap_or(0);
        if weight == 0 {
            // A27: "If the load_balancing_weight field is unset, the endpoints entry is
            // skipped"; grpc-go skips weight 0 the same way.
            ignored.note(format!("endpoints[{i}]"));
            continue;
        }
        let locality = validate_locality(lle, i, weight, &mut seen_addresses, ignored)?;

        let sum = weight_sums.entry(locality.priority).or_insert(0);
        *sum = sum.saturating_add(u64::from(weight));
        if *sum > u64::from(u32::MAX) {
            return Err(ValidationError::new(
                format!("endpoints[{i}].load_balancing_weight"),
                format!(
                    "locality weights of priority {} add up to more than {} (gRFC A27)",
                    locality.priority,
                    u32::MAX
                ),
            ));
        }
        if !seen_localities.insert((locality.priority, locality.name.clone())) {
            return Err(ValidationError::new(
                format!("endpoints[{i}].locality"),
                format!(
                    "locality {{region: {:?}, zone: {:?}, sub_zone: {:?}}} appears twice in \
                     priority {} (gRFC A27)",
                    locality.name.region,
                    locality.name.zone,
                    locality.name.sub_zone,
                    locality.priority
                ),
            ));
        }
        localities.push(locality);
    }

    // A27: "The priority list must not have any gaps in it". The keys are sorted, so they are
    // contiguous from 0 exactly when the k-th key is k.
    for (expected, &priority) in weight_sums.keys().enumerate() {
        if u32::try_from(expected).ok() != Some(priority) {
            return Err(ValidationError::new(
                "endpoints",
                format!(
                    "priority {expected} has no locality but priority {priority} does: \
                     priorities must be contiguous from 0 (gRFC A27)"
                ),
            ));
        }
    }

    if !cla.named_endpoints.is_empty() {
        ignored.note("named_endpoints");
    }
    let drop_overloads = match &cla.policy {
        Some(policy) => validate_policy(policy, ignored)?,
        None => Vec::new(),
    };

    Ok(EndpointsConfig {
        name: cla.cluster_name.clone(),
        localities,
        drop_overloads,
    })
}

fn validate_locality(
    lle: &endpointpb::LocalityLbEndpoints,
    i: usize,
    weight: u32,
    seen_addresses: &mut BTreeSet<SocketAddr>,
    ignored: &mut Ignored,
) -> Result<Locality, ValidationError> {
    let Some(l) = &lle.locality else {
        // grpc-go rejects a locality without its identity: localities are keyed by it.
        return Err(ValidationError::new(
            format!("endpoints[{i}].locality"),
            "must be set",
        ));
    };
    if let Some(cfg) = &lle.lb_config {
        use endpointpb::locality_lb_endpoints::LbConfig;
        let (field, why) = match cfg {
            #[allow(deprecated)] // Named only to reject it.
            LbConfig::LoadBalancerEndpoints(_) => (
                "load_balancer_endpoints",
                "the deprecated endpoint list is not supported; use lb_endpoints",
            ),
            LbConfig::LedsClusterLocalityConfig(_) => (
                "leds_cluster_locality_config",
                "LEDS is not supported; use lb_endpoints",
            ),
        };
        // Ignoring either would leave the locality silently empty.
        return Err(ValidationError::new(format!("endpoints[{i}].{field}"), why));
    }
    for (name, set) in [
        ("endpoints[*].metadata", lle.metadata.is_some()),
        ("endpoints[*].proximity", lle.proximity.is_some()),
    ] {
        if set {
            ignored.note(name);
        }
    }

    let mut endpoints = Vec::with_capacity(lle.lb_endpoints.len());
    for (j, lbe) in lle.lb_endpoints.iter().enumerate() {
        endpoints.push(
            validate_lb_endpoint(lbe, seen_addresses, ignored)
                .map_err(|e| e.within(&format!("endpoints[{i}].lb_endpoints[{j}]")))?,
        );
    }
    Ok(Locality {
        name: LocalityName {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        },
        weight,
        priority: lle.priority,
        endpoints,
    })
}

/// One `LbEndpoint` (error paths relative to it; ignored paths absolute with `[*]`).
fn validate_lb_endpoint(
    lbe: &endpointpb::LbEndpoint,
    seen_addresses: &mut BTreeSet<SocketAddr>,
    ignored: &mut Ignored,
) -> Result<Endpoint, ValidationError> {
    use endpointpb::lb_endpoint::HostIdentifier;
    let ep = match &lbe.host_identifier {
        Some(HostIdentifier::Endpoint(ep)) => ep,
        Some(HostIdentifier::EndpointName(_)) => {
            return Err(ValidationError::new(
                "endpoint_name",
                "named endpoints are not supported: set endpoint (gRFC A27)",
            ));
        }
        None => return Err(ValidationError::new("endpoint", "must be set (gRFC A27)")),
    };
    let address =
        socket_address(ep.address.as_ref(), ignored).map_err(|e| e.within("endpoint.address"))?;
    let mut additional_addresses = Vec::with_capacity(ep.additional_addresses.len());
    for (k, extra) in ep.additional_addresses.iter().enumerate() {
        // A61: validated exactly like Endpoint.address; unset is an error.
        additional_addresses.push(
            socket_address(extra.address.as_ref(), ignored)
                .map_err(|e| e.within(&format!("endpoint.additional_addresses[{k}].address")))?,
        );
    }
    // gRPC requires every address to be unique across the whole assignment: the balancers key
    // subchannels by address.
    for (k, addr) in core::iter::once(&address)
        .chain(additional_addresses.iter())
        .enumerate()
    {
        if !seen_addresses.insert(*addr) {
            let field = if k == 0 {
                "endpoint.address".to_string()
            } else {
                format!("endpoint.additional_addresses[{}].address", k - 1)
            };
            return Err(ValidationError::new(
                field,
                format!("duplicate address {addr}: each address may appear once per cluster"),
            ));
        }
    }

    let weight = match lbe.load_balancing_weight {
        None => 1,
        Some(0) => {
            return Err(ValidationError::new(
                "load_balancing_weight",
                "must be at least 1 when set",
            ));
        }
        Some(w) => w,
    };

    for (name, set) in [
        (
            "endpoints[*].lb_endpoints[*].endpoint.hostname",
            !ep.hostname.is_empty(),
        ),
        (
            "endpoints[*].lb_endpoints[*].endpoint.health_check_config",
            ep.health_check_config.is_some(),
        ),
        (
            "endpoints[*].lb_endpoints[*].endpoint.observability_name",
            !ep.observability_name.is_empty(),
        ),
    ] {
        if set {
            ignored.note(name);
        }
    }

    Ok(Endpoint {
        address,
        additional_addresses,
        weight,
        health: health_status(lbe.health_status),
        hash_key: hash_key(lbe.metadata.as_ref(), ignored),
    })
}

/// An `Address` that must be a TCP socket address with an IP literal and a numeric port
/// (paths relative to the `Address`).
fn socket_address(
    addr: Option<&corepb::Address>,
    ignored: &mut Ignored,
) -> Result<SocketAddr, ValidationError> {
    use corepb::address::Address as A;
    use corepb::socket_address::PortSpecifier;
    let sa = match addr.and_then(|a| a.address.as_ref()) {
        Some(A::SocketAddress(sa)) => sa,
        Some(A::Pipe(_)) => {
            return Err(ValidationError::new(
                "pipe",
                "pipe addresses are not supported: use socket_address",
            ));
        }
        Some(A::EnvoyInternalAddress(_)) => {
            return Err(ValidationError::new(
                "envoy_internal_address",
                "Envoy internal addresses are not supported: use socket_address",
            ));
        }
        None => {
            return Err(ValidationError::new(
                "socket_address",
                "must be set (gRFC A27)",
            ));
        }
    };
    // A27: "The address field must be set to an IPv4 or IPv6 address". A hostname would need
    // a resolver the EDS path does not have.
    let ip: IpAddr = sa.address.parse().map_err(|_| {
        ValidationError::new(
            "socket_address.address",
            format!(
                "{:?} is not an IP address: EDS endpoints must be IP literals (gRFC A27)",
                sa.address
            ),
        )
    })?;
    let port = match &sa.port_specifier {
        Some(PortSpecifier::PortValue(p)) => *p,
        Some(PortSpecifier::NamedPort(_)) => {
            return Err(ValidationError::new(
                "socket_address.named_port",
                "named ports are not supported: set port_value (gRFC A27)",
            ));
        }
        None => {
            return Err(ValidationError::new(
                "socket_address.port_value",
                "must be set (gRFC A27)",
            ));
        }
    };
    let port = match u16::try_from(port) {
        Ok(p) if p != 0 => p,
        _ => {
            return Err(ValidationError::new(
                "socket_address.port_value",
                format!("{port} is not a usable TCP port (1..=65535)"),
            ));
        }
    };
    for (name, set) in [
        (
            "endpoints[*].lb_endpoints[*].endpoint.address.socket_address.resolver_name",
            !sa.resolver_name.is_empty(),
        ),
        (
            "endpoints[*].lb_endpoints[*].endpoint.address.socket_address.protocol",
            sa.protocol != 0,
        ),
        (
            "endpoints[*].lb_endpoints[*].endpoint.address.socket_address.ipv4_compat",
            sa.ipv4_compat,
        ),
        (
            "endpoints[*].lb_endpoints[*].endpoint.address.socket_address.network_namespace_filepath",
            !sa.network_namespace_filepath.is_empty(),
        ),
    ] {
        if set {
            ignored.note(name);
        }
    }
    Ok(SocketAddr::new(ip, port))
}

/// `LbEndpoint.health_status`. A27 uses only HEALTHY and UNKNOWN endpoints; a value this
/// build does not know is treated as not usable (unhealthy), never as usable.
fn health_status(v: i32) -> HealthStatus {
    match corepb::HealthStatus::try_from(v) {
        Ok(corepb::HealthStatus::Unknown) => HealthStatus::Unknown,
        Ok(corepb::HealthStatus::Healthy) => HealthStatus::Healthy,
        Ok(corepb::HealthStatus::Unhealthy) | Err(_) => HealthStatus::Unhealthy,
        Ok(corepb::HealthStatus::Draining) => HealthStatus::Draining,
        Ok(corepb::HealthStatus::Timeout) => HealthStatus::Timeout,
        Ok(corepb::HealthStatus::Degraded) => HealthStatus::Degraded,
    }
}

/// gRFC A76: `metadata.filter_metadata["envoy.lb"].hash_key`, when it is a non-empty string.
/// Anything else there (and any other metadata) is recorded as ignored.
fn hash_key(md: Option<&corepb::Metadata>, ignored: &mut Ignored) -> Option<String> {
    use prost_types::value::Kind;
    let md = md?;
    let mut key = None;
    // Sorted, so the ignored list comes out the same whatever map type the generated code
    // uses for `filter_metadata`.
    let mut namespaces: Vec<_> = md.filter_metadata.iter().collect();
    namespaces.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (ns, s) in namespaces {
        if ns != ENVOY_LB_METADATA {
            ignored.note(format!(
                "endpoints[*].lb_endpoints[*].metadata.filter_metadata[{ns:?}]"
            ));
            continue;
        }
        for (k, v) in &s.fields {
            match (k.as_str(), &v.kind) {
                // A76: an empty key means "hash the address", the same as no key.
                (HASH_KEY, Some(Kind::StringValue(h))) => {
                    key = (!h.is_empty()).then(|| h.clone());
                }
                _ => ignored.note(format!(
                    "endpoints[*].lb_endpoints[*].metadata.filter_metadata[{ENVOY_LB_METADATA:?}].{k}"
                )),
            }
        }
    }
    if !md.typed_filter_metadata.is_empty() {
        ignored.note("endpoints[*].lb_endpoints[*].metadata.typed_filter_metadata");
    }
    key
}

fn validate_policy(
    policy: &endpointpb::cluster_load_assignment::Policy,
    ignored: &mut Ignored,
) -> Result<Vec<DropOverload>, ValidationError> {
    let mut drops = Vec::with_capacity(policy.drop_overloads.len());
    for (i, d) in policy.drop_overloads.iter().enumerate() {
        let (numerator, denominator) = match &d.drop_percentage {
            // An absent percentage is 0/100: nothing is dropped.
            None => (0, DenominatorType::Hundred as i32),
            Some(p) => (p.numerator, p.denominator),
        };
        let scale: u64 = match DenominatorType::try_from(denominator) {
            Ok(DenominatorType::Hundred) => 10_000,
            Ok(DenominatorType::TenThousand) => 100,
            Ok(DenominatorType::Million) => 1,
            Err(_) => {
                return Err(ValidationError::new(
                    format!("policy.drop_overloads[{i}].drop_percentage.denominator"),
                    format!("unknown value {denominator}"),
                ));
            }
        };
        // Above 100% means "drop everything": cap rather than reject, like Envoy and gRPC.
        let ppm = (u64::from(numerator) * scale).min(1_000_000);
        drops.push(DropOverload {
            category: d.category.clone(),
            parts_per_million: u32::try_from(ppm).unwrap_or(1_000_000),
        });
    }
    // A27: overprovisioning is not supported (gRPC advertises
    // envoy.lb.does_not_support_overprovisioning).
    for (name, set) in [
        (
            "policy.overprovisioning_factor",
            policy.overprovisioning_factor.is_some(),
        ),
        (
            "policy.endpoint_stale_after",
            policy.endpoint_stale_after.is_some(),
        ),
        (
            "policy.weighted_priority_health",
            policy.weighted_priority_health,
        ),
    ] {
        if set {
            ignored.note(name);
        }
    }
    Ok(drops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use corepb::address::Address as A;
    use corepb::socket_address::PortSpecifier;
    use endpointpb::lb_endpoint::HostIdentifier;

    fn addr(ip: &str, port: u32) -> corepb::Address {
        corepb::Address {
            address: Some(A::SocketAddress(corepb::SocketAddress {
                address: ip.into(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }
    }

    fn lb_endpoint(ip: &str, port: u32) -> endpointpb::LbEndpoint {
        endpointpb::LbEndpoint {
            host_identifier: Some(HostIdentifier::Endpoint(endpointpb::Endpoint {
                address: Some(addr(ip, port)),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn locality(
        zone: &str,
        weight: Option<u32>,
        priority: u32,
        eps: Vec<endpointpb::LbEndpoint>,
    ) -> endpointpb::LocalityLbEndpoints {
        endpointpb::LocalityLbEndpoints {
            locality: Some(corepb::Locality {
                region: "us-east1".into(),
                zone: zone.into(),
                sub_zone: String::new(),
            }),
            lb_endpoints: eps,
            load_balancing_weight: weight,
            priority,
            ..Default::default()
        }
    }

    const NAME: &str = "outbound|7000|v1|echo.default.svc.cluster.local";

    fn cla(endpoints: Vec<endpointpb::LocalityLbEndpoints>) -> endpointpb::ClusterLoadAssignment {
        endpointpb::ClusterLoadAssignment {
            cluster_name: NAME.into(),
            endpoints,
            ..Default::default()
        }
    }

    fn check(c: &endpointpb::ClusterLoadAssignment) -> Result<EndpointsConfig, ValidationError> {
        validate_cluster_load_assignment(c, &mut Ignored::default())
    }

    #[test]
    fn istio_shaped_assignment() {
        let mut healthy = lb_endpoint("10.0.0.5", 7000);
        healthy.health_status = corepb::HealthStatus::Healthy as i32;
        healthy.load_balancing_weight = Some(1);
        let mut draining = lb_endpoint("10.0.0.6", 7000);
        draining.health_status = corepb::HealthStatus::Draining as i32;
        let mut v6 = lb_endpoint("fd00::7", 7000);
        v6.load_balancing_weight = Some(3);
        let mut ig = Ignored::default();
        let got = validate_cluster_load_assignment(
            &cla(vec![locality("a", Some(2), 0, vec![healthy, draining, v6])]),
            &mut ig,
        )
        .unwrap();
        assert!(ig.is_empty());
        assert_eq!(got.name, NAME);
        assert_eq!(got.localities.len(), 1);
        let l = &got.localities[0];
        assert_eq!(l.name.zone, "a");
        assert_eq!(l.weight, 2);
        assert_eq!(l.priority, 0);
        let addrs: Vec<String> = l.endpoints.iter().map(|e| e.address.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.5:7000", "10.0.0.6:7000", "[fd00::7]:7000"]);
        assert_eq!(l.endpoints[0].health, HealthStatus::Healthy);
        assert_eq!(l.endpoints[1].health, HealthStatus::Draining);
        assert_eq!(l.endpoints[2].health, HealthStatus::Unknown);
        assert_eq!(l.endpoints[0].weight, 1);
        assert_eq!(l.endpoints[1].weight, 1, "unset weight means 1");
        assert_eq!(l.endpoints[2].weight, 3);
    }

    #[test]
    fn unknown_health_status_is_not_usable() {
        let mut e = lb_endpoint("10.0.0.1", 80);
        e.health_status = 42;
        let got = check(&cla(vec![locality("a", Some(1), 0, vec![e])])).unwrap();
        assert_eq!(
            got.localities[0].endpoints[0].health,
            HealthStatus::Unhealthy
        );
        assert!(!got.localities[0].endpoints[0].health.is_usable());
    }

    #[test]
    fn zero_or_unset_weight_localities_are_dropped_and_recorded() {
        let mut ig = Ignored::default();
        // The dropped localities' contents are not validated (a hostname would be rejected).
        let got = validate_cluster_load_assignment(
            &cla(vec![
                locality("a", Some(0), 0, vec![lb_endpoint("not-an-ip", 80)]),
                locality("b", Some(5), 0, vec![lb_endpoint("10.0.0.1", 80)]),
                locality("c", None, 1, vec![lb_endpoint("10.0.0.2", 80)]),
            ]),
            &mut ig,
        )
        .unwrap();
        assert_eq!(got.localities.len(), 1);
        assert_eq!(got.localities[0].name.zone, "b");
        assert_eq!(ig.fields(), ["endpoints[0]", "endpoints[2]"]);
    }

    #[test]
    fn priority_gap_is_rejected() {
        let err = check(&cla(vec![
            locality("a", Some(1), 0, vec![lb_endpoint("10.0.0.1", 80)]),
            locality("b", Some(1), 2, vec![lb_endpoint("10.0.0.2", 80)]),
        ]))
        .unwrap_err();
        assert_eq!(err.field, "endpoints");
        assert!(err.reason.contains("priority 1"), "{err}");

        // Only priority 1: 0 is missing.
        let err = check(&cla(vec![locality(
            "a",
            Some(1),
            1,
            vec![lb_endpoint("10.0.0.1", 80)],
        )]))
        .unwrap_err();
        assert_eq!(err.field, "endpoints");

        // Out of order but contiguous is fine.
        let got = check(&cla(vec![
            locality("b", Some(1), 1, vec![lb_endpoint("10.0.0.2", 80)]),
            locality("a", Some(1), 0, vec![lb_endpoint("10.0.0.1", 80)]),
        ]))
        .unwrap();
        assert_eq!(got.localities.len(), 2);
    }

    #[test]
    fn a_priority_made_only_of_dropped_localities_is_a_gap() {
        let err = check(&cla(vec![
            locality("a", Some(0), 0, vec![lb_endpoint("10.0.0.1", 80)]),
            locality("b", Some(1), 1, vec![lb_endpoint("10.0.0.2", 80)]),
        ]))
        .unwrap_err();
        assert_eq!(err.field, "endpoints");
    }

    #[test]
    fn empty_assignment_is_valid() {
        let got = check(&cla(vec![])).unwrap();
        assert!(got.localities.is_empty());
    }

    #[test]
    fn locality_weight_sum_must_fit_u32() {
        let err = check(&cla(vec![
            locality("a", Some(u32::MAX), 0, vec![lb_endpoint("10.0.0.1", 80)]),
            locality("b", Some(1), 0, vec![lb_endpoint("10.0.0.2", 80)]),
        ]))
        .unwrap_err();
        assert_eq!(err.field, "endpoints[1].load_balancing_weight");
        // Separate priorities have separate sums.
        check(&cla(vec![
            locality("a", Some(u32::MAX), 0, vec![lb_endpoint("10.0.0.1", 80)]),
            locality("b", Some(u32::MAX), 1, vec![lb_endpoint("10.0.0.2", 80)]),
        ]))
        .unwrap();
    }

    #[test]
    fn duplicate_locality_in_a_priority_is_rejected() {
        let err = check(&cla(vec![
            locality("a", Some(1), 0, vec![lb_endpoint("10.0.0.1", 80)]),
            locality("a", Some(1), 0, vec![lb_endpoint("10.0.0.2", 80)]),
        ]))
        .unwrap_err();
        assert_eq!(err.field, "endpoints[1].locality");
        // Same locality in another priority is allowed.
        check(&cla(vec![
            locality("a", Some(1), 0, vec![lb_endpoint("10.0.0.1", 80)]),
            locality("a", Some(1), 1, vec![lb_endpoint("10.0.0.2", 80)]),
        ]))
        .unwrap();
    }

    #[test]
    fn missing_locality_is_rejected() {
        let mut l = locality("a", Some(1), 0, vec![lb_endpoint("10.0.0.1", 80)]);
        l.locality = None;
        let err = check(&cla(vec![l])).unwrap_err();
        assert_eq!(err.field, "endpoints[0].locality");
    }

    #[test]
    fn hostname_endpoint_is_rejected() {
        let err = check(&cla(vec![locality(
            "a",
            Some(1),
            0,
            vec![
                lb_endpoint("10.0.0.1", 80),
                lb_endpoint("echo.default.svc", 80),
            ],
        )]))
        .unwrap_err();
        assert_eq!(
            err.field,
            "endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address"
        );
        assert!(err.reason.contains("not an IP address"), "{err}");
    }

    #[test]
    fn port_rules() {
        for (port, ok) in [(0, false), (1, true), (65535, true), (65536, false)] {
            let r = check(&cla(vec![locality(
                "a",
                Some(1),
                0,
                vec![lb_endpoint("10.0.0.1", port)],
            )]));
            assert_eq!(r.is_ok(), ok, "port {port}");
            if let Err(e) = r {
                assert_eq!(
                    e.field,
                    "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value"
                );
            }
        }
        let mut e = lb_endpoint("10.0.0.1", 80);
        if let Some(HostIdentifier::Endpoint(ep)) = &mut e.host_identifier {
            ep.address = Some(corepb::Address {
                address: Some(A::SocketAddress(corepb::SocketAddress {
                    address: "10.0.0.1".into(),
                    port_specifier: Some(PortSpecifier::NamedPort("http".into())),
                    ..Default::default()
                })),
            });
        }
        let err = check(&cla(vec![locality("a", Some(1), 0, vec![e])])).unwrap_err();
        assert_eq!(
            err.field,
            "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.named_port"
        );
    }

    #[test]
    fn missing_endpoint_or_address_is_rejected() {
        let e = endpointpb::LbEndpoint::default();
        let err = check(&cla(vec![locality("a", Some(1), 0, vec![e])])).unwrap_err();
        assert_eq!(err.field, "endpoints[0].lb_endpoints[0].endpoint");

        let e = endpointpb::LbEndpoint {
            host_identifier: Some(HostIdentifier::Endpoint(endpointpb::Endpoint::default())),
            ..Default::default()
        };
        let err = check(&cla(vec![locality("a", Some(1), 0, vec![e])])).unwrap_err();
        assert_eq!(
            err.field,
            "endpoints[0].lb_endpoints[0].endpoint.address.socket_address"
        );
    }

    #[test]
    fn duplicate_address_is_rejected_across_localities() {
        let err = check(&cla(vec![
            locality("a", Some(1), 0, vec![lb_endpoint("10.0.0.1", 80)]),
            locality("b", Some(1), 1, vec![lb_endpoint("10.0.0.1", 80)]),
        ]))
        .unwrap_err();
        assert_eq!(err.field, "endpoints[1].lb_endpoints[0].endpoint.address");
        assert!(
            err.reason.contains("duplicate address 10.0.0.1:80"),
            "{err}"
        );
        // Same IP, different port: distinct addresses.
        check(&cla(vec![locality(
            "a",
            Some(1),
            0,
            vec![lb_endpoint("10.0.0.1", 80), lb_endpoint("10.0.0.1", 81)],
        )]))
        .unwrap();
    }

    #[test]
    fn additional_addresses_are_validated_and_deduplicated() {
        let mut e = lb_endpoint("10.0.0.1", 80);
        if let Some(HostIdentifier::Endpoint(ep)) = &mut e.host_identifier {
            ep.additional_addresses = vec![endpointpb::endpoint::AdditionalAddress {
                address: Some(addr("fd00::1", 80)),
            }];
        }
        let got = check(&cla(vec![locality("a", Some(1), 0, vec![e.clone()])])).unwrap();
        assert_eq!(
            got.localities[0].endpoints[0].additional_addresses,
            vec!["[fd00::1]:80".parse::<SocketAddr>().unwrap()]
        );

        // Unset additional address.
        let mut bad = e.clone();
        if let Some(HostIdentifier::Endpoint(ep)) = &mut bad.host_identifier {
            ep.additional_addresses
                .push(endpointpb::endpoint::AdditionalAddress { address: None });
        }
        let err = check(&cla(vec![locality("a", Some(1), 0, vec![bad])])).unwrap_err();
        assert_eq!(
            err.field,
            "endpoints[0].lb_endpoints[0].endpoint.additional_addresses[1].address.socket_address"
        );

        // An additional address that repeats another endpoint's primary address.
        let err = check(&cla(vec![locality(
            "a",
            Some(1),
            0,
            vec![lb_endpoint("fd00::1", 80), e],
        )]))
        .unwrap_err();
        assert_eq!(
            err.field,
            "endpoints[0].lb_endpoints[1].endpoint.additional_addresses[0].address"
        );
    }

    #[test]
    fn endpoint_weight_zero_is_rejected() {
        let mut e = lb_endpoint("10.0.0.1", 80);
        e.load_balancing_weight = Some(0);
        let err = check(&cla(vec![locality("a", Some(1), 0, vec![e])])).unwrap_err();
        assert_eq!(
            err.field,
            "endpoints[0].lb_endpoints[0].load_balancing_weight"
        );
    }

    fn with_metadata(e: &mut endpointpb::LbEndpoint, ns: &str, key: &str, v: prost_types::Value) {
        let s = prost_types::Struct {
            fields: [(key.to_string(), v)].into_iter().collect(),
        };
        e.metadata = Some(corepb::Metadata {
            // collect() so this builds whichever map type the generated code uses.
            filter_metadata: [(ns.to_string(), s)].into_iter().collect(),
            typed_filter_metadata: Default::default(),
        });
    }

    fn string_value(s: &str) -> prost_types::Value {
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue(s.into())),
        }
    }

    #[test]
    fn hash_key_comes_from_envoy_lb_metadata() {
        let mut a = lb_endpoint("10.0.0.1", 80);
        with_metadata(&mut a, "envoy.lb", "hash_key", string_value("pod-a"));
        let mut b = lb_endpoint("10.0.0.2", 80);
        with_metadata(&mut b, "envoy.lb", "hash_key", string_value(""));
        let mut c = lb_endpoint("10.0.0.3", 80);
        with_metadata(&mut c, "istio", "workload", string_value("echo-v1"));
        let mut d = lb_endpoint("10.0.0.4", 80);
        with_metadata(
            &mut d,
            "envoy.lb",
            "hash_key",
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(7.0)),
            },
        );
        let mut ig = Ignored::default();
        let got = validate_cluster_load_assignment(
            &cla(vec![locality("a", Some(1), 0, vec![a, b, c, d])]),
            &mut ig,
        )
        .unwrap();
        let keys: Vec<_> = got.localities[0]
            .endpoints
            .iter()
            .map(|e| e.hash_key.as_deref())
            .collect();
        assert_eq!(keys, [Some("pod-a"), None, None, None]);
        assert_eq!(
            ig.fields(),
            [
                "endpoints[*].lb_endpoints[*].metadata.filter_metadata[\"istio\"]",
                "endpoints[*].lb_endpoints[*].metadata.filter_metadata[\"envoy.lb\"].hash_key",
            ]
        );
    }

    fn drop_overload(
        cat: &str,
        n: u32,
        d: DenominatorType,
    ) -> endpointpb::cluster_load_assignment::policy::DropOverload {
        endpointpb::cluster_load_assignment::policy::DropOverload {
            category: cat.into(),
            drop_percentage: Some(crate::pb::envoy::r#type::v3::FractionalPercent {
                numerator: n,
                denominator: d as i32,
            }),
        }
    }

    #[test]
    fn drop_overloads_are_normalised_to_ppm() {
        let mut c = cla(vec![]);
        c.policy = Some(endpointpb::cluster_load_assignment::Policy {
            drop_overloads: vec![
                drop_overload("lb", 5, DenominatorType::Hundred),
                drop_overload("throttle", 25, DenominatorType::TenThousand),
                drop_overload("m", 7, DenominatorType::Million),
                drop_overload("all", 250, DenominatorType::Hundred),
                drop_overload("max", u32::MAX, DenominatorType::Hundred),
                endpointpb::cluster_load_assignment::policy::DropOverload {
                    category: "none".into(),
                    drop_percentage: None,
                },
            ],
            overprovisioning_factor: Some(140),
            ..Default::default()
        });
        let mut ig = Ignored::default();
        let got = validate_cluster_load_assignment(&c, &mut ig).unwrap();
        let ppm: Vec<_> = got
            .drop_overloads
            .iter()
            .map(|d| (d.category.as_str(), d.parts_per_million))
            .collect();
        assert_eq!(
            ppm,
            [
                ("lb", 50_000),
                ("throttle", 2_500),
                ("m", 7),
                ("all", 1_000_000),
                ("max", 1_000_000),
                ("none", 0),
            ]
        );
        assert_eq!(ig.fields(), ["policy.overprovisioning_factor"]);

        let mut c = cla(vec![]);
        c.policy = Some(endpointpb::cluster_load_assignment::Policy {
            drop_overloads: vec![endpointpb::cluster_load_assignment::policy::DropOverload {
                category: "x".into(),
                drop_percentage: Some(crate::pb::envoy::r#type::v3::FractionalPercent {
                    numerator: 1,
                    denominator: 9,
                }),
            }],
            ..Default::default()
        });
        let err = check(&c).unwrap_err();
        assert_eq!(
            err.field,
            "policy.drop_overloads[0].drop_percentage.denominator"
        );
    }

    #[test]
    fn leds_and_empty_name_are_rejected() {
        let mut l = locality("a", Some(1), 0, vec![]);
        l.lb_config = Some(
            endpointpb::locality_lb_endpoints::LbConfig::LedsClusterLocalityConfig(
                endpointpb::LedsClusterLocalityConfig::default(),
            ),
        );
        let err = check(&cla(vec![l])).unwrap_err();
        assert_eq!(err.field, "endpoints[0].leds_cluster_locality_config");

        let mut c = cla(vec![]);
        c.cluster_name.clear();
        assert_eq!(check(&c).unwrap_err().field, "cluster_name");
    }

    #[test]
    fn ignored_endpoint_fields_are_recorded_once() {
        let mut eps = Vec::new();
        for k in 0..3u8 {
            let mut e = lb_endpoint(&format!("10.0.0.{k}"), 80);
            if let Some(HostIdentifier::Endpoint(ep)) = &mut e.host_identifier {
                ep.hostname = format!("pod-{k}");
            }
            eps.push(e);
        }
        let mut ig = Ignored::default();
        validate_cluster_load_assignment(&cla(vec![locality("a", Some(1), 0, eps)]), &mut ig)
            .unwrap();
        assert_eq!(
            ig.fields(),
            ["endpoints[*].lb_endpoints[*].endpoint.hostname"]
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// (zone, locality weight, priority, [(ip last octet, port, endpoint weight, health)])
        type Loc = (u8, Option<u32>, u32, Vec<(u8, u32, Option<u32>, i32)>);

        fn build(locs: &[Loc], drops: &[(u32, i32)]) -> endpointpb::ClusterLoadAssignment {
            let mut c = cla(locs
                .iter()
                .map(|(zone, w, p, eps)| {
                    let eps = eps
                        .iter()
                        .map(|(ip, port, ew, health)| {
                            let mut e = lb_endpoint(&format!("10.0.0.{ip}"), *port);
                            e.load_balancing_weight = *ew;
                            e.health_status = *health;
                            e
                        })
                        .collect();
                    locality(&zone.to_string(), *w, *p, eps)
                })
                .collect());
            c.policy = Some(endpointpb::cluster_load_assignment::Policy {
                drop_overloads: drops
                    .iter()
                    .map(
                        |(n, d)| endpointpb::cluster_load_assignment::policy::DropOverload {
                            category: "c".into(),
                            drop_percentage: Some(
                                crate::pb::envoy::r#type::v3::FractionalPercent {
                                    numerator: *n,
                                    denominator: *d,
                                },
                            ),
                        },
                    )
                    .collect(),
                ..Default::default()
            });
            c
        }

        proptest! {
            /// Whatever comes in, an accepted assignment upholds the invariants the balancers
            /// rely on, and nothing panics.
            #[test]
            fn accepted_assignments_uphold_the_model_invariants(
                locs in prop::collection::vec(
                    (
                        0u8..4,
                        prop_oneof![
                            1 => Just(None),
                            1 => Just(Some(0u32)),
                            8 => (1u32..5).prop_map(Some),
                            1 => Just(Some(u32::MAX)),
                        ],
                        prop_oneof![4 => Just(0u32), 2 => Just(1u32), 1 => Just(2u32)],
                        prop::collection::vec(
                            (
                                0u8..200,
                                prop_oneof![8 => 1u32..3, 1 => Just(0u32), 1 => Just(70_000u32)],
                                prop_oneof![
                                    8 => Just(None),
                                    1 => Just(Some(0u32)),
                                    1 => (1u32..4).prop_map(Some),
                                ],
                                -1i32..7,
                            ),
                            1..5,
                        ),
                    ),
                    1..4,
                ),
                drops in prop::collection::vec(
                    (any::<u32>(), prop_oneof![9 => 0i32..3, 1 => Just(7i32)]),
                    0..3,
                ),
            ) {
                let c = build(&locs, &drops);
                let Ok(got) = validate_cluster_load_assignment(&c, &mut Ignored::default())
                else {
                    return Ok(());
                };
                let mut priorities: Vec<u32> = got.localities.iter().map(|l| l.priority).collect();
                priorities.sort_unstable();
                priorities.dedup();
                let expected: Vec<u32> = (0..u32::try_from(priorities.len()).unwrap()).collect();
                prop_assert_eq!(priorities, expected);
                let mut seen = BTreeSet::new();
                let mut sums: BTreeMap<u32, u64> = BTreeMap::new();
                for l in &got.localities {
                    prop_assert!(l.weight >= 1);
                    *sums.entry(l.priority).or_default() += u64::from(l.weight);
                    for e in &l.endpoints {
                        prop_assert!(e.weight >= 1);
                        prop_assert!(e.address.port() != 0);
                        prop_assert!(seen.insert(e.address));
                    }
                }
                prop_assert!(sums.values().all(|s| *s <= u64::from(u32::MAX)));
                prop_assert!(got.drop_overloads.iter().all(|d| d.parts_per_million <= 1_000_000));
            }
        }
    }
}
