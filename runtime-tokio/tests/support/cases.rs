//! The conformance cases, written once against [`TestRuntime`]. Each starts its own fixture
//! (control plane + backends on 127.0.0.1 port 0), is bounded by [`CASE_LIMIT`], and stops
//! everything it started when it returns.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tonic::Code;

use super::greeter::{HelloReply, HelloRequest};
use super::{
    Backend, CASE_LIMIT, Fixture, INTERFACE_TARGET, ModeLog, TARGET, TestRuntime, bounded,
    destination_rule, greeter_routes, join_all, mesh_yaml, virtual_service,
};
use skiff_tokio::ConfigEvent;

fn request(name: &str) -> tonic::Request<HelloRequest> {
    tonic::Request::new(HelloRequest {
        name: name.to_string(),
        count: 0,
    })
}

async fn hello<R: TestRuntime>(ch: &R::Channel) -> Result<HelloReply, tonic::Status> {
    R::say_hello(ch, request("conformance")).await
}

/// Calls until every backend in `names` answered at least once (connections up, config in).
async fn until_seen<R: TestRuntime>(ch: &R::Channel, names: &[&str]) {
    let mut seen = std::collections::BTreeSet::new();
    let mut last_err = None;
    for _ in 0..2_000 {
        match hello::<R>(ch).await {
            Ok(r) => {
                seen.insert(r.backend);
            }
            Err(e) => last_err = Some(e),
        }
        if names.iter().all(|n| seen.contains(*n)) {
            return;
        }
        R::sleep(Duration::from_millis(5)).await;
    }
    panic!("never reached {names:?} (saw {seen:?}; last error {last_err:?})");
}

/// `n` sequential calls that must all succeed; replies per backend.
async fn spread<R: TestRuntime>(ch: &R::Channel, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for i in 0..n {
        match hello::<R>(ch).await {
            Ok(r) => *counts.entry(r.backend).or_insert(0) += 1,
            Err(e) => panic!("call {i} failed: {e:?}"),
        }
    }
    counts
}

fn endpoints(backends: &[(&Arc<Backend>, &str)]) -> Vec<String> {
    backends.iter().map(|(b, v)| b.endpoint_yaml(v)).collect()
}

/// Round robin over three backends, addressed by interface name.
pub async fn round_robin<R: TestRuntime>() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let b = fx.backend("b").await;
    let c = fx.backend("c").await;
    let eps = endpoints(&[(&a, "v1"), (&b, "v1"), (&c, "v1")]);
    fx.start_control_plane(Some(&mesh_yaml(&eps, &destination_rule(None))))
        .await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(INTERFACE_TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a", "b", "c"]).await;
        let counts = spread::<R>(&ch, 300).await;
        for name in ["a", "b", "c"] {
            let n = counts.get(name).copied().unwrap_or(0);
            assert!((80..=120).contains(&n), "round robin is uneven: {counts:?}");
        }
    })
    .await;
}

/// A weighted split 80/20 between subsets (±7 % over 500 calls).
pub async fn weighted_split<R: TestRuntime>() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let b = fx.backend("b").await;
    let vs = virtual_service(
        "  - route:
    - destination: {host: greeter.test.svc.cluster.local, subset: v1}
      weight: 80
    - destination: {host: greeter.test.svc.cluster.local, subset: v2}
      weight: 20
",
    );
    let yaml = mesh_yaml(
        &endpoints(&[(&a, "v1"), (&b, "v2")]),
        &format!("{}{vs}", destination_rule(None)),
    );
    fx.start_control_plane(Some(&yaml)).await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a", "b"]).await;
        let counts = spread::<R>(&ch, 500).await;
        let share = counts.get("a").copied().unwrap_or(0) as f64 / 500.0;
        assert!(
            (0.73..=0.87).contains(&share),
            "v1 got {share:.3} of the calls, want 0.80 ± 0.07: {counts:?}"
        );
    })
    .await;
}

