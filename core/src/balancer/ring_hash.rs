//! `RING_HASH` (gRFC A42, A76): consistent hashing on a ring of xxHash64 points.
//!
//! Each endpoint gets a number of points proportional to its weight; a request's hash picks the
//! first point at or after it (wrapping). Construction follows gRFC A42 (Envoy's algorithm), so a
//! skiff client and a gRPC client that see the same endpoints place them at the same points.

use std::fmt::Write as _;

use xxhash_rust::xxh64::xxh64;

use super::hash_table::{HashMember, distinct};
use super::index::EndpointIndex;

/// The largest ring xDS may ask for (`maximum_ring_size` above 8M is NACKed, gRFC A42).
pub const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;

/// The default client-side ring-size cap (gRFC A42: the local cap "will also default to 4096").
pub const DEFAULT_RING_SIZE_CAP: u64 = 4096;

/// Effective ring bounds after applying the xDS limit and the local cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RingSizes {
    pub(super) min: u64,
    pub(super) max: u64,
}

impl RingSizes {
    /// gRFC A42: values above the local cap are treated as the cap. Validation NACKs
    /// `min > max` and sizes above 8M; should one get here, `min` is lowered to `max` and both
    /// are kept in `1..=8M`.
    pub(super) fn new(min: u64, max: u64, cap: u64) -> RingSizes {
        let cap = cap.clamp(1, MAX_RING_SIZE);
        let max = max.clamp(1, cap);
        RingSizes {
            min: min.clamp(1, max),
            max,
        }
    }
}

/// A sorted ring: `hashes[i]` is the point of `slots[i]`. Kept as two arrays so the binary
/// search touches only the hashes.
pub(super) struct Ring {
    hashes: Box<[u64]>,
    slots: Box<[EndpointIndex]>,
    members: Box<[EndpointIndex]>,
}

impl Ring {
    /// gRFC A42 "Ring Construction":
    ///
    /// - normalise weights to shares of the total;
    /// - scale the ring so the smallest share gets a whole number of points and the ring has at
    ///   least `min` points: `scale = min(ceil(min_share × min) / min_share, max)`;
    /// - walk the endpoints (sorted by key), giving each points until the running total reaches
    ///   the running target `Σ scale × share` — so rounding never drifts by more than one point;
    /// - point `i` of an endpoint is `XXH64("{key}_{i}", seed 0)`, `i` counting that endpoint's
    ///   points, so an endpoint keeps its points when others come and go;
    /// - sort by hash.
    ///
    /// When `max` is smaller than the number of endpoints, the lightest ones may get no point at
    /// all; that is the specified behaviour, not an accident.
    pub(super) fn build(mut members: Vec<HashMember>, sizes: RingSizes) -> Ring {
        HashMember::sort(&mut members);
        let total: u128 = members.iter().map(|m| u128::from(m.weight)).sum();
        let lightest = members.iter().map(|m| m.weight).min().unwrap_or(0);
        if total == 0 || lightest == 0 {
            return Ring {
                hashes: Box::new([]),
                slots: Box::new([]),
                members: Box::new([]),
            };
        }
        // Floating point as in gRFC A42; f64 arithmetic is IEEE-exact, so this is deterministic
        // on every platform.
        let total = total as f64;
        let min_share = lightest as f64 / total;
        let scale = ((min_share * sizes.min as f64).ceil() / min_share).min(sizes.max as f64);
        // The running target can end a hair above `scale` through float rounding, giving one
        // point more than `max`; gRPC has the same rounding and we keep it so both place the same
        // points. The limit only guards against a runaway loop.
        let limit = usize::try_from(sizes.max.saturating_add(1)).unwrap_or(usize::MAX);

        let mut points: Vec<(u64, EndpointIndex)> =
            Vec::with_capacity(usize::try_from(sizes.max).unwrap_or(0).min(limit));
        let mut key = String::new();
        let mut current = 0.0_f64;
        let mut target = 0.0_f64;
        for member in &members {
            target += scale * (member.weight as f64 / total);
            let mut i: u64 = 0;
            while current < target && points.len() < limit {
                key.clear();
                // Writing to a String cannot fail.
                let _ = write!(key, "{}_{}", member.key, i);
                points.push((xxh64(key.as_bytes(), 0), member.index));
                i += 1;
                current += 1.0;
            }
        }
        // Ties (two equal 64-bit hashes) are broken by index so the ring is deterministic.
        points.sort_unstable();
        let (hashes, slots): (Vec<u64>, Vec<EndpointIndex>) = points.into_iter().unzip();
        Ring {
            members: distinct(&slots),
            hashes: hashes.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
        }
    }

