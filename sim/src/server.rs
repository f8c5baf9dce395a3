//! A simulated ADS server that speaks real protobuf bytes, SotW and Delta, and can misbehave on
//! command: stall, reset the stream, send garbage, omit resources, refuse connections, or send a
//! scripted response verbatim.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use prost::Message;
use prost_types::Any;
use skiff_core::grpc::codec::{FrameDecoder, encode_frame};
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::service::discovery::v3 as disc;
use skiff_core::time::Instant;
use skiff_core::xds::{Protocol, ResourceType};

/// A request the server received, decoded, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// Stream it came on.
    pub stream: AdsStreamId,
    /// Type.
    pub type_url: String,
    /// SotW `version_info` (empty for Delta).
    pub version_info: String,
    /// `response_nonce`.
    pub nonce: String,
    /// SotW `resource_names`, or Delta `resource_names_subscribe`.
    pub names: Vec<String>,
    /// Delta `resource_names_unsubscribe`.
    pub unsubscribe: Vec<String>,
    /// Delta `initial_resource_versions` names.
    pub initial_versions: Vec<String>,
    /// `error_detail.message` when the request is a NACK.
    pub nack: Option<String>,
    /// Whether the request carried the node.
    pub has_node: bool,
}

/// The control-plane side of a [`crate::World`]: whatever answers the client's ADS streams.
/// Implemented by the scriptable [`SimServer`] and by [`crate::PlaneServer`] (skiff's own
/// embedded control plane).
pub trait AdsPeer {
    /// The protocol the client's requests are decoded with.
    fn protocol(&self) -> Protocol;
    /// The client opens a stream. `false` if refused.
    fn handle_open(&mut self, now: Instant, id: AdsStreamId) -> bool;
    /// Bytes from the client. An error means they were not valid requests: skiff must only
    /// send well-formed ones, so the world fails the run.
    fn handle_data(&mut self, now: Instant, id: AdsStreamId, data: &[u8]) -> Result<(), String>;
    /// The stream closed (by either side).
    fn handle_close(&mut self, now: Instant, id: AdsStreamId);
    /// Next thing for the link, if any.
    fn poll_action(&mut self) -> Option<ServerAction>;
}

impl AdsPeer for SimServer {
    fn protocol(&self) -> Protocol {
        SimServer::protocol(self)
    }
    fn handle_open(&mut self, _now: Instant, id: AdsStreamId) -> bool {
        SimServer::handle_open(self, id)
    }
    fn handle_data(&mut self, _now: Instant, id: AdsStreamId, data: &[u8]) -> Result<(), String> {
        SimServer::handle_data(self, id, data)
    }
    fn handle_close(&mut self, _now: Instant, id: AdsStreamId) {
        SimServer::handle_close(self, id)
    }
    fn poll_action(&mut self) -> Option<ServerAction> {
        SimServer::poll_action(self)
    }
}

/// What the server does with its output.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerAction {
    /// Bytes for the client.
    Send(AdsStreamId, Bytes),
    /// Close the stream with this reason.
    Close(AdsStreamId, String),
}

#[derive(Debug, Default)]
struct TypeStream {
    /// Names the client subscribed to.
    names: BTreeSet<String>,
    /// Nonce of the last response sent.
    last_nonce: String,
    /// SotW: version of the last response sent.
    sent_version: Option<u64>,
    /// SotW: the names the last response was for.
    sent_names: BTreeSet<String>,
    /// Delta: resource versions the client has.
    delta_versions: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Stream {
    id: AdsStreamId,
    decoder: FrameDecoder,
    types: BTreeMap<String, TypeStream>,
}

/// The simulated control plane.
#[derive(Debug)]
pub struct SimServer {
    protocol: Protocol,
    /// Resources per type URL: name -> (version it last changed, resource).
    resources: BTreeMap<String, BTreeMap<String, (u64, Any)>>,
    version: u64,
    nonce: u64,
    stream: Option<Stream>,
    /// Misbehaviour switches.
    pub stalled: bool,
    /// Refuse new streams.
    pub refuse: bool,
    omitted: BTreeSet<String>,
    /// Every request received, in order.
    pub seen: Vec<SeenRequest>,
    /// Nonces the client may echo, per type: the last one delivered (checked by the world).
    out: VecDeque<ServerAction>,
}

impl SimServer {
    /// An empty server.
    pub fn new(protocol: Protocol) -> Self {
        SimServer {
            protocol,
            resources: BTreeMap::new(),
            version: 0,
            nonce: 0,
            stream: None,
            stalled: false,
            refuse: false,
            omitted: BTreeSet::new(),
            seen: Vec::new(),
            out: VecDeque::new(),
        }
    }

    /// The protocol it speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The current config version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Adds or replaces resources (one config version for the batch) and pushes them.
    pub fn set(&mut self, resources: impl IntoIterator<Item = Any>) {
        self.version += 1;
        for any in resources {
            let name = resource_name(&any).unwrap_or_default();
            self.resources
                .entry(any.type_url.clone())
                .or_default()
                .insert(name, (self.version, any));
        }
        self.push_all();
    }

