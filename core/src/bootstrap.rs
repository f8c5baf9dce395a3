//! The gRPC xDS bootstrap file: bytes in, a validated [`Bootstrap`] out.
//!
//! The format is the one every proxyless gRPC implementation reads (gRFC A27), with its later
//! additions: certificate providers (A29), the server listener template (A36), federation
//! authorities and listener name templates (A47), TLS channel credentials (A65), the ordered
//! server list used for fallback (A71) and JWT call credentials (A97). istio-agent's
//! `grpc-agent` template writes exactly this format.
//!
//! The core reads no environment and no files: the runtime adapter reads the file named by
//! `GRPC_XDS_BOOTSTRAP` (or takes the text of `GRPC_XDS_BOOTSTRAP_CONFIG`) and hands the bytes
//! to [`Bootstrap::from_json`]. File paths inside the bootstrap (certificates, keys, JWT tokens)
//! are kept as strings for the adapter to open.
//!
//! Errors name the offending field by its JSON path (`xds_servers[0].server_uri`,
//! `node.id`). Fields skiff does not know are tolerated, as gRPC tolerates them, and listed in
//! [`Bootstrap::ignored_fields`] so a config dump can show them.
#![warn(missing_docs)]

use core::fmt;
use core::time::Duration;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::pb::envoy::config::core::v3 as core_pb;

/// The port used when a server URI names none: gRPC's DNS resolver defaults to 443 (the
/// HTTPS port), and skiff does the same for `host` and `dns:` targets.
pub const DEFAULT_PORT: u16 = 443;

/// The certificate refresh interval when the bootstrap gives none: 600 s (gRFC A65; grpc's
/// `file_watcher` plugin uses the same default).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

/// The client listener template used when the bootstrap has none (gRFC A47): the target's
/// path is the listener name, as before federation.
pub const DEFAULT_CLIENT_LISTENER_TEMPLATE: &str = "%s";

/// `user_agent_name` skiff sends in its xDS `Node`.
pub const USER_AGENT_NAME: &str = "skiff";

/// Client features skiff advertises in `Node.client_features`, the same ones gRPC sends:
/// no overprovisioning factor support (gRFC A27) and resource-in-SotW (xDS protocol docs).
pub const CLIENT_FEATURES: [&str; 2] = [
    "envoy.lb.does_not_support_overprovisioning",
    "xds.config.resource-in-sotw",
];

/// The scheme prefix of new-style (federation) resource names (xRFC TP1, gRFC A47).
const XDSTP: &str = "xdstp:";

/// A parsed, validated bootstrap.
#[derive(Clone, Debug, PartialEq)]
pub struct Bootstrap {
    /// The xDS servers in priority order; never empty after parsing. The first is the
    /// primary, the rest are fallbacks tried in order (gRFC A71).
    pub xds_servers: Vec<XdsServer>,
    /// Who this client is, sent to the control plane.
    pub node: Node,
    /// Federation authorities by name (gRFC A47).
    pub authorities: BTreeMap<String, Authority>,
    /// Template for client listener names when the target has no authority (gRFC A47).
    /// [`DEFAULT_CLIENT_LISTENER_TEMPLATE`] when the bootstrap sets none.
    pub client_default_listener_resource_name_template: String,
    /// Template for an xDS-enabled server's listener name (gRFC A36); `None` means xDS
    /// servers cannot be created.
    pub server_listener_resource_name_template: Option<String>,
    /// Certificate provider instances by name (gRFC A29).
    pub certificate_providers: BTreeMap<String, CertificateProvider>,
    /// JSON paths of what was present but not used: unknown fields (at any depth, e.g.
    /// `node.UserAgentVersionType`), and credential entries of types skiff does not support
    /// (e.g. `xds_servers[0].channel_creds[0]`).
    pub ignored_fields: Vec<String>,
}

/// One xDS server entry.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsServer {
    /// Where the server is.
    pub server_uri: ServerUri,
    /// The first supported entry of `channel_creds`.
    pub channel_creds: ChannelCreds,
    /// Every supported entry of `call_creds`, in order (gRFC A97: all supported ones apply).
    pub call_creds: Vec<CallCreds>,
    /// `server_features`.
    pub server_features: ServerFeatures,
}

/// The address of an xDS server, from the gRPC name syntax (grpc `doc/naming.md`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ServerUri {
    /// `host:port`, `[v6]:port` or a bare `host` (port [`DEFAULT_PORT`]).
    HostPort {
        /// Host name or IP literal (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `dns:[//authority/]host[:port]`: resolve `host` through DNS (port [`DEFAULT_PORT`]
    /// when absent).
    Dns {
        /// The DNS server to ask, when the URI names one.
        authority: Option<String>,
        /// Host name or IP literal (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `unix:path` or `unix:///absolute/path`: a Unix domain socket (istio-agent's
    /// `unix:///etc/istio/proxy/XDS`).
    Unix {
        /// The socket path, absolute or relative to the working directory.
        path: String,
    },
}

/// Transport credentials for the channel to an xDS server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelCreds {
    /// Plaintext h2c (`insecure`).
    Insecure,
    /// TLS, mutual when a certificate is given (`tls`, gRFC A65).
    Tls(FileWatcherConfig),
}

/// Per-call credentials for the xDS stream.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallCreds {
    /// `jwt_token_file` (gRFC A97): send `authorization: Bearer <token>` read from a file.
    JwtTokenFile {
        /// Path of the file holding the JWT.
        jwt_token_file: String,
    },
}

/// `server_features` of an xDS server entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFeatures {
    /// `xds_v3`: the server speaks xDS v3 (gRFC A30; v3 is all skiff speaks).
    pub xds_v3: bool,
    /// `ignore_resource_deletion` (gRFC A53): keep resources the server stops sending.
    pub ignore_resource_deletion: bool,
    /// `trusted_xds_server` (gRFC A81): the server may be trusted with authority rewriting.
    pub trusted_xds_server: bool,
    /// Every other feature string, in order, kept for the config dump.
    pub other: Vec<String>,
}

