//! The committed `core/src/pb/` must be exactly what `cargo xtask codegen` produces.

use std::fs;
use std::path::Path;

fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).expect("read file"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn committed_protobuf_code_matches_regeneration() {
    let root = xtask::workspace_root();
    let tmp = std::env::temp_dir().join(format!("skiff-codegen-check-{}", std::process::id()));
    let out = tmp.join("pb");
    xtask::codegen::generate(&out).expect("codegen runs");
    let fresh = files(&out);
    let committed = files(&root.join("core/src/pb"));
    let _ = fs::remove_dir_all(&tmp);
    let fresh_names: Vec<&String> = fresh.iter().map(|(n, _)| n).collect();
    let committed_names: Vec<&String> = committed.iter().map(|(n, _)| n).collect();
    assert_eq!(
        fresh_names, committed_names,
        "generated file set drifted: run `cargo xtask codegen`"
    );
    for ((name, a), (_, b)) in fresh.iter().zip(committed.iter()) {
        assert!(
            a == b,
            "{name} drifted from codegen: run `cargo xtask codegen`"
        );
    }
}
