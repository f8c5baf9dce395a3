//! Interop with a real third-party gRPC stack: grpcio's own xDS client (`xds:///` target,
//! bootstrap from `GRPC_XDS_BOOTSTRAP`) routed by skiff's embedded control plane to grpcio
//! backends on loopback.
//!
//! The tests need a Python with grpcio: `SKIFF_PYTHON` names it (`.ci/run` creates a venv and
//! sets it). Outside CI they are skipped with a printed reason when it is missing; in CI
//! (`CI=true`) a missing grpcio fails them.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use skiff_tokio::{ConfigSource, ControlPlaneServer};

fn python() -> Option<PathBuf> {
    let found = std::env::var_os("SKIFF_PYTHON")
        .map(PathBuf::from)
        .filter(|p| {
            Command::new(p)
                .args(["-c", "import grpc"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide SKIFF_PYTHON with grpcio installed (see .ci/run)"
        );
        eprintln!("skipping grpcio interop: set SKIFF_PYTHON to a python with grpcio installed");
    }
    found
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/grpcio_echo.py")
}

/// A grpcio backend process; killed on drop.
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start(py: &PathBuf, name: &str) -> PyServer {
        let mut child = Command::new(py)
            .arg(script())
            .args(["server", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start grpcio server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read port");
        let port = line.trim().parse().expect("port");
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mesh_yaml(backends: &[(&str, u16)]) -> String {
    let mut eps = String::new();
    for (version, port) in backends {
        eps.push_str(&format!(
            "  - {{address: 127.0.0.1, ports: {{grpc: {port}}}, labels: {{version: {version}}}}}\n"
        ));
    }
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{{number: 7000, name: grpc}}]
  resolution: STATIC
  endpoints:
{eps}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo.default.svc.cluster.local
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo.default.svc.cluster.local]
  http:
  - route:
    - destination: {{host: echo.default.svc.cluster.local, subset: v1}}
      weight: 50
    - destination: {{host: echo.default.svc.cluster.local, subset: v2}}
      weight: 50
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_xds_client_is_routed_by_skiff_control_plane() {
    let Some(py) = python() else { return };
    let a = PyServer::start(&py, "v1");
    let b = PyServer::start(&py, "v2");
    let cp = ControlPlaneServer::bind(
        "127.0.0.1:0",
        ConfigSource::text("mesh.yaml", mesh_yaml(&[("v1", a.port), ("v2", b.port)])),
    )
    .await
    .expect("bind control plane");
    let addr = cp.local_addr().to_string();
    let running = cp.spawn();

    let dir = tempdir();
    let bootstrap = dir.join("bootstrap.json");
    std::fs::write(
        &bootstrap,
        format!(
            r#"{{"xds_servers":[{{"server_uri":"{addr}","channel_creds":[{{"type":"insecure"}}],"server_features":["xds_v3"]}}],
               "node":{{"id":"sidecar~127.0.0.1~py-client.default~default.svc.cluster.local","metadata":{{"GENERATOR":"grpc"}}}}}}"#
        ),
    )
    .unwrap();

    let py2 = py.clone();
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || {
            Command::new(py2)
                .arg(script())
                .args(["client", "xds:///echo.default.svc.cluster.local:7000", "40"])
                .env("GRPC_XDS_BOOTSTRAP", &bootstrap)
                .stderr(Stdio::inherit())
                .output()
                .expect("run grpcio client")
        }),
    )
    .await
    .expect("grpcio client finished in time")
    .unwrap();
    running.shutdown().await;
    let text = String::from_utf8_lossy(&out.stdout);
    let replies: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(replies.len(), 40, "{text}");
    let mut v1 = 0;
    let mut v2 = 0;
    for r in &replies {
        assert_eq!(r["ok"], true, "every call succeeds: {r}");
        let reply = r["reply"].as_str().unwrap();
        if reply.starts_with("v1:") {
            v1 += 1;
        } else if reply.starts_with("v2:") {
            v2 += 1;
        }
    }
    // grpcio honoured skiff's 50/50 weighted route: both subsets served calls.
    assert!(v1 >= 5 && v2 >= 5, "v1 {v1} v2 {v2}");
    drop((a, b));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::io::stdout().flush();
}

/// Raw-bytes codec: the grpcio peer speaks bytes in, bytes out (no generated code on either side).
#[derive(Clone, Copy, Default)]
struct BytesCodec;

struct BytesCoder;

impl tonic::codec::Encoder for BytesCoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for BytesCoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<bytes::Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl tonic::codec::Codec for BytesCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = BytesCoder;
    type Decoder = BytesCoder;
    fn encoder(&mut self) -> BytesCoder {
        BytesCoder
    }
    fn decoder(&mut self) -> BytesCoder {
        BytesCoder
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skiff_client_calls_grpcio_servers_through_the_mesh() {
    let Some(py) = python() else { return };
    let a = PyServer::start(&py, "v1");
    let b = PyServer::start(&py, "v2");
    let cp = ControlPlaneServer::bind(
        "127.0.0.1:0",
        ConfigSource::text("mesh.yaml", mesh_yaml(&[("v1", a.port), ("v2", b.port)])),
    )
    .await
    .expect("bind control plane");
    let addr = cp.local_addr().to_string();
    let running = cp.spawn();
    let mesh = skiff_tokio::Mesh::builder()
        .xds_server(skiff_tokio::XdsServerTarget::insecure(addr))
        .node_id("sidecar~127.0.0.1~skiff-client.default~default.svc.cluster.local")
        .build()
        .expect("mesh");
    let channel = mesh
        .channel("xds:///echo.default.svc.cluster.local:7000")
        .expect("channel");
    let mut grpc = tonic::client::Grpc::with_origin(
        channel,
        "http://echo.default.svc.cluster.local:7000"
            .parse()
            .unwrap(),
    );
    let mut seen = std::collections::BTreeMap::new();
    let calls = async {
        for i in 0..40 {
            grpc.ready().await.expect("ready");
            let reply = grpc
                .unary(
                    tonic::Request::new(bytes::Bytes::from(format!("hi-{i}"))),
                    http::uri::PathAndQuery::from_static("/echo.Echo/Say"),
                    BytesCodec,
                )
                .await
                .expect("call succeeds")
                .into_inner();
            let text = String::from_utf8(reply.to_vec()).unwrap();
            assert!(text.ends_with(&format!(":hi-{i}")), "{text}");
            *seen
                .entry(text.split(':').next().unwrap().to_string())
                .or_insert(0) += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), calls)
        .await
        .expect("calls finished in time");
    mesh.shutdown().await;
    running.shutdown().await;
    // skiff applied the 50/50 weighted route to grpcio backends.
    assert!(seen.get("v1").copied().unwrap_or(0) >= 5, "{seen:?}");
    assert!(seen.get("v2").copied().unwrap_or(0) >= 5, "{seen:?}");
    drop((a, b));
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "skiff-interop-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