    #[inline]
    pub(super) fn slots(&self) -> &[EndpointIndex] {
        &self.slots
    }

    pub(super) fn members(&self) -> &[EndpointIndex] {
        &self.members
    }

    /// The first point whose hash is `>= hash`, wrapping to the first point past the end.
    #[inline]
    pub(super) fn position(&self, hash: u64) -> Option<usize> {
        if self.hashes.is_empty() {
            return None;
        }
        let i = self.hashes.partition_point(|&h| h < hash);
        Some(if i == self.hashes.len() { 0 } else { i })
    }

    #[cfg(test)]
    pub(super) fn hashes(&self) -> &[u64] {
        &self.hashes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(index: u32, weight: u64) -> HashMember {
        HashMember {
            index: EndpointIndex(index),
            weight,
            key: format!("10.0.0.{index}:80"),
        }
    }

    fn count(ring: &Ring, index: u32) -> usize {
        ring.slots()
            .iter()
            .filter(|&&e| e == EndpointIndex(index))
            .count()
    }

    #[test]
    fn sizes_are_clamped() {
        assert_eq!(
            RingSizes::new(1024, MAX_RING_SIZE, DEFAULT_RING_SIZE_CAP),
            RingSizes {
                min: 1024,
                max: 4096
            }
        );
        assert_eq!(
            RingSizes::new(10_000, 20_000, MAX_RING_SIZE * 4),
            RingSizes {
                min: 10_000,
                max: 20_000
            }
        );
        assert_eq!(
            RingSizes::new(0, 0, 0),
            RingSizes { min: 1, max: 1 },
            "never zero"
        );
        assert_eq!(RingSizes::new(50, 10, 4096), RingSizes { min: 10, max: 10 });
    }

    #[test]
    fn equal_weights_get_equal_points_and_at_least_min() {
        let ring = Ring::build(
            (0..3).map(|i| member(i, 1)).collect(),
            RingSizes::new(1024, 4096, 4096),
        );
        // ceil(1024/3) = 342 points each, give or take float rounding of the running target.
        assert!((1026..=1027).contains(&ring.slots().len()));
        for i in 0..3 {
            assert!((342..=343).contains(&count(&ring, i)));
        }
        assert!(ring.hashes().windows(2).all(|w| w[0] <= w[1]), "sorted");
    }

    #[test]
    fn weights_split_points_proportionally() {
        let ring = Ring::build(
            vec![member(0, 3), member(1, 1)],
            RingSizes::new(1024, 4096, 4096),
        );
        let (heavy, light) = (count(&ring, 0), count(&ring, 1));
        assert!(heavy.abs_diff(3 * light) <= 1, "{heavy} vs {light}");
        assert!(ring.slots().len() >= 1024);
    }

    #[test]
    fn max_size_bounds_the_ring() {
        let ring = Ring::build(
            (0..100).map(|i| member(i, 1)).collect(),
            RingSizes::new(64, 64, 4096),
        );
        assert!((64..=65).contains(&ring.slots().len()));
    }

    #[test]
    fn points_use_the_key_and_point_number() {
        let ring = Ring::build(vec![member(7, 1)], RingSizes::new(2, 2, 4096));
        let mut expected = [xxh64(b"10.0.0.7:80_0", 0), xxh64(b"10.0.0.7:80_1", 0)];
        expected.sort_unstable();
        assert_eq!(ring.hashes(), &expected[..]);
    }

    #[test]
    fn position_wraps_and_finds_the_first_point_at_or_after() {
        let ring = Ring::build(
            (0..4).map(|i| member(i, 1)).collect(),
            RingSizes::new(8, 8, 4096),
        );
        let h = ring.hashes();
        assert_eq!(ring.position(h[0]), Some(0));
        assert_eq!(ring.position(h[0] + 1), Some(1));
        assert_eq!(ring.position(h[h.len() - 1] + 1), Some(0), "wraps");
        assert_eq!(ring.position(0), Some(0));
        let empty = Ring::build(vec![], RingSizes::new(8, 8, 4096));
        assert_eq!(empty.position(5), None);
    }

    #[test]
    fn listing_order_does_not_change_the_ring() {
        let a = Ring::build(
            vec![member(0, 2), member(1, 1), member(2, 5)],
            RingSizes::new(100, 4096, 4096),
        );
        let b = Ring::build(
            vec![member(2, 5), member(0, 2), member(1, 1)],
            RingSizes::new(100, 4096, 4096),
        );
        assert_eq!(a.hashes(), b.hashes());
        assert_eq!(a.slots(), b.slots());
    }
}
