//! The interface registry (DESIGN §7): which `host:port` serves each gRPC interface.
//!
//! Two sources feed it:
//! - configuration: the `skiff.dev/interfaces` annotation on a `ServiceEntry`;
//! - announcements: a server lists the interfaces it serves in its xDS node metadata under
//!   [`INTERFACES_METADATA_KEY`], either as a comma-separated string or as a list of strings.
//!   Each entry is `package.Service` or `package.Service=host:port`. A bare name is resolved
//!   against the configuration by the server's own addresses: node metadata `INSTANCE_IPS`
//!   (what istio-agent sets) and the `xds.istio.io/grpc/lds/inbound/IP:PORT` listeners the
//!   server subscribes to (gRFC A36 servers always do). An announcement lives as long as the
//!   ADS stream that carried it.
//!
//! Configuration wins over announcements; conflicting announcements resolve to the smallest
//! `host:port` and the conflict is reported in [`ResolvedInterfaces::problems`]. Nothing here is
//! a debug API or needs a single control-plane replica: the mapping travels in a standard xDS
//! field and comes back out as ordinary Listeners.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use prost_types::value::Kind;

use crate::ids::AdsStreamId;

use super::config::{self, MeshConfig, Source};

/// The node metadata key under which a server announces the interfaces it serves.
pub const INTERFACES_METADATA_KEY: &str = "SKIFF_INTERFACES";
/// The node metadata key istio-agent fills with the workload's IPs (comma-separated).
pub const INSTANCE_IPS_METADATA_KEY: &str = "INSTANCE_IPS";
/// The name prefix of gRFC A36 server listeners in istiod's naming.
pub const INBOUND_LISTENER_PREFIX: &str = "xds.istio.io/grpc/lds/inbound/";

/// A service host and port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// Host (a `ServiceEntry` host).
    pub host: String,
    /// Service port.
    pub port: u32,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One announced interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnouncedInterface {
    /// The gRPC service name.
    pub name: String,
    /// The explicit `=host:port`, if given.
    pub target: Option<HostPort>,
}

/// What one server (one ADS stream) announced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Announcement {
    /// `node.id`.
    pub node_id: String,
    /// The interfaces.
    pub interfaces: Vec<AnnouncedInterface>,
    /// The node's IPs (`INSTANCE_IPS`, plus those of its inbound listener subscriptions).
    pub addresses: BTreeSet<String>,
    /// `(ip, port)` of the inbound listeners it subscribes to.
    pub inbound: BTreeSet<(String, u32)>,
}

/// Parses the interfaces a node announces from its metadata; `Ok(empty)` when the key is absent.
pub fn parse_announced(metadata: &prost_types::Struct) -> Result<Vec<AnnouncedInterface>, String> {
    let Some(value) = metadata.fields.get(INTERFACES_METADATA_KEY) else {
        return Ok(Vec::new());
    };
    let mut raw: Vec<String> = Vec::new();
    match &value.kind {
        Some(Kind::StringValue(s)) => raw.extend(s.split(',').map(str::to_string)),
        Some(Kind::ListValue(list)) => {
            for v in &list.values {
                match &v.kind {
                    Some(Kind::StringValue(s)) => raw.push(s.clone()),
                    _ => {
                        return Err(format!(
                            "{INTERFACES_METADATA_KEY}: list entries must be strings"
                        ));
                    }
                }
            }
        }
        _ => {
            return Err(format!(
                "{INTERFACES_METADATA_KEY} must be a comma-separated string or a list of strings"
            ));
        }
    }
    let mut out = Vec::new();
    for entry in raw.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, target) = match entry.split_once('=') {
            None => (entry, None),
            Some((name, hp)) => {
                let (host, port) = hp.trim().rsplit_once(':').ok_or_else(|| {
                    format!("{INTERFACES_METADATA_KEY}: {entry:?}: target must be host:port")
                })?;
                let port = port
                    .parse::<u32>()
                    .map_err(|_| format!("{INTERFACES_METADATA_KEY}: {entry:?}: bad port"))?;
                (
                    name.trim(),
                    Some(HostPort {
                        host: host.to_ascii_lowercase(),
                        port,
                    }),
                )
            }
        };
        if !config::parse_valid_interface_name(name) {
            return Err(format!(
                "{INTERFACES_METADATA_KEY}: {name:?} is not a gRPC service name (package.Service)"
            ));
        }
        out.push(AnnouncedInterface {
            name: name.to_string(),
            target,
        });
    }
    Ok(out)
}

/// Splits an inbound listener name into `(ip, port)`.
pub fn parse_inbound_name(name: &str) -> Option<(String, u32)> {
    let addr = name.strip_prefix(INBOUND_LISTENER_PREFIX)?;
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// Announcements by ADS stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceRegistry {
    announcements: BTreeMap<AdsStreamId, Announcement>,
}

/// Where a resolved interface came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceOrigin {
    /// The `skiff.dev/interfaces` annotation.
    Config(Source),
    /// Announced by these nodes (ids).
    Announced(Vec<String>),
}

/// One resolved interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedInterface {
    /// The service that serves it.
    pub target: HostPort,
    /// Where the mapping came from.
    pub origin: InterfaceOrigin,
}

