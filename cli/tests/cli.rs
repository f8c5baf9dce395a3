//! The `skiff` binary, run as a user would (bounded in time; every child is killed).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SKIFF: &str = env!("CARGO_BIN_EXE_skiff");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(SKIFF).args(args).output().unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_everywhere() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("control-plane") && text.contains("bootstrap"),
        "{text}"
    );

    let o = run(&["control-plane", "--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for flag in [
        "--config",
        "--listen",
        "--tls-cert",
        "--tls-key",
        "127.0.0.1:15010",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }

    let o = run(&["bootstrap", "--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for flag in ["--xds-server", "--node-id", "--out"] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }

    let o = run(&["call", "--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for flag in [
        "--proto",
        "--xds-server",
        "--bootstrap",
        "--header",
        "--timeout",
        "--count",
        "--concurrency",
        "--interval",
        "--output",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }

    // A missing required flag is a usage error, not a crash.
    let o = run(&["control-plane"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bootstrap_is_grpc_xds_bootstrap_json() {
    let o = run(&[
        "bootstrap",
        "--xds-server",
        "dns:///cp:15010",
        "--node-id",
        "n1",
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let server = &v["xds_servers"][0];
    assert_eq!(server["server_uri"], "dns:///cp:15010");
    assert_eq!(server["channel_creds"][0]["type"], "insecure");
    assert_eq!(server["server_features"][0], "xds_v3");
    assert_eq!(v["node"]["id"], "n1");
    assert_eq!(v["node"]["metadata"]["GENERATOR"], "grpc");

    // Defaults, written to a file.
    let dir = temp_dir("bootstrap");
    let out = dir.join("bootstrap.json");
    let o = run(&["bootstrap", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["xds_servers"][0]["server_uri"], "127.0.0.1:15010");
    assert!(v["node"]["id"].as_str().unwrap().starts_with("sidecar~"));
    let _ = std::fs::remove_dir_all(dir);
}

const MESH: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{number: 7000, name: grpc}]
  endpoints:
  - {address: 10.0.0.1}
";

fn temp_dir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("skiff-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Kills the child on drop (the test may fail half-way).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn control_plane_prints_address_and_reloads() {
    let dir = temp_dir("cp");
    let file = dir.join("mesh.yaml");
    std::fs::write(&file, MESH).unwrap();
    let mut child = Killed(
        Command::new(SKIFF)
            .args(["control-plane", "--config", file.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, lines) = mpsc::channel();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> String {
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no line containing {what:?}"));
            if line.contains(what) {
                return line;
            }
        }
    };
    let line = next("serving");
    let addr = line.rsplit(' ').next().unwrap().to_string();
    let addr: std::net::SocketAddr = addr.parse().unwrap_or_else(|_| panic!("{line}"));
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    std::net::TcpStream::connect(addr).unwrap();

    // An invalid edit is printed with its line and rejected...
    std::fs::write(&file, MESH.replace("10.0.0.1", "not-an-ip")).unwrap();
    next("rejected");
    let error = next("mesh.yaml:");
    assert!(error.contains("mesh.yaml:8:"), "{error}");
    // ...a valid one applied.
    std::fs::write(&file, MESH.replace("10.0.0.1", "10.0.0.2")).unwrap();
    next("configuration applied");

    // SIGTERM stops it cleanly.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    next("shutting down");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    drop(child);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn control_plane_refuses_an_invalid_initial_config() {
    let dir = temp_dir("bad");
    let file = dir.join("mesh.yaml");
    std::fs::write(&file, MESH.replace("10.0.0.1", "not-an-ip")).unwrap();
    let o = run(&[
        "control-plane",
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mesh.yaml:8:"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn config_dump_shows_what_clients_acked() {
    use skiff_core::pb::envoy::config::core::v3::Node;
    use skiff_core::rng::Seed;
    use skiff_core::xds::{ResourceStatus, ResourceType, XdsClientConfig};
    use skiff_tokio::{DriverOptions, XdsServerTarget, spawn_xds_client};

    let dir = temp_dir("dump");
    let file = dir.join("mesh.yaml");
    std::fs::write(&file, MESH).unwrap();
    let mut child = Killed(
        Command::new(SKIFF)
            .args(["control-plane", "--config", file.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("serving") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "control plane exited"
        );
    }
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();

    // A real xDS client subscribes and ACKs the listener.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let node = Node {
        id: "sidecar~10.0.0.7~dumped.default~default.svc.cluster.local".into(),
        ..Default::default()
    };
    let listener = "echo.default.svc.cluster.local:7000";
    let handle = runtime.block_on(async {
        let h = spawn_xds_client(
            &XdsServerTarget::insecure(addr.clone()),
            XdsClientConfig::new(node),
            Seed(1),
            DriverOptions::default(),
        )
        .unwrap();
        h.watch(ResourceType::Listener, listener).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(20),
            h.wait_for(move |c| {
                c.entry(ResourceType::Listener, listener)
                    .filter(|e| e.status == ResourceStatus::Acked)
                    .map(|_| ())
            }),
        )
        .await
        .expect("listener acked")
        .unwrap();
        h
    });

    let dump = run(&["config-dump", &addr]);
    assert!(dump.status.success(), "{dump:?}");
    let text = stdout(&dump);
    assert!(
        text.contains("client sidecar~10.0.0.7~dumped.default"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains(listener))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.trim_start().starts_with("LDS"), "{row}");
    assert!(row.contains("ACKED"), "{row}");

    let json = run(&["config-dump", &addr, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v[0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "ACKED")
    );

    runtime.block_on(handle.shutdown());
    drop(child);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn demo_runs_and_the_split_follows_the_config() {
    let out = Command::new(SKIFF)
        .args(["demo", "--plain", "--seconds", "1", "--rate", "80"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |prefix: &str| -> Vec<u64> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no summary row {prefix:?}\n{text}"));
        let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
        rest.split_whitespace()
            .take(4)
            .map(|n| n.parse().unwrap_or_else(|_| panic!("{line}")))
            .collect()
    };
    // [v1-a, v1-b, v2, failed]
    let canary = row("canary: VirtualService sends 90% to v1, 10% to v2");
    let even = row("config change: 50/50");
    let header = row("header route: x-canary: true -> v2, everything else -> v1");
    for r in [&canary, &even, &header] {
        assert_eq!(r[3], 0, "no failed RPCs: {text}");
        assert_eq!(r[0] + r[1] + r[2], 80, "{text}");
    }
    assert!(canary[2] < 25, "v2 gets about 10%: {canary:?}");
    assert!(even[2] > 25 && even[2] < 55, "v2 gets about half: {even:?}");
    // Every fifth call carries x-canary and goes to v2; the rest to v1.
    assert_eq!(header[2], 16, "{header:?}");
    assert!(
        text.contains("x-canary calls answered by v2: 16/16"),
        "{text}"
    );
}
