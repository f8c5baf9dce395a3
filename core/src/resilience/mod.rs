//! Resilience building blocks, each a pure value driven by `now` and the seeded RNG: deadlines
//! (gRFC A31), retry backoff and throttling (A44, A6), circuit breaking (A32), outlier detection
//! (A50). The data plane (`plane/`) composes them per call and per cluster.

pub mod circuit_breaker;
pub mod deadline;
pub mod outlier;
pub mod retry;
pub mod throttle;
