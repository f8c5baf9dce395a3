//! The embedded control plane, served over gRPC on tokio.
//!
//! [`ControlPlaneServer`] listens on TCP (or a unix socket), speaks HTTP/2 with prior knowledge
//! (h2c) or HTTP/2 over TLS, and serves any number of ADS streams on both methods,
//! `StreamAggregatedResources` (SotW) and `DeltaAggregatedResources`; any other path gets
//! `UNIMPLEMENTED`. Every stream is fed to one shared [`ControlPlane`] (the sans-IO logic in
//! `skiff-core`); its responses are written back as gRPC frames under HTTP/2 flow control, and a
//! stream ends with `grpc-status` trailers (`OK` when the client half-closes, `INVALID_ARGUMENT`
//! for a bad request, `UNAVAILABLE` on shutdown).
//!
//! Configuration comes from Istio-subset YAML (see `skiff_core::control::config`). With a file,
//! a watcher polls its modification time and size every 250 ms; a change is parsed and applied
//! with `set_config`, pushing what changed to every stream. An invalid file is rejected with its
//! line-accurate errors (logged, and published as [`ConfigEvent::Rejected`]) and the previous
//! configuration keeps being served.
//!
//! ```no_run
//! # async fn demo() -> Result<(), skiff_tokio::control_plane::ServeError> {
//! use skiff_tokio::control_plane::{ConfigSource, ControlPlaneServer};
//! let server = ControlPlaneServer::bind("127.0.0.1:15010", ConfigSource::file("mesh.yaml")).await?;
//! println!("listening on {}", server.local_addr());
//! let running = server.spawn();
//! // ...
//! running.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use prost::Message;
use skiff_core::control::ads::{AdsRequest, AdsResponse};
use skiff_core::control::config::{self, ConfigErrors, ConfigWarning};
use skiff_core::control::{ControlPlane, ControlPlaneDump};
use skiff_core::grpc::codec::{FrameDecoder, FrameError, encode_frame};
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use skiff_core::xds::client::{DELTA_METHOD, SOTW_METHOD};
use tokio::net::{TcpListener, ToSocketAddrs, UnixListener};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::ads::Timeline;
use crate::connect::{BoxIo, load_certs, load_key, load_roots, ring_provider};
use crate::grpc::{self, code};

/// Where the mesh configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// A YAML file, watched for changes.
    File(PathBuf),
    /// YAML text, fixed for the server's life (`name` is used in error messages).
    Text {
        /// The name errors are reported under (`mesh.yaml:12: ...`).
        name: String,
        /// The YAML.
        text: String,
    },
}

impl ConfigSource {
    /// A watched file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        ConfigSource::File(path.into())
    }

    /// Fixed text.
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> Self {
        ConfigSource::Text {
            name: name.into(),
            text: text.into(),
        }
    }

    fn name(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Text { name, .. } => name.clone(),
        }
    }
}

/// TLS for the control plane's listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate chaining to it (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// Server knobs.
#[derive(Clone, Debug)]
pub struct ControlPlaneOptions {
    /// TLS; plaintext HTTP/2 (h2c, prior knowledge) when `None`.
    pub tls: Option<ServerTls>,
    /// How often the configuration file is checked for changes.
    pub poll_interval: Duration,
    /// Largest request message accepted.
    pub max_message_size: usize,
    /// On shutdown, how long streams get to receive their `UNAVAILABLE` trailers.
    pub shutdown_grace: Duration,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        ControlPlaneOptions {
            tls: None,
            poll_interval: Duration::from_millis(250),
            max_message_size: skiff_core::grpc::codec::DEFAULT_MAX_MESSAGE_SIZE,
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl ListenAddr {
    /// The TCP address, if it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(a) => Some(*a),
            ListenAddr::Unix(_) => None,
        }
    }
}

/// A client target for this address: `127.0.0.1:15010` or `unix:///path`.
impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) if p.is_absolute() => write!(f, "unix://{}", p.display()),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What happened to a configuration reload.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConfigEvent {
    /// The new configuration is being served.
    Applied {
        /// The file.
        source: String,
        /// What it contains that skiff does not act on.
        warnings: Vec<ConfigWarning>,
    },
    /// The new configuration is invalid; the previous one is still served.
    Rejected {
        /// The file.
        source: String,
        /// Every problem, with its line.
        errors: ConfigErrors,
    },
    /// The file could not be read; the previous configuration is still served.
    Unreadable {
        /// The file.
        source: String,
        /// Why.
        error: String,
    },
}

