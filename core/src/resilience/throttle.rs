//! Retry throttling (gRFC A6): a token bucket per target. Each failed attempt costs one token,
//! each success earns `token_ratio`; retries are allowed only while tokens exceed half of
//! `max_tokens`. Tokens are kept in thousandths to match A6's three decimal places.

/// Throttling parameters (`retryThrottling` in gRPC service config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrottleConfig {
    /// `maxTokens`, 1..=1000.
    pub max_tokens: u32,
    /// `tokenRatio`, > 0, three decimal places.
    pub token_ratio: f64,
}

/// Token bucket state.
#[derive(Clone, Debug)]
pub struct RetryThrottle {
    max_milli: u64,
    ratio_milli: u64,
    tokens_milli: u64,
}

impl RetryThrottle {
    /// A full bucket.
    pub fn new(config: ThrottleConfig) -> Self {
        let max_milli = u64::from(config.max_tokens.clamp(1, 1000)) * 1000;
        // A6: the ratio keeps three decimal places.
        let ratio_milli = (config.token_ratio.max(0.0) * 1000.0).round() as u64;
        RetryThrottle {
            max_milli,
            ratio_milli,
            tokens_milli: max_milli,
        }
    }

    /// Whether a retry (or hedge) may be sent now.
    pub fn allows_retry(&self) -> bool {
        self.tokens_milli > self.max_milli / 2
    }

    /// A failed attempt: one token less.
    pub fn on_failure(&mut self) {
        self.tokens_milli = self.tokens_milli.saturating_sub(1000);
    }

    /// A successful attempt: `token_ratio` tokens more, up to the maximum.
    pub fn on_success(&mut self) {
        self.tokens_milli = (self.tokens_milli + self.ratio_milli).min(self.max_milli);
    }

    /// Current tokens (for dumps and tests).
    pub fn tokens(&self) -> f64 {
        self.tokens_milli as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_below_half_and_recovers() {
        let mut t = RetryThrottle::new(ThrottleConfig {
            max_tokens: 10,
            token_ratio: 0.5,
        });
        assert!(t.allows_retry());
        for _ in 0..5 {
            t.on_failure();
        }
        assert_eq!(t.tokens(), 5.0);
        assert!(!t.allows_retry(), "at exactly half, retries stop");
        t.on_success();
        assert_eq!(t.tokens(), 5.5);
        assert!(t.allows_retry());
        for _ in 0..100 {
            t.on_success();
        }
        assert_eq!(t.tokens(), 10.0);
        for _ in 0..100 {
            t.on_failure();
        }
        assert_eq!(t.tokens(), 0.0);
    }
}
