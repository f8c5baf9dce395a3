//! [`Mesh`]: skiff's proxyless service mesh, on any [`Runtime`](crate::runtime::Runtime).
//!
//! One [`Mesh`] per process holds the core's sans-IO [`skiff_core::mesh::Mesh`] (xDS client,
//! configuration snapshot, router, balancers, resilience), one ADS stream to the control plane
//! that every channel shares, and one HTTP/2 connection per endpoint in use (a subchannel).
//! [`Mesh::channel`] hands out tonic-compatible [`Channel`]s.
//!
//! ## How it runs
//!
//! The core sits behind a mutex that every actor takes for one short, non-blocking step and
//! never across an `.await`: apply one input, then drain `poll_output` and act on each output
//! (spawn a connection, send ADS bytes, wake a waiting RPC), then lower the driver's timer if
//! the core's next deadline moved earlier. The actors are:
//!
//! - the **driver task**: ADS stream events (open, bytes, close) and the core's timer;
//! - **RPC tasks** (the futures and bodies a [`Channel`] returns): `start_call`, outcomes,
//!   commits and cancels, directly, with no hop through the driver: an RPC whose pick can be
//!   made from the current snapshot goes straight from `start_call` to its subchannel's HTTP/2
//!   connection;
//! - **subchannel tasks**: connectivity (`Ready` with the connection's sender, `Idle` when it
//!   ends or GOAWAY arrives, `TransientFailure` when dialing fails).
//!
//! The clock is `std::time::Instant`, mapped onto the core's timeline with the epoch taken at
//! build time; the runtime's timer wakes the driver.

mod body;
mod bootstrap;
mod call;
mod channel;
mod direct;
mod headers;
mod subchannel;

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use skiff_core::control::interfaces::INTERFACES_METADATA_KEY;
use skiff_core::ids::{AdsStreamId, CallId, ChannelId, SubchannelId};
use skiff_core::mesh::{Mesh as CoreMesh, MeshConfig, TargetError};
use skiff_core::pb::envoy::config::core::v3::Node;
use skiff_core::plane::{Connectivity, Output, Pick, PlaneEvent};
use skiff_core::resource::cluster::ClusterConfig;
use skiff_core::rng::Seed;
use skiff_core::time::Instant;
use skiff_core::xds::dump::DumpEntry;
use skiff_core::xds::{Protocol, XdsClient, XdsClientConfig, XdsEvent};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

pub use body::{AttemptBody, ResponseBody};
pub use call::ServedBy;
pub use channel::{Channel, ReportServedBy, ResponseFuture, WaitForReady};
pub use headers::HeaderMapSource;
pub use subchannel::{SecureFuture, TransportSecurity};

use crate::ads::spawn_driver;
use crate::ads::{
    AdsMachine, AdsStatus, DriverOptions, Timeline, TransportEvent, random_seed, run_stream,
};
use crate::connect::{ConnectError, Connector, XdsServerTarget};
use crate::runtime::{Flavor, Rt, Task, spawn};
use crate::shard::{ShardMachine, XdsShard};
use call::{CallCell, Conn, Next, Signal};
use channel::ChannelInner;
use direct::DirectPool;
use skiff_core::resource::snapshot::Snapshot;
use skiff_core::rng::Rng;
use subchannel::ConnectSettings;

/// Errors of the [`Channel`] service and its bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Knobs of a [`Mesh`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MeshOptions {
    /// Bound on dialing + TLS + HTTP/2 handshake of a subchannel (gRPC's minimum connect
    /// timeout, 20 s).
    pub connect_timeout: Duration,
    /// HTTP/2 keepalive ping interval on subchannels (`None` disables pings).
    pub keepalive_interval: Option<Duration>,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// Largest unary request body kept for retries (gRPC's per-RPC retry buffer idea); larger
    /// or streaming requests are sent once and never retried.
    pub retry_buffer_limit: usize,
    /// How often plain `dns:`/`host:port` targets are re-resolved.
    pub resolve_interval: Duration,
    /// The ADS transport (connect timeout, windows, user agent, event capacity).
    pub ads: DriverOptions,
}

impl Default for MeshOptions {
    fn default() -> Self {
        MeshOptions {
            connect_timeout: Duration::from_secs(20),
            keepalive_interval: Some(Duration::from_secs(20)),
            keepalive_timeout: Duration::from_secs(20),
            retry_buffer_limit: 64 * 1024,
            resolve_interval: Duration::from_secs(30),
            ads: DriverOptions::default(),
        }
    }
}

