//! [`Server`]: an xDS-enabled gRPC server (gRFC A36) on tokio.
//!
//! The server takes its listener configuration from the control plane, over the mesh's one ADS
//! stream: it watches the Listener named by the bootstrap's
//! `server_listener_resource_name_template` with `%s` = its `ip:port` (istiod:
//! `xds.istio.io/grpc/lds/inbound/10.0.0.1:50051`). The decisions are skiff-core's
//! ([`skiff_core::server`]); this module moves the bytes:
//!
//! - **serving mode**: connections are refused until a good server Listener for this address
//!   arrives; when it is deleted or found not to exist the server stops serving and drains its
//!   connections (HTTP/2 GOAWAY, in-flight RPCs finish). Every change is reported to the
//!   [`ServerBuilder::serving_mode`] callback. A rejected update keeps the last good Listener.
//! - **filter chains**: each accepted connection gets the chain its destination and source
//!   select; no chain and no default chain closes it. Chains that terminate TLS are refused
//!   until skiff's mTLS support lands (the chain's `tls` is the hook).
//! - **CSDS** (gRFC A40): `FetchClientStatus` is answered with the process's own xDS view
//!   (disable with [`ServerBuilder::csds`]).
//! - **routes**: each RPC is routed in its chain's route configuration and must match a route
//!   with `non_forwarding_action`; otherwise it fails with UNAVAILABLE before reaching the
//!   service.
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

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::time::Duration;

use crate::control_plane::CSDS_FETCH_METHOD;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use skiff_core::resource::listener::{FilterChain, ServerListener};
use skiff_core::rng::Rng;
use skiff_core::router::RequestHead;
use skiff_core::server::{
    ISTIO_SERVER_LISTENER_TEMPLATE, listener_name, route_rpc, select_filter_chain, serving_state,
};
use skiff_core::xds::ResourceType;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use skiff_core::server::ServingMode;

use crate::{BoxError, HeaderMapSource, Mesh, random_seed};

type ModeCallback = Arc<dyn Fn(SocketAddr, &ServingMode) + Send + Sync>;

/// An xDS-enabled gRPC server (gRFC A36). See the [module docs](self).
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder in tonic's style.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            on_mode: None,
            template: None,
            drain_grace: Duration::from_secs(10),
            csds: true,
        }
    }
}

/// Configures a [`Server`].
pub struct ServerBuilder {
    on_mode: Option<ModeCallback>,
    template: Option<String>,
    drain_grace: Duration,
    csds: bool,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("template", &self.template)
            .field("drain_grace", &self.drain_grace)
            .finish_non_exhaustive()
    }
}

/// What the accept loop knows about the Listener.
#[derive(Clone)]
struct State {
    mode: ServingMode,
    listener: Option<Arc<ServerListener>>,
}

impl ServerBuilder {
    /// Called with the listening address and the new mode whenever the serving mode changes
    /// (first with the initial not-serving state while the Listener is awaited).
    pub fn serving_mode(
        mut self,
        f: impl Fn(SocketAddr, &ServingMode) + Send + Sync + 'static,
    ) -> Self {
        self.on_mode = Some(Arc::new(f));
        self
    }

    /// The bootstrap's `server_listener_resource_name_template` (`%s` = `ip:port`); istiod's
    /// `xds.istio.io/grpc/lds/inbound/%s` by default.
    pub fn listener_template(mut self, template: impl Into<String>) -> Self {
        self.template = Some(template.into());
        self
    }

    /// How long connections get to finish their RPCs after a GOAWAY when the server stops
    /// serving (default 10 s).
    pub fn drain_grace(mut self, d: Duration) -> Self {
        self.drain_grace = d;
        self
    }

    /// Whether the server also answers CSDS `FetchClientStatus` (gRFC A40) with this
    /// process's xDS view — what it subscribed to, ACKed, NACKed and why — so `skiff
    /// config-dump HOST:PORT` (or any CSDS client) can inspect a running app. On by default.
    pub fn csds(mut self, on: bool) -> Self {
        self.csds = on;
        self
    }

