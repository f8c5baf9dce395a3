//! The four xDS resource types gRPC's xDS client speaks (gRFC A27).

use core::fmt;

/// An xDS resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    /// LDS: `envoy.config.listener.v3.Listener`.
    Listener,
    /// RDS: `envoy.config.route.v3.RouteConfiguration`.
    RouteConfiguration,
    /// CDS: `envoy.config.cluster.v3.Cluster`.
    Cluster,
    /// EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`.
    ClusterLoadAssignment,
}

impl ResourceType {
    /// All types, in cascade order.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Listener,
        ResourceType::RouteConfiguration,
        ResourceType::Cluster,
        ResourceType::ClusterLoadAssignment,
    ];

    /// The `type.googleapis.com/...` type URL.
    pub const fn type_url(self) -> &'static str {
        match self {
            ResourceType::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            ResourceType::RouteConfiguration => {
                "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
            }
            ResourceType::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            ResourceType::ClusterLoadAssignment => {
                "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
            }
        }
    }

    /// The type for a type URL, if skiff speaks it.
    pub fn from_type_url(url: &str) -> Option<Self> {
        ResourceType::ALL.into_iter().find(|t| t.type_url() == url)
    }

    /// `LDS`, `RDS`, `CDS` or `EDS`.
    pub const fn short_name(self) -> &'static str {
        match self {
            ResourceType::Listener => "LDS",
            ResourceType::RouteConfiguration => "RDS",
            ResourceType::Cluster => "CDS",
            ResourceType::ClusterLoadAssignment => "EDS",
        }
    }

    /// In SotW, LDS and CDS responses carry every subscribed resource, so a subscribed resource
    /// missing from a response has been deleted. RDS and EDS responses may carry a subset
    /// (xDS protocol, "Resource types": the "state of the world" types).
    pub const fn absence_means_deletion(self) -> bool {
        matches!(self, ResourceType::Listener | ResourceType::Cluster)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Name;

    #[test]
    fn urls_match_generated_types() {
        use crate::pb::envoy::config;
        assert_eq!(
            ResourceType::Listener.type_url(),
            config::listener::v3::Listener::type_url()
        );
        assert_eq!(
            ResourceType::RouteConfiguration.type_url(),
            config::route::v3::RouteConfiguration::type_url()
        );
        assert_eq!(
            ResourceType::Cluster.type_url(),
            config::cluster::v3::Cluster::type_url()
        );
        assert_eq!(
            ResourceType::ClusterLoadAssignment.type_url(),
            config::endpoint::v3::ClusterLoadAssignment::type_url()
        );
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_type_url(t.type_url()), Some(t));
        }
        assert_eq!(ResourceType::from_type_url("nope"), None);
    }
}
