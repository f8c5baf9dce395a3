//! The LDS → RDS → CDS → EDS cascade (gRFC A27, A37): from the resources the application
//! watches and what is cached, which names must be subscribed.

use std::collections::{BTreeMap, BTreeSet};

use super::resource_type::ResourceType;
use crate::resource::Resource;

/// Aggregate clusters may nest; gRPC stops at this depth (gRFC A37).
pub const MAX_AGGREGATE_DEPTH: usize = 16;

/// Every name that must be subscribed, per type: the roots plus everything they reference,
/// transitively, as far as the cache knows. `lookup` returns the cached value of a resource.
///
/// The names are borrowed from the roots and the cache: with 10k clusters this walk runs on
/// every CDS update, and copying every name (as it once did) was a fifth of the apply time.
pub fn wanted<'a>(
    roots: &'a BTreeMap<ResourceType, BTreeSet<String>>,
    lookup: impl Fn(ResourceType, &str) -> Option<&'a Resource>,
) -> BTreeMap<ResourceType, BTreeSet<&'a str>> {
    let mut out: BTreeMap<ResourceType, BTreeSet<&'a str>> = BTreeMap::new();
    // (type, name, aggregate depth)
    let mut queue: Vec<(ResourceType, &'a str, usize)> = roots
        .iter()
        .flat_map(|(ty, names)| names.iter().map(|n| (*ty, n.as_str(), 0)))
        .collect();
    let mut deps = Vec::new();
    while let Some((ty, name, depth)) = queue.pop() {
        if !out.entry(ty).or_default().insert(name) {
            continue;
        }
        let Some(res) = lookup(ty, name) else {
            continue;
        };
        deps.clear();
        res.dependencies(&mut deps);
        for (dty, dname) in deps.drain(..) {
            let d = if ty == ResourceType::Cluster && dty == ResourceType::Cluster {
                depth + 1
            } else {
                depth
            };
            if d <= MAX_AGGREGATE_DEPTH {
                queue.push((dty, dname, d));
            }
        }
    }
    out
}
