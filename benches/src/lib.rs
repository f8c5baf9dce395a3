//! Shared helpers for skiff benchmarks: istiod-shaped fixtures, the realistic routing table,
//! large xDS updates and the result file.
//!
//! The benchmarks themselves are in `benches/core.rs`; see `README.md` for what each one
//! measures and how.

pub mod fixtures;
pub mod report;
pub mod table;
pub mod xds;