/// Why a mesh or a channel could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum MeshError {
    /// `build` was called outside the runtime the adapter drives (for skiff-tokio: outside a
    /// tokio runtime).
    NoRuntime,
    /// The control plane target is malformed or its TLS files cannot be loaded.
    ControlPlane(ConnectError),
    /// The bootstrap (`GRPC_XDS_BOOTSTRAP` / `GRPC_XDS_BOOTSTRAP_CONFIG`) is missing or invalid.
    Bootstrap(String),
    /// An `xds:` target on a mesh built without a control plane.
    NoXdsServer(String),
    /// The target is not one skiff understands.
    InvalidTarget {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
    /// The mesh was shut down.
    Closed,
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeshError::NoRuntime => f.write_str(
                "the mesh must be built inside the runtime its adapter drives \
                 (skiff-tokio: inside a tokio runtime)",
            ),
            MeshError::ControlPlane(e) => write!(f, "control plane: {e}"),
            MeshError::Bootstrap(e) => write!(f, "xDS bootstrap: {e}"),
            MeshError::NoXdsServer(t) => {
                write!(
                    f,
                    "{t:?} needs a control plane, and this mesh was built without one"
                )
            }
            MeshError::InvalidTarget { target, reason } => {
                write!(f, "invalid target {target:?}: {reason}")
            }
            MeshError::Closed => f.write_str("the mesh was shut down"),
        }
    }
}

impl std::error::Error for MeshError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MeshError::ControlPlane(e) => Some(e),
            _ => None,
        }
    }
}

/// Something that happened in the mesh (for logs, metrics and tests).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum MeshEvent {
    /// An xDS client event (updates, NACKs, does-not-exist, stream closes).
    Xds(XdsEvent),
    /// A data-plane event (snapshot applied, retry scheduled, ejections).
    Plane(PlaneEvent),
    /// A subchannel's connectivity changed, as the driver reported it.
    Subchannel {
        /// The endpoint.
        address: SocketAddr,
        /// Its new state.
        state: Connectivity,
        /// Why, for failures and closes.
        reason: Option<String>,
    },
}

/// A deferred adjustment of the core configuration ([`MeshBuilder::configure`]).
type ConfigureFn = Box<dyn FnOnce(&mut MeshConfig) + Send>;

/// Builds a [`Mesh`]. See [`Mesh::builder`].
pub struct MeshBuilder<F> {
    xds_server: Option<XdsServerTarget>,
    node: Node,
    seed: Option<Seed>,
    protocol: Protocol,
    ignore_resource_deletion: bool,
    configure: Vec<ConfigureFn>,
    options: MeshOptions,
    security: Option<Arc<dyn TransportSecurity>>,
    flavor: PhantomData<fn() -> F>,
}

impl<F> fmt::Debug for MeshBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshBuilder")
            .field("xds_server", &self.xds_server)
            .field("node_id", &self.node.id)
            .field("protocol", &self.protocol)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The node metadata key that tells istiod (and skiff's control plane) to answer with the
/// proxyless gRPC generator.
const GENERATOR: &str = "GENERATOR";

fn string_value(s: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue(s.to_string())),
    }
}

impl<F: Flavor> MeshBuilder<F> {
    fn new() -> Self {
        let mut node = Node {
            id: format!("skiff~{}", std::process::id()),
            user_agent_name: "skiff".into(),
            user_agent_version_type: Some(
                skiff_core::pb::envoy::config::core::v3::node::UserAgentVersionType::UserAgentVersion(
                    env!("CARGO_PKG_VERSION").into(),
                ),
            ),
            client_features: vec![
                "envoy.lb.does_not_support_overprovisioning".into(),
                "xds.config.resource-in-sotw".into(),
            ],
            ..Node::default()
        };
        node.metadata = Some(prost_types::Struct {
            fields: [(GENERATOR.to_string(), string_value("grpc"))]
                .into_iter()
                .collect(),
        });
        MeshBuilder {
            xds_server: None,
            node,
            seed: None,
            protocol: Protocol::StateOfTheWorld,
            ignore_resource_deletion: false,
            configure: Vec::new(),
            options: MeshOptions::default(),
            security: None,
            flavor: PhantomData,
        }
    }

    /// The control plane (`host:port`, `dns:///host:port`, `unix:///path`; insecure or TLS).
    /// Without one, only plain `dns:`/`host:port` targets work.
    pub fn xds_server(mut self, target: XdsServerTarget) -> Self {
        self.xds_server = Some(target);
        self
    }

