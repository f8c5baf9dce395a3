//! The control plane's view as CSDS (gRFC A40, `envoy.service.status.v3`): one `ClientConfig`
//! per connected client, listing every resource the client subscribed to with the version it
//! acknowledged, or the NACK it sent. `skiff config-dump` reads this; so can any CSDS client.

use crate::control::ads::{AdsDump, StreamDump, TypeDump};
use crate::control::resources::Resources;
use crate::pb::envoy::admin::v3::{ClientResourceStatus, UpdateFailureState};
use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::status::v3::{
    ClientConfig, ClientStatusResponse, client_config::GenericXdsConfig,
};

/// The status of `name` as one stream's client last answered for its type.
fn status_of(
    t: &TypeDump,
    name: &str,
) -> (ClientResourceStatus, String, Option<UpdateFailureState>) {
    let sent = t.last_sent.as_ref();
    let was_sent = sent.is_some_and(|s| s.resources.contains_key(name));
    let version = sent
        .and_then(|s| s.resources.get(name).cloned())
        .unwrap_or_default();
    let Some(s) = sent else {
        return (ClientResourceStatus::Requested, String::new(), None);
    };
    if let Some(n) = t.nacked.as_ref().filter(|n| n.nonce == s.nonce) {
        return (
            ClientResourceStatus::Nacked,
            t.acked
                .as_ref()
                .map(|a| a.version.clone())
                .unwrap_or_default(),
            Some(UpdateFailureState {
                details: n.message.clone(),
                version_info: n.version.clone(),
                ..Default::default()
            }),
        );
    }
    let acked = t.acked.as_ref().is_some_and(|a| a.nonce == s.nonce);
    match (was_sent, acked) {
        (true, true) => (ClientResourceStatus::Acked, version, None),
        (true, false) => (ClientResourceStatus::Requested, version, None),
        (false, _) => (ClientResourceStatus::DoesNotExist, String::new(), None),
    }
}

fn client_config(s: &StreamDump, resources: &Resources) -> ClientConfig {
    let node = s.node.as_ref().map(|n| Node {
        id: n.id.clone(),
        cluster: n.cluster.clone(),
        ..Default::default()
    });
    let mut generic = Vec::new();
    for t in &s.types {
        let mut names: Vec<&String> = t.subscribed.iter().collect();
        if t.wildcard
            && let Some(sent) = &t.last_sent
        {
            names.extend(sent.resources.keys());
        }
        names.sort();
        names.dedup();
        for name in names {
            let (status, version_info, error_state) = status_of(t, name);
            generic.push(GenericXdsConfig {
                type_url: t.type_url.clone(),
                name: name.clone(),
                version_info,
                xds_config: resources.get(&t.type_url, name).map(|r| r.resource.clone()),
                client_status: status as i32,
                error_state,
                ..Default::default()
            });
        }
    }
    ClientConfig {
        node,
        generic_xds_configs: generic,
        client_scope: format!("{}", s.stream),
        ..Default::default()
    }
}

/// A CSDS response describing every connected client.
pub fn client_status(dump: &AdsDump, resources: &Resources) -> ClientStatusResponse {
    ClientStatusResponse {
        config: dump
            .streams
            .iter()
            .map(|s| client_config(s, resources))
            .collect(),
    }
}
