//! The realistic routing table (100 routes, 100 clusters, 1,000 endpoints), built as xDS
//! protobufs, encoded, then decoded and validated through `skiff_core::resource::decode` like a
//! config received over ADS, and turned into one `LbPlan` + `Picker` per cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use skiff_core::balancer::{LbPlan, PickContext, PickResult, Picker, PlanOptions};
use skiff_core::resource::cluster::ClusterConfig;
use skiff_core::resource::endpoint::EndpointsConfig;
use skiff_core::resource::route::{RouteConfig, VirtualHost};
use skiff_core::resource::{Resource, decode};
use skiff_core::rng::Rng;
use skiff_core::router::{RequestHead, SliceHeaders, route, select_virtual_host};
use skiff_core::xds::ResourceType;

use crate::fixtures;

/// The per-cluster state a data plane keeps for picking.
#[derive(Debug)]
pub struct ClusterState {
    /// The validated cluster.
    pub config: Arc<ClusterConfig>,
    /// Its validated endpoints.
    pub endpoints: Arc<EndpointsConfig>,
    /// The picker over all endpoints (all eligible).
    pub picker: Picker,
    /// In-flight counters (for least_request), shared-counter form.
    pub in_flight: Box<[AtomicU32]>,
}

/// The validated realistic table.
#[derive(Debug)]
pub struct Table {
    /// The route configuration.
    pub routes: Arc<RouteConfig>,
    /// Index of the channel's virtual host (chosen once per channel).
    pub vhost: usize,
    /// Clusters by name, as [`skiff_core::resource::snapshot::Snapshot`] keys them.
    pub by_name: BTreeMap<String, ClusterState>,
    /// The same states by index (for the pre-resolved variant).
    pub names: Vec<String>,
    /// `resolved[route][weighted_index or 0]` = index into `names`: what a data plane could
    /// precompute per route so that a decision does no name lookup.
    pub resolved: Vec<Vec<usize>>,
}

fn decode_one(ty: ResourceType, any: &prost_types::Any) -> Resource {
    match decode(ty, any) {
        Ok(d) => d.resource,
        Err(r) => panic!("benchmark fixture rejected: {:?}: {}", r.name, r.error),
    }
}

