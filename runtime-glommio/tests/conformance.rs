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
        let shard = fast(xds)
            .build_shard(skiff_glommio::runtime())
            .expect("shard");
        let mesh = fast(xds)
            .build_fed(skiff_glommio::runtime(), &shard)
            .expect("data plane");
        GlommioClient {
            mesh,
            _shard: shard,
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
