//! The xDS-enabled gRPC server (gRFC A36), once for every runtime.
//!
//! The server takes its listener configuration from the control plane, over the process's one
//! ADS stream: it watches the Listener named by the bootstrap's
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
//! ## The run loop
//!
//! [`ServerBuilder::serve`] waits for (shutdown signal | configuration change | accepted
//! connection). On a change it resolves a [`ServerView`] from the xDS cache (mode, Listener,
//! RDS route configurations) and publishes it to every connection on a watch channel; an RPC
//! routes against the view it finds there, without touching the xDS client. An accepted
//! connection is admitted by the current view and handed to the runtime ([`ServeOn`]), which
//! runs its HTTP/2 server (hyper) where its sockets live.
//!
//! The xDS view comes from a [`ServerXds`]: a [`Mesh`] (its own xDS client, or the shard that
//! feeds it) or an [`XdsShard`].

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use skiff_core::pb::envoy::service::status::v3::{ClientConfig, ClientStatusResponse};
use skiff_core::resource::listener::FilterChain;
use skiff_core::rng::Rng;
use skiff_core::router::RequestHead;
use skiff_core::server::{ISTIO_SERVER_LISTENER_TEMPLATE, ServerView, listener_name};
use skiff_core::xds::ResourceType;
use tokio::sync::watch;

pub use skiff_core::server::ServingMode;

use crate::mesh::{BoxError, HeaderMapSource, Mesh};
use crate::runtime::{BoxFuture, Flavor, Rt, timeout};
use crate::shard::XdsShard;
use crate::{grpc, random_seed};

/// The CSDS method a skiff app answers (gRFC A40).
pub const CSDS_FETCH_METHOD: &str =
    "/envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus";

/// Where a server's xDS configuration comes from: the process's xDS client.
pub trait ServerXds: Clone + Send + Sync + 'static {
    /// Starts watching the server Listener `name`.
    fn watch_listener(&self, name: &str);
    /// Stops watching it.
    fn unwatch_listener(&self, name: &str);
    /// Moves whenever the configuration does (closed when the xDS client stops).
    fn changes(&self) -> watch::Receiver<u64>;
    /// The server's view now.
    fn view(&self, name: &str, addr: SocketAddr) -> BoxFuture<ServerView>;
    /// The process's xDS view for CSDS (`None` if the xDS client has stopped).
    fn client_status(&self) -> BoxFuture<Option<ClientConfig>>;
}

impl<F: Flavor> ServerXds for Mesh<F> {
    fn watch_listener(&self, name: &str) {
        match self.feed() {
            Some(shard) => shard.watch_listener(name),
            None => self.with_core(|core, now| {
                core.watch_resource(now, ResourceType::Listener, name);
            }),
        }
    }

    fn unwatch_listener(&self, name: &str) {
        match self.feed() {
            Some(shard) => shard.unwatch_listener(name),
            None => self.with_core(|core, now| {
                core.unwatch_resource(now, ResourceType::Listener, name);
            }),
        }
    }

    fn changes(&self) -> watch::Receiver<u64> {
        match self.feed() {
            Some(shard) => shard.changes(),
            None => self.generation(),
        }
    }

    fn view(&self, name: &str, addr: SocketAddr) -> BoxFuture<ServerView> {
        match self.feed() {
            Some(shard) => shard.view(name, addr),
            None => {
                let v = self.read(|core| ServerView::resolve(core.xds(), name, addr));
                Box::pin(std::future::ready(v))
            }
        }
    }

    fn client_status(&self) -> BoxFuture<Option<ClientConfig>> {
        match self.feed() {
            Some(shard) => shard.client_status(),
            None => {
                let c = self.read(|core| core.xds().csds_client_config());
                Box::pin(std::future::ready(Some(c)))
            }
        }
    }
}

impl ServerXds for XdsShard {
    fn watch_listener(&self, name: &str) {
        let name = name.to_string();
        if self
            .driver()
            .post(move |m, now| m.watch_server_listener(now, &name))
            .is_err()
        {
            tracing::warn!("the xDS shard has stopped; the server gets no configuration");
        }
    }

    fn unwatch_listener(&self, name: &str) {
        let name = name.to_string();
        let _ = self
            .driver()
            .post(move |m, now| m.unwatch_server_listener(now, &name));
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.driver().generation()
    }

    fn view(&self, name: &str, addr: SocketAddr) -> BoxFuture<ServerView> {
        let (driver, name) = (self.driver().clone(), name.to_string());
        Box::pin(async move {
            driver
                .read(move |m| ServerView::resolve(m.xds(), &name, addr))
                .await
                .unwrap_or_else(|_| ServerView::not_serving("the xDS shard has stopped"))
        })
    }

    fn client_status(&self) -> BoxFuture<Option<ClientConfig>> {
        let driver = self.driver().clone();
        Box::pin(async move { driver.read(|m| m.xds().csds_client_config()).await.ok() })
    }
}

