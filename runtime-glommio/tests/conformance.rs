//! The runtime-adapter conformance suite on glommio: the shared cases of skiff-tokio's
//! `tests/support/cases.rs`, unchanged, with skiff-glommio as the client: an xDS shard and a
//! data plane fed by it, on a glommio executor (io_uring subchannel sockets). Plus the
//! thread-per-core layout itself: several pinned executors, one ADS stream.
//!
//! glommio needs io_uring and `ulimit -l` ≥ 512 KiB. Outside CI, a machine without them skips
//! these tests with the reason printed; in CI (`CI` set) they fail instead.
#![cfg(target_os = "linux")]

#[path = "../../runtime-tokio/tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use skiff_core::xds::backoff::BackoffConfig;
use skiff_glommio::{Executors, Mesh, MeshBuilder, XdsServerTarget, XdsShard};
use support::greeter::greeter_client::GreeterClient;
use support::greeter::{HelloReply, HelloRequest};
use support::{CASE_LIMIT, Fixture, TARGET, TestRuntime, bounded, cases, mesh_yaml};

fn fast(xds: &str) -> MeshBuilder {
    Mesh::builder()
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
}

/// skiff-glommio as the client under test: a shard and one data plane on this executor.
struct GlommioClient {
    mesh: Mesh,
    _shard: XdsShard,
}

impl TestRuntime for GlommioClient {
    type Channel = skiff_glommio::Channel;

    fn mesh(xds: &str) -> Self {
        let core = skiff_glommio::Core::on_this_executor(|| fast(xds)).expect("mesh");
        GlommioClient {
            mesh: core.mesh,
            _shard: core.shard,
        }
    }

    fn channel(&self, target: &str) -> skiff_glommio::Channel {
        self.mesh.channel(target).expect("channel")
    }

    async fn say_hello(
        channel: &skiff_glommio::Channel,
        request: tonic::Request<HelloRequest>,
    ) -> Result<HelloReply, tonic::Status> {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "a tokio runtime is reachable from the glommio client"
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
    ) -> std::net::SocketAddr {
        let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // A data plane fed by the shard: the server reads its Listener from the shard.
        let mesh = self.mesh.clone();
        glommio::spawn_local(async move {
            skiff_glommio::Server::builder()
                .serving_mode(move |_, m| modes.lock().unwrap().push(m.clone()))
                .drain_grace(Duration::from_secs(1))
                .serve_with_shutdown(&mesh, listener, routes, async {
                    let _ = stop.await;
                })
                .await
                .expect("server");
        })
        .detach();
        addr
    }
}

/// Whether glommio can run here: `false` (with the reason printed) outside CI, a panic in CI.
fn environment_ok() -> bool {
    match skiff_glommio::check_environment() {
        Ok(()) => true,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping the glommio conformance tests: {e}");
            false
        }
        Err(e) => panic!("glommio cannot run in CI: {e}"),
    }
}

/// Runs a case on a fresh glommio executor.
fn run<F, G>(case: G)
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    if !environment_ok() {
        return;
    }
    support::init_logs();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("conformance")
        .spawn(case)
        .expect("executor")
        .join()
        .expect("case");
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run(|| cases::$name::<GlommioClient>());
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

/// Thread-per-core: two executors, each calling through its own data plane; one shard, one
/// ADS stream for both.
#[test]
fn per_core_data_planes_share_one_ads_stream() {
    if !environment_ok() {
        return;
    }
    support::init_logs();
    let fx = Arc::new(Fixture::new());
    let setup = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _backend = setup.block_on(async {
        let a = fx.backend("a").await;
        fx.start_control_plane(Some(&mesh_yaml(&[a.endpoint_yaml("v1")], "")))
            .await;
        a
    });
    let xds = fx.xds_target();
    let executors =
        Executors::new(2.min(std::thread::available_parallelism().map_or(1, usize::from)));
    let results = skiff_glommio::run_per_core(
        executors,
        move || fast(&xds),
        |core| async move {
            let channel = core.mesh.channel(TARGET).expect("channel");
            let limit = async {
                async_io::Timer::after(CASE_LIMIT).await;
            };
            bounded(limit, async move {
                let mut answered = 0;
                for i in 0..20 {
                    let mut request = tonic::Request::new(HelloRequest {
                        name: format!("core {} call {i}", core.index),
                        count: 0,
                    });
                    request.extensions_mut().insert(skiff_glommio::WaitForReady);
                    let reply = GlommioClient::say_hello(&channel, request)
                        .await
                        .expect("call");
                    assert_eq!(reply.backend, "a");
                    answered += 1;
                }
                let streams = core.shard.driver().status().borrow().streams_opened;
                (core.index, answered, streams)
            })
            .await
        },
    )
    .expect("run_per_core");
    assert_eq!(results.len(), executors.count());
    for (i, (index, answered, streams)) in results.into_iter().enumerate() {
        assert_eq!(index, i);
        assert_eq!(answered, 20);
        assert_eq!(streams, 1, "one ADS stream for every executor");
    }
}

