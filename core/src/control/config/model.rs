//! The configuration model: what [`super::parse`] produces and translation consumes.
//!
//! Every item remembers where it was declared ([`Source`]), and the parts that cross-document
//! validation talks about remember their own line, so a reference error points at the field.

use core::time::Duration;
use std::collections::BTreeMap;

/// Where something was declared: file and 1-based line.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    /// File name as given to the parser.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl Source {
    /// The same file at another line.
    pub fn at(&self, line: usize) -> Source {
        Source {
            file: self.file.clone(),
            line,
        }
    }
}

/// `metadata` of a document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (default `default`).
    pub namespace: String,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// Where the document starts.
    pub source: Source,
}

/// The whole mesh configuration, in declaration order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshConfig {
    /// `ServiceEntry` documents.
    pub service_entries: Vec<ServiceEntry>,
    /// `WorkloadEntry` documents.
    pub workload_entries: Vec<WorkloadEntry>,
    /// `VirtualService` documents.
    pub virtual_services: Vec<VirtualService>,
    /// `DestinationRule` documents.
    pub destination_rules: Vec<DestinationRule>,
    /// `PeerAuthentication` documents.
    pub peer_authentications: Vec<PeerAuthentication>,
    /// `AuthorizationPolicy` documents.
    pub authorization_policies: Vec<AuthorizationPolicy>,
}

/// Application protocol of a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// `GRPC`.
    Grpc,
    /// `HTTP2`.
    Http2,
    /// `HTTP` (gRPC needs HTTP/2; accepted because Istio users label gRPC ports HTTP too).
    Http,
    /// `GRPC-WEB`.
    GrpcWeb,
}

/// A `ServiceEntry` port.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    /// `number`: the port clients dial.
    pub number: u32,
    /// `name`.
    pub name: String,
    /// `protocol` (or inferred).
    pub protocol: Protocol,
    /// `targetPort`: the port endpoints listen on when they do not say (default `number`).
    pub target_port: Option<u32>,
}

/// One endpoint of a service: inline in a `ServiceEntry` or from a selected `WorkloadEntry`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadEndpoint {
    /// IP address.
    pub address: String,
    /// Port name → port number overrides.
    pub ports: BTreeMap<String, u32>,
    /// Labels (subset selection, policy selection).
    pub labels: BTreeMap<String, String>,
    /// `region/zone/subzone`.
    pub locality: Locality,
    /// Load-balancing weight (0 = unset, sent as 1).
    pub weight: u32,
    /// Service account (for SANs under `ISTIO_MUTUAL`).
    pub service_account: Option<String>,
    /// Where declared.
    pub source: Source,
}

/// A locality parsed from `region/zone/subzone`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Locality {
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Sub-zone.
    pub sub_zone: String,
}

/// `ServiceEntry` (resolution `STATIC`).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceEntry {
    /// Metadata.
    pub meta: Meta,
    /// Hosts, each a service.
    pub hosts: Vec<String>,
    /// VIPs.
    pub addresses: Vec<String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// Inline endpoints.
    pub endpoints: Vec<WorkloadEndpoint>,
    /// `workloadSelector.labels`, selecting `WorkloadEntry`s instead of inline endpoints.
    pub workload_selector: Option<BTreeMap<String, String>>,
    /// `subjectAltNames`.
    pub subject_alt_names: Vec<String>,
    /// Interfaces from the `skiff.dev/interfaces` annotation.
    pub interfaces: Vec<InterfaceDecl>,
}

/// One entry of the `skiff.dev/interfaces` annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceDecl {
    /// The gRPC service name, e.g. `helloworld.Greeter`.
    pub name: String,
    /// The service port it is served on (`=7000`), if named.
    pub port: Option<u32>,
    /// Where declared.
    pub source: Source,
}

/// `WorkloadEntry`.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadEntry {
    /// Metadata.
    pub meta: Meta,
    /// The endpoint it describes.
    pub endpoint: WorkloadEndpoint,
}

/// A string matcher (`exact`, `prefix`, `regex`, or none = "present").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringMatch {
    /// `exact`.
    Exact(String),
    /// `prefix`.
    Prefix(String),
    /// `regex` (RE2, validated by the client).
    Regex(String),
    /// Empty matcher: the header must be present.
    Present,
}

/// One `match` entry of an HTTP route.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpMatch {
    /// `name`.
    pub name: String,
    /// `uri`.
    pub uri: Option<StringMatch>,
    /// `headers`, in document order.
    pub headers: Vec<(String, StringMatch)>,
}

/// `destination` of a route.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    /// Host as written.
    pub host: String,
    /// `subset`.
    pub subset: Option<String>,
    /// `port.number`.
    pub port: Option<u32>,
    /// Line of the `destination`.
    pub source: Source,
}

/// One weighted destination.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteDestination {
    /// `destination`.
    pub destination: Destination,
    /// `weight` (0 = unset).
    pub weight: u32,
}

/// `retries`.
#[derive(Clone, Debug, PartialEq)]
pub struct Retries {
    /// `attempts` (0 disables retries).
    pub attempts: u32,
    /// `perTryTimeout`.
    pub per_try_timeout: Option<Duration>,
    /// `retryOn` as written.
    pub retry_on: Option<String>,
}

/// How a fault abort fails the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortStatus {
    /// `httpStatus`.
    Http(u32),
    /// `grpcStatus`, as the numeric code.
    Grpc(u32),
}

/// `fault`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// `delay`: percentage (0–100; `None` when not written: istiod then sends 0 %, from the
    /// deprecated integer `percent`) and fixed delay.
    pub delay: Option<(Option<f64>, Duration)>,
    /// `abort`: percentage (0–100; `None` when not written: istiod then sends no percentage)
    /// and status.
    pub abort: Option<(Option<f64>, AbortStatus)>,
}

