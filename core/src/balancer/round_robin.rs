//! `ROUND_ROBIN` (the xDS default, gRFC A27): rotate through the eligible endpoints of a locality.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::index::EndpointIndex;
use crate::rng::Rng;

/// Round robin over a fixed list of eligible endpoints.
#[derive(Debug)]
pub(super) struct RoundRobin {
    endpoints: Box<[EndpointIndex]>,
    /// Shared by every thread picking from this picker. `Relaxed` is enough: the counter only
    /// spreads picks, it orders nothing else, and a lost race just repeats or skips one position.
    next: AtomicUsize,
}

impl RoundRobin {
    /// `None` when there is nothing to pick from. The rotation starts at a random offset so that
    /// many clients rebuilding at the same moment (say, after the same EDS push) do not all send
    /// their next RPC to the first endpoint (gRPC's round_robin does the same).
    pub(super) fn new(endpoints: Box<[EndpointIndex]>, rng: &mut Rng) -> Option<RoundRobin> {
        if endpoints.is_empty() {
            return None;
        }
        let start = rng.below(endpoints.len() as u64) as usize;
        Some(RoundRobin {
            endpoints,
            next: AtomicUsize::new(start),
        })
    }

    #[inline]
    pub(super) fn pick(&self) -> Option<EndpointIndex> {
        // Wrapping at usize::MAX restarts the cycle one step early once per 2^64 picks; harmless.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.endpoints.get(n % self.endpoints.len()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    fn eps(n: u32) -> Box<[EndpointIndex]> {
        (0..n).map(EndpointIndex).collect()
    }

    #[test]
    fn cycles_through_every_endpoint_in_order() {
        let rr = RoundRobin::new(eps(4), &mut Rng::new(Seed(1))).unwrap();
        let first = rr.pick().unwrap().0;
        let rest: Vec<u32> = (0..7).map(|_| rr.pick().unwrap().0).collect();
        let expected: Vec<u32> = (1..8).map(|k| (first + k) % 4).collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn empty_is_none() {
        assert!(RoundRobin::new(eps(0), &mut Rng::new(Seed(1))).is_none());
    }
}
