//! Embedding `skiff-core` in your own event loop: a plain blocking loop, no async runtime.
//!
//! ```sh
//! cargo run -p skiff-core --example blocking_loop
//! ```
//!
//! This is the contract every runtime adapter (skiff-tokio, skiff-smol, skiff-glommio)
//! implements, written out in one function so that users who bring their own loop — mio, a game
//! loop, an embedded scheduler — can see all of it:
//!
//! 1. **Clock.** The core never reads a clock. The loop fixes an epoch when it starts and passes
//!    `now` (time since the epoch, as [`skiff_core::time::Instant`]) into every call.
//! 2. **Inputs** are `handle_*` calls: ADS stream opened / bytes received / closed, a
//!    connection's state changed, an attempt's outcome, a timer fired.
//! 3. **Outputs** are drained with `poll_output` after every input: open/send/close the ADS
//!    stream, connect/disconnect an endpoint, a queued RPC's pick, a finished RPC.
//! 4. **Timers**: `poll_timeout` says when to call `handle_timeout` next; the loop blocks on its
//!    IO *until that deadline* and no longer.
//!
//! To keep the example self-contained, the other side of the ADS stream is skiff's embedded
//! control plane (itself sans-IO: [`skiff_core::control::ControlPlane`]) on a second thread, and
//! the "network" between the two is a pair of channels carrying the exact gRPC-framed protobuf
//! bytes an HTTP/2 stream would carry. Endpoint connections are reported ready at once and every
//! RPC attempt succeeds; a real loop would dial the endpoint and send the request there. The RPCs
//! follow the control plane's 80/20 canary split, which the example prints.

// This file is an application embedding the core, not the core: it may read the clock, block
// and spawn a thread, which `core/clippy.toml` forbids inside the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use bytes::BytesMut;
use prost::Message;
use skiff_core::control::ControlPlane;
use skiff_core::control::ads::{AdsRequest, AdsResponse};
use skiff_core::control::config;
use skiff_core::grpc::codec::{FrameDecoder, encode_frame};
use skiff_core::ids::AdsStreamId;
use skiff_core::mesh::{CallRequest, ChannelState, Mesh, MeshConfig};
use skiff_core::pb::envoy::config::core::v3::Node;
use skiff_core::pb::envoy::service::discovery::v3::DiscoveryRequest;
use skiff_core::plane::{CallOutcome, Connectivity, Output, Pick};
use skiff_core::resource::matcher::SliceHeaders;
use skiff_core::rng::Seed;
use skiff_core::time::Instant;
use skiff_core::xds::XdsClientConfig;