impl ServerFeatures {
    /// Whether the server entry lists `feature` (known or not).
    pub fn has(&self, feature: &str) -> bool {
        match feature {
            "xds_v3" => self.xds_v3,
            "ignore_resource_deletion" => self.ignore_resource_deletion,
            "trusted_xds_server" => self.trusted_xds_server,
            other => self.other.iter().any(|f| f == other),
        }
    }
}

/// The `node` object: who this client is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// `node.id` (istio: `sidecar~IP~POD.NS~NS.svc.cluster.local`).
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// `node.metadata`, an arbitrary JSON object (istio puts `GENERATOR: "grpc"` here).
    pub metadata: Map<String, Value>,
    /// `node.locality`, when present.
    pub locality: Option<Locality>,
}

/// Where this client runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locality {
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Sub-zone.
    pub sub_zone: String,
}

/// One federation authority (gRFC A47).
#[derive(Clone, Debug, PartialEq)]
pub struct Authority {
    /// Template for client listener names of targets naming this authority. Always starts
    /// with `xdstp://<authority>/`; when the bootstrap sets none it is
    /// `xdstp://<authority>/envoy.config.listener.v3.Listener/%s`.
    pub client_listener_resource_name_template: String,
    /// Servers for this authority; empty means "use the top-level `xds_servers`".
    pub xds_servers: Vec<XdsServer>,
}

/// One certificate provider instance (gRFC A29).
#[derive(Clone, Debug, PartialEq)]
pub struct CertificateProvider {
    /// `plugin_name`.
    pub plugin_name: String,
    /// `config`, typed for plugins skiff knows.
    pub config: CertificateProviderConfig,
}

/// A certificate provider's configuration.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CertificateProviderConfig {
    /// The `file_watcher` plugin.
    FileWatcher(FileWatcherConfig),
    /// A plugin skiff does not know: its `config` as written (`null` when absent). It only
    /// matters if a cluster or listener names this instance, and then that resource fails.
    Other(Value),
}

/// Files to (re)load certificates from: the `file_watcher` plugin config (gRFC A29), which
/// is also the config of `tls` channel credentials (gRFC A65). Empty strings count as unset,
/// as in gRPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWatcherConfig {
    /// PEM certificate chain (this client's identity).
    pub certificate_file: Option<String>,
    /// PEM private key for `certificate_file`.
    pub private_key_file: Option<String>,
    /// PEM trust roots. For `tls` channel creds, unset means the system's roots.
    pub ca_certificate_file: Option<String>,
    /// How often to re-read the files ([`DEFAULT_REFRESH_INTERVAL`] when unset).
    pub refresh_interval: Duration,
}

/// Why a bootstrap was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The bytes are not JSON.
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// A field is missing or has a bad value.
    Field {
        /// JSON path of the field (`xds_servers[0].server_uri`); empty for the document root.
        path: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// A target or resource name names an authority the bootstrap does not list (gRFC A47:
    /// the target is invalid).
    UnknownAuthority {
        /// The authority.
        authority: String,
    },
}

impl BootstrapError {
    fn field(path: impl Into<String>, problem: Problem) -> Self {
        BootstrapError::Field {
            path: path.into(),
            problem,
        }
    }

    /// The JSON path of the offending field, for [`BootstrapError::Field`].
    pub fn path(&self) -> Option<&str> {
        match self {
            BootstrapError::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for BootstrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootstrapError::Json { message, .. } => {
                write!(f, "bootstrap is not valid JSON: {message}")
            }
            BootstrapError::Field { path, problem } if path.is_empty() => {
                write!(f, "bootstrap: {problem}")
            }
            BootstrapError::Field { path, problem } => write!(f, "{path}: {problem}"),
            BootstrapError::UnknownAuthority { authority } => {
                write!(
                    f,
                    "authority {authority:?} is not in the bootstrap's authorities"
                )
            }
        }
    }
}

impl std::error::Error for BootstrapError {}

/// What is wrong with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A required field is absent (or `null`).
    Missing,
    /// The JSON type is wrong.
    WrongType {
        /// What was expected, with an article: "a string", "an object".
        expected: &'static str,
    },
    /// A string or list that must not be empty is.
    Empty,
    /// A server URI with a scheme skiff cannot connect to.
    UnsupportedScheme(String),
    /// A malformed server URI.
    BadUri(String),
    /// No `channel_creds` entry has a type skiff supports.
    NoSupportedCreds {
        /// The types that were listed.
        seen: Vec<String>,
    },
    /// Not a protobuf JSON duration, or out of range.
    BadDuration {
        /// The value as written.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// Any other invalid value.
    Invalid(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => f.write_str("is required"),
            Problem::WrongType { expected } => write!(f, "expected {expected}"),
            Problem::Empty => f.write_str("must not be empty"),
            Problem::UnsupportedScheme(s) => write!(
                f,
                "unsupported scheme {s:?} (skiff connects to host:port, dns: and unix: targets)"
            ),
            Problem::BadUri(why) => f.write_str(why),
            Problem::NoSupportedCreds { seen } => {
                f.write_str("no supported credential type (found ")?;
                if seen.is_empty() {
                    f.write_str("none")?;
                }
                for (i, t) in seen.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t:?}")?;
                }
                f.write_str("; skiff supports \"insecure\" and \"tls\")")
            }
            Problem::BadDuration { value, reason } => write!(
                f,
                "invalid duration {value:?}: {reason} (protobuf JSON form, e.g. \"900s\" or \"0.5s\")"
            ),
            Problem::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Problem {}

type Result<T, E = BootstrapError> = core::result::Result<T, E>;

impl Bootstrap {
    /// Parses and validates a bootstrap from the bytes of its JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Bootstrap> {
        let root: Value = serde_json::from_slice(bytes).map_err(|e| BootstrapError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let mut p = Parser::default();
        p.bootstrap(&root)
    }

