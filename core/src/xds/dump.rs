//! Config dump (CSDS-shaped, gRFC A40): what the client requested, applied and rejected, and
//! which fields it ignored. gRPC logs nothing about ignored fields; skiff shows them.

use super::client::{ResourceStatus, XdsClient};
use super::resource_type::ResourceType;
use crate::pb::envoy::admin::v3::{ClientResourceStatus, UpdateFailureState};
use crate::pb::envoy::service::status::v3::{ClientConfig, client_config::GenericXdsConfig};
use crate::time::Instant;

/// One resource in the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpEntry {
    /// Type.
    pub ty: ResourceType,
    /// Name.
    pub name: String,
    /// Version of the value in use (empty if none).
    pub version: String,
    /// Status.
    pub status: ResourceStatus,
    /// The last rejection: version and reason.
    pub error: Option<(String, String)>,
    /// Ignored fields.
    pub ignored: Vec<String>,
    /// When the value in use arrived.
    pub updated_at: Option<Instant>,
    /// Kept despite a server deletion (gRFC A53).
    pub deletion_ignored: bool,
}

impl XdsClient {
    /// Every subscribed resource, in type then name order.
    pub fn config_dump(&self) -> Vec<DumpEntry> {
        let mut out = Vec::new();
        for ty in ResourceType::ALL {
            for (name, e) in self.entries(ty) {
                out.push(DumpEntry {
                    ty,
                    name: name.to_string(),
                    version: e.version.clone(),
                    status: e.status,
                    error: e
                        .rejection
                        .as_ref()
                        .map(|r| (r.version.clone(), r.error.clone())),
                    ignored: e.ignored.clone(),
                    updated_at: e.updated_at,
                    deletion_ignored: e.deletion_ignored,
                });
            }
        }
        out
    }

    /// The dump as a CSDS `ClientConfig` (gRFC A40), as served by the CSDS service. Timestamps
    /// are omitted: the core's timeline has no wall-clock epoch (the adapter may fill them).
    pub fn csds_client_config(&self) -> ClientConfig {
        let mut generic = Vec::new();
        for ty in ResourceType::ALL {
            for (name, e) in self.entries(ty) {
                let client_status = match e.status {
                    ResourceStatus::Requested => ClientResourceStatus::Requested,
                    ResourceStatus::DoesNotExist => ClientResourceStatus::DoesNotExist,
                    ResourceStatus::Acked => ClientResourceStatus::Acked,
                    ResourceStatus::Nacked => ClientResourceStatus::Nacked,
                };
                generic.push(GenericXdsConfig {
                    type_url: ty.type_url().to_string(),
                    name: name.to_string(),
                    version_info: e.version.clone(),
                    xds_config: e.raw.clone(),
                    client_status: client_status as i32,
                    error_state: e.rejection.as_ref().map(|r| UpdateFailureState {
                        details: r.error.clone(),
                        version_info: r.version.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
        }
        ClientConfig {
            node: Some(self.config().node.clone()),
            generic_xds_configs: generic,
            ..Default::default()
        }
    }
}
