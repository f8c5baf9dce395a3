//! Validated endpoint model: what a `ClusterLoadAssignment` (EDS) means to skiff.
//!
//! Built from the wire type by validation (see `resource::validate`), consumed by the balancers.
//! Fields follow gRFC A27 (localities, priorities, weights, health, drop_overloads), A42/A76
//! (`hash_key`) and A61 (additional addresses).

use std::net::SocketAddr;
use std::sync::Arc;

/// `envoy.config.core.v3.HealthStatus` as sent in `LbEndpoint.health_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum HealthStatus {
    /// No health information (the default): usable.
    #[default]
    Unknown,
    /// Healthy: usable.
    Healthy,
    /// Unhealthy: not used.
    Unhealthy,
    /// Draining: not used for new RPCs.
    Draining,
    /// Health check timed out: not used.
    Timeout,
    /// Degraded: not used (gRPC only uses HEALTHY and UNKNOWN endpoints, gRFC A27).
    Degraded,
}

impl HealthStatus {
    /// Whether new RPCs may be sent to an endpoint with this status (gRFC A27: HEALTHY or UNKNOWN).
    pub const fn is_usable(self) -> bool {
        matches!(self, HealthStatus::Unknown | HealthStatus::Healthy)
    }
}

/// `envoy.config.core.v3.Locality`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LocalityName {
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Sub-zone.
    pub sub_zone: String,
}

/// One endpoint (`LbEndpoint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The address RPCs go to.
    pub address: SocketAddr,
    /// More addresses of the same endpoint (gRFC A61, dual stack); tried after `address`.
    pub additional_addresses: Vec<SocketAddr>,
    /// `load_balancing_weight`; 1 when unset. Never 0 (validation rejects 0).
    pub weight: u32,
    /// `health_status`.
    pub health: HealthStatus,
    /// Ring-hash key (gRFC A76: endpoint metadata `envoy.lb` / `hash_key`); `None` means the
    /// address string is used.
    pub hash_key: Option<String>,
}

/// One `LocalityLbEndpoints` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locality {
    /// Locality identity.
    pub name: LocalityName,
    /// `load_balancing_weight`. Localities with weight 0 are dropped at validation time
    /// (gRFC A27), so this is ≥ 1.
    pub weight: u32,
    /// `priority`: 0 is the highest.
    pub priority: u32,
    /// The endpoints, in the order the control plane sent them.
    pub endpoints: Vec<Endpoint>,
}

/// `ClusterLoadAssignment.policy.drop_overloads[]`: drop this share of RPCs before picking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropOverload {
    /// Category reported in load reports.
    pub category: String,
    /// Share of RPCs to drop, in parts per million (0..=1_000_000).
    pub parts_per_million: u32,
}

/// A validated `ClusterLoadAssignment`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EndpointsConfig {
    /// `cluster_name` (the EDS resource name).
    pub name: String,
    /// Localities, grouped by priority by the balancer. Priorities are contiguous from 0
    /// (validation rejects gaps, gRFC A27).
    pub localities: Vec<Locality>,
    /// Drop categories, applied in order before picking.
    pub drop_overloads: Vec<DropOverload>,
}

/// Shared, immutable endpoints: snapshots hand these out without copying.
pub type SharedEndpoints = Arc<EndpointsConfig>;
