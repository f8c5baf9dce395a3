//! [`Smol`]: skiff-adapter's [`Runtime`] on smol.
//!
//! Tasks go to smol's global executor (`smol::spawn`), timers are async-io's, sockets and DNS
//! are async-net's, TLS is futures-rustls. async-net streams speak futures-io; tokio-util's
//! `compat` turns them into the tokio IO traits h2 and the adapter are written against. That
//! bridge is a pair of trait impls, not a runtime: no tokio runtime, reactor or thread exists in
//! a skiff-smol process (the tests assert it).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustls_pki_types::ServerName;
use skiff_adapter::runtime::{BoxFuture, BoxIo, BoxSleep, Flavor, Rt, Runtime};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// smol's global executor, async-io's timers and async-net's sockets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Runtime for Smol {
    fn spawn_detached(&self, task: BoxFuture<()>) {
        smol::spawn(task).detach();
    }

    fn sleep_until(&self, at: Instant) -> BoxSleep {
        Box::pin(async move {
            async_io::Timer::at(at).await;
        })
    }

    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        let host = host.to_string();
        Box::pin(async move { async_net::resolve((host.as_str(), port)).await })
    }

    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxIo>> {
        Box::pin(async move {
            let tcp = async_net::TcpStream::connect(addr).await?;
            // Small messages (ACKs, unary RPCs) must not wait for Nagle.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%addr, "TCP_NODELAY: {e}");
            }
            Ok(Box::new(tcp.compat()) as BoxIo)
        })
    }

    fn connect_unix(&self, path: &Path) -> BoxFuture<io::Result<BoxIo>> {
        let path = path.to_path_buf();
        Box::pin(async move {
            let s = async_net::unix::UnixStream::connect(path).await?;
            Ok(Box::new(s.compat()) as BoxIo)
        })
    }

    fn tls_connect(
        &self,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        io: BoxIo,
    ) -> BoxFuture<io::Result<BoxIo>> {
        Box::pin(async move {
            // futures-rustls speaks futures-io: bridge the stream there and back.
            let s = futures_rustls::TlsConnector::from(config)
                .connect(name, io.compat())
                .await?;
            Ok(Box::new(s.compat()) as BoxIo)
        })
    }
}

impl Flavor for Smol {
    const NAME: &'static str = "smol";

    /// smol's global executor is always there.
    fn current() -> Option<Rt> {
        Some(Arc::new(Smol))
    }
}
