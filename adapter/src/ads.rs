//! The ADS transport and the driver task.
//!
//! One driver task owns one sans-IO state machine (an [`XdsClient`], for tools that only read xDS;
//! see [`AdsMachine`]) and runs DESIGN §5's
//! loop: wait for (application command | ADS bytes | stream event | timer) → apply one input →
//! drain the outputs → re-arm the single timer.
//!
//! The transport is one HTTP/2 connection carrying one bidirectional gRPC stream
//! (`POST <method>`, `content-type: application/grpc`, `te: trailers`,
//! `user-agent: skiff/<version>`). The core already frames its messages, so the transport moves
//! bytes only: `AdsSend` bytes become DATA frames (under HTTP/2 flow control), received DATA goes
//! to `handle_ads_data` (its window is released only once the driver took the bytes, so a slow
//! driver slows the server down instead of buffering without bound), and a stream end, reset,
//! connection error or `grpc-status` becomes `handle_ads_closed` with a reason. Each stream lives
//! in its own task, with its own connection; a new stream (after backoff) dials again.
//!
//! Time: the driver takes `epoch = std::time::Instant::now()` when it starts; the core's
//! [`Instant`] is the time elapsed since then, and the runtime's timer sleeps until
//! `epoch + deadline`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::service::status::v3::ClientConfig;
use skiff_core::resource::Resource;
use skiff_core::rng::{Rng, Seed};
use skiff_core::time::{Deadline, Instant};
use skiff_core::xds::dump::DumpEntry;
use skiff_core::xds::{ResourceType, XdsClient, XdsClientConfig, XdsEvent, XdsOutput};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::connect::{BoxIo, ConnectError, Connector, XdsServerTarget};
use crate::grpc;
use crate::runtime::{Rt, Runtime, Task, spawn, timeout};

/// The `user-agent` skiff sends on its ADS stream.
pub const USER_AGENT: &str = concat!("skiff/", env!("CARGO_PKG_VERSION"));

// ---- the state machine seam ---------------------------------------------------------------

/// What the driver must do next, as told by the state machine.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AdsAction<E> {
    /// Open a new ADS stream; call `handle_ads_open` (or `handle_ads_closed`) when done.
    Open(AdsStreamId),
    /// Send these (gRPC-framed) bytes on the stream.
    Send(AdsStreamId, Bytes),
    /// Close the stream.
    Close(AdsStreamId),
    /// Something happened: publish it to subscribers.
    Event(E),
}

/// A sans-IO state machine with an ADS stream, drivable by [`spawn_driver`].
///
/// Implemented for [`XdsClient`]. The data plane ([`crate::Mesh`]) does not go through this
/// trait: its RPCs must reach the core without a hop through a driver task, so it shares the
/// core under a lock and reuses only this module's ADS stream transport.
pub trait AdsMachine: Send + 'static {
    /// The events published to subscribers.
    type Event: Clone + fmt::Debug + Send + Sync + 'static;

    /// The gRPC method path of the ADS stream (`Protocol::method()`).
    fn ads_method(&self) -> &'static str;
    /// The stream is open.
    fn handle_ads_open(&mut self, now: Instant, stream: AdsStreamId);
    /// Bytes arrived on the stream.
    fn handle_ads_data(&mut self, now: Instant, stream: AdsStreamId, data: &[u8]);
    /// The stream ended, or could not be opened.
    fn handle_ads_closed(&mut self, now: Instant, stream: AdsStreamId, reason: &str);
    /// The timer from [`AdsMachine::poll_timeout`] fired (early calls are harmless).
    fn handle_timeout(&mut self, now: Instant);
    /// The next action; drained until `None` after every input.
    fn poll_action(&mut self) -> Option<AdsAction<Self::Event>>;
    /// When to call [`AdsMachine::handle_timeout`].
    fn poll_timeout(&self) -> Option<Deadline>;
    /// Bumped whenever the configuration the machine holds changes.
    fn generation(&self) -> u64;
    /// Logs an event (the driver calls it for every event, before publishing it).
    fn trace_event(event: &Self::Event) {
        tracing::debug!(?event, "ADS event");
    }
}

impl AdsMachine for XdsClient {
    type Event = XdsEvent;

