//! The server side of ADS streams, sans-IO: decoded requests in, responses out.
//!
//! One [`AdsServer`] serves many streams. Per stream and type URL it tracks the subscription, what
//! was last sent (version, nonce, names), and the client's last ACK and NACK. The adapter (or
//! `skiff-sim`) does the gRPC framing and feeds each decoded request to
//! [`AdsServer::handle_request`], then drains [`AdsServer::poll_output`].
//!
//! State of the world (`StreamAggregatedResources`), following the xDS protocol
//! (envoy `api/xds_protocol.rst`):
//! - The first request for Listener or Cluster with no names is a (legacy) wildcard subscription;
//!   `*` among the names is an explicit one. Other types are subscribed by name; an empty list
//!   means "nothing".
//! - Every response carries a fresh nonce. A request whose `response_nonce` is not the last one
//!   sent for its type is stale and ignored entirely, as istiod does: the client will send a
//!   newer one.
//! - A request carrying the last nonce is an ACK, or a NACK when `error_detail` is set. A NACK
//!   is recorded and the rejected version is never sent again on that stream; the next different
//!   content is.
//! - A request with no nonce (the first for a type) or a changed subscription is answered with
//!   the full subscribed set for that type, even if empty (so a client learns at once that a
//!   listener does not exist, instead of waiting for its 15 s timer).
//! - [`AdsServer::set_resources`] pushes, per stream, only the types whose subscribed content
//!   changed. Responses carry the whole subscribed set (valid for every type in SotW).
//! - `version_info` is a hash of the `(name, version)` pairs in the response, so the same
//!   content always has the same version.
//!
//! Incremental (`DeltaAggregatedResources`): per stream and type, the versions the client has
//! (seeded from `initial_resource_versions`), `resource_names_subscribe` /
//! `resource_names_unsubscribe` (with `*` for wildcard, and an empty first subscription for
//! Listener/Cluster as legacy wildcard), `removed_resources` when a resource the client has goes
//! away or a subscribed name does not exist, `system_version_info` = the version of the whole
//! resource set, a nonce per response, ACK/NACK by nonce. A NACKed resource version is not
//! resent; subscription changes are applied whatever the nonce (they are deltas and cannot be
//! replayed).
//!
//! The first request on a stream carries the node: its metadata gives the generator (`GENERATOR`,
//! recorded) and the interfaces a server announces (see [`super::interfaces`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use prost_types::Any;

use crate::ids::AdsStreamId;
use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
    Resource as DeltaResource,
};
use crate::time::Instant;

use super::interfaces::{
    self, AnnouncedInterface, Announcement, INBOUND_LISTENER_PREFIX, INSTANCE_IPS_METADATA_KEY,
    InterfaceRegistry,
};
use super::resources::{Fnv, LISTENER, PUSH_ORDER, Resources, wildcard_capable};

/// A decoded request from a client.
#[derive(Clone, Debug, PartialEq)]
pub enum AdsRequest {
    /// `StreamAggregatedResources`.
    Sotw(DiscoveryRequest),
    /// `DeltaAggregatedResources`.
    Delta(DeltaDiscoveryRequest),
}

/// A response to encode and send on a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum AdsResponse {
    /// On a `StreamAggregatedResources` stream.
    Sotw(DiscoveryResponse),
    /// On a `DeltaAggregatedResources` stream.
    Delta(DeltaDiscoveryResponse),
}

impl AdsResponse {
    /// The response's type URL.
    pub fn type_url(&self) -> &str {
        match self {
            AdsResponse::Sotw(r) => &r.type_url,
            AdsResponse::Delta(r) => &r.type_url,
        }
    }

    /// The response's nonce.
    pub fn nonce(&self) -> &str {
        match self {
            AdsResponse::Sotw(r) => &r.nonce,
            AdsResponse::Delta(r) => &r.nonce,
        }
    }
}