    /// Serves `service` (e.g. tonic's `Routes`) on `listener` until the process ends.
    pub async fn serve<S, B>(self, mesh: &Mesh, listener: TcpListener, service: S) -> io::Result<()>
    where
        S: tower_service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.serve_with_shutdown(mesh, listener, service, std::future::pending())
            .await
    }

    /// Like [`ServerBuilder::serve`], stopping (and draining connections) when `signal`
    /// completes.
    pub async fn serve_with_shutdown<S, B>(
        self,
        mesh: &Mesh,
        listener: TcpListener,
        service: S,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: tower_service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let addr = listener.local_addr()?;
        let template = self
            .template
            .as_deref()
            .unwrap_or(ISTIO_SERVER_LISTENER_TEMPLATE);
        let name = listener_name(template, addr);
        mesh.with_core(|core, now| core.watch_resource(now, ResourceType::Listener, &name));
        let _unwatch = Unwatch {
            mesh: mesh.clone(),
            name: name.clone(),
        };

        let compute = |mesh: &Mesh| -> State {
            let (mode, l) = mesh.read(|core| serving_state(core.xds(), &name, addr));
            State {
                mode,
                listener: l.map(Arc::new),
            }
        };
        let first = compute(mesh);
        if let Some(cb) = &self.on_mode {
            cb(addr, &first.mode);
        }
        let (state_tx, state_rx) = watch::channel(first);
        let mut generation = mesh.generation();
        let mut signal = std::pin::pin!(signal);
        let (stop_tx, stop_rx) = watch::channel(false);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                changed = generation.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let next = compute(mesh);
                    let prev_mode = state_rx.borrow().mode.clone();
                    if next.mode != prev_mode {
                        tracing::info!(%addr, listener = %name, mode = ?next.mode, "serving mode");
                        if let Some(cb) = &self.on_mode {
                            cb(addr, &next.mode);
                        }
                    }
                    state_tx.send_replace(next);
                }
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Transient accept errors (EMFILE, ECONNABORTED) must not end the
                            // server.
                            tracing::warn!(%addr, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let state = state_rx.borrow().clone();
                    let (ServingMode::Serving, Some(l)) = (&state.mode, &state.listener) else {
                        tracing::debug!(%addr, %peer, "not serving: connection closed");
                        continue;
                    };
                    let local = stream.local_addr().unwrap_or(addr);
                    let Some(chain) = select_filter_chain(l, local, peer) else {
                        tracing::debug!(%addr, %peer, "no filter chain matches: connection closed");
                        continue;
                    };
                    if chain.tls.is_some() {
                        tracing::warn!(%addr, %peer, chain = %chain.name,
                            "the filter chain requires TLS, which skiff's server does not terminate yet: connection closed");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let routed = Routed {
                        inner: service.clone(),
                        mesh: mesh.clone(),
                        chain: Arc::new(chain.clone()),
                        rng: Arc::new(Mutex::new(Rng::new(random_seed()))),
                        csds: self.csds,
                    };
                    tokio::spawn(serve_connection(
                        stream,
                        routed,
                        state_rx.clone(),
                        stop_rx.clone(),
                        self.drain_grace,
                    ));
                }
            }
        }
        let _ = stop_tx.send(true);
        Ok(())
    }
}

/// Stops watching the server's Listener when the server ends.
struct Unwatch {
    mesh: Mesh,
    name: String,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        self.mesh
            .with_core(|core, now| core.unwatch_resource(now, ResourceType::Listener, &name));
    }
}

/// One HTTP/2 connection; a GOAWAY when the server stops serving or shuts down.
async fn serve_connection<S, B>(
    stream: tokio::net::TcpStream,
    routed: Routed<S>,
    mut state: watch::Receiver<State>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), routed);
    let mut conn = std::pin::pin!(conn);
    let draining = async {
        loop {
            tokio::select! {
                r = state.changed() => {
                    if r.is_err() || !state.borrow().mode.is_serving() {
                        return;
                    }
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "server connection ended");
            }
            return;
        }
        () = draining => {}
    }
    // gRFC A36: existing connections are drained, not cut.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, conn).await;
}

/// The user's service behind the chain's routes.
#[derive(Clone)]
struct Routed<S> {
    inner: S,
    mesh: Mesh,
    chain: Arc<FilterChain>,
    rng: Arc<Mutex<Rng>>,
    csds: bool,
}

type Reply = Response<UnsyncBoxBody<Bytes, BoxError>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for Routed<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, BoxError>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if self.csds && req.uri().path() == CSDS_FETCH_METHOD {
            // gRFC A40: the app's own xDS view, answered by skiff (not routed: it is an admin
            // service, as grpc-go's admin server is).
            let config = self.mesh.read(|core| core.xds().csds_client_config());
            return Box::pin(std::future::ready(Ok(csds_response(config))));
        }
        // Borrowed: the per-RPC path allocates nothing for routing.
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or_default();
        let verdict = {
            let headers = HeaderMapSource(req.headers());
            let head = RequestHead {
                path: req.uri().path(),
                headers: &headers,
                channel_id: 0,
            };
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            self.mesh
                .read(|core| route_rpc(core.xds(), &self.chain, authority, &head, &mut rng))
        };
        if let Err(refused) = verdict {
            return Box::pin(std::future::ready(Ok(unavailable(&refused.0))));
        }
        let mut svc = self.inner.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx: &mut Context<'_>| svc.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let resp = svc.call(req).await.map_err(Into::into)?;
            Ok(resp.map(|b| b.map_err(Into::into).boxed_unsync()))
        })
    }
}

/// A trailers-only gRPC response with UNAVAILABLE.
fn unavailable(message: &str) -> Reply {
    let mut r = Response::new(Empty::new().map_err(|e| match e {}).boxed_unsync());
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    h.extend(skiff_adapter::grpc::status_trailers(
        skiff_core::grpc::status::Code::Unavailable as u32,
        message,
    ));
    r
}

/// `FetchClientStatus`'s answer: one `ClientConfig`, this process's.
fn csds_response(config: skiff_core::pb::envoy::service::status::v3::ClientConfig) -> Reply {
    let response = skiff_core::pb::envoy::service::status::v3::ClientStatusResponse {
        config: vec![config],
    };
    let mut buf = bytes::BytesMut::new();
    skiff_core::grpc::codec::encode_frame(&response, &mut buf);
    let trailers = skiff_adapter::grpc::status_trailers(0, "");
    let body = Full::new(buf.freeze())
        .map_err(|e| match e {})
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed_unsync();
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    r
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State").field("mode", &self.mode).finish()
    }
}
