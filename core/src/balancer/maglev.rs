//! `MAGLEV`: consistent hashing with a lookup table (Eisenbud et al., "Maglev", NSDI 2016, §3.4),
//! weighted the way Envoy's Maglev load balancer weights it.
//!
//! Every endpoint has a permutation of the `M` table slots derived from two hashes of its key:
//! `offset = h1 % M`, `skip = h2 % (M - 1) + 1`, slot `j` of the permutation is
//! `(offset + j × skip) % M`. Because `M` is prime, every `skip` is coprime with it and each
//! permutation visits every slot. Endpoints take turns claiming their next unclaimed slot until
//! the table is full; a request goes to `table[hash % M]`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use xxhash_rust::xxh64::xxh64;

use super::hash_table::{HashMember, distinct};
use super::index::EndpointIndex;

/// The default table size (Envoy `MaglevLbConfig.table_size` default; a prime).
pub const DEFAULT_MAGLEV_TABLE_SIZE: u64 = 65_537;

/// The largest table size accepted (Envoy caps `table_size` at 5000011, a prime).
pub const MAX_MAGLEV_TABLE_SIZE: u64 = 5_000_011;

/// A filled Maglev lookup table.
pub(super) struct Maglev {
    slots: Box<[EndpointIndex]>,
    members: Box<[EndpointIndex]>,
}

/// An endpoint while the table is being filled.
struct Filler {
    index: EndpointIndex,
    weight: u64,
    skip: u64,
    /// The next slot of this endpoint's permutation.
    next: u64,
    /// Weighted turn-taking: the endpoint takes a turn in round `k` (at most one per round, in
    /// member order within a round) only when `k × weight ≥ target`, and each turn raises
    /// `target` by the largest weight. The heaviest endpoint therefore takes a turn every round
    /// and one of a third its weight every third round (Envoy's semantics, in integers instead
    /// of normalised floats).
    target: u128,
}

/// An unclaimed slot while the table is filled.
const FREE: u32 = u32::MAX;

/// `filler` claims the next free slot of its permutation. `false` only if it visited `m` slots
/// without finding one: impossible for a prime `m` with a free slot left (a full permutation
/// visits every slot); the bound guards against a non-prime size slipping through.
#[inline]
fn claim(filler: &mut Filler, table: &mut [u32], m: u64) -> bool {
    for _ in 0..m {
        let slot = filler.next as usize;
        // `next` and `skip` are below `m`: one conditional subtraction replaces `% m`.
        filler.next += filler.skip;
        if filler.next >= m {
            filler.next -= m;
        }
        if let Some(cell) = table.get_mut(slot)
            && *cell == FREE
        {
            *cell = filler.index.0;
            return true;
        }
    }
    false
}

/// Equal weights (the common case): every endpoint takes one turn per round, in member order —
/// the paper's loop, with no scheduling to do.
fn fill_equal(fillers: &mut [Filler], table: &mut [u32], m: u64) {
    let size = table.len();
    let mut filled = 0usize;
    loop {
        for filler in fillers.iter_mut() {
            if filled == size || !claim(filler, table, m) {
                return;
            }
            filled += 1;
        }
    }
}

/// Weighted turns. Rounds as in the paper, but instead of visiting every endpoint in every
/// round (O(M × n) when one endpoint is far heavier than the rest) each endpoint is queued for
/// the next round it qualifies in; popping by (round, position) visits exactly the turns the
/// round-by-round loop would, in the same order. Every turn claims one slot, so there are
/// `table.len()` turns.
fn fill_weighted(fillers: &mut [Filler], table: &mut [u32], m: u64, heaviest: u64) {
    let size = table.len();
    let mut filled = 0usize;
    let mut turns: BinaryHeap<Reverse<(u128, usize)>> =
        (0..fillers.len()).map(|i| Reverse((1, i))).collect();
    while filled < size {
        let Some(Reverse((round, i))) = turns.pop() else {
            break;
        };
        let Some(filler) = fillers.get_mut(i) else {
            continue;
        };
        filler.target += u128::from(heaviest);
        if !claim(filler, table, m) {
            break;
        }
        filled += 1;
        // At most one turn per round; then the first round `k` with `k × weight ≥ target`.
        let weight = u128::from(filler.weight.max(1));
        let next = (round + 1).max(filler.target.div_ceil(weight));
        turns.push(Reverse((next, i)));
    }
}