/// A request the server cannot serve; the adapter should close the stream with
/// `INVALID_ARGUMENT` and this text.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdsError {
    /// A SotW request on a Delta stream or the reverse.
    MixedProtocols {
        /// The stream.
        stream: AdsStreamId,
    },
    /// ADS multiplexes types, so every request must name its type.
    MissingTypeUrl {
        /// The stream.
        stream: AdsStreamId,
    },
}

impl core::fmt::Display for AdsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AdsError::MixedProtocols { stream } => {
                write!(f, "{stream}: SotW and Delta requests mixed on one stream")
            }
            AdsError::MissingTypeUrl { stream } => {
                write!(
                    f,
                    "{stream}: request without type_url on an aggregated stream"
                )
            }
        }
    }
}

impl std::error::Error for AdsError {}

/// Which protocol a stream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdsProtocol {
    /// State of the world.
    Sotw,
    /// Incremental.
    Delta,
}

/// What the first request on a stream said about the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// `node.metadata.GENERATOR` (`grpc` for proxyless clients under istiod). skiff always
    /// generates istiod's proxyless shapes; the value is recorded for the dump.
    pub generator: Option<String>,
    /// Interfaces announced in `node.metadata.SKIFF_INTERFACES`.
    pub interfaces: Vec<AnnouncedInterface>,
    /// Why the announced interfaces could not be read, if they could not.
    pub interfaces_error: Option<String>,
    /// `node.metadata.INSTANCE_IPS`.
    pub instance_ips: Vec<String>,
}

impl NodeInfo {
    fn from_node(node: &Node) -> NodeInfo {
        use prost_types::value::Kind;
        let mut info = NodeInfo {
            id: node.id.clone(),
            cluster: node.cluster.clone(),
            ..NodeInfo::default()
        };
        if let Some(md) = &node.metadata {
            if let Some(Some(Kind::StringValue(g))) = md.fields.get("GENERATOR").map(|v| &v.kind) {
                info.generator = Some(g.clone());
            }
            if let Some(Some(Kind::StringValue(ips))) =
                md.fields.get(INSTANCE_IPS_METADATA_KEY).map(|v| &v.kind)
            {
                info.instance_ips = ips
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            match interfaces::parse_announced(md) {
                Ok(list) => info.interfaces = list,
                Err(e) => info.interfaces_error = Some(e),
            }
        }
        info
    }
}

/// A response as recorded for the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// `version_info` (SotW) or `system_version_info` (Delta).
    pub version: String,
    /// Nonce.
    pub nonce: String,
    /// When.
    pub at: Instant,
    /// Resource names carried (with their versions).
    pub resources: BTreeMap<String, String>,
    /// Delta: names in `removed_resources`.
    pub removed: Vec<String>,
}

/// A client's ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The version acknowledged.
    pub version: String,
    /// The nonce it answered.
    pub nonce: String,
    /// When.
    pub at: Instant,
}

/// A client's NACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nacked {
    /// The version rejected.
    pub version: String,
    /// The nonce it answered.
    pub nonce: String,
    /// When.
    pub at: Instant,
    /// `error_detail.code`.
    pub code: i32,
    /// `error_detail.message`.
    pub message: String,
}

#[derive(Debug, Default)]
struct TypeState {
    requests: u64,
    wildcard: bool,
    /// SotW: subscribed through the legacy empty first request.
    legacy_wildcard: bool,
    names: BTreeSet<String>,
    last_sent: Option<Sent>,
    acked: Option<Acked>,
    nacked: Option<Nacked>,
    /// SotW: versions NACKed on this stream, never sent again (bounded).
    nacked_versions: VecDeque<String>,
    stale_ignored: u64,
    /// Delta: what the client has, name → version.
    client_versions: BTreeMap<String, String>,
    /// Delta: subscribed names already reported as not existing.
    absent_reported: BTreeSet<String>,
    /// Delta: responses not yet ACKed/NACKed, by nonce.
    pending: BTreeMap<u64, Sent>,
}

const NACKED_VERSIONS_KEPT: usize = 16;

#[derive(Debug)]
struct Stream {
    protocol: AdsProtocol,
    opened_at: Instant,
    node: Option<NodeInfo>,
    types: BTreeMap<String, TypeState>,
}