/// A VirtualService header match sends canary calls to v2, the rest to v1.
pub async fn header_routing<R: TestRuntime>() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let b = fx.backend("b").await;
    let vs = virtual_service(
        "  - match:
    - headers:
        x-canary: {exact: \"1\"}
    route:
    - destination: {host: greeter.test.svc.cluster.local, subset: v2}
  - route:
    - destination: {host: greeter.test.svc.cluster.local, subset: v1}
",
    );
    let yaml = mesh_yaml(
        &endpoints(&[(&a, "v1"), (&b, "v2")]),
        &format!("{}{vs}", destination_rule(None)),
    );
    fx.start_control_plane(Some(&yaml)).await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a"]).await;
        for i in 0..40 {
            let mut req = request("canary");
            req.metadata_mut()
                .insert("x-canary", "1".parse().expect("metadata"));
            let r = R::say_hello(&ch, req).await.expect("canary call");
            assert_eq!(r.backend, "b", "canary call {i} went to {}", r.backend);
            let r = hello::<R>(&ch).await.expect("plain call");
            assert_eq!(r.backend, "a", "plain call {i} went to {}", r.backend);
        }
    })
    .await;
}

/// One backend always answers UNAVAILABLE; the route retries, so every call succeeds.
pub async fn retry_on_unavailable<R: TestRuntime>() {
    let fx = Fixture::new();
    let good = fx.backend("good").await;
    let bad = fx.backend("bad").await;
    bad.fail_with(Some(Code::Unavailable));
    let vs = virtual_service(
        "  - route:
    - destination: {host: greeter.test.svc.cluster.local}
    retries:
      attempts: 3
      retryOn: unavailable
",
    );
    let yaml = mesh_yaml(&endpoints(&[(&good, "v1"), (&bad, "v1")]), &vs);
    fx.start_control_plane(Some(&yaml)).await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["good"]).await;
        let counts = spread::<R>(&ch, 100).await;
        assert_eq!(counts.get("good"), Some(&100), "{counts:?}");
        assert!(
            bad.hits() > 10,
            "the failing backend should have been tried (and retried away from): {} hits",
            bad.hits()
        );
    })
    .await;
}

/// The route's timeout (`max_stream_duration`) bounds a call to a slow backend.
pub async fn route_timeout<R: TestRuntime>() {
    let fx = Fixture::new();
    let slow = fx.backend("slow").await;
    let vs = virtual_service(
        "  - route:
    - destination: {host: greeter.test.svc.cluster.local}
    timeout: 300ms
",
    );
    fx.start_control_plane(Some(&mesh_yaml(&endpoints(&[(&slow, "v1")]), &vs)))
        .await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["slow"]).await;
        slow.delay(Duration::from_secs(5));
        let err = hello::<R>(&ch)
            .await
            .expect_err("a 5 s call under a 300 ms route timeout");
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert!(err.message().contains("deadline"), "{err:?}");
        slow.delay(Duration::ZERO);
        hello::<R>(&ch).await.expect("a fast call still works");
    })
    .await;
}

/// `http2MaxRequests: 2`: with two calls in flight on a slow backend, a third fails at once.
pub async fn circuit_breaking<R: TestRuntime>() {
    let fx = Fixture::new();
    let slow = fx.backend("slow").await;
    let yaml = mesh_yaml(&endpoints(&[(&slow, "v1")]), &destination_rule(Some(2)));
    fx.start_control_plane(Some(&yaml)).await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["slow"]).await;
        slow.delay(Duration::from_millis(1500));
        let third = async {
            while slow.in_flight() < 2 {
                R::sleep(Duration::from_millis(5)).await;
            }
            hello::<R>(&ch).await
        };
        let results = join_all(vec![
            Box::pin(hello::<R>(&ch)),
            Box::pin(hello::<R>(&ch)),
            Box::pin(third),
        ])
        .await;
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(results[1].is_ok(), "{:?}", results[1]);
        let err = results[2].as_ref().expect_err("the third concurrent call");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(err.message().contains("circuit breaker"), "{err:?}");
        slow.delay(Duration::ZERO);
        hello::<R>(&ch)
            .await
            .expect("calls flow again once the breaker closes");
    })
    .await;
}