    fn ads_method(&self) -> &'static str {
        self.config().protocol.method()
    }
    fn handle_ads_open(&mut self, now: Instant, stream: AdsStreamId) {
        XdsClient::handle_ads_open(self, now, stream);
    }
    fn handle_ads_data(&mut self, now: Instant, stream: AdsStreamId, data: &[u8]) {
        XdsClient::handle_ads_data(self, now, stream, data);
    }
    fn handle_ads_closed(&mut self, now: Instant, stream: AdsStreamId, reason: &str) {
        XdsClient::handle_ads_closed(self, now, stream, reason);
    }
    fn handle_timeout(&mut self, now: Instant) {
        XdsClient::handle_timeout(self, now);
    }
    fn poll_action(&mut self) -> Option<AdsAction<XdsEvent>> {
        Some(match self.poll_output()? {
            XdsOutput::AdsOpen(id) => AdsAction::Open(id),
            XdsOutput::AdsSend(id, b) => AdsAction::Send(id, b),
            XdsOutput::AdsClose(id) => AdsAction::Close(id),
            XdsOutput::Event(e) => AdsAction::Event(e),
        })
    }
    fn poll_timeout(&self) -> Option<Deadline> {
        XdsClient::poll_timeout(self)
    }
    fn generation(&self) -> u64 {
        XdsClient::generation(self)
    }
    fn trace_event(event: &XdsEvent) {
        match event {
            XdsEvent::Updated { ty, names } => tracing::debug!(%ty, ?names, "xDS update"),
            XdsEvent::Nacked {
                ty,
                version,
                errors,
                ..
            } => tracing::warn!(%ty, %version, ?errors, "xDS response rejected (NACK)"),
            XdsEvent::DoesNotExist { ty, name } => {
                tracing::info!(%ty, %name, "xDS resource does not exist")
            }
            XdsEvent::DeletionIgnored { ty, name } => {
                tracing::warn!(%ty, %name, "server deleted a resource; kept (ignore_resource_deletion)")
            }
            XdsEvent::StreamClosed {
                stream,
                reason,
                retry_in,
            } => tracing::info!(%stream, %reason, ?retry_in, "ADS stream closed"),
            XdsEvent::UnknownType { type_url } => {
                tracing::debug!(%type_url, "ignored a response of an unknown type")
            }
            other => tracing::debug!(event = ?other, "xDS event"),
        }
    }
}

// ---- options, status, handle --------------------------------------------------------------

/// Transport knobs.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Bound on dialing + TLS + HTTP/2 handshake (gRPC's minimum connect timeout is 20 s).
    pub connect_timeout: Duration,
    /// `user-agent` header.
    pub user_agent: String,
    /// HTTP/2 stream receive window (xDS responses can be large: 1 MiB by default).
    pub stream_window: u32,
    /// HTTP/2 connection receive window.
    pub connection_window: u32,
    /// How many events a slow subscriber may lag behind before it misses some.
    pub event_capacity: usize,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            connect_timeout: Duration::from_secs(20),
            user_agent: USER_AGENT.to_string(),
            stream_window: 1 << 20,
            connection_window: 2 << 20,
            event_capacity: 1024,
        }
    }
}

/// The state of the ADS link, as the driver sees it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AdsStatus {
    /// The stream being dialed or open, if any.
    pub stream: Option<AdsStreamId>,
    /// Whether that stream is open (the request went out on a live HTTP/2 connection).
    pub open: bool,
    /// How many streams have been opened so far.
    pub streams_opened: u64,
    /// Why the last stream ended.
    pub last_close: Option<String>,
}

/// The driver task ended (shut down, or every handle was dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverClosed;

impl fmt::Display for DriverClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the ADS driver has stopped")
    }
}

impl std::error::Error for DriverClosed {}

type Job<M> = Box<dyn FnOnce(&mut M, Instant) + Send>;

enum Command<M> {
    Run(Job<M>),
    Shutdown,
}

/// A handle to a driver task: run commands on its state machine, read it, follow its events.
/// Cheap to clone; the driver stops when [`DriverHandle::shutdown`] is called or the last handle
/// is dropped.
pub struct DriverHandle<M: AdsMachine> {
    commands: mpsc::UnboundedSender<Command<M>>,
    events: broadcast::Sender<M::Event>,
    generation: watch::Receiver<u64>,
    status: watch::Receiver<AdsStatus>,
    task: Arc<Mutex<Option<Task>>>,
}

