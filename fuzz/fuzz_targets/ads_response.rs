//! Fuzz target: see `skiff_sim::fuzz::ads_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    skiff_sim::fuzz::ads_response(data);
});
