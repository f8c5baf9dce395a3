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
    /// The same as `Skiff` on skiff-smol (the client under `smol::block_on`).
    SkiffSmol,
    /// The same as `Skiff` on skiff-glommio (one executor: xDS shard + data plane, io_uring).
    SkiffGlommio,
}

impl Variant {
    pub const ALL: [Variant; 5] = [
        Variant::Direct,
        Variant::Skiff,
        Variant::Sidecar2,
        Variant::SkiffSmol,
        Variant::SkiffGlommio,
    ];

    /// A skiff client (needs the control plane).
    pub fn is_skiff(self) -> bool {
        matches!(
            self,
            Variant::Skiff | Variant::SkiffSmol | Variant::SkiffGlommio
        )
    }

    /// Whether the open-loop regime is measured (its load generator runs on tokio; the smol and
    /// glommio clients are measured in service time, the runtime comparison of the issue).
    pub fn open_loop(self) -> bool {
        !matches!(self, Variant::SkiffSmol | Variant::SkiffGlommio)
    }

    pub fn label(self) -> &'static str {
        match self {
            Variant::Direct => "D",
            Variant::Skiff => "P",
            Variant::Sidecar2 => "S2",
            Variant::SkiffSmol => "Psmol",
            Variant::SkiffGlommio => "Pglommio",
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
            Variant::SkiffSmol => "skiff on smol: the P client on skiff-smol (no tokio runtime)",
            Variant::SkiffGlommio => {
                "skiff on glommio: the P client on skiff-glommio (io_uring, one executor)"
            }
        }
    }

    pub fn parse(s: &str) -> Option<Variant> {
        match s.trim().to_ascii_uppercase().as_str() {
            "D" | "DIRECT" => Some(Variant::Direct),
            "P" | "SKIFF" | "PROXYLESS" => Some(Variant::Skiff),
            "S2" | "SIDECAR" | "SIDECARS" => Some(Variant::Sidecar2),
            "PSMOL" | "SMOL" => Some(Variant::SkiffSmol),
            "PGLOMMIO" | "GLOMMIO" => Some(Variant::SkiffGlommio),
            _ => None,
        }
    }

    /// SVG stroke colour.
    pub fn colour(self) -> &'static str {
        match self {
            Variant::Direct => "#1f77b4",
            Variant::Skiff => "#2ca02c",
            Variant::Sidecar2 => "#d62728",
            Variant::SkiffSmol => "#9467bd",
            Variant::SkiffGlommio => "#ff7f0e",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
