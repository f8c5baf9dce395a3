//! Configuration → xDS resources, named and shaped as istiod's proxyless generator
//! (`pilot/pkg/networking/grpcgen`) emits them, so an application tested against skiff's control
//! plane meets the same configuration under istiod (DESIGN §6).
//!
//! For every `ServiceEntry` host `H` and port `P`:
//! - Listener `H:P` (the dial target's authority): an `api_listener` HTTP connection manager
//!   with the fault and router filters and RDS `outbound|P||H` over ADS (`grpcgen/lds.go`);
//! - RouteConfiguration `outbound|P||H`: one virtual host `H:P` with istiod's domain forms,
//!   routes from the host's `VirtualService` or the default route (`grpcgen/rds.go`,
//!   `core/route/route.go`);
//! - Cluster `outbound|P||H` and one per `DestinationRule` subset, `outbound|P|SUBSET|H`: EDS over
//!   ADS with `service_name` = cluster name (`grpcgen/cds.go`);
//! - ClusterLoadAssignment per cluster, endpoints filtered by subset labels.
//!
//! For every endpoint address and port: a gRFC A36 server Listener
//! `xds.istio.io/grpc/lds/inbound/IP:PORT` with one filter chain (`inbound-plaintext` or
//! `inbound-mtls`), RBAC filters from `AuthorizationPolicy` and an inline `inbound` route
//! configuration (`grpcgen/lds.go`).
//!
//! For every interface (DESIGN §7): a Listener named after it, identical to its host's listener
//! apart from the name; the interface name is also added to that route configuration's domains,
//! because gRPC picks the virtual host by the dial target's authority (gRFC A27), which for
//! `xds:///helloworld.Greeter` is the interface name. That one extra domain is the only
//! difference from what istiod would send.
//!
//! Where skiff knowingly differs from istiod, the function doing it says so.

mod cluster;
mod encode;
mod inbound;
mod listener;
mod route;

use std::collections::BTreeMap;

use super::config::{
    self, ConfigErrors, ConfigWarning, DestinationRule, MeshConfig, ServiceEntry, ServicePort,
    VirtualService, WorkloadEndpoint, resolve_host,
};
use super::interfaces::{InterfaceRegistry, ResolvedInterfaces};
use super::resources::Resources;

pub use encode::any;

/// The result of one translation.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// Every resource, versioned.
    pub resources: Resources,
    /// The interface map this translation used.
    pub interfaces: ResolvedInterfaces,
    /// Validation warnings (ignored fields, values dropped like istiod drops them).
    pub warnings: Vec<ConfigWarning>,
}

/// istiod's cluster (and route configuration) naming, `model.BuildSubsetKey`:
/// `outbound|PORT|SUBSET|HOST`.
pub fn cluster_name(port: u32, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// istiod's client listener name: the dial target's authority, `net.JoinHostPort(host, port)`.
pub fn listener_name(host: &str, port: u32) -> String {
    join_host_port(host, port)
}

/// istiod's gRFC A36 server listener name for an endpoint address and port.
pub fn inbound_listener_name(ip: &str, port: u32) -> String {
    format!(
        "{}{}",
        super::interfaces::INBOUND_LISTENER_PREFIX,
        join_host_port(ip, port)
    )
}

/// Go's `net.JoinHostPort`: brackets IPv6 literals.
pub(crate) fn join_host_port(host: &str, port: u32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One service (a `ServiceEntry` host) with everything that applies to it.
#[derive(Debug)]
pub(crate) struct Service<'a> {
    pub(crate) host: &'a str,
    pub(crate) se: &'a ServiceEntry,
    pub(crate) endpoints: Vec<WorkloadEndpoint>,
    pub(crate) dr: Option<&'a DestinationRule>,
    pub(crate) vs: Option<&'a VirtualService>,
}

impl Service<'_> {
    /// The port an endpoint listens on for a service port: the endpoint's own `ports` entry,
    /// else the port's `targetPort`, else the port number (Istio's ServiceEntry semantics).
    pub(crate) fn endpoint_port(ep: &WorkloadEndpoint, port: &ServicePort) -> u32 {
        ep.ports
            .get(&port.name)
            .copied()
            .or(port.target_port)
            .unwrap_or(port.number)
    }
}

/// Every service by host, with its endpoints, DestinationRule and VirtualService resolved.
pub(crate) fn services(config: &MeshConfig) -> BTreeMap<&str, Service<'_>> {
    let mut drs: BTreeMap<String, &DestinationRule> = BTreeMap::new();
    for dr in &config.destination_rules {
        drs.entry(resolve_host(&dr.host.0, &dr.meta.namespace))
            .or_insert(dr);
    }
    let mut vss: BTreeMap<String, &VirtualService> = BTreeMap::new();
    for vs in &config.virtual_services {
        for (h, _) in &vs.hosts {
            vss.entry(resolve_host(h, &vs.meta.namespace)).or_insert(vs);
        }
    }
    let mut out = BTreeMap::new();
    for se in &config.service_entries {
        let endpoints = config::endpoints_of(config, se);
        for host in &se.hosts {
            out.entry(host.as_str()).or_insert_with(|| Service {
                host,
                se,
                endpoints: endpoints.clone(),
                dr: drs.get(host.as_str()).copied(),
                vs: vss.get(host.as_str()).copied(),
            });
        }
    }
    out
}

/// Translates a validated configuration (validated again here, since [`MeshConfig`] can be built
/// in code) and the interface registry into resources.
pub fn translate(
    config: &MeshConfig,
    registry: &InterfaceRegistry,
) -> Result<Translation, ConfigErrors> {
    let warnings = config.validate()?;
    let services = services(config);
    let interfaces = registry.resolve(config);
    let mut resources = Resources::new();

    // Interface names by the host:port they route like.
    let mut iface_domains: BTreeMap<(String, u32), Vec<String>> = BTreeMap::new();
    for (name, r) in &interfaces.map {
        iface_domains
            .entry((r.target.host.clone(), r.target.port))
            .or_default()
            .push(name.clone());
    }

    for svc in services.values() {
        for port in &svc.se.ports {
            let extra = iface_domains
                .get(&(svc.host.to_string(), port.number))
                .cloned()
                .unwrap_or_default();
            let l = listener::client_listener(svc, port, &listener_name(svc.host, port.number));
            resources.insert(l.name.clone(), any(&l));
            let rc = route::route_configuration(svc, port, &services, &extra);
            resources.insert(rc.name.clone(), any(&rc));
            for c in cluster::clusters(svc, port) {
                resources.insert(c.name.clone(), any(&c));
            }
            for cla in cluster::load_assignments(svc, port) {
                resources.insert(cla.cluster_name.clone(), any(&cla));
            }
        }
    }

    for (name, r) in &interfaces.map {
        if let Some(svc) = services.get(r.target.host.as_str())
            && let Some(port) = svc.se.ports.iter().find(|p| p.number == r.target.port)
        {
            let l = listener::client_listener(svc, port, name);
            resources.insert(l.name.clone(), any(&l));
        }
    }

    for l in inbound::server_listeners(config, &services) {
        resources.insert(l.name.clone(), any(&l));
    }

    Ok(Translation {
        resources,
        interfaces,
        warnings,
    })
}
