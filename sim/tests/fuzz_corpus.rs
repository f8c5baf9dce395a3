//! Replays every committed fuzz corpus file through its harness (no fuzzer needed).

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        harness(&data);
        n += 1;
    }
    n
}

#[test]
fn ads_response_corpus() {
    assert!(replay("ads_response", skiff_sim::fuzz::ads_response) >= 4);
}

#[test]
fn resource_corpus() {
    assert!(replay("resource", skiff_sim::fuzz::resource) >= 4);
}

#[test]
fn mesh_scenario_corpus() {
    assert!(replay("mesh_scenario", skiff_sim::fuzz::mesh_scenario) >= 2);
}
#[test]
fn bootstrap_corpus() {
    assert!(replay("bootstrap", skiff_sim::fuzz::bootstrap) >= 2);
}