    /// Deletes a resource and pushes the change.
    pub fn delete(&mut self, ty: ResourceType, name: &str) {
        self.version += 1;
        if let Some(m) = self.resources.get_mut(ty.type_url()) {
            m.remove(name);
        }
        self.push_all();
    }

    /// Stops including `name` in responses (a buggy control plane), or starts again.
    pub fn omit(&mut self, name: &str, omit: bool) {
        if omit {
            self.omitted.insert(name.to_string());
        } else {
            self.omitted.remove(name);
        }
    }

    /// The open stream, if any.
    pub fn stream(&self) -> Option<AdsStreamId> {
        self.stream.as_ref().map(|s| s.id)
    }

    /// The client opens a stream. `false` if refused.
    pub fn handle_open(&mut self, id: AdsStreamId) -> bool {
        if self.refuse {
            return false;
        }
        self.stream = Some(Stream {
            id,
            decoder: FrameDecoder::new(usize::MAX / 2),
            types: BTreeMap::new(),
        });
        true
    }

    /// The client closed its stream.
    pub fn handle_close(&mut self, id: AdsStreamId) {
        if self.stream.as_ref().is_some_and(|s| s.id == id) {
            self.stream = None;
        }
    }

    /// Resets the open stream from the server side (e.g. a control plane restart).
    pub fn reset_stream(&mut self, reason: &str) {
        if let Some(s) = self.stream.take() {
            self.out
                .push_back(ServerAction::Close(s.id, reason.to_string()));
        }
    }

    /// Sends raw bytes on the stream (garbage, truncated frames...).
    pub fn send_raw_bytes(&mut self, bytes: Bytes) {
        if let Some(s) = &self.stream {
            self.out.push_back(ServerAction::Send(s.id, bytes));
        }
    }

    /// Sends a scripted SotW response verbatim (the world checks what the client does with it).
    pub fn send_response(&mut self, resp: &disc::DiscoveryResponse) {
        let Some(s) = &mut self.stream else { return };
        let ts = s.types.entry(resp.type_url.clone()).or_default();
        ts.last_nonce = resp.nonce.clone();
        let mut buf = BytesMut::new();
        encode_frame(resp, &mut buf);
        self.out.push_back(ServerAction::Send(s.id, buf.freeze()));
    }

    /// The last nonce the server sent for a type on the open stream.
    pub fn last_nonce(&self, ty: ResourceType) -> Option<&str> {
        self.stream
            .as_ref()
            .and_then(|s| s.types.get(ty.type_url()))
            .map(|t| t.last_nonce.as_str())
    }

    /// Next action, if any.
    pub fn poll_action(&mut self) -> Option<ServerAction> {
        self.out.pop_front()
    }

    /// Bytes from the client. Returns an error when they are not valid requests (the world
    /// turns that into a failed invariant: skiff must only send well-formed requests).
    pub fn handle_data(&mut self, id: AdsStreamId, data: &[u8]) -> Result<(), String> {
        let mut msgs = Vec::new();
        {
            let Some(s) = self.stream.as_mut().filter(|s| s.id == id) else {
                return Ok(());
            };
            s.decoder.push(data);
            while let Some(frame) = s
                .decoder
                .decode_next()
                .map_err(|e| format!("client sent bad framing: {e}"))?
            {
                msgs.push(frame.data);
            }
        }
        for m in msgs {
            match self.protocol {
                Protocol::StateOfTheWorld => {
                    let req = disc::DiscoveryRequest::decode(m)
                        .map_err(|e| format!("client sent an undecodable request: {e}"))?;
                    self.handle_sotw(id, req);
                }
                Protocol::Delta => {
                    let req = disc::DeltaDiscoveryRequest::decode(m)
                        .map_err(|e| format!("client sent an undecodable request: {e}"))?;
                    self.handle_delta(id, req);
                }
            }
        }
        Ok(())
    }

    fn handle_sotw(&mut self, id: AdsStreamId, req: disc::DiscoveryRequest) {
        self.seen.push(SeenRequest {
            stream: id,
            type_url: req.type_url.clone(),
            version_info: req.version_info.clone(),
            nonce: req.response_nonce.clone(),
            names: req.resource_names.clone(),
            unsubscribe: Vec::new(),
            initial_versions: Vec::new(),
            nack: req.error_detail.as_ref().map(|e| e.message.clone()),
            has_node: req.node.is_some(),
        });
        let Some(s) = &mut self.stream else { return };
        let ts = s.types.entry(req.type_url.clone()).or_default();
        // A request carrying an old nonce is stale: the xDS protocol says to ignore it.
        if !req.response_nonce.is_empty() && req.response_nonce != ts.last_nonce {
            return;
        }
        ts.names = req.resource_names.iter().cloned().collect();
        let url = req.type_url;
        self.respond_sotw(&url, false);
    }

