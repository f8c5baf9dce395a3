//! [`Server`]: the xDS-enabled gRPC server (gRFC A36) on smol.
//!
//! skiff-adapter's [`Server`](skiff_adapter::server) with async-net's `TcpListener`: each
//! accepted connection runs hyper's HTTP/2 server in a task on smol's global executor (its
//! streams' tasks too), over the socket bridged by tokio-util's `compat`; no tokio runtime is
//! involved. The serving mode, filter chains, routes and CSDS are described in
//! [`skiff_adapter::server`].
//!
//! ```no_run
//! # async fn demo(mesh: skiff_smol::Mesh, svc: tonic::service::Routes)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let listener = async_net::TcpListener::bind("0.0.0.0:50051").await?;
//! skiff_smol::Server::builder()
//!     .serving_mode(|addr, mode| println!("{addr}: {mode:?}"))
//!     .serve(&mesh, listener, svc) // e.g. tonic::service::Routes::new(GreeterServer::new(..))
//!     .await?;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use async_net::{TcpListener, TcpStream};
use skiff_adapter::runtime::{CopyIo, HyperExecutor};
use skiff_adapter::server::{Connection, ServeOn, ServerService};
use tokio_util::compat::FuturesAsyncReadCompatExt;

pub use skiff_adapter::server::ServingMode;

use crate::Smol;

/// An xDS-enabled gRPC server (gRFC A36) on smol: `Server::builder()…serve(&mesh, listener,
/// service)`.
pub type Server = skiff_adapter::Server<Smol>;

/// Configures a [`Server`].
pub type ServerBuilder = skiff_adapter::ServerBuilder<Smol>;

impl ServeOn for Smol {
    type Listener = TcpListener;
    type Stream = TcpStream;

    fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        let local = stream.local_addr()?;
        // Unary replies must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok((stream, local, peer))
    }

    fn serve_connection<S: ServerService>(stream: TcpStream, connection: Connection<S>) {
        let exec = HyperExecutor(Arc::new(Smol));
        smol::spawn(connection.serve(CopyIo::new(stream.compat()), exec)).detach();
    }
}
