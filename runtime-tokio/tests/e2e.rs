//! End to end on loopback: the real `XdsClient`, driven by skiff-tokio over real HTTP/2, against
//! the real embedded control plane. Every test is bounded by a timeout and stops what it starts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use prost::Message;
use skiff_core::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use skiff_core::rng::Seed;
use skiff_core::xds::backoff::BackoffConfig;
use skiff_core::xds::{Protocol, ResourceStatus, ResourceType, XdsClient, XdsClientConfig};
use skiff_tokio::{
    ConfigEvent, ConfigSource, ControlPlaneOptions, ControlPlaneServer, DriverHandle,
    DriverOptions, ServerTls, TlsFiles, XdsServerTarget, spawn_xds_client,
};

const LISTENER: &str = "echo.default.svc.cluster.local:7000";
const V1: &str = "outbound|7000|v1|echo.default.svc.cluster.local";
const V2: &str = "outbound|7000|v2|echo.default.svc.cluster.local";

/// A ServiceEntry with two endpoints, a VirtualService (header match + weighted split) and a
/// DestinationRule with two subsets. `extra` adds endpoints of version v1.
fn mesh(extra_v1: &[&str], v1_weight: u32) -> String {
    let mut endpoints = String::from(
        "  - {address: 10.0.0.1, labels: {version: v1}}\n  - {address: 10.0.0.2, labels: {version: v2}}\n",
    );
    for a in extra_v1 {
        endpoints.push_str(&format!("  - {{address: {a}, labels: {{version: v1}}}}\n"));
    }
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{{number: 7000, name: grpc}}]
  endpoints:
{endpoints}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo]
  http:
  - match:
    - headers:
        x-canary: {{exact: "1"}}
    route:
    - destination: {{host: echo, subset: v2}}
  - route:
    - destination: {{host: echo, subset: v1}}
      weight: {v1_weight}
    - destination: {{host: echo, subset: v2}}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"#
    )
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "skiff-tokio-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client(target: XdsServerTarget, protocol: Protocol) -> DriverHandle<XdsClient> {
    let node = skiff_core::pb::envoy::config::core::v3::Node {
        id: "sidecar~127.0.0.1~app-1.default~default.svc.cluster.local".into(),
        ..Default::default()
    };
    let mut config = XdsClientConfig::new(node);
    config.protocol = protocol;
    // Reconnect quickly: these tests restart control planes.
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(500),
        ..BackoffConfig::default()
    };
    spawn_xds_client(&target, config, Seed(7), DriverOptions::default()).unwrap()
}

/// Waits until every type has at least one resource and every resource is ACKed.
async fn all_acked(c: &DriverHandle<XdsClient>) {
    c.wait_for(|x: &XdsClient| {
        let dump = x.config_dump();
        let complete = ResourceType::ALL
            .iter()
            .all(|t| dump.iter().any(|e| e.ty == *t))
            && dump.iter().all(|e| e.status == ResourceStatus::Acked);
        complete.then_some(())
    })
    .await
    .unwrap();
}