impl fmt::Display for ConfigEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigEvent::Applied { source, warnings } => {
                write!(f, "{source}: configuration applied")?;
                if !warnings.is_empty() {
                    write!(f, " ({} warnings)", warnings.len())?;
                }
                for w in warnings {
                    write!(f, "\n  {w}")?;
                }
                Ok(())
            }
            ConfigEvent::Rejected { source, errors } => {
                write!(
                    f,
                    "{source}: configuration rejected, still serving the previous one:"
                )?;
                for e in &errors.0 {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
            ConfigEvent::Unreadable { source, error } => write!(
                f,
                "{source}: cannot read the configuration ({error}), still serving the previous one"
            ),
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    Bind {
        /// The address.
        addr: String,
        /// Why.
        error: io::Error,
    },
    /// The configuration file could not be read.
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The initial configuration is invalid.
    Config(ConfigErrors),
    /// The TLS files could not be loaded.
    Tls(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            ServeError::ReadConfig { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            ServeError::Config(e) => write!(f, "invalid configuration:\n{e}"),
            ServeError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

// ---- shared state -------------------------------------------------------------------------

/// What a stream's writer is told to do.
#[derive(Debug)]
enum Outbound {
    Message(Bytes),
    Close(u32, String),
}

#[derive(Debug)]
struct State {
    plane: ControlPlane,
    streams: HashMap<AdsStreamId, mpsc::UnboundedSender<Outbound>>,
    next_stream: u32,
    /// Why the last reload failed (parse or translation errors), cleared by a good one.
    last_rejection: Option<ConfigErrors>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    timeline: Timeline,
    config_events: broadcast::Sender<ConfigEvent>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug elsewhere; the state itself stays usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open_stream(&self) -> (AdsStreamId, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.lock();
        let id = AdsStreamId::new(st.next_stream, 0);
        st.next_stream = st.next_stream.wrapping_add(1);
        st.streams.insert(id, tx);
        (id, rx)
    }

    /// Feeds one request; `Err` carries the status to close the stream with.
    fn request(&self, id: AdsStreamId, request: AdsRequest) -> Result<(), String> {
        let now = self.timeline.now();
        let mut st = self.lock();
        let r = st.plane.handle_request(now, id, request);
        dispatch(&mut st);
        r.map_err(|e| e.to_string())
    }

    /// Queues the final status of a stream after its pending responses.
    fn close_stream(&self, id: AdsStreamId, code: u32, message: String) {
        if let Some(tx) = self.lock().streams.get(&id) {
            let _ = tx.send(Outbound::Close(code, message));
        }
    }

    fn stream_gone(&self, id: AdsStreamId) {
        let now = self.timeline.now();
        let mut st = self.lock();
        if st.streams.remove(&id).is_some() {
            st.plane.handle_stream_closed(now, id);
            dispatch(&mut st);
        }
    }

    fn close_all(&self, code: u32, message: &str) {
        for tx in self.lock().streams.values() {
            let _ = tx.send(Outbound::Close(code, message.to_string()));
        }
    }

    fn reload(&self, source: &str, text: &str) -> ConfigEvent {
        let event = self.apply_text(source, text);
        self.lock().last_rejection = match &event {
            ConfigEvent::Rejected { errors, .. } => Some(errors.clone()),
            _ => None,
        };
        self.publish(event.clone());
        event
    }

    fn apply_text(&self, source: &str, text: &str) -> ConfigEvent {
        match config::parse_str(source, text) {
            Err(errors) => ConfigEvent::Rejected {
                source: source.to_string(),
                errors,
            },
            Ok(loaded) => {
                let now = self.timeline.now();
                let mut st = self.lock();
                match st.plane.set_config(now, loaded.config) {
                    Ok(()) => {
                        dispatch(&mut st);
                        ConfigEvent::Applied {
                            source: source.to_string(),
                            warnings: loaded.warnings,
                        }
                    }
                    Err(errors) => ConfigEvent::Rejected {
                        source: source.to_string(),
                        errors,
                    },
                }
            }
        }
    }

    fn publish(&self, event: ConfigEvent) {
        match &event {
            ConfigEvent::Applied { warnings, .. } if warnings.is_empty() => {
                tracing::info!("{event}");
            }
            ConfigEvent::Applied { .. } => tracing::warn!("{event}"),
            ConfigEvent::Rejected { .. } | ConfigEvent::Unreadable { .. } => {
                tracing::error!("{event}");
            }
        }
        let _ = self.config_events.send(event);
    }
}

/// Routes the control plane's responses to their streams.
fn dispatch(st: &mut State) {
    while let Some((id, response)) = st.plane.poll_output() {
        let mut buf = BytesMut::new();
        match &response {
            AdsResponse::Sotw(r) => encode_frame(r, &mut buf),
            AdsResponse::Delta(r) => encode_frame(r, &mut buf),
        }
        if let Some(tx) = st.streams.get(&id) {
            let _ = tx.send(Outbound::Message(buf.freeze()));
        }
    }
}

// ---- the server ---------------------------------------------------------------------------

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    async fn accept(&self) -> io::Result<(BoxIo, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                if let Err(e) = s.set_nodelay(true) {
                    tracing::debug!(%peer, "TCP_NODELAY: {e}");
                }
                Ok((Box::new(s), peer.to_string()))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                Ok((Box::new(s), "unix peer".to_string()))
            }
        }
    }
}

/// A bound, not yet running, control plane server.
pub struct ControlPlaneServer {
    listener: Listener,
    addr: ListenAddr,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    watched: Option<Watched>,
    options: Arc<ControlPlaneOptions>,
    warnings: Vec<ConfigWarning>,
}

impl fmt::Debug for ControlPlaneServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlaneServer")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .field("watched", &self.watched.as_ref().map(|w| &w.path))
            .finish()
    }
}

