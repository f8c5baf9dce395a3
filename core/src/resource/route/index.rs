//! A per-virtual-host index of routes by gRPC service, built at validation time so that routing
//! an RPC does not test every route's path in order.
//!
//! gRPC paths are `/package.Service/Method`, and real route tables (istiod's, for one) are made
//! of case-sensitive `prefix: "/package.Service/"` and `path: "/package.Service/Method"`
//! matchers. Such a route can only match a path whose *service key* — everything up to and
//! including its second `/` — equals the route's own, so the routes are grouped by that key in
//! a hash table. Every other route (regex, case-insensitive, a prefix shorter than a whole
//! service such as `/` or `/acme.`, a path without a second `/`) is *general*: it may match any
//! path and stays in a list of its own.
//!
//! For a request, the candidates are the routes of its key's group merged with the general
//! routes, in ascending route order. Each candidate is then tested in full, exactly as a linear
//! scan would, so first-match-wins and the random draws of `runtime_fraction` (taken only for
//! routes whose path and headers matched) are unchanged: a route left out is one whose path
//! cannot match, and such a route never draws. Routes with `query_parameters` never match
//! (gRFC A28) and are left out altogether.

use core::fmt;

use super::{PathMatcher, Route};

/// Set on a grouped entry whose prefix is exactly its service key: once the key matched, so
/// did the path, and the router need not compare it again.
const PATH_IMPLIED: u32 = 1 << 31;
/// An empty hash-table slot.
const EMPTY: u32 = u32::MAX;

/// The service key of `path`: up to and including the second `/` (`/pkg.Svc/` for
/// `/pkg.Svc/Method`); `None` when `path` does not start with `/` or has no second `/`.
#[inline]
fn service_key(path: &str) -> Option<&[u8]> {
    let bytes = path.as_bytes();
    let rest = bytes.strip_prefix(b"/")?;
    let end = rest.iter().position(|&b| b == b'/')?;
    // `end + 2` is at most `bytes.len()`: the second `/` is at `end + 1`.
    bytes.get(..end.checked_add(2)?)
}

/// A fixed, seedless hash of a service key (FxHash-style over 8-byte words). The keys come from
/// the configuration; a request only looks one up, so collisions cost probes, never more.
#[inline]
fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8]));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut buf = [0u8; 8];
        if let Some(dst) = buf.get_mut(..rem.len()) {
            dst.copy_from_slice(rem);
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h
}

/// One group: the routes whose service key is `key`, as `lists[start..end]`.
#[derive(Clone)]
struct Group {
    hash: u64,
    key: Box<[u8]>,
    start: u32,
    end: u32,
}

/// The route index of one virtual host (see the module docs). A cache derived from the routes:
/// it compares equal to any other index.
#[derive(Clone, Default)]
pub(crate) struct RouteIndex {
    /// `routes.len()` when built; `None` when the routes could not be indexed (more than
    /// 2^31 of them). A virtual host whose `routes` no longer has this length is scanned
    /// linearly.
    len: Option<usize>,
    /// Routes that may match any path, ascending.
    general: Box<[u32]>,
    /// The groups' route lists, concatenated; each entry is a route index, with
    /// [`PATH_IMPLIED`] set when the key match implies the path match.
    lists: Box<[u32]>,
    groups: Box<[Group]>,
    /// Open addressing (linear probing) over `groups`; a power of two long, at most half full.
    slots: Box<[u32]>,
}

impl PartialEq for RouteIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for RouteIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteIndex")
            .field("groups", &self.groups.len())
            .field("grouped", &self.lists.len())
            .field("general", &self.general.len())
            .finish()
    }
}

/// Where a route goes in the index.
enum Placement<'a> {
    /// Never matches: left out.
    Never,
    /// In the group of this key; `true` when the key match implies the path match.
    Group(&'a [u8], bool),
    /// May match any path.
    General,
}

fn placement(route: &Route) -> Placement<'_> {
    let m = &route.matcher;
    if m.has_query_parameters {
        return Placement::Never;
    }
    match &m.path {
        PathMatcher::Prefix {
            prefix,
            ignore_case: false,
        } => match service_key(prefix) {
            // Every path starting with `prefix` has the same first two `/`, so the same key.
            Some(key) => Placement::Group(key, key.len() == prefix.len()),
            None => Placement::General,
        },
        PathMatcher::Exact {
            path,
            ignore_case: false,
        } => match service_key(path) {
            Some(key) => Placement::Group(key, false),
            None => Placement::General,
        },
        _ => Placement::General,
    }
}