/// The endpoint addresses of a cluster's assignment as the client holds it.
fn endpoints_of(x: &XdsClient, cluster: &str) -> Vec<String> {
    let Some(e) = x.entry(ResourceType::ClusterLoadAssignment, cluster) else {
        return Vec::new();
    };
    let Some(raw) = &e.raw else {
        return Vec::new();
    };
    let cla = ClusterLoadAssignment::decode(raw.value.as_slice()).unwrap();
    let mut out: Vec<String> = cla
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|lb| match &lb.host_identifier {
            Some(
                skiff_core::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier::Endpoint(
                    ep,
                ),
            ) => ep.address.as_ref(),
            _ => None,
        })
        .filter_map(|a| match &a.address {
            Some(skiff_core::pb::envoy::config::core::v3::address::Address::SocketAddress(s)) => {
                Some(s.address.clone())
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

async fn wait_endpoints(c: &DriverHandle<XdsClient>, cluster: &'static str, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    c.wait_for(move |x: &XdsClient| (endpoints_of(x, cluster) == want).then_some(()))
        .await
        .unwrap();
}

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test did not finish in time")
}

async fn full_cascade(protocol: Protocol) {
    init_logs();
    let server = ControlPlaneServer::bind(
        "127.0.0.1:0",
        ConfigSource::text("mesh.yaml", mesh(&[], 90)),
    )
    .await
    .unwrap();
    let target = XdsServerTarget::insecure(server.local_addr().to_string());
    let cp = server.spawn();
    let c = client(target, protocol);
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        all_acked(&c).await;
        let dump = c.config_dump().await.unwrap();
        let names = |t: ResourceType| -> Vec<String> {
            dump.iter()
                .filter(|e| e.ty == t)
                .map(|e| e.name.clone())
                .collect()
        };
        assert_eq!(names(ResourceType::Listener), [LISTENER]);
        assert_eq!(
            names(ResourceType::RouteConfiguration),
            ["outbound|7000||echo.default.svc.cluster.local"]
        );
        assert_eq!(names(ResourceType::Cluster), [V1, V2]);
        assert_eq!(names(ResourceType::ClusterLoadAssignment), [V1, V2]);
        let x = c.read(|x: &XdsClient| (endpoints_of(x, V1), endpoints_of(x, V2)));
        assert_eq!(
            x.await.unwrap(),
            (vec!["10.0.0.1".to_string()], vec!["10.0.0.2".to_string()])
        );
        // The server sees ACKs (the last ones may still be in flight) for every type, on one
        // stream, and no NACK.
        let dump = loop {
            let dump = cp.handle().config_dump().ads;
            let acked = dump.streams.len() == 1
                && dump.streams[0].types.len() == 4
                && dump.streams[0].types.iter().all(|t| t.acked.is_some());
            if acked {
                break dump;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        for t in &dump.streams[0].types {
            assert!(t.nacked.is_none(), "{} nacked", t.type_url);
        }
    })
    .await;
    c.shutdown().await;
    bounded(cp.shutdown()).await;
}

/// (a) SotW: Listener → Route → Clusters → EDS, all ACKed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_cascade_over_real_h2() {
    full_cascade(Protocol::StateOfTheWorld).await;
}

/// (b) The same over Delta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_cascade_over_real_h2() {
    full_cascade(Protocol::Delta).await;
}

/// (c) Editing the file pushes new endpoints; an invalid edit is rejected with its line and the
/// previous configuration keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_edits_reach_the_client() {
    init_logs();
    let dir = TempDir::new("edit");
    let file = dir.path().join("mesh.yaml");
    std::fs::write(&file, mesh(&[], 90)).unwrap();
    let options = ControlPlaneOptions {
        poll_interval: Duration::from_millis(50),
        ..ControlPlaneOptions::default()
    };
    let server = ControlPlaneServer::bind_with("127.0.0.1:0", ConfigSource::file(&file), options)
        .await
        .unwrap();
    let target = XdsServerTarget::insecure(server.local_addr().to_string());
    let mut events = server.config_events();
    let cp = server.spawn();
    let c = client(target, Protocol::StateOfTheWorld);
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        all_acked(&c).await;
        wait_endpoints(&c, V1, &["10.0.0.1"]).await;

        // A valid edit: one more v1 endpoint.
        std::fs::write(&file, mesh(&["10.0.0.3"], 90)).unwrap();
        match events.recv().await.unwrap() {
            ConfigEvent::Applied { .. } => {}
            other => panic!("expected Applied, got {other}"),
        }
        wait_endpoints(&c, V1, &["10.0.0.1", "10.0.0.3"]).await;

        // An invalid edit: weights 85 + 10 != 100, and one more endpoint that must not appear.
        std::fs::write(&file, mesh(&["10.0.0.3", "10.0.0.4"], 85)).unwrap();
        let errors = match events.recv().await.unwrap() {
            ConfigEvent::Rejected { errors, .. } => errors,
            other => panic!("expected Rejected, got {other}"),
        };
        // One error, on the line of the offending `- route:` (line 24 once two endpoints were
        // added), naming the file and the document.
        let text = errors.to_string();
        assert_eq!(errors.0.len(), 1, "{text}");
        assert_eq!(errors.0[0].line, 24, "{text}");
        assert!(
            text.contains("mesh.yaml:24: VirtualService echo:"),
            "{text}"
        );
        assert!(text.contains("weight"), "{text}");
        assert_eq!(cp.handle().last_rejection(), Some(errors.clone()));
        // Still served: the client keeps the previous endpoints, everything ACKed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = c.read(|x: &XdsClient| endpoints_of(x, V1)).await.unwrap();
        assert_eq!(now, ["10.0.0.1", "10.0.0.3"]);
        all_acked(&c).await;

        // Fixing the file applies again.
        std::fs::write(&file, mesh(&["10.0.0.5"], 90)).unwrap();
        match events.recv().await.unwrap() {
            ConfigEvent::Applied { .. } => {}
            other => panic!("expected Applied, got {other}"),
        }
        wait_endpoints(&c, V1, &["10.0.0.1", "10.0.0.5"]).await;
    })
    .await;
    c.shutdown().await;
    bounded(cp.shutdown()).await;
}