struct Watched {
    path: PathBuf,
    fingerprint: Option<Fingerprint>,
    text: String,
}

impl ControlPlaneServer {
    /// Binds a TCP address (port 0 picks one) and loads the configuration. Plaintext HTTP/2.
    pub async fn bind(
        addr: impl ToSocketAddrs + fmt::Display,
        config: ConfigSource,
    ) -> Result<Self, ServeError> {
        Self::bind_with(addr, config, ControlPlaneOptions::default()).await
    }

    /// Binds a TCP address with options (TLS, poll interval…).
    pub async fn bind_with(
        addr: impl ToSocketAddrs + fmt::Display,
        config: ConfigSource,
        options: ControlPlaneOptions,
    ) -> Result<Self, ServeError> {
        let (shared, watched, warnings, tls) = prepare(&config, &options)?;
        let shown = addr.to_string();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| ServeError::Bind {
                addr: shown.clone(),
                error,
            })?;
        let local = listener
            .local_addr()
            .map_err(|error| ServeError::Bind { addr: shown, error })?;
        Ok(ControlPlaneServer {
            listener: Listener::Tcp(listener),
            addr: ListenAddr::Tcp(local),
            shared,
            tls,
            watched,
            options: Arc::new(options),
            warnings,
        })
    }

    /// Binds a unix socket (a stale socket file at `path` is replaced; the file is removed on
    /// shutdown).
    pub async fn bind_unix(
        path: impl AsRef<Path>,
        config: ConfigSource,
        options: ControlPlaneOptions,
    ) -> Result<Self, ServeError> {
        let path = path.as_ref().to_path_buf();
        let (shared, watched, warnings, tls) = prepare(&config, &options)?;
        if std::os::unix::net::UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let listener = UnixListener::bind(&path).map_err(|error| ServeError::Bind {
            addr: path.display().to_string(),
            error,
        })?;
        Ok(ControlPlaneServer {
            listener: Listener::Unix(listener),
            addr: ListenAddr::Unix(path),
            shared,
            tls,
            watched,
            options: Arc::new(options),
            warnings,
        })
    }

    /// Where it listens (its `Display` is a client target).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Warnings of the initial configuration (fields accepted but not acted on).
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// A handle to stop the server and look inside it.
    pub fn handle(&self) -> ControlPlaneHandle {
        ControlPlaneHandle {
            shared: self.shared.clone(),
        }
    }

    /// Every configuration reload from now on.
    pub fn config_events(&self) -> broadcast::Receiver<ConfigEvent> {
        self.shared.config_events.subscribe()
    }

    /// Runs on a new task.
    pub fn spawn(self) -> RunningControlPlane {
        let addr = self.addr.clone();
        let handle = self.handle();
        let task = tokio::spawn(self.run());
        RunningControlPlane { addr, handle, task }
    }

    /// Serves until [`ControlPlaneHandle::shutdown`]: then stops listening, ends every stream
    /// with `UNAVAILABLE`, and waits (at most `shutdown_grace`) for the connections to close.
    pub async fn run(self) {
        let ControlPlaneServer {
            listener,
            addr,
            shared,
            tls,
            watched,
            options,
            warnings: _,
        } = self;
        tracing::info!(%addr, tls = tls.is_some(), "control plane listening");
        let mut shutdown = shared.shutdown.subscribe();
        let _watcher = watched.map(|w| {
            AbortOnDrop(tokio::spawn(watch_config(
                shared.clone(),
                w,
                options.poll_interval,
            )))
        });
        let mut connections = JoinSet::new();
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((io, peer)) => {
                        tracing::debug!(%peer, "control plane connection");
                        connections.spawn(serve_connection(
                            io,
                            tls.clone(),
                            shared.clone(),
                            options.clone(),
                        ));
                    }
                    Err(e) => {
                        // EMFILE and friends: do not spin.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                changed = shutdown.changed() => if changed.is_err() { break },
            }
        }
        drop(listener);
        if let ListenAddr::Unix(path) = &addr {
            let _ = std::fs::remove_file(path);
        }
        shared.close_all(code::UNAVAILABLE, "control plane shutting down");
        let drained = tokio::time::timeout(options.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::debug!("shutdown grace elapsed; dropping the remaining connections");
        }
        connections.shutdown().await;
        tracing::info!(%addr, "control plane stopped");
    }
}

