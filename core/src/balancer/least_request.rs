//! `LEAST_REQUEST` (gRFC A48): the power of `choice_count` random choices on in-flight RPCs.

use super::index::EndpointIndex;
use super::picker::InFlight;
use crate::rng::Rng;

/// P2C (or P-k-C) over a fixed list of eligible endpoints.
#[derive(Debug)]
pub(super) struct LeastRequest {
    endpoints: Box<[EndpointIndex]>,
    /// In `2..=10`.
    choices: u32,
}

impl LeastRequest {
    /// `None` when there is nothing to pick from.
    pub(super) fn new(endpoints: Box<[EndpointIndex]>, choices: u32) -> Option<LeastRequest> {
        (!endpoints.is_empty()).then_some(LeastRequest { endpoints, choices })
    }

    /// gRFC A48's picker: draw `choices` endpoints uniformly *with* replacement (as Envoy does;
    /// A48 "Allow picking same candidate multiple times") and keep the one with the fewest RPCs
    /// in flight; a tie keeps the earlier draw.
    #[inline]
    pub(super) fn pick(&self, rng: &mut Rng, in_flight: InFlight<'_>) -> Option<EndpointIndex> {
        let n = self.endpoints.len() as u64;
        if n == 1 {
            // Every draw would be the same endpoint; save the random numbers.
            return self.endpoints.first().copied();
        }
        if self.choices == 2 {
            // The default choice_count (gRFC A48): both candidates from one random word.
            let (a, b) = rng.below_pair(n);
            let (Some(&a), Some(&b)) = (
                self.endpoints.get(a as usize),
                self.endpoints.get(b as usize),
            ) else {
                return None;
            };
            // Ties go to the first candidate, as in the general loop below.
            return Some(if in_flight.get(b) < in_flight.get(a) {
                b
            } else {
                a
            });
        }
        let mut best: Option<(EndpointIndex, u32)> = None;
        for _ in 0..self.choices {
            let Some(&candidate) = self.endpoints.get(rng.below(n) as usize) else {
                continue;
            };
            let load = in_flight.get(candidate);
            match best {
                Some((_, best_load)) if best_load <= load => {}
                _ => best = Some((candidate, load)),
            }
        }
        best.map(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    #[test]
    fn prefers_the_less_loaded() {
        let lr = LeastRequest::new((0..2).map(EndpointIndex).collect(), 2).unwrap();
        let loads = [10u32, 0];
        let mut rng = Rng::new(Seed(4));
        let mut picks = [0u32; 2];
        for _ in 0..10_000 {
            picks[lr.pick(&mut rng, InFlight::Counts(&loads)).unwrap().get()] += 1;
        }
        // Endpoint 0 wins only when both draws are 0: 1/4 of the time.
        assert!((2_300..2_700).contains(&picks[0]), "{picks:?}");
    }

    #[test]
    fn single_endpoint_draws_nothing() {
        let lr = LeastRequest::new(Box::new([EndpointIndex(3)]), 2).unwrap();
        let mut rng = Rng::new(Seed(4));
        let before = rng.clone().next_u64();
        assert_eq!(lr.pick(&mut rng, InFlight::None), Some(EndpointIndex(3)));
        assert_eq!(rng.next_u64(), before);
    }
}
