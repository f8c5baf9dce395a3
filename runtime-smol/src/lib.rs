//! # skiff-smol: skiff on smol
//!
//! The same proxyless service mesh client as skiff-tokio — [`Mesh`], [`MeshBuilder`],
//! [`Channel`] (a `tower::Service` that tonic-generated clients take unchanged), the ADS
//! driver ([`spawn_xds_client`]) and control-plane dialing — on smol, async-io and async-net,
//! with TLS from futures-rustls and no tokio runtime anywhere.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use skiff_smol::{Mesh, XdsServerTarget};
//! smol::block_on(async {
//!     let mesh = Mesh::builder()
//!         .xds_server(XdsServerTarget::insecure("127.0.0.1:15010"))
//!         .node_id("greeter-client-1")
//!         .build()?;
//!     let channel = mesh.channel("xds:///helloworld.Greeter")?;
//!     // let mut client = GreeterClient::new(channel);   // any tonic-generated client
//!     # let _ = channel;
//!     mesh.shutdown().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Services serve with [`Server`], the xDS-enabled gRPC server (gRFC A36) of skiff-tokio
//! with async-net's `TcpListener`: `Server::builder().serve(&mesh, listener, routes)`.
//!
//! ## How it runs
//!
//! Everything but the runtime is skiff-adapter's: this crate is its
//! [`Runtime`](skiff_adapter::Runtime) for smol ([`Smol`]) and the adapter's API with smol
//! filled in (`Mesh = skiff_adapter::Mesh<Smol>`).
//! A mesh's driver task, its ADS stream and every subchannel's HTTP/2 connection (and hyper's
//! per-stream tasks) are spawned on smol's global executor (`SMOL_THREADS` threads, one by
//! default). The driver loop waits for (ADS stream event | async-io timer | wake-up), applies
//! one input to the core, drains its outputs and re-arms its timer; RPCs are picked and sent
//! from the caller's own task, so the executor your code runs on (`smol::block_on`, a
//! `LocalExecutor`, the global one) does not matter.
//!
//! Sockets are async-net's, bridged to the tokio IO traits h2 is written against by
//! tokio-util's `compat` (plain trait impls; `async-compat`, which starts a hidden tokio
//! runtime, is not used). `tokio::sync` channels are used for signalling: they need no runtime.

pub mod runtime;
pub mod server;

pub use runtime::Smol;
pub use server::{Server, ServerBuilder, ServingMode};
pub use skiff_adapter::{
    AdsAction, AdsMachine, AdsStatus, BoxError, Channel, ConnectError, DriverClosed, DriverHandle,
    DriverOptions, Endpoint, HeaderMapSource, MeshError, MeshEvent, MeshOptions, ResponseBody,
    TlsFiles, TransportSecurity, USER_AGENT, WaitForReady, XdsServerTarget, code_name, random_seed,
};

/// Interface-level clients: `mesh.client::<T>()` for a client bound with [`mesh_client!`].
pub use skiff_adapter::{MeshClient, mesh_client};
/// Which endpoint answered: [`ServedBy`] on responses to requests that carry [`ReportServedBy`].
pub use skiff_adapter::{ReportServedBy, ServedBy};

/// The ADS transport and the driver task (skiff-adapter's, on smol).
pub mod ads {
    pub use skiff_adapter::ads::*;

    use std::sync::Arc;

    use skiff_core::rng::Seed;
    use skiff_core::time::Instant;
    use skiff_core::xds::{XdsClient, XdsClientConfig};

    use crate::runtime::Smol;
    use skiff_adapter::connect::{ConnectError, XdsServerTarget};

    /// Starts a driver task for the state machine `make(now)` builds, talking to `target`, on
    /// smol's global executor.
    pub fn spawn_driver<M: AdsMachine>(
        target: &XdsServerTarget,
        options: DriverOptions,
        make: impl FnOnce(Instant) -> M,
    ) -> Result<DriverHandle<M>, ConnectError> {
        skiff_adapter::ads::spawn_driver(Arc::new(Smol), target, options, make)
    }

    /// Starts an [`XdsClient`] on a driver task on smol. `seed` drives its randomness.
    pub fn spawn_xds_client(
        target: &XdsServerTarget,
        config: XdsClientConfig,
        seed: Seed,
        options: DriverOptions,
    ) -> Result<DriverHandle<XdsClient>, ConnectError> {
        skiff_adapter::ads::spawn_xds_client(Arc::new(Smol), target, config, seed, options)
    }
}

/// Dialing the control plane with async-net (and futures-rustls for `tls` credentials).
pub mod connect {
    pub use skiff_adapter::connect::*;

    use crate::runtime::Smol;

    /// Dials `target` once: parse, resolve, connect, TLS.
    pub async fn connect(target: &XdsServerTarget) -> Result<BoxIo, ConnectError> {
        skiff_adapter::connect::connect(&Smol, target).await
    }
}

/// The mesh (skiff-adapter's, on smol).
pub mod mesh {
    pub use skiff_adapter::mesh::{
        BoxError, Channel, HeaderMapSource, MeshError, MeshEvent, MeshOptions, ResponseBody,
        ResponseFuture, SecureFuture, TransportSecurity, WaitForReady,
    };

    /// A proxyless service mesh client on smol. Cheap to clone; create one per process.
    pub type Mesh = skiff_adapter::Mesh<crate::Smol>;

    /// Builds a [`Mesh`]. See [`Mesh::builder`].
    pub type MeshBuilder = skiff_adapter::MeshBuilder<crate::Smol>;
}

pub use ads::{spawn_driver, spawn_xds_client};
pub use mesh::{Mesh, MeshBuilder};
