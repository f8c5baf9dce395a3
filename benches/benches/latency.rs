//! End-to-end latency and cost of skiff against a direct tonic call and a two-sidecar chain.
//!
//! `cargo bench -p skiff-benches --bench latency [-- --quick]`; see `benches/LATENCY.md`.
//! The implementation lives in `benches/src/latency/` and is compiled into this bench target
//! only (its dependencies are dev-dependencies; the `skiff-benches` library stays lean).

#[path = "../src/latency/mod.rs"]
mod latency;

fn main() {
    latency::main();
}
