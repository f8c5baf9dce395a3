//! The data plane's vocabulary and per-cluster state: what a pick returns, what the driver must
//! do, how an RPC fails and why. [`Mesh`](crate::mesh::Mesh) composes it with the xDS client.

pub mod cluster;
pub mod load;
pub mod subchannel;

use core::fmt;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::ids::{CallId, SubchannelId};
use crate::resource::cluster::ClusterConfig;
use crate::time::Instant;
use crate::xds::XdsEvent;

/// gRPC status codes the data plane produces (numeric, as on the wire).
pub mod code {
    /// OK.
    pub const OK: u32 = 0;
    /// CANCELLED.
    pub const CANCELLED: u32 = 1;
    /// UNKNOWN.
    pub const UNKNOWN: u32 = 2;
    /// DEADLINE_EXCEEDED.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// RESOURCE_EXHAUSTED.
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    /// INTERNAL.
    pub const INTERNAL: u32 = 13;
    /// UNAVAILABLE.
    pub const UNAVAILABLE: u32 = 14;
}

/// Connectivity of a subchannel, as the driver reports it (gRPC connectivity semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectivity {
    /// No connection and none being made.
    Idle,
    /// Connecting.
    Connecting,
    /// Connected and usable.
    Ready,
    /// The last attempt failed; the core schedules a reconnect after backoff.
    TransientFailure,
}

/// Where a failed RPC's status came from (so users can tell a mesh decision from a server
/// answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureSource {
    /// The control plane: the listener or cluster does not exist or was rejected.
    ControlPlane,
    /// No route matched, or the route's action cannot be served (gRFC A28).
    Routing,
    /// No healthy or reachable endpoint.
    NoHealthyEndpoint,
    /// The cluster's circuit breaker (gRFC A32).
    CircuitBreaker,
    /// Retries were wanted but retry throttling refused them (gRFC A6).
    RetryBudget,
    /// The deadline expired (gRFC A31).
    Deadline,
    /// `drop_overloads` (gRFC A27).
    Drop,
    /// Fault injection (gRFC A33).
    Fault,
    /// The server (or the transport) answered with this status.
    Application,
    /// The application cancelled the RPC.
    Cancelled,
}

impl fmt::Display for FailureSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureSource::ControlPlane => "control plane",
            FailureSource::Routing => "routing",
            FailureSource::NoHealthyEndpoint => "no healthy endpoint",
            FailureSource::CircuitBreaker => "circuit breaker",
            FailureSource::RetryBudget => "retry budget",
            FailureSource::Deadline => "deadline",
            FailureSource::Drop => "drop",
            FailureSource::Fault => "fault injection",
            FailureSource::Application => "application",
            FailureSource::Cancelled => "cancelled",
        })
    }
}

/// How an RPC failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    /// gRPC status code.
    pub code: u32,
    /// Status message.
    pub message: String,
    /// Who decided.
    pub source: FailureSource,
}

impl CallError {
    /// An error.
    pub fn new(code: u32, source: FailureSource, message: impl Into<String>) -> Self {
        CallError {
            code,
            message: message.into(),
            source,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {} ({}): {}", self.code, self.source, self.message)
    }
}

impl std::error::Error for CallError {}

/// Where to send one attempt of an RPC.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// The connection to use.
    pub subchannel: SubchannelId,
    /// The endpoint's address.
    pub address: SocketAddr,
    /// The cluster (its name, and its TLS settings for the driver).
    pub cluster: Arc<ClusterConfig>,
    /// Attempt number, 1 for the first.
    pub attempt: u32,
    /// When the whole RPC must end (gRFC A31); the driver sends `grpc-timeout` from it.
    pub deadline: Option<Instant>,
}

/// The answer to "where does this RPC go".
#[derive(Clone, Debug, PartialEq)]
pub enum Pick {
    /// Send the attempt now.
    Send(Route),
    /// Hold the RPC: configuration or a connection is not ready yet, or a fault delay runs.
    /// The core emits [`Output::Picked`] later.
    Queue,
    /// Fail the RPC (terminal).
    Fail(CallError),
    /// Dropped by `drop_overloads` (terminal; UNAVAILABLE).
    Drop(CallError),
}

/// How one attempt ended, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallOutcome<'a> {
    /// gRPC status code (0 = OK).
    pub code: u32,
    /// Status message.
    pub message: &'a str,
    /// The `grpc-retry-pushback-ms` trailer, if any (gRFC A6).
    pub pushback: Option<&'a str>,
    /// The attempt never reached the server application: the stream was refused
    /// (`REFUSED_STREAM`) or fell after a GOAWAY's last stream id. It is retried transparently
    /// on a fresh pick without counting against `num_retries` (gRFC A6).
    pub refused: bool,
}

impl<'a> CallOutcome<'a> {
    /// A successful attempt.
    pub fn ok() -> Self {
        CallOutcome {
            code: code::OK,
            message: "",
            pushback: None,
            refused: false,
        }
    }

    /// A failed attempt with `code`.
    pub fn status(code: u32, message: &'a str) -> Self {
        CallOutcome {
            code,
            message,
            pushback: None,
            refused: false,
        }
    }

    /// A refused stream (GOAWAY / REFUSED_STREAM).
    pub fn refused() -> Self {
        CallOutcome {
            code: code::UNAVAILABLE,
            message: "stream refused",
            pushback: None,
            refused: true,
        }
    }
}

/// Something the driver must do, or something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open an ADS stream to the control plane.
    AdsOpen(crate::ids::AdsStreamId),
    /// Send these bytes on the ADS stream.
    AdsSend(crate::ids::AdsStreamId, bytes::Bytes),
    /// Close the ADS stream.
    AdsClose(crate::ids::AdsStreamId),
    /// Open a connection to `address` (TLS per `cluster` when it says so), then report with
    /// `handle_subchannel_state`.
    Connect {
        /// The subchannel.
        subchannel: SubchannelId,
        /// Where to.
        address: SocketAddr,
        /// The cluster that needs it (for transport security settings).
        cluster: Arc<ClusterConfig>,
    },
    /// Close the connection; nothing uses the endpoint any more.
    Disconnect {
        /// The subchannel.
        subchannel: SubchannelId,
    },
    /// A queued RPC (or a retry) has its answer.
    Picked {
        /// The call.
        call: CallId,
        /// Where it goes now.
        pick: Pick,
    },
    /// The call is over. Emitted exactly once per started call. If an attempt is still in
    /// flight (deadline expiry), the driver cancels it.
    CallEnded {
        /// The call.
        call: CallId,
        /// Its result.
        result: Result<(), CallError>,
    },
    /// An xDS client event.
    Xds(XdsEvent),
    /// A data-plane event.
    Event(PlaneEvent),
}

/// What happened in the data plane (for logs, metrics and tests).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PlaneEvent {
    /// Outlier detection ejected an endpoint.
    Ejected {
        /// Cluster.
        cluster: String,
        /// Endpoint.
        address: SocketAddr,
    },
    /// Outlier detection returned an endpoint.
    Unejected {
        /// Cluster.
        cluster: String,
        /// Endpoint.
        address: SocketAddr,
    },
    /// A new configuration snapshot took effect.
    SnapshotApplied {
        /// Its generation.
        generation: u64,
    },
    /// A retry attempt was scheduled.
    RetryScheduled {
        /// The call.
        call: CallId,
        /// The attempt it will be.
        attempt: u32,
        /// After this delay.
        delay: Duration,
    },
}
