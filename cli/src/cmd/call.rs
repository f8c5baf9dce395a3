//! `skiff call`: grpcurl for the mesh. JSON in, JSON out, through skiff's client: `xds:///`
//! targets are routed and balanced by the mesh (control plane from `--xds-server`,
//! `--bootstrap` or `GRPC_XDS_BOOTSTRAP`), plain `host:port` targets are dialed directly.
//!
//! Messages are described by `.proto` files compiled at run time (protox) and converted with
//! prost-reflect's canonical protobuf JSON mapping. Each call reports its status, latency, the
//! endpoint that answered (skiff's [`ServedBy`] response extension), the response and the
//! trailers; `-n` calls end with a summary by status, by endpoint and latency percentiles.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use serde_json::{Value, json};
use skiff_tokio::{Mesh, ReportServedBy, ServedBy, XdsServerTarget};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::CliError;

/// How calls are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable lines.
    Text,
    /// One JSON document with every call and the summary.
    Json,
    /// One JSON object per call (and a last one with the summary when `-n` > 1).
    Jsonl,
}

/// `skiff call` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to call: `xds:///host:port` or `xds:///package.Service` (through the mesh), or a
    /// plain `host:port` / `dns:///host:port`.
    pub target: String,
    /// The method: `/package.Service/Method` (also `package.Service/Method` or
    /// `package.Service.Method`).
    pub method: String,
    /// The request message as protobuf JSON (`{}` when omitted); `@FILE` reads it from a file,
    /// `@-` from standard input (as grpcurl does).
    #[arg(short = 'd', long = "data", value_name = "JSON", default_value = "{}")]
    pub data: String,
    /// A `.proto` file describing the service (repeatable; imports are resolved with `-I`).
    #[arg(long = "proto", value_name = "FILE", required = true)]
    pub proto: Vec<PathBuf>,
    /// An import path for `--proto` (repeatable; the proto files' directories are added).
    #[arg(short = 'I', long = "import-path", value_name = "DIR")]
    pub import_path: Vec<PathBuf>,
    /// The control plane for `xds:///` targets (`host:port`, plaintext).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "bootstrap")]
    pub xds_server: Option<String>,
    /// A gRPC xDS bootstrap file for `xds:///` targets (default: GRPC_XDS_BOOTSTRAP).
    #[arg(long, value_name = "FILE")]
    pub bootstrap: Option<PathBuf>,
    /// Request metadata `name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Deadline of each call (e.g. `500ms`, `2s`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How many calls to make.
    #[arg(short = 'n', long = "count", default_value_t = 1)]
    pub count: usize,
    /// How many calls in flight at once.
    #[arg(short = 'c', long = "concurrency", default_value_t = 1)]
    pub concurrency: usize,
    /// Pause between the calls of each concurrent caller (e.g. `100ms`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `500ms`, `2s`, `1.5s`, `1m`, `250us`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 2s)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" => n * 60.0,
        other => return Err(format!("unknown duration unit {other:?} (ms, s, m)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The method to call, resolved in the compiled protos.
fn resolve_method(pool: &DescriptorPool, method: &str) -> Result<MethodDescriptor, CliError> {
    let m = method.trim_start_matches('/');
    let (service, name) = m
        .rsplit_once('/')
        .or_else(|| m.rsplit_once('.'))
        .ok_or_else(|| format!("method {method:?}: expected /package.Service/Method"))?;
    let svc = pool.get_service_by_name(service).ok_or_else(|| {
        let known: Vec<_> = pool.services().map(|s| s.full_name().to_string()).collect();
        format!("service {service:?} is not in the given protos (they define {known:?})")
    })?;
    let found = svc.methods().find(|x| x.name() == name).ok_or_else(|| {
        let known: Vec<_> = svc.methods().map(|x| x.name().to_string()).collect();
        format!("{service} has no method {name:?} (it has {known:?})")
    })?;
    if found.is_client_streaming() || found.is_server_streaming() {
        return Err(format!(
            "{}/{name} is a streaming method; skiff call makes unary calls",
            svc.full_name()
        )
        .into());
    }
    Ok(found)
}

/// A protobuf codec for messages known only at run time.
#[derive(Clone)]
struct DynamicCodec(MessageDescriptor);

struct DynamicEncoder;

struct DynamicDecoder(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.0.clone())
    }
}

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("encoding the request: {e}")))
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Self::Error> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("decoding the response: {e}")))
    }
}

