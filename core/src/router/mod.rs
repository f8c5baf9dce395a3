//! The router: (validated [`RouteConfig`], request head) → [`RouteDecision`].
//!
//! Two steps, at two frequencies:
//! - [`select_virtual_host`] once per channel target (client) or per authority (server): the
//!   virtual host whose domains best match the authority (gRFC A27/A28, Envoy rules);
//! - [`route`] (client) / [`route_server`] (server, gRFC A36) per RPC: the first route whose
//!   path, headers and fraction all match; then the cluster (weighted pick with the seeded
//!   [`Rng`]) and the request hash (gRFC A42).
//!
//! Per-RPC work is allocation-free: decisions borrow from the config and the request. The one
//! exception is a multi-valued header whose joined value exceeds
//! [`INLINE_JOIN_BYTES`](crate::resource::matcher::INLINE_JOIN_BYTES), or a hash-policy rewrite
//! whose substitution uses capture groups.
//!
//! [`FilterPlan`] resolves each filter's effective config (gRFC A39 override precedence) once per
//! (HCM, RouteConfig) pair so an RPC finds its filter chain with two slice indexes.
#![deny(missing_docs)]

mod filters;

use core::fmt;

use xxhash_rust::xxh64::xxh64;

pub use self::filters::{EffectiveFilter, FilterPlan, RbacPolicy};
pub use crate::resource::matcher::{HeaderSource, SliceHeaders};
use crate::resource::matcher::{
    ends_with_ci, is_hidden_from_routing, starts_with_ci, with_rpc_header,
};
use crate::resource::retry::RetryPolicy;
use crate::resource::route::{
    ClusterSpecifier, DomainPattern, ForwardAction, HashPolicy, HashPolicyKind, Route, RouteAction,
    RouteConfig, RouteMatch, RouteTimeout, VirtualHost,
};
use crate::rng::Rng;

/// gRPC status code `UNAVAILABLE`, which every routing failure maps to (gRFC A28/A36).
pub const UNAVAILABLE: u32 = 14;

/// What the router needs to know about an RPC.
#[derive(Clone, Copy)]
pub struct RequestHead<'a> {
    /// The `:path`, `/package.Service/Method`.
    pub path: &'a str,
    /// The request metadata.
    pub headers: &'a dyn HeaderSource,
    /// A per-channel constant, ideally drawn at random when the channel is created (gRFC A42
    /// `io.grpc.channel_id`); it is mixed with xxHash64 before use, so any value works.
    pub channel_id: u64,
}

impl fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("path", &self.path)
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

/// How specific a domain match is: higher wins. Exact beats `*suffix` beats `prefix*` beats
/// `*`; within the wildcard kinds, the longer literal part wins (Envoy / gRFC A27).
fn domain_score(pattern: &DomainPattern, authority: &str) -> Option<(u8, usize)> {
    match pattern {
        DomainPattern::Exact(d) => authority.eq_ignore_ascii_case(d).then_some((3, d.len())),
        // The wildcard must stand for at least one character (Envoy).
        DomainPattern::Suffix(s) => {
            (authority.len() > s.len() && ends_with_ci(authority, s)).then_some((2, s.len()))
        }
        DomainPattern::Prefix(p) => {
            (authority.len() > p.len() && starts_with_ci(authority, p)).then_some((1, p.len()))
        }
        DomainPattern::Any => Some((0, 0)),
    }
}