    /// The node id sent to the control plane (istiod wants
    /// `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`). Default `skiff~PID`.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node.id = id.into();
        self
    }

    /// The node's `cluster`.
    pub fn node_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.node.cluster = cluster.into();
        self
    }

    /// Adds a string to the node metadata (`GENERATOR: grpc` is there by default).
    pub fn metadata(mut self, key: impl Into<String>, value: impl AsRef<str>) -> Self {
        self.node
            .metadata
            .get_or_insert_with(Default::default)
            .fields
            .insert(key.into(), string_value(value.as_ref()));
        self
    }

    /// Announces the gRPC interfaces this process serves (`helloworld.Greeter`, ...) in its
    /// node metadata (`SKIFF_INTERFACES`), so the control plane can route clients that dial an
    /// interface by name (`xds:///helloworld.Greeter`, [`Mesh::client`]) to this workload's
    /// service (DESIGN.md §7). Node metadata travels when the ADS stream opens, so a server
    /// declares its interfaces here, before the mesh is built. Repeated calls add to the list.
    pub fn serves<I, S>(mut self, interfaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let fields = &mut self
            .node
            .metadata
            .get_or_insert_with(Default::default)
            .fields;
        let mut list: Vec<String> = match fields
            .get(INTERFACES_METADATA_KEY)
            .and_then(|v| v.kind.as_ref())
        {
            Some(prost_types::value::Kind::StringValue(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        for i in interfaces {
            let i = i.as_ref().trim();
            if !i.is_empty() && !list.iter().any(|x| x == i) {
                list.push(i.to_string());
            }
        }
        fields.insert(
            INTERFACES_METADATA_KEY.to_string(),
            string_value(&list.join(",")),
        );
        self
    }

    /// Replaces the whole node (for fields the other methods do not cover).
    pub fn node(mut self, node: Node) -> Self {
        self.node = node;
        self
    }

    /// The seed of the mesh's randomness (load balancing, backoff jitter); random by default.
    /// With a fixed seed and the same inputs, the core makes the same decisions.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(Seed(seed));
        self
    }

    /// SotW (default) or Delta xDS.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Adjusts the core's configuration (backoffs, retry throttling, ...) before it starts.
    pub fn configure(mut self, f: impl FnOnce(&mut MeshConfig) + Send + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// Transport knobs.
    pub fn options(mut self, options: MeshOptions) -> Self {
        self.options = options;
        self
    }

    /// Secures connections to clusters that ask for TLS (the mTLS extension point).
    pub fn transport_security(mut self, security: impl TransportSecurity) -> Self {
        self.security = Some(Arc::new(security));
        self
    }

    /// Starts the mesh: its driver task runs on the current runtime of the flavor `F`. Nothing
    /// is dialed until a channel needs it.
    pub fn build(self) -> Result<Mesh<F>, MeshError> {
        let runtime = F::current().ok_or(MeshError::NoRuntime)?;
        self.build_on(runtime)
    }

    /// Starts the mesh on `runtime` (when there is no ambient one to find).
    pub fn build_on(self, runtime: Rt) -> Result<Mesh<F>, MeshError> {
        self.start(runtime, None)
    }

    /// Starts only the xDS half on `runtime`: one xDS client (this builder's control plane,
    /// node, protocol, xDS backoff and ADS options) that publishes snapshots for data planes
    /// built with [`MeshBuilder::build_fed`]. Thread-per-core runtimes run one per process.
    pub fn build_shard(mut self, runtime: Rt) -> Result<XdsShard, MeshError> {
        let Some(target) = self.xds_server.clone() else {
            return Err(MeshError::NoXdsServer("an xDS shard".into()));
        };
        let seed = self.seed.unwrap_or_else(random_seed);
        let ads = self.options.ads.clone();
        let config = self.core_config();
        let (publish, snapshots) = watch::channel(Arc::new(Snapshot::default()));
        let handle = spawn_driver(runtime, &target, ads, |now| {
            ShardMachine::new(config.xds, Rng::new(seed).fork("xds"), now, publish)
        })
        .map_err(MeshError::ControlPlane)?;
        Ok(XdsShard::new(handle, snapshots))
    }

    /// Starts a data plane on `runtime` fed by `shard`: its own core (balancers, subchannels,
    /// calls) with the configuration the shard publishes; no ADS stream of its own. Its
    /// channels register their listeners with the shard. The xDS view (config dump, ADS status,
    /// xDS events) is the shard's: read it through [`XdsShard::driver`].
    pub fn build_fed(mut self, runtime: Rt, shard: &XdsShard) -> Result<Mesh<F>, MeshError> {
        self.xds_server = None;
        self.start(runtime, Some(shard.clone()))
    }

    fn core_config(&mut self) -> MeshConfig {
        let mut xds = XdsClientConfig::new(self.node.clone());
        xds.protocol = self.protocol;
        xds.ignore_resource_deletion = self.ignore_resource_deletion;
        let mut config = MeshConfig::new(xds);
        for f in self.configure.drain(..) {
            f(&mut config);
        }
        config
    }

    fn start(mut self, runtime: Rt, feed: Option<XdsShard>) -> Result<Mesh<F>, MeshError> {
        let connector = match &self.xds_server {
            Some(t) => Some(Connector::new(t).map_err(MeshError::ControlPlane)?),
            None => None,
        };
        let config = self.core_config();
        let method = config.xds.protocol.method();
        let timeline = Timeline::start();
        let seed = self.seed.unwrap_or_else(random_seed);
        let core = match &feed {
            None => CoreMesh::new(config, seed, timeline.now()),
            Some(shard) => {
                let mut core = CoreMesh::data_plane(config, seed, timeline.now());
                let snapshot = Arc::clone(&shard.snapshots().borrow());
                core.handle_snapshot(timeline.now(), snapshot);
                core
            }
        };
        let snapshots = feed.as_ref().map(XdsShard::snapshots);
        let (transport_tx, transport_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(self.options.ads.event_capacity.max(1));
        let (generation, _) = watch::channel(0);
        let (ads_status, _) = watch::channel(AdsStatus::default());
        let wake = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = oneshot::channel();
        let connect = Arc::new(ConnectSettings {
            connect_timeout: self.options.connect_timeout,
            keepalive_interval: self.options.keepalive_interval,
            keepalive_timeout: self.options.keepalive_timeout,
        });
        let shared = Arc::new_cyclic(|weak| Shared {
            weak: weak.clone(),
            state: Mutex::new(State {
                core,
                armed: None,
                calls: HashMap::new(),
                subchannels: HashMap::new(),
                ads: None,
                channels: HashMap::new(),
                closed: false,
                version: 0,
                epochs: 0,
            }),
            timeline,
            rt: Arc::clone(&runtime),
            wake: Arc::clone(&wake),
            events,
            generation,
            ads_status,
            xds: connector.map(|connector| XdsLink {
                connector,
                method,
                options: Arc::new(self.options.ads.clone()),
            }),
            transport_tx,
            connect,
            options: self.options,
            security: self.security,
            driver: Mutex::new(None),
            feed,
        });
        let task = spawn(
            &*runtime,
            drive(
                Arc::downgrade(&shared),
                wake,
                transport_rx,
                stop_rx,
                snapshots,
            ),
        );
        *shared.driver.lock().unwrap_or_else(|e| e.into_inner()) = Some((stop_tx, task));
        Ok(Mesh {
            shared,
            flavor: PhantomData,
        })
    }
}

/// A proxyless service mesh client on the runtime `F` (skiff-tokio's `Mesh` is
/// `Mesh<skiff_tokio::Tokio>`). Cheap to clone: clones share one core, one ADS stream and one
/// connection per endpoint. Create one per process (with [`Mesh::from_env`] or
/// [`Mesh::builder`]) and hand clones around.
///
/// ```no_run
/// # fn demo<F: skiff_adapter::Flavor>() -> Result<(), Box<dyn std::error::Error>> {
/// use skiff_adapter::{Mesh, XdsServerTarget};
/// let mesh = Mesh::<F>::builder()
///     .xds_server(XdsServerTarget::insecure("127.0.0.1:15010"))
///     .node_id("greeter-client-1")
///     .build()?;
/// let channel = mesh.channel("xds:///helloworld.Greeter")?;
/// // let mut client = GreeterClient::new(channel);   // any tonic-generated client
/// # let _ = channel; Ok(()) }
/// ```
pub struct Mesh<F> {
    shared: Arc<Shared>,
    flavor: PhantomData<fn() -> F>,
}

impl<F> Clone for Mesh<F> {
    fn clone(&self) -> Self {
        Mesh {
            shared: Arc::clone(&self.shared),
            flavor: PhantomData,
        }
    }
}

impl<F> fmt::Debug for Mesh<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mesh")
            .field("generation", &*self.shared.generation.borrow())
            .field("ads", &*self.shared.ads_status.borrow())
            .finish_non_exhaustive()
    }
}

impl<F: Flavor> Mesh<F> {
    /// A builder: control plane, node, seed, options.
    pub fn builder() -> MeshBuilder<F> {
        MeshBuilder::new()
    }

    /// A mesh configured by the gRPC xDS bootstrap the environment names:
    /// `GRPC_XDS_BOOTSTRAP` (a file path) or `GRPC_XDS_BOOTSTRAP_CONFIG` (the JSON).
    /// Reads `xds_servers[0]` (URI, `insecure`/`tls` channel creds, `ignore_resource_deletion`)
    /// and `node` (id, cluster, metadata, locality).
    pub fn from_env() -> Result<Mesh<F>, MeshError> {
        let b = bootstrap::from_env().map_err(MeshError::Bootstrap)?;
        Self::from_bootstrap(b)
    }

    /// Like [`Mesh::from_env`], from bootstrap JSON text.
    pub fn from_bootstrap_json(json: &str) -> Result<Mesh<F>, MeshError> {
        let b = bootstrap::parse(json).map_err(MeshError::Bootstrap)?;
        Self::from_bootstrap(b)
    }

    fn from_bootstrap(b: bootstrap::EnvBootstrap) -> Result<Mesh<F>, MeshError> {
        let mut builder = Mesh::<F>::builder().xds_server(b.server);
        let mut node = b.node;
        // The bootstrap's node, plus what every skiff client says about itself.
        let defaults = MeshBuilder::<F>::new().node;
        if node.user_agent_name.is_empty() {
            node.user_agent_name = defaults.user_agent_name;
            node.user_agent_version_type = defaults.user_agent_version_type;
        }
        if node.client_features.is_empty() {
            node.client_features = defaults.client_features;
        }
        builder = builder.node(node);
        builder.ignore_resource_deletion = b.ignore_resource_deletion;
        builder.build()
    }

    /// A client of the gRPC interface `T` serves, found by interface name rather than by host
    /// (DESIGN.md §7): `T::from_channel(self.channel("xds:///" + T::INTERFACE))`. The control
    /// plane maps the interface to the service whose workloads announce it
    /// ([`MeshBuilder::serves`]) or that its configuration declares.
    ///
    /// ```ignore
    /// skiff_tokio::mesh_client!(GreeterClient => "helloworld.Greeter");
    /// let mut greeter = mesh.client::<GreeterClient<skiff_tokio::Channel>>()?;
    /// ```
    pub fn client<T: MeshClient>(&self) -> Result<T, MeshError> {
        let target = format!("xds:///{}", T::INTERFACE);
        self.channel(&target).map(T::from_channel)
    }

    /// A channel to `target`: `xds:///name` (a listener of the control plane: `host:port` or a
    /// gRPC interface name such as `helloworld.Greeter`), or a plain `dns:///host:port` /
    /// `host:port`. Opening the same xDS target again shares the first channel.
    pub fn channel(&self, target: &str) -> Result<Channel, MeshError> {
        if target.starts_with("xds:") {
            return self.xds_channel(target).map(Channel::xds);
        }
        let pool = DirectPool::new(
            Arc::clone(&self.shared.rt),
            target,
            Arc::clone(&self.shared.connect),
            self.shared.options.resolve_interval,
        )?;
        Ok(Channel::direct(Arc::new(pool)))
    }

    fn xds_channel(&self, target: &str) -> Result<Arc<ChannelInner>, MeshError> {
        if self.shared.xds.is_none() && self.shared.feed.is_none() {
            return Err(MeshError::NoXdsServer(target.to_string()));
        }
        let mut st = self.shared.lock();
        if st.closed {
            return Err(MeshError::Closed);
        }
        if let Some(c) = st.channels.get(target).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let now = self.shared.timeline.now();
        let id = st.core.open_channel(now, target).map_err(|e| {
            let reason = match &e {
                TargetError::Empty => "no listener name".to_string(),
                other => other.to_string(),
            };
            MeshError::InvalidTarget {
                target: target.to_string(),
                reason,
            }
        })?;
        let name = target
            .trim_start_matches("xds:")
            .trim_start_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let authority = name.parse().or_else(|_| "skiff.invalid".parse()).map_err(
            |e: http::uri::InvalidUri| MeshError::InvalidTarget {
                target: target.to_string(),
                reason: e.to_string(),
            },
        )?;
        let inner = Arc::new(ChannelInner {
            shared: Arc::clone(&self.shared),
            id,
            target: target.to_string(),
            authority,
        });
        st.channels
            .insert(target.to_string(), Arc::downgrade(&inner));
        if let Some(shard) = &self.shared.feed
            && shard.register(target).is_err()
        {
            tracing::warn!(%target, "the xDS shard has stopped; the channel gets no configuration");
        }
        self.shared.flush(&mut st, false);
        Ok(inner)
    }

    /// Runs `f` on the core (with the mesh's `now`), then acts on its outputs: the way to use
    /// any core command the handle does not wrap (`watch_resource`, ...).
    pub fn with_core<R>(&self, f: impl FnOnce(&mut CoreMesh, Instant) -> R) -> R {
        let mut st = self.shared.lock();
        let now = self.shared.timeline.now();
        let r = f(&mut st.core, now);
        self.shared.flush(&mut st, false);
        r
    }

    /// The shard feeding this data plane ([`MeshBuilder::build_fed`]), if any.
    pub(crate) fn feed(&self) -> Option<&XdsShard> {
        self.shared.feed.as_ref()
    }

    /// Reads the core.
    pub fn read<R>(&self, f: impl FnOnce(&CoreMesh) -> R) -> R {
        f(&self.shared.lock().core)
    }

    /// Waits until `f` returns `Some`, re-checking whenever the configuration or a
    /// subchannel changes.
    pub async fn wait_for<R>(&self, f: impl Fn(&CoreMesh) -> Option<R>) -> R {
        let mut generation = self.shared.generation.subscribe();
        loop {
            generation.borrow_and_update();
            if let Some(r) = self.read(&f) {
                return r;
            }
            if generation.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The xDS client's config dump (applied, rejected and why).
    pub fn config_dump(&self) -> Vec<DumpEntry> {
        self.read(|m| m.xds().config_dump())
    }

    /// Every event from now on (a subscriber too far behind misses some).
    pub fn subscribe(&self) -> broadcast::Receiver<MeshEvent> {
        self.shared.events.subscribe()
    }

    /// A counter that moves whenever the configuration or a subchannel's state changes.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    /// The ADS link's state.
    pub fn ads_status(&self) -> watch::Receiver<AdsStatus> {
        self.shared.ads_status.subscribe()
    }

    /// Stops the mesh: queued and running RPCs end with CANCELLED, the ADS stream and every
    /// connection close, and new RPCs fail with UNAVAILABLE.
    pub async fn shutdown(&self) {
        {
            let mut st = self.shared.lock();
            st.closed = true;
            let now = self.shared.timeline.now();
            let channels: Vec<ChannelId> = st
                .channels
                .values()
                .filter_map(Weak::upgrade)
                .map(|c| c.id)
                .collect();
            for ch in channels {
                st.core.close_channel(now, ch);
            }
            self.shared.flush(&mut st, false);
            st.ads = None;
            st.subchannels.clear();
        }
        let driver = self
            .shared
            .driver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((stop, task)) = driver {
            let _ = stop.send(());
            task.join().await;
        }
    }
}

// ---- shared state -------------------------------------------------------------------------

struct XdsLink {
    connector: Connector,
    method: &'static str,
    options: Arc<DriverOptions>,
}

struct AdsSlot {
    id: AdsStreamId,
    out: Option<mpsc::UnboundedSender<Bytes>>,
    pending: Vec<Bytes>,
    _task: Task,
}

struct SubSlot {
    epoch: u64,
    address: SocketAddr,
    tls: bool,
    /// The connection's sender while the subchannel is `Ready`.
    send: Option<hyper::client::conn::http2::SendRequest<AttemptBody>>,
    /// Dropping it stops the connection task.
    _close: oneshot::Sender<()>,
}

pub(crate) struct State {
    pub(crate) core: CoreMesh,
    /// When the driver's timer fires (core time).
    armed: Option<Instant>,
    calls: HashMap<CallId, Arc<CallCell>>,
    subchannels: HashMap<SubchannelId, SubSlot>,
    ads: Option<AdsSlot>,
    channels: HashMap<String, Weak<ChannelInner>>,
    pub(crate) closed: bool,
    version: u64,
    epochs: u64,
}

impl State {
    /// A pick with its connection resolved.
    fn resolve(&self, pick: Pick) -> Next {
        match pick {
            Pick::Send(route) => {
                let conn = self.subchannels.get(&route.subchannel).and_then(|s| {
                    s.send.as_ref().map(|send| Conn {
                        send: send.clone(),
                        subchannel: route.subchannel,
                        epoch: s.epoch,
                        tls: s.tls,
                    })
                });
                Next::Send(route, conn)
            }
            Pick::Queue => Next::Queue,
            Pick::Fail(e) | Pick::Drop(e) => Next::Fail(e),
        }
    }

    fn forget_call(&mut self, id: CallId) {
        self.calls.remove(&id);
    }
}

pub(crate) struct Shared {
    weak: Weak<Shared>,
    state: Mutex<State>,
    pub(crate) timeline: Timeline,
    pub(crate) rt: Rt,
    wake: Arc<Notify>,
    events: broadcast::Sender<MeshEvent>,
    generation: watch::Sender<u64>,
    ads_status: watch::Sender<AdsStatus>,
    xds: Option<XdsLink>,
    transport_tx: mpsc::Sender<TransportEvent>,
    connect: Arc<ConnectSettings>,
    pub(crate) options: MeshOptions,
    security: Option<Arc<dyn TransportSecurity>>,
    driver: Mutex<Option<(oneshot::Sender<()>, Task)>>,
    /// The shard feeding a data plane ([`MeshBuilder::build_fed`]).
    feed: Option<XdsShard>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Acts on every output of the core, then lowers the driver's timer if needed. Called after
    /// every input, with the lock held. `from_driver`: the driver re-arms its own timer.
    pub(crate) fn flush(&self, st: &mut State, from_driver: bool) {
        let mut changed = false;
        loop {
            let mut refused_streams: Vec<(AdsStreamId, String)> = Vec::new();
            while let Some(o) = st.core.poll_output() {
                match o {
                    Output::Picked { call, pick } => {
                        if st.calls.contains_key(&call) {
                            let next = st.resolve(pick);
                            if let Some(cell) = st.calls.get(&call) {
                                cell.push(Signal::Picked(next));
                            }
                        }
                    }
                    Output::CallEnded { call, result } => {
                        if let Some(cell) = st.calls.remove(&call) {
                            cell.push(Signal::Ended(result));
                        }
                    }
                    Output::Connect {
                        subchannel,
                        address,
                        cluster,
                    } => {
                        changed = true;
                        self.spawn_subchannel(st, subchannel, address, cluster);
                    }
                    Output::Disconnect { subchannel } => {
                        changed = true;
                        if let Some(s) = st.subchannels.remove(&subchannel) {
                            tracing::debug!(address = %s.address, "subchannel removed");
                        }
                    }
                    Output::AdsOpen(id) => match self.open_ads(st, id) {
                        Ok(()) => {}
                        Err(why) => refused_streams.push((id, why)),
                    },
                    Output::AdsSend(id, bytes) => match &mut st.ads {
                        Some(slot) if slot.id == id => match &slot.out {
                            Some(out) => {
                                let _ = out.send(bytes);
                            }
                            None => slot.pending.push(bytes),
                        },
                        _ => tracing::debug!(stream = %id, "send on an ADS stream that is gone"),
                    },
                    Output::AdsClose(id) => {
                        if st.ads.as_ref().is_some_and(|s| s.id == id) {
                            st.ads = None;
                            self.ads_status.send_modify(|s| {
                                s.stream = None;
                                s.open = false;
                            });
                        }
                    }
                    Output::Xds(e) => {
                        changed = true;
                        <XdsClient as AdsMachine>::trace_event(&e);
                        let _ = self.events.send(MeshEvent::Xds(e));
                    }
                    Output::Event(e) => {
                        match &e {
                            PlaneEvent::SnapshotApplied { generation } => {
                                changed = true;
                                tracing::debug!(generation, "configuration snapshot applied");
                            }
                            PlaneEvent::RetryScheduled { .. } => {
                                tracing::trace!(event = ?e, "retry")
                            }
                            other => tracing::info!(event = ?other, "mesh event"),
                        }
                        if self.events.receiver_count() > 0 {
                            let _ = self.events.send(MeshEvent::Plane(e));
                        }
                    }
                }
            }
            if refused_streams.is_empty() {
                break;
            }
            let now = self.timeline.now();
            for (id, why) in refused_streams {
                st.core.handle_ads_closed(now, id, &why);
            }
        }
        if changed {
            st.version += 1;
            self.generation.send_replace(st.version);
        }
        let next = st.core.poll_timeout().map(|d| d.at);
        if from_driver {
            st.armed = next;
        } else if let Some(n) = next
            && st.armed.is_none_or(|a| n < a)
        {
            st.armed = Some(n);
            self.wake.notify_one();
        }
    }

    fn spawn_subchannel(
        &self,
        st: &mut State,
        sc: SubchannelId,
        address: SocketAddr,
        cluster: Arc<ClusterConfig>,
    ) {
        if st.closed {
            return;
        }
        st.epochs += 1;
        let epoch = st.epochs;
        let (close_tx, close_rx) = oneshot::channel();
        st.subchannels.insert(
            sc,
            SubSlot {
                epoch,
                address,
                tls: cluster.tls.is_some(),
                send: None,
                _close: close_tx,
            },
        );
        tracing::debug!(%address, cluster = %cluster.name, "connecting subchannel");
        // Detached: dropping the slot's `_close` stops it.
        self.rt.spawn_detached(Box::pin(subchannel::run(
            Arc::clone(&self.rt),
            self.weak.clone(),
            sc,
            epoch,
            address,
            cluster,
            self.security.clone(),
            Arc::clone(&self.connect),
            close_rx,
        )));
    }

    fn publish_subchannel(&self, address: SocketAddr, state: Connectivity, reason: Option<&str>) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(MeshEvent::Subchannel {
                address,
                state,
                reason: reason.map(str::to_string),
            });
        }
    }

    /// A subchannel's connection is up. `false` if the subchannel moved on meanwhile.
    fn connected(
        &self,
        sc: SubchannelId,
        epoch: u64,
        send: hyper::client::conn::http2::SendRequest<AttemptBody>,
    ) -> bool {
        let mut st = self.lock();
        let Some(slot) = st.subchannels.get_mut(&sc).filter(|s| s.epoch == epoch) else {
            return false;
        };
        slot.send = Some(send);
        let address = slot.address;
        let now = self.timeline.now();
        tracing::debug!(%address, "subchannel ready");
        st.core
            .handle_subchannel_state(now, sc, Connectivity::Ready);
        self.publish_subchannel(address, Connectivity::Ready, None);
        self.flush(&mut st, false);
        true
    }

    /// Dialing a subchannel failed.
    fn connect_failed(&self, sc: SubchannelId, epoch: u64, reason: &str) {
        let mut st = self.lock();
        let Some(slot) = st.subchannels.get(&sc).filter(|s| s.epoch == epoch) else {
            return;
        };
        let address = slot.address;
        let now = self.timeline.now();
        st.core
            .handle_subchannel_state(now, sc, Connectivity::TransientFailure);
        self.publish_subchannel(address, Connectivity::TransientFailure, Some(reason));
        self.flush(&mut st, false);
    }

    /// A ready connection is gone or going away (closed, GOAWAY, failed send): the subchannel is
    /// `Idle` and the core reconnects. Idempotent per connection. The caller flushes.
    pub(crate) fn connection_lost(
        &self,
        st: &mut State,
        sc: SubchannelId,
        epoch: u64,
        reason: &str,
    ) {
        let Some(slot) = st.subchannels.get_mut(&sc).filter(|s| s.epoch == epoch) else {
            return;
        };
        if slot.send.take().is_none() {
            return;
        }
        let address = slot.address;
        tracing::debug!(%address, %reason, "subchannel idle");
        let now = self.timeline.now();
        st.core.handle_subchannel_state(now, sc, Connectivity::Idle);
        self.publish_subchannel(address, Connectivity::Idle, Some(reason));
    }

    fn open_ads(&self, st: &mut State, id: AdsStreamId) -> Result<(), String> {
        let Some(link) = &self.xds else {
            return Err("no control plane configured".into());
        };
        if st.closed {
            return Err("the mesh was shut down".into());
        }
        tracing::debug!(stream = %id, target = ?link.connector.endpoint(), "opening ADS stream");
        let task = spawn(
            &*self.rt,
            run_stream(
                Arc::clone(&self.rt),
                id,
                link.connector.clone(),
                link.method,
                Arc::clone(&link.options),
                self.transport_tx.clone(),
            ),
        );
        st.ads = Some(AdsSlot {
            id,
            out: None,
            pending: Vec::new(),
            _task: task,
        });
        self.ads_status.send_modify(|s| {
            s.stream = Some(id);
            s.open = false;
        });
        Ok(())
    }

    fn on_transport(&self, event: TransportEvent) {
        let mut st = self.lock();
        let now = self.timeline.now();
        match event {
            TransportEvent::Opened(id, out) => {
                let Some(slot) = st.ads.as_mut().filter(|s| s.id == id) else {
                    return;
                };
                for b in slot.pending.drain(..) {
                    let _ = out.send(b);
                }
                slot.out = Some(out);
                self.ads_status.send_modify(|s| {
                    s.open = true;
                    s.streams_opened += 1;
                });
                tracing::info!(stream = %id, "ADS stream open");
                st.core.handle_ads_open(now, id);
            }
            TransportEvent::Data(id, bytes) => st.core.handle_ads_data(now, id, &bytes),
            TransportEvent::Closed(id, reason) => {
                if st.ads.as_ref().is_some_and(|s| s.id == id) {
                    st.ads = None;
                    self.ads_status.send_modify(|s| {
                        s.stream = None;
                        s.open = false;
                        s.last_close = Some(reason.clone());
                    });
                }
                st.core.handle_ads_closed(now, id, &reason);
            }
        }
        self.flush(&mut st, true);
    }

    fn on_snapshot(&self, snapshot: Arc<Snapshot>) {
        let mut st = self.lock();
        let now = self.timeline.now();
        st.core.handle_snapshot(now, snapshot);
        self.flush(&mut st, true);
    }

    fn on_timer(&self) {
        let mut st = self.lock();
        let now = self.timeline.now();
        st.core.handle_timeout(now);
        self.flush(&mut st, true);
    }

    fn armed(&self) -> Option<std::time::Instant> {
        let st = self.lock();
        st.armed.and_then(|a| self.timeline.to_std(a))
    }
}

/// The driver task: ADS transport events and the core's timer. It holds no strong reference
/// across waits, so it ends when the last handle is dropped.
async fn drive(
    shared: Weak<Shared>,
    wake: Arc<Notify>,
    mut transport: mpsc::Receiver<TransportEvent>,
    mut stop: oneshot::Receiver<()>,
    mut snapshots: Option<watch::Receiver<Arc<Snapshot>>>,
) {
    loop {
        let timer = match shared.upgrade() {
            Some(s) => s.armed().map(|at| s.rt.sleep_until(at)),
            None => break,
        };
        let timer = async move {
            match timer {
                Some(sleep) => sleep.await,
                None => std::future::pending().await,
            }
        };
        let snapshot = async {
            match &mut snapshots {
                Some(rx) => match rx.changed().await {
                    Ok(()) => Some(Arc::clone(&rx.borrow_and_update())),
                    Err(_) => None,
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut stop => break,
            s = snapshot => match (s, shared.upgrade()) {
                (Some(snap), Some(s)) => s.on_snapshot(snap),
                (None, _) => {
                    tracing::debug!("the xDS shard stopped; keeping the last snapshot");
                    snapshots = None;
                }
                (_, None) => break,
            },
            event = transport.recv() => match (event, shared.upgrade()) {
                (Some(e), Some(s)) => s.on_transport(e),
                _ => break,
            },
            () = wake.notified() => tracing::trace!("driver re-arms its timer"),
            () = timer => match shared.upgrade() {
                Some(s) => {
                    tracing::trace!("driver timer fired");
                    s.on_timer()
                }
                None => break,
            },
        }
    }
    tracing::debug!("mesh driver stopped");
}

/// A client type bound to one gRPC interface, for [`Mesh::client`]. tonic-generated clients do
/// not carry their service's name, so the binding is declared once, next to the generated
/// code, with [`mesh_client!`](crate::mesh_client).
pub trait MeshClient: Sized {
    /// The fully-qualified gRPC service name (`package.Service`).
    const INTERFACE: &'static str;
    /// The client over a mesh channel.
    fn from_channel(channel: Channel) -> Self;
}

/// Binds a tonic-generated client to its gRPC interface name for [`Mesh::client`]:
///
/// ```ignore
/// skiff_tokio::mesh_client!(greeter_client::GreeterClient => "helloworld.Greeter");
/// ```
///
/// The client type must have tonic's `new(channel)` constructor.
#[macro_export]
macro_rules! mesh_client {
    ($($path:ident)::+ => $interface:expr) => {
        impl $crate::mesh::MeshClient for $($path)::+<$crate::mesh::Channel> {
            const INTERFACE: &'static str = $interface;
            fn from_channel(channel: $crate::mesh::Channel) -> Self {
                $($path)::+::new(channel)
            }
        }
    };
}
