//! Mesh configuration: a documented subset of Istio's API, read from Kubernetes-style YAML.
//!
//! Input is one or more files of `---`-separated documents, each
//! `apiVersion / kind / metadata{name, namespace, annotations} / spec`. `metadata.namespace`
//! defaults to `default`. Errors name the file and line of the offending field (or, where the
//! field cannot be pinned down, its document):
//!
//! ```text
//! mesh.yaml:14: VirtualService reviews: spec.http[0].route: route weight sum 90 != 100
//! ```
//!
//! Fields outside the subset are accepted and reported as warnings ([`ConfigWarning`], "not
//! supported by skiff; ignored"), except inside `PeerAuthentication` and `AuthorizationPolicy`,
//! where ignoring a field would change who gets in: there they are errors. Loading never panics
//! and never half-applies: [`parse`] returns either a complete, validated [`MeshConfig`] or every
//! error found. Keeping the last good configuration on error is the caller's job.
//!
//! # The subset
//!
//! Durations are Go-style (`10s`, `1.5s`, `250ms`, `1m30s`). Short host names in
//! `VirtualService`/`DestinationRule` (`reviews`) expand to `reviews.<namespace>.svc.cluster.local`
//! as in Istio.
//!
//! **`ServiceEntry`** (`networking.istio.io/v1`, `v1beta1`, `v1alpha3`)
//! - `hosts[]`: fully qualified names, no wildcards. Each host becomes a service.
//! - `addresses[]`: optional VIPs (IPs); used as the client listener address and as extra
//!   virtual-host domains, as istiod does.
//! - `ports[]`: `{number, name, protocol, targetPort}`. `protocol` is `GRPC`, `HTTP2`, `HTTP` or
//!   `GRPC-WEB`; when absent it is inferred from the name prefix (`grpc-`, `http2-`, `http-`) and
//!   otherwise taken as `GRPC` (with a warning): proxyless gRPC only speaks HTTP/2.
//! - `resolution`: `STATIC` (the default here; `DNS`/`NONE` are rejected).
//! - `endpoints[]`: `{address (IP), ports{portName: number}, labels, locality
//!   ("region/zone/subzone"), weight, serviceAccount}`.
//! - `workloadSelector.labels`: instead of `endpoints`, select `WorkloadEntry`s of the same
//!   namespace whose labels include these.
//! - `subjectAltNames[]`: extra SANs clients verify under `ISTIO_MUTUAL`.
//! - Annotation **`skiff.dev/interfaces`** (skiff extension, DESIGN §7): comma-separated gRPC
//!   service names served by this service, e.g. `"helloworld.Greeter, grpc.health.v1.Health"`.
//!   Each becomes an interface Listener named after it (target `xds:///helloworld.Greeter`)
//!   that routes exactly like the service's `host:port` listener. The interface maps to the first
//!   host; with several ports, name the port: `helloworld.Greeter=7000`.
//!
//! **`WorkloadEntry`**: `spec{address, labels, locality, weight, serviceAccount, ports{name: number}}`.
//!
//! **`VirtualService`**: `hosts[]`; `http[]` with `name`, `match[]` (`name`, `uri` and
//! `headers.<name>` as `{exact | prefix | regex}`; an empty matcher means "present"),
//! `route[]` (`destination{host, subset, port.number}`, `weight`; weights must sum to 100 when
//! there is more than one destination), `timeout`, `retries{attempts, perTryTimeout, retryOn}`,
//! `fault{delay{percentage.value, fixedDelay}, abort{percentage.value, httpStatus | grpcStatus}}`
//! (`grpcStatus` is a code name such as `UNAVAILABLE`). Routes apply to every port of the host.
//!
//! **`DestinationRule`**: `host`, `subsets[]{name, labels, trafficPolicy}`,
//! `trafficPolicy{loadBalancer{simple: ROUND_ROBIN | LEAST_REQUEST | RANDOM | PASSTHROUGH} or
//! {consistentHash{httpHeaderName, minimumRingSize | ringHash.minimumRingSize}},
//! connectionPool.http.http2MaxRequests, outlierDetection{consecutive5xxErrors, interval,
//! baseEjectionTime, maxEjectionPercent}, tls.mode: DISABLE | ISTIO_MUTUAL}`. A subset's policy
//! replaces the top-level one field by field (loadBalancer, connectionPool, outlierDetection, tls),
//! as in Istio. `RANDOM` and `PASSTHROUGH` are accepted but, like istiod's proxyless generator,
//! emitted as the default round robin (with a warning).
//!
//! **`PeerAuthentication`** (`security.istio.io/v1`, `v1beta1`): `selector.matchLabels`,
//! `mtls.mode: STRICT | PERMISSIVE | DISABLE | UNSET`. Precedence as in Istio: workload selector,
//! then namespace-wide, then mesh-wide (namespace `istio-system`). gRPC has no PERMISSIVE, so
//! PERMISSIVE serves plaintext unless the workload carries `security.istio.io/tlsMode: istio`
//! (then mTLS), exactly as istiod does for proxyless servers.
//!
//! **`AuthorizationPolicy`**: `selector.matchLabels`, `action: ALLOW | DENY` (default ALLOW),
//! `rules[]{from[].source.principals[], to[].operation.paths[]}`. Values use Istio's `*`
//! prefix/suffix wildcards. Selection as for PeerAuthentication.
pub mod model;
mod parse;
mod validate;
pub(crate) use parse::valid_interface_name as parse_valid_interface_name;
pub use validate::endpoints_of;
pub(crate) mod yaml;