/// A runtime that can run [`Server`]s: its listener, how it accepts, and where a connection's
/// HTTP/2 server runs. Implemented by each runtime crate for its flavor.
pub trait ServeOn: Flavor {
    /// The listening socket the application binds (tokio's, async-net's, glommio's
    /// `TcpListener`).
    type Listener;
    /// An accepted connection.
    type Stream;

    /// The address `listener` is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Accepts one connection: the stream, its local address and the peer's.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr, SocketAddr)>>;

    /// Runs `connection` on `stream` in the background (see [`Connection::serve`]).
    fn serve_connection<S: ServerService>(stream: Self::Stream, connection: Connection<S>);
}

/// A service the server can run: tonic's `Routes` (or any generated server), or any tower
/// service of HTTP requests with a `Send` future and body.
pub trait ServerService:
    tower_service::Service<
        Request<Incoming>,
        Response = Response<Self::ResponseBody>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
    /// The response body.
    type ResponseBody: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> ServerService for S
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type ResponseBody = B;
}

type ModeCallback = Arc<dyn Fn(SocketAddr, &ServingMode) + Send + Sync>;

/// An xDS-enabled gRPC server (gRFC A36) on the runtime `F`. See the [module docs](self).
pub struct Server<F>(PhantomData<fn() -> F>);

impl<F> fmt::Debug for Server<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Server")
    }
}

impl<F: ServeOn> Server<F> {
    /// A builder in tonic's style.
    pub fn builder() -> ServerBuilder<F> {
        ServerBuilder {
            on_mode: None,
            template: None,
            drain_grace: Duration::from_secs(10),
            csds: true,
            flavor: PhantomData,
        }
    }
}

/// Configures a [`Server`].
pub struct ServerBuilder<F> {
    on_mode: Option<ModeCallback>,
    template: Option<String>,
    drain_grace: Duration,
    csds: bool,
    flavor: PhantomData<fn() -> F>,
}

impl<F> fmt::Debug for ServerBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("template", &self.template)
            .field("drain_grace", &self.drain_grace)
            .field("csds", &self.csds)
            .finish_non_exhaustive()
    }
}

impl<F: ServeOn> ServerBuilder<F> {
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

    /// Serves `service` (e.g. tonic's `Routes`) on `listener` until the process ends, with the
    /// configuration of `xds` (a mesh, or an xDS shard).
    pub async fn serve<X, S>(self, xds: &X, listener: F::Listener, service: S) -> io::Result<()>
    where
        X: ServerXds,
        S: ServerService,
    {
        self.serve_with_shutdown(xds, listener, service, std::future::pending())
            .await
    }

    /// Like [`ServerBuilder::serve`], stopping (and draining connections) when `signal`
    /// completes.
    pub async fn serve_with_shutdown<X, S>(
        self,
        xds: &X,
        listener: F::Listener,
        service: S,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        X: ServerXds,
        S: ServerService,
    {
        let rt = F::current().ok_or_else(|| {
            io::Error::other(format!(
                "skiff's server must run inside a {} runtime",
                F::NAME
            ))
        })?;
        let addr = F::local_addr(&listener)?;
        let template = self
            .template
            .as_deref()
            .unwrap_or(ISTIO_SERVER_LISTENER_TEMPLATE);
        let name = listener_name(template, addr);
        // Subscribe before watching, so the first answer is not missed.
        let mut changes = xds.changes();
        xds.watch_listener(&name);
        let _unwatch = Unwatch {
            xds: xds.clone(),
            name: name.clone(),
        };
        let first = xds.view(&name, addr).await;
        if let Some(cb) = &self.on_mode {
            cb(addr, &first.mode);
        }
        let (view_tx, view_rx) = watch::channel(Arc::new(first));
        let (stop_tx, stop_rx) = watch::channel(false);
        let csds = self.csds.then(|| {
            let xds = xds.clone();
            Arc::new(move || xds.client_status()) as StatusFn
        });
        let mut signal = std::pin::pin!(signal);
        let mut accepting = Box::pin(F::accept(&listener));
        loop {
            tokio::select! {
                _ = &mut signal => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let next = xds.view(&name, addr).await;
                    let prev_mode = view_rx.borrow().mode.clone();
                    if next.mode != prev_mode {
                        tracing::info!(%addr, listener = %name, mode = ?next.mode, "serving mode");
                        if let Some(cb) = &self.on_mode {
                            cb(addr, &next.mode);
                        }
                    }
                    view_tx.send_replace(Arc::new(next));
                }
                accepted = &mut accepting => {
                    accepting = Box::pin(F::accept(&listener));
                    let (stream, local, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Transient accept errors (EMFILE, ECONNABORTED) must not end the
                            // server.
                            tracing::warn!(%addr, error = %e, "accept failed");
                            rt.sleep_until(Instant::now() + Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let view = Arc::clone(&view_rx.borrow());
                    let Some(chain) = admit(&view, addr, local, peer) else {
                        continue;
                    };
                    let connection = Connection {
                        routed: Routed {
                            inner: service.clone(),
                            view: view_rx.clone(),
                            chain: Arc::new(chain),
                            rng: Arc::new(Mutex::new(Rng::new(random_seed()))),
                            csds: csds.clone(),
                        },
                        stop: stop_rx.clone(),
                        grace: self.drain_grace,
                        rt: Arc::clone(&rt),
                    };
                    F::serve_connection(stream, connection);
                }
            }
        }
        let _ = stop_tx.send(true);
        Ok(())
    }
}

/// The filter chain for a new connection, or `None` (with why, logged): close it.
fn admit(
    view: &ServerView,
    addr: SocketAddr,
    local: SocketAddr,
    peer: SocketAddr,
) -> Option<FilterChain> {
    let (ServingMode::Serving, Some(l)) = (&view.mode, &view.listener) else {
        tracing::debug!(%addr, %peer, "not serving: connection closed");
        return None;
    };
    let Some(chain) = skiff_core::server::select_filter_chain(l, local, peer) else {
        tracing::debug!(%addr, %peer, "no filter chain matches: connection closed");
        return None;
    };
    if chain.tls.is_some() {
        tracing::warn!(%addr, %peer, chain = %chain.name,
            "the filter chain requires TLS, which skiff's server does not terminate yet: connection closed");
        return None;
    }
    Some(chain.clone())
}

/// Stops watching the server's Listener when the server ends.
struct Unwatch<X: ServerXds> {
    xds: X,
    name: String,
}

impl<X: ServerXds> Drop for Unwatch<X> {
    fn drop(&mut self) {
        self.xds.unwatch_listener(&self.name);
    }
}

type StatusFn = Arc<dyn Fn() -> BoxFuture<Option<ClientConfig>> + Send + Sync>;

/// One admitted connection, for the runtime to run ([`ServeOn::serve_connection`]).
pub struct Connection<S> {
    routed: Routed<S>,
    stop: watch::Receiver<bool>,
    grace: Duration,
    rt: Rt,
}

impl<S> fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("chain", &self.routed.chain.name)
            .finish_non_exhaustive()
    }
}

