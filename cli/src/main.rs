//! `skiff`: the skiff command line.
//!
//! One module per subcommand under `cmd/`; add a variant to [`Command`] and a `run` function to
//! add one.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// skiff: a proxyless service mesh for Rust.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing's EnvFilter syntax, e.g. `info`, `skiff_tokio=debug`). Overrides
    /// RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole mesh on this machine: control plane, three backends, a skiff client.
    ///
    /// Starts the embedded control plane with a bundled mesh config, three greeter backends
    /// (v1, v1, v2) on loopback and a skiff client calling them through
    /// `xds:///greeter.demo.svc.cluster.local:50051`. Shows the traffic split live for a 90/10
    /// canary, then changes the VirtualService to 50/50 and to a header route and shows the
    /// split follow; ends with a summary table. Needs nothing else.
    Demo(cmd::demo::Args),
    /// Serve the embedded xDS control plane from an Istio-style YAML file.
    ///
    /// Serves ADS (State of the World and Delta) over HTTP/2, plaintext or TLS, to skiff and to
    /// any proxyless gRPC client (grpc-go, grpc-java, grpcio, grpc-js), with the resource names
    /// and shapes istiod's proxyless generator uses. The file is watched: every reload is
    /// printed, and an invalid edit is rejected with its line-accurate errors while the previous
    /// configuration keeps being served. Stop with Ctrl-C or SIGTERM.
    ControlPlane(cmd::control_plane::Args),
    /// Write a gRPC xDS bootstrap file pointing at a control plane.
    ///
    /// The bootstrap (gRFC A27) names one insecure xDS server with `xds_v3`, a node with
    /// `GENERATOR: grpc` metadata, and istiod's server listener template. Point grpc-go,
    /// grpc-java, grpcio, grpc-js or skiff at it with GRPC_XDS_BOOTSTRAP=FILE.
    Bootstrap(cmd::bootstrap::Args),
    /// Call a gRPC method through the mesh, with JSON in and out (grpcurl for skiff).
    ///
    /// `xds:///` targets go through skiff's client (routing, load balancing, retries) with the
    /// control plane from --xds-server, --bootstrap or GRPC_XDS_BOOTSTRAP; plain host:port
    /// targets are dialed directly. Messages come from --proto files compiled at run time.
    /// Each call prints its status, latency, the endpoint that answered, the response and the
    /// trailers; -n/-c make many calls and end with a summary (by status, by endpoint,
    /// p50/p90/p99). Exits non-zero when any call fails.
    Call(cmd::call::Args),
    /// Scaffold a gRPC service on skiff: proto, build.rs, server, client, mesh.yaml, k8s.
    ///
    /// The generated Cargo project builds and runs as is: the proto is compiled by protox +
    /// tonic-prost-build (no protoc), the server is xDS-enabled (gRFC A36) and announces its
    /// interface, the client finds it by interface name, `mesh.yaml` runs it under `skiff
    /// control-plane`, and `k8s/service.yaml` deploys it with Istio's proxyless grpc-agent.
    New(cmd::new::Args),
    /// Show what a control plane's clients were sent, acknowledged and rejected (CSDS).
    ///
    /// Asks a CSDS server (gRFC A40; `skiff control-plane` is one) for its view of every
    /// connected client: each subscribed resource with the version the client ACKed, or the
    /// NACK and its reason, and the names that do not exist.
    ConfigDump(cmd::config_dump::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::ControlPlane(args) => cmd::control_plane::run(args),
        Command::Bootstrap(args) => cmd::bootstrap::run(args),
        Command::ConfigDump(args) => cmd::config_dump::run(args),
        Command::Call(args) => cmd::call::run(args),
        Command::New(args) => cmd::new::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