/// Decodes and validates an encoded RouteConfiguration.
pub fn route_config(any: &prost_types::Any) -> Arc<RouteConfig> {
    match decode_one(ResourceType::RouteConfiguration, any) {
        Resource::RouteConfiguration(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// Decodes and validates an encoded Cluster.
pub fn cluster_config(any: &prost_types::Any) -> Arc<ClusterConfig> {
    match decode_one(ResourceType::Cluster, any) {
        Resource::Cluster(c) => c,
        other => panic!("unexpected {other:?}"),
    }
}

/// Decodes and validates an encoded ClusterLoadAssignment.
pub fn endpoints_config(any: &prost_types::Any) -> Arc<EndpointsConfig> {
    match decode_one(ResourceType::ClusterLoadAssignment, any) {
        Resource::ClusterLoadAssignment(e) => e,
        other => panic!("unexpected {other:?}"),
    }
}

/// The encoded resources of the realistic table: (route configuration, clusters, endpoints).
pub fn encoded() -> (
    prost_types::Any,
    Vec<prost_types::Any>,
    Vec<prost_types::Any>,
) {
    let names = fixtures::table_cluster_names();
    let rc = fixtures::pack(&fixtures::route_configuration());
    let clusters = names
        .iter()
        .enumerate()
        .map(|(c, n)| fixtures::pack(&fixtures::cluster(n, fixtures::table_lb(c), 1024)))
        .collect();
    let per_zone = fixtures::ENDPOINTS_PER_CLUSTER / 2;
    let endpoints = names
        .iter()
        .enumerate()
        .map(|(c, n)| fixtures::pack(&fixtures::load_assignment(n, c, 2, per_zone, |_| 1)))
        .collect();
    (rc, clusters, endpoints)
}

impl Table {
    /// Decodes, validates and prepares the table from its encoded resources.
    pub fn build(
        rc: &prost_types::Any,
        clusters: &[prost_types::Any],
        endpoints: &[prost_types::Any],
        rng: &mut Rng,
    ) -> Table {
        let routes = route_config(rc);
        let vhost = select_virtual_host(&routes, fixtures::AUTHORITY).expect("virtual host");
        let mut by_name = BTreeMap::new();
        let mut names = Vec::new();
        for (c_any, e_any) in clusters.iter().zip(endpoints) {
            let config = cluster_config(c_any);
            let eps = endpoints_config(e_any);
            let plan = LbPlan::new(&eps, &config.lb_policy, &PlanOptions::default(), rng);
            let eligible = vec![true; plan.endpoint_count()];
            let picker = Picker::new(Arc::new(plan), &eligible, rng);
            let in_flight: Box<[AtomicU32]> = (0..eligible.len())
                .map(|i| AtomicU32::new((i as u32 * 7) % 5))
                .collect();
            names.push(config.name.clone());
            by_name.insert(
                config.name.clone(),
                ClusterState {
                    config,
                    endpoints: eps,
                    picker,
                    in_flight,
                },
            );
        }
        let index: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let resolved = routes.virtual_hosts[vhost]
            .routes
            .iter()
            .map(|r| {
                use skiff_core::resource::route::{ClusterSpecifier, RouteAction};
                match &r.action {
                    RouteAction::Forward(f) => match &f.cluster {
                        ClusterSpecifier::Cluster(n) => vec![index[n.as_str()]],
                        ClusterSpecifier::Weighted(w) => w
                            .clusters()
                            .iter()
                            .map(|c| index[c.name.as_str()])
                            .collect(),
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                }
            })
            .collect();
        Table {
            routes,
            vhost,
            by_name,
            names,
            resolved,
        }
    }

    /// The channel's virtual host.
    pub fn vhost(&self) -> &VirtualHost {
        &self.routes.virtual_hosts[self.vhost]
    }
}

/// A request of the mix as the router sees it.
#[derive(Debug)]
pub struct Requests {
    specs: Vec<fixtures::RequestSpec>,
}

impl Requests {
    /// `n` requests of the deterministic mix.
    pub fn new(n: usize) -> Requests {
        Requests {
            specs: fixtures::request_mix(n),
        }
    }

    /// Borrowed `(name, value)` slices, one per request (keep them alive while routing).
    pub fn header_slices(&self) -> Vec<Vec<(&str, &str)>> {
        self.specs
            .iter()
            .map(|s| {
                s.headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect()
            })
            .collect()
    }

    /// The paths.
    pub fn paths(&self) -> Vec<&str> {
        self.specs.iter().map(|s| s.path.as_str()).collect()
    }
}

/// One routing decision by name lookup, as a data plane keyed like `Snapshot` would make it:
/// route match (+ weighted cluster pick + request hash), cluster lookup by name in a `BTreeMap`,
/// endpoint pick.
#[inline]
pub fn decide(
    table: &Table,
    vhost: &VirtualHost,
    path: &str,
    headers: &SliceHeaders<'_>,
    rng: &mut Rng,
) -> Option<PickResult> {
    let head = RequestHead {
        path,
        headers,
        channel_id: 0x5eed,
    };
    let d = route(vhost, &head, rng).ok()?;
    let state = table.by_name.get(d.cluster()?)?;
    let mut ctx = PickContext::new(rng)
        .with_hash(d.hash)
        .with_in_flight(&state.in_flight[..]);
    Some(state.picker.pick(&mut ctx))
}

/// The same decision with the cluster pre-resolved per route (no name lookup).
#[inline]
pub fn decide_resolved(
    table: &Table,
    states: &[&ClusterState],
    vhost: &VirtualHost,
    path: &str,
    headers: &SliceHeaders<'_>,
    rng: &mut Rng,
) -> Option<PickResult> {
    let head = RequestHead {
        path,
        headers,
        channel_id: 0x5eed,
    };
    let d = route(vhost, &head, rng).ok()?;
    let slot = table
        .resolved
        .get(d.route_index)?
        .get(d.weighted_index().unwrap_or(0))?;
    let state = states.get(*slot)?;
    let mut ctx = PickContext::new(rng)
        .with_hash(d.hash)
        .with_in_flight(&state.in_flight[..]);
    Some(state.picker.pick(&mut ctx))
}
