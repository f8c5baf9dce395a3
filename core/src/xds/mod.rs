//! The xDS client: one ADS stream, SotW or Delta, per-type subscriptions, ACK/NACK (gRFC A46),
//! does-not-exist timers (A57), deletion handling (A53), reconnect with backoff, and the
//! LDS → RDS → CDS → EDS cascade.

pub mod backoff;
pub mod cascade;
pub mod client;
pub mod dump;
pub mod resource_type;
pub mod snapshot;

pub use client::{
    Entry, Protocol, Rejection, ResourceStatus, XdsClient, XdsClientConfig, XdsEvent, XdsOutput,
};
pub use resource_type::ResourceType;
