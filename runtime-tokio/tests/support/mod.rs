//! Shared test support for the runtime adapters' conformance suite.
//!
//! The [`Fixture`] (the embedded control plane and real tonic backends, all on 127.0.0.1 port 0)
//! runs on its own small tokio runtime, so any adapter's tests can use it whatever runtime the
//! client under test runs on: its methods are `async` and only await tokio `JoinHandle`s, which
//! work from any executor. An adapter plugs in by implementing [`TestRuntime`]; the cases in
//! [`cases`] are written against it.
#![allow(dead_code)]

pub mod cases;
pub mod greeter;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use greeter::greeter_server::{Greeter, GreeterServer};
use greeter::{HelloReply, HelloRequest};
use skiff_tokio::{
    ConfigEvent, ConfigSource, ControlPlaneOptions, ControlPlaneServer, RunningControlPlane,
};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// What an adapter provides to run the cases.
pub trait TestRuntime: Sized + Send + Sync + 'static {
    /// The adapter's channel type.
    type Channel: Clone + Send + Sync + 'static;

    /// A mesh client of the control plane at `xds` (`127.0.0.1:PORT`), tuned to reconnect
    /// quickly. Called from inside the adapter's runtime.
    fn mesh(xds: &str) -> Self;
    /// A channel of that mesh.
    fn channel(&self, target: &str) -> Self::Channel;
    /// `SayHello` through a tonic client over the channel.
    fn say_hello(
        channel: &Self::Channel,
        request: tonic::Request<HelloRequest>,
    ) -> impl Future<Output = Result<HelloReply, tonic::Status>> + Send;
    /// Sleeps on the adapter's timer.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
    /// Starts the adapter's xDS-enabled server (gRFC A36) on 127.0.0.1 port 0 in the
    /// background, serving `routes` with this mesh's configuration and pushing every serving
    /// mode to `modes`, until `stop` fires or is dropped. Returns the bound address.
    fn serve(
        &self,
        routes: tonic::service::Routes,
        modes: ModeLog,
        stop: oneshot::Receiver<()>,
    ) -> impl Future<Output = SocketAddr>;
}

/// The serving modes a server went through, in order.
pub type ModeLog = Arc<Mutex<Vec<skiff_tokio::ServingMode>>>;

/// A Greeter answering as `name`, as tonic routes (what a server serves).
pub fn greeter_routes(name: &str) -> tonic::service::Routes {
    tonic::service::Routes::new(GreeterServer::new(GreeterImpl {
        name: name.to_string(),
        ctl: Arc::default(),
    }))
}

/// How long any one case may take.
pub const CASE_LIMIT: Duration = Duration::from_secs(60);

/// Runs `f`, panicking if `limit` completes first.
pub async fn bounded<F: Future>(limit: impl Future<Output = ()>, f: F) -> F::Output {
    let mut f = pin!(f);
    let mut limit = pin!(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if limit.as_mut().poll(cx).is_ready() {
            panic!("the case did not finish within its time limit");
        }
        Poll::Pending
    })
    .await
}

/// Runs every future to completion concurrently (no runtime needed).
pub async fn join_all<T>(
    futs: Vec<std::pin::Pin<Box<dyn Future<Output = T> + Send + '_>>>,
) -> Vec<T> {
    let mut futs: Vec<_> = futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *o = Some(v);
                        *f = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("joined")).collect()
}

/// Logs to the test output (`RUST_LOG` to see more).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "skiff-conformance-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- backends -----------------------------------------------------------------------------

/// Knobs and counters of one backend.
#[derive(Debug, Default)]
pub struct BackendCtl {
    /// RPCs received.
    pub hits: AtomicU64,
    /// RPCs being handled.
    pub in_flight: AtomicU64,
    /// When non-zero, every RPC fails with this gRPC code.
    pub fail_with: AtomicI32,
    /// Delay before answering, in milliseconds.
    pub delay_ms: AtomicU64,
}

#[derive(Clone)]
struct GreeterImpl {
    name: String,
    ctl: Arc<BackendCtl>,
}

struct InFlight(Arc<BackendCtl>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::codegen::async_trait]
impl Greeter for GreeterImpl {
    async fn say_hello(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        self.ctl.hits.fetch_add(1, Ordering::SeqCst);
        self.ctl.in_flight.fetch_add(1, Ordering::SeqCst);
        let _g = InFlight(Arc::clone(&self.ctl));
        let delay = self.ctl.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let fail = self.ctl.fail_with.load(Ordering::SeqCst);
        if fail != 0 {
            return Err(tonic::Status::new(
                tonic::Code::from(fail),
                format!("backend {} is configured to fail", self.name),
            ));
        }
        Ok(tonic::Response::new(HelloReply {
            message: format!("hello {}", request.into_inner().name),
            backend: self.name.clone(),
        }))
    }