/// Per-type state of one stream, for the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeDump {
    /// Type URL.
    pub type_url: String,
    /// Requests received for this type.
    pub requests: u64,
    /// Whether the stream is subscribed to everything of this type.
    pub wildcard: bool,
    /// Names subscribed explicitly.
    pub subscribed: Vec<String>,
    /// The last response sent.
    pub last_sent: Option<Sent>,
    /// The last ACK.
    pub acked: Option<Acked>,
    /// The last NACK.
    pub nacked: Option<Nacked>,
    /// Requests ignored because their nonce was stale.
    pub stale_nonces_ignored: u64,
    /// Delta: what the client has, name → version.
    pub client_versions: BTreeMap<String, String>,
}

/// One stream, for the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamDump {
    /// The stream.
    pub stream: AdsStreamId,
    /// Its protocol.
    pub protocol: AdsProtocol,
    /// When its first request arrived.
    pub opened_at: Instant,
    /// The node, once a request carried one.
    pub node: Option<NodeInfo>,
    /// Per type, in type URL order.
    pub types: Vec<TypeDump>,
}

/// What every stream was sent, and acked or nacked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdsDump {
    /// Streams in id order.
    pub streams: Vec<StreamDump>,
}

/// The ADS server: many streams, one resource set.
#[derive(Debug, Default)]
pub struct AdsServer {
    resources: Resources,
    streams: BTreeMap<AdsStreamId, Stream>,
    outputs: VecDeque<(AdsStreamId, AdsResponse)>,
    next_nonce: u64,
    registry: InterfaceRegistry,
    registry_generation: u64,
}

fn content_hash(content: &BTreeMap<String, String>) -> String {
    let mut h = Fnv::new();
    for (n, v) in content {
        h.write(n.as_bytes());
        h.write(&[0]);
        h.write(v.as_bytes());
        h.write(&[0]);
    }
    h.hex()
}

impl AdsServer {
    /// A server with an initial resource set.
    pub fn new(resources: Resources) -> Self {
        AdsServer {
            resources,
            ..Default::default()
        }
    }

    /// The resources being served.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Interfaces announced by connected servers.
    pub fn interfaces(&self) -> &InterfaceRegistry {
        &self.registry
    }

    /// Bumped whenever announcements change: the signal to re-translate.
    pub fn interfaces_generation(&self) -> u64 {
        self.registry_generation
    }

    /// Feeds one decoded request. Responses are queued for [`AdsServer::poll_output`].
    pub fn handle_request(
        &mut self,
        now: Instant,
        stream: AdsStreamId,
        request: AdsRequest,
    ) -> Result<(), AdsError> {
        let (protocol, node, type_url) = match &request {
            AdsRequest::Sotw(r) => (AdsProtocol::Sotw, r.node.as_ref(), &r.type_url),
            AdsRequest::Delta(r) => (AdsProtocol::Delta, r.node.as_ref(), &r.type_url),
        };
        let st = self.streams.entry(stream).or_insert_with(|| Stream {
            protocol,
            opened_at: now,
            node: None,
            types: BTreeMap::new(),
        });
        if st.protocol != protocol {
            return Err(AdsError::MixedProtocols { stream });
        }
        if type_url.is_empty() {
            return Err(AdsError::MissingTypeUrl { stream });
        }
        // The node comes with the first request (later ones may omit it); the first one counts.
        if st.node.is_none()
            && let Some(node) = node
        {
            st.node = Some(NodeInfo::from_node(node));
        }
        match request {
            AdsRequest::Sotw(r) => self.handle_sotw(now, stream, r),
            AdsRequest::Delta(r) => self.handle_delta(now, stream, r),
        }
        self.refresh_announcement(stream);
        Ok(())
    }

    /// Forgets a stream (closed by either side); its announcements are withdrawn.
    pub fn handle_stream_closed(&mut self, _now: Instant, stream: AdsStreamId) {
        self.streams.remove(&stream);
        self.outputs.retain(|(s, _)| *s != stream);
        if self.registry.withdraw(stream) {
            self.registry_generation += 1;
        }
    }

