//! What the Greeter client examples of every runtime share (each includes this file with
//! `#[path]` next to its `greeter` module): logging, the arguments and the calls. Only building
//! the mesh and running it differ between runtimes.
// Not every example reads every argument (`--executors` is glommio's).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use crate::greeter::HelloRequest;
use crate::greeter::greeter_client::GreeterClient;

/// The examples' node id (an istio-agent-shaped sidecar id).
pub const NODE_ID: &str = "sidecar~127.0.0.1~greeter-client.demo~demo.svc.cluster.local";

/// Logs at `info` (`RUST_LOG` to change).
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// `[--xds ADDR] [--executors N] [TARGET] [CALLS]`.
pub struct Args {
    /// The control plane (`None`: the mesh comes from `GRPC_XDS_BOOTSTRAP`).
    pub xds: Option<String>,
    /// glommio's executor count.
    pub executors: Option<usize>,
    /// What to call (default `xds:///helloworld.Greeter`).
    pub target: String,
    /// How many calls (default 10).
    pub calls: usize,
}

impl Args {
    /// The process's arguments.
    pub fn from_env() -> Result<Args, Box<dyn std::error::Error>> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        let mut flag = |name: &str| match args.iter().position(|a| a == name) {
            Some(i) if i + 1 < args.len() => {
                let v = args.remove(i + 1);
                args.remove(i);
                Some(v)
            }
            _ => None,
        };
        let xds = flag("--xds");
        let executors = flag("--executors").map(|n| n.parse()).transpose()?;
        Ok(Args {
            xds,
            executors,
            target: args
                .first()
                .cloned()
                .unwrap_or_else(|| "xds:///helloworld.Greeter".into()),
            calls: args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(10),
        })
    }
}

/// Makes `calls` SayHello calls on `channel` (labelled `label`), printing each reply or
/// failure; returns how many replies each backend sent.
pub async fn greet(
    channel: skiff_adapter::Channel,
    label: &str,
    calls: usize,
    wait_for_ready: bool,
) -> BTreeMap<String, usize> {
    let mut client = GreeterClient::new(channel);
    let mut answered_by = BTreeMap::new();
    for i in 0..calls {
        let mut request = tonic::Request::new(HelloRequest {
            name: format!("{label}call {i}"),
            count: 0,
        });
        request.set_timeout(Duration::from_secs(5));
        if wait_for_ready {
            request.extensions_mut().insert(skiff_adapter::WaitForReady);
        }
        match client.say_hello(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                println!("{}", reply.message);
                *answered_by.entry(reply.backend).or_default() += 1;
            }
            Err(status) => println!(
                "{label}call {i} failed: {:?}: {}",
                status.code(),
                status.message()
            ),
        }
    }
    answered_by
}