    type SayHelloStreamStream =
        tonic::codegen::tokio_stream::Iter<std::vec::IntoIter<Result<HelloReply, tonic::Status>>>;

    async fn say_hello_stream(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<Self::SayHelloStreamStream>, tonic::Status> {
        self.ctl.hits.fetch_add(1, Ordering::SeqCst);
        let r = request.into_inner();
        let replies: Vec<_> = (0..r.count)
            .map(|i| {
                Ok(HelloReply {
                    message: format!("hello {} #{i}", r.name),
                    backend: self.name.clone(),
                })
            })
            .collect();
        Ok(tonic::Response::new(tonic::codegen::tokio_stream::iter(
            replies,
        )))
    }

    async fn say_hello_client_stream(
        &self,
        request: tonic::Request<tonic::Streaming<HelloRequest>>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        self.ctl.hits.fetch_add(1, Ordering::SeqCst);
        let mut stream = request.into_inner();
        let mut names = Vec::new();
        while let Some(r) = stream.message().await? {
            names.push(r.name);
        }
        Ok(tonic::Response::new(HelloReply {
            message: format!("hello {}", names.join(", ")),
            backend: self.name.clone(),
        }))
    }
}

/// A real tonic Greeter server on 127.0.0.1.
pub struct Backend {
    /// Its name (it answers with it in `HelloReply.backend`).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its knobs and counters.
    pub ctl: Arc<BackendCtl>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Backend {
    /// RPCs received so far.
    pub fn hits(&self) -> u64 {
        self.ctl.hits.load(Ordering::SeqCst)
    }

    /// Makes every RPC fail with `code` (or succeed again with `None`).
    pub fn fail_with(&self, code: Option<tonic::Code>) {
        self.ctl
            .fail_with
            .store(code.map_or(0, |c| c as i32), Ordering::SeqCst);
    }

    /// Makes every RPC wait `d` before answering.
    pub fn delay(&self, d: Duration) {
        self.ctl.delay_ms.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// RPCs being handled now.
    pub fn in_flight(&self) -> u64 {
        self.ctl.in_flight.load(Ordering::SeqCst)
    }

    /// Graceful shutdown (tonic's: stop accepting, GOAWAY, let RPCs in flight finish); returns
    /// when the server has stopped.
    pub async fn shutdown(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        let task = self.task.lock().unwrap().take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// The `ServiceEntry` endpoint line for this backend.
    pub fn endpoint_yaml(&self, version: &str) -> String {
        format!(
            "  - {{address: 127.0.0.1, ports: {{grpc: {}}}, labels: {{version: {version}}}}}\n",
            self.addr.port()
        )
    }
}

// ---- the fixture --------------------------------------------------------------------------

/// The service every case talks to.
pub const HOST: &str = "greeter.test.svc.cluster.local";
/// Its xDS target by host.
pub const TARGET: &str = "xds:///greeter.test.svc.cluster.local:7000";
/// Its xDS target by interface name (DESIGN §7).
pub const INTERFACE_TARGET: &str = "xds:///helloworld.Greeter";

/// The mesh configuration: the greeter `ServiceEntry` with these endpoints
/// (`Backend::endpoint_yaml`), then `extra` documents (each starting with `---`).
pub fn mesh_yaml(endpoints: &[String], extra: &str) -> String {
    let mut eps = String::new();
    for e in endpoints {
        eps.push_str(e);
    }
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: greeter
  namespace: test
  annotations:
    skiff.dev/interfaces: helloworld.Greeter
spec:
  hosts: [{HOST}]
  ports: [{{number: 7000, name: grpc, protocol: GRPC}}]
  endpoints:
{eps}{extra}"#
    )
}

/// A `DestinationRule` with subsets v1 and v2 and an optional `connectionPool`.
pub fn destination_rule(http2_max_requests: Option<u32>) -> String {
    let pool = match http2_max_requests {
        Some(n) => format!("    connectionPool:\n      http:\n        http2MaxRequests: {n}\n"),
        None => String::new(),
    };
    format!(
        r#"---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: test}}
spec:
  host: {HOST}
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
{pool}  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"#
    )
}

/// A `VirtualService` for the greeter with these `http` routes (YAML, indented by two).
pub fn virtual_service(http: &str) -> String {
    format!(
        r#"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: test}}
spec:
  hosts: [{HOST}]
  http:
{http}"#
    )
}

/// The control plane and the backends, on a runtime of their own.
pub struct Fixture {
    rt: Option<Runtime>,
    dir: TempDir,
    config: PathBuf,
    cp: Mutex<Option<RunningControlPlane>>,
    cp_addr: Mutex<Option<SocketAddr>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Fixture {
    /// A fixture with no control plane and no backends yet.
    pub fn new() -> Fixture {
        init_logs();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fixture")
            .enable_all()
            .build()
            .expect("fixture runtime");
        let dir = TempDir::new("fixture");
        let config = dir.path().join("mesh.yaml");
        Fixture {
            rt: Some(rt),
            dir,
            config,
            cp: Mutex::new(None),
            cp_addr: Mutex::new(None),
        }
    }

    fn rt(&self) -> &Runtime {
        self.rt.as_ref().expect("fixture runtime")
    }

    /// Runs `f` on the fixture's runtime and waits for it (from any executor).
    pub async fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        self.rt().spawn(f).await.expect("fixture task")
    }

    /// Starts a Greeter backend named `name` on 127.0.0.1 port 0.
    pub async fn backend(&self, name: &str) -> Arc<Backend> {
        let ctl = Arc::new(BackendCtl::default());
        let svc = GreeterServer::new(GreeterImpl {
            name: name.to_string(),
            ctl: Arc::clone(&ctl),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (addr, task) = self
            .run(async move {
                let incoming = tonic::transport::server::TcpIncoming::bind(
                    "127.0.0.1:0".parse().expect("addr"),
                )
                .expect("bind backend")
                .with_nodelay(Some(true));
                let addr = incoming.local_addr().expect("local addr");
                let task = tokio::spawn(async move {
                    let _ = tonic::transport::Server::builder()
                        .serve_with_incoming_shutdown(svc, incoming, async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
                (addr, task)
            })
            .await;
        Arc::new(Backend {
            name: name.to_string(),
            addr,
            ctl,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        })
    }

    /// Writes the configuration file (the control plane picks changes up within ~50 ms).
    pub fn write_config(&self, yaml: &str) {
        // Write then rename, so the watcher never reads half a file.
        let tmp = self.dir.path().join("mesh.yaml.tmp");
        std::fs::write(&tmp, yaml).expect("write config");
        std::fs::rename(&tmp, &self.config).expect("rename config");
    }

    /// Writes the configuration and waits for the control plane's verdict on it.
    pub async fn reconfigure(&self, yaml: &str) -> ConfigEvent {
        let mut events = {
            let cp = self.cp.lock().unwrap();
            cp.as_ref()
                .expect("control plane running")
                .handle()
                .config_events()
        };
        self.write_config(yaml);
        self.run(async move {
            tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("no configuration event within 10 s")
                .expect("config events")
        })
        .await
    }

    /// Starts the control plane on `config` (writing it first when given), on its previous
    /// address if it ran before.
    pub async fn start_control_plane(&self, yaml: Option<&str>) {
        if let Some(y) = yaml {
            self.write_config(y);
        }
        let path = self.config.clone();
        let addr = self
            .cp_addr
            .lock()
            .unwrap()
            .unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr"));
        let running = self
            .run(async move {
                let options = ControlPlaneOptions {
                    poll_interval: Duration::from_millis(50),
                    ..ControlPlaneOptions::default()
                };
                // Rebinding the same port right after a shutdown can race the old socket's
                // close: retry briefly.
                let mut tries = 0;
                let server = loop {
                    match ControlPlaneServer::bind_with(
                        addr,
                        ConfigSource::file(path.clone()),
                        options.clone(),
                    )
                    .await
                    {
                        Ok(s) => break s,
                        Err(e) if tries < 50 => {
                            tries += 1;
                            tracing::debug!("binding the control plane: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("control plane: {e}"),
                    }
                };
                server.spawn()
            })
            .await;
        *self.cp_addr.lock().unwrap() = running.local_addr().tcp();
        *self.cp.lock().unwrap() = Some(running);
    }

    /// Stops the control plane (its streams end with UNAVAILABLE).
    pub async fn stop_control_plane(&self) {
        let cp = self.cp.lock().unwrap().take();
        if let Some(cp) = cp {
            self.run(cp.shutdown()).await;
        }
    }

    /// The control plane's address as a client target.
    pub fn xds_target(&self) -> String {
        self.cp_addr
            .lock()
            .unwrap()
            .expect("control plane started")
            .to_string()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}
