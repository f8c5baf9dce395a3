//! `RANDOM`: uniform over the eligible endpoints of a locality.

use super::index::EndpointIndex;
use crate::rng::Rng;

/// Uniform choice over a fixed list of eligible endpoints.
#[derive(Debug)]
pub(super) struct Random {
    endpoints: Box<[EndpointIndex]>,
}

impl Random {
    /// `None` when there is nothing to pick from.
    pub(super) fn new(endpoints: Box<[EndpointIndex]>) -> Option<Random> {
        (!endpoints.is_empty()).then_some(Random { endpoints })
    }

    #[inline]
    pub(super) fn pick(&self, rng: &mut Rng) -> Option<EndpointIndex> {
        let i = rng.below(self.endpoints.len() as u64) as usize;
        self.endpoints.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    #[test]
    fn roughly_uniform() {
        let r = Random::new((0..4).map(EndpointIndex).collect()).unwrap();
        let mut rng = Rng::new(Seed(9));
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[r.pick(&mut rng).unwrap().get()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_400..10_600).contains(&c)),
            "{counts:?}"
        );
        assert!(Random::new(Box::new([])).is_none());
    }
}
