//! The ADS client state machine.
//!
//! One ADS stream multiplexes every watch of the process (istio-agent accepts only one stream;
//! see the reference's finding 5). The client keeps, per resource type, the subscribed names,
//! the last accepted version and the last nonce, and a cache of validated resources that
//! survives stream loss. It speaks State of the World (what gRPC and istiod use) and Delta.
//!
//! The client never does IO: the driver opens the stream when told ([`XdsOutput::AdsOpen`]),
//! feeds received bytes to [`XdsClient::handle_ads_data`], sends the bytes of
//! [`XdsOutput::AdsSend`], and calls [`XdsClient::handle_timeout`] at [`XdsClient::poll_timeout`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use core::time::Duration;
use prost::Message;

use super::backoff::{Backoff, BackoffConfig};
use super::cascade;
use super::resource_type::ResourceType;
use crate::grpc::codec::{FrameDecoder, encode_frame};
use crate::ids::AdsStreamId;
use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3 as disc;
use crate::pb::google::rpc::Status as RpcStatus;
use crate::resource::{self, Resource};
use crate::rng::Rng;
use crate::time::{Clock, Deadline, Instant, TimerKind};

/// gRFC A57: a requested resource that has not arrived after this long does not exist.
pub const DOES_NOT_EXIST_TIMEOUT: Duration = Duration::from_secs(15);

/// The gRPC method of the SotW ADS stream.
pub const SOTW_METHOD: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
/// The gRPC method of the Delta ADS stream.
pub const DELTA_METHOD: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// Which variant of the xDS transport protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// State of the World: every response carries the full set (what gRPC and istiod use).
    #[default]
    StateOfTheWorld,
    /// Incremental: responses carry changes and explicit removals.
    Delta,
}

impl Protocol {
    /// The gRPC method path of the ADS stream for this protocol.
    pub const fn method(self) -> &'static str {
        match self {
            Protocol::StateOfTheWorld => SOTW_METHOD,
            Protocol::Delta => DELTA_METHOD,
        }
    }
}

/// Configuration of the xDS client.
#[derive(Clone, Debug)]
pub struct XdsClientConfig {
    /// The node sent on the first request of each stream (from the bootstrap).
    pub node: Node,
    /// SotW or Delta.
    pub protocol: Protocol,
    /// Bootstrap server feature `ignore_resource_deletion` (gRFC A53): keep using a resource the
    /// server deletes, and log it.
    pub ignore_resource_deletion: bool,
    /// Does-not-exist timer (gRFC A57), 15 s by default.
    pub does_not_exist_timeout: Duration,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// Largest ADS message accepted.
    pub max_message_size: usize,
}

impl XdsClientConfig {
    /// Defaults for `node`.
    pub fn new(node: Node) -> Self {
        XdsClientConfig {
            node,
            protocol: Protocol::StateOfTheWorld,
            ignore_resource_deletion: false,
            does_not_exist_timeout: DOES_NOT_EXIST_TIMEOUT,
            backoff: BackoffConfig::default(),
            // xDS responses can be much larger than RPCs (100k endpoints); gRPC allows any size.
            max_message_size: 256 * 1024 * 1024,
        }
    }
}

/// Where a resource stands (CSDS `ClientResourceStatus`, gRFC A40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceStatus {
    /// Requested, nothing received yet.
    Requested,
    /// The server says (or the timer decided) it does not exist.
    DoesNotExist,
    /// The last version received was valid and is in use.
    Acked,
    /// The last version received was invalid; the previous good one (if any) is in use.
    Nacked,
}

/// The last rejection of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Version of the response that carried the bad resource.
    pub version: String,
    /// Why, as sent in the NACK.
    pub error: String,
    /// When.
    pub at: Instant,
}