/// One finished call.
struct CallResult {
    index: usize,
    code: tonic::Code,
    message: String,
    latency: Duration,
    endpoint: Option<String>,
    response: Option<Value>,
    trailers: BTreeMap<String, String>,
}

impl CallResult {
    fn to_json(&self) -> Value {
        json!({
            "call": self.index,
            "status": format!("{:?}", self.code),
            "code": self.code as i32,
            "message": self.message,
            "latency_ms": self.latency.as_secs_f64() * 1e3,
            "endpoint": self.endpoint,
            "response": self.response,
            "trailers": self.trailers,
        })
    }

    fn print_text(&self) {
        let endpoint = self.endpoint.as_deref().unwrap_or("-");
        let status = if self.message.is_empty() {
            format!("{:?}", self.code)
        } else {
            format!("{:?}: {}", self.code, self.message)
        };
        println!(
            "#{} {status}  {:.2} ms  endpoint {endpoint}",
            self.index,
            self.latency.as_secs_f64() * 1e3
        );
        if let Some(r) = &self.response {
            println!(
                "{}",
                serde_json::to_string_pretty(r).unwrap_or_else(|_| r.to_string())
            );
        }
        for (k, v) in &self.trailers {
            println!("  {k}: {v}");
        }
    }
}

fn metadata_json(m: &MetadataMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kv in m.iter() {
        if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
            let k = k.as_str();
            // Transport headers are not what the user asked about.
            if matches!(k, "content-type" | "grpc-status" | "grpc-message" | "date") {
                continue;
            }
            out.insert(k.to_string(), v.to_str().unwrap_or("<binary>").to_string());
        }
    }
    out
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn summary(results: &[CallResult]) -> Value {
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_endpoint: BTreeMap<String, usize> = BTreeMap::new();
    for r in results {
        *by_status.entry(format!("{:?}", r.code)).or_default() += 1;
        *by_endpoint
            .entry(r.endpoint.clone().unwrap_or_else(|| "-".into()))
            .or_default() += 1;
    }
    let mut lat: Vec<Duration> = results.iter().map(|r| r.latency).collect();
    lat.sort();
    json!({
        "calls": results.len(),
        "by_status": by_status,
        "by_endpoint": by_endpoint,
        "latency_ms": {
            "p50": percentile(&lat, 0.50),
            "p90": percentile(&lat, 0.90),
            "p99": percentile(&lat, 0.99),
            "max": lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        },
    })
}

fn build_mesh(args: &Args) -> Result<Mesh, CliError> {
    if let Some(xds) = &args.xds_server {
        return Ok(Mesh::builder()
            .xds_server(XdsServerTarget::insecure(xds))
            .node_id(format!("skiff-call~{}", std::process::id()))
            .build()?);
    }
    if let Some(path) = &args.bootstrap {
        let json = std::fs::read_to_string(path)
            .map_err(|e| format!("reading bootstrap {}: {e}", path.display()))?;
        return Ok(Mesh::from_bootstrap_json(&json)?);
    }
    if args.target.starts_with("xds:") {
        return Mesh::from_env().map_err(|e| {
            format!("{e} (an xds:/// target needs --xds-server, --bootstrap or GRPC_XDS_BOOTSTRAP)")
                .into()
        });
    }
    Ok(Mesh::builder().build()?)
}

