//! Validated TLS configuration (gRFC A29): what an `UpstreamTlsContext` (CDS, client side) or a
//! `DownstreamTlsContext` (LDS, server side) means to skiff.
//!
//! gRPC, and so skiff, takes certificates only from certificate-provider plugin instances named
//! in the bootstrap (`certificate_providers`), never from SDS or inline PEM. Fields that would
//! weaken security if ignored are rejected; harmless ones are recorded as ignored (A29
//! "CommonTlsContext Processing").
//!
//! istiod's proxyless generator sends every certificate-provider reference twice, in the
//! current fields (`tls_certificate_provider_instance`,
//! `default_validation_context.ca_certificate_provider_instance`) and in the deprecated ones
//! older gRPC reads (`tls_certificate_certificate_provider_instance`,
//! `combined_validation_context.validation_context_certificate_provider_instance`). The
//! current field wins when both are set; the deprecated one is used when it is alone.
//!
//! Every path in errors and in [`Ignored`] is relative to the message handed to the function;
//! callers prefix them ([`ValidationError::within`], [`Ignored::note_in`]).

// Reading the deprecated certificate-provider and SAN fields is this module's job: istiod and
// older control planes still send them.
#![allow(deprecated)]

use super::{Ignored, ValidationError};
use crate::pb::envoy::config::core::v3::TransportSocket;
use crate::pb::envoy::config::core::v3::transport_socket::ConfigType;
use crate::pb::envoy::extensions::transport_sockets::tls::v3 as tlspb;
use crate::pb::envoy::r#type::matcher::v3 as matcherpb;

use tlspb::common_tls_context::ValidationContextType;

/// The only transport socket gRPC understands (gRFC A29); anything else is rejected.
pub const TLS_TRANSPORT_SOCKET_NAME: &str = "envoy.transport_sockets.tls";

/// Longest SNI accepted: a DNS name is at most 255 octets (RFC 1035), and grpc-go rejects
/// longer values the same way.
pub const MAX_SNI_LEN: usize = 255;

/// A reference to a certificate-provider plugin instance from the bootstrap
/// (`CertificateProviderPluginInstance`). istiod uses instance `default`, certificate names
/// `default` (identity) and `ROOTCA` (roots).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertInstance {
    /// Key into the bootstrap's `certificate_providers` map. Never empty.
    pub instance_name: String,
    /// Opaque name handed to the plugin (ignored by `file_watcher`).
    pub certificate_name: String,
}

/// How a [`SanMatcher`] compares a SAN entry (Envoy `StringMatcher.match_pattern`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SanPattern {
    /// Equal to the string. Per A29, an exact pattern also matches a wildcard DNS SAN
    /// (`*.example.com`) that covers it; applying that rule is the verifier's job.
    Exact(String),
    /// Starts with the string (never empty).
    Prefix(String),
    /// Ends with the string (never empty).
    Suffix(String),
    /// Contains the string (never empty).
    Contains(String),
    /// Matches the RE2 regular expression (`safe_regex.regex`, never empty). Stored as text:
    /// the syntax is checked where the verifier compiles it, not here.
    SafeRegex(String),
}

/// Which kind of SAN entry a typed matcher applies to (`SubjectAltNameMatcher.san_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SanType {
    /// rfc822Name.
    Email,
    /// dNSName.
    Dns,
    /// uniformResourceIdentifier (SPIFFE IDs are URIs).
    Uri,
    /// iPAddress, compared in canonical text form (A29: RFC 5952 for IPv6).
    IpAddress,
}

/// One SAN check: a peer certificate passes when any of its SAN entries matches any matcher
/// (gRFC A29 "Server Authorization").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanMatcher {
    /// `None` for a `match_subject_alt_names` entry, which applies to DNS, URI, email and IP
    /// SANs alike (A29); `Some` for a `match_typed_subject_alt_names` entry, which applies only
    /// to SANs of that type.
    pub san_type: Option<SanType>,
    /// What to compare.
    pub pattern: SanPattern,
    /// `ignore_case`: compare ASCII case-insensitively (not meaningful for `SafeRegex`).
    pub ignore_case: bool,
}

/// Client-side TLS of a cluster (`UpstreamTlsContext`, gRFC A29 "CDS for Client Side Security").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `sni` (gRFC A101): the server name to send, `None` when empty. At most 255 bytes.
    pub sni: Option<String>,
    /// Where the client's own certificate and key come from; `None` means the client presents
    /// no certificate (TLS, not mTLS).
    pub identity_cert_instance: Option<CertInstance>,
    /// Where the CA roots that verify servers come from. Always present: a client that cannot
    /// verify the server is rejected at validation time (A29).
    pub root_cert_instance: CertInstance,
    /// SAN checks on the server certificate; empty means any certificate the roots accept.
    pub match_subject_alt_names: Vec<SanMatcher>,
}

impl UpstreamTls {
    /// The certificate-provider instances this context needs, so the caller can check them
    /// against the bootstrap (A29: an instance the bootstrap lacks makes the resource invalid).
    pub fn cert_instances(&self) -> impl Iterator<Item = &CertInstance> {
        self.identity_cert_instance
            .iter()
            .chain(core::iter::once(&self.root_cert_instance))
    }
}