/// The table size to use: `requested` when it is a prime in `2..=MAX_MAGLEV_TABLE_SIZE`,
/// otherwise the default. Validation rejects non-primes; the fallback keeps a bad value from
/// producing permutations that miss slots.
pub(super) fn table_size(requested: u64) -> u64 {
    if requested <= MAX_MAGLEV_TABLE_SIZE && is_prime(requested) {
        requested
    } else {
        DEFAULT_MAGLEV_TABLE_SIZE
    }
}

/// Trial division; `n` is at most ~5M, so at most ~2.2k divisions, once per plan.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

impl Maglev {
    /// Fills a table of [`table_size`]`(requested_size)` slots with `members`.
    pub(super) fn build(mut members: Vec<HashMember>, requested_size: u64) -> Maglev {
        let m = table_size(requested_size);
        HashMember::sort(&mut members);
        let heaviest = members.iter().map(|e| e.weight).max().unwrap_or(0);
        if members.is_empty() || heaviest == 0 {
            return Maglev {
                slots: Box::new([]),
                members: Box::new([]),
            };
        }
        let mut fillers: Vec<Filler> = members
            .iter()
            .map(|member| {
                let key = member.key.as_bytes();
                Filler {
                    index: member.index,
                    weight: member.weight,
                    next: xxh64(key, 0) % m,
                    skip: xxh64(key, 1) % (m - 1).max(1) + 1,
                    target: 0,
                }
            })
            .collect();

        // `m` fits in usize: it is at most MAX_MAGLEV_TABLE_SIZE. Slots hold the endpoint
        // index, `FREE` until claimed (4 bytes a slot: the table is probed at random, so its
        // footprint in cache is what the build time is made of).
        let size = m as usize;
        let mut table: Vec<u32> = vec![FREE; size];
        if members.iter().all(|e| e.weight == heaviest) {
            fill_equal(&mut fillers, &mut table, m);
        } else {
            fill_weighted(&mut fillers, &mut table, m, heaviest);
        }
        let slots: Box<[EndpointIndex]> = table
            .into_iter()
            .filter(|&e| e != FREE)
            .map(EndpointIndex)
            .collect();
        Maglev {
            members: distinct(&slots),
            slots,
        }
    }

    #[inline]
    pub(super) fn slots(&self) -> &[EndpointIndex] {
        &self.slots
    }

    pub(super) fn members(&self) -> &[EndpointIndex] {
        &self.members
    }