/// The interface → `host:port` map one translation uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedInterfaces {
    /// Interface name → target.
    pub map: BTreeMap<String, ResolvedInterface>,
    /// Announcements that could not be resolved, or conflicted (human-readable).
    pub problems: Vec<String>,
}

impl InterfaceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or replaces) a stream's announcement; returns whether anything changed.
    pub fn announce(&mut self, stream: AdsStreamId, a: Announcement) -> bool {
        if a.interfaces.is_empty() {
            return self.withdraw(stream);
        }
        if self.announcements.get(&stream) == Some(&a) {
            return false;
        }
        self.announcements.insert(stream, a);
        true
    }

    /// Forgets a stream's announcement; returns whether there was one.
    pub fn withdraw(&mut self, stream: AdsStreamId) -> bool {
        self.announcements.remove(&stream).is_some()
    }

    /// Announcements by stream.
    pub fn announcements(&self) -> &BTreeMap<AdsStreamId, Announcement> {
        &self.announcements
    }

    /// Resolves configuration declarations and announcements against `config`.
    pub fn resolve(&self, config: &MeshConfig) -> ResolvedInterfaces {
        let mut out = ResolvedInterfaces::default();
        for se in &config.service_entries {
            let Some(host) = se.hosts.first() else {
                continue;
            };
            for decl in &se.interfaces {
                let port = decl.port.or_else(|| se.ports.first().map(|p| p.number));
                if let Some(port) = port {
                    out.map.insert(
                        decl.name.clone(),
                        ResolvedInterface {
                            target: HostPort {
                                host: host.clone(),
                                port,
                            },
                            origin: InterfaceOrigin::Config(decl.source.clone()),
                        },
                    );
                }
            }
        }
        // name → target → announcing nodes.
        let mut announced: BTreeMap<String, BTreeMap<HostPort, Vec<String>>> = BTreeMap::new();
        for a in self.announcements.values() {
            for iface in &a.interfaces {
                let targets = match &iface.target {
                    Some(t) => {
                        if service_has_port(config, t) {
                            vec![t.clone()]
                        } else {
                            out.problems.push(format!(
                                "node {}: interface {} -> {t}: no ServiceEntry declares that host and port",
                                a.node_id, iface.name
                            ));
                            continue;
                        }
                    }
                    None => {
                        let found = candidates(config, a);
                        if found.is_empty() {
                            out.problems.push(format!(
                                "node {}: interface {}: no ServiceEntry has an endpoint at the node's addresses {:?}; \
                                 announce it as {}=host:port",
                                a.node_id, iface.name, a.addresses, iface.name
                            ));
                            continue;
                        }
                        if found.len() > 1 {
                            out.problems.push(format!(
                                "node {}: interface {}: ambiguous ({}); using {}",
                                a.node_id,
                                iface.name,
                                found
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                found
                                    .iter()
                                    .next()
                                    .map(ToString::to_string)
                                    .unwrap_or_default()
                            ));
                        }
                        found.into_iter().take(1).collect()
                    }
                };
                for t in targets {
                    announced
                        .entry(iface.name.clone())
                        .or_default()
                        .entry(t)
                        .or_default()
                        .push(a.node_id.clone());
                }
            }
        }
        for (name, targets) in announced {
            if let Some(existing) = out.map.get(&name) {
                for t in targets.keys().filter(|t| **t != existing.target) {
                    out.problems.push(format!(
                        "interface {name}: announced at {t}, but configuration maps it to {}; configuration wins",
                        existing.target
                    ));
                }
                continue;
            }
            if targets.len() > 1 {
                out.problems.push(format!(
                    "interface {name}: announced at several services ({}); using the first",
                    targets
                        .keys()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some((target, mut nodes)) = targets.into_iter().next() {
                nodes.sort();
                nodes.dedup();
                out.map.insert(
                    name,
                    ResolvedInterface {
                        target,
                        origin: InterfaceOrigin::Announced(nodes),
                    },
                );
            }
        }
        out
    }
}

fn service_has_port(config: &MeshConfig, t: &HostPort) -> bool {
    config
        .service_entries
        .iter()
        .any(|se| se.hosts.contains(&t.host) && se.ports.iter().any(|p| p.number == t.port))
}

/// Services with an endpoint at one of the node's addresses; when the node subscribed to
/// inbound listeners, only the service ports whose endpoint port it listens on.
fn candidates(config: &MeshConfig, a: &Announcement) -> BTreeSet<HostPort> {
    let mut out = BTreeSet::new();
    for se in &config.service_entries {
        let Some(host) = se.hosts.first() else {
            continue;
        };
        for ep in config::endpoints_of(config, se) {
            if !a.addresses.contains(&ep.address) {
                continue;
            }
            for p in &se.ports {
                let ep_port = ep
                    .ports
                    .get(&p.name)
                    .copied()
                    .or(p.target_port)
                    .unwrap_or(p.number);
                let listening = a
                    .inbound
                    .iter()
                    .any(|(ip, port)| ip == &ep.address && *port == ep_port);
                let no_inbound_info = !a.inbound.iter().any(|(ip, _)| ip == &ep.address);
                if listening || no_inbound_info {
                    out.insert(HostPort {
                        host: host.clone(),
                        port: p.number,
                    });
                }
            }
        }
    }
    out
}