    /// Replaces the resource set and pushes, per stream, the types whose subscribed content
    /// changed.
    pub fn set_resources(&mut self, now: Instant, resources: Resources) {
        self.resources = resources;
        let ids: Vec<AdsStreamId> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(st) = self.streams.get(&id) else {
                continue;
            };
            let protocol = st.protocol;
            let mut types: Vec<String> = PUSH_ORDER
                .iter()
                .filter(|t| st.types.contains_key(**t))
                .map(|t| (*t).to_string())
                .collect();
            types.extend(
                st.types
                    .keys()
                    .filter(|t| !PUSH_ORDER.contains(&t.as_str()))
                    .cloned(),
            );
            for t in types {
                match protocol {
                    AdsProtocol::Sotw => self.send_sotw(now, id, &t, false),
                    AdsProtocol::Delta => self.send_delta(now, id, &t, false),
                }
            }
        }
    }

    /// The next response to send, with its stream.
    pub fn poll_output(&mut self) -> Option<(AdsStreamId, AdsResponse)> {
        self.outputs.pop_front()
    }

    /// What every stream was sent, acked and nacked.
    pub fn config_dump(&self) -> AdsDump {
        AdsDump {
            streams: self
                .streams
                .iter()
                .map(|(id, st)| StreamDump {
                    stream: *id,
                    protocol: st.protocol,
                    opened_at: st.opened_at,
                    node: st.node.clone(),
                    types: st
                        .types
                        .iter()
                        .map(|(t, ts)| TypeDump {
                            type_url: t.clone(),
                            requests: ts.requests,
                            wildcard: ts.wildcard,
                            subscribed: ts.names.iter().cloned().collect(),
                            last_sent: ts.last_sent.clone(),
                            acked: ts.acked.clone(),
                            nacked: ts.nacked.clone(),
                            stale_nonces_ignored: ts.stale_ignored,
                            client_versions: ts.client_versions.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn nonce(&mut self) -> (u64, String) {
        self.next_nonce += 1;
        (self.next_nonce, self.next_nonce.to_string())
    }

    /// Recomputes a stream's announcement (node metadata + inbound listener subscriptions).
    fn refresh_announcement(&mut self, stream: AdsStreamId) {
        let Some(st) = self.streams.get(&stream) else {
            return;
        };
        let Some(node) = &st.node else { return };
        let mut a = Announcement {
            node_id: node.id.clone(),
            interfaces: node.interfaces.clone(),
            addresses: node.instance_ips.iter().cloned().collect(),
            inbound: BTreeSet::new(),
        };
        if let Some(lds) = st.types.get(LISTENER) {
            for name in lds
                .names
                .iter()
                .filter(|n| n.starts_with(INBOUND_LISTENER_PREFIX))
            {
                if let Some((ip, port)) = interfaces::parse_inbound_name(name) {
                    a.addresses.insert(ip.clone());
                    a.inbound.insert((ip, port));
                }
            }
        }
        if self.registry.announce(stream, a) {
            self.registry_generation += 1;
        }
    }

    /// What a subscription currently resolves to: name → version.
    fn desired(&self, type_url: &str, ts: &TypeState) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(all) = self.resources.of_type(type_url) else {
            return out;
        };
        if ts.wildcard {
            for (n, r) in all {
                // istiod's wildcard LDS for proxyless nodes holds client listeners only: server
                // listeners are only ever requested by name.
                if type_url == LISTENER && n.starts_with(INBOUND_LISTENER_PREFIX) {
                    continue;
                }
                out.insert(n.clone(), r.version.clone());
            }
        }
        for n in &ts.names {
            if let Some(r) = all.get(n) {
                out.insert(n.clone(), r.version.clone());
            }
        }
        out
    }

    fn handle_sotw(&mut self, now: Instant, stream: AdsStreamId, req: DiscoveryRequest) {
        let Some(ts) = self
            .streams
            .get_mut(&stream)
            .map(|st| st.types.entry(req.type_url.clone()).or_default())
        else {
            return;
        };
        let first = ts.requests == 0;
        ts.requests += 1;
        if !req.response_nonce.is_empty() {
            let Some(sent) = ts
                .last_sent
                .as_ref()
                .filter(|s| s.nonce == req.response_nonce)
            else {
                ts.stale_ignored += 1;
                return;
            };
            let (version, nonce) = (sent.version.clone(), sent.nonce.clone());
            match &req.error_detail {
                Some(err) => {
                    ts.nacked = Some(Nacked {
                        version: version.clone(),
                        nonce,
                        at: now,
                        code: err.code,
                        message: err.message.clone(),
                    });
                    if !ts.nacked_versions.contains(&version) {
                        ts.nacked_versions.push_back(version);
                        if ts.nacked_versions.len() > NACKED_VERSIONS_KEPT {
                            ts.nacked_versions.pop_front();
                        }
                    }
                }
                None => {
                    ts.acked = Some(Acked {
                        version: req.version_info.clone(),
                        nonce,
                        at: now,
                    });
                }
            }
        }
        let star = req.resource_names.iter().any(|n| n == "*");
        let names: BTreeSet<String> = req
            .resource_names
            .iter()
            .filter(|n| *n != "*")
            .cloned()
            .collect();
        let wildcard = if star {
            ts.legacy_wildcard = false;
            true
        } else if names.is_empty()
            && wildcard_capable(&req.type_url)
            && (first || ts.legacy_wildcard)
        {
            ts.legacy_wildcard = true;
            true
        } else {
            ts.legacy_wildcard = false;
            false
        };
        let changed = wildcard != ts.wildcard || names != ts.names;
        ts.wildcard = wildcard;
        ts.names = names;
        if req.response_nonce.is_empty() || changed {
            self.send_sotw(now, stream, &req.type_url, true);
        }
    }

    fn send_sotw(&mut self, now: Instant, stream: AdsStreamId, type_url: &str, force: bool) {
        let Some(ts) = self
            .streams
            .get(&stream)
            .and_then(|s| s.types.get(type_url))
        else {
            return;
        };
        let content = self.desired(type_url, ts);
        let version = content_hash(&content);
        if !force {
            // Nothing asked yet (a type seen only through stale requests): nothing to push.
            if ts.last_sent.is_none() {
                return;
            }
            if ts
                .last_sent
                .as_ref()
                .is_some_and(|s| s.resources == content)
            {
                return;
            }
            // A NACKed version is not sent again (the client would reject it again).
            if ts.nacked_versions.contains(&version) {
                return;
            }
        }
        let resources: Vec<Any> = content
            .keys()
            .filter_map(|n| self.resources.get(type_url, n).map(|r| r.resource.clone()))
            .collect();
        let (_, nonce) = self.nonce();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources,
            type_url: type_url.to_string(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        if let Some(ts) = self
            .streams
            .get_mut(&stream)
            .and_then(|s| s.types.get_mut(type_url))
        {
            ts.last_sent = Some(Sent {
                version,
                nonce,
                at: now,
                resources: content,
                removed: Vec::new(),
            });
        }
        self.outputs
            .push_back((stream, AdsResponse::Sotw(response)));
    }

    fn handle_delta(&mut self, now: Instant, stream: AdsStreamId, req: DeltaDiscoveryRequest) {
        let Some(ts) = self
            .streams
            .get_mut(&stream)
            .map(|st| st.types.entry(req.type_url.clone()).or_default())
        else {
            return;
        };
        let first = ts.requests == 0;
        ts.requests += 1;
        if first {
            // What the client already has (a reconnect): only differences will be sent.
            let mut initial: Vec<(&String, &String)> =
                req.initial_resource_versions.iter().collect();
            initial.sort();
            for (n, v) in initial {
                ts.client_versions.insert(n.clone(), v.clone());
            }
        }
        if !req.response_nonce.is_empty() {
            match req
                .response_nonce
                .parse::<u64>()
                .ok()
                .and_then(|n| ts.pending.remove(&n).map(|s| (n, s)))
            {
                Some((n, sent)) => {
                    // Responses are processed in order: older ones are implicitly done.
                    ts.pending.retain(|k, _| *k > n);
                    match &req.error_detail {
                        Some(err) => {
                            ts.nacked = Some(Nacked {
                                version: sent.version,
                                nonce: sent.nonce,
                                at: now,
                                code: err.code,
                                message: err.message.clone(),
                            });
                        }
                        None => {
                            ts.acked = Some(Acked {
                                version: sent.version,
                                nonce: sent.nonce,
                                at: now,
                            });
                        }
                    }
                }
                None => ts.stale_ignored += 1,
            }
        }
        for n in &req.resource_names_unsubscribe {
            if n == "*" {
                ts.wildcard = false;
                continue;
            }
            ts.names.remove(n);
            ts.absent_reported.remove(n);
            if !ts.wildcard {
                // The client drops it; no removal needs to be sent.
                ts.client_versions.remove(n);
            }
        }
        if first && req.resource_names_subscribe.is_empty() && wildcard_capable(&req.type_url) {
            ts.wildcard = true;
        }
        for n in &req.resource_names_subscribe {
            if n == "*" {
                ts.wildcard = true;
                continue;
            }
            ts.names.insert(n.clone());
            ts.absent_reported.remove(n);
            if !first {
                // A (re)subscription must be answered even if the client had the resource.
                ts.client_versions.remove(n);
            }
        }
        self.send_delta(now, stream, &req.type_url, first);
    }

    fn send_delta(&mut self, now: Instant, stream: AdsStreamId, type_url: &str, force: bool) {
        let Some(ts) = self
            .streams
            .get(&stream)
            .and_then(|s| s.types.get(type_url))
        else {
            return;
        };
        if ts.requests == 0 {
            return;
        }
        let desired = self.desired(type_url, ts);
        let updates: BTreeMap<String, String> = desired
            .iter()
            .filter(|(n, v)| ts.client_versions.get(*n) != Some(*v))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let mut removed: Vec<String> = ts
            .client_versions
            .keys()
            .filter(|n| !desired.contains_key(*n))
            .cloned()
            .collect();
        let absent: Vec<String> = ts
            .names
            .iter()
            .filter(|n| {
                !desired.contains_key(*n)
                    && !ts.client_versions.contains_key(*n)
                    && !ts.absent_reported.contains(*n)
            })
            .cloned()
            .collect();
        removed.extend(absent.iter().cloned());
        removed.sort();
        removed.dedup();
        if updates.is_empty() && removed.is_empty() && !force {
            return;
        }
        let resources: Vec<DeltaResource> = updates
            .iter()
            .filter_map(|(n, v)| {
                self.resources.get(type_url, n).map(|r| DeltaResource {
                    name: n.clone(),
                    version: v.clone(),
                    resource: Some(r.resource.clone()),
                    ..Default::default()
                })
            })
            .collect();
        let system_version = self.resources.system_version();
        let (seq, nonce) = self.nonce();
        let response = DeltaDiscoveryResponse {
            system_version_info: system_version.clone(),
            resources,
            type_url: type_url.to_string(),
            removed_resources: removed.clone(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        if let Some(ts) = self
            .streams
            .get_mut(&stream)
            .and_then(|s| s.types.get_mut(type_url))
        {
            for n in &removed {
                ts.client_versions.remove(n);
            }
            ts.absent_reported.extend(absent);
            for (n, v) in &updates {
                ts.client_versions.insert(n.clone(), v.clone());
                ts.absent_reported.remove(n);
            }
            let sent = Sent {
                version: system_version,
                nonce,
                at: now,
                resources: updates,
                removed,
            };
            ts.pending.insert(seq, sent.clone());
            ts.last_sent = Some(sent);
        }
        self.outputs
            .push_back((stream, AdsResponse::Delta(response)));
    }
}
