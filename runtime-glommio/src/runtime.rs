//! [`Glommio`]: skiff-adapter's [`Runtime`] on glommio executors.
//!
//! - Tasks: `glommio::spawn_local` on the executor of the calling thread. A mesh is built on
//!   one executor and used there (its channels may be cloned to other threads, but its tasks
//!   run where it was built).
//! - Subchannel connections (the RPC path): glommio's io_uring `TcpStream`, dialed and driven
//!   by a local task on the mesh's executor ([`Runtime::connect_http2`]); hyper's HTTP/2 client
//!   runs with a local executor, so the `!Send` socket never leaves its thread. Only the
//!   connection's (`Send`) request sender goes to the mesh.
//! - The ADS stream, TLS-secured clusters, plain DNS targets' resolution and timers:
//!   skiff-smol's [`Smol`] runtime (async-net sockets, futures-rustls, async-io timers; the
//!   adapter's byte streams and timers must be `Send`). None of these is on the per-RPC path;
//!   the timers drive the core's deadlines, backoffs and keepalive pings.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use rustls_pki_types::ServerName;
use skiff_adapter::mesh::AttemptBody;
use skiff_adapter::runtime::{
    BoxFuture, BoxIo, BoxSleep, CopyIo, Flavor, Http2Conn, Http2Settings, HyperTimer, Rt, Runtime,
};
use skiff_smol::Smol;
use tokio::sync::oneshot;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// The glommio executor of the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Glommio;

/// hyper's executor for `!Send` futures: the connection's tasks stay on its executor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        glommio::spawn_local(async move {
            fut.await;
        })
        .detach();
    }
}

type Sender = hyper::client::conn::http2::SendRequest<AttemptBody>;

/// Dials `addr` over io_uring and runs the HTTP/2 connection on this executor until it ends or
/// `closed` is dropped (the subchannel let go of it).
async fn run_connection(
    addr: SocketAddr,
    settings: Http2Settings,
    ready: oneshot::Sender<Result<Sender, String>>,
    mut closed: oneshot::Sender<Result<(), String>>,
) {
    let handshake = async {
        let tcp = glommio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        // Small messages (unary RPCs) must not wait for Nagle.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%addr, "TCP_NODELAY: {e}");
        }
        let mut b = hyper::client::conn::http2::Builder::new(LocalExec);
        b.timer(HyperTimer(Arc::new(Glommio) as Rt));
        settings.apply(&mut b);
        b.handshake(CopyIo::new(tcp.compat()))
            .await
            .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))
    };
    let (send, conn) = match handshake.await {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(send)).is_err() {
        return;
    }
    let mut conn = pin!(conn);
    let ended = {
        let mut gone = pin!(closed.closed());
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = conn.as_mut().poll(cx) {
                return Poll::Ready(Some(r.map_err(|e| e.to_string())));
            }
            if gone.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    };
    if let Some(result) = ended {
        let _ = closed.send(result);
    }
}

impl Runtime for Glommio {
    fn spawn_detached(&self, task: BoxFuture<()>) {
        glommio::spawn_local(task).detach();
    }

    // Everything off the per-RPC path is skiff-smol's: async-io timers, async-net sockets and
    // DNS, futures-rustls (the adapter's timers and byte streams must be `Send`, glommio's are
    // not). Its reactor runs on its own thread, independent of the executors.
    fn sleep_until(&self, at: Instant) -> BoxSleep {
        Smol.sleep_until(at)
    }

    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Smol.resolve(host, port)
    }

    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxIo>> {
        Smol.connect_tcp(addr)
    }

    fn connect_unix(&self, path: &Path) -> BoxFuture<io::Result<BoxIo>> {
        Smol.connect_unix(path)
    }

    fn tls_connect(
        &self,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        io: BoxIo,
    ) -> BoxFuture<io::Result<BoxIo>> {
        Smol.tls_connect(config, name, io)
    }

    fn connect_http2(
        &self,
        addr: SocketAddr,
        settings: &Http2Settings,
    ) -> Option<BoxFuture<Result<Http2Conn, String>>> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (closed_tx, closed_rx) = oneshot::channel();
        glommio::spawn_local(run_connection(addr, *settings, ready_tx, closed_tx)).detach();
        Some(Box::pin(async move {
            let send = ready_rx
                .await
                .map_err(|_| format!("the connection task for {addr} ended"))??;
            Ok(Http2Conn {
                send,
                closed: Box::pin(async move {
                    closed_rx
                        .await
                        .unwrap_or_else(|_| Err("the connection task ended".into()))
                }),
            })
        }))
    }
}

impl Flavor for Glommio {
    const NAME: &'static str = "glommio";

    /// The executor of the calling thread (spawning panics outside of one).
    fn current() -> Option<Rt> {
        Some(Arc::new(Glommio))
    }
}
