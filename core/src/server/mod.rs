//! The xDS-enabled server's decisions (gRFC A36), sans-IO.
//!
//! A server listening on `ip:port` watches the Listener named by the bootstrap's
//! `server_listener_resource_name_template` over the process's one ADS stream. From the cached
//! resource this module derives:
//!
//! - the [`ServingMode`]: not serving until a good server Listener for this address arrives;
//!   serving while it exists; not serving again when it is deleted or never existed (the last
//!   good Listener keeps serving through a NACK, gRFC A46);
//! - per accepted connection, the [`FilterChain`] (Envoy's filter-chain match in gRFC A36's
//!   order: destination prefix, source type, source prefix, source port — the most specific
//!   match at each step — else `default_filter_chain`, else the connection is closed);
//! - per RPC, the route in that chain's route configuration: it must carry
//!   `non_forwarding_action`, and an RPC that matches no route, or a route of another kind,
//!   fails with UNAVAILABLE ([`route_rpc`]).
//!
//! A runtime adapter resolves all of it once per configuration change into a [`ServerView`]
//! (mode, Listener, the RDS route configurations its chains name) and shares that with its
//! connections: routing an RPC then reads the view only, never the xDS client.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::resource::Resource;
use crate::resource::listener::{
    Cidr, FilterChain, ListenerKind, RouteSource, ServerListener, SourceType,
};
use crate::resource::route::RouteConfig;
use crate::rng::Rng;
use crate::router::{RequestHead, route_server, select_virtual_host};
use crate::xds::{ResourceStatus, ResourceType, XdsClient};

/// istiod's template for proxyless servers (what istio-agent's bootstrap carries).
pub const ISTIO_SERVER_LISTENER_TEMPLATE: &str = "xds.istio.io/grpc/lds/inbound/%s";

/// The Listener name a server on `addr` watches: every `%s` of `template` becomes `ip:port`
/// (`[v6]:port` for IPv6), as gRFC A36 specifies.
pub fn listener_name(template: &str, addr: SocketAddr) -> String {
    template.replace("%s", &addr.to_string())
}

/// Whether the server accepts RPCs (gRFC A36 serving modes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServingMode {
    /// A good Listener is in force.
    Serving,
    /// Not serving: connections are refused (and existing ones drained), with why.
    NotServing(String),
}

impl ServingMode {
    /// Whether this is [`ServingMode::Serving`].
    pub fn is_serving(&self) -> bool {
        matches!(self, ServingMode::Serving)
    }
}

/// The serving mode and, when serving, the Listener in force, for the server on `addr` that
/// watches `name` (from the xDS client's cache).
pub fn serving_state(
    client: &XdsClient,
    name: &str,
    addr: SocketAddr,
) -> (ServingMode, Option<ServerListener>) {
    let Some(entry) = client.entry(ResourceType::Listener, name) else {
        return (
            ServingMode::NotServing(format!("not watching listener {name}")),
            None,
        );
    };
    let listener = match (&entry.value, entry.status) {
        (_, ResourceStatus::DoesNotExist) => {
            return (
                ServingMode::NotServing(format!("listener {name} does not exist")),
                None,
            );
        }
        (Some(Resource::Listener(l)), _) => Arc::clone(l),
        (Some(_), _) => {
            return (
                ServingMode::NotServing(format!("{name} is not a listener")),
                None,
            );
        }
        (None, ResourceStatus::Nacked) => {
            let why = entry
                .rejection
                .as_ref()
                .map_or("rejected", |r| r.error.as_str());
            return (
                ServingMode::NotServing(format!("listener {name} was rejected: {why}")),
                None,
            );
        }
        (None, _) => {
            return (
                ServingMode::NotServing(format!("waiting for listener {name}")),
                None,
            );
        }
    };
    let ListenerKind::Server(server) = &listener.kind else {
        return (
            ServingMode::NotServing(format!(
                "listener {name} is a client (API) listener, not a server listener"
            )),
            None,
        );
    };
    // gRFC A36: the Listener's address must be the one the server listens on (an unspecified
    // IP matches any, as for a server bound to 0.0.0.0).
    let a = server.address;
    let ip_ok = a.ip().is_unspecified() || addr.ip().is_unspecified() || a.ip() == addr.ip();
    if a.port() != addr.port() || !ip_ok {
        return (
            ServingMode::NotServing(format!(
                "listener {name} is for {a}, this server listens on {addr}"
            )),
            None,
        );
    }
    (ServingMode::Serving, Some(server.clone()))
}

/// The most specific match length of `ranges` for `ip`: `Some(-1)` for an empty list (matches
/// anything, least specific), `Some(len)` for the longest containing range, `None` if none.
fn prefix_match(ranges: &[Cidr], ip: IpAddr) -> Option<i16> {
    if ranges.is_empty() {
        return Some(-1);
    }
    ranges
        .iter()
        .filter(|c| c.contains(ip))
        .map(|c| i16::from(c.len))
        .max()
}

/// Keeps the candidates with the highest score; `None` scores drop out.
fn keep_best<K: Ord + Copy>(
    chains: Vec<&FilterChain>,
    score: impl Fn(&FilterChain) -> Option<K>,
) -> Vec<&FilterChain> {
    let best = chains.iter().filter_map(|c| score(c)).max();
    match best {
        None => Vec::new(),
        Some(b) => chains.into_iter().filter(|c| score(c) == Some(b)).collect(),
    }
}