impl<S> Connection<S>
where
    S: ServerService,
{
    /// Runs hyper's HTTP/2 server on `io`, spawning stream tasks with `executor`, until the
    /// connection ends; a GOAWAY and a bounded drain when the server stops serving or shuts
    /// down (gRFC A36: existing connections are drained, not cut).
    pub async fn serve<I, E>(self, io: I, executor: E)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
        E: hyper::rt::bounds::Http2ServerConnExec<RoutedFuture, ReplyBody>,
    {
        let Connection {
            routed,
            mut stop,
            grace,
            rt,
        } = self;
        let mut view = routed.view.clone();
        let conn = hyper::server::conn::http2::Builder::new(executor).serve_connection(io, routed);
        let mut conn = std::pin::pin!(conn);
        let draining = async {
            loop {
                tokio::select! {
                    r = view.changed() => {
                        if r.is_err() || !view.borrow().mode.is_serving() {
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
        conn.as_mut().graceful_shutdown();
        let _ = timeout(&*rt, grace, conn).await;
    }
}

/// The user's service behind the chain's routes.
struct Routed<S> {
    inner: S,
    view: watch::Receiver<Arc<ServerView>>,
    chain: Arc<FilterChain>,
    rng: Arc<Mutex<Rng>>,
    csds: Option<StatusFn>,
}

impl<S: Clone> Clone for Routed<S> {
    fn clone(&self) -> Self {
        Routed {
            inner: self.inner.clone(),
            view: self.view.clone(),
            chain: Arc::clone(&self.chain),
            rng: Arc::clone(&self.rng),
            csds: self.csds.clone(),
        }
    }
}

/// A response body of the server.
pub type ReplyBody = UnsyncBoxBody<Bytes, BoxError>;
type Reply = Response<ReplyBody>;
/// The future of one RPC on the server.
pub type RoutedFuture = Pin<Box<dyn Future<Output = Result<Reply, BoxError>> + Send>>;

impl<S> hyper::service::Service<Request<Incoming>> for Routed<S>
where
    S: ServerService,
{
    type Response = Reply;
    type Error = BoxError;
    type Future = RoutedFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if let Some(status) = &self.csds
            && req.uri().path() == CSDS_FETCH_METHOD
        {
            // gRFC A40: the app's own xDS view, answered by skiff (not routed: it is an admin
            // service, as grpc-go's admin server is).
            let config = status();
            return Box::pin(async move {
                Ok(match config.await {
                    Some(c) => csds_response(c),
                    None => unavailable("the xDS client has stopped"),
                })
            });
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
            self.view
                .borrow()
                .route(&self.chain, authority, &head, &mut rng)
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
    h.extend(grpc::status_trailers(
        skiff_core::grpc::status::Code::Unavailable as u32,
        message,
    ));
    r
}

/// `FetchClientStatus`'s answer: one `ClientConfig`, this process's.
fn csds_response(config: ClientConfig) -> Reply {
    let response = ClientStatusResponse {
        config: vec![config],
    };
    let mut buf = bytes::BytesMut::new();
    skiff_core::grpc::codec::encode_frame(&response, &mut buf);
    let trailers = grpc::status_trailers(0, "");
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