use core::fmt;

pub use model::*;

/// What kind of problem a [`ConfigError`] reports.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The text is not valid YAML.
    Syntax,
    /// A field has the wrong type or an invalid value.
    Invalid,
    /// A required field is missing.
    Missing,
    /// A reference to something that is not declared (host, subset, port).
    Reference,
    /// Two documents declare the same thing.
    Duplicate,
    /// Valid Istio, but outside the subset skiff implements.
    Unsupported,
}

/// One problem in the mesh configuration, with the file and line it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as given to [`parse`].
    pub file: String,
    /// 1-based line of the offending field, or of its document when the field's own line cannot
    /// be found (flow-style YAML).
    pub line: usize,
    /// What kind of problem.
    pub kind: ConfigErrorKind,
    /// The message, starting with the document (`VirtualService reviews: ...`).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one load, in file and line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            fmt::Display::fmt(e, f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Something accepted but not acted on (an unsupported field, a value istiod also drops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// File name as given to [`parse`].
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The message.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: {}", self.file, self.line, self.message)
    }
}

/// A successfully loaded configuration and what was ignored while loading it.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The validated configuration.
    pub config: MeshConfig,
    /// Fields and values accepted but not acted on.
    pub warnings: Vec<ConfigWarning>,
}

/// Parses and validates the given files (`(name, contents)`, in order) into one configuration.
///
/// Returns every error found, sorted by file and line; a configuration with any error is not
/// returned at all.
pub fn parse(files: &[(&str, &str)]) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut config = MeshConfig::default();
    for (file, text) in files {
        parse::parse_file(file, text, &mut config, &mut errors, &mut warnings);
    }
    if errors.is_empty() {
        validate::validate(&config, &mut errors, &mut warnings);
    }
    if errors.is_empty() {
        warnings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        Ok(Loaded { config, warnings })
    } else {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        Err(ConfigErrors(errors))
    }
}

/// Parses one file; see [`parse`].
pub fn parse_str(file: &str, text: &str) -> Result<Loaded, ConfigErrors> {
    parse(&[(file, text)])
}

impl MeshConfig {
    /// Checks cross-document consistency (references, duplicates, weights). [`parse`] already
    /// does this; call it when a configuration was built in code.
    pub fn validate(&self) -> Result<Vec<ConfigWarning>, ConfigErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        validate::validate(self, &mut errors, &mut warnings);
        if errors.is_empty() {
            Ok(warnings)
        } else {
            errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            Err(ConfigErrors(errors))
        }
    }
}
