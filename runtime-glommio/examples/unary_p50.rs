//! A quick latency comparison of one unary call through skiff on each runtime: the same
//! tonic Greeter client, routed by the same xDS configuration to the same loopback backend,
//! with skiff-tokio (current-thread runtime), skiff-smol (`smol::block_on`) and skiff-glommio
//! (one executor: its xDS shard and its data plane) as the client.
//!
//! ```text
//! cargo run --release -p skiff-glommio --example unary_p50 [-- WARMUP CALLS]
//! ```
//!
//! The embedded control plane and the tonic backend run on a one-worker tokio runtime in a
//! background thread (the conformance suite's fixture). Calls are sequential: 2,000 warm-up
//! calls, then 10,000 measured ones (by default); p50/p90/p99 are printed per runtime. A
//! functional comparison on a shared machine, not a benchmark (benches/ has those).

#![cfg_attr(not(target_os = "linux"), allow(unused))]

#[cfg(target_os = "linux")]
#[path = "../../runtime-tokio/tests/support/mod.rs"]
mod support;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("skiff-glommio runs on Linux only");
}

#[cfg(target_os = "linux")]
use linux::main;

#[cfg(target_os = "linux")]
mod linux {

    use std::time::{Duration, Instant};

    use crate::support;
    use hdrhistogram::Histogram;
    use support::greeter::HelloRequest;
    use support::greeter::greeter_client::GreeterClient;
    use support::{Fixture, TARGET, mesh_yaml};

    fn request() -> tonic::Request<HelloRequest> {
        let mut r = tonic::Request::new(HelloRequest {
            name: "p50".into(),
            count: 0,
        });
        r.set_timeout(Duration::from_secs(5));
        r
    }

    /// Warm-up, then `calls` timed calls; returns the latencies in nanoseconds.
    async fn measure<T>(
        client: &mut GreeterClient<T>,
        warmup: usize,
        calls: usize,
    ) -> Histogram<u64>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        // The first call waits for xDS and the connection.
        let mut first = request();
        first.extensions_mut().insert(skiff_adapter::WaitForReady);
        client.say_hello(first).await.expect("first call");
        for _ in 0..warmup {
            client.say_hello(request()).await.expect("warm-up call");
        }
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for _ in 0..calls {
            let t = Instant::now();
            client.say_hello(request()).await.expect("call");
            let _ = h.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        h
    }

    fn report(runtime: &str, h: &Histogram<u64>) {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{runtime:<8} n={:<6} p50={:>7.1} µs  p90={:>7.1} µs  p99={:>7.1} µs",
            h.len(),
            us(0.5),
            us(0.9),
            us(0.99)
        );
    }

    pub fn main() {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .map(|a| a.parse().expect("WARMUP CALLS are numbers"))
            .collect();
        let warmup = args.first().copied().unwrap_or(2_000);
        let calls = args.get(1).copied().unwrap_or(10_000);

        let fx = Fixture::new();
        let setup = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("setup runtime");
        // The backend stops when its handle is dropped: keep it to the end.
        let _backend = setup.block_on(async {
            let a = fx.backend("a").await;
            fx.start_control_plane(Some(&mesh_yaml(&[a.endpoint_yaml("v1")], "")))
                .await;
            a
        });
        let xds = fx.xds_target();

        // skiff-tokio on a current-thread runtime.
        let h = setup.block_on(async {
            let mesh = skiff_tokio::Mesh::builder()
                .xds_server(skiff_tokio::XdsServerTarget::insecure(xds.as_str()))
                .build()
                .expect("mesh");
            let mut client = GreeterClient::new(mesh.channel(TARGET).expect("channel"));
            let h = measure(&mut client, warmup, calls).await;
            mesh.shutdown().await;
            h
        });
        report("tokio", &h);

        // skiff-smol: the caller under `smol::block_on`, the mesh's tasks on smol's executor.
        let h = smol::block_on(async {
            let mesh = skiff_smol::Mesh::builder()
                .xds_server(skiff_smol::XdsServerTarget::insecure(xds.as_str()))
                .build()
                .expect("mesh");
            let mut client = GreeterClient::new(mesh.channel(TARGET).expect("channel"));
            let h = measure(&mut client, warmup, calls).await;
            mesh.shutdown().await;
            h
        });
        report("smol", &h);

        // skiff-glommio: one executor running the xDS shard and the data plane (io_uring sockets).
        if let Err(e) = skiff_glommio::check_environment() {
            println!("glommio  skipped: {e}");
            return;
        }
        // Unpinned, like the other two clients (and the fixture's threads share the CPUs).
        let h = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("p50")
            .spawn(move || async move {
                let builder = || {
                    skiff_glommio::Mesh::builder()
                        .xds_server(skiff_glommio::XdsServerTarget::insecure(xds.as_str()))
                };
                let skiff_glommio::Core { mesh, shard, .. } =
                    skiff_glommio::Core::on_this_executor(builder).expect("mesh");
                let mut client = GreeterClient::new(mesh.channel(TARGET).expect("channel"));
                let h = measure(&mut client, warmup, calls).await;
                mesh.shutdown().await;
                shard.shutdown().await;
                h
            })
            .expect("executor")
            .join()
            .expect("glommio run");
        report("glommio", &h);
    }
}
