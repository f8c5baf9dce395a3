//! The deterministic world: one skiff xDS client, one simulated control plane, a link between
//! them with latency, and a fake clock that jumps straight to the next event.
//!
//! After every step the world checks invariants and panics (printing the seed) when one breaks:
//! time never goes backwards; no busy loop (a timer that keeps firing without time moving);
//! every request's nonce is the last response nonce the client received for that type on that
//! stream (Delta subscription changes may carry none); the client only sends well-formed requests.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use skiff_core::grpc::codec::FrameDecoder;
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::config::core::v3::Node;
use skiff_core::pb::envoy::service::discovery::v3 as disc;
use skiff_core::rng::{Rng, Seed};
use skiff_core::time::Instant;
use skiff_core::xds::{Protocol, XdsClient, XdsClientConfig, XdsEvent, XdsOutput};

use crate::server::{AdsPeer, ServerAction, SimServer};

/// Something in flight on the simulated link.
#[derive(Clone, Debug)]
enum Delivery {
    ServerOpen(AdsStreamId),
    ServerData(AdsStreamId, Bytes),
    ServerClose(AdsStreamId),
    ClientOpen(AdsStreamId),
    ClientData(AdsStreamId, Bytes),
    ClientClosed(AdsStreamId, String),
}

/// The node a simulated proxyless app presents (istio-agent's shape).
pub fn test_node() -> Node {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        "GENERATOR".to_string(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue("grpc".into())),
        },
    );
    Node {
        id: "sidecar~10.0.0.1~app-1.default~default.svc.cluster.local".into(),
        metadata: Some(prost_types::Struct { fields }),
        ..Default::default()
    }
}

/// A simulated world: skiff's xDS client against a control plane `S` — by default the scriptable
/// [`SimServer`]; [`crate::PlaneServer`] puts skiff's own embedded control plane there instead.
#[derive(Debug)]
pub struct World<S: AdsPeer = SimServer> {
    seed: Seed,
    now: Instant,
    /// The skiff xDS client under test.
    pub client: XdsClient,
    /// The control plane.
    pub server: S,
    /// Every client event, with when it happened.
    pub events: Vec<(Instant, XdsEvent)>,
    /// One-way link latency.
    pub latency: Duration,
    pending: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    /// Per client stream: decoder of what the server sent, and the nonces delivered per type.
    to_client: BTreeMap<AdsStreamId, (FrameDecoder, BTreeMap<String, String>)>,
    /// Per client stream: decoder of what the client sent.
    from_client: BTreeMap<AdsStreamId, FrameDecoder>,
    idle_timer_fires: u32,
    /// Every request the client sent, decoded (SotW only), with the time.
    pub requests: VecDeque<(Instant, AdsStreamId, disc::DiscoveryRequest)>,
}

impl World<SimServer> {
    /// A world from `seed` (overridden by the `SKIFF_SIM_SEED` environment variable, so a
    /// failure printed with its seed can be replayed).
    pub fn new(seed: u64, protocol: Protocol) -> Self {
        Self::with_config(seed, protocol, |_| {})
    }

    /// Like [`World::new`], with a chance to adjust the client's configuration.
    pub fn with_config(
        seed: u64,
        protocol: Protocol,
        f: impl FnOnce(&mut XdsClientConfig),
    ) -> Self {
        World::with_server(seed, protocol, f, SimServer::new(protocol))
    }
}

impl<S: AdsPeer> World<S> {
    /// A world whose client speaks `protocol` to `server`, with a chance to adjust the client's
    /// configuration. The seed is overridden by `SKIFF_SIM_SEED` as in [`World::new`].
    pub fn with_server(
        seed: u64,
        protocol: Protocol,
        f: impl FnOnce(&mut XdsClientConfig),
        server: S,
    ) -> Self {
        let seed = std::env::var("SKIFF_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(seed);
        let mut config = XdsClientConfig::new(test_node());
        config.protocol = protocol;
        f(&mut config);
        let now = Instant::from_secs(1);
        let rng = Rng::new(Seed(seed)).fork("xds");
        World {
            seed: Seed(seed),
            now,
            client: XdsClient::new(config, rng, now),
            server,
            events: Vec::new(),
            latency: Duration::from_millis(1),
            pending: BTreeMap::new(),
            seq: 0,
            to_client: BTreeMap::new(),
            from_client: BTreeMap::new(),
            idle_timer_fires: 0,
            requests: VecDeque::new(),
        }
    }

    /// The world's seed.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// Simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Time since the world started.
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(Instant::from_secs(1))
    }

    fn schedule(&mut self, d: Delivery) {
        self.seq += 1;
        let at = self.now.saturating_add(self.latency);
        self.pending.insert((at, self.seq), d);
    }

