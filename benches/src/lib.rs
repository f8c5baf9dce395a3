//! Shared helpers for skiff benchmarks.
