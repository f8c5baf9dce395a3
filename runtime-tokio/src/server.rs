//! [`Server`]: the xDS-enabled gRPC server (gRFC A36) on tokio.
//!
//! skiff-adapter's [`Server`](skiff_adapter::server) with tokio's `TcpListener`: accepted
//! connections run hyper's HTTP/2 server in their own tokio task, reading the socket in place
//! (hyper-util's `TokioIo`). The serving mode, filter chains, routes and CSDS are described
//! in [`skiff_adapter::server`].
//!
//! ```no_run
//! # async fn demo(mesh: skiff_tokio::Mesh, svc: tonic::service::Routes)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:50051").await?;
//! skiff_tokio::Server::builder()
//!     .serving_mode(|addr, mode| println!("{addr}: {mode:?}"))
//!     .serve(&mesh, listener, svc) // e.g. tonic::service::Routes::new(GreeterServer::new(..))
//!     .await?;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use skiff_adapter::server::{Connection, ServeOn, ServerService};
use tokio::net::{TcpListener, TcpStream};

pub use skiff_adapter::server::ServingMode;

use crate::Tokio;

/// An xDS-enabled gRPC server (gRFC A36) on tokio: `Server::builder()…serve(&mesh, listener,
/// service)`.
pub type Server = skiff_adapter::Server<Tokio>;

/// Configures a [`Server`].
pub type ServerBuilder = skiff_adapter::ServerBuilder<Tokio>;

impl ServeOn for Tokio {
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
        tokio::spawn(connection.serve(TokioIo::new(stream), TokioExecutor::new()));
    }
}