impl<M: AdsMachine> Clone for DriverHandle<M> {
    fn clone(&self) -> Self {
        DriverHandle {
            commands: self.commands.clone(),
            events: self.events.clone(),
            generation: self.generation.clone(),
            status: self.status.clone(),
            task: self.task.clone(),
        }
    }
}

impl<M: AdsMachine> fmt::Debug for DriverHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverHandle")
            .field("generation", &*self.generation.borrow())
            .field("status", &*self.status.borrow())
            .finish()
    }
}

impl<M: AdsMachine> DriverHandle<M> {
    /// Runs `f` on the state machine inside the driver task (with the driver's `now`), then lets
    /// the driver act on its outputs. This is how commands (`watch`, `open_channel`…) go in.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M, Instant) -> R + Send + 'static,
    ) -> Result<R, DriverClosed> {
        let (tx, rx) = oneshot::channel();
        let job: Job<M> = Box::new(move |m, now| {
            let _ = tx.send(f(m, now));
        });
        self.commands
            .send(Command::Run(job))
            .map_err(|_| DriverClosed)?;
        rx.await.map_err(|_| DriverClosed)
    }

    /// Runs `f` on the state machine inside the driver task, without waiting for it.
    pub fn post(
        &self,
        f: impl FnOnce(&mut M, Instant) + Send + 'static,
    ) -> Result<(), DriverClosed> {
        self.commands
            .send(Command::Run(Box::new(f)))
            .map_err(|_| DriverClosed)
    }

    /// Reads the state machine.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&M) -> R + Send + 'static,
    ) -> Result<R, DriverClosed> {
        self.call(move |m, _| f(m)).await
    }

    /// Waits until `f` returns `Some`, re-checking whenever the generation moves.
    pub async fn wait_for<R: Send + 'static>(
        &self,
        f: impl Fn(&M) -> Option<R> + Send + Sync + 'static,
    ) -> Result<R, DriverClosed> {
        let f = Arc::new(f);
        let mut generation = self.generation.clone();
        loop {
            generation.borrow_and_update();
            let check = f.clone();
            if let Some(r) = self.read(move |m| check(m)).await? {
                return Ok(r);
            }
            generation.changed().await.map_err(|_| DriverClosed)?;
        }
    }

    /// Every event from now on. A subscriber more than `event_capacity` events behind misses
    /// some (and is told so by `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<M::Event> {
        self.events.subscribe()
    }

    /// The configuration generation: changes whenever the machine's configuration does.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.clone()
    }

    /// The ADS link's state.
    pub fn status(&self) -> watch::Receiver<AdsStatus> {
        self.status.clone()
    }

    /// Stops the driver (closing the stream) and waits for it.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.join().await;
        }
    }
}

impl DriverHandle<XdsClient> {
    /// Watches a resource (its dependencies follow: LDS → RDS → CDS → EDS).
    pub async fn watch(&self, ty: ResourceType, name: &str) -> Result<(), DriverClosed> {
        let name = name.to_string();
        self.call(move |c, now| c.watch(now, ty, &name)).await
    }

    /// Stops watching a resource.
    pub async fn unwatch(&self, ty: ResourceType, name: &str) -> Result<(), DriverClosed> {
        let name = name.to_string();
        self.call(move |c, now| c.unwatch(now, ty, &name)).await
    }

    /// The last good value of a resource.
    pub async fn resource(
        &self,
        ty: ResourceType,
        name: &str,
    ) -> Result<Option<Resource>, DriverClosed> {
        let name = name.to_string();
        self.read(move |c| c.resource(ty, &name).cloned()).await
    }

    /// The client's config dump.
    pub async fn config_dump(&self) -> Result<Vec<DumpEntry>, DriverClosed> {
        self.read(XdsClient::config_dump).await
    }

    /// The config dump as a CSDS `ClientConfig` (gRFC A40).
    pub async fn csds_client_config(&self) -> Result<ClientConfig, DriverClosed> {
        self.read(XdsClient::csds_client_config).await
    }
}

// ---- spawning -----------------------------------------------------------------------------

