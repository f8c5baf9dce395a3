//! skiff-sim: a deterministic world for skiff tests.
