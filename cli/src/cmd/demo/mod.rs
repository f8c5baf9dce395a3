//! `skiff demo`: the whole mesh on one machine, on its embedded default.
//!
//! Starts skiff's control plane with a bundled mesh config, three greeter backends (v1, v1,
//! v2) on loopback, and a skiff client that calls `xds:///greeter.demo.svc.cluster.local:50051`
//! — routing decided in-process from xDS, no sidecar. It shows the traffic split live, then
//! changes the VirtualService (90/10 canary → 50/50 → a header route) through the control plane
//! and shows the split follow, and ends with a summary table.

mod backend;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use skiff_tokio::{ConfigSource, ControlPlaneServer, XdsServerTarget};

use self::backend::{Backend, HelloReply, HelloRequest, SAY_HELLO};
use super::CliError;

/// The service the demo calls.
const HOST: &str = "greeter.demo.svc.cluster.local";
const PORT: u16 = 50051;

/// istiod's route configuration name for the service (`outbound|PORT||HOST`).
const ROUTES: &str = "outbound|50051||greeter.demo.svc.cluster.local";

/// The version of the route configuration the client holds.
fn route_version(mesh: &skiff_tokio::Mesh) -> Option<String> {
    mesh.read(|core| {
        core.xds()
            .entry(skiff_core::xds::ResourceType::RouteConfiguration, ROUTES)
            .map(|e| e.version.clone())
    })
}

/// Arguments of `skiff demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds of traffic per phase.
    #[arg(long, default_value_t = 4)]
    pub seconds: u64,

    /// RPCs per second during each phase.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,

    /// Print plain lines instead of redrawing (automatic when stdout is not a terminal).
    #[arg(long)]
    pub plain: bool,
}

/// One phase of the demo: a VirtualService and what the client sends.
struct Phase {
    title: &'static str,
    virtual_service: String,
    /// Every `canary_every`-th request carries `x-canary: true` (0 = never).
    canary_every: u32,
    expect: &'static str,
}

fn mesh_yaml(backends: &[Backend], virtual_service: &str) -> String {
    let mut endpoints = String::new();
    for b in backends {
        endpoints.push_str(&format!(
            "  - {{address: 127.0.0.1, ports: {{grpc: {}}}, labels: {{app: greeter, version: {}, instance: {}}}}}\n",
            b.addr.port(),
            b.version,
            b.name
        ));
    }
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: demo}}
spec:
  hosts: [{HOST}]
  ports: [{{number: {PORT}, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
{endpoints}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: demo}}
spec:
  host: {HOST}
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
{virtual_service}"
    )
}

fn weighted(v1: u32, v2: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: demo}}
spec:
  hosts: [{HOST}]
  http:
  - route:
    - destination: {{host: {HOST}, subset: v1}}
      weight: {v1}
    - destination: {{host: {HOST}, subset: v2}}
      weight: {v2}
"
    )
}

fn header_route() -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: demo}}
spec:
  hosts: [{HOST}]
  http:
  - match:
    - headers:
        x-canary: {{exact: \"true\"}}
    route:
    - destination: {{host: {HOST}, subset: v2}}
  - route:
    - destination: {{host: {HOST}, subset: v1}}
"
    )
}

pub fn run(args: Args) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(demo(args))
}

/// What one phase observed.
#[derive(Default)]
struct Tally {
    by_backend: BTreeMap<&'static str, u64>,
    canary_to_v2: u64,
    canary_sent: u64,
    failed: u64,
    latencies_us: Vec<u64>,
}

