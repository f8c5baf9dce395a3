//! Fuzz target: see `skiff_sim::fuzz::mesh_scenario`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    skiff_sim::fuzz::mesh_scenario(data);
});