/// Starts a driver task for the state machine `make(now)` builds (`now` is the core time at the
/// driver's epoch), talking to `target`, on `rt`. Fails only if the target is malformed or its
/// TLS files cannot be loaded; unreachable control planes are retried with the machine's
/// backoff.
pub fn spawn_driver<M: AdsMachine>(
    rt: Rt,
    target: &XdsServerTarget,
    options: DriverOptions,
    make: impl FnOnce(Instant) -> M,
) -> Result<DriverHandle<M>, ConnectError> {
    let connector = Connector::new(target)?;
    let timeline = Timeline::start();
    let machine = make(timeline.now());
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(options.event_capacity.max(1));
    let (generation_tx, generation) = watch::channel(machine.generation());
    let (status_tx, status) = watch::channel(AdsStatus::default());
    let driver = Driver {
        machine,
        timeline,
        connector,
        options: Arc::new(options),
        commands: command_rx,
        events: events.clone(),
        generation: generation_tx,
        status: status_tx,
        stream: None,
        rt: Arc::clone(&rt),
    };
    let task = spawn(&*rt, driver.run());
    Ok(DriverHandle {
        commands,
        events,
        generation,
        status,
        task: Arc::new(Mutex::new(Some(task))),
    })
}

/// Starts an [`XdsClient`] on a driver task. `seed` drives its randomness (backoff jitter).
pub fn spawn_xds_client(
    rt: Rt,
    target: &XdsServerTarget,
    config: XdsClientConfig,
    seed: Seed,
    options: DriverOptions,
) -> Result<DriverHandle<XdsClient>, ConnectError> {
    spawn_driver(rt, target, options, |now| {
        XdsClient::new(config, Rng::new(seed).fork("xds"), now)
    })
}

/// A seed from the OS (std's per-process random hasher keys), for drivers that are not replayed.
pub fn random_seed() -> Seed {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    Seed(h.finish())
}

// ---- the driver ---------------------------------------------------------------------------

/// Maps the monotonic clock onto the core's timeline.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    epoch: std::time::Instant,
}

impl Timeline {
    /// A timeline whose zero is now.
    pub fn start() -> Self {
        Timeline {
            epoch: std::time::Instant::now(),
        }
    }

    /// The core's `now`.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// When a core instant happens on the monotonic clock (`None` for "never").
    pub fn to_std(&self, at: Instant) -> Option<std::time::Instant> {
        if at == Instant::MAX {
            return None;
        }
        self.epoch.checked_add(Duration::from_nanos(at.as_nanos()))
    }
}

/// From a stream task to the driver.
pub(crate) enum TransportEvent {
    Opened(AdsStreamId, mpsc::UnboundedSender<Bytes>),
    Data(AdsStreamId, Bytes),
    Closed(AdsStreamId, String),
}

struct StreamSlot {
    id: AdsStreamId,
    out: Option<mpsc::UnboundedSender<Bytes>>,
    /// Sends issued before the stream reported open (the core does not do this; kept safe).
    pending: Vec<Bytes>,
    _task: Task,
}

struct Driver<M: AdsMachine> {
    machine: M,
    timeline: Timeline,
    connector: Connector,
    options: Arc<DriverOptions>,
    commands: mpsc::UnboundedReceiver<Command<M>>,
    events: broadcast::Sender<M::Event>,
    generation: watch::Sender<u64>,
    status: watch::Sender<AdsStatus>,
    stream: Option<StreamSlot>,
    rt: Rt,
}

