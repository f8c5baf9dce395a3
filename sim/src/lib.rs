//! # skiff-sim: a deterministic world for testing skiff
//!
//! A [`World`] holds skiff's sans-IO xDS client, a simulated control plane ([`SimServer`]) that
//! speaks real protobuf bytes (SotW and Delta) and can misbehave on command, and a link with
//! latency between them. A fake clock jumps straight to the next event, so a scenario that spans
//! minutes of simulated time runs in milliseconds, and the same seed replays the same run.
//!
//! The same world can put skiff's own embedded control plane ([`PlaneServer`]) on the other end
//! of the link, so the server side of ADS is tested against the real client.
//!
//! Invariants are checked after every step; a failure panics with the seed, and setting
//! `SKIFF_SIM_SEED` to it replays the run exactly.
//!
//! Scenario tests live in `sim/tests/`, one file per behaviour.

pub mod build;
pub mod fuzz;
pub mod mesh_world;
pub mod plane;
pub mod scenario;
pub mod server;
pub mod world;

pub use mesh_world::{Backend, Behavior, MeshWorld};
pub use plane::PlaneServer;
pub use server::{AdsPeer, SeenRequest, SimServer};
pub use world::{World, test_node};
