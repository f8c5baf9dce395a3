//! The runtime-adapter conformance suite on tokio: the shared cases of `support::cases` with
//! skiff-tokio's `Mesh` as the client, plus tokio-specific checks of the `Channel` (streaming,
//! plain targets, statuses, deadlines, cancellation). Real sockets on 127.0.0.1, real HTTP/2,
//! the real embedded control plane, real tonic servers; every test is bounded in time.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use skiff_core::xds::backoff::BackoffConfig;
use skiff_tokio::{Mesh, MeshEvent, XdsServerTarget};
use support::greeter::greeter_client::GreeterClient;
use support::greeter::{HelloReply, HelloRequest};
use support::{
    CASE_LIMIT, Fixture, TARGET, TestRuntime, bounded, cases, mesh_yaml, virtual_service,
};
use tonic::Code;

/// skiff-tokio as the client under test.
struct Tokio {
    mesh: Mesh,
}

fn fast_mesh(xds: &str) -> skiff_tokio::MeshBuilder {
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

impl TestRuntime for Tokio {
    type Channel = skiff_tokio::Channel;

    fn mesh(xds: &str) -> Self {
        Tokio {
            mesh: fast_mesh(xds).build().expect("mesh"),
        }
    }

    fn channel(&self, target: &str) -> skiff_tokio::Channel {
        self.mesh.channel(target).expect("channel")
    }

    async fn say_hello(
        channel: &skiff_tokio::Channel,
        request: tonic::Request<HelloRequest>,
    ) -> Result<HelloReply, tonic::Status> {
        GreeterClient::new(channel.clone())
            .say_hello(request)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn sleep(d: Duration) {
        tokio::time::sleep(d).await;
    }

    async fn serve(
        &self,
        routes: tonic::service::Routes,
        modes: support::ModeLog,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mesh = self.mesh.clone();
        tokio::spawn(async move {
            skiff_tokio::Server::builder()
                .serving_mode(move |_, m| modes.lock().unwrap().push(m.clone()))
                .drain_grace(Duration::from_secs(1))
                .serve_with_shutdown(&mesh, listener, routes, async {
                    let _ = stop.await;
                })
                .await
                .expect("server");
        });
        addr
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            cases::$name::<Tokio>().await;
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

// ---- tokio-specific -----------------------------------------------------------------------

async fn one_backend(fx: &Fixture, extra: &str) -> Arc<support::Backend> {
    let a = fx.backend("a").await;
    fx.start_control_plane(Some(&mesh_yaml(&[a.endpoint_yaml("v1")], extra)))
        .await;
    a
}

/// Server streaming and client streaming through the mesh `Channel`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_rpcs() {
    let fx = Fixture::new();
    let a = one_backend(&fx, "").await;
    let mesh = fast_mesh(&fx.xds_target()).build().unwrap();
    let mut client = GreeterClient::new(mesh.channel(TARGET).unwrap());
    bounded(tokio::time::sleep(CASE_LIMIT), async {
        let mut stream = client
            .say_hello_stream(HelloRequest {
                name: "s".into(),
                count: 5,
            })
            .await
            .expect("server streaming call")
            .into_inner();
        let mut got = Vec::new();
        while let Some(r) = stream.message().await.expect("stream message") {
            got.push(r.message);
        }
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[4], "hello s #4");

        // A client stream that is still being produced when the call starts (not buffered).
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let producer = tokio::spawn(async move {
            for name in ["x", "y", "z"] {
                tokio::time::sleep(Duration::from_millis(20)).await;
                tx.send(HelloRequest {
                    name: name.into(),
                    count: 0,
                })
                .await
                .unwrap();
            }
        });
        let reply = client
            .say_hello_client_stream(tonic::codegen::tokio_stream::wrappers::ReceiverStream::new(
                rx,
            ))
            .await
            .expect("client streaming call")
            .into_inner();
        producer.await.unwrap();
        assert_eq!(reply.message, "hello x, y, z");
        assert_eq!(a.hits(), 2);
    })
    .await;
}

/// Mesh decisions reach tonic as `Status` with the core's message; the application's own
/// `grpc-timeout` is enforced; server statuses and metadata pass through untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_and_deadlines() {
    let fx = Fixture::new();
    let a = one_backend(&fx, "").await;
    let mesh = fast_mesh(&fx.xds_target())
        .configure(|c| c.xds.does_not_exist_timeout = Duration::from_millis(300))
        .build()
        .unwrap();
    bounded(tokio::time::sleep(CASE_LIMIT), async {
        let ch = mesh.channel(TARGET).unwrap();
        Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default()))
            .await
            .expect("first call (queued until the configuration arrives)");

        // An unknown listener: the control plane never sends it, the does-not-exist timer
        // fires and the call fails with the core's reason.
        let missing = mesh
            .channel("xds:///nope.test.svc.cluster.local:1")
            .unwrap();
        let err = Tokio::say_hello(&missing, tonic::Request::new(HelloRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(err.message().contains("does not exist"), "{err:?}");

        // The application's deadline (tonic puts it in grpc-timeout).
        a.delay(Duration::from_secs(5));
        let mut req = tonic::Request::new(HelloRequest::default());
        req.set_timeout(Duration::from_millis(200));
        let err = Tokio::say_hello(&ch, req).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        a.delay(Duration::ZERO);

        // A server status (not retried: INVALID_ARGUMENT is not in the default policy).
        a.fail_with(Some(Code::InvalidArgument));
        let before = a.hits();
        let err = Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("configured to fail"), "{err:?}");
        assert_eq!(a.hits(), before + 1);
        a.fail_with(None);
    })
    .await;
}

