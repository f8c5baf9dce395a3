//! Fuzz target: see `skiff_sim::fuzz::bootstrap`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    skiff_sim::fuzz::bootstrap(data);
});