/// One cached resource.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The last valid value, which keeps serving after a NACK.
    pub value: Option<Resource>,
    /// The raw resource as last accepted (for CSDS dumps).
    pub raw: Option<prost_types::Any>,
    /// Version of the last accepted value.
    pub version: String,
    /// Status.
    pub status: ResourceStatus,
    /// The last rejection, if the latest version was bad.
    pub rejection: Option<Rejection>,
    /// Fields set in the resource that skiff does not act on.
    pub ignored: Vec<String>,
    /// When the value last changed.
    pub updated_at: Option<Instant>,
    /// The server deleted it but `ignore_resource_deletion` kept it (gRFC A53).
    pub deletion_ignored: bool,
    dne_deadline: Option<Instant>,
}

impl Entry {
    fn requested() -> Self {
        Entry {
            value: None,
            raw: None,
            version: String::new(),
            status: ResourceStatus::Requested,
            rejection: None,
            ignored: Vec::new(),
            updated_at: None,
            deletion_ignored: false,
            dne_deadline: None,
        }
    }
}

#[derive(Debug, Default)]
struct TypeState {
    /// Names wanted, explicitly or through the cascade.
    subscribed: BTreeSet<String>,
    entries: BTreeMap<String, Entry>,
    /// SotW: version of the last accepted response.
    version_info: String,
    /// Nonce of the last response on the current stream.
    nonce: String,
    /// Delta: names sent as subscribed on the current stream.
    sent: BTreeSet<String>,
    /// Whether a request for this type went out on the current stream.
    requested_on_stream: bool,
}

#[derive(Debug)]
enum StreamState {
    /// Nothing to ask for yet.
    Idle,
    /// `AdsOpen` emitted; waiting for `handle_ads_open`.
    Connecting(AdsStreamId),
    /// Open and usable.
    Open {
        id: AdsStreamId,
        decoder: FrameDecoder,
        got_response: bool,
        sent_node: bool,
    },
    /// Waiting before reconnecting.
    Backoff { until: Instant },
}

/// Something the driver must do, or something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum XdsOutput {
    /// Open a new ADS stream (gRPC method [`Protocol::method`]) to the control plane and call
    /// [`XdsClient::handle_ads_open`] once it is open (or `handle_ads_closed` if it fails).
    AdsOpen(AdsStreamId),
    /// Send these bytes (one or more gRPC-framed messages) on the stream.
    AdsSend(AdsStreamId, Bytes),
    /// Close the stream (the client gave up on it, e.g. garbage bytes).
    AdsClose(AdsStreamId),
    /// An event for logs, metrics and tests.
    Event(XdsEvent),
}

/// What happened in the xDS client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum XdsEvent {
    /// Resources of a type were added or changed.
    Updated {
        /// Type.
        ty: ResourceType,
        /// Names of the changed resources.
        names: Vec<String>,
    },
    /// A response was rejected (gRFC A46: its valid resources were still applied).
    Nacked {
        /// Type.
        ty: ResourceType,
        /// The response's version.
        version: String,
        /// The response's nonce (echoed in the NACK).
        nonce: String,
        /// One line per invalid resource.
        errors: Vec<String>,
    },
    /// A requested resource does not exist.
    DoesNotExist {
        /// Type.
        ty: ResourceType,
        /// Name.
        name: String,
    },
    /// The server deleted a resource but `ignore_resource_deletion` keeps it (gRFC A53).
    DeletionIgnored {
        /// Type.
        ty: ResourceType,
        /// Name.
        name: String,
    },
    /// The ADS stream ended; the client reconnects after `retry_in`.
    StreamClosed {
        /// The stream.
        stream: AdsStreamId,
        /// Why.
        reason: String,
        /// Backoff before the next stream.
        retry_in: Duration,
    },
    /// A message for a type skiff does not speak was ignored.
    UnknownType {
        /// Its type URL.
        type_url: String,
    },
}

/// The sans-IO ADS client.
#[derive(Debug)]
pub struct XdsClient {
    config: XdsClientConfig,
    clock: Clock,
    rng: Rng,
    backoff: Backoff,
    stream: StreamState,
    next_stream: u32,
    types: BTreeMap<ResourceType, TypeState>,
    /// Names the application watches directly (channel targets, server listeners).
    roots: BTreeMap<ResourceType, BTreeSet<String>>,
    outputs: VecDeque<XdsOutput>,
    generation: u64,
}

