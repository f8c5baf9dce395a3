//! Per-call deadlines (gRFC A31).
//!
//! The effective timeout of an RPC is the application's deadline (or its `grpc-timeout` header),
//! capped by the route's `max_stream_duration` rules:
//! - if the route sets `grpc_timeout_header_max`, the application's timeout is capped by it (0
//!   means "no cap"), and `max_stream_duration` is not used;
//! - otherwise the route's `max_stream_duration` (or the HCM's, when the route has none) applies
//!   when it is shorter than the application's timeout.
//!
//! A zero `max_stream_duration` means "no limit" (istiod sends `0s` for routes without a
//! VirtualService timeout).

use core::time::Duration;

/// The route's timeout settings, as validated from `RouteAction.max_stream_duration` and the
/// HCM's `common_http_protocol_options.max_stream_duration`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteTimeouts {
    /// `max_stream_duration.max_stream_duration` of the route (`None` = unset).
    pub max_stream_duration: Option<Duration>,
    /// `max_stream_duration.grpc_timeout_header_max` of the route (`None` = unset).
    pub grpc_timeout_header_max: Option<Duration>,
    /// The HCM's `max_stream_duration`, used when the route sets neither.
    pub hcm_max_stream_duration: Option<Duration>,
}

/// Where the effective deadline came from (reported when it expires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineSource {
    /// The application's deadline / `grpc-timeout`.
    Application,
    /// The route's `max_stream_duration` or `grpc_timeout_header_max`.
    Route,
    /// The HTTP connection manager's `max_stream_duration`.
    ConnectionManager,
}

/// The effective timeout and its source, or `None` when the RPC has no deadline.
pub fn effective_timeout(
    app: Option<Duration>,
    route: &RouteTimeouts,
) -> Option<(Duration, DeadlineSource)> {
    let nonzero = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    if let Some(cap) = route.grpc_timeout_header_max {
        // A31: the header's value, capped by grpc_timeout_header_max (0 = no cap).
        return match (app, nonzero(Some(cap))) {
            (Some(a), Some(c)) if c < a => Some((c, DeadlineSource::Route)),
            (Some(a), _) => Some((a, DeadlineSource::Application)),
            (None, _) => nonzero(route.max_stream_duration).map(|d| (d, DeadlineSource::Route)),
        };
    }
    let (limit, source) = match nonzero(route.max_stream_duration) {
        Some(d) => (Some(d), DeadlineSource::Route),
        None => (
            nonzero(route.hcm_max_stream_duration),
            DeadlineSource::ConnectionManager,
        ),
    };
    match (app, limit) {
        (Some(a), Some(l)) if l < a => Some((l, source)),
        (Some(a), _) => Some((a, DeadlineSource::Application)),
        (None, Some(l)) => Some((l, source)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn route_limit_caps_application_deadline() {
        let r = RouteTimeouts {
            max_stream_duration: Some(S(2)),
            ..Default::default()
        };
        assert_eq!(
            effective_timeout(Some(S(5)), &r),
            Some((S(2), DeadlineSource::Route))
        );
        assert_eq!(
            effective_timeout(Some(S(1)), &r),
            Some((S(1), DeadlineSource::Application))
        );
        assert_eq!(
            effective_timeout(None, &r),
            Some((S(2), DeadlineSource::Route))
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let r = RouteTimeouts {
            max_stream_duration: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(effective_timeout(None, &r), None);
        assert_eq!(
            effective_timeout(Some(S(3)), &r),
            Some((S(3), DeadlineSource::Application))
        );
    }

    #[test]
    fn header_max_caps_header_and_replaces_max_stream_duration() {
        let r = RouteTimeouts {
            max_stream_duration: Some(S(1)),
            grpc_timeout_header_max: Some(S(4)),
            hcm_max_stream_duration: None,
        };
        assert_eq!(
            effective_timeout(Some(S(10)), &r),
            Some((S(4), DeadlineSource::Route))
        );
        assert_eq!(
            effective_timeout(Some(S(3)), &r),
            Some((S(3), DeadlineSource::Application)),
            "max_stream_duration is not applied when the header max is set"
        );
        let uncapped = RouteTimeouts {
            grpc_timeout_header_max: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(
            effective_timeout(Some(S(30)), &uncapped),
            Some((S(30), DeadlineSource::Application))
        );
    }

    #[test]
    fn hcm_default_applies_when_route_has_none() {
        let r = RouteTimeouts {
            hcm_max_stream_duration: Some(S(7)),
            ..Default::default()
        };
        assert_eq!(
            effective_timeout(None, &r),
            Some((S(7), DeadlineSource::ConnectionManager))
        );
    }
}