/// The filter chain for a connection to `dest` from `src` (gRFC A36 / Envoy's
/// `FilterChainMatch` order), or `None`: close the connection.
pub fn select_filter_chain(
    listener: &ServerListener,
    dest: SocketAddr,
    src: SocketAddr,
) -> Option<&FilterChain> {
    let mut chains: Vec<&FilterChain> = listener.filter_chains.iter().collect();
    // 1. Destination prefix: the longest matching `prefix_ranges`.
    chains = keep_best(chains, |c| prefix_match(&c.prefix_ranges, dest.ip()));
    // 2. Source type: a specific type that matches beats ANY.
    let same_or_loopback = src.ip().is_loopback() || src.ip() == dest.ip();
    chains = keep_best(chains, |c| match c.source_type {
        SourceType::Any => Some(0u8),
        SourceType::SameIpOrLoopback => same_or_loopback.then_some(1),
        SourceType::External => (!same_or_loopback).then_some(1),
    });
    // 3. Source prefix: the longest matching `source_prefix_ranges`.
    chains = keep_best(chains, |c| prefix_match(&c.source_prefix_ranges, src.ip()));
    // 4. Source port: a listed port beats an empty list.
    chains = keep_best(chains, |c| {
        if c.source_ports.is_empty() {
            Some(0u8)
        } else {
            c.source_ports.contains(&src.port()).then_some(1)
        }
    });
    // Identical matchers would leave several (Envoy rejects such listeners): the first wins.
    chains
        .first()
        .copied()
        .or(listener.default_filter_chain.as_ref())
}

/// Why an RPC is refused (it fails with UNAVAILABLE and this message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

/// A server's configuration at one moment, resolved from the xDS cache: what its connections
/// need, with no reference back to the client.
#[derive(Clone, Debug)]
pub struct ServerView {
    /// Serving or not, and why.
    pub mode: ServingMode,
    /// The Listener in force (`Some` exactly when serving).
    pub listener: Option<Arc<ServerListener>>,
    /// The route configurations the Listener's chains fetch by RDS, by name (those the cache
    /// has; a missing one refuses the chain's RPCs).
    pub rds: BTreeMap<String, Arc<RouteConfig>>,
}

impl ServerView {
    /// The view of the server on `addr` watching the Listener `name`.
    pub fn resolve(client: &XdsClient, name: &str, addr: SocketAddr) -> ServerView {
        let (mode, listener) = serving_state(client, name, addr);
        let mut rds = BTreeMap::new();
        if let Some(l) = &listener {
            for chain in l.filter_chains.iter().chain(&l.default_filter_chain) {
                if let RouteSource::Rds(rc_name) = &chain.hcm.routes
                    && let Some(Resource::RouteConfiguration(rc)) =
                        client.resource(ResourceType::RouteConfiguration, rc_name)
                {
                    rds.insert(rc_name.clone(), Arc::clone(rc));
                }
            }
        }
        ServerView {
            mode,
            listener: listener.map(Arc::new),
            rds,
        }
    }

    /// A view that is not serving, for `why`.
    pub fn not_serving(why: impl Into<String>) -> ServerView {
        ServerView {
            mode: ServingMode::NotServing(why.into()),
            listener: None,
            rds: BTreeMap::new(),
        }
    }

    /// [`route_rpc`] against this view's route configurations.
    pub fn route(
        &self,
        chain: &FilterChain,
        authority: &str,
        head: &RequestHead<'_>,
        rng: &mut Rng,
    ) -> Result<(), Refused> {
        route_in(
            |name| self.rds.get(name).map(|rc| &**rc),
            chain,
            authority,
            head,
            rng,
        )
    }
}

/// Routes one RPC on a connection that uses `chain` (gRFC A36): the virtual host for
/// `authority`, then the first matching route, which must be a `non_forwarding_action`.
/// Route configurations fetched by RDS are looked up in `client`'s cache.
pub fn route_rpc(
    client: &XdsClient,
    chain: &FilterChain,
    authority: &str,
    head: &RequestHead<'_>,
    rng: &mut Rng,
) -> Result<(), Refused> {
    route_in(
        |name| match client.resource(ResourceType::RouteConfiguration, name) {
            Some(Resource::RouteConfiguration(rc)) => Some(&**rc),
            _ => None,
        },
        chain,
        authority,
        head,
        rng,
    )
}

/// Routes one RPC with RDS route configurations from `rds`.
fn route_in<'a>(
    rds: impl FnOnce(&str) -> Option<&'a RouteConfig>,
    chain: &'a FilterChain,
    authority: &str,
    head: &RequestHead<'_>,
    rng: &mut Rng,
) -> Result<(), Refused> {
    let rc: &RouteConfig = match &chain.hcm.routes {
        RouteSource::Inline(rc) => rc,
        RouteSource::Rds(name) => rds(name)
            .ok_or_else(|| Refused(format!("route configuration {name} is not available")))?,
    };
    let Some(vh) = select_virtual_host(rc, authority).and_then(|i| rc.virtual_hosts.get(i)) else {
        return Err(Refused(format!(
            "no virtual host for authority {authority:?}"
        )));
    };
    route_server(vh, head, rng)
        .map(|_| ())
        .map_err(|e| Refused(e.to_string()))
}

#[cfg(test)]
mod tests;
