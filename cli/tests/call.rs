//! `skiff call` against real tonic backends: a plain address with `--proto`, an `xds:///`
//! target through the embedded control plane with a summary over many calls, a failing status,
//! and a malformed request. Real sockets on 127.0.0.1; every run of the binary is bounded.

#[path = "../../runtime-tokio/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use support::{Fixture, TARGET, destination_rule, mesh_yaml};

const SKIFF: &str = env!("CARGO_BIN_EXE_skiff");
const METHOD: &str = "/helloworld.Greeter/SayHello";

fn proto() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/greeter.proto")
        .display()
        .to_string()
}

/// Runs `skiff call ARGS` with a time limit.
fn call(args: &[&str]) -> Output {
    let mut child = Command::new(SKIFF)
        .arg("call")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn skiff");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("skiff call did not finish within 60 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn call_plain_and_xds_targets_with_a_summary() {
    let fx = Fixture::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (a, b) = rt.block_on(async {
        let a = fx.backend("a").await;
        let b = fx.backend("b").await;
        let eps = vec![a.endpoint_yaml("v1"), b.endpoint_yaml("v1")];
        fx.start_control_plane(Some(&mesh_yaml(&eps, &destination_rule(None))))
            .await;
        (a, b)
    });
    let proto = proto();

    // A plain address, JSON in and out, the endpoint that answered.
    let addr = a.addr.to_string();
    let out = call(&[
        &addr,
        METHOD,
        "-d",
        r#"{"name": "plain"}"#,
        "--proto",
        &proto,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Ok"), "{stdout}");
    assert!(stdout.contains(r#""backend": "a""#), "{stdout}");
    assert!(stdout.contains(r#""message": "hello plain""#), "{stdout}");
    assert!(stdout.contains(&format!("endpoint {addr}")), "{stdout}");

    // The request from a file (`-d @FILE`).
    let request = std::env::temp_dir().join(format!("skiff-call-{}.json", std::process::id()));
    std::fs::write(&request, r#"{"name": "from a file"}"#).expect("write request");
    let out = call(&[
        &addr,
        METHOD,
        "-d",
        &format!("@{}", request.display()),
        "--proto",
        &proto,
    ]);
    let _ = std::fs::remove_file(&request);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(r#""message": "hello from a file""#),
        "{stdout}"
    );

    // Through the mesh: 20 calls, 4 at a time, balanced over both backends.
    let xds = fx.xds_target();
    let out = call(&[
        TARGET,
        METHOD,
        "-d",
        r#"{"name": "mesh"}"#,
        "--proto",
        &proto,
        "--xds-server",
        &xds,
        "-n",
        "20",
        "-c",
        "4",
        "--output",
        "json",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("json output");
    let summary = &doc["summary"];
    assert_eq!(summary["calls"], 20, "{summary}");
    assert_eq!(summary["by_status"]["Ok"], 20, "{summary}");
    let by_endpoint = summary["by_endpoint"].as_object().expect("by endpoint");
    let total: u64 = by_endpoint.values().filter_map(|v| v.as_u64()).sum();
    assert_eq!(total, 20);
    let endpoints: BTreeSet<&str> = by_endpoint.keys().map(String::as_str).collect();
    let expected: BTreeSet<String> = [a.addr.to_string(), b.addr.to_string()].into();
    assert_eq!(
        endpoints,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 20);
    assert!(
        calls
            .iter()
            .all(|c| c["response"]["message"] == "hello mesh")
    );
    assert!(summary["latency_ms"]["p50"].as_f64().expect("p50") > 0.0);

    // A failing status: printed, and the exit code says so.
    b.fail_with(Some(tonic::Code::PermissionDenied));
    let baddr = b.addr.to_string();
    let out = call(&[&baddr, METHOD, "--proto", &proto, "--output", "jsonl"]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("jsonl line");
    assert_eq!(line["status"], "PermissionDenied", "{line}");
    assert_eq!(line["code"], 7);
    assert!(text(&out.stderr).contains("1 of 1 calls failed"));
}

#[test]
fn bad_requests_get_clear_errors() {
    let proto = proto();
    // The request does not fit the message: the field is named.
    let out = call(&[
        "127.0.0.1:9",
        METHOD,
        "-d",
        r#"{"nmae": "x"}"#,
        "--proto",
        &proto,
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("nmae") && stderr.contains("helloworld.HelloRequest"),
        "{stderr}"
    );

    // `-d @FILE` that does not exist names the file.
    let out = call(&[
        "127.0.0.1:9",
        METHOD,
        "-d",
        "@no-such-request.json",
        "--proto",
        &proto,
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no-such-request.json"), "{stderr}");

    // An unknown method lists the ones that exist.
    let out = call(&["127.0.0.1:9", "/helloworld.Greeter/Nope", "--proto", &proto]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Nope") && stderr.contains("SayHello"),
        "{stderr}"
    );

    // Streaming methods are refused up front.
    let out = call(&[
        "127.0.0.1:9",
        "/helloworld.Greeter/SayHelloStream",
        "--proto",
        &proto,
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("streaming"));

    // An unreachable target fails with UNAVAILABLE within the deadline.
    let out = call(&["127.0.0.1:9", METHOD, "--proto", &proto, "--timeout", "2s"]);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Unavailable") || stdout.contains("DeadlineExceeded"),
        "{stdout}"
    );
}

mod app {
    use super::support::greeter::greeter_server::Greeter;
    use super::support::greeter::{HelloReply, HelloRequest};

    pub struct Hello;

    #[tonic::async_trait]
    impl Greeter for Hello {
        async fn say_hello(
            &self,
            _request: tonic::Request<HelloRequest>,
        ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
            Ok(tonic::Response::new(HelloReply::default()))
        }

        type SayHelloStreamStream = tonic::codegen::tokio_stream::Iter<
            std::vec::IntoIter<Result<HelloReply, tonic::Status>>,
        >;

        async fn say_hello_stream(
            &self,
            _request: tonic::Request<HelloRequest>,
        ) -> Result<tonic::Response<Self::SayHelloStreamStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("unary only"))
        }

        async fn say_hello_client_stream(
            &self,
            _request: tonic::Request<tonic::Streaming<HelloRequest>>,
        ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("unary only"))
        }
    }
}

/// `skiff config-dump` against a skiff app (its xDS-enabled server answers CSDS, gRFC A40),
/// not only against the control plane.
#[test]
fn config_dump_reads_an_apps_own_xds_view() {
    use support::greeter::greeter_server::GreeterServer;

    let fx = Fixture::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, serving) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ep = format!(
            "  - {{address: 127.0.0.1, ports: {{grpc: {}}}, labels: {{version: v1}}}}\n",
            addr.port()
        );
        fx.start_control_plane(Some(&mesh_yaml(&[ep], ""))).await;
        let mesh = skiff_tokio::Mesh::builder()
            .xds_server(skiff_tokio::XdsServerTarget::insecure(fx.xds_target()))
            .node_id("sidecar~127.0.0.1~app-0.test~test.svc.cluster.local")
            .build()
            .expect("mesh");
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = skiff_tokio::Server::builder()
                .serving_mode(move |_, m| {
                    let _ = tx.send(m.is_serving());
                })
                .serve(
                    &mesh,
                    listener,
                    tonic::service::Routes::new(GreeterServer::new(app::Hello)),
                )
                .await;
        });
        (addr, rx)
    });
    rt.block_on(async {
        let mut serving = serving;
        tokio::time::timeout(Duration::from_secs(20), serving.wait_for(|s| *s))
            .await
            .expect("the app never served")
            .expect("mode channel");
    });

    let out = Command::new(SKIFF)
        .args(["config-dump", &addr.to_string(), "--output", "json"])
        .output()
        .expect("config-dump");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let inbound = format!("xds.istio.io/grpc/lds/inbound/{addr}");
    assert!(stdout.contains(&inbound), "{stdout}");
    assert!(stdout.contains("app-0.test"), "{stdout}");
    assert!(stdout.to_uppercase().contains("ACKED"), "{stdout}");
}
