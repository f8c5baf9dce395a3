//! [`Mesh`]: skiff's proxyless service mesh on tokio (skiff-adapter's mesh, run by [`Tokio`]).
//!
//! See [`skiff_adapter::mesh`] for how it runs. The driver task, subchannel connections and ADS
//! streams are spawned on the tokio runtime the mesh was built in.

pub use skiff_adapter::mesh::{
    BoxError, Channel, HeaderMapSource, MeshError, MeshEvent, MeshOptions, ResponseBody,
    ResponseFuture, SecureFuture, TransportSecurity, WaitForReady,
};

use crate::runtime::Tokio;

/// A proxyless service mesh client on tokio. Cheap to clone: clones share one core, one ADS
/// stream and one connection per endpoint. Create one per process (with [`Mesh::from_env`] or
/// [`Mesh::builder`], inside a tokio runtime) and hand clones around.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use skiff_tokio::{Mesh, XdsServerTarget};
/// let mesh = Mesh::builder()
///     .xds_server(XdsServerTarget::insecure("127.0.0.1:15010"))
///     .node_id("greeter-client-1")
///     .build()?;
/// let channel = mesh.channel("xds:///helloworld.Greeter")?;
/// // let mut client = GreeterClient::new(channel);   // any tonic-generated client
/// # let _ = channel; Ok(()) }
/// ```
pub type Mesh = skiff_adapter::Mesh<Tokio>;

/// Builds a [`Mesh`]. See [`Mesh::builder`].
pub type MeshBuilder = skiff_adapter::MeshBuilder<Tokio>;