/// Endpoints change live (EDS): the new one gets traffic, the removed one none.
pub async fn live_endpoint_change<R: TestRuntime>() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let b = fx.backend("b").await;
    let c = fx.backend("c").await;
    fx.start_control_plane(Some(&mesh_yaml(&endpoints(&[(&a, "v1"), (&b, "v1")]), "")))
        .await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a", "b"]).await;
        let ev = fx
            .reconfigure(&mesh_yaml(&endpoints(&[(&a, "v1"), (&c, "v1")]), ""))
            .await;
        assert!(matches!(ev, ConfigEvent::Applied { .. }), "{ev}");
        until_seen::<R>(&ch, &["c"]).await;
        let b_before = b.hits();
        let counts = spread::<R>(&ch, 60).await;
        assert_eq!(
            b.hits(),
            b_before,
            "the removed endpoint got traffic: {counts:?}"
        );
        assert!(counts.get("c").copied().unwrap_or(0) >= 20, "{counts:?}");
        assert!(counts.get("a").copied().unwrap_or(0) >= 20, "{counts:?}");
    })
    .await;
}

/// The control plane goes away and comes back: calls keep succeeding on the cached
/// configuration, and the client picks up changes after it reconnects.
pub async fn control_plane_restart<R: TestRuntime>() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let b = fx.backend("b").await;
    fx.start_control_plane(Some(&mesh_yaml(&endpoints(&[(&a, "v1")]), "")))
        .await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a"]).await;
        fx.stop_control_plane().await;
        for i in 0..50 {
            hello::<R>(&ch)
                .await
                .unwrap_or_else(|e| panic!("call {i} without a control plane failed: {e:?}"));
            R::sleep(Duration::from_millis(10)).await;
        }
        // Back, with one more endpoint: the client reconnects and follows it.
        fx.write_config(&mesh_yaml(&endpoints(&[(&a, "v1"), (&b, "v1")]), ""));
        fx.start_control_plane(None).await;
        let mut seen_b = false;
        for i in 0..2_000 {
            let r = hello::<R>(&ch)
                .await
                .unwrap_or_else(|e| panic!("call {i} after the restart failed: {e:?}"));
            if r.backend == "b" {
                seen_b = true;
                break;
            }
            R::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            seen_b,
            "the restarted control plane's endpoint never got traffic"
        );
    })
    .await;
}

/// An invalid configuration edit is rejected by the control plane; clients keep the last good
/// configuration and every call succeeds; a valid edit after it applies.
pub async fn bad_config_keeps_old<R: TestRuntime>() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let b = fx.backend("b").await;
    fx.start_control_plane(Some(&mesh_yaml(&endpoints(&[(&a, "v1")]), "")))
        .await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a"]).await;
        let bad = mesh_yaml(&endpoints(&[(&b, "v1")]), "")
            .replace("ports: [{number: 7000", "ports: [{number: seven-thousand");
        let ev = fx.reconfigure(&bad).await;
        assert!(matches!(ev, ConfigEvent::Rejected { .. }), "{ev}");
        let counts = spread::<R>(&ch, 40).await;
        assert_eq!(counts.get("a"), Some(&40), "{counts:?}");
        let ev = fx
            .reconfigure(&mesh_yaml(&endpoints(&[(&b, "v1")]), ""))
            .await;
        assert!(matches!(ev, ConfigEvent::Applied { .. }), "{ev}");
        until_seen::<R>(&ch, &["b"]).await;
    })
    .await;
}

