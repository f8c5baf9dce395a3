//! # skiff-core: the sans-IO heart of skiff
//!
//! skiff-core turns xDS responses and RPC events into routing decisions and outbound bytes,
//! with no IO of its own: it never reads a clock, opens a socket, spawns, sleeps, reads the
//! environment or files, or draws OS randomness. Time comes in as an argument
//! ([`time::Instant`]); randomness comes from one [`rng::Seed`]. The same inputs give the same
//! outputs, byte for byte, which is what makes the core fuzzable, simulatable (`skiff-sim`) and
//! embeddable in any event loop.
//!
//! ## The run loop
//!
//! A driver (skiff-tokio, skiff-smol, skiff-glommio, or your own loop) owns one state machine and:
//!
//! 1. waits for an input: bytes from the ADS stream, a connection event, an application command,
//!    or the timer;
//! 2. feeds it in with a `handle_*` method, passing `now`;
//! 3. drains every output with `poll_*` until it returns `None` (bytes to send, connections to
//!    open, events);
//! 4. re-arms its single timer from `poll_timeout` and goes back to 1.
//!
//! Methods come in three categories: getters (`&self`, no side effects), inputs (`handle_*`,
//! never IO) and outputs (`poll_*`, drained by the driver).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable
    )
)]

pub mod balancer;
pub mod ids;
pub mod resource;
pub mod rng;
pub mod time;