impl<M: AdsMachine> Driver<M> {
    async fn run(mut self) {
        // Stream tasks report here; bounded, so a slow driver pushes back on the HTTP/2 window.
        let (transport_tx, mut transport_rx) = mpsc::channel::<TransportEvent>(64);
        loop {
            self.drain(&transport_tx);
            let deadline = self
                .machine
                .poll_timeout()
                .and_then(|d| self.timeline.to_std(d.at));
            let rt = Arc::clone(&self.rt);
            let timer = async move {
                match deadline {
                    Some(at) => rt.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Run(job)) => job(&mut self.machine, self.timeline.now()),
                    Some(Command::Shutdown) | None => break,
                },
                Some(event) = transport_rx.recv() => self.on_transport(event),
                () = timer => self.machine.handle_timeout(self.timeline.now()),
            }
        }
        // Dropping the slot aborts the stream task, which resets the stream.
        self.stream = None;
        tracing::debug!("ADS driver stopped");
    }

    fn drain(&mut self, transport_tx: &mpsc::Sender<TransportEvent>) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                AdsAction::Open(id) => {
                    tracing::debug!(stream = %id, target = ?self.connector.endpoint(), "opening ADS stream");
                    let task = spawn(
                        &*self.rt,
                        run_stream(
                            Arc::clone(&self.rt),
                            id,
                            self.connector.clone(),
                            self.machine.ads_method(),
                            self.options.clone(),
                            transport_tx.clone(),
                        ),
                    );
                    self.stream = Some(StreamSlot {
                        id,
                        out: None,
                        pending: Vec::new(),
                        _task: task,
                    });
                    self.status.send_modify(|s| {
                        s.stream = Some(id);
                        s.open = false;
                    });
                }
                AdsAction::Send(id, bytes) => match &mut self.stream {
                    Some(slot) if slot.id == id => match &slot.out {
                        Some(out) => {
                            let _ = out.send(bytes);
                        }
                        None => slot.pending.push(bytes),
                    },
                    _ => tracing::debug!(stream = %id, "send on a stream that is gone"),
                },
                AdsAction::Close(id) => {
                    if self.stream.as_ref().is_some_and(|s| s.id == id) {
                        self.stream = None;
                        self.status.send_modify(|s| {
                            s.stream = None;
                            s.open = false;
                        });
                    }
                }
                AdsAction::Event(e) => {
                    M::trace_event(&e);
                    let _ = self.events.send(e);
                }
            }
        }
        let generation = self.machine.generation();
        self.generation.send_if_modified(|g| {
            let changed = *g != generation;
            *g = generation;
            changed
        });
    }

    fn on_transport(&mut self, event: TransportEvent) {
        let now = self.timeline.now();
        match event {
            TransportEvent::Opened(id, out) => {
                let Some(slot) = self.stream.as_mut().filter(|s| s.id == id) else {
                    return;
                };
                for b in slot.pending.drain(..) {
                    let _ = out.send(b);
                }
                slot.out = Some(out);
                self.status.send_modify(|s| {
                    s.open = true;
                    s.streams_opened += 1;
                });
                tracing::info!(stream = %id, "ADS stream open");
                self.machine.handle_ads_open(now, id);
            }
            TransportEvent::Data(id, bytes) => self.machine.handle_ads_data(now, id, &bytes),
            TransportEvent::Closed(id, reason) => {
                if self.stream.as_ref().is_some_and(|s| s.id == id) {
                    self.stream = None;
                    self.status.send_modify(|s| {
                        s.stream = None;
                        s.open = false;
                        s.last_close = Some(reason.clone());
                    });
                }
                self.machine.handle_ads_closed(now, id, &reason);
            }
        }
    }
}

// ---- one stream ---------------------------------------------------------------------------

type H2Parts = (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<BoxIo, Bytes>,
);

pub(crate) async fn run_stream(
    rt: Rt,
    id: AdsStreamId,
    connector: Connector,
    method: &'static str,
    options: Arc<DriverOptions>,
    events: mpsc::Sender<TransportEvent>,
) {
    let reason = stream_body(&rt, id, &connector, method, &options, &events).await;
    tracing::debug!(stream = %id, %reason, "ADS stream ended");
    let _ = events.send(TransportEvent::Closed(id, reason)).await;
}

async fn open_h2(
    rt: &dyn Runtime,
    connector: &Connector,
    options: &DriverOptions,
) -> Result<H2Parts, String> {
    let io = connector.connect(rt).await.map_err(|e| e.to_string())?;
    h2::client::Builder::new()
        .initial_window_size(options.stream_window)
        .initial_connection_window_size(options.connection_window)
        .handshake::<BoxIo, Bytes>(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))
}

