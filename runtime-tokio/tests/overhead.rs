//! Service-time overhead of a unary call through skiff's `Channel` against a plain tonic
//! `Channel`, on loopback. A measurement, not a test: it asserts nothing about speed and is
//! ignored by default. Run it in release mode:
//!
//! ```text
//! cargo test --release -p skiff-tokio --test overhead -- --ignored --nocapture
//! ```
//!
//! Method (after `reference/performance.md` §5, scaled down): one tonic Greeter server on its
//! own runtime thread; the clients on a `current_thread` runtime; closed loop, one call
//! outstanding, a 100-byte name; per round 500 warm-up calls then `SKIFF_OVERHEAD_CALLS`
//! (default 2,000) timed calls for each path, the paths interleaved, `SKIFF_OVERHEAD_ROUNDS`
//! (default 5) rounds; the table shows the median over rounds of each round's p50 and p90.
//! Paths: plain tonic (`Endpoint::connect`), skiff `xds:///` (routed by the mesh), skiff plain
//! `host:port` target.

mod support;

use std::time::Instant;

use skiff_tokio::{Mesh, XdsServerTarget};
use support::greeter::HelloRequest;
use support::greeter::greeter_client::GreeterClient;
use support::{Fixture, TARGET, mesh_yaml};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn round<T>(client: &mut GreeterClient<T>, warmup: usize, calls: usize) -> (f64, f64)
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let name = "x".repeat(100);
    for _ in 0..warmup {
        client
            .say_hello(HelloRequest {
                name: name.clone(),
                count: 0,
            })
            .await
            .expect("warm-up call");
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        client
            .say_hello(HelloRequest {
                name: name.clone(),
                count: 0,
            })
            .await
            .expect("timed call");
        samples.push(t.elapsed());
    }
    samples.sort();
    let pct = |p: f64| {
        let i = ((samples.len() as f64 * p) as usize).min(samples.len() - 1);
        samples[i].as_secs_f64() * 1e6
    };
    (pct(0.50), pct(0.90))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn unary_overhead() {
    let calls = env_usize("SKIFF_OVERHEAD_CALLS", 2_000);
    let rounds = env_usize("SKIFF_OVERHEAD_ROUNDS", 5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fx = Fixture::new();
        let a = fx.backend("a").await;
        fx.start_control_plane(Some(&mesh_yaml(&[a.endpoint_yaml("v1")], "")))
            .await;
        let tonic_channel = tonic::transport::Endpoint::from_shared(format!("http://{}", a.addr))
            .unwrap()
            .tcp_nodelay(true)
            .connect()
            .await
            .unwrap();
        let mesh = Mesh::builder()
            .xds_server(XdsServerTarget::insecure(fx.xds_target()))
            .build()
            .unwrap();
        let mut plain = GreeterClient::new(tonic_channel);
        let mut routed = GreeterClient::new(mesh.channel(TARGET).unwrap());
        let mut direct = GreeterClient::new(mesh.channel(&a.addr.to_string()).unwrap());
        let (mut p50s, mut p90s) = ([vec![], vec![], vec![]], [vec![], vec![], vec![]]);
        for r in 0..rounds {
            let results = [
                round(&mut plain, 500, calls).await,
                round(&mut routed, 500, calls).await,
                round(&mut direct, 500, calls).await,
            ];
            println!(
                "round {r}: p50 tonic {:.1} µs, skiff xds {:.1} µs, skiff plain {:.1} µs",
                results[0].0, results[1].0, results[2].0
            );
            for (i, (p50, p90)) in results.into_iter().enumerate() {
                p50s[i].push(p50);
                p90s[i].push(p90);
            }
        }
        let names = [
            "plain tonic Channel",
            "skiff Channel (xds:///)",
            "skiff Channel (host:port)",
        ];
        let base50 = median(p50s[0].clone());
        let base90 = median(p90s[0].clone());
        println!("\n{calls} calls x {rounds} rounds, median of per-round percentiles:");
        println!(
            "{:<28} {:>9} {:>9} {:>8} {:>8}",
            "path", "p50 µs", "p90 µs", "p50 x", "p90 x"
        );
        for i in 0..3 {
            let m50 = median(p50s[i].clone());
            let m90 = median(p90s[i].clone());
            println!(
                "{:<28} {:>9.1} {:>9.1} {:>8.3} {:>8.3}",
                names[i],
                m50,
                m90,
                m50 / base50,
                m90 / base90
            );
        }
    });
}
