//! # skiff-adapter: the runtime-independent half of every skiff runtime adapter
//!
//! skiff-core is sans-IO; a runtime adapter moves its bytes and keeps its time. Most of that
//! work does not depend on the runtime, and lives here once:
//!
//! - [`mesh`]: the proxyless service mesh: [`Mesh`] (the core behind one short-held lock, one
//!   ADS stream, one HTTP/2 connection per endpoint) and its tonic-compatible [`Channel`]s,
//!   with the call path (retries, deadlines, cancellation, gRPC status mapping), bodies,
//!   headers and plain `dns:`/`host:port` targets.
//! - [`ads`]: the ADS transport (one HTTP/2 connection, one bidirectional gRPC stream over h2)
//!   and a driver task for tools that only read xDS, with a [`DriverHandle`].
//! - [`connect`]: control-plane targets (`host:port`, `dns:///`, `unix:///`) and `tls` channel
//!   credentials.
//! - [`shard`]: one xDS client feeding many data planes ([`XdsShard`]), for thread-per-core
//!   runtimes: the snapshot is built once and shared as `Arc<Snapshot>`.
//! - [`server`]: the xDS-enabled gRPC server (gRFC A36) with CSDS on the app, for every
//!   runtime that implements [`server::ServeOn`].
//! - [`runtime`]: the seam: [`Runtime`] (spawn, sleep until, resolve, dial TCP/unix, TLS
//!   handshake, hyper IO) and [`Flavor`] (how a [`Mesh`] finds the runtime it is built on).
//!
//! A runtime crate (skiff-tokio, skiff-smol) implements [`Runtime`] in a few dozen lines and
//! re-exports this crate's API with its flavor filled in
//! (`type Mesh = skiff_adapter::Mesh<Tokio>`).
//!
//! ## The run loop
//!
//! One driver task per mesh waits for (ADS stream event | driver timer | wake-up), applies one
//! input to the core under its lock, drains `poll_output` (spawning subchannel connections and
//! ADS streams on the runtime, waking RPCs), and re-arms its timer from `poll_timeout` with
//! [`Runtime::sleep_until`]. RPCs call into the core directly from the caller's task and go
//! straight to a subchannel's HTTP/2 sender: the per-RPC path makes no runtime call.
//! Synchronisation uses `tokio::sync`, which needs no tokio runtime.

pub mod ads;
pub mod connect;
pub mod grpc;
pub mod mesh;
pub mod runtime;
pub mod server;
pub mod shard;

pub use ads::{
    AdsAction, AdsMachine, AdsStatus, DriverClosed, DriverHandle, DriverOptions, Timeline,
    USER_AGENT, random_seed, spawn_driver, spawn_xds_client,
};
pub use connect::{ConnectError, Endpoint, TlsFiles, XdsServerTarget};
pub use grpc::code_name;
pub use mesh::{
    BoxError, Channel, HeaderMapSource, Mesh, MeshBuilder, MeshClient, MeshError, MeshEvent,
    MeshOptions, ReportServedBy, ResponseBody, ServedBy, TransportSecurity, WaitForReady,
};
pub use runtime::{BoxIo, Flavor, Rt, Runtime};
pub use server::{Server, ServerBuilder, ServerService, ServerXds, ServingMode};
pub use shard::{ShardMachine, XdsShard};