    /// The primary xDS server (the first of [`Bootstrap::xds_servers`]).
    pub fn primary_server(&self) -> Option<&XdsServer> {
        self.xds_servers.first()
    }

    /// The listener name an xDS-enabled server listening on `ip_port` subscribes to (gRFC
    /// A36), or `None` when the bootstrap has no `server_listener_resource_name_template`.
    /// Every `%s` becomes `ip_port`, percent-encoded when the template is an `xdstp:` name
    /// (gRFC A47). istio: `xds.istio.io/grpc/lds/inbound/%s` → `…/inbound/10.0.0.1:8080`.
    pub fn server_listener_name(&self, ip_port: &str) -> Option<String> {
        let template = self.server_listener_resource_name_template.as_deref()?;
        Some(expand_template(template, ip_port))
    }

    /// The listener name a client channel for `xds://<target_authority>/<target_path>`
    /// subscribes to (gRFC A47, "xds Resolver Changes").
    ///
    /// One leading `/` of `target_path` is dropped. With an authority (non-empty), that
    /// authority's template is used and the path is percent-encoded; an authority missing
    /// from [`Bootstrap::authorities`] makes the target invalid. Without one,
    /// [`Bootstrap::client_default_listener_resource_name_template`] is used, percent-encoding
    /// the path only when the template is an `xdstp:` name. Encoding keeps the characters
    /// RFC 3986 §3.3 allows in a path (including `/` and `:`).
    pub fn client_listener_name(
        &self,
        target_authority: Option<&str>,
        target_path: &str,
    ) -> Result<String> {
        let path = target_path.strip_prefix('/').unwrap_or(target_path);
        match target_authority.filter(|a| !a.is_empty()) {
            Some(name) => {
                let authority =
                    self.authorities
                        .get(name)
                        .ok_or_else(|| BootstrapError::UnknownAuthority {
                            authority: name.to_string(),
                        })?;
                // Authority templates are always xdstp: names (checked at parse time), so
                // expand_template encodes.
                Ok(expand_template(
                    &authority.client_listener_resource_name_template,
                    path,
                ))
            }
            None => Ok(expand_template(
                &self.client_default_listener_resource_name_template,
                path,
            )),
        }
    }

    /// The servers to ask for `resource_name` (gRFC A47): an `xdstp://AUTHORITY/…` name uses
    /// that authority's servers (the top-level list when it has none); any other name uses
    /// the top-level list. An `xdstp:` name whose authority is not listed is an error.
    pub fn servers_for(&self, resource_name: &str) -> Result<&[XdsServer]> {
        let Some(authority) = xdstp_authority(resource_name) else {
            return Ok(&self.xds_servers);
        };
        let entry =
            self.authorities
                .get(authority)
                .ok_or_else(|| BootstrapError::UnknownAuthority {
                    authority: authority.to_string(),
                })?;
        if entry.xds_servers.is_empty() {
            Ok(&self.xds_servers)
        } else {
            Ok(&entry.xds_servers)
        }
    }
}

impl Node {
    /// The xDS `Node` message skiff sends: the bootstrap's id, cluster, metadata (JSON
    /// numbers become doubles, as in `google.protobuf.Struct`) and locality, plus skiff's
    /// user agent and the client features gRPC advertises ([`CLIENT_FEATURES`]).
    pub fn to_proto(&self) -> core_pb::Node {
        core_pb::Node {
            id: self.id.clone(),
            cluster: self.cluster.clone(),
            metadata: if self.metadata.is_empty() {
                None
            } else {
                Some(json_object_to_struct(&self.metadata))
            },
            locality: self.locality.as_ref().map(|l| core_pb::Locality {
                region: l.region.clone(),
                zone: l.zone.clone(),
                sub_zone: l.sub_zone.clone(),
            }),
            user_agent_name: USER_AGENT_NAME.to_string(),
            user_agent_version_type: Some(core_pb::node::UserAgentVersionType::UserAgentVersion(
                env!("CARGO_PKG_VERSION").to_string(),
            )),
            client_features: CLIENT_FEATURES.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }
}

fn json_object_to_struct(m: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: m
            .iter()
            .map(|(k, v)| (k.clone(), json_to_proto_value(v)))
            .collect(),
    }
}

