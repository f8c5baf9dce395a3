//! [`Server`]: the xDS-enabled gRPC server (gRFC A36), thread-per-core on glommio.
//!
//! skiff-adapter's [`Server`](skiff_adapter::server) with glommio's io_uring `TcpListener`.
//! Run one server per executor on the same port: glommio binds with `SO_REUSEPORT`, so the
//! kernel spreads connections over the executors, and each connection (its socket, hyper's
//! HTTP/2 server and its stream tasks) stays on the executor that accepted it. Every server
//! reads the process's one xDS shard (through its executor's data plane): the shard watches the
//! server Listener once, however many executors serve it.
//!
//! ```no_run
//! use skiff_glommio::{Executors, Mesh, Server, XdsServerTarget};
//! # fn demo(routes: tonic::service::Routes) -> Result<(), skiff_glommio::Error> {
//! skiff_glommio::run_per_core(
//!     Executors::per_core(),
//!     || Mesh::builder().xds_server(XdsServerTarget::insecure("127.0.0.1:15010")),
//!     move |core| {
//!         let routes = routes.clone();
//!         async move {
//!             let listener = glommio::net::TcpListener::bind("0.0.0.0:50051")?;
//!             Server::builder().serve(&core.mesh, listener, routes).await
//!         }
//!     },
//! )?;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;

use glommio::net::{TcpListener, TcpStream};
use skiff_adapter::runtime::CopyIo;
use skiff_adapter::server::{Connection, ServeOn, ServerService};
use tokio_util::compat::FuturesAsyncReadCompatExt;

pub use skiff_adapter::server::ServingMode;

use crate::runtime::{Glommio, LocalExec};

/// An xDS-enabled gRPC server (gRFC A36) on glommio: `Server::builder()…serve(&core.mesh,
/// listener, service)` on each executor.
pub type Server = skiff_adapter::Server<Glommio>;

/// Configures a [`Server`].
pub type ServerBuilder = skiff_adapter::ServerBuilder<Glommio>;

impl ServeOn for Glommio {
    type Listener = TcpListener;
    type Stream = TcpStream;

    fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        Ok(listener.local_addr()?)
    }

    async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr, SocketAddr)> {
        let stream = listener.accept().await?;
        let local = stream.local_addr()?;
        let peer = stream.peer_addr()?;
        // Unary replies must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok((stream, local, peer))
    }

    fn serve_connection<S: ServerService>(stream: TcpStream, connection: Connection<S>) {
        // The socket is `!Send`: the connection and its streams stay on this executor.
        glommio::spawn_local(connection.serve(CopyIo::new(stream.compat()), LocalExec)).detach();
    }
}