impl XdsClient {
    /// A client that will connect once something is watched.
    pub fn new(config: XdsClientConfig, rng: Rng, now: Instant) -> Self {
        let types = ResourceType::ALL
            .into_iter()
            .map(|t| (t, TypeState::default()))
            .collect();
        XdsClient {
            backoff: Backoff::new(config.backoff),
            config,
            clock: Clock::new(now),
            rng,
            stream: StreamState::Idle,
            next_stream: 0,
            types,
            roots: BTreeMap::new(),
            outputs: VecDeque::new(),
            generation: 0,
        }
    }

    // ---- getters -------------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &XdsClientConfig {
        &self.config
    }

    /// Bumped whenever any cached resource changes: the data plane rebuilds its snapshot when it
    /// moves.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The cached entry of a resource.
    pub fn entry(&self, ty: ResourceType, name: &str) -> Option<&Entry> {
        self.types.get(&ty).and_then(|t| t.entries.get(name))
    }

    /// The last good value of a resource.
    pub fn resource(&self, ty: ResourceType, name: &str) -> Option<&Resource> {
        self.entry(ty, name).and_then(|e| e.value.as_ref())
    }

    /// Every cached entry of a type, by name.
    pub fn entries(&self, ty: ResourceType) -> impl Iterator<Item = (&str, &Entry)> {
        self.types
            .get(&ty)
            .into_iter()
            .flat_map(|t| t.entries.iter().map(|(n, e)| (n.as_str(), e)))
    }

    /// Names currently subscribed for a type (roots and cascade).
    pub fn subscribed(&self, ty: ResourceType) -> impl Iterator<Item = &str> {
        self.types
            .get(&ty)
            .into_iter()
            .flat_map(|t| t.subscribed.iter().map(String::as_str))
    }

    /// The version last ACKed for a type (SotW).
    pub fn version_info(&self, ty: ResourceType) -> &str {
        self.types
            .get(&ty)
            .map(|t| t.version_info.as_str())
            .unwrap_or("")
    }

    /// The current stream, if one is open.
    pub fn open_stream(&self) -> Option<AdsStreamId> {
        match &self.stream {
            StreamState::Open { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// When [`XdsClient::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Deadline> {
        let mut best = match self.stream {
            StreamState::Backoff { until } => Some(Deadline::new(until, TimerKind::AdsReconnect)),
            _ => None,
        };
        for t in self.types.values() {
            for e in t.entries.values() {
                if let Some(at) = e.dne_deadline {
                    best = Deadline::earliest(
                        best,
                        Some(Deadline::new(at, TimerKind::ResourceDoesNotExist)),
                    );
                }
            }
        }
        best
    }

    /// The next output, if any. Drain until `None` after every input.
    pub fn poll_output(&mut self) -> Option<XdsOutput> {
        self.outputs.pop_front()
    }

    // ---- commands ------------------------------------------------------------------------

    /// Watch a resource directly (a channel's listener, a server's listener, a cluster...). Its
    /// dependencies (RDS, CDS, EDS) are subscribed automatically as they become known.
    pub fn watch(&mut self, now: Instant, ty: ResourceType, name: &str) {
        self.clock.observe(now);
        self.roots.entry(ty).or_default().insert(name.to_string());
        self.reconcile();
    }

    /// Stop watching a resource; dependencies nobody else needs are unsubscribed.
    pub fn unwatch(&mut self, now: Instant, ty: ResourceType, name: &str) {
        self.clock.observe(now);
        if let Some(r) = self.roots.get_mut(&ty) {
            r.remove(name);
        }
        self.reconcile();
    }

    // ---- inputs --------------------------------------------------------------------------

    /// The stream `id` is open: (re)send every subscription.
    pub fn handle_ads_open(&mut self, now: Instant, id: AdsStreamId) {
        let now = self.clock.observe(now);
        match self.stream {
            StreamState::Connecting(c) if c == id => {}
            _ => return, // stale or unexpected: ignore
        }
        self.stream = StreamState::Open {
            id,
            decoder: FrameDecoder::new(self.config.max_message_size),
            got_response: false,
            sent_node: false,
        };
        for t in self.types.values_mut() {
            t.nonce.clear();
            t.sent.clear();
            t.requested_on_stream = false;
        }
        for ty in ResourceType::ALL {
            if self
                .types
                .get(&ty)
                .is_some_and(|t| !t.subscribed.is_empty())
            {
                self.send_subscription(now, ty);
            }
        }
    }

    /// The stream `id` ended (by the server, the network, or a failed open).
    pub fn handle_ads_closed(&mut self, now: Instant, id: AdsStreamId, reason: &str) {
        let now = self.clock.observe(now);
        let got_response = match &self.stream {
            StreamState::Connecting(c) if *c == id => false,
            StreamState::Open {
                id: open,
                got_response,
                ..
            } if *open == id => *got_response,
            _ => return,
        };
        self.stream_failed(now, id, reason, got_response);
    }

    /// Bytes received on stream `id`.
    pub fn handle_ads_data(&mut self, now: Instant, id: AdsStreamId, data: &[u8]) {
        let now = self.clock.observe(now);
        let mut messages = Vec::new();
        let error = match &mut self.stream {
            StreamState::Open {
                id: open, decoder, ..
            } if *open == id => {
                decoder.push(data);
                loop {
                    match decoder.decode_next() {
                        Ok(Some(frame)) if frame.compressed => {
                            break Some(
                                "compressed ADS message without negotiated encoding".to_string(),
                            );
                        }
                        Ok(Some(frame)) => messages.push(frame.data),
                        Ok(None) => break None,
                        Err(e) => break Some(format!("bad gRPC framing: {e}")),
                    }
                }
            }
            _ => return,
        };
        for msg in messages {
            if let Err(reason) = self.handle_message(now, &msg) {
                self.close_with_error(now, id, &reason);
                return;
            }
        }
        if let Some(reason) = error {
            self.close_with_error(now, id, &reason);
        }
    }

    /// Timers: reconnect after backoff, does-not-exist. Early or spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        if let StreamState::Backoff { until } = self.stream
            && now >= until
        {
            self.stream = StreamState::Idle;
            self.ensure_stream();
        }
        let mut fired = Vec::new();
        for (ty, t) in &mut self.types {
            for (name, e) in &mut t.entries {
                if e.dne_deadline.is_some_and(|at| at <= now) {
                    e.dne_deadline = None;
                    if e.value.is_none() {
                        e.status = ResourceStatus::DoesNotExist;
                        fired.push((*ty, name.clone()));
                    }
                }
            }
        }
        if !fired.is_empty() {
            self.generation += 1;
            for (ty, name) in fired {
                self.outputs
                    .push_back(XdsOutput::Event(XdsEvent::DoesNotExist { ty, name }));
            }
        }
    }

    // ---- internals -----------------------------------------------------------------------

    fn close_with_error(&mut self, now: Instant, id: AdsStreamId, reason: &str) {
        let got_response = matches!(
            self.stream,
            StreamState::Open {
                got_response: true,
                ..
            }
        );
        self.outputs.push_back(XdsOutput::AdsClose(id));
        self.stream_failed(now, id, reason, got_response);
    }

    fn stream_failed(&mut self, now: Instant, id: AdsStreamId, reason: &str, got_response: bool) {
        // A stream that delivered a response was healthy: start the backoff over (gRFC A57's
        // guidance, as gRPC clients do) instead of growing it.
        if got_response {
            self.backoff.reset();
        }
        let delay = self.backoff.next_delay(&mut self.rng);
        self.stream = StreamState::Backoff {
            until: now.saturating_add(delay),
        };
        // A57: does-not-exist timers only run while a request is outstanding on a live stream.
        for t in self.types.values_mut() {
            t.requested_on_stream = false;
            for e in t.entries.values_mut() {
                e.dne_deadline = None;
            }
        }
        self.outputs
            .push_back(XdsOutput::Event(XdsEvent::StreamClosed {
                stream: id,
                reason: reason.to_string(),
                retry_in: delay,
            }));
    }

    fn ensure_stream(&mut self) {
        if !matches!(self.stream, StreamState::Idle) {
            return;
        }
        if self.types.values().all(|t| t.subscribed.is_empty()) {
            return;
        }
        let id = AdsStreamId::new(0, self.next_stream);
        self.next_stream = self.next_stream.wrapping_add(1);
        self.stream = StreamState::Connecting(id);
        self.outputs.push_back(XdsOutput::AdsOpen(id));
    }

    /// Recomputes the wanted names from the roots and the cache (the LDS → RDS → CDS → EDS
    /// cascade) and sends subscription changes.
    fn reconcile(&mut self) {
        let wanted = cascade::wanted(&self.roots, |ty, name| {
            self.types
                .get(&ty)
                .and_then(|t| t.entries.get(name))
                .and_then(|e| e.value.as_ref())
        });
        // Owned copies only of the sets that changed (the walk itself borrows every name).
        let updates: Vec<(ResourceType, BTreeSet<String>)> = ResourceType::ALL
            .into_iter()
            .filter_map(|ty| {
                let t = self.types.get(&ty)?;
                let want = wanted.get(&ty);
                let same = match want {
                    Some(w) => t
                        .subscribed
                        .iter()
                        .map(String::as_str)
                        .eq(w.iter().copied()),
                    None => t.subscribed.is_empty(),
                };
                (!same).then(|| {
                    let owned = want
                        .map(|w| w.iter().map(|n| (*n).to_owned()).collect())
                        .unwrap_or_default();
                    (ty, owned)
                })
            })
            .collect();
        drop(wanted);
        let now = self.clock.now();
        let mut changed = Vec::new();
        for (ty, want) in updates {
            let Some(t) = self.types.get_mut(&ty) else {
                continue;
            };
            // Unsubscribed resources leave the cache (gRPC drops them; a later watch re-requests).
            t.entries.retain(|name, _| want.contains(name));
            for name in &want {
                if !t.entries.contains_key(name) {
                    t.entries.insert(name.clone(), Entry::requested());
                }
            }
            t.subscribed = want;
            changed.push(ty);
        }
        if changed.is_empty() {
            return;
        }
        if matches!(self.stream, StreamState::Open { .. }) {
            for ty in changed {
                self.send_subscription(now, ty);
            }
        } else {
            self.ensure_stream();
        }
    }

    fn take_node(&mut self) -> Option<Node> {
        match &mut self.stream {
            StreamState::Open { sent_node, .. } if !*sent_node => {
                *sent_node = true;
                Some(self.config.node.clone())
            }
            _ => None,
        }
    }

    fn send(&mut self, msg: &impl Message) {
        let StreamState::Open { id, .. } = self.stream else {
            return;
        };
        let mut buf = BytesMut::with_capacity(msg.encoded_len() + 5);
        encode_frame(msg, &mut buf);
        self.outputs.push_back(XdsOutput::AdsSend(id, buf.freeze()));
    }

    /// Sends the subscription of `ty` on the open stream and arms does-not-exist timers.
    fn send_subscription(&mut self, now: Instant, ty: ResourceType) {
        // SotW: an empty list would mean "wildcard" to a server on the first request of a type,
        // so a type nobody wants is only sent once it was requested before on this stream (then
        // the empty list unsubscribes everything).
        let skip = self.types.get(&ty).is_none_or(|t| {
            self.config.protocol == Protocol::StateOfTheWorld
                && t.subscribed.is_empty()
                && !t.requested_on_stream
        });
        if skip {
            return;
        }
        let node = self.take_node();
        let dne = now.saturating_add(self.config.does_not_exist_timeout);
        let Some(t) = self.types.get_mut(&ty) else {
            return;
        };
        let msg = match self.config.protocol {
            Protocol::StateOfTheWorld => Outgoing::Sotw(disc::DiscoveryRequest {
                version_info: t.version_info.clone(),
                node,
                resource_names: t.subscribed.iter().cloned().collect(),
                type_url: ty.type_url().to_string(),
                response_nonce: t.nonce.clone(),
                ..Default::default()
            }),
            Protocol::Delta => {
                let subscribe: Vec<String> = t.subscribed.difference(&t.sent).cloned().collect();
                let unsubscribe: Vec<String> = t.sent.difference(&t.subscribed).cloned().collect();
                if subscribe.is_empty() && unsubscribe.is_empty() && t.requested_on_stream {
                    return;
                }
                let initial_resource_versions = if t.requested_on_stream {
                    BTreeMap::new()
                } else {
                    t.entries
                        .iter()
                        .filter(|(_, e)| e.value.is_some())
                        .map(|(n, e)| (n.clone(), e.version.clone()))
                        .collect()
                };
                t.sent = t.subscribed.clone();
                Outgoing::Delta(disc::DeltaDiscoveryRequest {
                    node,
                    type_url: ty.type_url().to_string(),
                    resource_names_subscribe: subscribe,
                    resource_names_unsubscribe: unsubscribe,
                    initial_resource_versions,
                    ..Default::default()
                })
            }
        };
        t.requested_on_stream = true;
        for (name, e) in &mut t.entries {
            if t.subscribed.contains(name)
                && e.value.is_none()
                && e.status == ResourceStatus::Requested
                && e.dne_deadline.is_none()
            {
                e.dne_deadline = Some(dne);
            }
        }
        match msg {
            Outgoing::Sotw(m) => self.send(&m),
            Outgoing::Delta(m) => self.send(&m),
        }
    }

    /// One decoded gRPC message from the stream. `Err` means the stream is unusable.
    fn handle_message(&mut self, now: Instant, msg: &Bytes) -> Result<(), String> {
        if let StreamState::Open { got_response, .. } = &mut self.stream {
            *got_response = true;
        }
        match self.config.protocol {
            Protocol::StateOfTheWorld => {
                let resp = disc::DiscoveryResponse::decode(msg.clone())
                    .map_err(|e| format!("undecodable DiscoveryResponse: {e}"))?;
                self.handle_sotw(now, resp);
            }
            Protocol::Delta => {
                let resp = disc::DeltaDiscoveryResponse::decode(msg.clone())
                    .map_err(|e| format!("undecodable DeltaDiscoveryResponse: {e}"))?;
                self.handle_delta(now, resp);
            }
        }
        self.reconcile();
        Ok(())
    }

    fn handle_sotw(&mut self, now: Instant, resp: disc::DiscoveryResponse) {
        let Some(ty) = ResourceType::from_type_url(&resp.type_url) else {
            self.outputs
                .push_back(XdsOutput::Event(XdsEvent::UnknownType {
                    type_url: resp.type_url,
                }));
            return;
        };
        let mut errors = Vec::new();
        let mut seen = BTreeSet::new();
        let mut updated = Vec::new();
        let mut unnamed_errors = false;
        for (i, any) in resp.resources.iter().enumerate() {
            let any = match unwrap_resource(any) {
                Ok(a) => a,
                Err(e) => {
                    errors.push(format!("resources[{i}]: {e}"));
                    unnamed_errors = true;
                    continue;
                }
            };
            let outcome = decode_one(ty, &any);
            let name = match &outcome {
                Ok(d) => d.name.clone(),
                Err(r) => match &r.name {
                    Some(n) => n.clone(),
                    None => {
                        errors.push(format!("resources[{i}]: {}", r.error));
                        unnamed_errors = true;
                        continue;
                    }
                },
            };
            if !seen.insert(name.clone()) {
                errors.push(format!(
                    "{ty} {name}: duplicate resource name in one response"
                ));
                continue;
            }
            self.apply_one(
                now,
                ty,
                name,
                any,
                &resp.version_info,
                outcome,
                &mut errors,
                &mut updated,
            );
        }
        if ty.absence_means_deletion() && !unnamed_errors {
            let absent: Vec<String> = self
                .types
                .get(&ty)
                .map(|t| t.subscribed.difference(&seen).cloned().collect())
                .unwrap_or_default();
            for name in absent {
                self.remove_one(ty, &name);
            }
        }
        let nacked = !errors.is_empty();
        if let Some(t) = self.types.get_mut(&ty) {
            t.nonce = resp.nonce.clone();
            if !nacked {
                t.version_info = resp.version_info.clone();
            }
        }
        if !updated.is_empty() {
            self.generation += 1;
            self.outputs
                .push_back(XdsOutput::Event(XdsEvent::Updated { ty, names: updated }));
        }
        let node = self.take_node();
        let (version_info, names) = self
            .types
            .get(&ty)
            .map(|t| {
                (
                    t.version_info.clone(),
                    t.subscribed.iter().cloned().collect(),
                )
            })
            .unwrap_or_default();
        let error_detail = nack_status(&errors);
        if nacked {
            self.outputs.push_back(XdsOutput::Event(XdsEvent::Nacked {
                ty,
                version: resp.version_info.clone(),
                nonce: resp.nonce.clone(),
                errors,
            }));
        }
        // ACK or NACK: the nonce is always the response's; the version is the last accepted one
        // (gRFC A46 / the xDS protocol).
        self.send(&disc::DiscoveryRequest {
            version_info,
            node,
            resource_names: names,
            type_url: ty.type_url().to_string(),
            response_nonce: resp.nonce,
            error_detail,
            ..Default::default()
        });
    }

    fn handle_delta(&mut self, now: Instant, resp: disc::DeltaDiscoveryResponse) {
        let Some(ty) = ResourceType::from_type_url(&resp.type_url) else {
            self.outputs
                .push_back(XdsOutput::Event(XdsEvent::UnknownType {
                    type_url: resp.type_url,
                }));
            return;
        };
        let mut errors = Vec::new();
        let mut updated = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, r) in resp.resources.iter().enumerate() {
            let Some(any) = r.resource.as_ref() else {
                errors.push(format!("resources[{i}] {}: no resource body", r.name));
                continue;
            };
            let outcome = decode_one(ty, any);
            let name = match &outcome {
                Ok(d) => d.name.clone(),
                Err(rej) => rej.name.clone().unwrap_or_else(|| r.name.clone()),
            };
            if !r.name.is_empty() && r.name != name {
                errors.push(format!(
                    "resources[{i}]: wrapper name {:?} differs from resource name {name:?}",
                    r.name
                ));
                continue;
            }
            if !seen.insert(name.clone()) {
                errors.push(format!(
                    "{ty} {name}: duplicate resource name in one response"
                ));
                continue;
            }
            self.apply_one(
                now,
                ty,
                name,
                any.clone(),
                &r.version,
                outcome,
                &mut errors,
                &mut updated,
            );
        }
        for name in &resp.removed_resources {
            self.remove_one(ty, name);
        }
        if !updated.is_empty() {
            self.generation += 1;
            self.outputs
                .push_back(XdsOutput::Event(XdsEvent::Updated { ty, names: updated }));
        }
        let error_detail = nack_status(&errors);
        if !errors.is_empty() {
            self.outputs.push_back(XdsOutput::Event(XdsEvent::Nacked {
                ty,
                version: resp.system_version_info.clone(),
                nonce: resp.nonce.clone(),
                errors,
            }));
        }
        let node = self.take_node();
        self.send(&disc::DeltaDiscoveryRequest {
            node,
            type_url: ty.type_url().to_string(),
            response_nonce: resp.nonce,
            error_detail,
            ..Default::default()
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_one(
        &mut self,
        now: Instant,
        ty: ResourceType,
        name: String,
        any: prost_types::Any,
        version: &str,
        outcome: Result<resource::Decoded, resource::Rejected>,
        errors: &mut Vec<String>,
        updated: &mut Vec<String>,
    ) {
        let Some(t) = self.types.get_mut(&ty) else {
            return;
        };
        // gRPC ignores resources it did not ask for (they would never be used).
        let Some(e) = t.entries.get_mut(&name) else {
            if let Err(r) = outcome {
                // Still report them: a bad resource is a control-plane bug worth seeing.
                errors.push(format!("{ty} {name}: {}", r.error));
            }
            return;
        };
        e.dne_deadline = None;
        match outcome {
            Ok(d) => {
                let changed = e.raw.as_ref() != Some(&any) || e.status != ResourceStatus::Acked;
                e.value = Some(d.resource);
                e.raw = Some(any);
                e.version = version.to_string();
                e.status = ResourceStatus::Acked;
                e.rejection = None;
                e.ignored = d.ignored.fields().to_vec();
                e.deletion_ignored = false;
                if changed {
                    e.updated_at = Some(now);
                    updated.push(name);
                }
            }
            Err(r) => {
                let error = r.error.to_string();
                errors.push(format!("{ty} {name}: {error}"));
                e.status = ResourceStatus::Nacked;
                e.rejection = Some(Rejection {
                    version: version.to_string(),
                    error,
                    at: now,
                });
            }
        }
    }

    fn remove_one(&mut self, ty: ResourceType, name: &str) {
        let ignore = self.config.ignore_resource_deletion;
        let Some(e) = self
            .types
            .get_mut(&ty)
            .and_then(|t| t.entries.get_mut(name))
        else {
            return;
        };
        if e.value.is_some() && ignore {
            if !e.deletion_ignored {
                e.deletion_ignored = true;
                self.outputs
                    .push_back(XdsOutput::Event(XdsEvent::DeletionIgnored {
                        ty,
                        name: name.to_string(),
                    }));
            }
            return;
        }
        if e.status == ResourceStatus::DoesNotExist && e.value.is_none() {
            return;
        }
        e.value = None;
        e.raw = None;
        e.version.clear();
        e.status = ResourceStatus::DoesNotExist;
        e.dne_deadline = None;
        self.generation += 1;
        self.outputs
            .push_back(XdsOutput::Event(XdsEvent::DoesNotExist {
                ty,
                name: name.to_string(),
            }));
    }
}

enum Outgoing {
    Sotw(disc::DiscoveryRequest),
    Delta(disc::DeltaDiscoveryRequest),
}

/// gRPC servers may wrap SotW resources in `envoy.service.discovery.v3.Resource`.
fn unwrap_resource(any: &prost_types::Any) -> Result<prost_types::Any, String> {
    use prost::Name;
    if any.type_url == disc::Resource::type_url() {
        let r = disc::Resource::decode(any.value.as_slice())
            .map_err(|e| format!("undecodable Resource wrapper: {e}"))?;
        r.resource
            .ok_or_else(|| "Resource wrapper without a resource".to_string())
    } else {
        Ok(any.clone())
    }
}

fn decode_one(
    ty: ResourceType,
    any: &prost_types::Any,
) -> Result<resource::Decoded, resource::Rejected> {
    if any.type_url != ty.type_url() {
        return Err(resource::Rejected {
            name: None,
            error: resource::ValidationError::new(
                "",
                format!(
                    "resource type {:?} in a response for {}",
                    any.type_url,
                    ty.type_url()
                ),
            ),
        });
    }
    resource::decode(ty, any)
}

fn nack_status(errors: &[String]) -> Option<RpcStatus> {
    if errors.is_empty() {
        return None;
    }
    Some(RpcStatus {
        // INVALID_ARGUMENT, as gRPC clients send.
        code: 3,
        message: errors.join("; "),
        details: Vec::new(),
    })
}
