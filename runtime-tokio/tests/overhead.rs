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
//! outstanding, a 100-byte name; 500 warm-up calls per path, then per round `SKIFF_OVERHEAD_CALLS`
//! (default 2,000) timed calls for each path, interleaved in blocks of 100 in rotating order, `SKIFF_OVERHEAD_ROUNDS`
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

/// `calls` timed calls (after `warmup` untimed ones); their latencies in µs.
async fn block<T>(client: &mut GreeterClient<T>, warmup: usize, calls: usize) -> Vec<f64>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let name = "x".repeat(100);
    let mut samples = Vec::with_capacity(calls);
    for i in 0..warmup + calls {
        let t = Instant::now();
        client
            .say_hello(HelloRequest {
                name: name.clone(),
                count: 0,
            })
            .await
            .expect("call");
        if i >= warmup {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let i = ((samples.len() as f64 * p) as usize).min(samples.len() - 1);
    samples[i]
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
        support::init_logs();
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
        // Warm every path up, then interleave blocks of 100 calls per path so load changes on
        // the (shared) machine hit every path alike.
        block(&mut plain, 500, 0).await;
        block(&mut routed, 500, 0).await;
        block(&mut direct, 500, 0).await;
        for r in 0..rounds {
            let mut samples = [vec![], vec![], vec![]];
            for k in 0..calls.div_ceil(100) {
                // Rotate the order too, so no path always follows the same one.
                for j in 0..3 {
                    let i = (k + j) % 3;
                    let s = match i {
                        0 => block(&mut plain, 0, 100).await,
                        1 => block(&mut routed, 0, 100).await,
                        _ => block(&mut direct, 0, 100).await,
                    };
                    samples[i].extend(s);
                }
            }
            let mut line = format!("round {r}:");
            for (i, s) in samples.iter_mut().enumerate() {
                let (p50, p90) = (percentile(s, 0.5), percentile(s, 0.9));
                line.push_str(&format!(" [{i}] p50 {p50:.1} p90 {p90:.1};"));
                p50s[i].push(p50);
                p90s[i].push(p90);
            }
            println!("{line}");
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