/// Runs `skiff call`.
pub fn run(args: Args) -> Result<(), CliError> {
    if args.count == 0 || args.concurrency == 0 {
        return Err("-n and -c must be at least 1".into());
    }
    let mut includes = args.import_path.clone();
    for p in &args.proto {
        if let Some(dir) = p.parent() {
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir.to_path_buf()
            };
            if !includes.contains(&dir) {
                includes.push(dir);
            }
        }
    }
    let files: Vec<PathBuf> = args
        .proto
        .iter()
        .map(|p| {
            p.file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    let pool = protox::Compiler::new(&includes)
        .and_then(|mut c| {
            c.include_imports(true);
            c.open_files(&files)?;
            Ok(c.descriptor_pool())
        })
        .map_err(|e| format!("compiling {:?}: {e}", args.proto))?;
    let method = resolve_method(&pool, &args.method)?;
    let data = request_json(&args.data)?;
    let mut de = serde_json::Deserializer::from_str(&data);
    let request = DynamicMessage::deserialize(method.input(), &mut de).map_err(|e| {
        format!(
            "-d: not a valid {} in JSON: {e}",
            method.input().full_name()
        )
    })?;
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let path = http::uri::PathAndQuery::from_str(&path)?;
    let mut metadata = MetadataMap::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("-H {h:?}: expected 'name: value'"))?;
        let key = MetadataKey::from_bytes(k.trim().to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("-H {h:?}: invalid metadata name"))?;
        let value = MetadataValue::try_from(v.trim())
            .map_err(|_| format!("-H {h:?}: invalid metadata value"))?;
        metadata.append(key, value);
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let results = rt.block_on(async {
        let mesh = build_mesh(&args)?;
        let channel = mesh.channel(&args.target)?;
        let next = Arc::new(AtomicUsize::new(0));
        let codec = DynamicCodec(method.output());
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency.min(args.count) {
            let next = Arc::clone(&next);
            let channel = channel.clone();
            let codec = codec.clone();
            let path = path.clone();
            let request = request.clone();
            let metadata = metadata.clone();
            let (count, timeout, interval, output) =
                (args.count, args.timeout, args.interval, args.output);
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    let mut req = tonic::Request::new(request.clone());
                    *req.metadata_mut() = metadata.clone();
                    req.set_timeout(timeout);
                    // Which endpoint answered, for the report.
                    req.extensions_mut().insert(ReportServedBy);
                    let started = Instant::now();
                    let outcome = match grpc.ready().await {
                        Ok(()) => grpc.unary(req, path.clone(), codec.clone()).await,
                        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
                    };
                    let latency = started.elapsed();
                    let r = match outcome {
                        Ok(resp) => CallResult {
                            index: index + 1,
                            code: tonic::Code::Ok,
                            message: String::new(),
                            latency,
                            endpoint: resp.extensions().get::<ServedBy>().map(|s| s.0.to_string()),
                            trailers: metadata_json(resp.metadata()),
                            response: serde_json::to_value(resp.get_ref()).ok(),
                        },
                        Err(status) => CallResult {
                            index: index + 1,
                            code: status.code(),
                            message: status.message().to_string(),
                            latency,
                            endpoint: None,
                            trailers: metadata_json(status.metadata()),
                            response: None,
                        },
                    };
                    match output {
                        Output::Text => r.print_text(),
                        Output::Jsonl => println!("{}", r.to_json()),
                        Output::Json => {}
                    }
                    mine.push(r);
                    if let Some(d) = interval {
                        tokio::time::sleep(d).await;
                    }
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await?);
        }
        all.sort_by_key(|r| r.index);
        Ok::<_, CliError>(all)
    })?;

    let sum = summary(&results);
    match args.output {
        Output::Text if args.count > 1 => {
            println!(
                "\n{} calls; by status {}; by endpoint {}; latency ms p50 {:.2} p90 {:.2} p99 {:.2}",
                results.len(),
                sum["by_status"],
                sum["by_endpoint"],
                sum["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                sum["latency_ms"]["p90"].as_f64().unwrap_or(0.0),
                sum["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
            );
        }
        Output::Text => {}
        Output::Jsonl => {
            if args.count > 1 {
                println!("{}", json!({ "summary": sum }));
            }
        }
        Output::Json => {
            let doc = json!({
                "calls": results.iter().map(CallResult::to_json).collect::<Vec<_>>(),
                "summary": sum,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    let failed = results.iter().filter(|r| r.code != tonic::Code::Ok).count();
    if failed > 0 {
        return Err(format!("{failed} of {} calls failed", results.len()).into());
    }
    Ok(())
}

/// `-d`'s JSON: inline, `@FILE`, or `@-` (standard input).
fn request_json(data: &str) -> Result<String, String> {
    match data.strip_prefix('@') {
        None => Ok(data.to_string()),
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("-d @-: reading standard input: {e}")),
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("-d @{path}: {e}")),
    }
}