    /// `hash % M`.
    #[inline]
    pub(super) fn position(&self, hash: u64) -> Option<usize> {
        let m = self.slots.len() as u64;
        if m == 0 {
            return None;
        }
        Some((hash % m) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(index: u32, weight: u64) -> HashMember {
        HashMember {
            index: EndpointIndex(index),
            weight,
            key: format!("10.0.1.{index}:8080"),
        }
    }

    fn count(table: &Maglev, index: u32) -> usize {
        table
            .slots()
            .iter()
            .filter(|&&e| e == EndpointIndex(index))
            .count()
    }

    #[test]
    fn equal_weight_rounds_match_the_weighted_schedule() {
        // The fast path for equal weights must fill exactly what the general schedule fills.
        for (n, m) in [(1u32, 7u64), (3, 251), (10, 65_537), (1000, 65_537)] {
            let fillers = || -> Vec<Filler> {
                (0..n)
                    .map(|i| {
                        let key = format!("10.0.1.{i}:8080");
                        Filler {
                            index: EndpointIndex(i),
                            weight: 3,
                            next: xxh64(key.as_bytes(), 0) % m,
                            skip: xxh64(key.as_bytes(), 1) % (m - 1) + 1,
                            target: 0,
                        }
                    })
                    .collect()
            };
            let mut fast = vec![FREE; m as usize];
            fill_equal(&mut fillers(), &mut fast, m);
            let mut general = vec![FREE; m as usize];
            fill_weighted(&mut fillers(), &mut general, m, 3);
            assert!(fast.iter().all(|&e| e != FREE), "{n} in {m}: full");
            assert_eq!(fast, general, "{n} endpoints in {m} slots");
        }
    }

    #[test]
    fn primes() {
        assert!(is_prime(2) && is_prime(3) && is_prime(65_537) && is_prime(5_000_011));
        assert!(!is_prime(0) && !is_prime(1) && !is_prime(65_536) && !is_prime(9));
        assert_eq!(table_size(251), 251);
        assert_eq!(table_size(250), DEFAULT_MAGLEV_TABLE_SIZE);
        assert_eq!(table_size(0), DEFAULT_MAGLEV_TABLE_SIZE);
        assert_eq!(table_size(5_000_077), DEFAULT_MAGLEV_TABLE_SIZE, "too big");
    }

    #[test]
    fn table_is_full_and_evenly_split() {
        let table = Maglev::build((0..5).map(|i| member(i, 1)).collect(), 65_537);
        assert_eq!(table.slots().len(), 65_537);
        for i in 0..5 {
            let c = count(&table, i);
            // Equal weights: each endpoint gets ⌊M/5⌋ or ⌈M/5⌉ slots.
            assert!((13_107..=13_108).contains(&c), "{i}: {c}");
        }
    }

    #[test]
    fn weights_split_slots_proportionally() {
        let table = Maglev::build(vec![member(0, 4), member(1, 1)], 65_537);
        let (heavy, light) = (count(&table, 0), count(&table, 1));
        assert_eq!(heavy + light, 65_537);
        let share = light as f64 / 65_537.0;
        assert!((share - 0.2).abs() < 0.002, "{share}");
    }

    /// The round-by-round loop the queue replaces, written the slow, obvious way.
    fn reference(mut members: Vec<HashMember>, m: u64) -> Vec<EndpointIndex> {
        HashMember::sort(&mut members);
        let heaviest = members.iter().map(|e| e.weight).max().unwrap();
        let mut state: Vec<(u64, u64, u128)> = members
            .iter()
            .map(|e| {
                let k = e.key.as_bytes();
                (xxh64(k, 0) % m, xxh64(k, 1) % (m - 1) + 1, 0)
            })
            .collect();
        let mut table = vec![None; m as usize];
        let mut filled = 0;
        let mut round = 1u128;
        while filled < m {
            for (i, (next, skip, target)) in state.iter_mut().enumerate() {
                if filled == m || round * u128::from(members[i].weight) < *target {
                    continue;
                }
                *target += u128::from(heaviest);
                while table[*next as usize].is_some() {
                    *next = (*next + *skip) % m;
                }
                table[*next as usize] = Some(members[i].index);
                *next = (*next + *skip) % m;
                filled += 1;
            }
            round += 1;
        }
        table.into_iter().map(Option::unwrap).collect()
    }

    #[test]
    fn queue_fill_matches_the_round_by_round_fill() {
        for weights in [
            vec![1, 1, 1],
            vec![5, 1, 3, 3, 7],
            vec![1_000_000, 1, 2],
            vec![u64::from(u32::MAX) * 7, 3, u64::from(u32::MAX)],
        ] {
            let members: Vec<HashMember> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| member(i as u32, w))
                .collect();
            for m in [7, 251, 4099] {
                let fast = Maglev::build(members.clone(), m);
                assert_eq!(
                    fast.slots(),
                    &reference(members.clone(), m)[..],
                    "{weights:?} {m}"
                );
            }
        }
    }

    #[test]
    fn tiny_and_odd_tables() {
        let table = Maglev::build((0..3).map(|i| member(i, 1)).collect(), 2);
        assert_eq!(table.slots().len(), 2);
        let table = Maglev::build((0..10).map(|i| member(i, 1)).collect(), 7);
        assert_eq!(table.slots().len(), 7, "more endpoints than slots");
        assert_eq!(Maglev::build(vec![], 7).position(3), None);
    }
}