/// Runs one stream to its end; returns why it ended.
async fn stream_body(
    rt: &Rt,
    id: AdsStreamId,
    connector: &Connector,
    method: &'static str,
    options: &DriverOptions,
    events: &mpsc::Sender<TransportEvent>,
) -> String {
    let (send_request, connection) = match timeout(
        &**rt,
        options.connect_timeout,
        open_h2(&**rt, connector, options),
    )
    .await
    {
        Some(Ok(parts)) => parts,
        Some(Err(e)) => return e,
        None => {
            return format!(
                "connecting to the control plane timed out after {:?}",
                options.connect_timeout
            );
        }
    };
    // The connection and the writer report their ends through oneshots: tasks of every
    // runtime are joined the same way.
    let (connection_tx, mut connection_done) = tokio::sync::oneshot::channel();
    let _connection = spawn(&**rt, async move {
        let _ = connection_tx.send(connection.await);
    });
    let mut send_request = match send_request.ready().await {
        Ok(s) => s,
        Err(e) => return format!("HTTP/2 connection: {e}"),
    };
    let uri = format!(
        "{}://{}{method}",
        connector.scheme(),
        connector.endpoint().authority()
    );
    let request = match http::Request::builder()
        .method(http::Method::POST)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, options.user_agent.as_str())
        .body(())
    {
        Ok(r) => r,
        Err(e) => return format!("building the ADS request: {e}"),
    };
    let (response, send_stream) = match send_request.send_request(request, false) {
        Ok(x) => x,
        Err(e) => return format!("opening the ADS stream: {e}"),
    };
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    if events
        .send(TransportEvent::Opened(id, out_tx))
        .await
        .is_err()
    {
        return "driver stopped".to_string();
    }
    let (writer_tx, mut writer_done) = tokio::sync::oneshot::channel();
    let _writer = spawn(&**rt, async move {
        let _ = writer_tx.send(write_loop(send_stream, out_rx).await);
    });
    let read = read_loop(id, response, events);
    tokio::pin!(read);
    tokio::select! {
        biased;
        reason = &mut read => reason,
        w = &mut writer_done => match w {
            Ok(Err(e)) => e,
            Ok(Ok(())) => "stream closed by skiff".to_string(),
            Err(_) => "ADS writer task ended".to_string(),
        },
        c = &mut connection_done => {
            let why = match c {
                Ok(Ok(())) => "HTTP/2 connection closed".to_string(),
                Ok(Err(e)) => format!("HTTP/2 connection: {e}"),
                Err(_) => "HTTP/2 connection task ended".to_string(),
            };
            // Buffered frames (a final message, trailers with the real status) may still be
            // readable: prefer the stream's own verdict when it comes promptly.
            timeout(&**rt, Duration::from_secs(1), &mut read)
                .await
                .unwrap_or(why)
        }
    }
}

async fn read_loop(
    id: AdsStreamId,
    response: h2::client::ResponseFuture,
    events: &mpsc::Sender<TransportEvent>,
) -> String {
    let response = match response.await {
        Ok(r) => r,
        Err(e) => return format!("ADS stream failed: {e}"),
    };
    let (parts, mut body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return format!("control plane answered HTTP {}", parts.status);
    }
    // Trailers-only response: the status is in the headers.
    if let Some((code, message)) = grpc::status_of(&parts.headers) {
        return grpc::describe_status(code, &message);
    }
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return format!("receiving: {e}"),
        };
        let n = chunk.len();
        if events.send(TransportEvent::Data(id, chunk)).await.is_err() {
            return "driver stopped".to_string();
        }
        // Only now: the window reopens as fast as the driver consumes.
        let _ = body.flow_control().release_capacity(n);
    }
    match body.trailers().await {
        Ok(Some(trailers)) => match grpc::status_of(&trailers) {
            Some((code, message)) => grpc::describe_status(code, &message),
            None => "ADS stream ended without grpc-status".to_string(),
        },
        Ok(None) => "ADS stream ended without trailers".to_string(),
        Err(e) => format!("receiving trailers: {e}"),
    }
}

async fn write_loop(
    mut stream: h2::SendStream<Bytes>,
    mut out: mpsc::UnboundedReceiver<Bytes>,
) -> Result<(), String> {
    while let Some(bytes) = out.recv().await {
        grpc::send_all(&mut stream, bytes).await?;
    }
    // The driver let go of the stream: half-close politely (the task is usually aborted first).
    let _ = stream.send_data(Bytes::new(), true);
    Ok(())
}