/// Dropping an RPC cancels it in the core (nothing leaks: no active calls remain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_calls_are_cancelled() {
    let fx = Fixture::new();
    let a = one_backend(&fx, "").await;
    let mesh = fast_mesh(&fx.xds_target()).build().unwrap();
    let ch = mesh.channel(TARGET).unwrap();
    bounded(tokio::time::sleep(CASE_LIMIT), async {
        Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default()))
            .await
            .unwrap();
        a.delay(Duration::from_secs(10));
        let call = tokio::spawn({
            let ch = ch.clone();
            async move { Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default())).await }
        });
        while a.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(mesh.read(|m| m.active_calls()), 1);
        call.abort();
        let _ = call.await;
        mesh.wait_for(|m| (m.active_calls() == 0).then_some(()))
            .await;
        // The server sees the stream reset.
        for _ in 0..400 {
            if a.in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            a.in_flight(),
            0,
            "the cancelled RPC is still running on the server"
        );
    })
    .await;
}

/// Wait-for-ready, events, the config dump, ADS status, and shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_config_dump() {
    let fx = Fixture::new();
    let _a = one_backend(
        &fx,
        &virtual_service("  - route:\n    - destination: {host: greeter.test.svc.cluster.local}\n"),
    )
    .await;
    let mesh = fast_mesh(&fx.xds_target()).build().unwrap();
    let mut events = mesh.subscribe();
    let ch = mesh.channel(TARGET).unwrap();
    bounded(tokio::time::sleep(CASE_LIMIT), async {
        let mut req = tonic::Request::new(HelloRequest::default());
        req.extensions_mut().insert(skiff_tokio::WaitForReady);
        Tokio::say_hello(&ch, req).await.unwrap();
        let dump = mesh.config_dump();
        assert!(dump.len() >= 4, "{dump:?}");
        let mut saw_ready = false;
        while let Ok(e) = events.try_recv() {
            if let MeshEvent::Subchannel { state, .. } = e {
                saw_ready |= state == skiff_core::plane::Connectivity::Ready;
            }
        }
        assert!(saw_ready);
        assert!(mesh.ads_status().borrow().open);
        mesh.shutdown().await;
        let err = Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(mesh.channel(TARGET).is_err());
    })
    .await;
}

/// Plain `host:port` and `dns:///host:port` targets: round robin without a control plane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_targets_without_xds() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let mesh = Mesh::builder().build().unwrap();
    bounded(tokio::time::sleep(CASE_LIMIT), async {
        for target in [
            a.addr.to_string(),
            format!("dns:///localhost:{}", a.addr.port()),
        ] {
            let ch = mesh.channel(&target).unwrap();
            for _ in 0..3 {
                let r = Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default()))
                    .await
                    .unwrap_or_else(|e| panic!("{target}: {e:?}"));
                assert_eq!(r.backend, "a");
            }
        }
        assert!(matches!(
            mesh.channel(TARGET),
            Err(skiff_tokio::MeshError::NoXdsServer(_))
        ));
        // Nothing listens: UNAVAILABLE, not a hang.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let ch = mesh.channel(&format!("127.0.0.1:{port}")).unwrap();
        let err = Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    })
    .await;
    assert_eq!(a.ctl.hits.load(Ordering::SeqCst), 6);
}

/// `from_bootstrap_json` (what `from_env` reads) builds a working mesh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_json() {
    let fx = Fixture::new();
    let _a = one_backend(&fx, "").await;
    let json = format!(
        r#"{{"xds_servers": [{{"server_uri": "{}", "channel_creds": [{{"type": "insecure"}}],
             "server_features": ["xds_v3"]}}],
            "node": {{"id": "bootstrap-client", "metadata": {{"GENERATOR": "grpc"}}}}}}"#,
        fx.xds_target()
    );
    let mesh = Mesh::from_bootstrap_json(&json).unwrap();
    let ch = mesh.channel(TARGET).unwrap();
    bounded(tokio::time::sleep(CASE_LIMIT), async {
        Tokio::say_hello(&ch, tonic::Request::new(HelloRequest::default()))
            .await
            .unwrap();
    })
    .await;
    assert!(matches!(
        Mesh::from_bootstrap_json("{}"),
        Err(skiff_tokio::MeshError::Bootstrap(_))
    ));
}

/// The example mesh of `examples/mesh.yaml` (the README walk-through) is valid and complete.
#[tokio::test]
async fn example_mesh_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mesh.yaml");
    let server =
        skiff_tokio::ControlPlaneServer::bind("127.0.0.1:0", skiff_tokio::ConfigSource::file(path))
            .await
            .expect("examples/mesh.yaml is accepted");
    assert!(server.warnings().is_empty(), "{:?}", server.warnings());
}
