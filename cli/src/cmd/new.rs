//! `skiff new NAME`: scaffold a gRPC service on skiff-tokio that builds and runs as generated.
//!
//! The project has a `.proto` compiled by `build.rs` (protox + tonic-prost-build: no `protoc`),
//! an xDS-enabled server and a mesh client (`src/bin/`), a `mesh.yaml` for
//! `skiff control-plane`, and Kubernetes manifests using Istio's proxyless `grpc-agent`
//! injection template. Templates live in `cli/templates/new/`.

use std::path::{Path, PathBuf};

use super::CliError;

/// `skiff new` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service name (lowercase letters, digits and `-`, starting with a letter); also the
    /// package, binary and Kubernetes names.
    pub name: String,
    /// Where to create the project (default: `./NAME`). Must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Use a local skiff checkout for the skiff-tokio dependency (path dependency) instead of
    /// the git repository.
    #[arg(long, value_name = "SKIFF_CHECKOUT")]
    pub skiff_path: Option<PathBuf>,
}

/// `(path in the project, template text)`.
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/new/Cargo.toml.tmpl"),
    ),
    ("build.rs", include_str!("../../templates/new/build.rs")),
    (
        "proto/greeter.proto",
        include_str!("../../templates/new/proto/greeter.proto"),
    ),
    ("src/lib.rs", include_str!("../../templates/new/src/lib.rs")),
    (
        "src/bin/server.rs",
        include_str!("../../templates/new/src/bin/server.rs"),
    ),
    (
        "src/bin/client.rs",
        include_str!("../../templates/new/src/bin/client.rs"),
    ),
    ("mesh.yaml", include_str!("../../templates/new/mesh.yaml")),
    (
        "k8s/service.yaml",
        include_str!("../../templates/new/k8s/service.yaml"),
    ),
    ("README.md", include_str!("../../templates/new/README.md")),
];

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 63
}

fn render(template: &str, name: &str, skiff_dep: &str) -> String {
    template
        .replace("{{skiff_dep}}", skiff_dep)
        .replace("{{crate}}", &name.replace('-', "_"))
        .replace("{{name}}", name)
}

fn skiff_dependency(skiff_path: Option<&Path>) -> Result<String, CliError> {
    match skiff_path {
        None => Ok(r#"skiff-tokio = { git = "https://github.com/skiff-mesh/skiff" }"#.to_string()),
        Some(p) => {
            let crate_dir = p.join("runtime-tokio");
            if !crate_dir.join("Cargo.toml").is_file() {
                return Err(format!(
                    "--skiff-path {}: not a skiff checkout (no runtime-tokio/Cargo.toml)",
                    p.display()
                )
                .into());
            }
            let abs = crate_dir.canonicalize()?;
            // TOML basic strings: escape backslashes and quotes.
            let s = abs
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            Ok(format!(r#"skiff-tokio = {{ path = "{s}" }}"#))
        }
    }
}

/// Runs `skiff new`.
pub fn run(args: Args) -> Result<(), CliError> {
    if !valid_name(&args.name) {
        return Err(format!(
            "{:?} is not a valid service name: use lowercase letters, digits and '-', starting with a letter",
            args.name
        )
        .into());
    }
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        return Err(format!("{} exists and is not empty", dir.display()).into());
    }
    let dep = skiff_dependency(args.skiff_path.as_deref())?;
    for (path, template) in FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, render(template, &args.name, &dep))
            .map_err(|e| format!("writing {}: {e}", target.display()))?;
    }
    println!("created {} ({} files)", dir.display(), FILES.len());
    println!();
    println!("  cd {}", dir.display());
    println!("  cargo build");
    println!("  skiff control-plane --config mesh.yaml --listen 127.0.0.1:15010 &");
    println!(
        "  cargo run --bin {0}-server -- --xds-server 127.0.0.1:15010 127.0.0.1:50051 &",
        args.name
    );
    println!(
        "  cargo run --bin {0}-client -- --xds-server 127.0.0.1:15010 5",
        args.name
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("greeter") && valid_name("my-svc2"));
        for bad in ["", "Greeter", "1svc", "my_svc", "svc-", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn rendering_fills_every_placeholder() {
        let dep = r#"skiff-tokio = { path = "/x" }"#;
        for (path, t) in FILES {
            let out = render(t, "my-svc", dep);
            assert!(!out.contains("{{"), "{path} keeps a placeholder");
        }
        let cargo = render(FILES[0].1, "my-svc", dep);
        assert!(cargo.contains(r#"name = "my-svc""#) && cargo.contains(dep));
        let server = render(FILES[4].1, "my-svc", dep);
        assert!(server.contains("use my_svc::"));
    }
}