/// (d) The control plane stops and comes back on the same port: the client keeps serving its
/// cache meanwhile, reconnects, and picks up the restarted plane's configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_control_plane_restart() {
    init_logs();
    let server = ControlPlaneServer::bind(
        "127.0.0.1:0",
        ConfigSource::text("mesh.yaml", mesh(&[], 90)),
    )
    .await
    .unwrap();
    let addr = server.local_addr().tcp().unwrap();
    let cp = server.spawn();
    let c = client(
        XdsServerTarget::insecure(addr.to_string()),
        Protocol::StateOfTheWorld,
    );
    let mut status = c.status();
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        all_acked(&c).await;
        assert_eq!(status.borrow().streams_opened, 1);

        cp.shutdown().await;
        // The stream ends (UNAVAILABLE trailers from the shutdown)...
        let st = status.wait_for(|s| !s.open).await.unwrap().clone();
        let reason = st.last_close.unwrap_or_default();
        assert!(reason.contains("grpc-status 14 (UNAVAILABLE)"), "{reason}");
        // ...and while the plane is down (the client retries and fails), the cache serves.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let still = c
            .read(|x: &XdsClient| {
                (
                    x.resource(ResourceType::Listener, LISTENER).is_some(),
                    endpoints_of(x, V1),
                    x.config_dump()
                        .iter()
                        .all(|e| e.status == ResourceStatus::Acked),
                )
            })
            .await
            .unwrap();
        assert_eq!(still, (true, vec!["10.0.0.1".to_string()], true));

        // Back on the same port with a new endpoint.
        let server = loop {
            match ControlPlaneServer::bind(
                addr,
                ConfigSource::text("mesh.yaml", mesh(&["10.0.0.9"], 90)),
            )
            .await
            {
                Ok(s) => break s,
                Err(e) => {
                    eprintln!("rebinding {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let cp = server.spawn();
        wait_endpoints(&c, V1, &["10.0.0.1", "10.0.0.9"]).await;
        all_acked(&c).await;
        assert!(status.borrow().streams_opened >= 2);
        c.shutdown().await;
        cp.shutdown().await;
    })
    .await;
}

/// (e) A unix socket target (istio-agent's `unix:///etc/istio/proxy/XDS` shape).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_target() {
    init_logs();
    let dir = TempDir::new("unix");
    let sock = dir.path().join("XDS");
    let server = ControlPlaneServer::bind_unix(
        &sock,
        ConfigSource::text("mesh.yaml", mesh(&[], 90)),
        ControlPlaneOptions::default(),
    )
    .await
    .unwrap();
    let target = server.local_addr().to_string();
    assert_eq!(target, format!("unix://{}", sock.display()));
    assert!(target.starts_with("unix:///"));
    let cp = server.spawn();
    let c = client(XdsServerTarget::insecure(target), Protocol::Delta);
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        all_acked(&c).await;
    })
    .await;
    c.shutdown().await;
    bounded(cp.shutdown()).await;
    assert!(!sock.exists(), "the socket file is removed on shutdown");
}

/// TLS with client certificates (mTLS) both ways, from files (gRFC A65 channel creds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_target() {
    init_logs();
    let dir = TempDir::new("tls");
    let files = write_pki(dir.path());
    let options = ControlPlaneOptions {
        tls: Some(ServerTls {
            cert: files.server_cert.clone(),
            key: files.server_key.clone(),
            client_ca: Some(files.ca.clone()),
        }),
        ..ControlPlaneOptions::default()
    };
    let server = ControlPlaneServer::bind_with(
        "127.0.0.1:0",
        ConfigSource::text("mesh.yaml", mesh(&[], 90)),
        options,
    )
    .await
    .unwrap();
    let port = server.local_addr().tcp().unwrap().port();
    let cp = server.spawn();
    // `localhost` is in the server certificate's SANs.
    let target = XdsServerTarget::tls(
        format!("dns:///localhost:{port}"),
        TlsFiles {
            ca: Some(files.ca.clone()),
            cert: Some(files.client_cert.clone()),
            key: Some(files.client_key.clone()),
        },
    );
    let c = client(target, Protocol::StateOfTheWorld);
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        all_acked(&c).await;
    })
    .await;
    c.shutdown().await;

    // Without a client certificate the server refuses the handshake: the client never opens.
    let anonymous = XdsServerTarget::tls(
        format!("localhost:{port}"),
        TlsFiles {
            ca: Some(files.ca.clone()),
            ..TlsFiles::default()
        },
    );
    let c = client(anonymous, Protocol::StateOfTheWorld);
    let mut status = c.status();
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        let st = status
            .wait_for(|s| s.last_close.is_some())
            .await
            .unwrap()
            .clone();
        let resource = c.resource(ResourceType::Listener, LISTENER).await.unwrap();
        assert!(resource.is_none(), "{st:?}");
        let reason = st.last_close.unwrap_or_default();
        assert!(
            reason.contains("Certificate") || reason.contains("TLS"),
            "{reason}"
        );
    })
    .await;
    c.shutdown().await;
    bounded(cp.shutdown()).await;
}

struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn write_pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let mut p = CertificateParams::new(sans).unwrap();
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(
        vec!["app.default".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
    }
}

/// The client's request headers, and a trailers-only error status from a server that is not
/// skiff's, reported as the close reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_headers_and_trailers_only_status() {
    init_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut conn = h2::server::handshake(sock).await.unwrap();
        let (request, mut respond) = conn.accept().await.unwrap().unwrap();
        let _ = seen_tx.send((
            request.method().clone(),
            request.uri().clone(),
            request.headers().clone(),
        ));
        let mut response = http::Response::new(());
        let h = response.headers_mut();
        h.insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", http::HeaderValue::from_static("7"));
        h.insert("grpc-message", http::HeaderValue::from_static("not%20you"));
        respond.send_response(response, true).unwrap();
        while conn.accept().await.is_some() {}
    });
    let c = client(
        XdsServerTarget::insecure(format!("dns:///{addr}")),
        Protocol::StateOfTheWorld,
    );
    let mut status = c.status();
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        let (method, uri, headers) = seen.await.unwrap();
        assert_eq!(method, http::Method::POST);
        assert_eq!(uri.path(), Protocol::StateOfTheWorld.method());
        assert_eq!(uri.authority().unwrap().as_str(), addr.to_string());
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["te"], "trailers");
        assert_eq!(
            headers["user-agent"],
            concat!("skiff/", env!("CARGO_PKG_VERSION"))
        );
        let st = status
            .wait_for(|s| s.last_close.is_some())
            .await
            .unwrap()
            .clone();
        assert_eq!(
            st.last_close.as_deref(),
            Some("grpc-status 7 (PERMISSION_DENIED): not you")
        );
    })
    .await;
    c.shutdown().await;
    server.abort();
}

/// A large EDS response through a small HTTP/2 window: the server waits for window updates and
/// the client releases capacity as the driver consumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_response_respects_flow_control() {
    init_logs();
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: echo, namespace: default}\nspec:\n  hosts: [echo.default.svc.cluster.local]\n  ports: [{number: 7000, name: grpc}]\n  endpoints:\n",
    );
    let mut want = Vec::new();
    // 600 endpoints (~20 KB of EDS): the core's config parser is quadratic in the endpoints of
    // one document today, so a larger mesh would make this slow in debug builds.
    for x in 0..3 {
        for y in 1..=200 {
            yaml.push_str(&format!("  - {{address: 10.1.{x}.{y}}}\n"));
            want.push(format!("10.1.{x}.{y}"));
        }
    }
    want.sort();
    let server = ControlPlaneServer::bind("127.0.0.1:0", ConfigSource::text("big.yaml", yaml))
        .await
        .unwrap();
    let target = XdsServerTarget::insecure(server.local_addr().to_string());
    let cp = server.spawn();
    let node = skiff_core::pb::envoy::config::core::v3::Node {
        id: "big".into(),
        ..Default::default()
    };
    let options = DriverOptions {
        stream_window: 2 * 1024,
        ..DriverOptions::default()
    };
    let c = spawn_xds_client(&target, XdsClientConfig::new(node), Seed(1), options).unwrap();
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        all_acked(&c).await;
        let cluster = "outbound|7000||echo.default.svc.cluster.local";
        let (got, size) = c
            .read(move |x: &XdsClient| {
                let raw = x
                    .entry(ResourceType::ClusterLoadAssignment, cluster)
                    .and_then(|e| e.raw.as_ref())
                    .map_or(0, |r| r.value.len());
                (endpoints_of(x, cluster), raw)
            })
            .await
            .unwrap();
        assert!(
            size > 4 * 2 * 1024,
            "only {size} bytes: not a flow-control test"
        );
        assert_eq!(got, want);
    })
    .await;
    c.shutdown().await;
    bounded(cp.shutdown()).await;
}

