//! Effective HTTP filter configs per route (gRFC A39), resolved once per (HCM filter list,
//! RouteConfig) pair.
//!
//! For each filter instance the most specific override wins: weighted-cluster entry, then
//! route, then virtual host, else the HCM's top-level config. gRPC builds this merged view when
//! the config is applied rather than per RPC; so does skiff, and chains that no override
//! touches are shared.

use crate::resource::Ignored;
use crate::resource::filter::{FaultConfig, FilterOverride, HttpFilterConfig, NamedFilter};
use crate::resource::route::{ClusterSpecifier, FilterOverrides, RouteAction, RouteConfig};

use super::RouteDecision;
use crate::pb::envoy::extensions::filters::http::rbac::v3::Rbac;

/// One filter instance's config as it applies to one route (or weighted-cluster entry).
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveFilter {
    /// The HCM's top-level config for the instance.
    pub config: HttpFilterConfig,
    /// The most specific override, if any level had one for this instance.
    pub override_config: Option<FilterOverride>,
}

/// The RBAC policy to enforce, as decided by the filter and its override.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RbacPolicy<'a> {
    /// Enforce this policy.
    Enforce(&'a Rbac),
    /// An `RBACPerRoute` without `rbac` turned the filter off here.
    Disabled,
}

impl EffectiveFilter {
    /// The fault config in force: the override (a whole replacement `HTTPFault`, as in Envoy)
    /// or the top-level one; `None` if this is not a fault filter.
    pub fn fault(&self) -> Option<&FaultConfig> {
        match (&self.config, &self.override_config) {
            (HttpFilterConfig::Fault(_), Some(FilterOverride::Fault(o))) => Some(o),
            (HttpFilterConfig::Fault(base), _) => Some(base),
            _ => None,
        }
    }

    /// The RBAC policy in force: `RBACPerRoute.rbac` replaces the top-level policy, and an
    /// empty `RBACPerRoute` disables the filter (Envoy); `None` if this is not an RBAC filter.
    pub fn rbac(&self) -> Option<RbacPolicy<'_>> {
        match (&self.config, &self.override_config) {
            (HttpFilterConfig::Rbac(_), Some(FilterOverride::Rbac(per_route))) => {
                Some(match &per_route.rbac {
                    Some(r) => RbacPolicy::Enforce(r),
                    None => RbacPolicy::Disabled,
                })
            }
            (HttpFilterConfig::Rbac(base), _) => Some(RbacPolicy::Enforce(base)),
            _ => None,
        }
    }

    /// Whether this is the (terminal) router filter.
    pub fn is_router(&self) -> bool {
        self.config == HttpFilterConfig::Router
    }
}

/// Per-route slot: the route's chain and, for weighted routes, one chain per entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RouteSlot {
    chain: u32,
    clusters: Box<[u32]>,
}

/// The resolved filter chains of one (HCM, RouteConfig) pair. Lookups are slice indexes.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterPlan {
    names: Vec<String>,
    /// Distinct chains; chain 0 is the HCM's, without overrides.
    chains: Vec<Box<[EffectiveFilter]>>,
    /// `[virtual host][route]`.
    slots: Vec<Vec<RouteSlot>>,
    /// Chain of each virtual host (for RPCs that match no route, e.g. server-side logging).
    vhost_chains: Vec<u32>,
}

/// Whether `o` is an override for a filter configured as `base` (gRFC A39: the filter
/// validates its override's type).
fn compatible(base: &HttpFilterConfig, o: &FilterOverride) -> bool {
    matches!(
        (base, o),
        (HttpFilterConfig::Fault(_), FilterOverride::Fault(_))
            | (HttpFilterConfig::Rbac(_), FilterOverride::Rbac(_))
    )
}

