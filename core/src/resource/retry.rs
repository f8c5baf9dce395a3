//! Route retry policy (gRFC A44), validated from `envoy.config.route.v3.RetryPolicy`.
//!
//! gRPC honours `retry_on` (only the gRPC status conditions), `num_retries` and
//! `retry_back_off`; every other field is recorded as ignored.
#![deny(missing_docs)]

use core::time::Duration;

use super::{Ignored, ValidationError, duration};
use crate::pb::envoy::config::route::v3 as route_pb;

/// gRPC status code numbers used by `retry_on` (grpc/grpc `doc/statuscodes.md`).
pub mod code {
    /// `CANCELLED`.
    pub const CANCELLED: u32 = 1;
    /// `DEADLINE_EXCEEDED`.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// `RESOURCE_EXHAUSTED`.
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    /// `INTERNAL`.
    pub const INTERNAL: u32 = 13;
    /// `UNAVAILABLE`.
    pub const UNAVAILABLE: u32 = 14;
}

/// gRFC A6 caps attempts (first try included) at 5, whatever the config says.
pub const MAX_ATTEMPTS_CAP: u32 = 5;
/// Envoy's (and gRFC A44's) default `retry_back_off.base_interval`.
pub const DEFAULT_BASE_BACKOFF: Duration = Duration::from_millis(25);
/// gRFC A44: back-off intervals below 1 ms count as 1 ms.
const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// A set of gRPC status codes (0..=16) as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GrpcCodeSet(u32);

impl GrpcCodeSet {
    /// The empty set.
    pub const EMPTY: GrpcCodeSet = GrpcCodeSet(0);

    /// Adds `code` (codes above 31 cannot be represented and are ignored).
    pub fn insert(&mut self, code: u32) {
        if let Some(bit) = 1u32.checked_shl(code) {
            self.0 |= bit;
        }
    }

    /// Whether `code` is in the set.
    pub fn contains(self, code: u32) -> bool {
        1u32.checked_shl(code).is_some_and(|bit| self.0 & bit != 0)
    }

    /// Whether the set is empty (then nothing is retried).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The codes in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0u32..32).filter(move |c| self.contains(*c))
    }
}

/// A validated retry policy (gRFC A44 → gRFC A6 retry policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `retry_on`, reduced to the gRPC status conditions gRPC supports: `cancelled`,
    /// `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`. Empty means the
    /// policy retries nothing.
    pub retry_on: GrpcCodeSet,
    /// `num_retries` as configured (default 1, never 0).
    pub num_retries: u32,
    /// `retry_back_off.base_interval` (gRPC `initialBackoff`), at least 1 ms.
    pub base_backoff: Duration,
    /// `retry_back_off.max_interval` (gRPC `maxBackoff`), at least `base_backoff`.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Total attempts including the first (`num_retries + 1`, capped at 5 per gRFC A6/A44).
    pub fn max_attempts(&self) -> u32 {
        self.num_retries.saturating_add(1).min(MAX_ATTEMPTS_CAP)
    }

    /// Whether a failed attempt with gRPC status `code` may be retried under this policy.
    pub fn retries_code(&self, code: u32) -> bool {
        self.retry_on.contains(code)
    }

    /// Validates a wire `RetryPolicy`. Errors are relative to the message; `at` is its path
    /// for ignored-field notes.
    pub fn from_proto(
        p: &route_pb::RetryPolicy,
        at: &str,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        let mut retry_on = GrpcCodeSet::EMPTY;
        let mut unsupported_condition = false;
        for token in p
            .retry_on
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            // gRFC A44: only the x-envoy-retry-grpc-on conditions are converted; any other
            // condition (istiod's connect-failure, refused-stream, retriable-status-codes, ...)
            // is ignored, never rejected.
            match token {
                "cancelled" => retry_on.insert(code::CANCELLED),
                "deadline-exceeded" => retry_on.insert(code::DEADLINE_EXCEEDED),
                "internal" => retry_on.insert(code::INTERNAL),
                "resource-exhausted" => retry_on.insert(code::RESOURCE_EXHAUSTED),
                "unavailable" => retry_on.insert(code::UNAVAILABLE),
                _ => unsupported_condition = true,
            }
        }
        if unsupported_condition {
            // Recorded as `retry_on`: some of its conditions are not acted on.
            ignored.note_in(at, "retry_on");
        }

        // Envoy documents the default as 1; gRFC A44 rejects values below 1.
        let num_retries = match p.num_retries {
            None => 1,
            Some(0) => {
                return Err(ValidationError::new("num_retries", "must be at least 1"));
            }
            Some(n) => n,
        };

        let (base_backoff, max_backoff) = match &p.retry_back_off {
            None => (
                DEFAULT_BASE_BACKOFF,
                DEFAULT_BASE_BACKOFF.saturating_mul(10),
            ),
            Some(b) => {
                let Some(base) = &b.base_interval else {
                    return Err(ValidationError::new(
                        "retry_back_off.base_interval",
                        "is required when retry_back_off is set",
                    ));
                };
                let base = duration("retry_back_off.base_interval", base)?;
                if base.is_zero() {
                    return Err(ValidationError::new(
                        "retry_back_off.base_interval",
                        "must be greater than zero",
                    ));
                }
                let max = match &b.max_interval {
                    None => base.saturating_mul(10),
                    Some(m) => {
                        let m = duration("retry_back_off.max_interval", m)?;
                        if m.is_zero() {
                            return Err(ValidationError::new(
                                "retry_back_off.max_interval",
                                "must be greater than zero",
                            ));
                        }
                        if m < base {
                            return Err(ValidationError::new(
                                "retry_back_off.max_interval",
                                format!("{m:?} is less than base_interval {base:?}"),
                            ));
                        }
                        m
                    }
                };
                (base.max(MIN_BACKOFF), max.max(MIN_BACKOFF))
            }
        };

        note_unsupported(p, at, ignored);
        Ok(RetryPolicy {
            retry_on,
            num_retries,
            base_backoff,
            max_backoff,
        })
    }
}

