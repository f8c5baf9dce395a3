//! [`Tokio`]: skiff-adapter's [`Runtime`] on a tokio runtime.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use skiff_adapter::runtime::{BoxFuture, BoxHyperIo, BoxIo, BoxSleep, Flavor, Rt, Runtime};
use tokio::runtime::Handle;

/// A tokio runtime, by its handle. [`crate::Mesh`] finds it with `Handle::try_current` when it
/// is built.
#[derive(Clone, Debug)]
pub struct Tokio {
    handle: Handle,
}

impl Tokio {
    /// The runtime behind `handle`.
    pub fn new(handle: Handle) -> Self {
        Tokio { handle }
    }

    /// Runs `f` on the runtime (IO resources must be created inside its context, and callers
    /// of a `Channel` may poll from anywhere).
    fn on_runtime<T: Send + 'static>(
        &self,
        f: impl Future<Output = io::Result<T>> + Send + 'static,
    ) -> BoxFuture<io::Result<T>> {
        let task = self.handle.spawn(f);
        Box::pin(async move { task.await.map_err(io::Error::other)? })
    }
}

impl Runtime for Tokio {
    fn spawn_detached(&self, task: BoxFuture<()>) {
        drop(self.handle.spawn(task));
    }

    fn sleep_until(&self, at: Instant) -> BoxSleep {
        // The timer registers with the runtime's driver when created.
        let _context = self.handle.enter();
        Box::pin(tokio::time::sleep_until(at.into()))
    }

    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        let host = host.to_string();
        self.on_runtime(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }

    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxIo>> {
        self.on_runtime(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            // Small messages (ACKs, unary RPCs) must not wait for Nagle.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%addr, "TCP_NODELAY: {e}");
            }
            Ok(Box::new(tcp) as BoxIo)
        })
    }

    fn connect_unix(&self, path: &Path) -> BoxFuture<io::Result<BoxIo>> {
        let path = path.to_path_buf();
        self.on_runtime(async move {
            Ok(Box::new(tokio::net::UnixStream::connect(path).await?) as BoxIo)
        })
    }

    fn tls_connect(
        &self,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        io: BoxIo,
    ) -> BoxFuture<io::Result<BoxIo>> {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(config)
                .connect(name, io)
                .await?;
            Ok(Box::new(s) as BoxIo)
        })
    }

    fn hyper_io(&self, io: BoxIo) -> BoxHyperIo {
        // hyper-util reads tokio streams in place.
        Box::new(TokioIo::new(io))
    }
}

impl Flavor for Tokio {
    const NAME: &'static str = "tokio";

    fn current() -> Option<Rt> {
        Handle::try_current()
            .ok()
            .map(|h| Arc::new(Tokio::new(h)) as Rt)
    }
}