/// One `http` entry of a `VirtualService`.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRoute {
    /// `name`.
    pub name: String,
    /// `match` (empty = match everything).
    pub matches: Vec<HttpMatch>,
    /// `route`.
    pub route: Vec<RouteDestination>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `retries`.
    pub retries: Option<Retries>,
    /// `fault`.
    pub fault: Option<Fault>,
    /// Line of the `route:` field (weight errors point here).
    pub route_source: Source,
}

/// `VirtualService`.
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualService {
    /// Metadata.
    pub meta: Meta,
    /// Hosts as written, each with its line.
    pub hosts: Vec<(String, Source)>,
    /// `http`.
    pub http: Vec<HttpRoute>,
}

/// `loadBalancer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadBalancer {
    /// `simple: ROUND_ROBIN`.
    RoundRobin,
    /// `simple: LEAST_REQUEST`.
    LeastRequest,
    /// `simple: RANDOM` (istiod's proxyless generator drops it).
    Random,
    /// `simple: PASSTHROUGH` (likewise dropped).
    Passthrough,
    /// `consistentHash`.
    ConsistentHash {
        /// `httpHeaderName`.
        http_header_name: String,
        /// `minimumRingSize` (or `ringHash.minimumRingSize`).
        minimum_ring_size: Option<u64>,
    },
}

/// `outlierDetection`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutlierDetection {
    /// `consecutive5xxErrors`.
    pub consecutive_5xx_errors: Option<u32>,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `baseEjectionTime`.
    pub base_ejection_time: Option<Duration>,
    /// `maxEjectionPercent`.
    pub max_ejection_percent: Option<u32>,
}

/// `tls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTlsMode {
    /// `DISABLE`.
    Disable,
    /// `ISTIO_MUTUAL`.
    IstioMutual,
}

/// `trafficPolicy`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrafficPolicy {
    /// `loadBalancer`.
    pub load_balancer: Option<LoadBalancer>,
    /// `connectionPool.http.http2MaxRequests`.
    pub http2_max_requests: Option<u32>,
    /// `outlierDetection`.
    pub outlier_detection: Option<OutlierDetection>,
    /// `tls.mode`.
    pub tls: Option<ClientTlsMode>,
}

impl TrafficPolicy {
    /// `self` overridden by `subset`, block by block, as Istio merges subset policies.
    pub fn merged_with(&self, subset: Option<&TrafficPolicy>) -> TrafficPolicy {
        let Some(s) = subset else {
            return self.clone();
        };
        TrafficPolicy {
            load_balancer: s
                .load_balancer
                .clone()
                .or_else(|| self.load_balancer.clone()),
            http2_max_requests: s.http2_max_requests.or(self.http2_max_requests),
            outlier_detection: s
                .outlier_detection
                .clone()
                .or_else(|| self.outlier_detection.clone()),
            tls: s.tls.or(self.tls),
        }
    }
}

/// A `DestinationRule` subset.
#[derive(Clone, Debug, PartialEq)]
pub struct Subset {
    /// `name`.
    pub name: String,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
    /// `trafficPolicy`.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Where declared.
    pub source: Source,
}

/// `DestinationRule`.
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationRule {
    /// Metadata.
    pub meta: Meta,
    /// `host` as written, with its line.
    pub host: (String, Source),
    /// `trafficPolicy`.
    pub traffic_policy: TrafficPolicy,
    /// `subsets`.
    pub subsets: Vec<Subset>,
}

/// `mtls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtlsMode {
    /// `UNSET`: inherit.
    Unset,
    /// `STRICT`.
    Strict,
    /// `PERMISSIVE`.
    Permissive,
    /// `DISABLE`.
    Disable,
}

/// `PeerAuthentication`.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerAuthentication {
    /// Metadata.
    pub meta: Meta,
    /// `selector.matchLabels` (`None` = namespace-wide).
    pub selector: Option<BTreeMap<String, String>>,
    /// `mtls.mode`.
    pub mode: MtlsMode,
}

/// `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthzAction {
    /// `ALLOW`.
    Allow,
    /// `DENY`.
    Deny,
}

/// One `rules` entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthzRule {
    /// `from[].source.principals` (an empty inner list = any source).
    pub from: Vec<Vec<String>>,
    /// `to[].operation.paths` (an empty inner list = any operation).
    pub to: Vec<Vec<String>>,
}

/// `AuthorizationPolicy`.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizationPolicy {
    /// Metadata.
    pub meta: Meta,
    /// `selector.matchLabels` (`None` = namespace-wide).
    pub selector: Option<BTreeMap<String, String>>,
    /// `action`.
    pub action: AuthzAction,
    /// `rules`.
    pub rules: Vec<AuthzRule>,
}

/// The namespace whose selector-less policies apply mesh-wide (Istio's root namespace).
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The annotation declaring the gRPC interfaces a `ServiceEntry` serves (skiff extension).
pub const INTERFACES_ANNOTATION: &str = "skiff.dev/interfaces";

/// Expands a short host the way Istio does for the given namespace: `reviews` →
/// `reviews.<ns>.svc.cluster.local`; names with a dot are taken as written.
pub fn resolve_host(host: &str, namespace: &str) -> String {
    if host.contains('.') {
        host.to_ascii_lowercase()
    } else {
        format!(
            "{}.{namespace}.svc.cluster.local",
            host.to_ascii_lowercase()
        )
    }
}

/// Whether `labels` contain every pair of `selector`.
pub fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