    /// Moves every queued output of the client and the server onto the link.
    pub fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.client.poll_output() {
                progressed = true;
                match out {
                    XdsOutput::AdsOpen(id) => self.schedule(Delivery::ServerOpen(id)),
                    XdsOutput::AdsSend(id, bytes) => {
                        self.check_client_request(id, &bytes);
                        self.schedule(Delivery::ServerData(id, bytes));
                    }
                    XdsOutput::AdsClose(id) => self.schedule(Delivery::ServerClose(id)),
                    XdsOutput::Event(e) => self.events.push((self.now, e)),
                }
            }
            while let Some(a) = self.server.poll_action() {
                progressed = true;
                match a {
                    ServerAction::Send(id, b) => self.schedule(Delivery::ClientData(id, b)),
                    ServerAction::Close(id, why) => self.schedule(Delivery::ClientClosed(id, why)),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Invariant: a request's nonce is the last response nonce the client got for its type.
    fn check_client_request(&mut self, id: AdsStreamId, bytes: &Bytes) {
        let dec = self
            .from_client
            .entry(id)
            .or_insert_with(|| FrameDecoder::new(usize::MAX / 2));
        dec.push(bytes);
        let mut frames = Vec::new();
        loop {
            match dec.decode_next() {
                Ok(Some(f)) => frames.push(f.data),
                Ok(None) => break,
                Err(e) => self.fail(&format!("client sent bad gRPC framing: {e}")),
            }
        }
        let delivered = self
            .to_client
            .get(&id)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        for f in frames {
            let (type_url, nonce) = match self.server.protocol() {
                Protocol::StateOfTheWorld => match disc::DiscoveryRequest::decode(f) {
                    Ok(r) => {
                        let t = (r.type_url.clone(), r.response_nonce.clone());
                        self.requests.push_back((self.now, id, r));
                        t
                    }
                    Err(e) => self.fail(&format!("client sent an undecodable request: {e}")),
                },
                Protocol::Delta => match disc::DeltaDiscoveryRequest::decode(f) {
                    Ok(r) => (r.type_url, r.response_nonce),
                    Err(e) => self.fail(&format!("client sent an undecodable request: {e}")),
                },
            };
            let expected = delivered.get(&type_url).cloned().unwrap_or_default();
            // Delta subscription changes need no nonce; ACKs/NACKs (and every SotW request)
            // carry the last one received.
            let delta_subscription = self.server.protocol() == Protocol::Delta && nonce.is_empty();
            if nonce != expected && !delta_subscription {
                self.fail(&format!(
                    "request for {type_url} carries nonce {nonce:?}, last delivered {expected:?}"
                ));
            }
        }
    }

    /// Records the nonces of responses delivered to the client.
    fn note_delivered(&mut self, id: AdsStreamId, bytes: &Bytes) {
        let (dec, nonces) = self
            .to_client
            .entry(id)
            .or_insert_with(|| (FrameDecoder::new(usize::MAX / 2), BTreeMap::new()));
        dec.push(bytes);
        while let Ok(Some(f)) = dec.decode_next() {
            let parsed = match self.server.protocol() {
                Protocol::StateOfTheWorld => disc::DiscoveryResponse::decode(f.data)
                    .ok()
                    .map(|r| (r.type_url, r.nonce)),
                Protocol::Delta => disc::DeltaDiscoveryResponse::decode(f.data)
                    .ok()
                    .map(|r| (r.type_url, r.nonce)),
            };
            if let Some((t, n)) = parsed {
                nonces.insert(t, n);
            }
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "skiff-sim invariant failed at {:?}: {what} (seed {}; rerun with SKIFF_SIM_SEED={})",
            self.now, self.seed.0, self.seed.0
        );
    }

    /// The time of the next event, if any.
    fn next_event(&self) -> Option<Instant> {
        let link = self.pending.keys().next().map(|(t, _)| *t);
        let timer = self.client.poll_timeout().map(|d| d.at.max(self.now));
        match (link, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs one event. Returns `false` when nothing is scheduled before `limit`.
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
        let first = self.pending.keys().next().copied();
        match first {
            Some(key) if key.0 <= at => {
                self.idle_timer_fires = 0;
                if let Some(d) = self.pending.remove(&key) {
                    self.deliver(d);
                }
            }
            _ => {
                self.client.handle_timeout(self.now);
                // No busy loop: after a timeout the next deadline must lie in the future.
                if self.client.poll_timeout().is_some_and(|d| d.at <= self.now) {
                    self.idle_timer_fires += 1;
                    if self.idle_timer_fires > 8 {
                        self.fail("busy loop: the client's timer keeps firing at the same time");
                    }
                } else {
                    self.idle_timer_fires = 0;
                }
            }
        }
        self.drain();
        true
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::ServerOpen(id) => {
                if self.server.handle_open(now, id) {
                    self.schedule(Delivery::ClientOpen(id));
                } else {
                    self.schedule(Delivery::ClientClosed(id, "connection refused".into()));
                }
            }
            Delivery::ServerData(id, b) => {
                if let Err(e) = self.server.handle_data(now, id, &b) {
                    self.fail(&e);
                }
            }
            Delivery::ServerClose(id) => self.server.handle_close(now, id),
            Delivery::ClientOpen(id) => self.client.handle_ads_open(now, id),
            Delivery::ClientData(id, b) => {
                self.note_delivered(id, &b);
                self.client.handle_ads_data(now, id, &b);
            }
            Delivery::ClientClosed(id, why) => {
                self.server.handle_close(now, id);
                self.client.handle_ads_closed(now, id, &why);
            }
        }
    }

    /// Runs every event up to `now + d`, then sets the clock there.
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now.saturating_add(d);
        let mut steps = 0u64;
        while self.step(limit) {
            steps += 1;
            if steps > 1_000_000 {
                self.fail("more than a million steps: livelock");
            }
        }
        self.now = limit;
    }

    /// Events of the client since `since`.
    pub fn events_since(&self, since: Instant) -> impl Iterator<Item = &XdsEvent> {
        self.events
            .iter()
            .filter(move |(t, _)| *t >= since)
            .map(|(_, e)| e)
    }
}

impl<S: AdsPeer> Drop for World<S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "skiff-sim: world with seed {} failed; rerun with SKIFF_SIM_SEED={}",
                self.seed.0, self.seed.0
            );
        }
    }
}
