//! `skiff new` output builds and runs as generated: the project is created against this
//! checkout (`--skiff-path`), built offline with the workspace's lock file and target
//! directory, then its server and client talk to each other on 127.0.0.1. Bounded in time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SKIFF: &str = env!("CARGO_BIN_EXE_skiff");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The target directory this test binary was built in (`…/target/debug/skiff` → `…/target`).
fn target_dir() -> PathBuf {
    Path::new(SKIFF)
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a child process when dropped.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
    what: &str,
) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_new_service_builds_and_its_client_calls_its_server() {
    let dir = TempDir(std::env::temp_dir().join(format!("skiff-new-{}", std::process::id())));
    let project = dir.0.join("hello-svc");
    let out = Command::new(SKIFF)
        .args(["new", "hello-svc", "--path"])
        .arg(&project)
        .arg("--skiff-path")
        .arg(workspace())
        .output()
        .expect("skiff new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "Cargo.toml",
        "build.rs",
        "proto/greeter.proto",
        "src/bin/server.rs",
        "src/bin/client.rs",
        "mesh.yaml",
        "k8s/service.yaml",
        "README.md",
    ] {
        assert!(project.join(f).is_file(), "{f} missing");
    }
    let k8s = std::fs::read_to_string(project.join("k8s/service.yaml")).expect("k8s");
    assert!(
        k8s.contains("inject.istio.io/templates: grpc-agent"),
        "{k8s}"
    );

    // Refuses to overwrite.
    let again = Command::new(SKIFF)
        .args(["new", "hello-svc", "--path"])
        .arg(&project)
        .output()
        .expect("skiff new");
    assert!(!again.status.success());

    // Build it the way a user would, offline against this checkout's locked versions.
    std::fs::copy(workspace().join("Cargo.lock"), project.join("Cargo.lock")).expect("lock");
    let target = target_dir();
    let build = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet", "--bins"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo build");
    let built = wait_bounded(
        build,
        Duration::from_secs(15 * 60),
        "building the new project",
    );
    assert!(
        built.status.success(),
        "the generated project does not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );

    // Run: the plain server on a free port, the client against it.
    let bin = target.join("debug");
    let mut server = Kill(
        Command::new(bin.join("hello-svc-server"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("server"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server's first line");
    let addr = line.trim().rsplit(' ').next().expect("address").to_string();
    assert!(line.contains("listening on"), "{line}");
    let client = Command::new(bin.join("hello-svc-client"))
        .args([addr.as_str(), "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    let out = wait_bounded(client, Duration::from_secs(30), "the generated client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout.contains(&format!("Hello call 2 from hello-svc@{addr}")),
        "{stdout}"
    );
}
