//! A deterministic world around a whole [`Mesh`]: the simulated control plane, scripted backends
//! at endpoint addresses, simulated connections and RPC attempts, a fake clock.
//!
//! Invariants checked after every step (a failure panics with the seed):
//! - time never goes backwards, and no timer keeps firing without time moving;
//! - an attempt is only ever sent to an endpoint of the cluster's current assignment that is
//!   not ejected by outlier detection;
//! - a cluster never has more attempts in flight than its circuit breaker allows;
//! - every started call ends exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use skiff_core::ids::{CallId, ChannelId, SubchannelId};
use skiff_core::mesh::{CallRequest, Mesh, MeshConfig};
use skiff_core::plane::{CallError, CallOutcome, Connectivity, Output, Pick, PlaneEvent, Route};
use skiff_core::resource::matcher::SliceHeaders;
use skiff_core::rng::{Rng, Seed};
use skiff_core::time::Instant;
use skiff_core::xds::{Protocol, XdsClientConfig};

use crate::server::{ServerAction, SimServer};
use crate::world::test_node;

/// How a backend answers attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Always OK.
    Ok,
    /// Always this status (after sending response headers: the call is committed).
    FailCommitted(u32),
    /// Always this status, as trailers-only (not committed: retryable).
    Fail(u32),
    /// This status with `grpc-retry-pushback-ms`.
    FailPushback(u32, u32),
    /// Fail with the status for this share of attempts (parts per million), else OK.
    FailRatio(u32, u32),
    /// Refuse the stream (GOAWAY / REFUSED_STREAM).
    Refuse,
    /// Never answer.
    Hang,
}

/// A scripted backend.
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    /// Accepts connections.
    pub up: bool,
    /// Time to answer an attempt.
    pub latency: Duration,
    /// How it answers.
    pub behavior: Behavior,
}

impl Default for Backend {
    fn default() -> Self {
        Backend {
            up: true,
            latency: Duration::from_millis(2),
            behavior: Behavior::Ok,
        }
    }
}

#[derive(Clone, Debug)]
enum Event {
    Ads(AdsEvent),
    Connected(SubchannelId, SocketAddr),
    AttemptDone {
        call: CallId,
        attempt: u32,
        addr: SocketAddr,
    },
}

#[derive(Clone, Debug)]
enum AdsEvent {
    ServerOpen(skiff_core::ids::AdsStreamId),
    ServerData(skiff_core::ids::AdsStreamId, bytes::Bytes),
    ServerClose(skiff_core::ids::AdsStreamId),
    ClientOpen(skiff_core::ids::AdsStreamId),
    ClientData(skiff_core::ids::AdsStreamId, bytes::Bytes),
    ClientClosed(skiff_core::ids::AdsStreamId, String),
}

/// One attempt the world sent.
#[derive(Clone, Debug, PartialEq)]
pub struct SentAttempt {
    /// When.
    pub at: Instant,
    /// The call.
    pub call: CallId,
    /// Attempt number.
    pub attempt: u32,
    /// The endpoint.
    pub address: SocketAddr,
    /// The cluster.
    pub cluster: String,
}

/// The world.
#[derive(Debug)]
pub struct MeshWorld {
    seed: Seed,
    now: Instant,
    /// The mesh under test.
    pub mesh: Mesh,
    /// The simulated control plane.
    pub server: SimServer,
    /// Backends by address; an address without one refuses connections.
    pub backends: BTreeMap<SocketAddr, Backend>,
    /// Link latency (control plane and connection setup).
    pub latency: Duration,
    rng: Rng,
    pending: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    /// Every attempt sent, in order.
    pub attempts: Vec<SentAttempt>,
    /// Attempts in flight: call -> (attempt number, address).
    in_flight: BTreeMap<CallId, (u32, SocketAddr)>,
    /// Final results.
    pub results: BTreeMap<CallId, (Instant, Result<(), CallError>)>,
    /// Plane events.
    pub events: Vec<(Instant, PlaneEvent)>,
    started: BTreeSet<CallId>,
    idle_timer_fires: u32,
}

