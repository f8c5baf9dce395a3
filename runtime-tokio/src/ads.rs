//! The ADS transport and the driver task (skiff-adapter's, on tokio).
//!
//! See [`skiff_adapter::ads`] for the run loop. [`spawn_driver`] and [`spawn_xds_client`] start
//! the driver on the current tokio runtime.

pub use skiff_adapter::ads::*;

use std::sync::Arc;

use skiff_core::rng::Seed;
use skiff_core::time::Instant;
use skiff_core::xds::{XdsClient, XdsClientConfig};

use crate::connect::{ConnectError, XdsServerTarget};
use crate::runtime::Tokio;

fn current() -> Arc<Tokio> {
    Arc::new(Tokio::new(tokio::runtime::Handle::current()))
}

/// Starts a driver task for the state machine `make(now)` builds (`now` is the core time at the
/// driver's epoch), talking to `target`. Must be called inside a tokio runtime (it panics
/// otherwise, like `tokio::spawn`). Fails only if the target is malformed or its TLS files
/// cannot be loaded; unreachable control planes are retried with the machine's backoff.
pub fn spawn_driver<M: AdsMachine>(
    target: &XdsServerTarget,
    options: DriverOptions,
    make: impl FnOnce(Instant) -> M,
) -> Result<DriverHandle<M>, ConnectError> {
    skiff_adapter::ads::spawn_driver(current(), target, options, make)
}

/// Starts an [`XdsClient`] on a driver task on the current tokio runtime. `seed` drives its
/// randomness (backoff jitter).
pub fn spawn_xds_client(
    target: &XdsServerTarget,
    config: XdsClientConfig,
    seed: Seed,
    options: DriverOptions,
) -> Result<DriverHandle<XdsClient>, ConnectError> {
    skiff_adapter::ads::spawn_xds_client(current(), target, config, seed, options)
}
