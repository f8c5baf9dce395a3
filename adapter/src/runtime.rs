//! The seam between the runtime-independent adapter and one async runtime.
//!
//! Everything the mesh, the ADS transport and the subchannels need from a runtime is in
//! [`Runtime`]: spawning detached tasks, a timer on `std::time::Instant`, DNS, TCP and unix
//! dialing, and the TLS handshake of `tls` channel credentials. The object-safe trait keeps the
//! adapter's types (`Mesh`, `Channel`) the same for every runtime; the costs it adds (a boxed
//! future per spawn or sleep) sit off the per-RPC path, which takes no runtime call at all.
//!
//! Byte streams are [`BoxIo`]: tokio's `AsyncRead`/`AsyncWrite` traits, which need no tokio
//! runtime (h2 is written against them; other runtimes wrap their sockets with
//! `tokio_util::compat`). hyper gets them through [`Runtime::hyper_io`], whose default copies
//! through a small buffer (no `unsafe` here); a runtime whose streams hyper can read in place
//! (hyper-util's `TokioIo`) overrides it.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// A byte stream (TCP, unix, possibly under TLS) with tokio's IO traits.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// A byte stream with hyper's IO traits.
pub trait HyperIo: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static {}
impl<T: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static> HyperIo for T {}

/// A boxed [`HyperIo`].
pub type BoxHyperIo = Box<dyn HyperIo>;

/// A boxed `Send` future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A boxed timer future (hyper's timer wants `Sync` too).
pub type BoxSleep = Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>>;

/// One async runtime, as the adapter uses it. Implementations are small: see skiff-tokio's and
/// skiff-smol's.
pub trait Runtime: fmt::Debug + Send + Sync + 'static {
    /// Runs `task` to completion in the background (the adapter cancels it by dropping what it
    /// waits on, see [`spawn`]).
    fn spawn_detached(&self, task: BoxFuture<()>);

    /// Completes at `at` (at once if it passed).
    fn sleep_until(&self, at: Instant) -> BoxSleep;

    /// Resolves `host` (a name or an IP literal) to socket addresses.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;

    /// Dials `addr` over TCP with `TCP_NODELAY` set.
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxIo>>;

    /// Dials a unix-domain socket.
    fn connect_unix(&self, path: &Path) -> BoxFuture<io::Result<BoxIo>>;

    /// The client side of a TLS handshake over `io` (`tls` channel credentials).
    fn tls_connect(
        &self,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        io: BoxIo,
    ) -> BoxFuture<io::Result<BoxIo>>;

    /// `io` for hyper. The default copies through a buffer; override it when hyper can read the
    /// runtime's streams in place.
    fn hyper_io(&self, io: BoxIo) -> BoxHyperIo {
        Box::new(CopyIo::new(io))
    }

    /// Opens a plaintext (h2c) subchannel connection to `addr` itself: for runtimes whose
    /// sockets are not `Send` (glommio's), which keep the socket and the connection task on
    /// their own thread and hand back only the (`Send`) sender. `None`, the default: the
    /// adapter dials with [`Runtime::connect_tcp`] and drives hyper over [`Runtime::hyper_io`].
    fn connect_http2(
        &self,
        addr: SocketAddr,
        settings: &Http2Settings,
    ) -> Option<BoxFuture<Result<Http2Conn, String>>> {
        let _ = (addr, settings);
        None
    }
}

/// HTTP/2 settings of subchannel connections.
#[derive(Clone, Copy, Debug)]
pub struct Http2Settings {
    /// Keepalive ping interval (`None`: no pings).
    pub keepalive_interval: Option<Duration>,
    /// How long a ping may go unanswered.
    pub keepalive_timeout: Duration,
}

impl Http2Settings {
    /// Applies these settings to a hyper client builder.
    pub fn apply<E: Clone>(&self, b: &mut hyper::client::conn::http2::Builder<E>) {
        if let Some(interval) = self.keepalive_interval {
            b.keep_alive_interval(interval)
                .keep_alive_timeout(self.keepalive_timeout)
                .keep_alive_while_idle(true);
        }
    }
}