type Prepared = (
    Arc<Shared>,
    Option<Watched>,
    Vec<ConfigWarning>,
    Option<tokio_rustls::TlsAcceptor>,
);

fn prepare(config: &ConfigSource, options: &ControlPlaneOptions) -> Result<Prepared, ServeError> {
    let tls = match &options.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            server_tls_config(t).map_err(ServeError::Tls)?,
        ))),
        None => None,
    };
    let name = config.name();
    let (text, watched) = match config {
        ConfigSource::Text { text, .. } => (text.clone(), None),
        ConfigSource::File(path) => {
            // Fingerprint first: an edit racing with this read is seen by the watcher.
            let fingerprint = std::fs::metadata(path).ok().map(|m| Fingerprint::of(&m));
            let text = std::fs::read_to_string(path).map_err(|error| ServeError::ReadConfig {
                path: path.clone(),
                error,
            })?;
            let watched = Watched {
                path: path.clone(),
                fingerprint,
                text: text.clone(),
            };
            (text, Some(watched))
        }
    };
    let loaded = config::parse_str(&name, &text).map_err(ServeError::Config)?;
    let timeline = Timeline::start();
    let plane = ControlPlane::new(timeline.now(), loaded.config).map_err(ServeError::Config)?;
    let (config_events, _) = broadcast::channel(64);
    let (shutdown, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            plane,
            streams: HashMap::new(),
            next_stream: 0,
            last_rejection: None,
        }),
        timeline,
        config_events,
        shutdown,
    });
    Ok((shared, watched, loaded.warnings, tls))
}