/// Records the RetryPolicy fields gRFC A44 leaves unsupported.
fn note_unsupported(p: &route_pb::RetryPolicy, at: &str, ignored: &mut Ignored) {
    let mut note = |set: bool, field: &str| {
        if set {
            ignored.note_in(at, field);
        }
    };
    note(p.per_try_timeout.is_some(), "per_try_timeout");
    note(p.per_try_idle_timeout.is_some(), "per_try_idle_timeout");
    note(p.retry_priority.is_some(), "retry_priority");
    note(!p.retry_host_predicate.is_empty(), "retry_host_predicate");
    note(
        !p.retry_options_predicates.is_empty(),
        "retry_options_predicates",
    );
    note(
        p.host_selection_retry_max_attempts != 0,
        "host_selection_retry_max_attempts",
    );
    note(
        !p.retriable_status_codes.is_empty(),
        "retriable_status_codes",
    );
    note(
        p.rate_limited_retry_back_off.is_some(),
        "rate_limited_retry_back_off",
    );
    note(!p.retriable_headers.is_empty(), "retriable_headers");
    note(
        !p.retriable_request_headers.is_empty(),
        "retriable_request_headers",
    );
    note(p.refresh_cluster_on_retry, "refresh_cluster_on_retry");
}

#[cfg(test)]
mod tests {
    use super::*;
    use route_pb::retry_policy::RetryBackOff;

    fn d(ms: u64) -> prost_types::Duration {
        prost_types::Duration {
            seconds: (ms / 1000) as i64,
            nanos: ((ms % 1000) * 1_000_000) as i32,
        }
    }

    fn parse(p: &route_pb::RetryPolicy) -> Result<RetryPolicy, ValidationError> {
        RetryPolicy::from_proto(p, "retry_policy", &mut Ignored::default())
    }

