//! Builds the data plane's [`Snapshot`] from the client's cache with gRFC A74's rule: a watched
//! listener's view only moves once its whole dependency tree is resolved.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::client::{ResourceStatus, XdsClient};
use super::resource_type::ResourceType;
use crate::resource::Resource;
use crate::resource::snapshot::{ListenerStatus, Snapshot};

/// Resolution of one root's dependency tree.
enum Tree {
    /// Every resource is resolved; these are the names per type.
    Complete(BTreeMap<ResourceType, BTreeSet<String>>),
    /// Something is still requested.
    Incomplete,
    /// The root listener itself does not exist / was rejected without a previous value.
    RootMissing(ListenerStatus),
}

fn resolve(client: &XdsClient, root: &str) -> Tree {
    let mut names: BTreeMap<ResourceType, BTreeSet<String>> = BTreeMap::new();
    let mut queue = vec![(ResourceType::Listener, root.to_string())];
    let mut deps = Vec::new();
    while let Some((ty, name)) = queue.pop() {
        if !names.entry(ty).or_default().insert(name.clone()) {
            continue;
        }
        let Some(entry) = client.entry(ty, &name) else {
            return Tree::Incomplete;
        };
        match (&entry.value, entry.status) {
            (Some(v), _) => {
                deps.clear();
                v.dependencies(&mut deps);
                queue.extend(deps.drain(..).map(|(t, n)| (t, n.to_owned())));
            }
            (None, ResourceStatus::DoesNotExist) if ty == ResourceType::Listener => {
                return Tree::RootMissing(ListenerStatus::DoesNotExist);
            }
            (None, ResourceStatus::Nacked) if ty == ResourceType::Listener => {
                let why = entry
                    .rejection
                    .as_ref()
                    .map(|r| r.error.clone())
                    .unwrap_or_default();
                return Tree::RootMissing(ListenerStatus::Rejected(why));
            }
            // A dependency that does not exist (or was rejected with nothing to fall back on)
            // is resolved: RPCs that need it fail, the rest of the tree still serves.
            (None, ResourceStatus::DoesNotExist | ResourceStatus::Nacked) => {}
            (None, _) => return Tree::Incomplete,
        }
    }
    Tree::Complete(names)
}

fn copy_from_client(
    snap: &mut Snapshot,
    client: &XdsClient,
    names: &BTreeMap<ResourceType, BTreeSet<String>>,
) {
    for (ty, set) in names {
        for name in set {
            let entry = client.entry(*ty, name);
            match entry.and_then(|e| e.value.clone()) {
                Some(Resource::Listener(l)) => {
                    snap.listeners.insert(name.clone(), l);
                }
                Some(Resource::RouteConfiguration(r)) => {
                    snap.routes.insert(name.clone(), r);
                }
                Some(Resource::Cluster(c)) => {
                    snap.clusters.insert(name.clone(), c);
                }
                Some(Resource::ClusterLoadAssignment(e)) => {
                    snap.endpoints.insert(name.clone(), e);
                }
                None if *ty == ResourceType::Cluster => {
                    let why = entry
                        .and_then(|e| e.rejection.as_ref().map(|r| r.error.clone()))
                        .unwrap_or_else(|| "cluster does not exist".to_string());
                    snap.missing_clusters.insert(name.clone(), why);
                }
                None => {}
            }
        }
    }
}

/// Copies a root's tree from the previous snapshot (the last complete view keeps serving).
fn copy_from_previous(snap: &mut Snapshot, prev: &Snapshot, root: &str) {
    let mut queue = vec![(ResourceType::Listener, root.to_string())];
    let mut seen = BTreeSet::new();
    while let Some((ty, name)) = queue.pop() {
        if !seen.insert((ty, name.clone())) {
            continue;
        }
        let value = match ty {
            ResourceType::Listener => prev.listeners.get(&name).cloned().map(Resource::Listener),
            ResourceType::RouteConfiguration => prev
                .routes
                .get(&name)
                .cloned()
                .map(Resource::RouteConfiguration),
            ResourceType::Cluster => {
                if let Some(why) = prev.missing_clusters.get(&name) {
                    snap.missing_clusters.insert(name.clone(), why.clone());
                }
                prev.clusters.get(&name).cloned().map(Resource::Cluster)
            }
            ResourceType::ClusterLoadAssignment => prev
                .endpoints
                .get(&name)
                .cloned()
                .map(Resource::ClusterLoadAssignment),
        };
        let Some(v) = value else { continue };
        {
            let mut deps = Vec::new();
            v.dependencies(&mut deps);
            queue.extend(deps.into_iter().map(|(t, n)| (t, n.to_owned())));
        }
        match v {
            Resource::Listener(l) => {
                snap.listeners.insert(name, l);
            }
            Resource::RouteConfiguration(r) => {
                snap.routes.insert(name, r);
            }
            Resource::Cluster(c) => {
                snap.clusters.insert(name, c);
            }
            Resource::ClusterLoadAssignment(e) => {
                snap.endpoints.insert(name, e);
            }
        }
    }
}

/// Builds the snapshot for the watched listeners `roots`, given the previous one.
pub fn build_snapshot<'a>(
    client: &XdsClient,
    roots: impl IntoIterator<Item = &'a str>,
    prev: Option<&Snapshot>,
) -> Arc<Snapshot> {
    let mut snap = Snapshot {
        generation: prev.map_or(1, |p| p.generation + 1),
        ..Snapshot::default()
    };
    for root in roots {
        let status = match resolve(client, root) {
            Tree::Complete(names) => {
                copy_from_client(&mut snap, client, &names);
                ListenerStatus::Ready
            }
            Tree::Incomplete => match prev {
                Some(p) if p.status.get(root) == Some(&ListenerStatus::Ready) => {
                    copy_from_previous(&mut snap, p, root);
                    ListenerStatus::Ready
                }
                _ => ListenerStatus::Pending,
            },
            Tree::RootMissing(s) => s,
        };
        snap.status.insert(root.to_string(), status);
    }
    Arc::new(snap)
}