/// The index of the virtual host whose domains most specifically match `authority` (compared
/// as given, port included, ASCII case-insensitively); ties go to the earlier virtual host.
/// `None`: no virtual host matches, and the channel fails its RPCs (gRFC A28).
pub fn select_virtual_host(config: &RouteConfig, authority: &str) -> Option<usize> {
    let mut best: Option<(usize, (u8, usize))> = None;
    for (i, vh) in config.virtual_hosts.iter().enumerate() {
        for d in &vh.domains {
            if let Some(score) = domain_score(d, authority)
                && best.is_none_or(|(_, b)| score > b)
            {
                best = Some((i, score));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Where a decided RPC goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteTarget<'a> {
    /// Client side: this cluster. `weighted_index` is the chosen `weighted_clusters` entry.
    Cluster {
        /// The cluster name (from the config, or from the request for `cluster_header`).
        name: &'a str,
        /// Index into the route's weighted clusters, when it has them.
        weighted_index: Option<usize>,
    },
    /// Server side: handled locally (`non_forwarding_action`, gRFC A36).
    NonForwarding,
}

/// The outcome of routing one RPC; borrows from the config and the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RouteDecision<'a> {
    /// Index of the matched route in its virtual host's `routes`.
    pub route_index: usize,
    /// The matched route.
    pub route: &'a Route,
    /// Where the RPC goes.
    pub target: RouteTarget<'a>,
    /// The request hash for hash-based balancers (gRFC A42); `None` when no policy produced
    /// one (the balancer then uses a random hash).
    pub hash: Option<u64>,
}

impl<'a> RouteDecision<'a> {
    /// The cluster name, on the client side.
    pub fn cluster(&self) -> Option<&'a str> {
        match self.target {
            RouteTarget::Cluster { name, .. } => Some(name),
            RouteTarget::NonForwarding => None,
        }
    }

    /// The chosen weighted-cluster entry's index, if the route splits traffic.
    pub fn weighted_index(&self) -> Option<usize> {
        match self.target {
            RouteTarget::Cluster { weighted_index, .. } => weighted_index,
            RouteTarget::NonForwarding => None,
        }
    }

    /// The forwarding action (client side).
    pub fn forward(&self) -> Option<&'a ForwardAction> {
        match &self.route.action {
            RouteAction::Forward(f) => Some(f),
            _ => None,
        }
    }

    /// The effective retry policy (route's, else virtual host's; gRFC A44).
    pub fn retry_policy(&self) -> Option<&'a RetryPolicy> {
        self.forward().and_then(|f| f.retry_policy.as_ref())
    }

    /// The route's timeout rule (gRFC A31); [`RouteTimeout::Inherit`] on the server side.
    pub fn timeout(&self) -> RouteTimeout {
        self.forward().map_or(RouteTimeout::Inherit, |f| f.timeout)
    }
}

/// Why an RPC could not be routed. Every variant fails the RPC with UNAVAILABLE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError<'a> {
    /// No route matched (gRFC A28).
    NoMatchingRoute {
        /// The RPC's path.
        path: &'a str,
    },
    /// The matched route's action cannot serve this side: redirect, direct_response,
    /// filter_action or unset anywhere; `non_forwarding_action` on a client; `route` on a
    /// server (gRFC A28/A36).
    UnsupportedAction {
        /// Index of the matched route.
        route_index: usize,
        /// The action, by proto field name.
        action: &'static str,
    },
    /// The route takes its cluster from a header the request lacks or leaves empty.
    ClusterHeaderMissing {
        /// The header name.
        header: &'a str,
    },
}

impl RouteError<'_> {
    /// The gRPC status code the RPC fails with.
    pub const fn code(&self) -> u32 {
        UNAVAILABLE
    }
}

impl fmt::Display for RouteError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NoMatchingRoute { path } => write!(f, "no matching route for {path}"),
            RouteError::UnsupportedAction {
                route_index,
                action,
            } => write!(
                f,
                "matched route {route_index} has an unsupported action ({action})"
            ),
            RouteError::ClusterHeaderMissing { header } => write!(
                f,
                "the route takes its cluster from header {header:?}, which is missing or empty"
            ),
        }
    }
}

impl std::error::Error for RouteError<'_> {}

/// Whether `m` matches the RPC; `path_matched` says the path is already known to match. The
/// fraction is drawn last, and only when everything else matched, so the RNG is consumed only
/// where it decides something.
#[inline]
fn route_matches(
    m: &RouteMatch,
    path_matched: bool,
    head: &RequestHead<'_>,
    rng: &mut Rng,
) -> bool {
    if m.has_query_parameters || !(path_matched || m.path.matches(head.path)) {
        return false;
    }
    if !m.headers.iter().all(|h| h.matches(head.headers)) {
        return false;
    }
    m.fraction.is_none_or(|f| f.sample(rng))
}

/// The first route of `vhost` that matches (gRFC A28: first match wins).
///
/// Only the routes the virtual host's index says may match the path are tested, in route
/// order; the others' paths cannot match, so they could neither win nor draw a fraction, and
/// the outcome and the random draws are those of testing every route in order.
#[inline]
fn first_match<'a>(
    vhost: &'a VirtualHost,
    head: &RequestHead<'a>,
    rng: &mut Rng,
) -> Result<(usize, &'a Route), RouteError<'a>> {
    let found = match vhost.route_candidates(head.path) {
        Some(mut candidates) => candidates.find_map(|c| {
            let r = vhost.routes.get(c.index)?;
            route_matches(&r.matcher, c.path_matched, head, rng).then_some((c.index, r))
        }),
        None => first_match_linear(vhost, head, rng),
    };
    found.ok_or(RouteError::NoMatchingRoute { path: head.path })
}

/// [`first_match`] without the index: every route, in order.
fn first_match_linear<'a>(
    vhost: &'a VirtualHost,
    head: &RequestHead<'a>,
    rng: &mut Rng,
) -> Option<(usize, &'a Route)> {
    vhost
        .routes
        .iter()
        .enumerate()
        .find(|(_, r)| route_matches(&r.matcher, false, head, rng))
}