/// A backend shuts down gracefully (GOAWAY) under load: no RPC fails, and the others take
/// over.
pub async fn goaway_graceful_shutdown<R: TestRuntime>() {
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    let b = fx.backend("b").await;
    let yaml = mesh_yaml(
        &endpoints(&[(&a, "v1"), (&b, "v1")]),
        &destination_rule(None),
    );
    fx.start_control_plane(Some(&yaml)).await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a", "b"]).await;
        // Slow enough that calls are in flight on b when it goes away.
        a.delay(Duration::from_millis(2));
        b.delay(Duration::from_millis(2));
        let worker = |w: usize| {
            let ch = ch.clone();
            async move {
                for i in 0..150 {
                    if let Err(e) = hello::<R>(&ch).await {
                        panic!("worker {w} call {i} failed: {e:?}");
                    }
                }
            }
        };
        let shutdown = async {
            while b.hits() < 100 {
                R::sleep(Duration::from_millis(2)).await;
            }
            b.shutdown().await;
        };
        join_all(vec![
            Box::pin(worker(0)),
            Box::pin(worker(1)),
            Box::pin(worker(2)),
            Box::pin(worker(3)),
            Box::pin(shutdown),
        ])
        .await;
        let b_after = b.hits();
        let counts = spread::<R>(&ch, 30).await;
        assert_eq!(counts.get("a"), Some(&30), "{counts:?}");
        assert_eq!(b.hits(), b_after);
    })
    .await;
}

/// Waits until `channel` takes a raw HTTP request.
async fn ready(channel: &mut skiff_tokio::Channel) {
    std::future::poll_fn(|cx| {
        tower_service::Service::<http::Request<tonic::body::Body>>::poll_ready(channel, cx)
    })
    .await
    .expect("ready");
}

/// Read to its end (as `BodyExt::collect` does), a response body carries exactly one trailers
/// frame, the server's status, and then ends: polling after the trailers yields nothing. And
/// the response names the endpoint that answered only when the request asked (`ReportServedBy`).
pub async fn body_ends_at_trailers<R: TestRuntime<Channel = skiff_tokio::Channel>>() {
    use http_body_util::BodyExt;
    use prost::Message;
    let fx = Fixture::new();
    let a = fx.backend("a").await;
    fx.start_control_plane(Some(&mesh_yaml(&endpoints(&[(&a, "v1")]), "")))
        .await;
    let mesh = R::mesh(&fx.xds_target());
    let ch = mesh.channel(TARGET);
    bounded(R::sleep(CASE_LIMIT), async {
        until_seen::<R>(&ch, &["a"]).await;
        let msg = HelloRequest {
            name: "raw".into(),
            count: 0,
        };
        // One length-prefixed gRPC message (uncompressed).
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(msg.encoded_len() as u32).to_be_bytes());
        msg.encode(&mut frame).expect("encode");
        let frame = bytes::Bytes::from(frame);
        let raw = || {
            http::Request::builder()
                .method(http::Method::POST)
                .uri("/helloworld.Greeter/SayHello")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(tonic::body::Body::new(http_body_util::Full::new(
                    frame.clone(),
                )))
                .expect("request")
        };
        let mut svc = ch.clone();
        // The endpoint that answered is reported only when asked for (it costs an allocation
        // per RPC).
        ready(&mut svc).await;
        let plain = tower_service::Service::call(&mut svc, raw())
            .await
            .expect("response");
        assert_eq!(plain.extensions().get::<skiff_tokio::ServedBy>(), None);
        plain.into_body().collect().await.expect("body");
        ready(&mut svc).await;
        let mut asking = raw();
        asking.extensions_mut().insert(skiff_tokio::ReportServedBy);
        let resp = tower_service::Service::call(&mut svc, asking)
            .await
            .expect("response");
        assert_eq!(resp.status(), http::StatusCode::OK);
        assert_eq!(
            resp.extensions().get::<skiff_tokio::ServedBy>(),
            Some(&skiff_tokio::ServedBy(a.addr))
        );
        let mut body = resp.into_body();
        let (mut data, mut trailers) = (0usize, Vec::new());
        while let Some(frame) = body.frame().await {
            match frame.expect("frame").into_data() {
                Ok(d) => data += d.len(),
                Err(f) => trailers.push(f.into_trailers().expect("trailers")),
            }
        }
        assert!(data > 5, "no reply message ({data} bytes)");
        assert_eq!(trailers.len(), 1, "trailers frames: {trailers:?}");
        assert_eq!(
            trailers[0].get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"0"[..]),
            "{trailers:?}"
        );
        assert!(body.frame().await.is_none(), "a frame after the end");
    })
    .await;
}

