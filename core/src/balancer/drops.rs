//! `ClusterLoadAssignment.policy.drop_overloads` (gRFC A27): drop a share of RPCs before picking.

use crate::resource::endpoint::DropOverload;
use crate::rng::Rng;

/// The denominator of `parts_per_million`.
const MILLION: u32 = 1_000_000;

/// Which drop category dropped an RPC: the position of its entry in
/// `EndpointsConfig::drop_overloads`. Its name is [`Picker::drop_category`](super::Picker::drop_category);
/// the data plane counts drops per category for load reports (LRS `dropped_requests`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DropCategory(pub u32);

/// One validated drop rule.
#[derive(Clone, Debug)]
pub(super) struct DropRule {
    pub(super) category: Box<str>,
    /// Clamped to `0..=1_000_000`.
    pub(super) parts_per_million: u32,
}

impl DropRule {
    pub(super) fn from_config(drop: &DropOverload) -> DropRule {
        DropRule {
            category: drop.category.as_str().into(),
            parts_per_million: drop.parts_per_million.min(MILLION),
        }
    }
}

/// Applies the rules in order (gRFC A27: each category is an independent draw, the first hit
/// wins). A rule of 0 draws nothing and one of 100% drops without drawing, so neither shifts the
/// random stream the picker sees after it.
#[inline]
pub(super) fn check(rules: &[DropRule], rng: &mut Rng) -> Option<DropCategory> {
    for (i, rule) in rules.iter().enumerate() {
        let hit = match rule.parts_per_million {
            0 => false,
            MILLION => true,
            ppm => rng.below(u64::from(MILLION)) < u64::from(ppm),
        };
        if hit {
            // The plan keeps at most u32::MAX rules, so `i` fits.
            return Some(DropCategory(u32::try_from(i).unwrap_or(u32::MAX)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    fn rule(ppm: u32) -> DropRule {
        DropRule::from_config(&DropOverload {
            category: "c".into(),
            parts_per_million: ppm,
        })
    }

    #[test]
    fn zero_never_drops_and_full_always_drops() {
        let mut rng = Rng::new(Seed(1));
        for _ in 0..1000 {
            assert_eq!(check(&[rule(0)], &mut rng), None);
            assert_eq!(check(&[rule(1_000_000)], &mut rng), Some(DropCategory(0)));
            assert_eq!(
                check(&[rule(2_000_000)], &mut rng),
                Some(DropCategory(0)),
                "clamped"
            );
        }
    }

    #[test]
    fn categories_apply_in_order() {
        let mut rng = Rng::new(Seed(2));
        assert_eq!(
            check(&[rule(0), rule(1_000_000), rule(1_000_000)], &mut rng),
            Some(DropCategory(1))
        );
    }

    #[test]
    fn share_is_close_to_ppm() {
        let mut rng = Rng::new(Seed(3));
        let rules = [rule(250_000)];
        let drops = (0..20_000)
            .filter(|_| check(&rules, &mut rng).is_some())
            .count();
        assert!((4_600..5_400).contains(&drops), "{drops}");
    }
}