impl MeshWorld {
    /// A world with a SotW control plane, seeded by `seed` (or `SKIFF_SIM_SEED`).
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, |_| {})
    }

    /// Like [`MeshWorld::new`], adjusting the mesh configuration first.
    pub fn with_config(seed: u64, f: impl FnOnce(&mut MeshConfig)) -> Self {
        let seed = std::env::var("SKIFF_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(seed);
        let mut config = MeshConfig::new(XdsClientConfig::new(test_node()));
        f(&mut config);
        let protocol = config.xds.protocol;
        let now = Instant::from_secs(1);
        MeshWorld {
            seed: Seed(seed),
            now,
            mesh: Mesh::new(config, Seed(seed), now),
            server: SimServer::new(protocol),
            backends: BTreeMap::new(),
            latency: Duration::from_millis(1),
            rng: Rng::new(Seed(seed)).fork("sim-backends"),
            pending: BTreeMap::new(),
            seq: 0,
            attempts: Vec::new(),
            in_flight: BTreeMap::new(),
            results: BTreeMap::new(),
            events: Vec::new(),
            started: BTreeSet::new(),
            idle_timer_fires: 0,
        }
    }

    /// The protocol of the control plane.
    pub fn protocol(&self) -> Protocol {
        self.server.protocol()
    }

    /// Simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds backends with default behaviour at `addrs`.
    pub fn add_backends(&mut self, addrs: &[&str]) {
        for a in addrs {
            self.backends.insert(addr(a), Backend::default());
        }
    }

    /// The backend at `a`.
    pub fn backend(&mut self, a: &str) -> &mut Backend {
        self.backends.entry(addr(a)).or_default()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "skiff-sim invariant failed at {:?}: {what} (seed {}; rerun with SKIFF_SIM_SEED={})",
            self.now, self.seed.0, self.seed.0
        );
    }

    fn schedule(&mut self, after: Duration, e: Event) {
        self.seq += 1;
        self.pending
            .insert((self.now.saturating_add(after), self.seq), e);
    }

    /// Opens a channel.
    pub fn open_channel(&mut self, target: &str) -> ChannelId {
        let ch = self
            .mesh
            .open_channel(self.now, target)
            .unwrap_or_else(|e| self.fail(&format!("open_channel: {e}")));
        self.drain();
        ch
    }

    /// Starts a call.
    pub fn start_call(
        &mut self,
        ch: ChannelId,
        path: &str,
        headers: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> CallId {
        let hs = SliceHeaders::new(headers);
        let req = CallRequest {
            path,
            headers: &hs,
            timeout,
            wait_for_ready: false,
        };
        let (id, pick) = self
            .mesh
            .start_call(self.now, ch, &req)
            .unwrap_or_else(|e| self.fail(&format!("start_call: {e}")));
        self.started.insert(id);
        self.on_pick(id, pick);
        self.drain();
        id
    }

    /// The result of a call, if it ended.
    pub fn result(&self, call: CallId) -> Option<&Result<(), CallError>> {
        self.results.get(&call).map(|(_, r)| r)
    }

    /// Attempts of one call.
    pub fn attempts_of(&self, call: CallId) -> Vec<&SentAttempt> {
        self.attempts.iter().filter(|a| a.call == call).collect()
    }

    fn on_pick(&mut self, call: CallId, pick: Pick) {
        match pick {
            Pick::Send(route) => self.send_attempt(call, route),
            Pick::Queue | Pick::Fail(_) | Pick::Drop(_) => {}
        }
    }

    fn send_attempt(&mut self, call: CallId, route: Route) {
        let snap = self.mesh.snapshot();
        let name = route.cluster.name.clone();
        let in_assignment = route
            .cluster
            .eds_resource_name()
            .and_then(|n| snap.endpoints.get(n))
            .is_some_and(|e| {
                e.localities
                    .iter()
                    .any(|l| l.endpoints.iter().any(|ep| ep.address == route.address))
            });
        if !in_assignment {
            self.fail(&format!(
                "attempt sent to {} which is not in {name}",
                route.address
            ));
        }
        if let Some(rt) = self.mesh.cluster(&name) {
            if rt
                .outlier
                .as_ref()
                .is_some_and(|o| o.is_ejected(&route.address))
            {
                self.fail(&format!(
                    "attempt sent to ejected endpoint {}",
                    route.address
                ));
            }
            if rt.breaker.in_flight() > rt.breaker.max_requests() {
                self.fail("circuit breaker limit exceeded");
            }
        }
        self.attempts.push(SentAttempt {
            at: self.now,
            call,
            attempt: route.attempt,
            address: route.address,
            cluster: name,
        });
        self.in_flight.insert(call, (route.attempt, route.address));
        let b = self
            .backends
            .get(&route.address)
            .copied()
            .unwrap_or(Backend {
                up: false,
                ..Backend::default()
            });
        if b.behavior == Behavior::Hang {
            return;
        }
        self.schedule(
            b.latency,
            Event::AttemptDone {
                call,
                attempt: route.attempt,
                addr: route.address,
            },
        );
    }

    /// Moves every queued output onto the simulated network.
    pub fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.mesh.poll_output() {
                progressed = true;
                match o {
                    Output::AdsOpen(id) => {
                        self.schedule(self.latency, Event::Ads(AdsEvent::ServerOpen(id)))
                    }
                    Output::AdsSend(id, b) => {
                        self.schedule(self.latency, Event::Ads(AdsEvent::ServerData(id, b)))
                    }
                    Output::AdsClose(id) => {
                        self.schedule(self.latency, Event::Ads(AdsEvent::ServerClose(id)))
                    }
                    Output::Connect {
                        subchannel,
                        address,
                        ..
                    } => self.schedule(self.latency, Event::Connected(subchannel, address)),
                    Output::Disconnect { .. } => {}
                    Output::Picked { call, pick } => self.on_pick(call, pick),
                    Output::CallEnded { call, result } => {
                        if !self.started.contains(&call) {
                            self.fail(&format!("{call} ended but was never started"));
                        }
                        if self.results.insert(call, (self.now, result)).is_some() {
                            self.fail(&format!("{call} ended twice"));
                        }
                        // A deadline or cancel ends the call: the driver cancels the attempt.
                        self.in_flight.remove(&call);
                    }
                    Output::Xds(_) => {}
                    Output::Event(e) => self.events.push((self.now, e)),
                }
            }
            while let Some(a) = self.server.poll_action() {
                progressed = true;
                match a {
                    ServerAction::Send(id, b) => {
                        self.schedule(self.latency, Event::Ads(AdsEvent::ClientData(id, b)))
                    }
                    ServerAction::Close(id, why) => {
                        self.schedule(self.latency, Event::Ads(AdsEvent::ClientClosed(id, why)))
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn deliver(&mut self, e: Event) {
        let now = self.now;
        match e {
            Event::Ads(a) => match a {
                AdsEvent::ServerOpen(id) => {
                    if self.server.handle_open(id) {
                        self.schedule(self.latency, Event::Ads(AdsEvent::ClientOpen(id)));
                    } else {
                        self.schedule(
                            self.latency,
                            Event::Ads(AdsEvent::ClientClosed(id, "refused".into())),
                        );
                    }
                }
                AdsEvent::ServerData(id, b) => {
                    if let Err(e) = self.server.handle_data(id, &b) {
                        self.fail(&e);
                    }
                }
                AdsEvent::ServerClose(id) => self.server.handle_close(id),
                AdsEvent::ClientOpen(id) => self.mesh.handle_ads_open(now, id),
                AdsEvent::ClientData(id, b) => self.mesh.handle_ads_data(now, id, &b),
                AdsEvent::ClientClosed(id, why) => {
                    self.server.handle_close(id);
                    self.mesh.handle_ads_closed(now, id, &why);
                }
            },
            Event::Connected(sc, addr) => {
                let up = self.backends.get(&addr).is_some_and(|b| b.up);
                let st = if up {
                    Connectivity::Ready
                } else {
                    Connectivity::TransientFailure
                };
                self.mesh.handle_subchannel_state(now, sc, st);
            }
            Event::AttemptDone {
                call,
                attempt,
                addr,
            } => {
                if self.in_flight.get(&call) != Some(&(attempt, addr)) {
                    return; // cancelled or superseded
                }
                self.in_flight.remove(&call);
                let b = self.backends.get(&addr).copied().unwrap_or_default();
                let pushback_buf;
                let outcome = match b.behavior {
                    _ if !b.up => CallOutcome::status(14, "connection lost"),
                    Behavior::Ok | Behavior::Hang => {
                        self.mesh.handle_call_committed(now, call);
                        CallOutcome::ok()
                    }
                    Behavior::FailCommitted(c) => {
                        self.mesh.handle_call_committed(now, call);
                        CallOutcome::status(c, "backend error")
                    }
                    Behavior::Fail(c) => CallOutcome::status(c, "backend error"),
                    Behavior::FailPushback(c, ms) => {
                        pushback_buf = ms.to_string();
                        CallOutcome {
                            pushback: Some(&pushback_buf),
                            ..CallOutcome::status(c, "backend pushback")
                        }
                    }
                    Behavior::FailRatio(ppm, c) => {
                        if self.rng.below(1_000_000) < u64::from(ppm) {
                            CallOutcome::status(c, "backend error")
                        } else {
                            self.mesh.handle_call_committed(now, call);
                            CallOutcome::ok()
                        }
                    }
                    Behavior::Refuse => CallOutcome::refused(),
                };
                self.mesh.handle_call_outcome(now, call, &outcome);
            }
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let a = self.pending.keys().next().map(|(t, _)| *t);
        let b = self.mesh.poll_timeout().map(|d| d.at.max(self.now));
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs one event up to `limit`; `false` when none is due by then.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.drain();
        let Some(at) = self.next_event() else {
            return false;
        };
        if at > limit {
            return false;
        }
        if at < self.now {
            self.fail("time went backwards");
        }
        self.now = at;
        match self.pending.keys().next().copied() {
            Some(k) if k.0 <= at => {
                self.idle_timer_fires = 0;
                if let Some(e) = self.pending.remove(&k) {
                    self.deliver(e);
                }
            }
            _ => {
                self.mesh.handle_timeout(self.now);
                if self.mesh.poll_timeout().is_some_and(|d| d.at <= self.now) {
                    self.idle_timer_fires += 1;
                    if self.idle_timer_fires > 8 {
                        self.fail("busy loop: the mesh's timer keeps firing at the same time");
                    }
                } else {
                    self.idle_timer_fires = 0;
                }
            }
        }
        self.drain();
        true
    }

    /// Runs every event up to `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now.saturating_add(d);
        let mut steps = 0u64;
        while self.step(limit) {
            steps += 1;
            if steps > 5_000_000 {
                self.fail("livelock: too many steps");
            }
        }
        self.now = limit;
    }

    /// Calls started and not ended.
    pub fn unfinished(&self) -> Vec<CallId> {
        self.started
            .iter()
            .filter(|c| !self.results.contains_key(c))
            .copied()
            .collect()
    }
}

impl Drop for MeshWorld {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "skiff-sim: mesh world with seed {} failed; rerun with SKIFF_SIM_SEED={}",
                self.seed.0, self.seed.0
            );
        }
    }
}

/// Parses `ip:port`; test helper.
pub fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not an ip:port"))
}