fn json_to_proto_value(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        Value::Bool(b) => Kind::BoolValue(*b),
        // Struct has only doubles. `as_f64` is `None` only for numbers that cannot be
        // represented at all (serde_json's arbitrary_precision), which become NaN rather
        // than failing the whole node.
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_proto_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(json_object_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The characters an `xdstp:` template's `%s` replacement keeps as they are: those RFC 3986
/// §3.3 allows in a path segment (unreserved, sub-delims, `:`, `@`) plus `/` (gRFC A47).
/// Everything else, including `%` itself and all non-ASCII bytes, is percent-encoded.
const XDSTP_PATH_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn expand_template(template: &str, value: &str) -> String {
    if template.starts_with(XDSTP) {
        let encoded = utf8_percent_encode(value, XDSTP_PATH_ENCODE).to_string();
        template.replace("%s", &encoded)
    } else {
        template.replace("%s", value)
    }
}

/// The authority of an `xdstp://AUTHORITY/...` name; `Some("")` for `xdstp:///...`.
fn xdstp_authority(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("xdstp://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

// ---------------------------------------------------------------------------------------------
// Server URIs
// ---------------------------------------------------------------------------------------------

impl ServerUri {
    /// Parses a server URI in the gRPC name syntax (grpc `doc/naming.md`): `host[:port]`,
    /// `[v6]:port`, `dns:[//authority/]host[:port]`, `unix:path`, `unix:///absolute/path`.
    /// A missing port is [`DEFAULT_PORT`].
    pub fn parse(s: &str) -> Result<ServerUri, Problem> {
        if s.is_empty() {
            return Err(Problem::Empty);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Problem::BadUri(
                "contains whitespace or control characters".into(),
            ));
        }
        // Schemes are case-insensitive (RFC 3986 §3.1).
        if let Some(rest) = strip_prefix_ignore_case(s, "dns:") {
            return parse_dns(rest);
        }
        if let Some(rest) = strip_prefix_ignore_case(s, "unix:") {
            return parse_unix(rest);
        }
        if s.eq_ignore_ascii_case("dns") || s.eq_ignore_ascii_case("unix") {
            // A host by that name would print as `dns:443`, which reads back as a scheme.
            return Err(Problem::BadUri(format!(
                "{s:?} is a scheme name, not a host (expected \"dns:///host:port\" or \"unix:///path\")"
            )));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(if is_scheme(scheme) {
                Problem::UnsupportedScheme(scheme.to_string())
            } else {
                Problem::BadUri(format!("invalid URI scheme {scheme:?}"))
            });
        }
        // `localhost:8080` is a host and a port; `http:foo` or `ipv4:1.2.3.4:80` is a scheme
        // skiff does not support; `fe80::1` is an IPv6 literal missing its brackets.
        if !s.starts_with('[')
            && let Some((before, after)) = s.split_once(':')
            && (after.is_empty() || !after.bytes().all(|b| b.is_ascii_digit()))
        {
            if s.parse::<Ipv6Addr>().is_ok() {
                return Err(Problem::BadUri(format!(
                    "IPv6 address must be in brackets: \"[{s}]:port\""
                )));
            }
            if is_scheme(before) && !after.is_empty() {
                return Err(Problem::UnsupportedScheme(before.to_string()));
            }
        }
        let (host, port) = parse_host_port(s)?;
        Ok(ServerUri::HostPort { host, port })
    }

    /// The port to connect to, `None` for Unix sockets.
    pub fn port(&self) -> Option<u16> {
        match self {
            ServerUri::HostPort { port, .. } | ServerUri::Dns { port, .. } => Some(*port),
            ServerUri::Unix { .. } => None,
        }
    }
}

impl core::str::FromStr for ServerUri {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        ServerUri::parse(s)
    }
}

/// Writes `host:port`, bracketing IPv6 literals.
fn write_host_port(f: &mut fmt::Formatter<'_>, host: &str, port: u16) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]:{port}")
    } else {
        write!(f, "{host}:{port}")
    }
}

impl fmt::Display for ServerUri {
    /// The canonical form, which [`ServerUri::parse`] reads back to the same value: ports
    /// always written, `dns:///` with the slashes, `unix:///abs` for absolute paths.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerUri::HostPort { host, port } => write_host_port(f, host, *port),
            ServerUri::Dns {
                authority,
                host,
                port,
            } => {
                write!(f, "dns://{}/", authority.as_deref().unwrap_or(""))?;
                write_host_port(f, host, *port)
            }
            ServerUri::Unix { path } if path.starts_with('/') => write!(f, "unix://{path}"),
            ServerUri::Unix { path } => write!(f, "unix:{path}"),
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// RFC 3986 scheme: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn parse_dns(rest: &str) -> Result<ServerUri, Problem> {
    let (authority, host_port) = match rest.strip_prefix("//") {
        Some(after) => {
            let Some((authority, host_port)) = after.split_once('/') else {
                return Err(Problem::BadUri(
                    "dns URI has no host (expected \"dns:///host:port\")".into(),
                ));
            };
            if authority.is_empty() {
                (None, host_port)
            } else {
                if !authority.bytes().all(is_authority_byte) {
                    return Err(Problem::BadUri(format!(
                        "invalid DNS server authority {authority:?}"
                    )));
                }
                (Some(authority.to_string()), host_port)
            }
        }
        None => (None, rest),
    };
    if host_port.is_empty() {
        return Err(Problem::BadUri(
            "dns URI has no host (expected \"dns:///host:port\")".into(),
        ));
    }
    let (host, port) = parse_host_port(host_port)?;
    Ok(ServerUri::Dns {
        authority,
        host,
        port,
    })
}

fn parse_unix(rest: &str) -> Result<ServerUri, Problem> {
    let path = match rest.strip_prefix("//") {
        // `unix://` must be followed by an absolute path: the authority is always empty.
        Some(after) if after.starts_with('/') => after,
        Some(_) => {
            return Err(Problem::BadUri(
                "unix URIs take no authority (expected \"unix:///absolute/path\" or \"unix:relative/path\")"
                    .into(),
            ));
        }
        None => rest,
    };
    if path.is_empty() {
        return Err(Problem::BadUri("unix URI has an empty path".into()));
    }
    Ok(ServerUri::Unix {
        path: path.to_string(),
    })
}

/// `host[:port]` or `[v6][:port]`.
fn parse_host_port(s: &str) -> Result<(String, u16), Problem> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(Problem::BadUri(format!("unclosed '[' in {s:?}")));
        };
        // A zone id (`fe80::1%eth0`) is allowed after the address.
        let addr = inside.split_once('%').map_or(inside, |(a, _)| a);
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(Problem::BadUri(format!("invalid IPv6 address {inside:?}")));
        }
        let port = match after {
            "" => DEFAULT_PORT,
            _ => match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None => {
                    return Err(Problem::BadUri(format!(
                        "unexpected {after:?} after the IPv6 address"
                    )));
                }
            },
        };
        return Ok((inside.to_string(), port));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, parse_port(p)?),
        None => (s, DEFAULT_PORT),
    };
    if host.is_empty() {
        return Err(Problem::BadUri("empty host".into()));
    }
    if let Some(bad) = host.chars().find(|&c| !is_host_char(c)) {
        return Err(Problem::BadUri(format!(
            "invalid character {bad:?} in host {host:?}"
        )));
    }
    Ok((host.to_string(), port))
}