    #[test]
    fn istiod_default_policy_validates() {
        // istiod's default for routes without a VirtualService retry block
        // (pilot/pkg/networking/core/route/retry/retry.go).
        let p = route_pb::RetryPolicy {
            retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
                .into(),
            num_retries: Some(2),
            retry_host_predicate: vec![route_pb::retry_policy::RetryHostPredicate {
                name: "envoy.retry_host_predicates.previous_hosts".into(),
                config_type: None,
            }],
            host_selection_retry_max_attempts: 5,
            ..Default::default()
        };
        let mut ignored = Ignored::default();
        let r = RetryPolicy::from_proto(&p, "rp", &mut ignored).unwrap();
        assert_eq!(
            r.retry_on.iter().collect::<Vec<_>>(),
            [code::CANCELLED, code::UNAVAILABLE]
        );
        assert_eq!(r.num_retries, 2);
        assert_eq!(r.max_attempts(), 3);
        assert_eq!(r.base_backoff, Duration::from_millis(25));
        assert_eq!(r.max_backoff, Duration::from_millis(250));
        assert!(r.retries_code(code::UNAVAILABLE) && !r.retries_code(code::INTERNAL));
        assert!(
            ignored
                .fields()
                .contains(&"rp.retry_host_predicate".to_string())
        );
        assert!(ignored.fields().contains(&"rp.retry_on".to_string()));
    }

    #[test]
    fn all_grpc_conditions_and_defaults() {
        let p = route_pb::RetryPolicy {
            retry_on: " cancelled ,deadline-exceeded,internal,resource-exhausted,unavailable,,5xx"
                .into(),
            ..Default::default()
        };
        let r = parse(&p).unwrap();
        assert_eq!(
            r.retry_on.iter().collect::<Vec<_>>(),
            [1, 4, 8, 13, 14],
            "all five gRPC conditions"
        );
        assert_eq!(r.num_retries, 1, "Envoy default");
        assert_eq!(r.max_attempts(), 2);
        let empty = parse(&route_pb::RetryPolicy::default()).unwrap();
        assert!(empty.retry_on.is_empty());
    }

    #[test]
    fn attempts_are_capped_at_five() {
        let p = route_pb::RetryPolicy {
            num_retries: Some(100),
            ..Default::default()
        };
        assert_eq!(parse(&p).unwrap().max_attempts(), 5);
        let p = route_pb::RetryPolicy {
            num_retries: Some(u32::MAX),
            ..Default::default()
        };
        assert_eq!(parse(&p).unwrap().max_attempts(), 5);
    }

    #[test]
    fn zero_retries_rejected() {
        let p = route_pb::RetryPolicy {
            num_retries: Some(0),
            ..Default::default()
        };
        assert_eq!(parse(&p).unwrap_err().field, "num_retries");
    }

    #[test]
    fn back_off_rules() {
        let with = |base: Option<u64>, max: Option<u64>| route_pb::RetryPolicy {
            retry_back_off: Some(RetryBackOff {
                base_interval: base.map(d),
                max_interval: max.map(d),
            }),
            ..Default::default()
        };
        let r = parse(&with(Some(100), None)).unwrap();
        assert_eq!(
            (r.base_backoff, r.max_backoff),
            (Duration::from_millis(100), Duration::from_secs(1))
        );
        let r = parse(&with(Some(100), Some(300))).unwrap();
        assert_eq!(r.max_backoff, Duration::from_millis(300));
        assert_eq!(
            parse(&with(None, Some(300))).unwrap_err().field,
            "retry_back_off.base_interval"
        );
        assert_eq!(
            parse(&with(Some(0), None)).unwrap_err().field,
            "retry_back_off.base_interval"
        );
        assert_eq!(
            parse(&with(Some(100), Some(0))).unwrap_err().field,
            "retry_back_off.max_interval"
        );
        assert_eq!(
            parse(&with(Some(100), Some(50))).unwrap_err().field,
            "retry_back_off.max_interval"
        );
        // Sub-millisecond intervals count as 1 ms (gRFC A44).
        let tiny = route_pb::RetryPolicy {
            retry_back_off: Some(RetryBackOff {
                base_interval: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 1000,
                }),
                max_interval: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 2000,
                }),
            }),
            ..Default::default()
        };
        let r = parse(&tiny).unwrap();
        assert_eq!(
            (r.base_backoff, r.max_backoff),
            (Duration::from_millis(1), Duration::from_millis(1))
        );
        let neg = route_pb::RetryPolicy {
            retry_back_off: Some(RetryBackOff {
                base_interval: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                max_interval: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            parse(&neg).unwrap_err().field,
            "retry_back_off.base_interval"
        );
    }

    #[test]
    fn code_set() {
        let mut s = GrpcCodeSet::EMPTY;
        s.insert(40);
        assert!(s.is_empty());
        s.insert(16);
        assert!(s.contains(16) && !s.contains(15) && !s.contains(99));
    }
}
