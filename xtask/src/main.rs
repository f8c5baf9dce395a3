//! Developer tasks for skiff.
//!
//! `cargo xtask codegen` regenerates `core/src/pb/` (the Envoy v3 xDS protobuf types skiff-core
//! uses) from the `.proto` tree that the `envoy-types` crate package ships. The generated Rust is
//! committed, so normal builds need neither `protoc` nor the proto files; `tests/codegen.rs`
//! fails when the committed code drifts from what this task generates.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("codegen") => {
            let root = xtask::workspace_root();
            match xtask::codegen::generate(&root.join("core/src/pb")) {
                Ok(files) => {
                    eprintln!("wrote {files} files to core/src/pb");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("codegen failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: cargo xtask codegen");
            eprintln!("  codegen   regenerate core/src/pb from the envoy-types .proto tree");
            ExitCode::FAILURE
        }
    }
}
