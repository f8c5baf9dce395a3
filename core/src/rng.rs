//! Reproducible randomness.
//!
//! Every random choice skiff makes (round-robin start offsets, P2C, weighted picks, backoff jitter,
//! fault percentages) draws from one [`Seed`]. Each subsystem takes its own stream with
//! [`Rng::fork`], so adding a draw in one subsystem never shifts the numbers another one sees.
//! The same seed and the same inputs give the same outputs, byte for byte.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng};

/// The one seed a mesh (or a simulated world) runs from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seed(pub u64);

/// A seeded, reproducible random number generator (ChaCha8).
#[derive(Clone, Debug)]
pub struct Rng {
    seed: u64,
    inner: ChaCha8Rng,
}

/// FNV-1a: a fixed, documented hash so that a fork's stream depends only on its label.
fn label_hash(label: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Rng {
    /// The root generator for `seed`.
    pub fn new(seed: Seed) -> Self {
        Rng {
            seed: seed.0,
            inner: ChaCha8Rng::seed_from_u64(seed.0),
        }
    }

    /// An independent generator for the subsystem `label`: same seed, its own stream. Forking does
    /// not consume from `self`, so the order in which subsystems fork does not matter.
    pub fn fork(&self, label: &str) -> Rng {
        let mixed = self.seed ^ label_hash(label).rotate_left(17);
        let mut inner = ChaCha8Rng::seed_from_u64(mixed);
        inner.set_stream(label_hash(label));
        Rng { seed: mixed, inner }
    }

    /// A uniformly random `u64`.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniformly random `u32`.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// A uniform integer in `0..n` (0 when `n == 0`), without modulo bias (Lemire's nearly
    /// divisionless method, "Fast Random Integer Generation in an Interval", 2019).
    ///
    /// A draw is rejected when the low 64 bits of `word × n` fall below `2^64 mod n`; that
    /// threshold is itself below `n`, so it is only computed (one 64-bit division) when the low
    /// bits are below `n`, which happens with probability `n / 2^64`. The words consumed and the
    /// results are exactly those of the always-dividing form.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        // The low 64 bits decide rejection; the high 64 bits are the result.
        #[allow(clippy::cast_possible_truncation)]
        let mut low = m as u64;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
                #[allow(clippy::cast_possible_truncation)]
                {
                    low = m as u64;
                }
            }
        }
        (m >> 64) as u64
    }

    /// Two independent uniform integers in `0..n` (0 when `n == 0`) from one 64-bit word when
    /// they can share it: each half is used with Lemire's method at 32 bits; a half that would
    /// be biased is redrawn alone. For `n` of 2^32 or more, two [`Rng::below`] draws.
    ///
    /// Power-of-two-choices (gRFC A48) draws two candidates per pick; one word instead of two
    /// is a measurable share of a ~40 ns pick.
    #[inline]
    pub fn below_pair(&mut self, n: u64) -> (u64, u64) {
        let Ok(n32) = u32::try_from(n) else {
            return (self.below(n), self.below(n));
        };
        if n32 == 0 {
            return (0, 0);
        }
        let word = self.next_u64();
        #[allow(clippy::cast_possible_truncation)]
        let halves = [(word >> 32) as u32, word as u32];
        let mut out = [0u64; 2];
        for (o, half) in out.iter_mut().zip(halves) {
            let mut m = u64::from(half) * u64::from(n32);
            #[allow(clippy::cast_possible_truncation)]
            let mut low = m as u32;
            if low < n32 {
                let threshold = n32.wrapping_neg() % n32;
                while low < threshold {
                    m = u64::from(self.next_u32()) * u64::from(n32);
                    #[allow(clippy::cast_possible_truncation)]
                    {
                        low = m as u32;
                    }
                }
            }
            *o = m >> 32;
        }
        (out[0], out[1])
    }

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `numerator / denominator` (false when the denominator is 0).
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        denominator != 0 && self.below(denominator) < numerator
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn below_pair_is_uniform_and_in_range() {
        let mut r = Rng::new(Seed(11));
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            let (a, b) = r.below_pair(3);
            counts[a as usize] += 1;
            counts[b as usize] += 1;
        }
        for c in counts {
            assert!((19_000..21_000).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below_pair(0), (0, 0));
        assert_eq!(r.below_pair(1), (0, 0));
        let big = 1u64 << 40;
        let (a, b) = r.below_pair(big);
        assert!(a < big && b < big);
    }

    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let mut a = Rng::new(Seed(7));
        let mut b = Rng::new(Seed(7));
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut c = Rng::new(Seed(8));
        assert_ne!(xs[0], c.next_u64());
    }

    #[test]
    fn forks_are_independent_of_parent_use_and_of_each_other() {
        let root = Rng::new(Seed(42));
        let mut used = Rng::new(Seed(42));
        used.next_u64();
        let mut f1 = root.fork("balancer");
        let mut f2 = used.fork("balancer");
        assert_eq!(
            f1.next_u64(),
            f2.next_u64(),
            "forking does not depend on draws"
        );
        let mut g = root.fork("backoff");
        let mut f3 = root.fork("balancer");
        assert_ne!(g.next_u64(), f3.next_u64());
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut r = Rng::new(Seed(1));
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[r.below(5) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }

    /// The always-dividing form `below` replaced: same words consumed, same results.
    fn below_reference(r: &mut Rng, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(r.next_u64()) * u128::from(n);
            if m as u64 >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    #[test]
    fn below_matches_the_dividing_form() {
        // Large `n` (close to 2^64) makes rejections frequent, so the retry path is exercised.
        let ns = [
            0,
            1,
            2,
            3,
            5,
            7,
            100,
            1000,
            (1 << 32) + 1,
            u64::MAX / 3 * 2,
            u64::MAX / 2 + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut a = Rng::new(Seed(11));
        let mut b = Rng::new(Seed(11));
        for i in 0..20_000 {
            let n = ns[i % ns.len()];
            assert_eq!(a.below(n), below_reference(&mut b, n), "n = {n}");
        }
        assert_eq!(a.next_u64(), b.next_u64(), "same number of words consumed");
    }

    #[test]
    fn unit_f64_in_range() {
        let mut r = Rng::new(Seed(3));
        for _ in 0..1000 {
            let x = r.unit_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