/// The rustls server configuration (ALPN `h2`; mTLS when a client CA is given).
pub(crate) fn server_tls_config(tls: &ServerTls) -> Result<rustls::ServerConfig, String> {
    let certs = load_certs("certificate", &tls.cert).map_err(|e| e.to_string())?;
    let key = load_key(&tls.key).map_err(|e| e.to_string())?;
    let builder = rustls::ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = load_roots(ca).map_err(|e| e.to_string())?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                ring_provider(),
            )
            .build()
            .map_err(|e| format!("client CA {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "certificate {} with key {}: {e}",
            tls.cert.display(),
            tls.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Stops a server and looks inside it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ControlPlaneHandle {
    shared: Arc<Shared>,
}

impl ControlPlaneHandle {
    /// Asks the server to stop (see [`ControlPlaneServer::run`]).
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// What every stream was sent, acked and nacked; the interface map; config warnings and the
    /// last rejection.
    pub fn config_dump(&self) -> ControlPlaneDump {
        self.shared.lock().plane.config_dump()
    }

    /// Why the last configuration reload was rejected (YAML, validation or translation errors),
    /// if the configuration in force is not the latest one offered.
    pub fn last_rejection(&self) -> Option<ConfigErrors> {
        self.shared.lock().last_rejection.clone()
    }

    /// Replaces the configuration with `text` now (as a file edit would).
    pub fn reload_text(&self, name: &str, text: &str) -> ConfigEvent {
        self.shared.reload(name, text)
    }

    /// Every configuration reload from now on.
    pub fn config_events(&self) -> broadcast::Receiver<ConfigEvent> {
        self.shared.config_events.subscribe()
    }

    /// Number of open ADS streams.
    pub fn stream_count(&self) -> usize {
        self.shared.lock().streams.len()
    }
}

/// A server running on its own task.
#[derive(Debug)]
pub struct RunningControlPlane {
    addr: ListenAddr,
    handle: ControlPlaneHandle,
    task: JoinHandle<()>,
}

impl RunningControlPlane {
    /// Where it listens.
    pub fn local_addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Its handle.
    pub fn handle(&self) -> &ControlPlaneHandle {
        &self.handle
    }

    /// Stops it and waits until it has stopped (the port is free again).
    pub async fn shutdown(self) {
        self.handle.shutdown();
        let _ = self.task.await;
    }

    /// Waits for it to stop (after a shutdown requested through a handle).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

// ---- connections and streams --------------------------------------------------------------

/// Bound on a client's TLS and HTTP/2 handshakes (a silent peer does not hold a task forever).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve_connection(
    io: BoxIo,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    options: Arc<ControlPlaneOptions>,
) {
    let io: BoxIo = match tls {
        None => io,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let mut shutdown = shared.shutdown.subscribe();
    let handshake = h2::server::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(2 << 20)
        // ADS needs one stream per client; this only bounds what a misbehaving one can open.
        .max_concurrent_streams(128)
        .handshake::<BoxIo, Bytes>(io);
    let mut connection = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!("HTTP/2 handshake: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("HTTP/2 handshake timed out");
            return;
        }
    };
    let mut streams = JoinSet::new();
    let mut closing = false;
    loop {
        if !closing && *shutdown.borrow_and_update() {
            closing = true;
            connection.graceful_shutdown();
        }
        tokio::select! {
            accepted = connection.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    streams.spawn(serve_stream(
                        shared.clone(),
                        request,
                        respond,
                        options.max_message_size,
                    ));
                }
                Some(Err(e)) => {
                    tracing::debug!("HTTP/2 connection: {e}");
                    break;
                }
                None => break,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            changed = shutdown.changed(), if !closing => if changed.is_err() { closing = true },
        }
    }
}

/// Ends the stream in the control plane whatever way the task ends (even aborted).
struct StreamGuard {
    shared: Arc<Shared>,
    id: AdsStreamId,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.shared.stream_gone(self.id);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Sotw,
    Delta,
}

async fn serve_stream(
    shared: Arc<Shared>,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    max_message_size: usize,
) {
    let method = match request.uri().path() {
        SOTW_METHOD => Method::Sotw,
        DELTA_METHOD => Method::Delta,
        CSDS_FETCH_METHOD => {
            serve_csds(&shared, request, respond, max_message_size).await;
            return;
        }
        path => {
            tracing::debug!(%path, "unknown method");
            let mut response = grpc_response();
            response.headers_mut().extend(grpc::status_trailers(
                code::UNIMPLEMENTED,
                &format!("unknown method {path}"),
            ));
            let _ = respond.send_response(response, true);
            return;
        }
    };
    let grpc_content = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !grpc_content {
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        let _ = respond.send_response(response, true);
        return;
    }
    let send = match respond.send_response(grpc_response(), false) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("sending response headers: {e}");
            return;
        }
    };
    let (id, out) = shared.open_stream();
    let _guard = StreamGuard {
        shared: shared.clone(),
        id,
    };
    tracing::debug!(stream = %id, ?method, "ADS stream");
    let mut writer = AbortOnDrop(tokio::spawn(write_responses(send, out)));
    let body = request.into_body();
    let read = read_requests(&shared, id, method, body, max_message_size);
    tokio::pin!(read);
    tokio::select! {
        verdict = &mut read => {
            if let Some((code, message)) = verdict {
                shared.close_stream(id, code, message);
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut writer.0).await;
            }
        }
        _ = &mut writer.0 => {}
    }
}

/// CSDS's unary method (gRFC A40): on the control plane, what every connected client was
/// sent, ACKed and NACKed.
pub use skiff_adapter::server::CSDS_FETCH_METHOD;