/// What a raw HTTP/2 client sees: (HTTP status, headers, trailers).
async fn raw_call(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: bytes::Bytes,
) -> (http::StatusCode, http::HeaderMap, Option<http::HeaderMap>) {
    let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(sock).await.unwrap();
    let conn = tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut stream) = send.send_request(request, false).unwrap();
    // The server may answer (and end the stream) before the body goes out.
    let _ = stream.send_data(body, true);
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    while let Some(d) = body.data().await {
        let d = d.unwrap();
        let _ = body.flow_control().release_capacity(d.len());
    }
    let trailers = body.trailers().await.unwrap();
    conn.abort();
    (parts.status, parts.headers, trailers)
}

/// Unknown methods get UNIMPLEMENTED, non-gRPC requests 415, a half-closed ADS stream OK, and a
/// garbage message INVALID_ARGUMENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_statuses() {
    init_logs();
    let server = ControlPlaneServer::bind(
        "127.0.0.1:0",
        ConfigSource::text("mesh.yaml", mesh(&[], 90)),
    )
    .await
    .unwrap();
    let addr = server.local_addr().tcp().unwrap();
    let cp = server.spawn();
    bounded(async {
        let (status, headers, _) = raw_call(
            addr,
            "/grpc.health.v1.Health/Check",
            "application/grpc",
            bytes::Bytes::new(),
        )
        .await;
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(headers["grpc-status"], "12");

        let (status, _, _) = raw_call(
            addr,
            Protocol::StateOfTheWorld.method(),
            "application/json",
            bytes::Bytes::new(),
        )
        .await;
        assert_eq!(status, http::StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // One well-formed LDS request, then half-close: a response, then OK.
        let request = skiff_core::pb::envoy::service::discovery::v3::DiscoveryRequest {
            type_url: ResourceType::Listener.type_url().into(),
            resource_names: vec![LISTENER.into()],
            ..Default::default()
        };
        let mut buf = bytes::BytesMut::new();
        skiff_core::grpc::codec::encode_frame(&request, &mut buf);
        let (status, _, trailers) = raw_call(
            addr,
            Protocol::StateOfTheWorld.method(),
            "application/grpc",
            buf.freeze(),
        )
        .await;
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(trailers.unwrap()["grpc-status"], "0");

        // Garbage where a DiscoveryRequest should be.
        let (_, _, trailers) = raw_call(
            addr,
            Protocol::Delta.method(),
            "application/grpc",
            bytes::Bytes::from_static(&[0, 0, 0, 0, 3, 0xff, 0xff, 0xff]),
        )
        .await;
        let trailers = trailers.unwrap();
        assert_eq!(trailers["grpc-status"], "3");
        assert!(
            trailers["grpc-message"]
                .to_str()
                .unwrap()
                .contains("undecodable")
        );
        // Every stream is forgotten once it ended (the server may still be finishing up).
        while cp.handle().stream_count() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(cp.handle().config_dump().ads.streams.is_empty());
    })
    .await;
    bounded(cp.shutdown()).await;
}

/// The driver's timer: a server that opens the stream but never answers lets the client's
/// does-not-exist timer (gRFC A57) fire through `poll_timeout` / `handle_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn does_not_exist_timer_fires() {
    init_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut conn = h2::server::handshake(sock).await.unwrap();
        let mut held = Vec::new();
        while let Some(Ok((request, mut respond))) = conn.accept().await {
            let mut response = http::Response::new(());
            response.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/grpc"),
            );
            let send = respond.send_response(response, false).unwrap();
            // Keep both halves open, say nothing.
            held.push((request, send));
        }
    });
    let node = skiff_core::pb::envoy::config::core::v3::Node {
        id: "silent".into(),
        ..Default::default()
    };
    let mut config = XdsClientConfig::new(node);
    config.does_not_exist_timeout = Duration::from_millis(200);
    let c = spawn_xds_client(
        &XdsServerTarget::insecure(addr.to_string()),
        config,
        Seed(3),
        DriverOptions::default(),
    )
    .unwrap();
    let mut events = c.subscribe();
    bounded(async {
        c.watch(ResourceType::Listener, LISTENER).await.unwrap();
        // Nothing else happens first: no response, no reconnect.
        match events.recv().await.unwrap() {
            skiff_core::xds::XdsEvent::DoesNotExist { ty, name } => {
                assert_eq!((ty, name.as_str()), (ResourceType::Listener, LISTENER));
            }
            other => panic!("unexpected {other:?}"),
        }
        let status = c
            .read(|x: &XdsClient| x.entry(ResourceType::Listener, LISTENER).map(|e| e.status))
            .await
            .unwrap();
        assert_eq!(status, Some(ResourceStatus::DoesNotExist));
        // The stream is still the first one: the timer is not a reconnect.
        assert_eq!(c.status().borrow().streams_opened, 1);
        assert!(c.status().borrow().open);
    })
    .await;
    c.shutdown().await;
    server.abort();
}