    fn handle_delta(&mut self, id: AdsStreamId, req: disc::DeltaDiscoveryRequest) {
        self.seen.push(SeenRequest {
            stream: id,
            type_url: req.type_url.clone(),
            version_info: String::new(),
            nonce: req.response_nonce.clone(),
            names: req.resource_names_subscribe.clone(),
            unsubscribe: req.resource_names_unsubscribe.clone(),
            initial_versions: req.initial_resource_versions.keys().cloned().collect(),
            nack: req.error_detail.as_ref().map(|e| e.message.clone()),
            has_node: req.node.is_some(),
        });
        let Some(s) = &mut self.stream else { return };
        let ts = s.types.entry(req.type_url.clone()).or_default();
        for n in &req.resource_names_subscribe {
            ts.names.insert(n.clone());
        }
        for n in &req.resource_names_unsubscribe {
            ts.names.remove(n);
            ts.delta_versions.remove(n);
        }
        for (n, v) in &req.initial_resource_versions {
            ts.delta_versions.insert(n.clone(), v.clone());
        }
        let url = req.type_url;
        self.respond_delta(&url);
    }

    fn next_nonce(&mut self) -> String {
        self.nonce += 1;
        format!("nonce-{}", self.nonce)
    }

    fn push_all(&mut self) {
        let urls: Vec<String> = self
            .stream
            .as_ref()
            .map(|s| s.types.keys().cloned().collect())
            .unwrap_or_default();
        for url in urls {
            match self.protocol {
                Protocol::StateOfTheWorld => self.respond_sotw(&url, true),
                Protocol::Delta => self.respond_delta(&url),
            }
        }
    }

    /// Sends the state of the world for a type when it differs from what was last sent.
    fn respond_sotw(&mut self, url: &str, push: bool) {
        if self.stalled {
            return;
        }
        let version = self.version;
        let nonce_needed = {
            let Some(s) = &self.stream else { return };
            let Some(ts) = s.types.get(url) else { return };
            let changed = ts.sent_version != Some(version) || ts.sent_names != ts.names;
            if !changed || (push && ts.names.is_empty()) {
                return;
            }
            true
        };
        if !nonce_needed {
            return;
        }
        let nonce = self.next_nonce();
        let empty = BTreeMap::new();
        let all = self.resources.get(url).unwrap_or(&empty);
        let Some(s) = &mut self.stream else { return };
        let Some(ts) = s.types.get_mut(url) else {
            return;
        };
        let resources: Vec<Any> = ts
            .names
            .iter()
            .filter(|n| !self.omitted.contains(*n))
            .filter_map(|n| all.get(n).map(|(_, a)| a.clone()))
            .collect();
        ts.sent_version = Some(version);
        ts.sent_names = ts.names.clone();
        ts.last_nonce = nonce.clone();
        let resp = disc::DiscoveryResponse {
            version_info: version.to_string(),
            resources,
            type_url: url.to_string(),
            nonce,
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_frame(&resp, &mut buf);
        self.out.push_back(ServerAction::Send(s.id, buf.freeze()));
    }

    /// Sends what changed for a type since the client's versions.
    fn respond_delta(&mut self, url: &str) {
        if self.stalled {
            return;
        }
        let empty = BTreeMap::new();
        let all = self.resources.get(url).unwrap_or(&empty);
        let nonce = {
            self.nonce += 1;
            format!("nonce-{}", self.nonce)
        };
        let Some(s) = &mut self.stream else { return };
        let Some(ts) = s.types.get_mut(url) else {
            return;
        };
        let mut resources = Vec::new();
        let mut removed = Vec::new();
        for n in &ts.names {
            if self.omitted.contains(n) {
                continue;
            }
            match all.get(n) {
                Some((v, any)) => {
                    let v = v.to_string();
                    if ts.delta_versions.get(n) != Some(&v) {
                        resources.push(disc::Resource {
                            name: n.clone(),
                            version: v.clone(),
                            resource: Some(any.clone()),
                            ..Default::default()
                        });
                        ts.delta_versions.insert(n.clone(), v);
                    }
                }
                None => {
                    if ts.delta_versions.remove(n).is_some() {
                        removed.push(n.clone());
                    }
                }
            }
        }
        if resources.is_empty() && removed.is_empty() {
            return;
        }
        ts.last_nonce = nonce.clone();
        let resp = disc::DeltaDiscoveryResponse {
            system_version_info: self.version.to_string(),
            resources,
            type_url: url.to_string(),
            removed_resources: removed,
            nonce,
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_frame(&resp, &mut buf);
        self.out.push_back(ServerAction::Send(s.id, buf.freeze()));
    }
}

/// Reads the name out of a packed resource.
pub fn resource_name(any: &Any) -> Option<String> {
    use skiff_core::pb::envoy::config::{cluster, endpoint, listener, route};
    let v = any.value.as_slice();
    match ResourceType::from_type_url(&any.type_url)? {
        ResourceType::Listener => listener::v3::Listener::decode(v).ok().map(|m| m.name),
        ResourceType::RouteConfiguration => route::v3::RouteConfiguration::decode(v)
            .ok()
            .map(|m| m.name),
        ResourceType::Cluster => cluster::v3::Cluster::decode(v).ok().map(|m| m.name),
        ResourceType::ClusterLoadAssignment => endpoint::v3::ClusterLoadAssignment::decode(v)
            .ok()
            .map(|m| m.cluster_name),
    }
}
