//! Subchannels: one HTTP/2 connection per endpoint the mesh uses.
//!
//! On `Output::Connect` the mesh spawns [`run`]: dial (TCP_NODELAY), secure the stream when the
//! cluster asks for TLS (through [`TransportSecurity`]), HTTP/2 handshake (hyper, keepalive
//! pings), then report `Ready` with the connection's sender in the shared table. When the
//! connection ends (peer closed it, GOAWAY, keepalive timeout) it reports `Idle`; a failed
//! connection attempt reports `TransientFailure` (the core reconnects after backoff). On
//! `Output::Disconnect` the table entry is dropped, which stops the task; requests in flight on
//! the connection finish (hyper drives each stream in its own task) and the connection closes.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use skiff_core::ids::SubchannelId;
use skiff_core::resource::cluster::ClusterConfig;
use tokio::sync::oneshot;

use super::Shared;
use super::body::AttemptBody;
use crate::connect::BoxIo;
use crate::runtime::{
    BoxFuture, BoxHyperIo, Http2Settings, HyperExecutor, HyperTimer, Rt, Runtime, timeout,
};

/// The future [`TransportSecurity::secure`] returns.
pub type SecureFuture = Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send>>;

/// Secures connections to clusters whose xDS configuration asks for TLS (an
/// `UpstreamTlsContext` transport socket; Istio's `ISTIO_MUTUAL`).
///
/// This is the extension point for mTLS: an implementation gets the fresh TCP stream, the
/// endpoint and the validated cluster (its `tls` carries the certificate-provider instances and
/// SAN matchers to verify) and returns the secured stream, which must have negotiated ALPN
/// `h2`. Without one, skiff refuses to connect to TLS clusters (fails closed: it never falls
/// back to plaintext). Plaintext clusters use h2c with prior knowledge.
pub trait TransportSecurity: fmt::Debug + Send + Sync + 'static {
    /// Wraps `tcp`, a connection to `address` for `cluster`.
    fn secure(&self, cluster: &ClusterConfig, address: SocketAddr, tcp: BoxIo) -> SecureFuture;
}

/// Connection knobs.
#[derive(Clone, Debug)]
pub(crate) struct ConnectSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
}

/// Dials `address` (TCP_NODELAY), securing it with `security` when the cluster wants TLS.
async fn dial(
    rt: &dyn Runtime,
    address: SocketAddr,
    cluster: &ClusterConfig,
    security: Option<&Arc<dyn TransportSecurity>>,
) -> io::Result<BoxIo> {
    let tcp = rt.connect_tcp(address).await?;
    if cluster.tls.is_none() {
        return Ok(tcp);
    }
    match security {
        Some(s) => s.secure(cluster, address, tcp).await,
        None => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "cluster {} requires TLS and no TransportSecurity is configured \
                 (skiff never falls back to plaintext)",
                cluster.name
            ),
        )),
    }
}

impl ConnectSettings {
    pub(crate) fn http2(&self) -> Http2Settings {
        Http2Settings {
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
        }
    }
}

/// A subchannel connection: the sender, and a future that ends with the connection.
type Opened = (
    hyper::client::conn::http2::SendRequest<AttemptBody>,
    BoxFuture<Result<(), String>>,
);

/// Dials, secures and handshakes a connection to `address` (or lets the runtime do it, see
/// [`Runtime::connect_http2`]). The returned future must be polled for the connection to run.
pub(crate) async fn open(
    rt: &Rt,
    address: SocketAddr,
    cluster: Option<&ClusterConfig>,
    security: Option<&Arc<dyn TransportSecurity>>,
    settings: &ConnectSettings,
) -> Result<Opened, String> {
    if cluster.is_none_or(|c| c.tls.is_none())
        && let Some(connect) = rt.connect_http2(address, &settings.http2())
    {
        let c = connect.await?;
        return Ok((c.send, c.closed));
    }
    let io = match cluster {
        Some(cluster) => dial(&**rt, address, cluster, security).await,
        None => rt.connect_tcp(address).await,
    }
    .map_err(|e| format!("connecting to {address}: {e}"))?;
    let (send, conn) = handshake(rt, io, settings)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {address}: {e}"))?;
    Ok((
        send,
        Box::pin(async move { conn.await.map_err(|e| e.to_string()) }),
    ))
}

/// An HTTP/2 client connection over `io`: the sender and the connection future to drive.
pub(crate) async fn handshake(
    rt: &Rt,
    io: BoxIo,
    settings: &ConnectSettings,
) -> Result<
    (
        hyper::client::conn::http2::SendRequest<AttemptBody>,
        hyper::client::conn::http2::Connection<BoxHyperIo, AttemptBody, HyperExecutor>,
    ),
    hyper::Error,
> {
    let mut b = hyper::client::conn::http2::Builder::new(HyperExecutor(Arc::clone(rt)));
    b.timer(HyperTimer(Arc::clone(rt)));
    settings.http2().apply(&mut b);
    b.handshake(rt.hyper_io(io)).await
}

/// The life of one subchannel connection (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    rt: Rt,
    shared: Weak<Shared>,
    subchannel: SubchannelId,
    epoch: u64,
    address: SocketAddr,
    cluster: Arc<ClusterConfig>,
    security: Option<Arc<dyn TransportSecurity>>,
    settings: Arc<ConnectSettings>,
    mut close: oneshot::Receiver<()>,
) {
    let connect = open(&rt, address, Some(&cluster), security.as_ref(), &settings);
    let connected = tokio::select! {
        r = timeout(&*rt, settings.connect_timeout, connect) => match r {
            Some(r) => r,
            None => Err(format!("connecting to {address} timed out after {:?}", settings.connect_timeout)),
        },
        _ = &mut close => return,
    };
    let (send, mut conn) = match connected {
        Ok(parts) => parts,
        Err(reason) => {
            tracing::debug!(%address, %reason, "subchannel connection failed");
            if let Some(s) = shared.upgrade() {
                s.connect_failed(subchannel, epoch, &reason);
            }
            return;
        }
    };
    match shared.upgrade() {
        Some(s) => {
            if !s.connected(subchannel, epoch, send) {
                return;
            }
        }
        None => return,
    }
    let reason = tokio::select! {
        r = &mut conn => match r {
            Ok(()) => "connection closed".to_string(),
            Err(e) => format!("connection failed: {e}"),
        },
        _ = &mut close => return,
    };
    tracing::debug!(%address, %reason, "subchannel connection ended");
    if let Some(s) = shared.upgrade() {
        let mut st = s.lock();
        s.connection_lost(&mut st, subchannel, epoch, &reason);
        s.flush(&mut st, false);
    }
}