fn parse_port(p: &str) -> Result<u16, Problem> {
    if p.is_empty() {
        return Err(Problem::BadUri("empty port after ':'".into()));
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadUri(format!("invalid port {p:?}")));
    }
    match p.parse::<u16>() {
        Ok(0) => Err(Problem::BadUri("port 0 cannot be connected to".into())),
        Ok(port) => Ok(port),
        Err(_) => Err(Problem::BadUri(format!("port {p:?} is out of range"))),
    }
}

/// RFC 3986 `reg-name` characters (unreserved, sub-delims, pct-encoded), ASCII only: DNS
/// names reach the wire as ASCII (punycode), and `/ ? # @ [ ] :` would change the URI's
/// structure.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=%".contains(c)
}

/// Characters allowed in a DNS server authority (`host[:port]`, `[v6]:port`).
fn is_authority_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b)
}

// ---------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------

/// The largest protobuf `Duration`: 10,000 years in seconds.
const MAX_DURATION_SECS: u64 = 315_576_000_000;

/// Parses the protobuf JSON form of a `google.protobuf.Duration`: seconds with up to nine
/// fractional digits and an `s` suffix (`"900s"`, `"0.5s"`, `"1.000340012s"`). Negative
/// durations are rejected: every bootstrap duration is an interval.
fn parse_json_duration(s: &str) -> Result<Duration, &'static str> {
    if s.starts_with('-') {
        return Err("must not be negative");
    }
    let Some(num) = s.strip_suffix('s') else {
        return Err("missing the 's' suffix");
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (num, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected decimal seconds");
    }
    // Leading zeros are harmless; 20 significant digits already overflow u64.
    let significant = int.trim_start_matches('0');
    if significant.len() > 12 {
        return Err("out of range");
    }
    let secs: u64 = if significant.is_empty() {
        0
    } else {
        significant
            .parse()
            .map_err(|_| "expected decimal seconds")?
    };
    if secs > MAX_DURATION_SECS {
        return Err("out of range");
    }
    let nanos = match frac {
        None => 0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err("expected 1 to 9 fractional digits");
            }
            let mut n: u32 = 0;
            for b in f.bytes().chain(core::iter::repeat(b'0')).take(9) {
                n = n * 10 + u32::from(b - b'0');
            }
            n
        }
    };
    if secs == MAX_DURATION_SECS && nanos > 0 {
        return Err("out of range");
    }
    Ok(Duration::new(secs, nanos))
}

// ---------------------------------------------------------------------------------------------
// The walker
// ---------------------------------------------------------------------------------------------

/// Walks the JSON tree, tracking JSON paths for errors and collecting ignored fields.
#[derive(Default)]
struct Parser {
    ignored: Vec<String>,
}

/// `outer.key`, or `key` at the root.
fn join(outer: &str, key: &str) -> String {
    if outer.is_empty() {
        key.to_string()
    } else {
        format!("{outer}.{key}")
    }
}

fn expect_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        BootstrapError::field(
            path,
            Problem::WrongType {
                expected: "an object",
            },
        )
    })
}

fn expect_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| {
        BootstrapError::field(
            path,
            Problem::WrongType {
                expected: "an array",
            },
        )
    })
}

fn expect_string<'a>(v: &'a Value, path: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| {
        BootstrapError::field(
            path,
            Problem::WrongType {
                expected: "a string",
            },
        )
    })
}

/// A present, non-null field. `null` counts as absent, as in protobuf JSON.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn opt_string(obj: &Map<String, Value>, key: &str, outer: &str) -> Result<Option<String>> {
    get(obj, key)
        .map(|v| expect_string(v, &join(outer, key)).map(str::to_string))
        .transpose()
}

/// An optional file path; `""` counts as unset, as in gRPC.
fn opt_path(obj: &Map<String, Value>, key: &str, outer: &str) -> Result<Option<String>> {
    Ok(opt_string(obj, key, outer)?.filter(|s| !s.is_empty()))
}

fn req_string(obj: &Map<String, Value>, key: &str, outer: &str) -> Result<String> {
    let path = join(outer, key);
    match get(obj, key) {
        None => Err(BootstrapError::field(path, Problem::Missing)),
        Some(v) => expect_string(v, &path).map(str::to_string),
    }
}

fn non_empty(s: String, path: &str) -> Result<String> {
    if s.is_empty() {
        Err(BootstrapError::field(path, Problem::Empty))
    } else {
        Ok(s)
    }
}

