//! Resilience building blocks, each a pure value driven by `now` and the seeded RNG: retry
//! backoff and throttling (gRFC A44, A6), circuit breaking (A32), outlier detection (A50) and
//! fault injection (A33). Deadlines (A31) are computed from the route's
//! [`RouteTimeout`](crate::resource::route::RouteTimeout). The data plane (`plane/`) composes
//! them per call and per cluster.

pub mod circuit_breaker;
pub mod fault;
pub mod outlier;
pub mod retry;
pub mod throttle;
