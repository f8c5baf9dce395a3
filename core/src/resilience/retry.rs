//! Retry decisions (gRFC A44 over gRFC A6's retry semantics).
//!
//! After attempt `n` fails with a status in the route's `retry_on` set, and the call is not
//! committed (no response headers seen), and the throttle allows it, attempt `n + 1` starts
//! after a delay drawn uniformly from `[0, min(base * 2^(n-1), max))` — or exactly after the
//! server's `grpc-retry-pushback-ms`. A negative or malformed pushback means "do not retry".

use core::time::Duration;

use crate::rng::Rng;

/// A44's fixed backoff multiplier.
pub const BACKOFF_MULTIPLIER: u32 = 2;
/// A44: total attempts are capped at 5 whatever `num_retries` says.
pub const MAX_ATTEMPTS: u32 = 5;

/// Why a failed attempt is not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRetry {
    /// The status is not in `retry_on`.
    NotRetryable,
    /// Response headers were already received (the call is committed).
    Committed,
    /// `num_retries` is used up.
    AttemptsExhausted,
    /// Retry throttling (A6) refused.
    Throttled,
    /// The server asked not to retry (negative or malformed pushback).
    ServerPushback,
}

/// Decision for a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after this delay.
    RetryAfter(Duration),
    /// Do not retry.
    Stop(NoRetry),
}

/// Inputs of a retry decision about one failed attempt.
#[derive(Clone, Copy, Debug)]
pub struct FailedAttempt<'a> {
    /// Attempts made so far, including the one that failed (≥ 1).
    pub attempts: u32,
    /// Total attempts allowed (`num_retries + 1`, capped at [`MAX_ATTEMPTS`]).
    pub max_attempts: u32,
    /// Whether the status is in the route's `retry_on`.
    pub retryable: bool,
    /// Whether response headers were received.
    pub committed: bool,
    /// The `grpc-retry-pushback-ms` trailer, if present.
    pub pushback: Option<&'a str>,
    /// Whether retry throttling allows a retry now.
    pub throttle_allows: bool,
    /// `retry_back_off.base_interval` (default 25 ms).
    pub base: Duration,
    /// `retry_back_off.max_interval` (default 10 × base).
    pub max: Duration,
}

/// Parses `grpc-retry-pushback-ms`: `Some(delay)` to retry after it, `None` for "do not retry".
pub fn parse_pushback(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(Duration::from_millis)
}

/// Decides whether and when to retry.
pub fn decide(a: &FailedAttempt<'_>, rng: &mut Rng) -> RetryDecision {
    if a.committed {
        return RetryDecision::Stop(NoRetry::Committed);
    }
    if !a.retryable {
        return RetryDecision::Stop(NoRetry::NotRetryable);
    }
    if a.attempts >= a.max_attempts.min(MAX_ATTEMPTS) {
        return RetryDecision::Stop(NoRetry::AttemptsExhausted);
    }
    if !a.throttle_allows {
        return RetryDecision::Stop(NoRetry::Throttled);
    }
    if let Some(p) = a.pushback {
        return match parse_pushback(p) {
            Some(d) => RetryDecision::RetryAfter(d),
            None => RetryDecision::Stop(NoRetry::ServerPushback),
        };
    }
    RetryDecision::RetryAfter(backoff(a.attempts, a.base, a.max, rng))
}

/// The jittered delay before attempt `attempts + 1`: uniform in `[0, min(base·2^(n-1), max))`.
pub fn backoff(attempts: u32, base: Duration, max: Duration, rng: &mut Rng) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let ceiling = base
        .checked_mul(BACKOFF_MULTIPLIER.saturating_pow(exp))
        .unwrap_or(max)
        .min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.below(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    fn attempt(attempts: u32) -> FailedAttempt<'static> {
        FailedAttempt {
            attempts,
            max_attempts: 3,
            retryable: true,
            committed: false,
            pushback: None,
            throttle_allows: true,
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }

    #[test]
    fn retries_until_exhausted() {
        let mut rng = Rng::new(Seed(1));
        assert!(matches!(
            decide(&attempt(1), &mut rng),
            RetryDecision::RetryAfter(_)
        ));
        assert!(matches!(
            decide(&attempt(2), &mut rng),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(
            decide(&attempt(3), &mut rng),
            RetryDecision::Stop(NoRetry::AttemptsExhausted)
        );
        let mut big = attempt(5);
        big.max_attempts = 100;
        assert_eq!(
            decide(&big, &mut rng),
            RetryDecision::Stop(NoRetry::AttemptsExhausted),
            "A44 caps attempts at 5"
        );
    }

    #[test]
    fn never_after_commit_or_for_other_codes_or_when_throttled() {
        let mut rng = Rng::new(Seed(1));
        let mut a = attempt(1);
        a.committed = true;
        assert_eq!(
            decide(&a, &mut rng),
            RetryDecision::Stop(NoRetry::Committed)
        );
        let mut a = attempt(1);
        a.retryable = false;
        assert_eq!(
            decide(&a, &mut rng),
            RetryDecision::Stop(NoRetry::NotRetryable)
        );
        let mut a = attempt(1);
        a.throttle_allows = false;
        assert_eq!(
            decide(&a, &mut rng),
            RetryDecision::Stop(NoRetry::Throttled)
        );
    }

    #[test]
    fn pushback_overrides_backoff() {
        let mut rng = Rng::new(Seed(1));
        let mut a = attempt(1);
        a.pushback = Some("1500");
        assert_eq!(
            decide(&a, &mut rng),
            RetryDecision::RetryAfter(Duration::from_millis(1500))
        );
        a.pushback = Some("-1");
        assert_eq!(
            decide(&a, &mut rng),
            RetryDecision::Stop(NoRetry::ServerPushback)
        );
        a.pushback = Some("soon");
        assert_eq!(
            decide(&a, &mut rng),
            RetryDecision::Stop(NoRetry::ServerPushback)
        );
    }

    #[test]
    fn backoff_is_jittered_below_the_exponential_ceiling() {
        let mut rng = Rng::new(Seed(9));
        let base = Duration::from_millis(25);
        let max = Duration::from_millis(250);
        for n in 1..8u32 {
            let ceiling = (base * 2u32.pow(n - 1)).min(max);
            let mut seen_max = Duration::ZERO;
            for _ in 0..2000 {
                let d = backoff(n, base, max, &mut rng);
                assert!(d < ceiling, "attempt {n}: {d:?} >= {ceiling:?}");
                seen_max = seen_max.max(d);
            }
            assert!(seen_max > ceiling * 9 / 10, "uses the whole range");
        }
    }
}
