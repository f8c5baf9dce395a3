//! Random sequences of configuration changes, RPCs, backend failures, control-plane resets and
//! time: no panic, no busy loop, no pick of a removed or ejected endpoint, circuit-breaker
//! limits never exceeded, every started call ends exactly once (checked by the world), and the
//! same seed replays the same run.

use proptest::prelude::*;
use skiff_sim::scenario;

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

    #[test]
    fn random_scenarios_keep_the_invariants(seed in 0u64..1_000, bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let actions = scenario::decode(&bytes);
        let _ = scenario::run(seed, &actions);
    }
}

#[test]
fn same_seed_same_run() {
    let bytes: Vec<u8> = (0..600u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let actions = scenario::decode(&bytes);
    let a = scenario::run(7, &actions);
    let b = scenario::run(7, &actions);
    assert_eq!(a.attempts, b.attempts);
    assert_eq!(a.results, b.results);
    assert!(!a.attempts.is_empty());
}
