//! The ways the same echo server is reached. Adding a variant = a new arm here, a way to build
//! its transport in `client.rs`, and (if it needs infrastructure) a start step in `run.rs`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// Plain tonic client -> server: the floor.
    Direct,
    /// tonic `EchoClient` over skiff's channel (xDS route + balancer, embedded control plane).
    Skiff,
    /// Plain tonic client -> nghttpx -> HAProxy -> server: Istio's two sidecars.
    Sidecar2,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Direct, Variant::Skiff, Variant::Sidecar2];

    pub fn label(self) -> &'static str {
        match self {
            Variant::Direct => "D",
            Variant::Skiff => "P",
            Variant::Sidecar2 => "S2",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Variant::Direct => "direct: tonic client -> tonic server",
            Variant::Skiff => {
                "skiff: tonic client over skiff's channel (xDS route + balancer) -> server"
            }
            Variant::Sidecar2 => {
                "sidecars: tonic client -> nghttpx -> HAProxy -> server (h2c, 1 worker each)"
            }
        }
    }

    pub fn parse(s: &str) -> Option<Variant> {
        match s.trim().to_ascii_uppercase().as_str() {
            "D" | "DIRECT" => Some(Variant::Direct),
            "P" | "SKIFF" | "PROXYLESS" => Some(Variant::Skiff),
            "S2" | "SIDECAR" | "SIDECARS" => Some(Variant::Sidecar2),
            _ => None,
        }
    }

    /// SVG stroke colour.
    pub fn colour(self) -> &'static str {
        match self {
            Variant::Direct => "#1f77b4",
            Variant::Skiff => "#2ca02c",
            Variant::Sidecar2 => "#d62728",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
