//! A versioned set of xDS resources: what translation produces and the ADS server serves.

use std::collections::BTreeMap;

use prost_types::Any;

/// `type.googleapis.com/envoy.config.listener.v3.Listener`.
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// `type.googleapis.com/envoy.config.route.v3.RouteConfiguration`.
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// `type.googleapis.com/envoy.config.cluster.v3.Cluster`.
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// `type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment`.
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// The four types, in the order istiod pushes them (clusters and endpoints before the listeners
/// and routes that refer to them: make before break).
pub const PUSH_ORDER: [&str; 4] = [CLUSTER, ENDPOINT, LISTENER, ROUTE];

/// The type URLs for which an empty first SotW request (or Delta subscription) means
/// "everything" (xDS protocol, "wildcard" subscriptions).
pub fn wildcard_capable(type_url: &str) -> bool {
    type_url == LISTENER || type_url == CLUSTER
}

/// One resource and its version.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionedResource {
    /// Content version: a hash of the encoded resource, so an unchanged resource keeps its
    /// version across translations and a push carries only what really changed.
    pub version: String,
    /// The resource.
    pub resource: Any,
}

/// Resources by type URL, then by name. Ordered maps throughout: iteration (and so every
/// response) is deterministic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    types: BTreeMap<String, BTreeMap<String, VersionedResource>>,
}

impl Resources {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a resource; its version is computed from its bytes.
    pub fn insert(&mut self, name: impl Into<String>, resource: Any) {
        let version = content_version(&resource.value);
        self.types
            .entry(resource.type_url.clone())
            .or_default()
            .insert(name.into(), VersionedResource { version, resource });
    }

    /// Removes a resource, returning it.
    pub fn remove(&mut self, type_url: &str, name: &str) -> Option<VersionedResource> {
        self.types.get_mut(type_url)?.remove(name)
    }

    /// One resource.
    pub fn get(&self, type_url: &str, name: &str) -> Option<&VersionedResource> {
        self.types.get(type_url)?.get(name)
    }

    /// All resources of one type, by name.
    pub fn of_type(&self, type_url: &str) -> Option<&BTreeMap<String, VersionedResource>> {
        self.types.get(type_url)
    }

    /// Every type URL present.
    pub fn type_urls(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// `(type_url, name, resource)` for everything, ordered.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &VersionedResource)> {
        self.types
            .iter()
            .flat_map(|(t, m)| m.iter().map(move |(n, r)| (t.as_str(), n.as_str(), r)))
    }

    /// Number of resources of all types.
    pub fn len(&self) -> usize {
        self.types.values().map(BTreeMap::len).sum()
    }

    /// Whether there are no resources.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A version for the whole set (Delta's `system_version_info`): a hash over every
    /// `(type, name, version)`.
    pub fn system_version(&self) -> String {
        let mut h = Fnv::new();
        for (t, n, r) in self.iter() {
            h.write(t.as_bytes());
            h.write(&[0]);
            h.write(n.as_bytes());
            h.write(&[0]);
            h.write(r.version.as_bytes());
            h.write(&[0]);
        }
        h.hex()
    }
}

/// The version of a resource: FNV-1a 64 of its encoded bytes, in hex. Not cryptographic; it
/// only needs to change when the content changes, and be the same on every run.
pub fn content_version(bytes: &[u8]) -> String {
    let mut h = Fnv::new();
    h.write(bytes);
    h.hex()
}

/// FNV-1a, 64 bit: tiny, dependency-free and stable across platforms and releases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_content() {
        let mut r = Resources::new();
        let any = |v: &[u8]| Any {
            type_url: LISTENER.into(),
            value: v.to_vec(),
        };
        r.insert("a", any(b"one"));
        let v1 = r.get(LISTENER, "a").unwrap().version.clone();
        let sys1 = r.system_version();
        r.insert("a", any(b"one"));
        assert_eq!(r.get(LISTENER, "a").unwrap().version, v1);
        assert_eq!(r.system_version(), sys1);
        r.insert("a", any(b"two"));
        assert_ne!(r.get(LISTENER, "a").unwrap().version, v1);
        assert_ne!(r.system_version(), sys1);
        // Known FNV-1a 64 vector.
        assert_eq!(content_version(b"a"), "af63dc4c8601ec8c");
    }
}