/// Answers one `FetchClientStatus` call from the control plane's per-stream view.
async fn serve_csds(
    shared: &Shared,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    max_message_size: usize,
) {
    // The request (a node matcher) is read to its end; every client is reported.
    let mut body = request.into_body();
    let mut decoder = FrameDecoder::new(max_message_size);
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(c) => {
                let _ = body.flow_control().release_capacity(c.len());
                decoder.push(&c);
            }
            Err(e) => {
                tracing::debug!("CSDS request: {e}");
                return;
            }
        }
    }
    let response = {
        let st = shared.lock();
        skiff_core::control::csds::client_status(&st.plane.config_dump().ads, st.plane.resources())
    };
    let mut buf = BytesMut::new();
    encode_frame(&response, &mut buf);
    let Ok(mut send) = respond.send_response(grpc_response(), false) else {
        return;
    };
    if grpc::send_all(&mut send, buf.freeze()).await.is_ok() {
        let _ = send.send_trailers(grpc::status_trailers(code::OK, ""));
    }
}

fn grpc_response() -> http::Response<()> {
    let mut response = http::Response::new(());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// Reads and feeds requests until the stream ends; returns the status to end it with, or `None`
/// when it broke (reset, connection lost) and no status can be sent.
async fn read_requests(
    shared: &Shared,
    id: AdsStreamId,
    method: Method,
    mut body: h2::RecvStream,
    max_message_size: usize,
) -> Option<(u32, String)> {
    let mut decoder = FrameDecoder::new(max_message_size);
    loop {
        let chunk = match body.data().await {
            None => return Some((code::OK, String::new())),
            Some(Err(e)) => {
                tracing::debug!(stream = %id, "receiving: {e}");
                return None;
            }
            Some(Ok(chunk)) => chunk,
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        decoder.push(&chunk);
        loop {
            let frame = match decoder.decode_next() {
                Ok(None) => break,
                Ok(Some(f)) => f,
                Err(e @ FrameError::TooLarge { .. }) => {
                    return Some((code::RESOURCE_EXHAUSTED, e.to_string()));
                }
                Err(e) => return Some((code::INTERNAL, e.to_string())),
            };
            if frame.compressed {
                return Some((
                    code::UNIMPLEMENTED,
                    "compressed messages are not supported".to_string(),
                ));
            }
            let request = match method {
                Method::Sotw => DiscoveryRequest::decode(frame.data).map(AdsRequest::Sotw),
                Method::Delta => DeltaDiscoveryRequest::decode(frame.data).map(AdsRequest::Delta),
            };
            let request = match request {
                Ok(r) => r,
                Err(e) => {
                    return Some((code::INVALID_ARGUMENT, format!("undecodable request: {e}")));
                }
            };
            if let Err(e) = shared.request(id, request) {
                return Some((code::INVALID_ARGUMENT, e));
            }
        }
    }
}

async fn write_responses(
    mut send: h2::SendStream<Bytes>,
    mut out: mpsc::UnboundedReceiver<Outbound>,
) {
    while let Some(m) = out.recv().await {
        match m {
            Outbound::Message(bytes) => {
                if let Err(e) = grpc::send_all(&mut send, bytes).await {
                    tracing::debug!("{e}");
                    return;
                }
            }
            Outbound::Close(code, message) => {
                let _ = send.send_trailers(grpc::status_trailers(code, &message));
                return;
            }
        }
    }
}

// ---- the file watcher ---------------------------------------------------------------------

/// What changes when a file is edited (or replaced by an atomic rename).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
}

impl Fingerprint {
    fn of(m: &std::fs::Metadata) -> Self {
        Fingerprint {
            modified: m.modified().ok(),
            len: m.len(),
        }
    }
}

async fn watch_config(shared: Arc<Shared>, mut w: Watched, every: Duration) {
    let source = w.path.display().to_string();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unreadable = false;
    loop {
        tick.tick().await;
        let read = async {
            let m = tokio::fs::metadata(&w.path).await?;
            let fp = Fingerprint::of(&m);
            if Some(fp) == w.fingerprint {
                return Ok(None);
            }
            let text = tokio::fs::read_to_string(&w.path).await?;
            Ok::<_, io::Error>(Some((fp, text)))
        };
        match read.await {
            Ok(None) => {}
            Ok(Some((fp, text))) => {
                unreadable = false;
                w.fingerprint = Some(fp);
                if text != w.text {
                    w.text = text;
                    shared.reload(&source, &w.text);
                }
            }
            Err(e) => {
                // Editors may briefly remove the file; say it once, keep serving.
                if !unreadable {
                    unreadable = true;
                    w.fingerprint = None;
                    shared.publish(ConfigEvent::Unreadable {
                        source: source.clone(),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
}
