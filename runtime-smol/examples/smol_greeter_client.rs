//! skiff-tokio's Greeter client example on smol: the same code, with `skiff_smol` for
//! `skiff_tokio` and `smol::block_on` for `#[tokio::main]`. No tokio runtime runs.
//!
//! ```text
//! GRPC_XDS_BOOTSTRAP=/tmp/bootstrap.json cargo run -p skiff-smol --example smol_greeter_client
//! cargo run -p skiff-smol --example smol_greeter_client -- --xds 127.0.0.1:15010 xds:///helloworld.Greeter 20
//! ```
//!
//! With `GRPC_XDS_BOOTSTRAP` (or `GRPC_XDS_BOOTSTRAP_CONFIG`) set, the mesh is configured from
//! the bootstrap (`skiff bootstrap` writes one); otherwise `--xds ADDR` names the control plane.
//! Then: the target (default `xds:///helloworld.Greeter`; `xds:///greeter.demo.svc.cluster.local:50051`
//! or a plain `127.0.0.1:50051` work too) and how many calls to make (default 10).

#[path = "../../runtime-tokio/tests/support/greeter.rs"]
mod greeter;

use std::collections::BTreeMap;
use std::time::Duration;

use greeter::HelloRequest;
use greeter::greeter_client::GreeterClient;
use skiff_smol::{Mesh, XdsServerTarget};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let xds = match args.iter().position(|a| a == "--xds") {
        Some(i) if i + 1 < args.len() => {
            let v = args.remove(i + 1);
            args.remove(i);
            Some(v)
        }
        _ => None,
    };
    let target = args
        .first()
        .cloned()
        .unwrap_or_else(|| "xds:///helloworld.Greeter".into());
    let calls: usize = args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(10);

    // One mesh per process: one ADS stream, one connection per endpoint, shared by every
    // channel.
    let mesh = match xds {
        Some(addr) => Mesh::builder()
            .xds_server(XdsServerTarget::insecure(addr))
            .node_id("sidecar~127.0.0.1~greeter-client.demo~demo.svc.cluster.local")
            .build()?,
        None => Mesh::from_env()?,
    };
    let mut client = GreeterClient::new(mesh.channel(&target)?);

    let mut answered_by: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..calls {
        let mut request = tonic::Request::new(HelloRequest {
            name: format!("call {i}"),
            count: 0,
        });
        request.set_timeout(Duration::from_secs(5));
        match client.say_hello(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                println!("{}", reply.message);
                *answered_by.entry(reply.backend).or_default() += 1;
            }
            Err(status) => println!("call {i} failed: {:?}: {}", status.code(), status.message()),
        }
    }
    println!("answered by: {answered_by:?}");
    mesh.shutdown().await;
    Ok(())
}
