//! Weighted round robin by endpoint `load_balancing_weight`, scheduled with earliest deadline
//! first (EDF, as in gRFC A34).
//!
//! EDF needs a priority queue that every pick mutates; shared across threads that would need a
//! lock. Instead the picker runs EDF once, at build time, for one whole period and stores the
//! resulting sequence; a pick is then one atomic increment and one array read, like round robin.
//! The period of integer weights `w` is `Σw / gcd(w)`, so the sequence reproduces EDF exactly
//! whenever that fits in [`MAX_SCHEDULE_LEN`] entries (every realistic case: 80/20 is a period
//! of 5). Larger periods are scaled down to about that length, each weight rounded down but
//! kept at least 1, which bounds memory and build time at the cost of a relative error of about
//! one part in [`MAX_SCHEDULE_LEN`] per endpoint (more only for endpoints whose weight is below
//! `Σw / MAX_SCHEDULE_LEN`, which are rounded up to one slot).

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::index::EndpointIndex;
use super::plan::Member;
use crate::rng::Rng;

/// The target length of a precomputed schedule (a locality with more endpoints than this gets
/// one slot per endpoint, which is plain round robin).
pub const MAX_SCHEDULE_LEN: usize = 4096;

/// Weighted round robin over a precomputed EDF sequence.
#[derive(Debug)]
pub(super) struct WeightedRoundRobin {
    schedule: Box<[EndpointIndex]>,
    /// As in round robin: a shared `Relaxed` counter, started at a random offset.
    next: AtomicUsize,
}

impl WeightedRoundRobin {
    /// `None` when there is nothing to pick from.
    pub(super) fn new(members: &[Member], rng: &mut Rng) -> Option<WeightedRoundRobin> {
        let schedule = schedule(members);
        if schedule.is_empty() {
            return None;
        }
        let start = rng.below(schedule.len() as u64) as usize;
        Some(WeightedRoundRobin {
            schedule,
            next: AtomicUsize::new(start),
        })
    }

    #[inline]
    pub(super) fn pick(&self) -> Option<EndpointIndex> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.schedule.get(n % self.schedule.len()).copied()
    }
}

/// One endpoint's next deadline in the EDF queue: `(2 × picks + 1) / (2 × weight)`, i.e. the
/// middle of its next period. Starting at half a period rather than a whole one interleaves
/// light endpoints into the sequence instead of lining them up at its end (4:1 gives
/// `a a b a a`, not `a a a a b`). Compared as fractions, so no float rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Deadline {
    numerator: u64,
    weight: u64,
    /// Position in the member list: ties go to the earlier endpoint.
    position: usize,
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        let a = u128::from(self.numerator) * u128::from(other.weight);
        let b = u128::from(other.numerator) * u128::from(self.weight);
        a.cmp(&b).then(self.position.cmp(&other.position))
    }
}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The weights to schedule: reduced by their gcd, then scaled to about `MAX_SCHEDULE_LEN` if the
/// period is still longer than that (never below one slot each).
fn scaled_weights(members: &[Member]) -> Vec<u64> {
    let weights: Vec<u64> = members.iter().map(|m| u64::from(m.weight.max(1))).collect();
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let weights: Vec<u64> = weights.iter().map(|w| w / g).collect();
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let target = MAX_SCHEDULE_LEN.max(weights.len()) as u128;
    if total <= target {
        return weights;
    }
    weights
        .iter()
        // `w × target / total ≤ target`, which fits in u64.
        .map(|&w| ((u128::from(w) * target / total) as u64).max(1))
        .collect()
}

/// One period of EDF over `members`.
fn schedule(members: &[Member]) -> Box<[EndpointIndex]> {
    let weights = scaled_weights(members);
    let period: u64 = weights.iter().sum();
    let mut queue: BinaryHeap<Reverse<Deadline>> = weights
        .iter()
        .enumerate()
        .map(|(position, &weight)| {
            Reverse(Deadline {
                numerator: 1,
                weight,
                position,
            })
        })
        .collect();
    let mut out = Vec::with_capacity(usize::try_from(period).unwrap_or(0));
    for _ in 0..period {
        let Some(Reverse(mut next)) = queue.pop() else {
            break;
        };
        if let Some(member) = members.get(next.position) {
            out.push(member.index);
        }
        next.numerator += 2;
        queue.push(Reverse(next));
    }
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Member {
                index: EndpointIndex(i as u32),
                weight,
            })
            .collect()
    }

    fn ids(s: &[EndpointIndex]) -> Vec<u32> {
        s.iter().map(|e| e.0).collect()
    }

    #[test]
    fn four_to_one_is_smooth_and_exact() {
        assert_eq!(ids(&schedule(&members(&[80, 20]))), vec![0, 0, 1, 0, 0]);
    }

    #[test]
    fn equal_weights_are_round_robin() {
        assert_eq!(ids(&schedule(&members(&[7, 7, 7]))), vec![0, 1, 2]);
    }

    #[test]
    fn huge_periods_are_bounded_and_keep_every_endpoint() {
        let s = schedule(&members(&[u32::MAX, 1, 1_000_000]));
        assert!(s.len() <= MAX_SCHEDULE_LEN + 3, "{}", s.len());
        for i in 0..3 {
            assert!(s.contains(&EndpointIndex(i)));
        }
        let s = schedule(&members(&[3; 5000]));
        assert_eq!(s.len(), 5000, "one slot each when there are many endpoints");
    }

    #[test]
    fn shares_match_weights() {
        let s = schedule(&members(&[5, 3, 2]));
        let count = |i| s.iter().filter(|&&e| e == EndpointIndex(i)).count();
        assert_eq!((count(0), count(1), count(2)), (5, 3, 2));
    }

    #[test]
    fn picks_follow_the_schedule_from_a_random_start() {
        let m = members(&[3, 1]);
        let wrr = WeightedRoundRobin::new(&m, &mut Rng::new(Seed(5))).unwrap();
        let picks: Vec<u32> = (0..400).map(|_| wrr.pick().unwrap().0).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 300);
        assert!(WeightedRoundRobin::new(&[], &mut Rng::new(Seed(5))).is_none());
    }
}