/// Routes a client RPC within `vhost`: the first matching route must forward (`route`);
/// the cluster is picked (weighted split drawn from `rng`) and the hash computed.
pub fn route<'a>(
    vhost: &'a VirtualHost,
    head: &RequestHead<'a>,
    rng: &mut Rng,
) -> Result<RouteDecision<'a>, RouteError<'a>> {
    let (route_index, route) = first_match(vhost, head, rng)?;
    let forward = match &route.action {
        RouteAction::Forward(f) => f,
        RouteAction::NonForwarding => {
            return Err(RouteError::UnsupportedAction {
                route_index,
                action: "non_forwarding_action",
            });
        }
        RouteAction::Unsupported(u) => {
            return Err(RouteError::UnsupportedAction {
                route_index,
                action: u.as_str(),
            });
        }
    };
    let target = match &forward.cluster {
        ClusterSpecifier::Cluster(name) => RouteTarget::Cluster {
            name,
            weighted_index: None,
        },
        ClusterSpecifier::Weighted(w) => {
            // Validation guarantees a total in 1..=u32::MAX, so `pick` always finds an entry;
            // the fallback keeps a broken invariant from panicking.
            let point = rng.below(w.total_weight());
            match w.pick(point) {
                Some((i, c)) => RouteTarget::Cluster {
                    name: &c.name,
                    weighted_index: Some(i),
                },
                None => {
                    return Err(RouteError::UnsupportedAction {
                        route_index,
                        action: "weighted_clusters",
                    });
                }
            }
        }
        ClusterSpecifier::Header(header) => {
            // Envoy uses the header's first value; the header must be visible to routing.
            let value = if is_hidden_from_routing(header) {
                None
            } else {
                head.headers.header_value(header, 0)
            };
            match value {
                Some(name) if !name.is_empty() => RouteTarget::Cluster {
                    name,
                    weighted_index: None,
                },
                _ => return Err(RouteError::ClusterHeaderMissing { header }),
            }
        }
    };
    Ok(RouteDecision {
        route_index,
        route,
        target,
        hash: request_hash(&forward.hash_policies, head),
    })
}

/// Routes a server RPC within `vhost` (gRFC A36): the first matching route must have
/// `non_forwarding_action`; anything else fails the RPC with UNAVAILABLE.
pub fn route_server<'a>(
    vhost: &'a VirtualHost,
    head: &RequestHead<'a>,
    rng: &mut Rng,
) -> Result<RouteDecision<'a>, RouteError<'a>> {
    let (route_index, route) = first_match(vhost, head, rng)?;
    match &route.action {
        RouteAction::NonForwarding => Ok(RouteDecision {
            route_index,
            route,
            target: RouteTarget::NonForwarding,
            hash: None,
        }),
        RouteAction::Forward(_) => Err(RouteError::UnsupportedAction {
            route_index,
            action: "route",
        }),
        RouteAction::Unsupported(u) => Err(RouteError::UnsupportedAction {
            route_index,
            action: u.as_str(),
        }),
    }
}

/// The request hash from `policies` (gRFC A42): each policy's hash (xxHash64, seed 0) is
/// combined as `hash = rotl(hash, 1) ^ new`; a `terminal` policy stops evaluation once a hash
/// exists; `None` when no policy produced a hash.
pub fn request_hash(policies: &[HashPolicy], head: &RequestHead<'_>) -> Option<u64> {
    let mut hash: Option<u64> = None;
    for p in policies {
        let new = match &p.kind {
            HashPolicyKind::Header { name, rewrite } => {
                with_rpc_header(head.headers, name, |value| {
                    value.map(|v| match rewrite {
                        None => xxh64(v.as_bytes(), 0),
                        Some(rw) => {
                            // Hash the rewritten value piece by piece (streaming xxHash64
                            // equals the one-shot digest of the concatenation).
                            let mut h = xxhash_rust::xxh64::Xxh64::new(0);
                            rw.for_each_piece(v, |piece| h.update(piece.as_bytes()));
                            h.digest()
                        }
                    })
                })
            }
            HashPolicyKind::ChannelId => Some(xxh64(&head.channel_id.to_le_bytes(), 0)),
            HashPolicyKind::Unsupported(_) => None,
        };
        if let Some(n) = new {
            hash = Some(match hash {
                None => n,
                Some(h) => h.rotate_left(1) ^ n,
            });
        }
        if p.terminal && hash.is_some() {
            break;
        }
    }
    hash
}

#[cfg(test)]
mod tests;