/// Thread-per-core serving: every executor runs an xDS-enabled server on the same port
/// (`SO_REUSEPORT`), each configured by the one shard; the kernel spreads new connections
/// over them and each executor answers its own.
#[test]
fn per_core_servers_share_one_port() {
    if !environment_ok() {
        return;
    }
    support::init_logs();
    let fx = Arc::new(Fixture::new());
    let setup = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    setup.block_on(fx.start_control_plane(Some(&mesh_yaml(
        &["  - {address: 127.0.0.2, ports: {grpc: 1}}\n".to_string()],
        "",
    ))));
    let xds = fx.xds_target();
    let executors = Executors::new(2);
    // Executor 0 binds port 0 and tells the others which port it got.
    let (port_tx, port_rx) = tokio::sync::watch::channel(None::<u16>);
    let port_tx = Arc::new(port_tx);
    // Executor 0 says when the calls are done: every server serves until then.
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let done_tx = Arc::new(done_tx);
    let app_fx = Arc::clone(&fx);
    let results = skiff_glommio::run_per_core(
        executors,
        move || fast(&xds),
        move |core| {
            let (fx, port_tx, mut port_rx) =
                (Arc::clone(&app_fx), Arc::clone(&port_tx), port_rx.clone());
            let (done_tx, mut done_rx) = (Arc::clone(&done_tx), done_rx.clone());
            async move {
                let listener = if core.index == 0 {
                    let l = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                    port_tx.send_replace(Some(l.local_addr().expect("addr").port()));
                    l
                } else {
                    let port = *port_rx.wait_for(Option::is_some).await.expect("port");
                    glommio::net::TcpListener::bind(("127.0.0.1", port.expect("port")))
                        .expect("bind the shared port")
                };
                let addr = listener.local_addr().expect("addr");
                let modes = support::ModeLog::default();
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                let seen = support::ModeLog::clone(&modes);
                let mesh = core.mesh.clone();
                let routes = support::greeter_routes(&format!("core-{}", core.index));
                let server = glommio::spawn_local(async move {
                    skiff_glommio::Server::builder()
                        .serving_mode(move |_, m| seen.lock().unwrap().push(m.clone()))
                        .serve_with_shutdown(&mesh, listener, routes, async {
                            let _ = stop_rx.await;
                        })
                        .await
                });
                let limit = async {
                    async_io::Timer::after(CASE_LIMIT).await;
                };
                let served = bounded(limit, async {
                    if core.index == 0 {
                        let endpoint = format!(
                            "  - {{address: 127.0.0.1, ports: {{grpc: {}}}}}\n",
                            addr.port()
                        );
                        fx.reconfigure(&mesh_yaml(&[endpoint], "")).await;
                    }
                    while !modes.lock().unwrap().last().is_some_and(|m| m.is_serving()) {
                        async_io::Timer::after(Duration::from_millis(20)).await;
                    }
                    if core.index != 0 {
                        let _ = done_rx.wait_for(|d| *d).await;
                        return Vec::new();
                    }
                    // Both executors serve now (the other one waits for the same Listener from
                    // the same shard); give it a moment to be seen serving too.
                    async_io::Timer::after(Duration::from_millis(200)).await;
                    // 24 fresh connections from a plain tonic client on the fixture's runtime.
                    let who = fx
                        .run(async move {
                            let mut who = Vec::new();
                            for i in 0..24 {
                                let ch = tonic::transport::Endpoint::from_shared(format!(
                                    "http://{addr}"
                                ))
                                .expect("endpoint")
                                .connect()
                                .await
                                .expect("connect");
                                let reply = GreeterClient::new(ch)
                                    .say_hello(HelloRequest {
                                        name: format!("conn {i}"),
                                        count: 0,
                                    })
                                    .await
                                    .expect("call")
                                    .into_inner();
                                who.push(reply.backend);
                            }
                            who
                        })
                        .await;
                    done_tx.send_replace(true);
                    who
                })
                .await;
                let _ = stop_tx.send(());
                server.await.expect("server");
                served
            }
        },
    )
    .expect("run_per_core");
    let who: Vec<String> = results.into_iter().flatten().collect();
    assert_eq!(who.len(), 24);
    for core in ["core-0", "core-1"] {
        assert!(
            who.iter().any(|w| w == core),
            "{core} served no connection: {who:?}"
        );
    }
}
