//! skiff's own embedded control plane ([`skiff_core::control::ControlPlane`]) as the server of a
//! [`crate::World`]: the sans-IO client and the sans-IO server talk real gRPC-framed protobuf
//! over the simulated link, so the server side of ADS (SotW and Delta: subscriptions, nonces,
//! ACK/NACK, pushes on config change, stream loss) is exercised by the real client rather than
//! by hand-written requests.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use prost::Message;
use skiff_core::control::ControlPlane;
use skiff_core::control::ads::{AdsRequest, AdsResponse};
use skiff_core::grpc::codec::{FrameDecoder, encode_frame};
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::service::discovery::v3 as disc;
use skiff_core::time::Instant;
use skiff_core::xds::Protocol;

use crate::server::{AdsPeer, ServerAction};

/// The embedded control plane behind a simulated listener.
#[derive(Debug)]
pub struct PlaneServer {
    /// The control plane (change its config with `plane.set_config`).
    pub plane: ControlPlane,
    protocol: Protocol,
    streams: BTreeMap<AdsStreamId, FrameDecoder>,
    out: std::collections::VecDeque<ServerAction>,
    /// Protocol errors the control plane answered with (the stream was closed).
    pub errors: Vec<String>,
    /// Whether new streams are refused (the control plane is "down").
    pub refuse: bool,
}

impl PlaneServer {
    /// Serves `plane` to clients speaking `protocol`.
    pub fn new(plane: ControlPlane, protocol: Protocol) -> Self {
        PlaneServer {
            plane,
            protocol,
            streams: BTreeMap::new(),
            out: Default::default(),
            errors: Vec::new(),
            refuse: false,
        }
    }

    /// Streams currently open.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Closes every stream from the server side (a control-plane restart).
    pub fn reset_streams(&mut self, now: Instant, reason: &str) {
        let ids: Vec<_> = self.streams.keys().copied().collect();
        for id in ids {
            self.close(now, id, reason.to_string());
        }
    }

    fn close(&mut self, now: Instant, id: AdsStreamId, reason: String) {
        self.streams.remove(&id);
        self.plane.handle_stream_closed(now, id);
        self.out.push_back(ServerAction::Close(id, reason));
    }

    /// Moves the control plane's responses onto the link.
    fn drain(&mut self) {
        while let Some((id, resp)) = self.plane.poll_output() {
            if !self.streams.contains_key(&id) {
                continue;
            }
            let mut buf = BytesMut::new();
            match &resp {
                AdsResponse::Sotw(r) => encode_frame(r, &mut buf),
                AdsResponse::Delta(r) => encode_frame(r, &mut buf),
            }
            self.out.push_back(ServerAction::Send(id, buf.freeze()));
        }
    }
}

impl AdsPeer for PlaneServer {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn handle_open(&mut self, _now: Instant, id: AdsStreamId) -> bool {
        if self.refuse {
            return false;
        }
        self.streams.insert(id, FrameDecoder::new(4 << 20));
        true
    }

    fn handle_data(&mut self, now: Instant, id: AdsStreamId, data: &[u8]) -> Result<(), String> {
        let Some(dec) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        dec.push(&Bytes::copy_from_slice(data));
        let mut frames = Vec::new();
        loop {
            match dec.decode_next() {
                Ok(Some(f)) => frames.push(f.data),
                Ok(None) => break,
                Err(e) => return Err(format!("client sent bad gRPC framing: {e}")),
            }
        }
        for f in frames {
            let request = match self.protocol {
                Protocol::StateOfTheWorld => disc::DiscoveryRequest::decode(f)
                    .map(AdsRequest::Sotw)
                    .map_err(|e| format!("undecodable SotW request: {e}"))?,
                Protocol::Delta => disc::DeltaDiscoveryRequest::decode(f)
                    .map(AdsRequest::Delta)
                    .map_err(|e| format!("undecodable Delta request: {e}"))?,
            };
            if let Err(e) = self.plane.handle_request(now, id, request) {
                // What an adapter does: close the stream with INVALID_ARGUMENT and the text.
                let text = e.to_string();
                self.errors.push(text.clone());
                self.close(now, id, text);
                break;
            }
        }
        self.drain();
        Ok(())
    }

    fn handle_close(&mut self, now: Instant, id: AdsStreamId) {
        if self.streams.remove(&id).is_some() {
            self.plane.handle_stream_closed(now, id);
        }
    }

    fn poll_action(&mut self) -> Option<ServerAction> {
        self.drain();
        self.out.pop_front()
    }
}
