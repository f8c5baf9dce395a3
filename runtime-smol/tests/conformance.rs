//! The runtime-adapter conformance suite on smol: the shared cases of skiff-tokio's
//! `tests/support/cases.rs`, unchanged, with skiff-smol's `Mesh` as the client. The fixture
//! (control plane, tonic backends) runs on its own tokio runtime in a background thread; the
//! client runs under `smol::block_on` and on smol's global executor, and every task the mesh
//! spawns checks on each poll that no tokio runtime is reachable from it.

#[path = "../../runtime-tokio/tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use skiff_adapter::runtime::{BoxFuture, BoxHyperIo, BoxIo, BoxSleep, Runtime};
use skiff_core::xds::backoff::BackoffConfig;
use skiff_smol::{Mesh, Smol, XdsServerTarget};
use support::greeter::greeter_client::GreeterClient;
use support::greeter::{HelloReply, HelloRequest};
use support::{TestRuntime, cases};

/// Polls of mesh tasks that found no tokio runtime, and polls that found one.
static CLEAN_POLLS: AtomicU64 = AtomicU64::new(0);
static TOKIO_POLLS: AtomicU64 = AtomicU64::new(0);

fn check_no_tokio() {
    if tokio::runtime::Handle::try_current().is_ok() {
        TOKIO_POLLS.fetch_add(1, Ordering::Relaxed);
    } else {
        CLEAN_POLLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// [`Smol`], with a tokio-runtime check around every poll of every task the mesh spawns (its
/// driver, ADS streams, subchannel connections, hyper's stream tasks).
#[derive(Debug)]
struct Checked;

impl Runtime for Checked {
    fn spawn_detached(&self, task: BoxFuture<()>) {
        let mut task = task;
        Smol.spawn_detached(Box::pin(std::future::poll_fn(move |cx| {
            check_no_tokio();
            task.as_mut().poll(cx)
        })));
    }
    fn sleep_until(&self, at: Instant) -> BoxSleep {
        Smol.sleep_until(at)
    }
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Smol.resolve(host, port)
    }
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxIo>> {
        Smol.connect_tcp(addr)
    }
    fn connect_unix(&self, path: &Path) -> BoxFuture<io::Result<BoxIo>> {
        Smol.connect_unix(path)
    }
    fn tls_connect(
        &self,
        config: Arc<rustls::ClientConfig>,
        name: rustls_pki_types::ServerName<'static>,
        io: BoxIo,
    ) -> BoxFuture<io::Result<BoxIo>> {
        Smol.tls_connect(config, name, io)
    }
    fn hyper_io(&self, io: BoxIo) -> BoxHyperIo {
        Smol.hyper_io(io)
    }
}

/// skiff-smol as the client under test.
struct SmolClient {
    mesh: Mesh,
}

impl TestRuntime for SmolClient {
    type Channel = skiff_smol::Channel;

    fn mesh(xds: &str) -> Self {
        let mesh = Mesh::builder()
            .xds_server(XdsServerTarget::insecure(xds))
            .node_id("sidecar~127.0.0.1~conformance.test~test.svc.cluster.local")
            .configure(|c| {
                let fast = BackoffConfig {
                    initial: Duration::from_millis(50),
                    max: Duration::from_millis(500),
                    ..BackoffConfig::default()
                };
                c.xds.backoff = fast;
                c.subchannel_backoff = fast;
            })
            .build_on(Arc::new(Checked))
            .expect("mesh");
        SmolClient { mesh }
    }

    fn channel(&self, target: &str) -> skiff_smol::Channel {
        self.mesh.channel(target).expect("channel")
    }

    async fn say_hello(
        channel: &skiff_smol::Channel,
        request: tonic::Request<HelloRequest>,
    ) -> Result<HelloReply, tonic::Status> {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "a tokio runtime is reachable from the smol client"
        );
        GreeterClient::new(channel.clone())
            .say_hello(request)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn sleep(d: Duration) {
        async_io::Timer::after(d).await;
    }

    async fn serve(
        &self,
        routes: tonic::service::Routes,
        modes: support::ModeLog,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> SocketAddr {
        let listener = async_net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mesh = self.mesh.clone();
        let mut server = Box::pin(async move {
            skiff_smol::Server::builder()
                .serving_mode(move |_, m| modes.lock().unwrap().push(m.clone()))
                .drain_grace(Duration::from_secs(1))
                .serve_with_shutdown(&mesh, listener, routes, async {
                    let _ = stop.await;
                })
                .await
                .expect("server");
        });
        // The server's own loop is checked for tokio on every poll too.
        smol::spawn(std::future::poll_fn(move |cx| {
            check_no_tokio();
            server.as_mut().poll(cx)
        }))
        .detach();
        addr
    }
}

/// Runs a case under `smol::block_on`, with no tokio runtime on this thread.
fn run(case: impl Future<Output = ()>) {
    support::init_logs();
    smol::block_on(async {
        assert!(tokio::runtime::Handle::try_current().is_err());
        case.await
    });
    assert_eq!(
        TOKIO_POLLS.load(Ordering::Relaxed),
        0,
        "a mesh task was polled where a tokio runtime is reachable"
    );
    assert!(
        CLEAN_POLLS.load(Ordering::Relaxed) > 0,
        "no mesh task ran on smol"
    );
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run(cases::$name::<SmolClient>());
        }
    )*};
}

conformance!(
    round_robin,
    weighted_split,
    header_routing,
    retry_on_unavailable,
    route_timeout,
    circuit_breaking,
    live_endpoint_change,
    control_plane_restart,
    bad_config_keeps_old,
    goaway_graceful_shutdown,
    body_ends_at_trailers,
    xds_server,
);

/// `Mesh::builder().build()` finds smol on its own (no runtime handed in) and serves RPCs.
#[test]
fn ambient_build() {
    run(async {
        let fx = support::Fixture::new();
        let a = fx.backend("a").await;
        fx.start_control_plane(Some(&support::mesh_yaml(&[a.endpoint_yaml("v1")], "")))
            .await;
        let mesh = Mesh::builder()
            .xds_server(XdsServerTarget::insecure(fx.xds_target()))
            .build()
            .expect("mesh");
        let channel = mesh.channel(support::TARGET).expect("channel");
        let limit = async_io::Timer::after(support::CASE_LIMIT);
        support::bounded(
            async {
                limit.await;
            },
            async {
                let reply = SmolClient::say_hello(
                    &channel,
                    tonic::Request::new(HelloRequest {
                        name: "smol".into(),
                        count: 0,
                    }),
                )
                .await
                .expect("call");
                assert_eq!(reply.backend, "a");
            },
        )
        .await;
        mesh.shutdown().await;
    });
}