impl Parser {
    /// Records every key of `obj` not in `known` as ignored.
    fn note_unknown(&mut self, obj: &Map<String, Value>, known: &[&str], outer: &str) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                self.ignored.push(join(outer, k));
            }
        }
    }

    fn bootstrap(&mut self, root: &Value) -> Result<Bootstrap> {
        let obj = expect_object(root, "")?;
        self.note_unknown(
            obj,
            &[
                "xds_servers",
                "node",
                "authorities",
                "client_default_listener_resource_name_template",
                "server_listener_resource_name_template",
                "certificate_providers",
            ],
            "",
        );

        let xds_servers = match get(obj, "xds_servers") {
            None => return Err(BootstrapError::field("xds_servers", Problem::Missing)),
            Some(v) => self.servers(v, "xds_servers")?,
        };
        if xds_servers.is_empty() {
            return Err(BootstrapError::field("xds_servers", Problem::Empty));
        }

        let node = match get(obj, "node") {
            None => Node::default(),
            Some(v) => self.node(v, "node")?,
        };

        let mut authorities = BTreeMap::new();
        if let Some(v) = get(obj, "authorities") {
            for (name, entry) in expect_object(v, "authorities")? {
                let path = format!("authorities[{name:?}]");
                let authority = self.authority(name, entry, &path)?;
                authorities.insert(name.clone(), authority);
            }
        }

        let client_default_listener_resource_name_template =
            opt_string(obj, "client_default_listener_resource_name_template", "")?
                .unwrap_or_else(|| DEFAULT_CLIENT_LISTENER_TEMPLATE.to_string());
        check_xdstp_template(
            &client_default_listener_resource_name_template,
            &authorities,
            "client_default_listener_resource_name_template",
        )?;

        let server_listener_resource_name_template =
            opt_string(obj, "server_listener_resource_name_template", "")?;
        if let Some(t) = &server_listener_resource_name_template {
            check_xdstp_template(t, &authorities, "server_listener_resource_name_template")?;
        }

        let mut certificate_providers = BTreeMap::new();
        if let Some(v) = get(obj, "certificate_providers") {
            for (name, entry) in expect_object(v, "certificate_providers")? {
                let path = format!("certificate_providers[{name:?}]");
                let provider = self.certificate_provider(entry, &path)?;
                certificate_providers.insert(name.clone(), provider);
            }
        }

        Ok(Bootstrap {
            xds_servers,
            node,
            authorities,
            client_default_listener_resource_name_template,
            server_listener_resource_name_template,
            certificate_providers,
            ignored_fields: core::mem::take(&mut self.ignored),
        })
    }

    fn servers(&mut self, v: &Value, path: &str) -> Result<Vec<XdsServer>> {
        expect_array(v, path)?
            .iter()
            .enumerate()
            .map(|(i, s)| self.server(s, &format!("{path}[{i}]")))
            .collect()
    }

    fn server(&mut self, v: &Value, path: &str) -> Result<XdsServer> {
        let obj = expect_object(v, path)?;
        self.note_unknown(
            obj,
            &[
                "server_uri",
                "channel_creds",
                "call_creds",
                "server_features",
            ],
            path,
        );

        let uri_path = join(path, "server_uri");
        let uri = req_string(obj, "server_uri", path)?;
        let server_uri = ServerUri::parse(&uri).map_err(|p| BootstrapError::field(&uri_path, p))?;

        let creds_path = join(path, "channel_creds");
        let channel_creds = match get(obj, "channel_creds") {
            None => return Err(BootstrapError::field(creds_path, Problem::Missing)),
            Some(v) => self.channel_creds(v, &creds_path)?,
        };

        let mut call_creds = Vec::new();
        if let Some(v) = get(obj, "call_creds") {
            let cc_path = join(path, "call_creds");
            for (i, entry) in expect_array(v, &cc_path)?.iter().enumerate() {
                if let Some(c) = self.call_creds(entry, &format!("{cc_path}[{i}]"))? {
                    call_creds.push(c);
                }
            }
        }

        let mut server_features = ServerFeatures::default();
        if let Some(v) = get(obj, "server_features") {
            let sf_path = join(path, "server_features");
            for (i, f) in expect_array(v, &sf_path)?.iter().enumerate() {
                match expect_string(f, &format!("{sf_path}[{i}]"))? {
                    "xds_v3" => server_features.xds_v3 = true,
                    "ignore_resource_deletion" => server_features.ignore_resource_deletion = true,
                    "trusted_xds_server" => server_features.trusted_xds_server = true,
                    other => server_features.other.push(other.to_string()),
                }
            }
        }

        Ok(XdsServer {
            server_uri,
            channel_creds,
            call_creds,
            server_features,
        })
    }

    /// gRFC A27: the first entry of a supported type wins; later entries are not looked at.
    fn channel_creds(&mut self, v: &Value, path: &str) -> Result<ChannelCreds> {
        let mut seen = Vec::new();
        for (i, entry) in expect_array(v, path)?.iter().enumerate() {
            let entry_path = format!("{path}[{i}]");
            let obj = expect_object(entry, &entry_path)?;
            let kind = req_string(obj, "type", &entry_path)?;
            let config_path = join(&entry_path, "config");
            match kind.as_str() {
                "insecure" => {
                    self.note_unknown(obj, &["type", "config"], &entry_path);
                    // insecure takes no config; a non-empty one is recorded as ignored.
                    if let Some(c) = get(obj, "config")
                        && c.as_object().is_none_or(|m| !m.is_empty())
                    {
                        self.ignored.push(config_path);
                    }
                    return Ok(ChannelCreds::Insecure);
                }
                "tls" => {
                    self.note_unknown(obj, &["type", "config"], &entry_path);
                    let files = match get(obj, "config") {
                        None => FileWatcherConfig {
                            certificate_file: None,
                            private_key_file: None,
                            ca_certificate_file: None,
                            refresh_interval: DEFAULT_REFRESH_INTERVAL,
                        },
                        Some(c) => self.file_watcher(c, &config_path, false)?,
                    };
                    return Ok(ChannelCreds::Tls(files));
                }
                // `google_default` (and `xds`, `alts`...) are real gRPC types that need
                // machinery skiff does not have: skipped, like unknown types (gRFC A27).
                _ => {
                    self.ignored.push(entry_path);
                    seen.push(kind);
                }
            }
        }
        Err(BootstrapError::field(
            path,
            Problem::NoSupportedCreds { seen },
        ))
    }

    /// gRFC A97: unknown types are skipped; a known type with a bad config is an error.
    fn call_creds(&mut self, v: &Value, path: &str) -> Result<Option<CallCreds>> {
        let obj = expect_object(v, path)?;
        let kind = req_string(obj, "type", path)?;
        if kind != "jwt_token_file" {
            self.ignored.push(path.to_string());
            return Ok(None);
        }
        self.note_unknown(obj, &["type", "config"], path);
        let config_path = join(path, "config");
        let config = match get(obj, "config") {
            None => return Err(BootstrapError::field(config_path, Problem::Missing)),
            Some(c) => expect_object(c, &config_path)?,
        };
        self.note_unknown(config, &["jwt_token_file"], &config_path);
        let file = req_string(config, "jwt_token_file", &config_path)?;
        let file = non_empty(file, &join(&config_path, "jwt_token_file"))?;
        Ok(Some(CallCreds::JwtTokenFile {
            jwt_token_file: file,
        }))
    }

    fn node(&mut self, v: &Value, path: &str) -> Result<Node> {
        let obj = expect_object(v, path)?;
        self.note_unknown(obj, &["id", "cluster", "metadata", "locality"], path);
        let id = opt_string(obj, "id", path)?.unwrap_or_default();
        let cluster = opt_string(obj, "cluster", path)?.unwrap_or_default();
        let metadata = match get(obj, "metadata") {
            None => Map::new(),
            Some(m) => expect_object(m, &join(path, "metadata"))?.clone(),
        };
        let locality = match get(obj, "locality") {
            None => None,
            Some(l) => {
                let lpath = join(path, "locality");
                let lobj = expect_object(l, &lpath)?;
                self.note_unknown(lobj, &["region", "zone", "sub_zone"], &lpath);
                Some(Locality {
                    region: opt_string(lobj, "region", &lpath)?.unwrap_or_default(),
                    zone: opt_string(lobj, "zone", &lpath)?.unwrap_or_default(),
                    sub_zone: opt_string(lobj, "sub_zone", &lpath)?.unwrap_or_default(),
                })
            }
        };
        Ok(Node {
            id,
            cluster,
            metadata,
            locality,
        })
    }

    fn authority(&mut self, name: &str, v: &Value, path: &str) -> Result<Authority> {
        let obj = expect_object(v, path)?;
        self.note_unknown(
            obj,
            &["client_listener_resource_name_template", "xds_servers"],
            path,
        );
        // gRFC A47: the template must start with "xdstp://<authority_name>/"; anything else
        // is a bootstrap error. Absent, it defaults to the Listener type path.
        let prefix = format!("xdstp://{name}/");
        let template = match opt_string(obj, "client_listener_resource_name_template", path)? {
            None => format!("{prefix}envoy.config.listener.v3.Listener/%s"),
            Some(t) if t.starts_with(&prefix) => t,
            Some(t) => {
                return Err(BootstrapError::field(
                    join(path, "client_listener_resource_name_template"),
                    Problem::Invalid(format!("{t:?} does not start with {prefix:?}")),
                ));
            }
        };
        let xds_servers = match get(obj, "xds_servers") {
            None => Vec::new(),
            Some(v) => self.servers(v, &join(path, "xds_servers"))?,
        };
        Ok(Authority {
            client_listener_resource_name_template: template,
            xds_servers,
        })
    }

    fn certificate_provider(&mut self, v: &Value, path: &str) -> Result<CertificateProvider> {
        let obj = expect_object(v, path)?;
        self.note_unknown(obj, &["plugin_name", "config"], path);
        let plugin_name = req_string(obj, "plugin_name", path)?;
        let config_path = join(path, "config");
        let config = match plugin_name.as_str() {
            "file_watcher" => match get(obj, "config") {
                None => return Err(BootstrapError::field(config_path, Problem::Missing)),
                Some(c) => CertificateProviderConfig::FileWatcher(self.file_watcher(
                    c,
                    &config_path,
                    true,
                )?),
            },
            _ => {
                CertificateProviderConfig::Other(obj.get("config").cloned().unwrap_or(Value::Null))
            }
        };
        Ok(CertificateProvider {
            plugin_name,
            config,
        })
    }

    /// The `file_watcher` config (gRFC A29), also used by `tls` channel creds (gRFC A65).
    /// `need_a_file`: the plugin needs a certificate or a CA file; TLS creds need neither.
    fn file_watcher(
        &mut self,
        v: &Value,
        path: &str,
        need_a_file: bool,
    ) -> Result<FileWatcherConfig> {
        let obj = expect_object(v, path)?;
        self.note_unknown(
            obj,
            &[
                "certificate_file",
                "private_key_file",
                "ca_certificate_file",
                "refresh_interval",
            ],
            path,
        );
        let certificate_file = opt_path(obj, "certificate_file", path)?;
        let private_key_file = opt_path(obj, "private_key_file", path)?;
        let ca_certificate_file = opt_path(obj, "ca_certificate_file", path)?;
        match (&certificate_file, &private_key_file) {
            (Some(_), None) => {
                return Err(BootstrapError::field(
                    join(path, "private_key_file"),
                    Problem::Invalid("is required when certificate_file is set".into()),
                ));
            }
            (None, Some(_)) => {
                return Err(BootstrapError::field(
                    join(path, "certificate_file"),
                    Problem::Invalid("is required when private_key_file is set".into()),
                ));
            }
            _ => {}
        }
        if need_a_file && certificate_file.is_none() && ca_certificate_file.is_none() {
            return Err(BootstrapError::field(
                path,
                Problem::Invalid(
                    "needs certificate_file (with private_key_file) or ca_certificate_file".into(),
                ),
            ));
        }
        let refresh_interval = match get(obj, "refresh_interval") {
            None => DEFAULT_REFRESH_INTERVAL,
            Some(r) => {
                let rpath = join(path, "refresh_interval");
                let s = expect_string(r, &rpath)?;
                let bad = |reason| {
                    BootstrapError::field(
                        &rpath,
                        Problem::BadDuration {
                            value: s.to_string(),
                            reason,
                        },
                    )
                };
                let d = parse_json_duration(s).map_err(bad)?;
                // A zero interval would mean re-reading the files in a busy loop.
                if d.is_zero() {
                    return Err(bad("must be greater than zero"));
                }
                d
            }
        };
        Ok(FileWatcherConfig {
            certificate_file,
            private_key_file,
            ca_certificate_file,
            refresh_interval,
        })
    }
}

