//! The embedded control plane's logic, sans-IO: Istio-style configuration in, xDS out.
//!
//! - [`config`]: a documented subset of Istio's API read from Kubernetes-style YAML, with
//!   line-accurate errors.
//! - [`translate()`]: configuration → xDS resources named and shaped exactly as istiod's proxyless
//!   generator (`pilot/pkg/networking/grpcgen`) emits them, plus interface listeners (DESIGN §7).
//! - [`ads`]: the server side of an ADS stream (SotW and Delta), one state machine per stream.
//! - [`ControlPlane`]: the three glued together, re-translating when the configuration changes
//!   or a server announces the interfaces it serves.
//!
//! Like the rest of the core, nothing here does IO: the adapter decodes gRPC frames into
//! `DiscoveryRequest`s, feeds them in with `now`, and writes out what `poll_output` returns.
#![deny(missing_docs)]

pub mod ads;
pub mod config;
pub mod csds;
pub mod interfaces;
pub mod json;
mod plane;
pub mod resources;
pub mod translate;

pub use plane::{ControlPlane, ControlPlaneDump};
pub use resources::{Resources, VersionedResource};
pub use translate::{Translation, translate};
