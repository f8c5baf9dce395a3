//! [`Mesh`]: the one top-level sans-IO state machine. It composes the xDS client (configuration
//! in), the A74 snapshot, the router, the balancers and the resilience policies (RPC decisions
//! out).
//!
//! ## Run loop
//!
//! ```text
//! loop {
//!     wait for: application command | ADS bytes | connection event | timer
//!     mesh.handle_*(now, ...)            // or start_call / handle_call_outcome / ...
//!     while let Some(o) = mesh.poll_output() { act on o }   // send bytes, connect, resume calls
//!     arm the timer at mesh.poll_timeout()
//! }
//! ```
//!
//! ## An RPC's life
//!
//! `start_call` routes the RPC (route, cluster, hash — once per call, gRFC A28/A44), applies
//! fault injection (A33), computes the deadline (A31), checks the circuit breaker (A32) and
//! picks an endpoint. It answers [`Pick::Send`], [`Pick::Queue`] (no config or no connection
//! yet, or a fault delay), [`Pick::Fail`] or [`Pick::Drop`]. Each attempt ends with
//! `handle_call_outcome`: success, a transparent retry (refused stream), a retry after backoff
//! (A44, throttled per A6), or the end. Every started call ends with exactly one
//! [`Output::CallEnded`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use core::time::Duration;

use crate::balancer::{EndpointIndex, PickContext, PickResult, PlanOptions};
use crate::ids::{AdsStreamId, CallId, ChannelId, IdAllocator, SubchannelId};
use crate::plane::cluster::{ClusterRuntime, Reachability};
use crate::plane::subchannel::Subchannels;
use crate::plane::{
    CallError, CallOutcome, Connectivity, FailureSource, Output, Pick, PlaneEvent, Route, code,
};
use crate::resilience::fault;
use crate::resilience::outlier::{AttemptResult, OutlierChange};
use crate::resilience::retry::{self, FailedAttempt, NoRetry, RetryDecision};
use crate::resilience::throttle::{RetryThrottle, ThrottleConfig};
use crate::resource::Ignored;
use crate::resource::endpoint::LocalityName;
use crate::resource::listener::{ListenerKind, RouteSource};
use crate::resource::matcher::HeaderSource;
use crate::resource::retry::RetryPolicy;
use crate::resource::route::RouteConfig;
use crate::resource::snapshot::{ListenerStatus, Snapshot};
use crate::rng::{Rng, Seed};
use crate::router::{self, FilterPlan, RequestHead};
use crate::time::{Clock, Deadline, Instant, TimerKind};
use crate::xds::backoff::BackoffConfig;
use crate::xds::snapshot::build_snapshot;
use crate::xds::{ResourceType, XdsClient, XdsClientConfig, XdsOutput};

/// Transparent retries of one call are bounded so a peer that refuses every stream cannot
/// make the core loop.
const MAX_TRANSPARENT_RETRIES: u32 = 5;

/// Configuration of a [`Mesh`].
#[derive(Clone, Debug)]
pub struct MeshConfig {
    /// The xDS client (node, protocol, server features).
    pub xds: XdsClientConfig,
    /// Reconnect backoff of subchannels (gRPC connection backoff).
    pub subchannel_backoff: BackoffConfig,
    /// Retry throttling per channel (gRFC A6); `None` disables it.
    pub retry_throttle: Option<ThrottleConfig>,
    /// Balancer plan options (ring-hash size cap, gRFC A42).
    pub plan: PlanOptions,
}

impl MeshConfig {
    /// The configuration a gRPC xDS bootstrap describes: its node (with skiff's user agent and
    /// client features) and the primary server's features (`ignore_resource_deletion`, gRFC
    /// A53). Transport details (server URI, credentials) are the driver's business.
    pub fn from_bootstrap(bootstrap: &crate::bootstrap::Bootstrap) -> Self {
        let mut xds = XdsClientConfig::new(bootstrap.node.to_proto());
        xds.ignore_resource_deletion = bootstrap
            .primary_server()
            .is_some_and(|s| s.server_features.ignore_resource_deletion);
        MeshConfig::new(xds)
    }

    /// Defaults around an xDS client configuration.
    pub fn new(xds: XdsClientConfig) -> Self {
        MeshConfig {
            xds,
            subchannel_backoff: BackoffConfig::default(),
            retry_throttle: None,
            plan: PlanOptions::default(),
        }
    }
}

/// Why `open_channel` refused a target.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// Not an `xds:` target; plain targets are handled by the driver.
    NotXds(String),
    /// `xds:///` with no name.
    Empty,
}

impl core::fmt::Display for TargetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TargetError::NotXds(t) => write!(f, "{t:?} is not an xds:/// target"),
            TargetError::Empty => f.write_str("xds target without a name"),
        }
    }
}

impl std::error::Error for TargetError {}

/// The caller used an id that is not (or no longer) valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// Unknown or closed channel.
    UnknownChannel(ChannelId),
}

impl core::fmt::Display for UsageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UsageError::UnknownChannel(c) => write!(f, "unknown channel {c}"),
        }
    }
}

impl std::error::Error for UsageError {}

/// What the data plane knows about a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// Waiting for configuration.
    Connecting,
    /// Configured: RPCs are routed.
    Ready,
    /// The listener does not exist or was rejected: RPCs fail.
    Failing(String),
}