/// gRFC A47: an `xdstp:` template's authority must be listed in `authorities`. gRPC finds
/// out when the channel or server is created; skiff says so when the bootstrap is loaded.
fn check_xdstp_template(
    template: &str,
    authorities: &BTreeMap<String, Authority>,
    path: &str,
) -> Result<()> {
    if !template.starts_with(XDSTP) {
        return Ok(());
    }
    let Some(authority) = xdstp_authority(template) else {
        return Err(BootstrapError::field(
            path,
            Problem::Invalid(format!("{template:?} is not an xdstp:// name")),
        ));
    };
    if !authorities.contains_key(authority) {
        return Err(BootstrapError::field(
            path,
            Problem::Invalid(format!(
                "authority {authority:?} of {template:?} is not in authorities"
            )),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_json_duration(s).unwrap();
        assert_eq!(ok("900s"), Duration::from_secs(900));
        assert_eq!(ok("0.5s"), Duration::from_millis(500));
        assert_eq!(ok("1.000340012s"), Duration::new(1, 340_012));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("000010s"), Duration::from_secs(10));
        assert_eq!(ok("315576000000s"), Duration::from_secs(MAX_DURATION_SECS));
        for bad in [
            "",
            "s",
            "900",
            "-1s",
            "1.s",
            ".5s",
            "1.0000000001s",
            "1e3s",
            " 1s",
            "1 s",
            "+1s",
            "315576000000.5s",
            "315576000001s",
            "99999999999999999999999s",
            "1h",
            "0x10s",
        ] {
            assert!(parse_json_duration(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn server_uris() {
        let p = |s: &str| ServerUri::parse(s).unwrap();
        assert_eq!(
            p("localhost:8080"),
            ServerUri::HostPort {
                host: "localhost".into(),
                port: 8080
            }
        );
        assert_eq!(
            p("istiod.istio-system.svc"),
            ServerUri::HostPort {
                host: "istiod.istio-system.svc".into(),
                port: DEFAULT_PORT
            }
        );
        assert_eq!(
            p("[::1]:15010"),
            ServerUri::HostPort {
                host: "::1".into(),
                port: 15010
            }
        );
        assert_eq!(
            p("[fe80::1]"),
            ServerUri::HostPort {
                host: "fe80::1".into(),
                port: DEFAULT_PORT
            }
        );
        assert_eq!(
            p("dns:///istiod.istio-system.svc:15010"),
            ServerUri::Dns {
                authority: None,
                host: "istiod.istio-system.svc".into(),
                port: 15010
            }
        );
        assert_eq!(
            p("dns://8.8.8.8:53/xds.example.com"),
            ServerUri::Dns {
                authority: Some("8.8.8.8:53".into()),
                host: "xds.example.com".into(),
                port: DEFAULT_PORT
            }
        );
        assert_eq!(
            p("dns:xds.example.com:99"),
            ServerUri::Dns {
                authority: None,
                host: "xds.example.com".into(),
                port: 99
            }
        );
        assert_eq!(
            p("unix:///etc/istio/proxy/XDS"),
            ServerUri::Unix {
                path: "/etc/istio/proxy/XDS".into()
            }
        );
        assert_eq!(
            p("unix:/etc/istio/proxy/XDS"),
            ServerUri::Unix {
                path: "/etc/istio/proxy/XDS".into()
            }
        );
        assert_eq!(
            p("unix:run/xds.sock"),
            ServerUri::Unix {
                path: "run/xds.sock".into()
            }
        );
    }

    #[test]
    fn server_uri_display_is_canonical() {
        for (input, canonical) in [
            ("localhost:8080", "localhost:8080"),
            ("localhost", "localhost:443"),
            ("[::1]:15010", "[::1]:15010"),
            ("dns:///istiod:15010", "dns:///istiod:15010"),
            ("dns:istiod", "dns:///istiod:443"),
            ("dns://1.1.1.1/istiod:1", "dns://1.1.1.1/istiod:1"),
            ("dns:///[::1]:5", "dns:///[::1]:5"),
            ("unix:/etc/istio/XDS", "unix:///etc/istio/XDS"),
            ("unix:///etc/istio/XDS", "unix:///etc/istio/XDS"),
            ("unix:rel/sock", "unix:rel/sock"),
            ("DNS:///istiod:1", "dns:///istiod:1"),
            ("Unix:/x", "unix:///x"),
        ] {
            let uri = ServerUri::parse(input).unwrap();
            assert_eq!(uri.to_string(), canonical, "{input}");
            assert_eq!(ServerUri::parse(canonical).unwrap(), uri, "{input}");
        }
    }

    #[test]
    fn bad_server_uris() {
        let scheme = |s: &str| match ServerUri::parse(s) {
            Err(Problem::UnsupportedScheme(x)) => x,
            other => panic!("{s:?}: {other:?}"),
        };
        assert_eq!(scheme("http://istiod:15010"), "http");
        assert_eq!(scheme("xds:///foo"), "xds");
        assert_eq!(scheme("http:foo"), "http");
        assert_eq!(scheme("ipv4:1.2.3.4:80"), "ipv4");
        assert_eq!(scheme("unix-abstract:sock"), "unix-abstract");
        for bad in [
            "",
            "host:",
            "host:0",
            "host:65536",
            "host:80x",
            ":80",
            "fe80::1",
            "[::1",
            "[zz]:80",
            "[::1]x",
            "dns:",
            "dns:///",
            "dns://x",
            "unix:",
            "unix://host/path",
            "unix://",
            "a b:80",
            "hôst:80",
            "user@host:80",
            "host/path:80",
            "dns:///host:port",
            "dns",
            "UNIX",
        ] {
            assert!(ServerUri::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn expand_encodes_only_xdstp() {
        assert_eq!(expand_template("%s", "a b/c?d"), "a b/c?d");
        assert_eq!(
            expand_template("xdstp://auth/L/%s", "a b/c?d:1@[x]%é"),
            "xdstp://auth/L/a%20b/c%3Fd:1@%5Bx%5D%25%C3%A9"
        );
        assert_eq!(expand_template("xdstp://a/%s/%s", "x"), "xdstp://a/x/x");
        assert_eq!(expand_template("fixed", "x"), "fixed");
    }

    #[test]
    fn xdstp_authorities() {
        assert_eq!(xdstp_authority("xdstp://a.b/L/x"), Some("a.b"));
        assert_eq!(xdstp_authority("xdstp:///L/x"), Some(""));
        assert_eq!(xdstp_authority("xdstp://only"), Some("only"));
        assert_eq!(xdstp_authority("foo"), None);
    }
}
