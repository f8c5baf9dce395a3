//! `skiff bootstrap`: write a gRPC xDS bootstrap file.

use std::path::PathBuf;

use serde_json::json;

use super::CliError;

/// Arguments of `skiff bootstrap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The control plane's address (`host:port`, `dns:///host:port`, `unix:///path`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15010")]
    pub xds_server: String,

    /// The node id (istio's shape: `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`).
    #[arg(
        long,
        value_name = "ID",
        default_value = "sidecar~127.0.0.1~skiff.default~default.svc.cluster.local"
    )]
    pub node_id: String,

    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The bootstrap document.
pub fn bootstrap_json(xds_server: &str, node_id: &str) -> serde_json::Value {
    json!({
        "xds_servers": [{
            "server_uri": xds_server,
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": node_id,
            "metadata": {"GENERATOR": "grpc"},
        },
        "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
    })
}

pub fn run(args: Args) -> Result<(), CliError> {
    let doc = bootstrap_json(&args.xds_server, &args.node_id);
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