/// Server-side TLS of a listener filter chain (`DownstreamTlsContext`, gRFC A29 "LDS for Server
/// Side Security").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownstreamTls {
    /// Where the server's certificate and key come from. Required on servers.
    pub identity_cert_instance: CertInstance,
    /// Where the CA roots that verify client certificates come from. `None` means the server
    /// does not ask for a client certificate (TLS, not mTLS).
    pub root_cert_instance: Option<CertInstance>,
    /// `require_client_certificate`: reject clients without a valid certificate. Only ever
    /// true together with `root_cert_instance`.
    pub require_client_certificate: bool,
}

impl DownstreamTls {
    /// The certificate-provider instances this context needs (see
    /// [`UpstreamTls::cert_instances`]).
    pub fn cert_instances(&self) -> impl Iterator<Item = &CertInstance> {
        core::iter::once(&self.identity_cert_instance).chain(self.root_cert_instance.iter())
    }
}

/// Validates a cluster's `transport_socket`: it must be `envoy.transport_sockets.tls` carrying an
/// `UpstreamTlsContext` (gRFC A29). Paths are relative to the `TransportSocket`.
pub fn validate_upstream_transport_socket(
    ts: &TransportSocket,
    ignored: &mut Ignored,
) -> Result<UpstreamTls, ValidationError> {
    let ctx: tlspb::UpstreamTlsContext = tls_typed_config(ts)?;
    let mut inner = Ignored::default();
    let tls = validate_upstream_tls(&ctx, &mut inner).map_err(|e| e.within("typed_config"))?;
    merge_ignored(ignored, "typed_config", &inner);
    Ok(tls)
}

/// Validates a filter chain's `transport_socket`: it must be `envoy.transport_sockets.tls`
/// carrying a `DownstreamTlsContext` (gRFC A29). Paths are relative to the `TransportSocket`.
pub fn validate_downstream_transport_socket(
    ts: &TransportSocket,
    ignored: &mut Ignored,
) -> Result<DownstreamTls, ValidationError> {
    let ctx: tlspb::DownstreamTlsContext = tls_typed_config(ts)?;
    let mut inner = Ignored::default();
    let tls = validate_downstream_tls(&ctx, &mut inner).map_err(|e| e.within("typed_config"))?;
    merge_ignored(ignored, "typed_config", &inner);
    Ok(tls)
}

/// Copies `inner`'s paths into `outer` under `prefix`.
pub(crate) fn merge_ignored(outer: &mut Ignored, prefix: &str, inner: &Ignored) {
    for f in inner.fields() {
        outer.note_in(prefix, f);
    }
}

fn tls_typed_config<M: prost::Message + prost::Name + Default>(
    ts: &TransportSocket,
) -> Result<M, ValidationError> {
    if ts.name != TLS_TRANSPORT_SOCKET_NAME {
        return Err(ValidationError::new(
            "name",
            format!(
                "unsupported transport socket {:?}: only {TLS_TRANSPORT_SOCKET_NAME:?} is supported (gRFC A29)",
                ts.name
            ),
        ));
    }
    let Some(ConfigType::TypedConfig(any)) = &ts.config_type else {
        return Err(ValidationError::new(
            "typed_config",
            format!("must be set to a {}", M::full_name()),
        ));
    };
    any.to_msg::<M>().map_err(|e| {
        ValidationError::new(
            "typed_config",
            format!("expected a {}: {e}", M::full_name()),
        )
    })
}

/// Validates an `UpstreamTlsContext` (paths relative to it).
pub fn validate_upstream_tls(
    ctx: &tlspb::UpstreamTlsContext,
    ignored: &mut Ignored,
) -> Result<UpstreamTls, ValidationError> {
    let Some(common) = &ctx.common_tls_context else {
        return Err(ValidationError::new(
            "common_tls_context",
            "must be set: it names the certificate providers (gRFC A29)",
        ));
    };
    let mut inner = Ignored::default();
    let c = validate_common(common, Side::Client, &mut inner)
        .map_err(|e| e.within("common_tls_context"))?;
    merge_ignored(ignored, "common_tls_context", &inner);

    // A29: a client must be able to verify the server, so a CA root provider is mandatory.
    let Some(validation) = c.validation else {
        return Err(ValidationError::new(
            "common_tls_context",
            "no validation context: a client needs ca_certificate_provider_instance to verify \
             servers (gRFC A29)",
        ));
    };
    let Some(root) = validation.root else {
        return Err(ValidationError::new(
            format!("common_tls_context.{}", validation.root_field),
            "must be set: a client needs CA roots to verify servers (gRFC A29)",
        ));
    };

    if ctx.sni.len() > MAX_SNI_LEN {
        return Err(ValidationError::new(
            "sni",
            format!(
                "{} bytes is longer than the {MAX_SNI_LEN}-byte limit of a DNS name",
                ctx.sni.len()
            ),
        ));
    }
    let sni = (!ctx.sni.is_empty()).then(|| ctx.sni.clone());

    // A101's automatic SNI and SAN-vs-SNI checks are not implemented; A29 ignores the rest.
    for (name, set) in [
        ("auto_host_sni", ctx.auto_host_sni),
        ("auto_sni_san_validation", ctx.auto_sni_san_validation),
        ("allow_renegotiation", ctx.allow_renegotiation),
        ("max_session_keys", ctx.max_session_keys.is_some()),
        ("enforce_rsa_key_usage", ctx.enforce_rsa_key_usage.is_some()),
    ] {
        if set {
            ignored.note(name);
        }
    }

    Ok(UpstreamTls {
        sni,
        identity_cert_instance: c.identity,
        root_cert_instance: root,
        match_subject_alt_names: validation.sans,
    })
}