impl FilterPlan {
    /// Resolves every route's filter chain. Overrides keyed by a name that is not in `filters`
    /// are unused (gRFC A39 does not reject them: RDS cannot know the HCM). An override whose
    /// type does not fit the named filter (e.g. an `RBACPerRoute` for a fault filter) is
    /// dropped and recorded in `ignored`.
    pub fn build(filters: &[NamedFilter], config: &RouteConfig, ignored: &mut Ignored) -> Self {
        let base: Box<[EffectiveFilter]> = filters
            .iter()
            .map(|f| EffectiveFilter {
                config: f.config.clone(),
                override_config: None,
            })
            .collect();
        let mut plan = FilterPlan {
            names: filters.iter().map(|f| f.name.clone()).collect(),
            chains: vec![base],
            slots: Vec::with_capacity(config.virtual_hosts.len()),
            vhost_chains: Vec::with_capacity(config.virtual_hosts.len()),
        };
        for (vi, vh) in config.virtual_hosts.iter().enumerate() {
            let at_vh = format!("virtual_hosts[{vi}]");
            let vchain = plan.derive(0, &vh.filter_overrides, &at_vh, ignored);
            plan.vhost_chains.push(vchain);
            let mut slots = Vec::with_capacity(vh.routes.len());
            for (ri, r) in vh.routes.iter().enumerate() {
                let at_r = format!("{at_vh}.routes[{ri}]");
                let rchain = plan.derive(vchain, &r.filter_overrides, &at_r, ignored);
                let clusters: Box<[u32]> = match &r.action {
                    RouteAction::Forward(f) => match &f.cluster {
                        ClusterSpecifier::Weighted(w) => w
                            .clusters()
                            .iter()
                            .enumerate()
                            .map(|(ci, c)| {
                                let at_c = format!("{at_r}.route.weighted_clusters.clusters[{ci}]");
                                plan.derive(rchain, &c.filter_overrides, &at_c, ignored)
                            })
                            .collect(),
                        _ => Box::new([]),
                    },
                    _ => Box::new([]),
                };
                slots.push(RouteSlot {
                    chain: rchain,
                    clusters,
                });
            }
            plan.slots.push(slots);
        }
        plan
    }

    /// The chain `parent` with `overrides` applied on top; `parent` itself when none applies.
    fn derive(
        &mut self,
        parent: u32,
        overrides: &FilterOverrides,
        at: &str,
        ignored: &mut Ignored,
    ) -> u32 {
        if overrides.is_empty() {
            return parent;
        }
        let Some(mut chain) = self.chains.get(parent as usize).cloned() else {
            return parent;
        };
        let mut changed = false;
        for (name, slot) in self.names.iter().zip(chain.iter_mut()) {
            if let Some(o) = overrides.get(name) {
                if compatible(&slot.config, o) {
                    slot.override_config = Some(o.clone());
                    changed = true;
                } else {
                    ignored.note(format!("{at}.typed_per_filter_config[{name}]"));
                }
            }
        }
        if !changed {
            return parent;
        }
        self.chains.push(chain);
        u32::try_from(self.chains.len().saturating_sub(1)).unwrap_or(0)
    }

    fn chain_at(&self, index: u32) -> &[EffectiveFilter] {
        self.chains
            .get(index as usize)
            .or_else(|| self.chains.first())
            .map_or(&[], |c| c)
    }

    /// The filter instance names, in HCM order (aligned with every chain).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The HCM's chain without overrides.
    pub fn base(&self) -> &[EffectiveFilter] {
        self.chain_at(0)
    }

    /// The chain for virtual host `vhost`'s own overrides.
    pub fn for_virtual_host(&self, vhost: usize) -> &[EffectiveFilter] {
        self.chain_at(self.vhost_chains.get(vhost).copied().unwrap_or(0))
    }

    /// The chain for route `route` of virtual host `vhost`, and weighted-cluster entry
    /// `weighted` if the route split traffic. Out-of-range indexes give the HCM's chain.
    pub fn chain(&self, vhost: usize, route: usize, weighted: Option<usize>) -> &[EffectiveFilter] {
        let index = self
            .slots
            .get(vhost)
            .and_then(|routes| routes.get(route))
            .map_or(0, |slot| {
                weighted
                    .and_then(|w| slot.clusters.get(w).copied())
                    .unwrap_or(slot.chain)
            });
        self.chain_at(index)
    }

    /// The chain for a routing decision made in virtual host `vhost`.
    pub fn for_decision(&self, vhost: usize, decision: &RouteDecision<'_>) -> &[EffectiveFilter] {
        self.chain(vhost, decision.route_index, decision.weighted_index())
    }

    /// How many distinct chains were built (sharing is what keeps this small).
    pub fn chain_count(&self) -> usize {
        self.chains.len()
    }
}
