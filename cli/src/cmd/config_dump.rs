//! `skiff config-dump`: what a control plane (or any CSDS server, gRFC A40) says its clients
//! were sent, acknowledged and rejected.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prost::Message;
use skiff_core::grpc::codec::{FrameDecoder, encode_frame};
use skiff_core::pb::envoy::admin::v3::ClientResourceStatus;
use skiff_core::pb::envoy::service::status::v3::{ClientStatusRequest, ClientStatusResponse};
use skiff_core::xds::ResourceType;
use skiff_tokio::XdsServerTarget;
use skiff_tokio::connect::connect;

use super::CliError;

/// The CSDS unary method.
const FETCH: &str = "/envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus";

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table per client.
    Text,
    /// One JSON document.
    Json,
}

/// Arguments of `skiff config-dump`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CSDS server: a `skiff control-plane` address (`host:port`, `dns:///host:port`,
    /// `unix:///path`), or any server exposing `envoy.service.status.v3` CSDS.
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:15010")]
    pub target: String,

    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Format,

    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let response = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.timeout), fetch(&args.target))
            .await
            .map_err(|_| format!("no answer from {} within {} s", args.target, args.timeout))?
    })?;
    match args.output {
        Format::Text => print!("{}", render_text(&response)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&render_json(&response))?),
    }
    Ok(())
}

/// One `FetchClientStatus` call over HTTP/2.
async fn fetch(target: &str) -> Result<ClientStatusResponse, CliError> {
    let io = connect(&XdsServerTarget::insecure(target)).await?;
    let (client, conn) = h2::client::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await?;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{target}{FETCH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?;
    let (response, mut send) = client.send_request(request, false)?;
    let mut buf = BytesMut::new();
    encode_frame(&ClientStatusRequest::default(), &mut buf);
    send.send_data(buf.freeze(), true)?;
    let response = response.await?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("{target} answered HTTP {}", response.status()).into());
    }
    let headers_status = grpc_status(response.headers());
    let mut body = response.into_body();
    let mut decoder = FrameDecoder::new(256 * 1024 * 1024);
    let mut message: Option<Bytes> = None;
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        decoder.push(&chunk);
        while let Some(frame) = decoder.decode_next()? {
            message = Some(frame.data);
        }
    }
    let trailers = body.trailers().await?;
    let status = trailers.as_ref().and_then(grpc_status).or(headers_status);
    match status {
        Some((0, _)) | None if message.is_some() => {}
        Some((code, msg)) => {
            return Err(format!("{target} answered gRPC status {code}: {msg}").into());
        }
        None => return Err(format!("{target} sent no response").into()),
    }
    let bytes = message.ok_or("empty response")?;
    Ok(ClientStatusResponse::decode(bytes)?)
}

fn grpc_status(h: &http::HeaderMap) -> Option<(i32, String)> {
    let code = h.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let msg = h
        .get("grpc-message")
        .map(|m| skiff_core::grpc::status::decode_grpc_message(m.as_bytes()))
        .unwrap_or_default();
    Some((code, msg))
}

fn short_type(url: &str) -> String {
    ResourceType::from_type_url(url)
        .map(|t| t.short_name().to_string())
        .unwrap_or_else(|| url.rsplit('.').next().unwrap_or(url).to_string())
}

fn status_name(s: i32) -> &'static str {
    ClientResourceStatus::try_from(s)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN")
}

/// The text table: one block per client.
pub fn render_text(r: &ClientStatusResponse) -> String {
    let mut out = String::new();
    if r.config.is_empty() {
        out.push_str("no clients connected\n");
    }
    for c in &r.config {
        let node = c
            .node
            .as_ref()
            .map(|n| n.id.as_str())
            .unwrap_or("(no node)");
        out.push_str(&format!("client {node}  [{}]\n", c.client_scope));
        let width = c
            .generic_xds_configs
            .iter()
            .map(|g| g.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "  {:<4} {:<width$} {:<16} {}\n",
            "TYPE", "NAME", "VERSION", "STATUS"
        ));
        for g in &c.generic_xds_configs {
            let mut line = format!(
                "  {:<4} {:<width$} {:<16} {}",
                short_type(&g.type_url),
                g.name,
                g.version_info,
                status_name(g.client_status)
            );
            if let Some(e) = &g.error_state {
                line.push_str(&format!("  ({}: {})", e.version_info, e.details));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// The JSON form.
pub fn render_json(r: &ClientStatusResponse) -> serde_json::Value {
    serde_json::Value::Array(
        r.config
            .iter()
            .map(|c| {
                serde_json::json!({
                    "node": c.node.as_ref().map(|n| n.id.clone()),
                    "scope": c.client_scope,
                    "resources": c.generic_xds_configs.iter().map(|g| serde_json::json!({
                        "type": short_type(&g.type_url),
                        "type_url": g.type_url,
                        "name": g.name,
                        "version": g.version_info,
                        "status": status_name(g.client_status),
                        "error": g.error_state.as_ref().map(|e| serde_json::json!({
                            "version": e.version_info, "details": e.details })),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