/// A subchannel connection opened by [`Runtime::connect_http2`].
pub struct Http2Conn {
    /// Sends requests on the connection.
    pub send: hyper::client::conn::http2::SendRequest<crate::mesh::AttemptBody>,
    /// Completes when the connection ends (`Err` with the reason if it failed).
    pub closed: BoxFuture<Result<(), String>>,
}

impl fmt::Debug for Http2Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Conn").finish_non_exhaustive()
    }
}

/// A shared runtime.
pub type Rt = Arc<dyn Runtime>;

/// A background task started by [`spawn`]: dropping the handle cancels the task (it is dropped
/// at its next wake-up); [`Task::join`] waits for it to end.
#[derive(Debug)]
pub struct Task {
    cancel: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<()>,
}

impl Task {
    /// Waits until the task completed or was cancelled, without cancelling it.
    pub async fn join(mut self) {
        let cancel = self.cancel.take();
        let _ = (&mut self.done).await;
        drop(cancel);
    }
}

/// Spawns `task` on `rt`, cancelled when the returned [`Task`] is dropped.
pub fn spawn(rt: &dyn Runtime, task: impl Future<Output = ()> + Send + 'static) -> Task {
    let (cancel_tx, mut cancel_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    rt.spawn_detached(Box::pin(async move {
        let mut task = std::pin::pin!(task);
        std::future::poll_fn(|cx| {
            if task.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            // Closed (the handle was dropped) cancels; a value is never sent.
            match Pin::new(&mut cancel_rx).poll(cx) {
                Poll::Ready(_) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        drop(done_tx);
    }));
    Task {
        cancel: Some(cancel_tx),
        done: done_rx,
    }
}

/// `f`, or `None` if `limit` passes first.
pub async fn timeout<F: Future>(rt: &dyn Runtime, limit: Duration, f: F) -> Option<F::Output> {
    match Instant::now().checked_add(limit) {
        Some(at) => timeout_at(rt, at, f).await,
        None => Some(f.await),
    }
}

/// `f`, or `None` if `at` passes first.
pub async fn timeout_at<F: Future>(rt: &dyn Runtime, at: Instant, f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut sleep = rt.sleep_until(at);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// hyper's executor over a [`Runtime`].
#[derive(Clone, Debug)]
pub struct HyperExecutor(pub Rt);

impl<F> hyper::rt::Executor<F> for HyperExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn_detached(Box::pin(async move {
            fut.await;
        }));
    }
}

/// hyper's timer over a [`Runtime`] (keepalive pings).
#[derive(Clone, Debug)]
pub struct HyperTimer(pub Rt);

struct HyperSleep(BoxSleep);

impl Future for HyperSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let at = Instant::now()
            .checked_add(duration)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        Box::pin(HyperSleep(self.0.sleep_until(at)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(self.0.sleep_until(deadline)))
    }
}

/// hyper IO over tokio IO, copying each read through a buffer (hyper's in-place read API is
/// `unsafe`, which this workspace forbids).
pub struct CopyIo<T> {
    io: T,
    buf: Box<[u8]>,
}

impl<T> fmt::Debug for CopyIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyIo").finish_non_exhaustive()
    }
}

impl<T> CopyIo<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> Self {
        CopyIo {
            io,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
        }
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for CopyIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut cursor: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = cursor.remaining().min(this.buf.len());
        let mut rb = ReadBuf::new(&mut this.buf[..n]);
        match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                cursor.put_slice(rb.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for CopyIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// A runtime family, as a type: how a [`crate::Mesh`] finds its runtime when it is built.
/// skiff-tokio's `Mesh` is `skiff_adapter::Mesh<Tokio>`, skiff-smol's `Mesh<Smol>`.
pub trait Flavor: 'static {
    /// The runtime's name, for errors.
    const NAME: &'static str;
    /// The runtime the calling code runs on (`None` outside of one).
    fn current() -> Option<Rt>;
}