/// Validates a `DownstreamTlsContext` (paths relative to it), for server listeners (gRFC A29
/// "LDS for Server Side Security").
pub fn validate_downstream_tls(
    ctx: &tlspb::DownstreamTlsContext,
    ignored: &mut Ignored,
) -> Result<DownstreamTls, ValidationError> {
    // A29: require_sni cannot be honoured (SNI means nothing to a gRPC server) and ignoring a
    // `true` would accept connections the control plane wanted refused.
    if ctx.require_sni == Some(true) {
        return Err(ValidationError::new(
            "require_sni",
            "true is not supported: gRPC servers do not select by SNI (gRFC A29)",
        ));
    }
    // A29: only LENIENT_STAPLING (0) may be ignored safely.
    if ctx.ocsp_staple_policy != 0 {
        return Err(ValidationError::new(
            "ocsp_staple_policy",
            format!(
                "value {} is not supported: only LENIENT_STAPLING (gRFC A29)",
                ctx.ocsp_staple_policy
            ),
        ));
    }
    let Some(common) = &ctx.common_tls_context else {
        return Err(ValidationError::new(
            "common_tls_context",
            "must be set: it names the certificate providers (gRFC A29)",
        ));
    };
    let mut inner = Ignored::default();
    let c = validate_common(common, Side::Server, &mut inner)
        .map_err(|e| e.within("common_tls_context"))?;
    merge_ignored(ignored, "common_tls_context", &inner);

    let Some(identity) = c.identity else {
        return Err(ValidationError::new(
            "common_tls_context.tls_certificate_provider_instance",
            "must be set: a server needs its own certificate (gRFC A29)",
        ));
    };
    let root = match c.validation {
        None => None,
        Some(v) => match v.root {
            Some(r) => Some(r),
            None => {
                return Err(ValidationError::new(
                    format!("common_tls_context.{}", v.root_field),
                    "must be set when a validation context is given: the server needs CA \
                     roots to verify clients (gRFC A29)",
                ));
            }
        },
    };
    let require_client_certificate = ctx.require_client_certificate == Some(true);
    if require_client_certificate && root.is_none() {
        return Err(ValidationError::new(
            "require_client_certificate",
            "true needs a validation context with ca_certificate_provider_instance (gRFC A29)",
        ));
    }

    // A29 "The following fields in an LDS update are ignored".
    for (name, set) in [
        (
            "disable_stateful_session_resumption",
            ctx.disable_stateful_session_resumption,
        ),
        ("session_timeout", ctx.session_timeout.is_some()),
        (
            "session_ticket_keys_type",
            ctx.session_ticket_keys_type.is_some(),
        ),
        (
            "full_scan_certs_on_sni_mismatch",
            ctx.full_scan_certs_on_sni_mismatch.is_some(),
        ),
        ("prefer_client_ciphers", ctx.prefer_client_ciphers),
    ] {
        if set {
            ignored.note(name);
        }
    }

    Ok(DownstreamTls {
        identity_cert_instance: identity,
        root_cert_instance: root,
        require_client_certificate,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// What a `CommonTlsContext` says, before the side-specific requirements are applied.
struct Common {
    identity: Option<CertInstance>,
    /// `None` when no validation context was given at all.
    validation: Option<Validation>,
}

struct Validation {
    root: Option<CertInstance>,
    /// Path (relative to `CommonTlsContext`) where the root provider belongs, for errors.
    root_field: &'static str,
    sans: Vec<SanMatcher>,
}

fn cert_instance(
    field: &str,
    instance_name: &str,
    certificate_name: &str,
) -> Result<CertInstance, ValidationError> {
    if instance_name.is_empty() {
        return Err(ValidationError::new(
            format!("{field}.instance_name"),
            "must name a certificate provider from the bootstrap (gRFC A29)",
        ));
    }
    Ok(CertInstance {
        instance_name: instance_name.to_string(),
        certificate_name: certificate_name.to_string(),
    })
}

fn validate_common(
    ctx: &tlspb::CommonTlsContext,
    side: Side,
    ignored: &mut Ignored,
) -> Result<Common, ValidationError> {
    // A29: ignoring these would weaken the handshake the control plane asked for.
    if ctx.tls_params.is_some() {
        return Err(ValidationError::new(
            "tls_params",
            "not supported: TLS versions and ciphers are not configurable (gRFC A29)",
        ));
    }
    if ctx.custom_handshaker.is_some() {
        return Err(ValidationError::new(
            "custom_handshaker",
            "not supported (gRFC A29)",
        ));
    }

    // Identity: the current field wins; the deprecated one (istiod still sends it) is the
    // fallback.
    let current = ctx
        .tls_certificate_provider_instance
        .as_ref()
        .map(|p| {
            cert_instance(
                "tls_certificate_provider_instance",
                &p.instance_name,
                &p.certificate_name,
            )
        })
        .transpose()?;
    let deprecated = ctx
        .tls_certificate_certificate_provider_instance
        .as_ref()
        .map(|p| {
            cert_instance(
                "tls_certificate_certificate_provider_instance",
                &p.instance_name,
                &p.certificate_name,
            )
        })
        .transpose()?;
    let identity = match (current, deprecated) {
        (Some(c), Some(d)) => {
            if c != d {
                ignored.note("tls_certificate_certificate_provider_instance");
            }
            Some(c)
        }
        (c, d) => c.or(d),
    };

    // A29: other ways to get the identity certificate are unsupported; with no provider
    // instance they would leave the peer without the certificate it was promised.
    for (name, set, what) in [
        (
            "tls_certificates",
            !ctx.tls_certificates.is_empty(),
            "inline certificates are not supported",
        ),
        (
            "tls_certificate_sds_secret_configs",
            !ctx.tls_certificate_sds_secret_configs.is_empty(),
            "SDS is not supported",
        ),
        (
            "tls_certificate_certificate_provider",
            ctx.tls_certificate_certificate_provider.is_some(),
            "inline certificate provider config is not supported",
        ),
    ] {
        if set {
            if identity.is_none() {
                return Err(ValidationError::new(
                    name,
                    format!(
                        "{what}; use tls_certificate_provider_instance with a bootstrap \
                         certificate provider (gRFC A29)"
                    ),
                ));
            }
            ignored.note(name);
        }
    }

    let validation = match &ctx.validation_context_type {
        None => None,
        Some(ValidationContextType::ValidationContext(cvc)) => {
            let mut inner = Ignored::default();
            let (root, sans) =
                validate_cvc(cvc, side, &mut inner).map_err(|e| e.within("validation_context"))?;
            merge_ignored(ignored, "validation_context", &inner);
            Some(Validation {
                root,
                root_field: "validation_context.ca_certificate_provider_instance",
                sans,
            })
        }
        Some(ValidationContextType::CombinedValidationContext(combined)) => Some(
            validate_combined(combined, side, ignored)
                .map_err(|e| e.within("combined_validation_context"))?,
        ),
        Some(ValidationContextType::ValidationContextSdsSecretConfig(_)) => {
            return Err(ValidationError::new(
                "validation_context_sds_secret_config",
                "SDS is not supported; use ca_certificate_provider_instance (gRFC A29)",
            ));
        }
        Some(ValidationContextType::ValidationContextCertificateProvider(_)) => {
            return Err(ValidationError::new(
                "validation_context_certificate_provider",
                "inline certificate provider config is not supported; use \
                 ca_certificate_provider_instance (gRFC A29)",
            ));
        }
        Some(ValidationContextType::ValidationContextCertificateProviderInstance(p)) => {
            Some(Validation {
                root: Some(cert_instance(
                    "validation_context_certificate_provider_instance",
                    &p.instance_name,
                    &p.certificate_name,
                )?),
                root_field: "validation_context_certificate_provider_instance",
                sans: Vec::new(),
            })
        }
    };

    // A29: ALPN is ignored on both sides (gRPC always negotiates h2).
    for (name, set) in [
        ("alpn_protocols", !ctx.alpn_protocols.is_empty()),
        ("key_log", ctx.key_log.is_some()),
        (
            "custom_tls_certificate_selector",
            ctx.custom_tls_certificate_selector.is_some(),
        ),
    ] {
        if set {
            ignored.note(name);
        }
    }

    Ok(Common {
        identity,
        validation,
    })
}

fn validate_combined(
    c: &tlspb::common_tls_context::CombinedCertificateValidationContext,
    side: Side,
    ignored: &mut Ignored,
) -> Result<Validation, ValidationError> {
    if c.validation_context_sds_secret_config.is_some() {
        return Err(ValidationError::new(
            "validation_context_sds_secret_config",
            "SDS is not supported; use ca_certificate_provider_instance (gRFC A29)",
        ));
    }
    let (current, sans) = match &c.default_validation_context {
        Some(cvc) => {
            let mut inner = Ignored::default();
            let r = validate_cvc(cvc, side, &mut inner)
                .map_err(|e| e.within("default_validation_context"))?;
            merge_ignored(
                ignored,
                "combined_validation_context.default_validation_context",
                &inner,
            );
            r
        }
        None => (None, Vec::new()),
    };
    let deprecated = c
        .validation_context_certificate_provider_instance
        .as_ref()
        .map(|p| {
            cert_instance(
                "validation_context_certificate_provider_instance",
                &p.instance_name,
                &p.certificate_name,
            )
        })
        .transpose()?;
    let root = match (current, deprecated) {
        (Some(cur), Some(dep)) => {
            if cur != dep {
                ignored.note(
                    "combined_validation_context.validation_context_certificate_provider_instance",
                );
            }
            Some(cur)
        }
        (cur, dep) => cur.or(dep),
    };
    if c.validation_context_certificate_provider.is_some() {
        if root.is_none() {
            return Err(ValidationError::new(
                "validation_context_certificate_provider",
                "inline certificate provider config is not supported; use \
                 ca_certificate_provider_instance (gRFC A29)",
            ));
        }
        ignored.note("combined_validation_context.validation_context_certificate_provider");
    }
    Ok(Validation {
        root,
        root_field: "combined_validation_context.default_validation_context.ca_certificate_provider_instance",
        sans,
    })
}

/// Validates a `CertificateValidationContext`: returns the CA root instance (if any) and the
/// SAN matchers.
fn validate_cvc(
    cvc: &tlspb::CertificateValidationContext,
    side: Side,
    ignored: &mut Ignored,
) -> Result<(Option<CertInstance>, Vec<SanMatcher>), ValidationError> {
    // A29: each of these narrows which peers are accepted; ignoring one would accept peers the
    // control plane meant to refuse.
    for (name, set) in [
        (
            "verify_certificate_spki",
            !cvc.verify_certificate_spki.is_empty(),
        ),
        (
            "verify_certificate_hash",
            !cvc.verify_certificate_hash.is_empty(),
        ),
        (
            "require_signed_certificate_timestamp",
            cvc.require_signed_certificate_timestamp == Some(true),
        ),
        ("crl", cvc.crl.is_some()),
        (
            "custom_validator_config",
            cvc.custom_validator_config.is_some(),
        ),
    ] {
        if set {
            return Err(ValidationError::new(
                name,
                "not supported, and ignoring it would accept peers the control plane meant to \
                 refuse (gRFC A29)",
            ));
        }
    }

    let root = cvc
        .ca_certificate_provider_instance
        .as_ref()
        .map(|p| {
            cert_instance(
                "ca_certificate_provider_instance",
                &p.instance_name,
                &p.certificate_name,
            )
        })
        .transpose()?;

    // `match_typed_subject_alt_names` postdates A29 and replaces the deprecated untyped list;
    // gRPC does not read it, which would silently drop the SAN check, so skiff honours it.
    // As in Envoy, when it is set the untyped list is ignored.
    let (field, sans) = if cvc.match_typed_subject_alt_names.is_empty() {
        let mut sans = Vec::with_capacity(cvc.match_subject_alt_names.len());
        for (i, m) in cvc.match_subject_alt_names.iter().enumerate() {
            sans.push(
                san_matcher(m, None)
                    .map_err(|e| e.within(&format!("match_subject_alt_names[{i}]")))?,
            );
        }
        ("match_subject_alt_names", sans)
    } else {
        if !cvc.match_subject_alt_names.is_empty() {
            ignored.note("match_subject_alt_names");
        }
        let mut sans = Vec::with_capacity(cvc.match_typed_subject_alt_names.len());
        for (i, m) in cvc.match_typed_subject_alt_names.iter().enumerate() {
            sans.push(
                typed_san_matcher(m)
                    .map_err(|e| e.within(&format!("match_typed_subject_alt_names[{i}]")))?,
            );
        }
        ("match_typed_subject_alt_names", sans)
    };
    // A29 lets a server either implement client SAN checks or NACK them; skiff's servers
    // leave peer identity to RBAC (gRFC A41), like grpc-go.
    if side == Side::Server && !sans.is_empty() {
        return Err(ValidationError::new(
            field,
            "not supported on servers: authorize client identities with RBAC (gRFC A29, A41)",
        ));
    }

    // A29 "The following fields from CertificateValidationContext are ignored", plus newer
    // fields gRPC does not read (system_root_certs is gRFC A82, not implemented).
    for (name, set) in [
        ("trusted_ca", cvc.trusted_ca.is_some()),
        ("watched_directory", cvc.watched_directory.is_some()),
        ("allow_expired_certificate", cvc.allow_expired_certificate),
        (
            "trust_chain_verification",
            cvc.trust_chain_verification != 0,
        ),
        ("system_root_certs", cvc.system_root_certs.is_some()),
        ("only_verify_leaf_cert_crl", cvc.only_verify_leaf_cert_crl),
        ("max_verify_depth", cvc.max_verify_depth.is_some()),
        ("suppress_client_ca_list", cvc.suppress_client_ca_list),
    ] {
        if set {
            ignored.note(name);
        }
    }
    Ok((root, sans))
}

/// Converts a `SubjectAltNameMatcher` (paths relative to it).
fn typed_san_matcher(m: &tlspb::SubjectAltNameMatcher) -> Result<SanMatcher, ValidationError> {
    use tlspb::subject_alt_name_matcher::SanType as T;
    let san_type = match T::try_from(m.san_type) {
        Ok(T::Email) => SanType::Email,
        Ok(T::Dns) => SanType::Dns,
        Ok(T::Uri) => SanType::Uri,
        Ok(T::IpAddress) => SanType::IpAddress,
        Ok(T::OtherName) => {
            return Err(ValidationError::new(
                "san_type",
                "OTHER_NAME is not supported: use EMAIL, DNS, URI or IP_ADDRESS",
            ));
        }
        Ok(T::Unspecified) | Err(_) => {
            return Err(ValidationError::new(
                "san_type",
                format!("must be EMAIL, DNS, URI or IP_ADDRESS, got {}", m.san_type),
            ));
        }
    };
    let Some(matcher) = &m.matcher else {
        return Err(ValidationError::new("matcher", "must be set"));
    };
    san_matcher(matcher, Some(san_type)).map_err(|e| e.within("matcher"))
}

/// Converts an Envoy `StringMatcher` into a [`SanMatcher`] (paths relative to it).
fn san_matcher(
    m: &matcherpb::StringMatcher,
    san_type: Option<SanType>,
) -> Result<SanMatcher, ValidationError> {
    use matcherpb::string_matcher::MatchPattern;
    let non_empty = |field: &str, s: &String| {
        if s.is_empty() {
            // Envoy's proto requires a non-empty prefix/suffix/contains; an empty one would
            // match every SAN and silently disable the check.
            Err(ValidationError::new(field, "must not be empty"))
        } else {
            Ok(s.clone())
        }
    };
    let pattern = match &m.match_pattern {
        None => {
            return Err(ValidationError::new(
                "match_pattern",
                "must be set (exact, prefix, suffix, contains or safe_regex)",
            ));
        }
        Some(MatchPattern::Exact(s)) => SanPattern::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) => SanPattern::Prefix(non_empty("prefix", s)?),
        Some(MatchPattern::Suffix(s)) => SanPattern::Suffix(non_empty("suffix", s)?),
        Some(MatchPattern::Contains(s)) => SanPattern::Contains(non_empty("contains", s)?),
        Some(MatchPattern::SafeRegex(r)) => {
            SanPattern::SafeRegex(non_empty("safe_regex.regex", &r.regex)?)
        }
        Some(MatchPattern::Custom(c)) => {
            return Err(ValidationError::new(
                "custom",
                format!("custom string matcher {:?} is not supported", c.name),
            ));
        }
    };
    Ok(SanMatcher {
        san_type,
        pattern,
        ignore_case: m.ignore_case,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prost::Message;

    fn plugin(instance: &str, cert: &str) -> tlspb::CertificateProviderPluginInstance {
        tlspb::CertificateProviderPluginInstance {
            instance_name: instance.into(),
            certificate_name: cert.into(),
        }
    }

    fn legacy(
        instance: &str,
        cert: &str,
    ) -> tlspb::common_tls_context::CertificateProviderInstance {
        tlspb::common_tls_context::CertificateProviderInstance {
            instance_name: instance.into(),
            certificate_name: cert.into(),
        }
    }

    fn exact(s: &str) -> matcherpb::StringMatcher {
        matcherpb::StringMatcher {
            ignore_case: false,
            match_pattern: Some(matcherpb::string_matcher::MatchPattern::Exact(s.into())),
        }
    }

    fn inst(i: &str, c: &str) -> CertInstance {
        CertInstance {
            instance_name: i.into(),
            certificate_name: c.into(),
        }
    }

    /// What istiod's grpcgen `buildCommonTLSContext` sends: new and deprecated fields together.
    pub(crate) fn istio_common(sans: &[&str]) -> tlspb::CommonTlsContext {
        tlspb::CommonTlsContext {
            tls_certificate_provider_instance: Some(plugin("default", "default")),
            tls_certificate_certificate_provider_instance: Some(legacy("default", "default")),
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                tlspb::common_tls_context::CombinedCertificateValidationContext {
                    validation_context_certificate_provider_instance: Some(legacy(
                        "default", "ROOTCA",
                    )),
                    default_validation_context: Some(tlspb::CertificateValidationContext {
                        match_subject_alt_names: sans.iter().map(|s| exact(s)).collect(),
                        ca_certificate_provider_instance: Some(plugin("default", "ROOTCA")),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    fn upstream(common: tlspb::CommonTlsContext) -> tlspb::UpstreamTlsContext {
        tlspb::UpstreamTlsContext {
            common_tls_context: Some(common),
            ..Default::default()
        }
    }

    #[test]
    fn istio_mutual_with_new_and_deprecated_fields() {
        let mut ig = Ignored::default();
        let sa = "spiffe://cluster.local/ns/default/sa/echo";
        let tls = validate_upstream_tls(&upstream(istio_common(&[sa])), &mut ig).unwrap();
        assert_eq!(tls.identity_cert_instance, Some(inst("default", "default")));
        assert_eq!(tls.root_cert_instance, inst("default", "ROOTCA"));
        assert_eq!(
            tls.match_subject_alt_names,
            vec![SanMatcher {
                san_type: None,
                pattern: SanPattern::Exact(sa.into()),
                ignore_case: false,
            }]
        );
        assert_eq!(tls.sni, None);
        assert!(ig.is_empty(), "{:?}", ig.fields());
        assert_eq!(tls.cert_instances().count(), 2);
    }

    #[test]
    fn deprecated_fields_alone_are_enough() {
        let common = tlspb::CommonTlsContext {
            tls_certificate_certificate_provider_instance: Some(legacy("default", "default")),
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                tlspb::common_tls_context::CombinedCertificateValidationContext {
                    validation_context_certificate_provider_instance: Some(legacy(
                        "default", "ROOTCA",
                    )),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let tls = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap();
        assert_eq!(tls.identity_cert_instance, Some(inst("default", "default")));
        assert_eq!(tls.root_cert_instance, inst("default", "ROOTCA"));
    }

    #[test]
    fn new_fields_alone_are_enough() {
        let common = tlspb::CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                tlspb::CertificateValidationContext {
                    ca_certificate_provider_instance: Some(plugin("roots", "")),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let tls = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap();
        assert_eq!(tls.identity_cert_instance, None);
        assert_eq!(tls.root_cert_instance, inst("roots", ""));
    }

    #[test]
    fn new_field_wins_over_a_different_deprecated_one() {
        let mut common = istio_common(&[]);
        common.tls_certificate_certificate_provider_instance = Some(legacy("old", "x"));
        let mut ig = Ignored::default();
        let tls = validate_upstream_tls(&upstream(common), &mut ig).unwrap();
        assert_eq!(tls.identity_cert_instance, Some(inst("default", "default")));
        assert_eq!(
            ig.fields(),
            ["common_tls_context.tls_certificate_certificate_provider_instance"]
        );
    }

    #[test]
    fn client_without_roots_is_rejected() {
        let common = tlspb::CommonTlsContext {
            tls_certificate_provider_instance: Some(plugin("default", "default")),
            ..Default::default()
        };
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "common_tls_context");

        let common = tlspb::CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                tlspb::CertificateValidationContext {
                    match_subject_alt_names: vec![exact("a")],
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.validation_context.ca_certificate_provider_instance"
        );

        let err = validate_upstream_tls(
            &tlspb::UpstreamTlsContext::default(),
            &mut Ignored::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "common_tls_context");
    }

    #[test]
    fn sds_is_rejected() {
        let mut common = istio_common(&[]);
        common.tls_certificate_provider_instance = None;
        common.tls_certificate_certificate_provider_instance = None;
        common.tls_certificate_sds_secret_configs = vec![tlspb::SdsSecretConfig {
            name: "default".into(),
            sds_config: None,
        }];
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.tls_certificate_sds_secret_configs"
        );
        assert!(err.reason.contains("SDS"));

        let common = tlspb::CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContextSdsSecretConfig(
                tlspb::SdsSecretConfig::default(),
            )),
            ..Default::default()
        };
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.validation_context_sds_secret_config"
        );

        let mut common = istio_common(&[]);
        if let Some(ValidationContextType::CombinedValidationContext(c)) =
            &mut common.validation_context_type
        {
            c.validation_context_sds_secret_config = Some(tlspb::SdsSecretConfig::default());
        }
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.combined_validation_context.validation_context_sds_secret_config"
        );
    }

    #[test]
    fn security_relevant_fields_are_rejected() {
        let mut common = istio_common(&[]);
        common.tls_params = Some(tlspb::TlsParameters::default());
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "common_tls_context.tls_params");

        let common = tlspb::CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                tlspb::CertificateValidationContext {
                    ca_certificate_provider_instance: Some(plugin("default", "ROOTCA")),
                    verify_certificate_hash: vec!["ab".into()],
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.validation_context.verify_certificate_hash"
        );
    }

    #[test]
    fn san_matchers_cover_every_pattern() {
        use matcherpb::string_matcher::MatchPattern;
        let pats = vec![
            MatchPattern::Exact("e".into()),
            MatchPattern::Prefix("p".into()),
            MatchPattern::Suffix("s".into()),
            MatchPattern::Contains("c".into()),
            MatchPattern::SafeRegex(matcherpb::RegexMatcher {
                regex: "spiffe://.*".into(),
                engine_type: None,
            }),
        ];
        let common = tlspb::CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                tlspb::CertificateValidationContext {
                    ca_certificate_provider_instance: Some(plugin("default", "ROOTCA")),
                    match_subject_alt_names: pats
                        .into_iter()
                        .map(|p| matcherpb::StringMatcher {
                            ignore_case: true,
                            match_pattern: Some(p),
                        })
                        .collect(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let tls = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap();
        let got: Vec<_> = tls
            .match_subject_alt_names
            .iter()
            .map(|m| (m.pattern.clone(), m.ignore_case))
            .collect();
        assert_eq!(
            got,
            vec![
                (SanPattern::Exact("e".into()), true),
                (SanPattern::Prefix("p".into()), true),
                (SanPattern::Suffix("s".into()), true),
                (SanPattern::Contains("c".into()), true),
                (SanPattern::SafeRegex("spiffe://.*".into()), true),
            ]
        );

        let common = tlspb::CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                tlspb::CertificateValidationContext {
                    ca_certificate_provider_instance: Some(plugin("default", "ROOTCA")),
                    match_subject_alt_names: vec![
                        exact("ok"),
                        matcherpb::StringMatcher {
                            ignore_case: false,
                            match_pattern: Some(MatchPattern::Prefix(String::new())),
                        },
                    ],
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let err = validate_upstream_tls(&upstream(common), &mut Ignored::default()).unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.validation_context.match_subject_alt_names[1].prefix"
        );
    }

    #[test]
    fn sni_and_ignored_fields() {
        let mut ctx = upstream(istio_common(&[]));
        ctx.sni = "echo.default.svc.cluster.local".into();
        ctx.allow_renegotiation = true;
        ctx.common_tls_context
            .as_mut()
            .unwrap()
            .alpn_protocols
            .push("h2".into());
        let mut ig = Ignored::default();
        let tls = validate_upstream_tls(&ctx, &mut ig).unwrap();
        assert_eq!(tls.sni.as_deref(), Some("echo.default.svc.cluster.local"));
        assert_eq!(
            ig.fields(),
            ["common_tls_context.alpn_protocols", "allow_renegotiation"]
        );

        ctx.sni = "a".repeat(256);
        let err = validate_upstream_tls(&ctx, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "sni");
    }

    fn socket(name: &str, any: prost_types::Any) -> TransportSocket {
        TransportSocket {
            name: name.into(),
            config_type: Some(ConfigType::TypedConfig(any)),
        }
    }

    fn any_of<M: Message + prost::Name>(m: &M) -> prost_types::Any {
        prost_types::Any {
            type_url: M::type_url(),
            value: m.encode_to_vec(),
        }
    }

    #[test]
    fn transport_socket_name_and_type_are_checked() {
        let ctx = upstream(istio_common(&[]));
        let ok = socket(TLS_TRANSPORT_SOCKET_NAME, any_of(&ctx));
        assert!(validate_upstream_transport_socket(&ok, &mut Ignored::default()).is_ok());

        let err = validate_upstream_transport_socket(
            &socket("envoy.transport_sockets.raw_buffer", any_of(&ctx)),
            &mut Ignored::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "name");

        let wrong = socket(
            TLS_TRANSPORT_SOCKET_NAME,
            any_of(&tlspb::DownstreamTlsContext::default()),
        );
        let err = validate_upstream_transport_socket(&wrong, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "typed_config");

        let missing = TransportSocket {
            name: TLS_TRANSPORT_SOCKET_NAME.into(),
            config_type: None,
        };
        let err =
            validate_upstream_transport_socket(&missing, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "typed_config");
    }

    fn downstream(common: tlspb::CommonTlsContext, require: bool) -> tlspb::DownstreamTlsContext {
        tlspb::DownstreamTlsContext {
            common_tls_context: Some(common),
            require_client_certificate: Some(require),
            ..Default::default()
        }
    }

    #[test]
    fn istio_strict_server_mtls() {
        // istiod's inbound chain: same CommonTlsContext, no SANs, client certs required.
        let ctx = downstream(istio_common(&[]), true);
        let ts = socket(TLS_TRANSPORT_SOCKET_NAME, any_of(&ctx));
        let tls = validate_downstream_transport_socket(&ts, &mut Ignored::default()).unwrap();
        assert_eq!(
            tls,
            DownstreamTls {
                identity_cert_instance: inst("default", "default"),
                root_cert_instance: Some(inst("default", "ROOTCA")),
                require_client_certificate: true,
            }
        );
    }

    #[test]
    fn server_rules() {
        // TLS without client certs: identity only.
        let common = tlspb::CommonTlsContext {
            tls_certificate_provider_instance: Some(plugin("default", "default")),
            ..Default::default()
        };
        let tls =
            validate_downstream_tls(&downstream(common.clone(), false), &mut Ignored::default())
                .unwrap();
        assert_eq!(tls.root_cert_instance, None);
        assert!(!tls.require_client_certificate);

        // Requiring client certs without a validation context.
        let err = validate_downstream_tls(&downstream(common, true), &mut Ignored::default())
            .unwrap_err();
        assert_eq!(err.field, "require_client_certificate");

        // No identity.
        let mut common = istio_common(&[]);
        common.tls_certificate_provider_instance = None;
        common.tls_certificate_certificate_provider_instance = None;
        let err = validate_downstream_tls(&downstream(common, false), &mut Ignored::default())
            .unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.tls_certificate_provider_instance"
        );

        // SAN matchers on a server.
        let err = validate_downstream_tls(
            &downstream(istio_common(&["spiffe://x"]), true),
            &mut Ignored::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names"
        );

        // require_sni and strict OCSP stapling.
        let mut ctx = downstream(istio_common(&[]), true);
        ctx.require_sni = Some(true);
        let err = validate_downstream_tls(&ctx, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "require_sni");
        let mut ctx = downstream(istio_common(&[]), true);
        ctx.ocsp_staple_policy = 1;
        let err = validate_downstream_tls(&ctx, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "ocsp_staple_policy");

        // Empty instance names.
        let common = tlspb::CommonTlsContext {
            tls_certificate_provider_instance: Some(plugin("", "default")),
            ..Default::default()
        };
        let err = validate_downstream_tls(&downstream(common, false), &mut Ignored::default())
            .unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.tls_certificate_provider_instance.instance_name"
        );
    }

    #[test]
    fn typed_san_matchers_replace_the_untyped_list() {
        use tlspb::subject_alt_name_matcher::SanType as T;
        let typed = |t: T, m: matcherpb::StringMatcher| tlspb::SubjectAltNameMatcher {
            san_type: t as i32,
            matcher: Some(m),
            oid: String::new(),
        };
        let cvc = |typed_list: Vec<tlspb::SubjectAltNameMatcher>| tlspb::CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                tlspb::CertificateValidationContext {
                    ca_certificate_provider_instance: Some(plugin("default", "ROOTCA")),
                    match_subject_alt_names: vec![exact("untyped")],
                    match_typed_subject_alt_names: typed_list,
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let mut ig = Ignored::default();
        let tls = validate_upstream_tls(
            &upstream(cvc(vec![typed(T::Uri, exact("spiffe://td/ns/a/sa/b"))])),
            &mut ig,
        )
        .unwrap();
        assert_eq!(
            tls.match_subject_alt_names,
            vec![SanMatcher {
                san_type: Some(SanType::Uri),
                pattern: SanPattern::Exact("spiffe://td/ns/a/sa/b".into()),
                ignore_case: false,
            }]
        );
        assert_eq!(
            ig.fields(),
            ["common_tls_context.validation_context.match_subject_alt_names"]
        );

        let err = validate_upstream_tls(
            &upstream(cvc(vec![typed(T::OtherName, exact("x"))])),
            &mut Ignored::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.field,
            "common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type"
        );
        let err = validate_upstream_tls(
            &upstream(cvc(vec![typed(T::Unspecified, exact("x"))])),
            &mut Ignored::default(),
        )
        .unwrap_err();
        assert!(err.field.ends_with("san_type"), "{err}");
    }
}
