//! The gRPC wire format, sans-IO.

pub mod codec;
pub mod metadata;
pub mod status;
pub mod timeout;
