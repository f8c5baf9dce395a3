//! Exponential backoff with jitter, as gRPC's connection-backoff spec defines it
//! (`doc/connection-backoff.md`: initial 1 s, multiplier 1.6, jitter ±20 %, max 120 s). Used for
//! ADS stream reconnects and subchannel reconnects. Jitter draws from the seeded RNG.

use core::time::Duration;

use crate::rng::Rng;

/// Backoff parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Growth factor per failed attempt.
    pub multiplier: f64,
    /// Relative jitter, 0.2 = ±20 %.
    pub jitter: f64,
    /// Upper bound of the un-jittered delay.
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
        }
    }
}

/// Backoff state: how many attempts failed in a row.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    current: Duration,
    attempts: u32,
}

impl Backoff {
    /// Fresh state.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            current: config.initial,
            attempts: 0,
        }
    }

    /// The delay before the next attempt; grows the next one.
    pub fn next_delay(&mut self, rng: &mut Rng) -> Duration {
        let base = self.current.min(self.config.max);
        let grown = base.as_secs_f64() * self.config.multiplier;
        self.current = Duration::from_secs_f64(grown.min(self.config.max.as_secs_f64()));
        self.attempts = self.attempts.saturating_add(1);
        // Uniform in [1 - jitter, 1 + jitter].
        let factor = 1.0 + self.config.jitter * (2.0 * rng.unit_f64() - 1.0);
        Duration::from_secs_f64((base.as_secs_f64() * factor).max(0.0))
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Back to the initial delay (after a successful attempt).
    pub fn reset(&mut self) {
        self.current = self.config.initial;
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut rng = Rng::new(Seed(5));
        let mut b = Backoff::new(BackoffConfig::default());
        let mut expected = 1.0f64;
        for _ in 0..20 {
            let d = b.next_delay(&mut rng).as_secs_f64();
            assert!(
                d >= expected * 0.8 - 1e-9 && d <= expected * 1.2 + 1e-9,
                "{d} vs {expected}"
            );
            expected = (expected * 1.6).min(120.0);
        }
        b.reset();
        let d = b.next_delay(&mut rng).as_secs_f64();
        assert!((0.8..=1.2).contains(&d));
    }
}