/// An RPC to start.
#[derive(Clone, Copy)]
pub struct CallRequest<'a> {
    /// `/package.Service/Method`.
    pub path: &'a str,
    /// Request metadata.
    pub headers: &'a dyn HeaderSource,
    /// The application's timeout (from its deadline or `grpc-timeout`).
    pub timeout: Option<Duration>,
    /// gRPC wait-for-ready: queue instead of failing when no endpoint is reachable.
    pub wait_for_ready: bool,
}

impl core::fmt::Debug for CallRequest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CallRequest")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .field("wait_for_ready", &self.wait_for_ready)
            .finish_non_exhaustive()
    }
}

/// Owned metadata of a call that waits for configuration before it can be routed.
#[derive(Clone, Debug)]
struct OwnedHead {
    path: String,
    headers: Vec<(String, String)>,
}

struct OwnedHeaders<'a>(&'a [(String, String)]);

impl HeaderSource for OwnedHeaders<'_> {
    fn header_value(&self, name: &str, index: usize) -> Option<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .nth(index)
            .map(|(_, v)| v.as_str())
    }
    fn for_each_header(&self, f: &mut dyn FnMut(&str, &str)) {
        for (n, v) in self.0 {
            f(n, v);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    /// Waiting for the channel's configuration.
    AwaitingConfig,
    /// Held by a fault delay.
    FaultDelay,
    /// Routed; waiting for a reachable endpoint.
    WaitingPick,
    /// An attempt is in flight.
    Attempting,
    /// Waiting out a retry backoff.
    Backoff,
}

#[derive(Clone, Debug)]
struct Attempt {
    cluster: Arc<str>,
    endpoint: EndpointIndex,
    address: SocketAddr,
    locality: Option<LocalityName>,
}

#[derive(Debug)]
struct Call {
    channel: ChannelId,
    state: CallState,
    head: Option<OwnedHead>,
    app_timeout: Option<Duration>,
    wait_for_ready: bool,
    cluster: Option<Arc<str>>,
    hash: Option<u64>,
    retry: Option<RetryPolicy>,
    deadline: Option<Instant>,
    deadline_from_route: bool,
    started: Instant,
    attempts: u32,
    transparent_retries: u32,
    committed: bool,
    attempt: Option<Attempt>,
    fault_active: bool,
    abort_after_delay: Option<u32>,
    timer: Option<Instant>,
}

/// The route table a channel uses, derived from a snapshot.
#[derive(Debug)]
struct ChannelView {
    routes: Arc<RouteConfig>,
    vhost: Option<usize>,
    plan: FilterPlan,
    hcm_max_stream_duration: Option<Duration>,
}

#[derive(Debug)]
struct Channel {
    target: String,
    channel_hash: u64,
    view: Option<ChannelView>,
    view_generation: u64,
    throttle: Option<RetryThrottle>,
    active_faults: u32,
}

/// The sans-IO mesh: xDS in, routing decisions and connection commands out.
#[derive(Debug)]
pub struct Mesh {
    config: MeshConfig,
    clock: Clock,
    rng: Rng,
    xds: XdsClient,
    xds_generation: u64,
    snapshot: Arc<Snapshot>,
    channels: BTreeMap<ChannelId, Channel>,
    channel_ids: IdAllocator,
    calls: BTreeMap<CallId, Call>,
    call_ids: IdAllocator,
    clusters: BTreeMap<String, ClusterRuntime>,
    subchannels: Subchannels,
    outputs: VecDeque<Output>,
    /// A data plane fed by another instance's xDS client ([`Mesh::data_plane`]).
    external: bool,
}

impl Mesh {
    /// A mesh running from `seed`, starting at `now`.
    pub fn new(config: MeshConfig, seed: Seed, now: Instant) -> Self {
        let root = Rng::new(seed);
        let xds = XdsClient::new(config.xds.clone(), root.fork("xds"), now);
        Mesh {
            subchannels: Subchannels::new(config.subchannel_backoff),
            config,
            clock: Clock::new(now),
            rng: root.fork("plane"),
            xds,
            xds_generation: 0,
            snapshot: Arc::new(Snapshot::default()),
            channels: BTreeMap::new(),
            channel_ids: IdAllocator::default(),
            calls: BTreeMap::new(),
            call_ids: IdAllocator::default(),
            clusters: BTreeMap::new(),
            outputs: VecDeque::new(),
            external: false,
        }
    }

    /// A data plane whose configuration comes from elsewhere: its own xDS client stays idle
    /// (no ADS stream, no watches) and [`Mesh::handle_snapshot`] installs the snapshots another
    /// mesh's (or a bare [`XdsClient`]'s) [`build_snapshot`] made. Thread-per-core adapters run
    /// one xDS client and one of these per core, so balancer state, subchannels and calls stay
    /// on their core while the configuration is shared (`Arc<Snapshot>`).
    pub fn data_plane(config: MeshConfig, seed: Seed, now: Instant) -> Self {
        let mut m = Mesh::new(config, seed, now);
        m.external = true;
        m
    }

    /// Installs a snapshot built by the xDS client that feeds this data plane
    /// ([`Mesh::data_plane`]); ignored by a mesh with its own xDS client. A snapshot with the
    /// same content as the current one changes nothing but retries queued calls.
    pub fn handle_snapshot(&mut self, now: Instant, snapshot: Arc<Snapshot>) {
        if !self.external {
            return;
        }
        let now = self.clock.observe(now);
        self.install_snapshot(now, snapshot);
    }

    // ---- (A) getters ---------------------------------------------------------------------

    /// The xDS client (config dump, cache).
    pub fn xds(&self) -> &XdsClient {
        &self.xds
    }

    /// The configuration snapshot in use.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// A channel's state.
    pub fn channel_state(&self, ch: ChannelId) -> Option<ChannelState> {
        let c = self.channels.get(&ch)?;
        Some(match self.snapshot.status.get(&c.target) {
            Some(ListenerStatus::Ready) => ChannelState::Ready,
            Some(ListenerStatus::DoesNotExist) => {
                ChannelState::Failing(format!("listener {} does not exist", c.target))
            }
            Some(ListenerStatus::Rejected(why)) => {
                ChannelState::Failing(format!("listener {} was rejected: {why}", c.target))
            }
            _ => ChannelState::Connecting,
        })
    }

    /// Calls not yet ended.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// A cluster's runtime state (circuit breaker, outlier detection, load counters).
    pub fn cluster(&self, name: &str) -> Option<&ClusterRuntime> {
        self.clusters.get(name)
    }

    /// The subchannel table.
    pub fn subchannels(&self) -> &Subchannels {
        &self.subchannels
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Deadline> {
        let mut best = self.xds.poll_timeout();
        for c in self.calls.values() {
            if let Some(t) = c.timer {
                best = Deadline::earliest(best, Some(Deadline::new(t, TimerKind::RetryBackoff)));
            }
            if let Some(d) = c.deadline {
                best = Deadline::earliest(best, Some(Deadline::new(d, TimerKind::CallDeadline)));
            }
        }
        if let Some(t) = self.subchannels.next_reconnect() {
            best = Deadline::earliest(best, Some(Deadline::new(t, TimerKind::SubchannelBackoff)));
        }
        for c in self.clusters.values() {
            if let Some(t) = c.outlier.as_ref().and_then(|o| o.poll_timeout()) {
                best =
                    Deadline::earliest(best, Some(Deadline::new(t, TimerKind::OutlierDetection)));
            }
        }
        best
    }

    /// The next output. Drain until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ---- (B) network inputs --------------------------------------------------------------

    /// The ADS stream `s` opened.
    pub fn handle_ads_open(&mut self, now: Instant, s: AdsStreamId) {
        let now = self.clock.observe(now);
        self.xds.handle_ads_open(now, s);
        self.after_xds(now);
    }

    /// Bytes arrived on the ADS stream.
    pub fn handle_ads_data(&mut self, now: Instant, s: AdsStreamId, data: &[u8]) {
        let now = self.clock.observe(now);
        self.xds.handle_ads_data(now, s, data);
        self.after_xds(now);
    }

    /// The ADS stream ended.
    pub fn handle_ads_closed(&mut self, now: Instant, s: AdsStreamId, reason: &str) {
        let now = self.clock.observe(now);
        self.xds.handle_ads_closed(now, s, reason);
        self.after_xds(now);
    }

    /// A subchannel's connectivity changed.
    pub fn handle_subchannel_state(&mut self, now: Instant, sc: SubchannelId, st: Connectivity) {
        let now = self.clock.observe(now);
        if !self.subchannels.set_state(now, sc, st, &mut self.rng) {
            return;
        }
        let Some(addr) = self.subchannels.by_id(sc).map(|s| s.address) else {
            return;
        };
        let names: Vec<String> = self
            .clusters
            .iter()
            .filter(|(_, c)| c.addrs.contains(&addr))
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            if let Some(c) = self.clusters.get_mut(&n) {
                c.rebuild_picker(&self.subchannels, &mut self.rng);
            }
        }
        self.retry_waiting(now);
    }

    /// Timers. Spurious or early calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        self.xds.handle_timeout(now);
        self.after_xds(now);
        // Subchannel reconnects.
        for (id, address) in self.subchannels.due_reconnects(now) {
            if let Some(cluster) = self.cluster_using(address) {
                self.outputs.push_back(Output::Connect {
                    subchannel: id,
                    address,
                    cluster,
                });
            }
        }
        // Outlier detection intervals.
        let names: Vec<String> = self.clusters.keys().cloned().collect();
        for n in names {
            let Some(c) = self.clusters.get_mut(&n) else {
                continue;
            };
            let changes = match c.outlier.as_mut() {
                Some(o) if o.poll_timeout().is_some_and(|t| t <= now) => {
                    o.handle_timeout(now, &mut self.rng)
                }
                _ => continue,
            };
            if !changes.is_empty() {
                self.apply_outlier_changes(&n, changes);
            }
        }
        // Call timers: deadlines first, then delays and backoffs.
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let from_route = self.calls.get(&id).is_some_and(|c| c.deadline_from_route);
            let msg = if from_route {
                "deadline exceeded (route max_stream_duration)"
            } else {
                "deadline exceeded"
            };
            self.end_call(
                now,
                id,
                Err(CallError::new(
                    code::DEADLINE_EXCEEDED,
                    FailureSource::Deadline,
                    msg,
                )),
            );
        }
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.timer.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            call.timer = None;
            match call.state {
                CallState::FaultDelay => {
                    if let Some(code) = call.abort_after_delay.take() {
                        let err =
                            CallError::new(code, FailureSource::Fault, "fault injected: abort");
                        self.resolve(now, id, Pick::Fail(err));
                    } else {
                        call.state = CallState::WaitingPick;
                        let pick = self.pick_attempt(now, id);
                        self.resolve(now, id, pick);
                    }
                }
                CallState::Backoff => {
                    call.state = CallState::WaitingPick;
                    let pick = self.pick_attempt(now, id);
                    self.resolve(now, id, pick);
                }
                _ => {}
            }
        }
    }

    // ---- (C) application commands --------------------------------------------------------

    /// Opens a channel to an `xds:///name` target: subscribes its listener.
    pub fn open_channel(&mut self, now: Instant, target: &str) -> Result<ChannelId, TargetError> {
        let now = self.clock.observe(now);
        let name = parse_xds_target(target)?;
        let (i, g) = self.channel_ids.alloc();
        let id = ChannelId::new(i, g);
        let channel_hash = self.rng.next_u64();
        self.channels.insert(
            id,
            Channel {
                target: name.to_string(),
                channel_hash,
                view: None,
                view_generation: 0,
                throttle: self.config.retry_throttle.map(RetryThrottle::new),
                active_faults: 0,
            },
        );
        if self.external {
            // The feeding xDS client watches it; its view arrives with the next snapshot.
            let snap = Arc::clone(&self.snapshot);
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.view = channel_view(&snap, name);
                ch.view_generation = snap.generation;
            }
            return Ok(id);
        }
        self.xds.watch(now, ResourceType::Listener, name);
        self.after_xds(now);
        Ok(id)
    }

    /// Watches any xDS resource directly (an xDS-enabled server's listener, gRFC A36, or a
    /// cluster for a tool). Read it with `self.xds().resource(..)`; it shares the one ADS
    /// stream with the channels.
    pub fn watch_resource(&mut self, now: Instant, ty: ResourceType, name: &str) {
        let now = self.clock.observe(now);
        self.xds.watch(now, ty, name);
        self.after_xds(now);
    }

    /// Stops a [`Mesh::watch_resource`] watch.
    pub fn unwatch_resource(&mut self, now: Instant, ty: ResourceType, name: &str) {
        let now = self.clock.observe(now);
        self.xds.unwatch(now, ty, name);
        self.after_xds(now);
    }

    /// Closes a channel; its calls end with CANCELLED.
    pub fn close_channel(&mut self, now: Instant, ch: ChannelId) {
        let now = self.clock.observe(now);
        let Some(c) = self.channels.get(&ch) else {
            return;
        };
        let target = c.target.clone();
        let calls: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.channel == ch)
            .map(|(id, _)| *id)
            .collect();
        for id in calls {
            self.end_call(
                now,
                id,
                Err(CallError::new(
                    code::CANCELLED,
                    FailureSource::Cancelled,
                    "channel closed",
                )),
            );
        }
        self.channels.remove(&ch);
        self.channel_ids.free(ch.index(), ch.generation());
        if !self.external && !self.channels.values().any(|c| c.target == target) {
            self.xds.unwatch(now, ResourceType::Listener, &target);
        }
        self.after_xds(now);
    }

    /// Starts an RPC on `ch`.
    pub fn start_call(
        &mut self,
        now: Instant,
        ch: ChannelId,
        req: &CallRequest<'_>,
    ) -> Result<(CallId, Pick), UsageError> {
        let now = self.clock.observe(now);
        if !self.channels.contains_key(&ch) {
            return Err(UsageError::UnknownChannel(ch));
        }
        let (i, g) = self.call_ids.alloc();
        let id = CallId::new(i, g);
        self.calls.insert(
            id,
            Call {
                channel: ch,
                state: CallState::AwaitingConfig,
                head: None,
                app_timeout: req.timeout,
                wait_for_ready: req.wait_for_ready,
                cluster: None,
                hash: None,
                retry: None,
                // The application's deadline runs from the start, even while queued.
                deadline: req.timeout.map(|t| now.saturating_add(t)),
                deadline_from_route: false,
                started: now,
                attempts: 0,
                transparent_retries: 0,
                committed: false,
                attempt: None,
                fault_active: false,
                abort_after_delay: None,
                timer: None,
            },
        );
        let head = RequestHead {
            path: req.path,
            headers: req.headers,
            channel_id: 0,
        };
        let pick = self.route_call(now, id, &head);
        if matches!(pick, Pick::Queue)
            && self
                .calls
                .get(&id)
                .is_some_and(|c| c.state == CallState::AwaitingConfig)
        {
            // Keep a copy of the metadata to route it once configuration arrives.
            let mut headers = Vec::new();
            req.headers
                .for_each_header(&mut |n, v| headers.push((n.to_string(), v.to_string())));
            if let Some(c) = self.calls.get_mut(&id) {
                c.head = Some(OwnedHead {
                    path: req.path.to_string(),
                    headers,
                });
            }
        }
        if let Pick::Fail(e) | Pick::Drop(e) = &pick {
            let e = e.clone();
            self.end_call(now, id, Err(e));
        }
        Ok((id, pick))
    }

    /// Response headers arrived: the call is committed, no more retries (gRFC A44).
    pub fn handle_call_committed(&mut self, now: Instant, call: CallId) {
        self.clock.observe(now);
        if let Some(c) = self.calls.get_mut(&call) {
            c.committed = true;
        }
    }

    /// The current attempt of `call` ended.
    pub fn handle_call_outcome(&mut self, now: Instant, call: CallId, o: &CallOutcome<'_>) {
        let now = self.clock.observe(now);
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Attempting {
            return;
        }
        let ok = o.code == code::OK;
        self.finish_attempt(now, call, if o.refused { None } else { Some(o.code) });
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if ok {
            if let Some(t) = self
                .channels
                .get_mut(&c.channel)
                .and_then(|ch| ch.throttle.as_mut())
            {
                t.on_success();
            }
            self.end_call(now, call, Ok(()));
            return;
        }
        // Transparent retry: the server application never saw the attempt (gRFC A6).
        if o.refused && !c.committed && c.transparent_retries < MAX_TRANSPARENT_RETRIES {
            c.transparent_retries += 1;
            c.state = CallState::WaitingPick;
            let pick = self.pick_attempt(now, call);
            self.resolve(now, call, pick);
            return;
        }
        let retryable = c.retry.as_ref().is_some_and(|r| r.retries_code(o.code));
        let throttle = self
            .channels
            .get_mut(&c.channel)
            .and_then(|ch| ch.throttle.as_mut());
        let throttle_allows = match throttle {
            Some(t) => {
                // A6: only failures with a retryable status cost a token.
                if retryable {
                    t.on_failure();
                }
                t.allows_retry()
            }
            None => true,
        };
        let decision = match &c.retry {
            Some(p) => retry::decide(
                &FailedAttempt {
                    attempts: c.attempts,
                    max_attempts: p.max_attempts(),
                    retryable,
                    committed: c.committed,
                    pushback: o.pushback,
                    throttle_allows,
                    base: p.base_backoff,
                    max: p.max_backoff,
                },
                &mut self.rng,
            ),
            None => RetryDecision::Stop(NoRetry::NotRetryable),
        };
        match decision {
            RetryDecision::RetryAfter(d) => {
                let at = now.saturating_add(d);
                if c.deadline.is_some_and(|dl| at >= dl) {
                    let e = CallError::new(o.code, FailureSource::Application, o.message);
                    self.end_call(now, call, Err(e));
                    return;
                }
                c.state = CallState::Backoff;
                c.timer = Some(at);
                let attempt = c.attempts + 1;
                self.outputs
                    .push_back(Output::Event(PlaneEvent::RetryScheduled {
                        call,
                        attempt,
                        delay: d,
                    }));
            }
            RetryDecision::Stop(why) => {
                let source = if why == NoRetry::Throttled {
                    FailureSource::RetryBudget
                } else {
                    FailureSource::Application
                };
                let e = CallError::new(o.code, source, o.message);
                self.end_call(now, call, Err(e));
            }
        }
    }

    /// The application cancelled the call.
    pub fn cancel_call(&mut self, now: Instant, call: CallId) {
        let now = self.clock.observe(now);
        if self.calls.contains_key(&call) {
            self.end_call(
                now,
                call,
                Err(CallError::new(
                    code::CANCELLED,
                    FailureSource::Cancelled,
                    "cancelled",
                )),
            );
        }
    }

    // ---- internals -----------------------------------------------------------------------

    fn after_xds(&mut self, now: Instant) {
        while let Some(o) = self.xds.poll_output() {
            self.outputs.push_back(match o {
                XdsOutput::AdsOpen(s) => Output::AdsOpen(s),
                XdsOutput::AdsSend(s, b) => Output::AdsSend(s, b),
                XdsOutput::AdsClose(s) => Output::AdsClose(s),
                XdsOutput::Event(e) => Output::Xds(e),
            });
        }
        if self.external
            || (self.xds.generation() == self.xds_generation && !self.targets_changed())
        {
            return;
        }
        self.xds_generation = self.xds.generation();
        self.apply_snapshot(now);
    }

    fn targets_changed(&self) -> bool {
        self.channels
            .values()
            .any(|c| !self.snapshot.status.contains_key(&c.target))
    }

    fn apply_snapshot(&mut self, now: Instant) {
        let roots: BTreeSet<&str> = self.channels.values().map(|c| c.target.as_str()).collect();
        let snap = build_snapshot(&self.xds, roots.iter().copied(), Some(&self.snapshot));
        self.install_snapshot(now, snap);
    }

    fn install_snapshot(&mut self, now: Instant, snap: Arc<Snapshot>) {
        let changed = !same_content(&snap, &self.snapshot);
        self.snapshot = snap;
        if !changed {
            self.retry_waiting(now);
            return;
        }
        self.outputs
            .push_back(Output::Event(PlaneEvent::SnapshotApplied {
                generation: self.snapshot.generation,
            }));
        // Clusters.
        let snap = Arc::clone(&self.snapshot);
        self.clusters
            .retain(|name, _| snap.clusters.contains_key(name));
        for (name, cfg) in &snap.clusters {
            let eps = cfg.eds_resource_name().and_then(|n| snap.endpoints.get(n));
            let rt = self
                .clusters
                .entry(name.clone())
                .or_insert_with(|| ClusterRuntime::new(Arc::clone(cfg), now));
            rt.update(now, cfg, eps, &self.config.plan, &mut self.rng);
        }
        // Subchannels for every endpoint of every cluster in use.
        let wanted: BTreeSet<SocketAddr> = self
            .clusters
            .values()
            .flat_map(|c| c.addrs.iter().copied())
            .collect();
        let (created, removed) = self.subchannels.sync(&wanted);
        for sc in removed {
            self.outputs
                .push_back(Output::Disconnect { subchannel: sc });
        }
        for (sc, address) in created {
            if let Some(cluster) = self.cluster_using(address) {
                self.outputs.push_back(Output::Connect {
                    subchannel: sc,
                    address,
                    cluster,
                });
            }
        }
        for c in self.clusters.values_mut() {
            c.rebuild_picker(&self.subchannels, &mut self.rng);
        }
        // Channel views.
        let generation = snap.generation;
        for ch in self.channels.values_mut() {
            ch.view = channel_view(&snap, &ch.target);
            ch.view_generation = generation;
        }
        self.retry_waiting(now);
    }

    fn cluster_using(
        &self,
        addr: SocketAddr,
    ) -> Option<Arc<crate::resource::cluster::ClusterConfig>> {
        self.clusters
            .values()
            .find(|c| c.addrs.contains(&addr))
            .map(|c| Arc::clone(&c.config))
    }

    /// Re-tries every call waiting for configuration or an endpoint.
    fn retry_waiting(&mut self, now: Instant) {
        let waiting: Vec<(CallId, CallState)> = self
            .calls
            .iter()
            .filter(|(_, c)| matches!(c.state, CallState::AwaitingConfig | CallState::WaitingPick))
            .map(|(id, c)| (*id, c.state))
            .collect();
        for (id, state) in waiting {
            let pick = match state {
                CallState::AwaitingConfig => {
                    let Some(head) = self.calls.get(&id).and_then(|c| c.head.clone()) else {
                        continue;
                    };
                    let hs = OwnedHeaders(&head.headers);
                    let rh = RequestHead {
                        path: &head.path,
                        headers: &hs,
                        channel_id: 0,
                    };
                    self.route_call(now, id, &rh)
                }
                _ => self.pick_attempt(now, id),
            };
            if !matches!(pick, Pick::Queue) {
                self.resolve(now, id, pick);
            }
        }
    }

    /// Delivers a late answer for a queued call.
    fn resolve(&mut self, now: Instant, id: CallId, pick: Pick) {
        if matches!(pick, Pick::Queue) {
            return;
        }
        let end = match &pick {
            Pick::Fail(e) | Pick::Drop(e) => Some(e.clone()),
            _ => None,
        };
        self.outputs.push_back(Output::Picked { call: id, pick });
        if let Some(e) = end {
            self.end_call(now, id, Err(e));
        }
    }

    /// Routes a call (once per call) and makes its first pick.
    fn route_call(&mut self, now: Instant, id: CallId, head: &RequestHead<'_>) -> Pick {
        let Some(call) = self.calls.get(&id) else {
            return Pick::Queue;
        };
        let Some(ch) = self.channels.get_mut(&call.channel) else {
            return Pick::Fail(CallError::new(
                code::CANCELLED,
                FailureSource::Cancelled,
                "channel closed",
            ));
        };
        match self.snapshot.status.get(&ch.target) {
            Some(ListenerStatus::Ready) => {}
            Some(ListenerStatus::DoesNotExist) => {
                return Pick::Fail(CallError::new(
                    code::UNAVAILABLE,
                    FailureSource::ControlPlane,
                    format!("xDS listener {} does not exist", ch.target),
                ));
            }
            Some(ListenerStatus::Rejected(why)) => {
                return Pick::Fail(CallError::new(
                    code::UNAVAILABLE,
                    FailureSource::ControlPlane,
                    format!("xDS listener {} was rejected: {why}", ch.target),
                ));
            }
            _ => return Pick::Queue,
        }
        let Some(view) = &ch.view else {
            return Pick::Fail(CallError::new(
                code::UNAVAILABLE,
                FailureSource::ControlPlane,
                format!("listener {} has no usable route configuration", ch.target),
            ));
        };
        let Some(vh_index) = view.vhost else {
            return Pick::Fail(CallError::new(
                code::UNAVAILABLE,
                FailureSource::Routing,
                format!("no virtual host matches {}", ch.target),
            ));
        };
        let Some(vhost) = view.routes.virtual_hosts.get(vh_index) else {
            return Pick::Queue;
        };
        let head = RequestHead {
            channel_id: ch.channel_hash,
            ..*head
        };
        let decision = match router::route(vhost, &head, &mut self.rng) {
            Ok(d) => d,
            Err(e) => {
                return Pick::Fail(CallError::new(
                    e.code(),
                    FailureSource::Routing,
                    e.to_string(),
                ));
            }
        };
        let Some(cluster) = decision.cluster() else {
            return Pick::Fail(CallError::new(
                code::UNAVAILABLE,
                FailureSource::Routing,
                "route has no cluster",
            ));
        };
        let cluster: Arc<str> = Arc::from(cluster);
        let retry = decision.retry_policy().cloned();
        let hash = decision.hash;
        let timeout = decision.timeout();
        let hcm_msd = view.hcm_max_stream_duration;
        // Fault injection (gRFC A33) from the effective fault filter of this route.
        let fault = view
            .plan
            .for_decision(vh_index, &decision)
            .iter()
            .find_map(|f| f.fault())
            .map(|cfg| fault::decide(cfg, head.headers, ch.active_faults, &mut self.rng))
            .unwrap_or_default();
        if fault.is_active() {
            ch.active_faults += 1;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return Pick::Queue;
        };
        call.cluster = Some(cluster);
        call.retry = retry;
        call.hash = hash;
        call.head = None;
        call.fault_active = fault.is_active();
        // Deadline (gRFC A31): the route may shorten the application's timeout.
        let effective = timeout.effective(hcm_msd, call.app_timeout);
        if let Some(t) = effective {
            call.deadline = Some(call.started.saturating_add(t));
            call.deadline_from_route = call.app_timeout.is_none_or(|a| t < a);
        }
        if let Some(delay) = fault.delay {
            call.state = CallState::FaultDelay;
            call.abort_after_delay = fault.abort;
            call.timer = Some(now.saturating_add(delay));
            return Pick::Queue;
        }
        if let Some(code) = fault.abort {
            return Pick::Fail(CallError::new(
                code,
                FailureSource::Fault,
                "fault injected: abort",
            ));
        }
        call.state = CallState::WaitingPick;
        self.pick_attempt(now, id)
    }

    /// Picks an endpoint for the next attempt of a routed call.
    fn pick_attempt(&mut self, _now: Instant, id: CallId) -> Pick {
        let Some(call) = self.calls.get_mut(&id) else {
            return Pick::Queue;
        };
        let Some(cluster_name) = call.cluster.clone() else {
            return Pick::Queue;
        };
        let Some(rt) = self.clusters.get_mut(&*cluster_name) else {
            let why = self
                .snapshot
                .missing_clusters
                .get(&*cluster_name)
                .cloned()
                .unwrap_or_else(|| "not in the configuration".to_string());
            return Pick::Fail(CallError::new(
                code::UNAVAILABLE,
                FailureSource::ControlPlane,
                format!("cluster {cluster_name}: {why}"),
            ));
        };
        match rt.reachability(&self.subchannels) {
            Reachability::Ready => {}
            Reachability::Connecting => return Pick::Queue,
            Reachability::Failing if call.wait_for_ready => return Pick::Queue,
            Reachability::Failing => {
                return Pick::Fail(CallError::new(
                    code::UNAVAILABLE,
                    FailureSource::NoHealthyEndpoint,
                    format!("no healthy endpoint in cluster {cluster_name}"),
                ));
            }
            Reachability::NoEndpoints => {
                // gRFC A27/A57: a cluster with no endpoints fails RPCs once EDS says so.
                return Pick::Fail(CallError::new(
                    code::UNAVAILABLE,
                    FailureSource::NoHealthyEndpoint,
                    format!("cluster {cluster_name} has no endpoints"),
                ));
            }
        }
        let Some(picker) = &rt.picker else {
            return Pick::Queue;
        };
        let mut ctx = PickContext::new(&mut self.rng)
            .with_hash(call.hash)
            .with_in_flight(&rt.in_flight[..]);
        match picker.pick(&mut ctx) {
            PickResult::Pick(ep) => {
                let Some(address) = rt.addrs.get(ep.get()).copied() else {
                    return Pick::Queue;
                };
                let Some(sc) = self.subchannels.get(&address).map(|s| s.id) else {
                    return Pick::Queue;
                };
                // gRFC A32: the breaker counts attempts in flight to the cluster.
                if !rt.breaker.try_acquire() {
                    rt.load.circuit_breaker_drops += 1;
                    return Pick::Fail(CallError::new(
                        code::UNAVAILABLE,
                        FailureSource::CircuitBreaker,
                        format!(
                            "circuit breaker of cluster {cluster_name} is open (max_requests {})",
                            rt.breaker.max_requests()
                        ),
                    ));
                }
                if let Some(n) = rt.in_flight.get_mut(ep.get()) {
                    *n += 1;
                }
                if let Some(slot) = rt.locality_slot(ep) {
                    rt.load.issued(slot);
                }
                call.attempts += 1;
                call.state = CallState::Attempting;
                call.attempt = Some(Attempt {
                    cluster: Arc::clone(&cluster_name),
                    endpoint: ep,
                    address,
                    locality: rt.locality(ep).cloned(),
                });
                Pick::Send(Route {
                    subchannel: sc,
                    address,
                    cluster: Arc::clone(&rt.config),
                    attempt: call.attempts,
                    deadline: call.deadline,
                })
            }
            PickResult::Drop { category } => {
                let name = picker.drop_category(category).unwrap_or("").to_string();
                rt.load.dropped(&name);
                Pick::Drop(CallError::new(
                    code::UNAVAILABLE,
                    FailureSource::Drop,
                    format!("dropped by load balancing policy (category {name:?})"),
                ))
            }
            PickResult::NoUsableEndpoint => Pick::Queue,
        }
    }

    /// Releases what the current attempt holds; records its outcome for outlier detection
    /// (`None` for refused streams, which say nothing about the endpoint's health).
    fn finish_attempt(&mut self, now: Instant, id: CallId, code: Option<u32>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(a) = call.attempt.take() else {
            return;
        };
        let Some(rt) = self.clusters.get_mut(&*a.cluster) else {
            return;
        };
        rt.breaker.release();
        if rt.addrs.get(a.endpoint.get()) == Some(&a.address)
            && let Some(n) = rt.in_flight.get_mut(a.endpoint.get())
        {
            *n = n.saturating_sub(1);
        }
        if let Some(l) = &a.locality {
            rt.load.finished(l, code == Some(code::OK));
        }
        let change = match (code, rt.outlier.as_mut()) {
            (Some(c), Some(o)) => o.record(
                now,
                a.address,
                AttemptResult::from_code(c as i32),
                &mut self.rng,
            ),
            _ => None,
        };
        if let Some(ch) = change {
            let name = a.cluster.to_string();
            self.apply_outlier_changes(&name, vec![ch]);
        }
    }

    fn apply_outlier_changes(&mut self, cluster: &str, changes: Vec<OutlierChange>) {
        for ch in &changes {
            self.outputs.push_back(Output::Event(match *ch {
                OutlierChange::Ejected(address, _) => PlaneEvent::Ejected {
                    cluster: cluster.to_string(),
                    address,
                },
                OutlierChange::Unejected(address) => PlaneEvent::Unejected {
                    cluster: cluster.to_string(),
                    address,
                },
            }));
        }
        if let Some(c) = self.clusters.get_mut(cluster) {
            c.rebuild_picker(&self.subchannels, &mut self.rng);
        }
    }

    /// Ends a call exactly once.
    fn end_call(&mut self, now: Instant, id: CallId, result: Result<(), CallError>) {
        if self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Attempting)
        {
            self.finish_attempt(now, id, None);
        }
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        if call.fault_active
            && let Some(ch) = self.channels.get_mut(&call.channel)
        {
            ch.active_faults = ch.active_faults.saturating_sub(1);
        }
        self.call_ids.free(id.index(), id.generation());
        self.outputs
            .push_back(Output::CallEnded { call: id, result });
    }
}

