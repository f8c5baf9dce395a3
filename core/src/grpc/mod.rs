//! The gRPC wire format, sans-IO.

pub mod codec;
