//! Validated resources: skiff's own model of xDS configuration.
//!
//! Each wire type is turned into a model type by validation. Unsupported *values* are rejected
//! with a precise reason (that text becomes the NACK's `error_detail`, gRFC A46); unsupported
//! *fields* are recorded as ignored and shown in the config dump.

pub mod endpoint;
pub mod lb_policy;
