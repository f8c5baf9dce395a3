//! Cross-document validation: references between documents, duplicates, weights.
//!
//! istiod accepts most of these and silently produces configuration that fails at call time
//! (a route to a subset no DestinationRule defines becomes a cluster that does not exist, and
//! the RPC fails with UNAVAILABLE). skiff refuses them at load time, pointing at the field.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn err(errors: &mut Vec<ConfigError>, at: &Source, kind: ConfigErrorKind, message: String) {
    errors.push(ConfigError {
        file: at.file.clone(),
        line: at.line,
        kind,
        message,
    });
}

fn warn(warnings: &mut Vec<ConfigWarning>, at: &Source, message: String) {
    warnings.push(ConfigWarning {
        file: at.file.clone(),
        line: at.line,
        message,
    });
}

pub(super) fn validate(
    config: &MeshConfig,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) {
    // Services by host.
    let mut services: BTreeMap<&str, &ServiceEntry> = BTreeMap::new();
    for se in &config.service_entries {
        for host in &se.hosts {
            if let Some(prev) = services.get(host.as_str()) {
                err(
                    errors,
                    &se.meta.source,
                    ConfigErrorKind::Duplicate,
                    format!(
                        "ServiceEntry {}: host {host} is already declared by ServiceEntry {} ({}:{})",
                        se.meta.name, prev.meta.name, prev.meta.source.file, prev.meta.source.line
                    ),
                );
            } else {
                services.insert(host, se);
            }
        }
        if let Some(sel) = &se.workload_selector {
            let any = config.workload_entries.iter().any(|we| {
                we.meta.namespace == se.meta.namespace && labels_match(sel, &we.endpoint.labels)
            });
            if !any {
                warn(
                    warnings,
                    &se.meta.source,
                    format!(
                        "ServiceEntry {}: workloadSelector selects no WorkloadEntry in namespace {}",
                        se.meta.name, se.meta.namespace
                    ),
                );
            }
        }
    }

    // Interfaces are global names: one service each.
    let mut interfaces: BTreeMap<&str, &ServiceEntry> = BTreeMap::new();
    for se in &config.service_entries {
        for decl in &se.interfaces {
            if let Some(prev) = interfaces.get(decl.name.as_str()) {
                err(
                    errors,
                    &decl.source,
                    ConfigErrorKind::Duplicate,
                    format!(
                        "ServiceEntry {}: interface {} is already declared by ServiceEntry {} ({}:{})",
                        se.meta.name,
                        decl.name,
                        prev.meta.name,
                        prev.meta.source.file,
                        prev.meta.source.line
                    ),
                );
            } else {
                interfaces.insert(&decl.name, se);
            }
        }
    }

    // DestinationRules: one per host, host must exist.
    let mut rules: BTreeMap<String, &DestinationRule> = BTreeMap::new();
    for dr in &config.destination_rules {
        let what = format!("DestinationRule {}", dr.meta.name);
        let host = resolve_host(&dr.host.0, &dr.meta.namespace);
        let Some(se) = services.get(host.as_str()) else {
            err(
                errors,
                &dr.host.1,
                ConfigErrorKind::Reference,
                format!("{what}: host {host} is not declared by any ServiceEntry"),
            );
            continue;
        };
        if let Some(prev) = rules.get(&host) {
            err(
                errors,
                &dr.host.1,
                ConfigErrorKind::Duplicate,
                format!(
                    "{what}: host {host} already has DestinationRule {} ({}:{})",
                    prev.meta.name, prev.meta.source.file, prev.meta.source.line
                ),
            );
            continue;
        }
        let endpoints = endpoints_of(config, se);
        for subset in &dr.subsets {
            if !endpoints
                .iter()
                .any(|e| labels_match(&subset.labels, &e.labels))
            {
                warn(
                    warnings,
                    &subset.source,
                    format!(
                        "{what}: subset {} selects no endpoint of {host}",
                        subset.name
                    ),
                );
            }
        }
        for tp in std::iter::once(&dr.traffic_policy)
            .chain(dr.subsets.iter().filter_map(|s| s.traffic_policy.as_ref()))
        {
            if let Some(lb @ (LoadBalancer::Random | LoadBalancer::Passthrough)) = &tp.load_balancer
            {
                warn(
                    warnings,
                    &dr.meta.source,
                    format!(
                        "{what}: loadBalancer {lb:?} is dropped by istiod's proxyless generator; \
                         emitted as the default round robin"
                    ),
                );
            }
        }
        rules.insert(host, dr);
    }

    // VirtualServices.
    let mut routed: BTreeMap<String, &VirtualService> = BTreeMap::new();
    for vs in &config.virtual_services {
        let what = format!("VirtualService {}", vs.meta.name);
        let mut own_ports: BTreeSet<u32> = BTreeSet::new();
        for (h, at) in &vs.hosts {
            let host = resolve_host(h, &vs.meta.namespace);
            match services.get(host.as_str()) {
                None => err(
                    errors,
                    at,
                    ConfigErrorKind::Reference,
                    format!("{what}: host {host} is not declared by any ServiceEntry"),
                ),
                Some(se) => own_ports.extend(se.ports.iter().map(|p| p.number)),
            }
            if let Some(prev) = routed.get(&host) {
                err(
                    errors,
                    at,
                    ConfigErrorKind::Duplicate,
                    format!(
                        "{what}: host {host} is already routed by VirtualService {} ({}:{})",
                        prev.meta.name, prev.meta.source.file, prev.meta.source.line
                    ),
                );
            } else {
                routed.insert(host, vs);
            }
        }
        for http in &vs.http {
            if http.route.len() > 1 {
                let sum: u64 = http.route.iter().map(|r| u64::from(r.weight)).sum();
                if sum != 100 {
                    err(
                        errors,
                        &http.route_source,
                        ConfigErrorKind::Invalid,
                        format!("{what}: route weight sum {sum} != 100"),
                    );
                }
            } else if let Some(r) = http.route.first()
                && r.weight != 0
                && r.weight != 100
            {
                err(
                    errors,
                    &http.route_source,
                    ConfigErrorKind::Invalid,
                    format!(
                        "{what}: a single destination takes all traffic; weight {} must be 100 or unset",
                        r.weight
                    ),
                );
            }
            for r in &http.route {
                let d = &r.destination;
                let host = resolve_host(&d.host, &vs.meta.namespace);
                let Some(se) = services.get(host.as_str()) else {
                    err(
                        errors,
                        &d.source,
                        ConfigErrorKind::Reference,
                        format!(
                            "{what}: destination host {host} is not declared by any ServiceEntry"
                        ),
                    );
                    continue;
                };
                match d.port {
                    Some(p) if !se.ports.iter().any(|sp| sp.number == p) => err(
                        errors,
                        &d.source,
                        ConfigErrorKind::Reference,
                        format!("{what}: destination port {p} is not a port of {host}"),
                    ),
                    None if se.ports.len() > 1 => {
                        // istiod falls back to the port the client dialled; that port must exist
                        // on the destination too, or the cluster will not.
                        if let Some(missing) = own_ports
                            .iter()
                            .find(|p| !se.ports.iter().any(|sp| sp.number == **p))
                        {
                            err(
                                errors,
                                &d.source,
                                ConfigErrorKind::Reference,
                                format!(
                                    "{what}: {host} has several ports and none is {missing}; set destination.port.number"
                                ),
                            );
                        }
                    }
                    _ => {}
                }
                if let Some(subset) = &d.subset {
                    let defined = rules
                        .get(&host)
                        .is_some_and(|dr| dr.subsets.iter().any(|s| &s.name == subset));
                    if !defined {
                        err(
                            errors,
                            &d.source,
                            ConfigErrorKind::Reference,
                            format!(
                                "{what}: subset {subset} of {host} is not defined by any DestinationRule"
                            ),
                        );
                    }
                }
            }
        }
    }

    // PeerAuthentication: one namespace-wide policy per namespace.
    let mut ns_wide: BTreeMap<&str, &PeerAuthentication> = BTreeMap::new();
    for pa in &config.peer_authentications {
        if pa.selector.is_some() {
            continue;
        }
        if let Some(prev) = ns_wide.get(pa.meta.namespace.as_str()) {
            err(
                errors,
                &pa.meta.source,
                ConfigErrorKind::Duplicate,
                format!(
                    "PeerAuthentication {}: namespace {} already has the namespace-wide policy {} ({}:{})",
                    pa.meta.name,
                    pa.meta.namespace,
                    prev.meta.name,
                    prev.meta.source.file,
                    prev.meta.source.line
                ),
            );
        } else {
            ns_wide.insert(&pa.meta.namespace, pa);
        }
    }
}

/// The endpoints of a service: inline, or the `WorkloadEntry`s its selector picks (same
/// namespace, as in Istio), in declaration order.
pub fn endpoints_of(config: &MeshConfig, se: &ServiceEntry) -> Vec<WorkloadEndpoint> {
    match &se.workload_selector {
        None => se.endpoints.clone(),
        Some(sel) => config
            .workload_entries
            .iter()
            .filter(|we| {
                we.meta.namespace == se.meta.namespace && labels_match(sel, &we.endpoint.labels)
            })
            .map(|we| we.endpoint.clone())
            .collect(),
    }
}