/// `xds:///name` or `xds://authority/name` → `name`.
pub fn parse_xds_target(target: &str) -> Result<&str, TargetError> {
    let rest = target
        .strip_prefix("xds:")
        .ok_or_else(|| TargetError::NotXds(target.to_string()))?;
    let name = match rest.strip_prefix("//") {
        Some(auth_and_path) => auth_and_path.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest.trim_start_matches('/'),
    };
    if name.is_empty() {
        return Err(TargetError::Empty);
    }
    Ok(name)
}

/// The route table of a client listener in a snapshot.
fn channel_view(snap: &Snapshot, target: &str) -> Option<ChannelView> {
    let l = snap.listeners.get(target)?;
    let ListenerKind::Client(hcm) = &l.kind else {
        return None;
    };
    let routes = match &hcm.routes {
        RouteSource::Inline(r) => Arc::clone(r),
        RouteSource::Rds(name) => Arc::clone(snap.routes.get(name)?),
    };
    let vhost = router::select_virtual_host(&routes, target);
    let plan = FilterPlan::build(&hcm.http_filters, &routes, &mut Ignored::default());
    Some(ChannelView {
        routes,
        vhost,
        plan,
        hcm_max_stream_duration: hcm.max_stream_duration,
    })
}

/// Whether two snapshots hold the same values (by identity of the shared resources).
fn same_content(a: &Snapshot, b: &Snapshot) -> bool {
    fn same<T>(x: &BTreeMap<String, Arc<T>>, y: &BTreeMap<String, Arc<T>>) -> bool {
        x.len() == y.len()
            && x.iter()
                .zip(y.iter())
                .all(|((k1, v1), (k2, v2))| k1 == k2 && Arc::ptr_eq(v1, v2))
    }
    a.status == b.status
        && a.missing_clusters == b.missing_clusters
        && same(&a.listeners, &b.listeners)
        && same(&a.routes, &b.routes)
        && same(&a.clusters, &b.clusters)
        && same(&a.endpoints, &b.endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_istio_agent_bootstrap() {
        let b = crate::bootstrap::Bootstrap::from_json(
            br#"{"xds_servers":[{"server_uri":"unix:///etc/istio/proxy/XDS","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3","ignore_resource_deletion"]}],
                "node":{"id":"sidecar~10.0.0.1~a.ns~ns.svc.cluster.local","metadata":{"GENERATOR":"grpc"}}}"#,
        )
        .unwrap();
        let c = MeshConfig::from_bootstrap(&b);
        assert!(c.xds.ignore_resource_deletion);
        assert_eq!(c.xds.node.id, "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local");
        assert!(c.xds.node.metadata.is_some());
    }

    #[test]
    fn a_data_plane_opens_no_ads_stream_and_takes_snapshots_from_outside() {
        let node = crate::pb::envoy::config::core::v3::Node::default();
        let t0 = Instant::from_nanos(0);
        let mut plane = Mesh::data_plane(
            MeshConfig::new(XdsClientConfig::new(node.clone())),
            Seed(1),
            t0,
        );
        let ch = plane.open_channel(t0, "xds:///echo:7000").unwrap();
        let mut outputs = Vec::new();
        while let Some(o) = plane.poll_output() {
            outputs.push(o);
        }
        assert!(
            !outputs.iter().any(|o| matches!(o, Output::AdsOpen(_))),
            "{outputs:?}"
        );
        assert_eq!(plane.poll_timeout(), None);
        let fed = Arc::new(Snapshot {
            generation: 7,
            ..Snapshot::default()
        });
        plane.handle_snapshot(t0, Arc::clone(&fed));
        assert!(Arc::ptr_eq(plane.snapshot(), &fed));
        plane.close_channel(t0, ch);
        assert!(
            plane
                .poll_output()
                .is_none_or(|o| !matches!(o, Output::AdsOpen(_)))
        );

        // A mesh with its own xDS client ignores fed snapshots and opens its stream.
        let mut own = Mesh::new(MeshConfig::new(XdsClientConfig::new(node)), Seed(1), t0);
        own.open_channel(t0, "xds:///echo:7000").unwrap();
        own.handle_snapshot(t0, Arc::clone(&fed));
        assert!(!Arc::ptr_eq(own.snapshot(), &fed));
        let mut opened = false;
        while let Some(o) = own.poll_output() {
            opened |= matches!(o, Output::AdsOpen(_));
        }
        assert!(opened);
    }

    #[test]
    fn xds_targets() {
        assert_eq!(parse_xds_target("xds:///echo:7000"), Ok("echo:7000"));
        assert_eq!(parse_xds_target("xds://auth/echo:7000"), Ok("echo:7000"));
        assert_eq!(parse_xds_target("xds:echo"), Ok("echo"));
        assert_eq!(parse_xds_target("xds:///"), Err(TargetError::Empty));
        assert!(matches!(
            parse_xds_target("dns:///x:1"),
            Err(TargetError::NotXds(_))
        ));
    }
}
