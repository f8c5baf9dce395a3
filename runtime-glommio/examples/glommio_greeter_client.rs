//! skiff-tokio's Greeter client example, thread-per-core on glommio: every executor makes its
//! share of the calls through its own data plane; one xDS shard feeds them all.
//!
//! ```text
//! cargo run -p skiff-glommio --example glommio_greeter_client -- --xds 127.0.0.1:15010 xds:///helloworld.Greeter 20
//! ```
//!
//! Arguments as in skiff-tokio's example, plus `--executors N` (default: one per CPU).
#![cfg_attr(not(target_os = "linux"), allow(unused))]

#[cfg(target_os = "linux")]
#[path = "../../runtime-tokio/tests/support/greeter.rs"]
mod greeter;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("skiff-glommio runs on Linux only");
}

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use greeter::HelloRequest;
    use greeter::greeter_client::GreeterClient;
    use skiff_glommio::{Executors, Mesh, XdsServerTarget};

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut flag = |name: &str| match args.iter().position(|a| a == name) {
        Some(i) if i + 1 < args.len() => {
            let v = args.remove(i + 1);
            args.remove(i);
            Some(v)
        }
        _ => None,
    };
    let xds = flag("--xds").unwrap_or_else(|| "127.0.0.1:15010".into());
    let executors = match flag("--executors") {
        Some(n) => Executors::new(n.parse()?),
        None => Executors::per_core(),
    };
    let target = args
        .first()
        .cloned()
        .unwrap_or_else(|| "xds:///helloworld.Greeter".into());
    let calls: usize = args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(10);
    let per_executor = calls.div_ceil(executors.count());

    let answered = skiff_glommio::run_per_core(
        executors,
        move || {
            Mesh::builder()
                .xds_server(XdsServerTarget::insecure(xds.as_str()))
                .node_id("sidecar~127.0.0.1~greeter-client.demo~demo.svc.cluster.local")
        },
        move |core| {
            let target = target.clone();
            async move {
                let mut answered_by: BTreeMap<String, usize> = BTreeMap::new();
                let Ok(channel) = core.mesh.channel(&target) else {
                    return answered_by;
                };
                let mut client = GreeterClient::new(channel);
                for i in 0..per_executor {
                    let mut request = tonic::Request::new(HelloRequest {
                        name: format!("executor {} call {i}", core.index),
                        count: 0,
                    });
                    request.set_timeout(Duration::from_secs(5));
                    request.extensions_mut().insert(skiff_glommio::WaitForReady);
                    match client.say_hello(request).await {
                        Ok(reply) => {
                            let reply = reply.into_inner();
                            println!("{}", reply.message);
                            *answered_by.entry(reply.backend).or_default() += 1;
                        }
                        Err(status) => println!(
                            "executor {} call {i} failed: {:?}: {}",
                            core.index,
                            status.code(),
                            status.message()
                        ),
                    }
                }
                answered_by
            }
        },
    )?;
    for (i, by) in answered.iter().enumerate() {
        println!("executor {i}: answered by {by:?}");
    }
    Ok(())
}
