//! What ring hash and Maglev share: a table of slots, each naming an endpoint, a way to map a
//! request hash to a slot, and the walk past ineligible endpoints.

use std::fmt;
use std::sync::Arc;

use super::index::{EndpointIndex, is_eligible};
use super::maglev::Maglev;
use super::ring_hash::Ring;
use crate::resource::endpoint::Endpoint;

/// One endpoint to place in a hash table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HashMember {
    pub(super) index: EndpointIndex,
    /// Locality weight × endpoint weight, at least 1.
    pub(super) weight: u64,
    /// What is hashed to place the endpoint.
    pub(super) key: String,
}

impl HashMember {
    /// The endpoint hash key (gRFC A76): the `envoy.lb` `hash_key` metadata when set and
    /// non-empty, else the address as `ip:port` (`[ip]:port` for IPv6), which is how gRPC
    /// writes the address it hashes (gRFC A42).
    pub(super) fn key_of(endpoint: &Endpoint) -> String {
        match endpoint.hash_key.as_deref() {
            Some(key) if !key.is_empty() => key.to_owned(),
            _ => endpoint.address.to_string(),
        }
    }

    /// Orders members by key (then index) so that a table depends on the set of endpoints, not
    /// on the order EDS lists them in: rounding in the weight split and Maglev's fill order would
    /// otherwise differ between two clients that received the same endpoints in another order.
    pub(super) fn sort(members: &mut [HashMember]) {
        members.sort_by(|a, b| a.key.cmp(&b.key).then(a.index.cmp(&b.index)));
    }
}

/// A ring-hash ring or a Maglev lookup table.
pub(super) enum HashTable {
    Ring(Ring),
    Maglev(Maglev),
}

impl fmt::Debug for HashTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashTable::Ring(r) => f
                .debug_struct("Ring")
                .field("len", &r.slots().len())
                .finish(),
            HashTable::Maglev(m) => f
                .debug_struct("Maglev")
                .field("len", &m.slots().len())
                .finish(),
        }
    }
}

impl HashTable {
    /// The endpoint of each slot.
    #[inline]
    pub(super) fn slots(&self) -> &[EndpointIndex] {
        match self {
            HashTable::Ring(r) => r.slots(),
            HashTable::Maglev(m) => m.slots(),
        }
    }

    /// The slot `hash` lands on; `None` for an empty table.
    #[inline]
    pub(super) fn position(&self, hash: u64) -> Option<usize> {
        match self {
            HashTable::Ring(r) => r.position(hash),
            HashTable::Maglev(m) => m.position(hash),
        }
    }

    /// The distinct endpoints that own at least one slot, ascending.
    pub(super) fn members(&self) -> &[EndpointIndex] {
        match self {
            HashTable::Ring(r) => r.members(),
            HashTable::Maglev(m) => m.members(),
        }
    }
}

/// Sorted, deduplicated endpoints of `slots`.
pub(super) fn distinct(slots: &[EndpointIndex]) -> Box<[EndpointIndex]> {
    let mut all = slots.to_vec();
    all.sort_unstable();
    all.dedup();
    all.into_boxed_slice()
}

/// "No eligible slot": never a valid position (tables hold at most 8M slots).
const NONE: u32 = u32::MAX;

/// A hash table plus, when some of its endpoints are ineligible, where to go instead.
pub(super) struct HashPicker {
    table: Arc<HashTable>,
    /// `skip[p]` is the first slot at or after `p` (wrapping) whose endpoint is eligible.
    /// `None` when every endpoint on the table is eligible, which is the common case and costs
    /// nothing. Precomputing this at picker build (O(table)) keeps picks O(1) after the lookup
    /// even when most endpoints are down, where walking at pick time would cost O(table).
    skip: Option<Box<[u32]>>,
}

impl fmt::Debug for HashPicker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPicker")
            .field("table", &self.table)
            .field("skips", &self.skip.is_some())
            .finish()
    }
}

impl HashPicker {
    /// `None` when no endpoint on the table is eligible: the priority cannot serve.
    pub(super) fn new(table: &Arc<HashTable>, eligible: &[bool]) -> Option<HashPicker> {
        let members = table.members();
        let usable = members
            .iter()
            .filter(|&&m| is_eligible(eligible, m))
            .count();
        if usable == 0 {
            return None;
        }
        let skip = (usable < members.len()).then(|| skip_table(table.slots(), eligible));
        Some(HashPicker {
            table: Arc::clone(table),
            skip,
        })
    }

    /// gRFC A42: the endpoint the request hash lands on; if it is ineligible, the next eligible
    /// distinct endpoint in table order.
    #[inline]
    pub(super) fn pick(&self, hash: u64) -> Option<EndpointIndex> {
        let mut pos = self.table.position(hash)?;
        if let Some(skip) = &self.skip {
            pos = *skip.get(pos)? as usize;
        }
        self.table.slots().get(pos).copied()
    }
}

/// Two passes backwards over the table: the first finds the eligible slot nearest the end (which
/// is where slots near the end wrap to), the second fills the answers.
fn skip_table(slots: &[EndpointIndex], eligible: &[bool]) -> Box<[u32]> {
    let len = slots.len();
    let mut skip = vec![NONE; len];
    let mut next = NONE;
    for i in (0..2 * len).rev() {
        let pos = i % len;
        if slots.get(pos).is_some_and(|&e| is_eligible(eligible, e)) {
            // Tables are capped far below u32::MAX slots.
            next = u32::try_from(pos).unwrap_or(NONE);
        }
        if i < len
            && let Some(s) = skip.get_mut(pos)
        {
            *s = next;
        }
    }
    skip.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_table_wraps_to_the_first_eligible_slot() {
        let slots: Vec<EndpointIndex> = [0, 1, 2, 1, 0].map(EndpointIndex).to_vec();
        let eligible = [false, true, false];
        assert_eq!(&*skip_table(&slots, &eligible), &[1, 1, 3, 3, 1]);
        let none = [false, false, false];
        assert!(skip_table(&slots, &none).iter().all(|&s| s == NONE));
    }
}
