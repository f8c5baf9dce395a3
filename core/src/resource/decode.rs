//! From a packed `Any` to a validated [`Resource`]: decode the protobuf, find the name, validate.

use std::sync::Arc;

use prost::Message;

use super::cluster::{ClusterConfig, ClusterDiscovery};
use super::endpoint::EndpointsConfig;
use super::listener::{ListenerConfig, ListenerKind, RouteSource};
use super::route::RouteConfig;
use super::{Ignored, ValidationError};
use crate::pb::envoy::config::cluster::v3::Cluster;
use crate::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use crate::pb::envoy::config::listener::v3::Listener;
use crate::pb::envoy::config::route::v3::RouteConfiguration;
use crate::xds::ResourceType;

/// A validated resource of any type, cheap to clone.
#[derive(Clone, Debug)]
pub enum Resource {
    /// LDS.
    Listener(Arc<ListenerConfig>),
    /// RDS.
    RouteConfiguration(Arc<RouteConfig>),
    /// CDS.
    Cluster(Arc<ClusterConfig>),
    /// EDS.
    ClusterLoadAssignment(Arc<EndpointsConfig>),
}

impl Resource {
    /// The resources this one refers to, which the xDS client must also fetch (the
    /// LDS → RDS → CDS → EDS cascade, gRFC A27; aggregate clusters, A37).
    pub fn dependencies<'a>(&'a self, out: &mut Vec<(ResourceType, &'a str)>) {
        match self {
            Resource::Listener(l) => {
                let hcms: Vec<&super::listener::HttpConnectionManager> = match &l.kind {
                    ListenerKind::Client(h) => vec![h],
                    ListenerKind::Server(s) => s
                        .filter_chains
                        .iter()
                        .chain(s.default_filter_chain.iter())
                        .map(|c| &c.hcm)
                        .collect(),
                };
                for h in hcms {
                    match &h.routes {
                        RouteSource::Rds(name) => {
                            out.push((ResourceType::RouteConfiguration, name.as_str()))
                        }
                        RouteSource::Inline(rc) => out.extend(
                            rc.cluster_names()
                                .into_iter()
                                .map(|c| (ResourceType::Cluster, c)),
                        ),
                    }
                }
            }
            Resource::RouteConfiguration(rc) => out.extend(
                rc.cluster_names()
                    .into_iter()
                    .map(|c| (ResourceType::Cluster, c)),
            ),
            Resource::Cluster(c) => match &c.discovery {
                ClusterDiscovery::Eds { service_name } => out.push((
                    ResourceType::ClusterLoadAssignment,
                    service_name.as_deref().unwrap_or(&c.name),
                )),
                ClusterDiscovery::Aggregate { clusters } => {
                    out.extend(clusters.iter().map(|n| (ResourceType::Cluster, n.as_str())))
                }
                ClusterDiscovery::LogicalDns { .. } => {}
            },
            Resource::ClusterLoadAssignment(_) => {}
        }
    }
}

/// A resource that decoded and validated.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Its name.
    pub name: String,
    /// The validated value.
    pub resource: Resource,
    /// Fields set that skiff does not act on.
    pub ignored: Ignored,
}

/// A resource that did not validate. `name` is known when the protobuf decoded far enough to
/// read it (then the NACK names the resource and only it is rejected, gRFC A46).
#[derive(Clone, Debug)]
pub struct Rejected {
    /// The resource name, if it could be read.
    pub name: Option<String>,
    /// Why.
    pub error: ValidationError,
}

fn undecodable(ty: ResourceType, e: prost::DecodeError) -> Rejected {
    Rejected {
        name: None,
        error: ValidationError::new("", format!("undecodable {ty} resource: {e}")),
    }
}

/// Decodes and validates one resource of type `ty`.
pub fn decode(ty: ResourceType, any: &prost_types::Any) -> Result<Decoded, Rejected> {
    let mut ignored = Ignored::default();
    let bytes = any.value.as_slice();
    let (name, result) = match ty {
        ResourceType::Listener => {
            let m = Listener::decode(bytes).map_err(|e| undecodable(ty, e))?;
            let r = super::listener::validate_listener(&m, &mut ignored)
                .map(|v| Resource::Listener(Arc::new(v)));
            (m.name, r)
        }
        ResourceType::RouteConfiguration => {
            let m = RouteConfiguration::decode(bytes).map_err(|e| undecodable(ty, e))?;
            let r = super::route::validate_route_configuration(&m, &mut ignored)
                .map(|v| Resource::RouteConfiguration(Arc::new(v)));
            (m.name, r)
        }
        ResourceType::Cluster => {
            let m = Cluster::decode(bytes).map_err(|e| undecodable(ty, e))?;
            let r = super::cluster::validate_cluster(&m, &mut ignored)
                .map(|v| Resource::Cluster(Arc::new(v)));
            (m.name, r)
        }
        ResourceType::ClusterLoadAssignment => {
            let m = ClusterLoadAssignment::decode(bytes).map_err(|e| undecodable(ty, e))?;
            let r = super::endpoint_validate::validate_cluster_load_assignment(&m, &mut ignored)
                .map(|v| Resource::ClusterLoadAssignment(Arc::new(v)));
            (m.cluster_name, r)
        }
    };
    if name.is_empty() {
        return Err(Rejected {
            name: None,
            error: ValidationError::new("name", format!("{ty} resource without a name")),
        });
    }
    match result {
        Ok(resource) => Ok(Decoded {
            name,
            resource,
            ignored,
        }),
        Err(error) => Err(Rejected {
            name: Some(name),
            error,
        }),
    }
}