const MESH_YAML: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{number: 7000, name: grpc}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v1}}
  - {address: 10.0.0.3, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  http:
  - route:
    - {destination: {host: echo.default.svc.cluster.local, subset: v1}, weight: 80}
    - {destination: {host: echo.default.svc.cluster.local, subset: v2}, weight: 20}
";

/// What travels between the app's loop and the control-plane thread.
enum Wire {
    Open(AdsStreamId),
    Data(AdsStreamId, Vec<u8>),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (to_plane, plane_rx) = mpsc::channel::<Wire>();
    let (to_app, app_rx) = mpsc::channel::<(AdsStreamId, Vec<u8>)>();
    let plane = std::thread::spawn(move || control_plane(plane_rx, to_app));

    // (1) The clock: one epoch, `now()` is the time since it.
    let epoch = std::time::Instant::now();
    let now = || Instant::from_nanos(u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX));

    let node = Node {
        id: "sidecar~10.0.0.9~blocking-loop.default~default.svc.cluster.local".into(),
        ..Default::default()
    };
    // Randomness (balancer start positions, weighted picks, jitter) comes from this one seed:
    // the same seed and the same inputs give the same decisions.
    let mut mesh = Mesh::new(MeshConfig::new(XdsClientConfig::new(node)), Seed(7), now());
    let channel = mesh.open_channel(now(), "xds:///echo.default.svc.cluster.local:7000")?;

    let mut served: BTreeMap<String, u32> = BTreeMap::new();
    let mut finished = 0u32;
    let mut started = false;
    let total = 1_000u32;
    let give_up = now().saturating_add(Duration::from_secs(10));

    while finished < total {
        // (3) Drain every output the last input produced.
        while let Some(out) = mesh.poll_output() {
            match out {
                Output::AdsOpen(s) => {
                    // A real loop opens an HTTP/2 stream to
                    // /envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources.
                    to_plane.send(Wire::Open(s))?;
                    mesh.handle_ads_open(now(), s);
                }
                Output::AdsSend(s, bytes) => to_plane.send(Wire::Data(s, bytes.to_vec()))?,
                Output::AdsClose(_) => {}
                Output::Connect {
                    subchannel,
                    address,
                    ..
                } => {
                    // A real loop starts a non-blocking TCP connect (and TLS when the cluster
                    // says so) and reports Ready or TransientFailure when it completes.
                    println!("connect {address}");
                    mesh.handle_subchannel_state(now(), subchannel, Connectivity::Ready);
                }
                Output::Disconnect { .. } => {}
                Output::Picked { call, pick } => {
                    if let Pick::Send(route) = pick {
                        send_attempt(
                            &mut mesh,
                            now(),
                            call,
                            &route.address.to_string(),
                            &mut served,
                        );
                    }
                }
                Output::CallEnded { result, .. } => {
                    finished += 1;
                    if let Err(e) = result {
                        println!("call failed: {e}");
                    }
                }
                Output::Xds(_) | Output::Event(_) => {}
            }
        }

        // The application's work: once the channel has its configuration, start the RPCs.
        if !started && mesh.channel_state(channel) == Some(ChannelState::Ready) {
            started = true;
            println!("configuration received after {:?}", epoch.elapsed());
            for _ in 0..total {
                let headers = SliceHeaders::new(&[]);
                let request = CallRequest {
                    path: "/echo.Echo/Say",
                    headers: &headers,
                    timeout: Some(Duration::from_secs(1)),
                    wait_for_ready: false,
                };
                let (call, pick) = mesh.start_call(now(), channel, &request)?;
                match pick {
                    Pick::Send(route) => send_attempt(
                        &mut mesh,
                        now(),
                        call,
                        &route.address.to_string(),
                        &mut served,
                    ),
                    // The core emits Output::Picked later for a queued call; a terminal
                    // failure arrives as Output::CallEnded.
                    Pick::Queue | Pick::Fail(_) | Pick::Drop(_) => {}
                }
            }
            continue;
        }

        // (4) Block on IO until the core's next deadline, then feed whatever happened.
        let deadline = mesh.poll_timeout().map(|d| d.at);
        if now() > give_up {
            return Err("no configuration within 10 s".into());
        }
        let wait = deadline.map_or(Duration::from_millis(100), |at| {
            at.saturating_duration_since(now())
        });
        match app_rx.recv_timeout(wait.min(Duration::from_millis(100))) {
            // (2) An input.
            Ok((s, bytes)) => mesh.handle_ads_data(now(), s, &bytes),
            Err(RecvTimeoutError::Timeout) => mesh.handle_timeout(now()),
            Err(RecvTimeoutError::Disconnected) => return Err("control plane gone".into()),
        }
    }

    println!("{total} RPCs by endpoint (VirtualService: v1 80 %, v2 20 %):");
    for (endpoint, n) in &served {
        println!(
            "  {endpoint:<16} {n:>5}  {:>5.1} %",
            f64::from(*n) * 100.0 / f64::from(total)
        );
    }
    drop(to_plane);
    plane.join().map_err(|_| "control plane thread panicked")?;
    Ok(())
}

/// Sends one attempt. Here it "succeeds" at once; a real loop writes the request on the
/// subchannel's HTTP/2 connection and reports the outcome when the trailers arrive.
fn send_attempt(
    mesh: &mut Mesh,
    now: Instant,
    call: skiff_core::ids::CallId,
    endpoint: &str,
    served: &mut BTreeMap<String, u32>,
) {
    *served.entry(endpoint.to_string()).or_default() += 1;
    mesh.handle_call_committed(now, call);
    mesh.handle_call_outcome(now, call, &CallOutcome::ok());
}

/// The other end of the ADS stream: skiff's embedded control plane, fed the framed bytes.
fn control_plane(rx: mpsc::Receiver<Wire>, tx: mpsc::Sender<(AdsStreamId, Vec<u8>)>) {
    let loaded = match config::parse_str("mesh.yaml", MESH_YAML) {
        Ok(l) => l,
        Err(e) => return eprintln!("{e}"),
    };
    let mut plane = match ControlPlane::new(Instant::ZERO, loaded.config) {
        Ok(p) => p,
        Err(e) => return eprintln!("{e}"),
    };
    let mut decoders: BTreeMap<AdsStreamId, FrameDecoder> = BTreeMap::new();
    for msg in rx {
        match msg {
            Wire::Open(s) => {
                decoders.insert(s, FrameDecoder::new(4 << 20));
            }
            Wire::Data(s, bytes) => {
                let Some(dec) = decoders.get_mut(&s) else {
                    continue;
                };
                dec.push(&bytes::Bytes::from(bytes));
                while let Ok(Some(frame)) = dec.decode_next() {
                    let Ok(req) = DiscoveryRequest::decode(frame.data) else {
                        continue;
                    };
                    if let Err(e) = plane.handle_request(Instant::ZERO, s, AdsRequest::Sotw(req)) {
                        eprintln!("control plane: {e}");
                    }
                }
                while let Some((s, resp)) = plane.poll_output() {
                    let mut buf = BytesMut::new();
                    match &resp {
                        AdsResponse::Sotw(r) => encode_frame(r, &mut buf),
                        AdsResponse::Delta(r) => encode_frame(r, &mut buf),
                    }
                    if tx.send((s, buf.to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