async fn demo(args: Args) -> Result<(), CliError> {
    let live = !args.plain && std::io::stdout().is_terminal();
    println!("skiff demo: a proxyless service mesh on one machine\n");

    let backends = vec![
        backend::start("greeter-v1-a", "v1").await?,
        backend::start("greeter-v1-b", "v1").await?,
        backend::start("greeter-v2", "v2").await?,
    ];
    for b in &backends {
        println!(
            "  backend  {:<13} version {}  on {}",
            b.name, b.version, b.addr
        );
    }
    let phases = [
        Phase {
            title: "canary: VirtualService sends 90% to v1, 10% to v2",
            virtual_service: weighted(90, 10),
            canary_every: 0,
            expect: "~90% v1 / ~10% v2",
        },
        Phase {
            title: "config change: 50/50",
            virtual_service: weighted(50, 50),
            canary_every: 0,
            expect: "~50% v1 / ~50% v2",
        },
        Phase {
            title: "header route: x-canary: true -> v2, everything else -> v1",
            virtual_service: header_route(),
            canary_every: 5,
            expect: "every x-canary call on v2, the rest on v1",
        },
    ];

    let first = mesh_yaml(&backends, &phases[0].virtual_service);
    let server =
        ControlPlaneServer::bind("127.0.0.1:0", ConfigSource::text("demo-mesh.yaml", first))
            .await?;
    let cp_addr = server.local_addr().to_string();
    let control_plane = server.spawn();
    println!("  control plane (xDS, istiod's proxyless shapes) on {cp_addr}");

    let mesh = skiff_tokio::Mesh::builder()
        .xds_server(XdsServerTarget::insecure(cp_addr.clone()))
        .node_id("sidecar~127.0.0.1~demo-client.demo~demo.svc.cluster.local")
        .build()?;
    let target = format!("xds:///{HOST}:{PORT}");
    let channel = mesh.channel(&target)?;
    println!("  client   skiff channel to {target}\n");
    let origin: http::Uri = format!("http://{HOST}:{PORT}").parse()?;
    let mut grpc = tonic::client::Grpc::with_origin(channel, origin);

    let mut summary = Vec::new();
    for (i, phase) in phases.iter().enumerate() {
        if i > 0 {
            let before = route_version(&mesh);
            let event = control_plane.handle().reload_text(
                "demo-mesh.yaml",
                &mesh_yaml(&backends, &phase.virtual_service),
            );
            println!("  control plane: {event}");
            // xDS is eventually consistent: measure once the client holds the new routes.
            let arrived = tokio::time::timeout(
                Duration::from_secs(10),
                mesh.wait_for(|core| {
                    let now = core
                        .xds()
                        .entry(skiff_core::xds::ResourceType::RouteConfiguration, ROUTES)
                        .map(|e| e.version.clone());
                    (now != before).then_some(())
                }),
            )
            .await;
            if arrived.is_err() {
                return Err("the client did not receive the new routes within 10 s".into());
            }
        }
        println!("phase {}/{}: {}", i + 1, phases.len(), phase.title);
        let tally = run_phase(&mut grpc, &args, phase, &backends, live).await;
        summary.push((phase, tally));
        println!();
    }

    println!("summary");
    println!(
        "  {:<58} {:>6} {:>6} {:>6} {:>7} {:>9}  expected",
        "phase", "v1-a", "v1-b", "v2", "failed", "p50 (µs)"
    );
    for (phase, t) in &summary {
        let get = |n: &str| t.by_backend.get(n).copied().unwrap_or(0);
        let mut lat = t.latencies_us.clone();
        lat.sort_unstable();
        let p50 = lat.get(lat.len() / 2).copied().unwrap_or(0);
        println!(
            "  {:<58} {:>6} {:>6} {:>6} {:>7} {:>9}  {}",
            phase.title,
            get("greeter-v1-a"),
            get("greeter-v1-b"),
            get("greeter-v2"),
            t.failed,
            p50,
            phase.expect
        );
    }
    let failed: u64 = summary.iter().map(|(_, t)| t.failed).sum();
    println!(
        "\nEvery routing decision above was made inside the client from xDS; no proxy was involved."
    );
    mesh.shutdown().await;
    control_plane.shutdown().await;
    drop(backends);
    if failed > 0 {
        return Err(format!("{failed} RPCs failed").into());
    }
    Ok(())
}

async fn run_phase(
    grpc: &mut tonic::client::Grpc<skiff_tokio::Channel>,
    args: &Args,
    phase: &Phase,
    backends: &[Backend],
    live: bool,
) -> Tally {
    let mut t = Tally::default();
    let total = u64::from(args.rate) * args.seconds;
    let gap = Duration::from_secs(1) / args.rate.max(1);
    let start = Instant::now();
    let mut last_draw = Instant::now();
    let mut drawn = false;
    for n in 0..total {
        // Open-loop-ish pacing so the split is visible as it happens.
        let due = start + gap * u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let canary = phase.canary_every > 0 && n % u64::from(phase.canary_every) == 0;
        let mut req = tonic::Request::new(HelloRequest {
            name: format!("demo-{n}"),
        });
        if canary {
            req.metadata_mut().insert(
                "x-canary",
                tonic::metadata::MetadataValue::from_static("true"),
            );
            t.canary_sent += 1;
        }
        let sent = Instant::now();
        let result = async {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unknown(e.to_string()))?;
            grpc.unary::<_, HelloReply, _>(
                req,
                PathAndQuery::from_static(SAY_HELLO),
                tonic_prost::ProstCodec::default(),
            )
            .await
        }
        .await;
        let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        match result {
            Ok(reply) => {
                t.latencies_us.push(us);
                let msg = reply.into_inner().message;
                if let Some(b) = backends.iter().find(|b| msg.ends_with(b.name)) {
                    *t.by_backend.entry(b.name).or_default() += 1;
                    if canary && b.version == "v2" {
                        t.canary_to_v2 += 1;
                    }
                }
            }
            Err(status) => {
                t.failed += 1;
                if t.failed <= 3 {
                    eprintln!("  rpc failed: {status}");
                }
            }
        }
        if live && last_draw.elapsed() > Duration::from_millis(200) {
            draw(&t, backends, drawn);
            drawn = true;
            last_draw = Instant::now();
        }
    }
    draw(&t, backends, live && drawn);
    if phase.canary_every > 0 {
        println!(
            "  x-canary calls answered by v2: {}/{}",
            t.canary_to_v2, t.canary_sent
        );
    }
    t
}

/// Bars per backend; `redraw` moves the cursor up first to draw over the previous bars.
fn draw(t: &Tally, backends: &[Backend], redraw: bool) {
    let total: u64 = t.by_backend.values().sum::<u64>().max(1);
    let mut out = std::io::stdout().lock();
    if redraw {
        let _ = write!(out, "\x1b[{}A", backends.len());
    }
    for b in backends {
        let n = t.by_backend.get(b.name).copied().unwrap_or(0);
        let pct = n as f64 * 100.0 / total as f64;
        let bar = "█".repeat((pct / 2.5).round() as usize);
        let clear = if redraw { "\x1b[K" } else { "" };
        let _ = writeln!(
            out,
            "  {:<13} {:<2} {:<40} {:>5} ({:>5.1}%){clear}",
            b.name, b.version, bar, n, pct
        );
    }
    let _ = out.flush();
}
