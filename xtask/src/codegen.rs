//! Generates skiff-core's protobuf types with protox (a pure-Rust `.proto` compiler) and
//! prost-build. No `protoc` is needed anywhere.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The version of the `envoy-types` crate whose `proto/` tree is the source. It must match the
/// version in the workspace lock file (skiff-core dev-depends on it for cross-checks).
pub const SOURCE_CRATE: &str = "envoy-types";

/// The `.proto` files skiff needs; their imports are pulled in transitively.
pub const ROOTS: &[&str] = &[
    // ADS transport (SotW + Delta) and status discovery (CSDS, gRFC A40).
    "envoy/service/discovery/v3/ads.proto",
    "envoy/service/discovery/v3/discovery.proto",
    "envoy/service/status/v3/csds.proto",
    "envoy/service/load_stats/v3/lrs.proto",
    // Resources.
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/extensions/clusters/aggregate/v3/cluster.proto",
    // HTTP connection manager and the filters gRPC supports (A27, A33, A41).
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/http/fault/v3/fault.proto",
    "envoy/extensions/filters/http/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/stateful_session/v3/stateful_session.proto",
    // TLS (A29).
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    // Load-balancing policies for `Cluster.load_balancing_policy` (A52).
    "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
    "envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto",
    "envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto",
    "envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto",
    "envoy/extensions/load_balancing_policies/pick_first/v3/pick_first.proto",
    "envoy/extensions/load_balancing_policies/random/v3/random.proto",
    "envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto",
    "envoy/extensions/load_balancing_policies/client_side_weighted_round_robin/v3/client_side_weighted_round_robin.proto",
];

/// Include directories inside the crate's `proto/` tree.
const INCLUDES: &[&str] = &[
    "data-plane-api",
    "xds",
    "protoc-gen-validate",
    "googleapis",
    "cel-spec",
    "opentelemetry-proto",
    "client_model",
];

/// Finds the `proto/` directory of the `envoy-types` package that cargo resolved for this
/// workspace (`cargo metadata`; cargo downloads the package if needed).
pub fn proto_root() -> io::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(crate::workspace_root())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let manifest = packages
        .iter()
        .find(|p| p["name"] == SOURCE_CRATE)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| {
            io::Error::other("envoy-types is not in the workspace's dependency graph")
        })?;
    Ok(Path::new(manifest)
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("proto"))
}

/// Generates the Rust modules into `out_dir` (which is emptied first). Returns the file count.
pub fn generate(out_dir: &Path) -> io::Result<usize> {
    let proto = proto_root()?;
    let includes: Vec<PathBuf> = INCLUDES.iter().map(|i| proto.join(i)).collect();
    let fds = protox::compile(ROOTS, &includes).map_err(|e| io::Error::other(e.to_string()))?;

    let tmp = out_dir.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let mut config = prost_build::Config::new();
    config
        .out_dir(&tmp)
        // Envoy and istiod identify resources by `type.googleapis.com/<full name>`.
        .enable_type_names()
        .type_name_domain(["."], "type.googleapis.com")
        .include_file("mod.rs")
        // Proto comments are not Rust doc comments (their examples break rustdoc); the .proto
        // files are the documentation.
        .disable_comments(["."])
        .bytes(["."])
        // Map fields iterate in key order, so encoding is deterministic (the core's
        // byte-for-byte contract) and no random-state HashMap enters the core.
        .btree_map(["."]);
    config.compile_fds(fds)?;

    // Deterministic output: a header on every file, and nothing else changes between runs.
    let mut count = 0;
    let mut names: Vec<PathBuf> = fs::read_dir(&tmp)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for path in names {
        let body = fs::read_to_string(&path)?;
        let header = "// @generated by `cargo xtask codegen` from the envoy-types crate's .proto tree.\n// Do not edit by hand.\n";
        fs::write(&path, format!("{header}{body}"))?;
        count += 1;
    }
    let _ = fs::remove_dir_all(out_dir);
    fs::rename(&tmp, out_dir)?;
    Ok(count)
}
