//! [`Snapshot`]: one consistent view of the configuration for the data plane (gRFC A74).
//!
//! A snapshot only changes for a watched listener once everything the listener needs is
//! resolved: its route configuration, every cluster its routes name, and their endpoints. Until
//! then the previous complete view keeps serving, so a route never points at a cluster the data
//! plane does not know yet ("no tears").

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cluster::ClusterConfig;
use super::endpoint::EndpointsConfig;
use super::listener::ListenerConfig;
use super::route::RouteConfig;

/// What the data plane knows about one watched listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerStatus {
    /// Configuration is complete and in the snapshot.
    Ready,
    /// Nothing complete yet; RPCs wait (or fail after the does-not-exist timer).
    Pending,
    /// The listener does not exist (RPCs fail with UNAVAILABLE, gRFC A57).
    DoesNotExist,
    /// The listener was rejected and there is no previous good one.
    Rejected(String),
}

/// An immutable, consistent configuration view. Cheap to share (`Arc<Snapshot>`).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Monotonic counter; a new snapshot has a larger one.
    pub generation: u64,
    /// Status of each watched listener.
    pub status: BTreeMap<String, ListenerStatus>,
    /// Listeners by name.
    pub listeners: BTreeMap<String, Arc<ListenerConfig>>,
    /// Route configurations by name.
    pub routes: BTreeMap<String, Arc<RouteConfig>>,
    /// Clusters by name. A cluster a route names but that does not exist is absent here and
    /// listed in `missing_clusters`.
    pub clusters: BTreeMap<String, Arc<ClusterConfig>>,
    /// Clusters that were resolved as not existing (RPCs routed there fail with UNAVAILABLE).
    pub missing_clusters: BTreeMap<String, String>,
    /// Endpoints by EDS resource name.
    pub endpoints: BTreeMap<String, Arc<EndpointsConfig>>,
}