/// The serving modes once the last one is `serving` (or not).
async fn modes_until<R: TestRuntime>(
    modes: &ModeLog,
    serving: bool,
) -> Vec<skiff_tokio::ServingMode> {
    loop {
        let now = modes.lock().unwrap().clone();
        if now.last().is_some_and(|m| m.is_serving() == serving) {
            return now;
        }
        R::sleep(Duration::from_millis(20)).await;
    }
}

/// The ServiceEntry endpoint line for an xDS-enabled server at `ip:port`.
fn server_endpoint(ip: &str, port: u16) -> String {
    format!("  - {{address: {ip}, ports: {{grpc: {port}}}, labels: {{version: v1}}}}\n")
}

/// The xDS-enabled server (gRFC A36) on the adapter's runtime: it refuses connections until
/// the control plane sends its inbound Listener, then serves the mesh's clients (a skiff
/// client reaches it by its service name), and stops serving when the workload leaves the
/// configuration.
pub async fn xds_server<R: TestRuntime>() {
    let fx = Fixture::new();
    // No workload on this server's address yet.
    fx.start_control_plane(Some(&mesh_yaml(&[server_endpoint("127.0.0.2", 1)], "")))
        .await;
    let mesh = R::mesh(&fx.xds_target());
    let modes = ModeLog::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let addr = mesh
        .serve(
            greeter_routes("xds-server"),
            ModeLog::clone(&modes),
            stop_rx,
        )
        .await;
    bounded(R::sleep(CASE_LIMIT), async {
        let direct = mesh.channel(&addr.to_string());
        let first = modes_until::<R>(&modes, false).await;
        assert!(!first[0].is_serving(), "{first:?}");
        let mut req = request("early");
        req.set_timeout(Duration::from_millis(500));
        assert!(
            R::say_hello(&direct, req).await.is_err(),
            "a server with no Listener accepted an RPC"
        );

        // The workload appears: the server gets its Listener and serves mesh clients.
        fx.reconfigure(&mesh_yaml(&[server_endpoint("127.0.0.1", addr.port())], ""))
            .await;
        modes_until::<R>(&modes, true).await;
        let ch = mesh.channel(TARGET);
        until_seen::<R>(&ch, &["xds-server"]).await;
        let counts = spread::<R>(&ch, 20).await;
        assert_eq!(counts.get("xds-server"), Some(&20), "{counts:?}");

        // It leaves: the Listener is gone, the server stops serving and refuses new
        // connections.
        fx.reconfigure(&mesh_yaml(&[server_endpoint("127.0.0.2", addr.port())], ""))
            .await;
        let history = modes_until::<R>(&modes, false).await;
        assert!(
            matches!(history.last(), Some(skiff_tokio::ServingMode::NotServing(why)) if why.contains("does not exist")),
            "{history:?}"
        );
        let fresh = R::mesh(&fx.xds_target());
        let refused = fresh.channel(&addr.to_string());
        let mut req = request("after");
        req.set_timeout(Duration::from_millis(500));
        assert!(
            R::say_hello(&refused, req).await.is_err(),
            "a server that is not serving accepted a new connection"
        );
    })
    .await;
    let _ = stop_tx.send(());
}
