//! # skiff-tokio: skiff on tokio
//!
//! The runtime adapter drives skiff-core's sans-IO state machines with tokio: it owns the
//! sockets, TLS, HTTP/2 connections, timers and the clock, and moves bytes only. The
//! runtime-independent half (mesh, call path, ADS transport) is skiff-adapter's; this crate is
//! its tokio [`Runtime`](skiff_adapter::Runtime) ([`Tokio`]: spawn, timers, DNS, TCP/unix,
//! tokio-rustls, hyper-util's in-place IO), the embedded control-plane server, and the same API
//! with tokio filled in (`Mesh = skiff_adapter::Mesh<Tokio>`).
//!
//! - [`mesh`]: the proxyless service mesh: [`Mesh`] (one per process: the core, one ADS stream,
//!   one HTTP/2 connection per endpoint) and its tonic-compatible [`Channel`]s
//!   (`GreeterClient::new(mesh.channel("xds:///helloworld.Greeter")?)`). Start here.
//! - [`connect`]: dialing the control plane (`host:port`, `dns:///host:port`, `unix:///path`,
//!   `unix:path`; `insecure` or `tls` channel credentials, gRFC A65).
//! - [`ads`]: the ADS transport (one HTTP/2 connection, one bidirectional gRPC stream) and the
//!   driver task that owns the state machine, with a [`DriverHandle`] for commands, reads and
//!   events.
//! - [`control_plane`]: the embedded control plane served over gRPC, with a watched YAML file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use skiff_core::xds::{ResourceType, XdsClientConfig};
//! use skiff_tokio::{DriverOptions, XdsServerTarget, spawn_xds_client, random_seed};
//!
//! let node = skiff_core::pb::envoy::config::core::v3::Node { id: "app-1".into(), ..Default::default() };
//! let client = spawn_xds_client(
//!     &XdsServerTarget::insecure("127.0.0.1:15010"),
//!     XdsClientConfig::new(node),
//!     random_seed(),
//!     DriverOptions::default(),
//! )?;
//! client.watch(ResourceType::Listener, "echo.default.svc.cluster.local:7000").await?;
//! let mut generation = client.generation();
//! generation.changed().await?; // the configuration moved
//! println!("{:#?}", client.config_dump().await?);
//! # Ok(()) }
//! ```

pub mod ads;
pub mod connect;
pub mod control_plane;
pub mod mesh;
pub mod runtime;
pub mod server;

pub(crate) use skiff_adapter::grpc;

pub use ads::{
    AdsAction, AdsMachine, AdsStatus, DriverClosed, DriverHandle, DriverOptions, Timeline,
    USER_AGENT, random_seed, spawn_driver, spawn_xds_client,
};
pub use connect::{ConnectError, Endpoint, TlsFiles, XdsServerTarget};
pub use control_plane::{
    ConfigEvent, ConfigSource, ControlPlaneHandle, ControlPlaneOptions, ControlPlaneServer,
    ListenAddr, RunningControlPlane, ServeError, ServerTls,
};
pub use mesh::{
    BoxError, Channel, HeaderMapSource, Mesh, MeshBuilder, MeshError, MeshEvent, MeshOptions,
    ResponseBody, TransportSecurity, WaitForReady,
};
pub use runtime::Tokio;
pub use server::{Server, ServerBuilder, ServingMode};
pub use skiff_adapter::code_name;
/// Interface-level clients: `mesh.client::<T>()` for a client bound with [`mesh_client!`].
pub use skiff_adapter::{MeshClient, ReportServedBy, ServedBy, mesh_client};