impl RouteIndex {
    /// Indexes `routes`.
    pub(crate) fn build(routes: &[Route]) -> RouteIndex {
        let Some(count) = u32::try_from(routes.len())
            .ok()
            .filter(|&n| n < PATH_IMPLIED)
        else {
            return RouteIndex::default();
        };
        let mut general = Vec::new();
        // Keys in first-seen order, each with its entries in route order.
        let mut keyed: Vec<(&[u8], Vec<u32>)> = Vec::new();
        let mut by_key: std::collections::BTreeMap<&[u8], usize> =
            std::collections::BTreeMap::new();
        for (i, route) in (0..count).zip(routes) {
            match placement(route) {
                Placement::Never => {}
                Placement::General => general.push(i),
                Placement::Group(key, implied) => {
                    let entry = if implied { i | PATH_IMPLIED } else { i };
                    let slot = *by_key.entry(key).or_insert_with(|| {
                        keyed.push((key, Vec::new()));
                        keyed.len() - 1
                    });
                    if let Some((_, list)) = keyed.get_mut(slot) {
                        list.push(entry);
                    }
                }
            }
        }
        let mut lists = Vec::with_capacity(keyed.iter().map(|(_, l)| l.len()).sum());
        let mut groups = Vec::with_capacity(keyed.len());
        for (key, list) in &keyed {
            let start = u32::try_from(lists.len()).unwrap_or(u32::MAX);
            lists.extend_from_slice(list);
            groups.push(Group {
                hash: key_hash(key),
                key: Box::from(*key),
                start,
                end: u32::try_from(lists.len()).unwrap_or(u32::MAX),
            });
        }
        let slots = if groups.is_empty() {
            Vec::new()
        } else {
            let size = groups.len().saturating_mul(2).next_power_of_two().max(4);
            let mask = size - 1;
            let mut slots = vec![EMPTY; size];
            for (g, group) in (0u32..).zip(&groups) {
                let mut at = slot_of(group.hash, mask);
                // At most half full, so an empty slot is always found.
                for _ in 0..size {
                    match slots.get_mut(at) {
                        Some(s) if *s == EMPTY => {
                            *s = g;
                            break;
                        }
                        _ => at = (at + 1) & mask,
                    }
                }
            }
            slots
        };
        RouteIndex {
            len: Some(routes.len()),
            general: general.into_boxed_slice(),
            lists: lists.into_boxed_slice(),
            groups: groups.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
        }
    }

    /// The routes that may match `path`, in ascending order; `None` when the index does not
    /// describe `routes_len` routes (the caller then scans every route).
    #[inline]
    pub(crate) fn candidates(&self, path: &str, routes_len: usize) -> Option<Candidates<'_>> {
        if self.len != Some(routes_len) {
            return None;
        }
        let grouped = if self.groups.is_empty() {
            &[][..]
        } else {
            self.group_of(path)
        };
        Some(Candidates {
            grouped,
            general: &self.general,
        })
    }

    /// The route list of `path`'s group, or an empty list.
    #[inline]
    fn group_of(&self, path: &str) -> &[u32] {
        let Some(key) = service_key(path) else {
            return &[];
        };
        let hash = key_hash(key);
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = slot_of(hash, mask);
        for _ in 0..self.slots.len() {
            let Some(&g) = self.slots.get(at) else {
                return &[];
            };
            if g == EMPTY {
                return &[];
            }
            if let Some(group) = self.groups.get(g as usize)
                && group.hash == hash
                && *group.key == *key
            {
                return self
                    .lists
                    .get(group.start as usize..group.end as usize)
                    .unwrap_or(&[]);
            }
            at = (at + 1) & mask;
        }
        &[]
    }
}

/// The table slot a hash starts probing at: its top bits, which the multiply mixes best.
#[inline]
fn slot_of(hash: u64, mask: usize) -> usize {
    // `mask + 1` is a power of two no larger than 2^32, so the shift is in 32..=64.
    let bits = (mask as u64).count_ones();
    if bits == 0 {
        return 0;
    }
    (hash >> (64 - bits)) as usize & mask
}

/// A candidate route: its index, and whether its path is already known to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Index into the virtual host's `routes`.
    pub(crate) index: usize,
    /// The path matcher need not be tested.
    pub(crate) path_matched: bool,
}

/// The merge of a group's routes and the general routes, ascending.
#[derive(Clone, Debug)]
pub(crate) struct Candidates<'a> {
    grouped: &'a [u32],
    general: &'a [u32],
}

impl Iterator for Candidates<'_> {
    type Item = Candidate;

    #[inline]
    fn next(&mut self) -> Option<Candidate> {
        let take_grouped = match (self.grouped.first(), self.general.first()) {
            (Some(&g), Some(&o)) => g & !PATH_IMPLIED < o,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_grouped {
            let (&g, rest) = self.grouped.split_first()?;
            self.grouped = rest;
            Some(Candidate {
                index: (g & !PATH_IMPLIED) as usize,
                path_matched: g & PATH_IMPLIED != 0,
            })
        } else {
            let (&o, rest) = self.general.split_first()?;
            self.general = rest;
            Some(Candidate {
                index: o as usize,
                path_matched: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys() {
        assert_eq!(service_key("/pkg.Svc/Method"), Some(&b"/pkg.Svc/"[..]));
        assert_eq!(service_key("/pkg.Svc/"), Some(&b"/pkg.Svc/"[..]));
        assert_eq!(service_key("//x"), Some(&b"//"[..]));
        assert_eq!(service_key("/pkg.Svc"), None);
        assert_eq!(service_key("/"), None);
        assert_eq!(service_key(""), None);
        assert_eq!(service_key("pkg.Svc/M"), None);
    }

    #[test]
    fn hash_reads_every_byte() {
        let keys: Vec<String> = (0..200).map(|i| format!("/acme.pkg{i}.v1.S/")).collect();
        let mut hashes: Vec<u64> = keys.iter().map(|k| key_hash(k.as_bytes())).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), keys.len());
        assert_ne!(key_hash(b"/a/"), key_hash(b"/a/\0"));
    }

    #[test]
    fn merge_is_ascending() {
        let c = Candidates {
            grouped: &[1 | PATH_IMPLIED, 4, 9],
            general: &[0, 5, 6, 10],
        };
        let got: Vec<(usize, bool)> = c.map(|c| (c.index, c.path_matched)).collect();
        assert_eq!(
            got,
            [
                (0, false),
                (1, true),
                (4, false),
                (5, false),
                (6, false),
                (9, false),
                (10, false)
            ]
        );
    }
}
