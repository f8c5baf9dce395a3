//! HTTP filters (gRFC A39): the HCM `http_filters` list, per-route overrides
//! (`typed_per_filter_config`), and the fault-injection config (gRFC A33).
//!
//! Filter configs are recognised by the protobuf type of `typed_config`. gRPC's registry, which
//! skiff follows:
//!
//! | type | client | server | override type |
//! |---|---|---|---|
//! | `envoy.extensions.filters.http.fault.v3.HTTPFault` | yes | no | `HTTPFault` |
//! | `envoy.extensions.filters.http.rbac.v3.RBAC` | no | yes | `RBACPerRoute` |
//! | `envoy.extensions.filters.http.router.v3.Router` | yes (terminal) | yes (terminal) | none |
//!
//! A type that is unknown, or known but not supported on this side, NACKs the resource unless the
//! entry is optional (`HttpFilter.is_optional`, `FilterConfig.is_optional`), in which case the
//! entry is dropped and recorded as ignored.
#![deny(missing_docs)]

use core::time::Duration;
use std::sync::Arc;

use prost::Message as _;

use super::matcher::{HeaderMatcher, HeaderSource, join_path};
use super::{Ignored, ValidationError, duration};
use crate::pb::envoy::config::route::v3 as route_pb;
use crate::pb::envoy::extensions::filters::http::fault::v3 as fault_pb;
use crate::pb::envoy::extensions::filters::http::rbac::v3 as rbac_pb;
use crate::pb::envoy::extensions::filters::http::router::v3 as router_pb;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
use crate::pb::envoy::r#type::v3::FractionalPercent;
use crate::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use crate::rng::Rng;

/// Full protobuf name of the fault filter config (and its override).
pub const FAULT_TYPE: &str = "envoy.extensions.filters.http.fault.v3.HTTPFault";
/// Full protobuf name of the router filter config.
pub const ROUTER_TYPE: &str = "envoy.extensions.filters.http.router.v3.Router";
/// Full protobuf name of the RBAC filter config.
pub const RBAC_TYPE: &str = "envoy.extensions.filters.http.rbac.v3.RBAC";
/// Full protobuf name of the RBAC per-route override.
pub const RBAC_PER_ROUTE_TYPE: &str = "envoy.extensions.filters.http.rbac.v3.RBACPerRoute";
/// Full protobuf name of the override wrapper that carries `is_optional`.
pub const FILTER_CONFIG_TYPE: &str = "envoy.config.route.v3.FilterConfig";
/// Full protobuf name of the cncf/xds `TypedStruct`.
pub const XDS_TYPED_STRUCT_TYPE: &str = "xds.type.v3.TypedStruct";
/// Full protobuf name of the legacy udpa `TypedStruct`.
pub const UDPA_TYPED_STRUCT_TYPE: &str = "udpa.type.v1.TypedStruct";

/// `xds.type.v3.TypedStruct` / `udpa.type.v1.TypedStruct` (same fields): a config given as a
/// `google.protobuf.Struct` plus the type it stands for. Not in the generated protos.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypedStruct {
    /// The type the `value` encodes, as a type URL.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The config in JSON-like form.
    #[prost(message, optional, tag = "2")]
    pub value: Option<prost_types::Struct>,
}

/// Which side of the RPC a filter chain runs on: filters are registered per side (gRFC A39).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterSide {
    /// An HCM inside a client `api_listener`.
    Client,
    /// An HCM inside a server (TCP) listener, gRFC A36.
    Server,
}

/// A validated top-level filter config from `HttpConnectionManager.http_filters`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HttpFilterConfig {
    /// Fault injection (gRFC A33), client side.
    Fault(Arc<FaultConfig>),
    /// The terminal router filter; none of its fields are used (gRFC A39).
    Router,
    /// RBAC (gRFC A41), server side. Kept as decoded: its validation belongs to the RBAC model.
    Rbac(Arc<rbac_pb::Rbac>),
}

/// One filter instance of the HCM chain, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedFilter {
    /// `HttpFilter.name`: the instance name overrides refer to.
    pub name: String,
    /// The validated config.
    pub config: HttpFilterConfig,
}

/// A validated `typed_per_filter_config` entry.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FilterOverride {
    /// A replacement `HTTPFault` for the fault filter instance.
    Fault(Arc<FaultConfig>),
    /// An `RBACPerRoute` (kept as decoded): a replacement policy, or none to disable RBAC here.
    Rbac(Arc<rbac_pb::RbacPerRoute>),
}

/// A `FractionalPercent`, normalised to parts per million. It keeps the configured denominator's
/// scale because the fault headers give a numerator in that denominator (gRFC A33).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fraction {
    ppm: u32,
    unit_ppm: u32,
}

/// One million: the denominator [`Fraction::ppm`] is expressed in.
pub const MILLION: u32 = 1_000_000;

impl Fraction {
    /// 0% (the default when a `percentage` is unset: `FractionalPercent{0, HUNDRED}`).
    pub const ZERO: Fraction = Fraction {
        ppm: 0,
        unit_ppm: 10_000,
    };

    /// 100%.
    pub const ALL: Fraction = Fraction {
        ppm: MILLION,
        unit_ppm: 10_000,
    };

    /// Normalises a wire `FractionalPercent`; numerators above the denominator mean 100% (as
    /// in Envoy). An unknown denominator is rejected (field `denominator`).
    pub fn from_proto(fp: &FractionalPercent) -> Result<Self, ValidationError> {
        let unit_ppm = match DenominatorType::try_from(fp.denominator) {
            Ok(DenominatorType::Hundred) => 10_000,
            Ok(DenominatorType::TenThousand) => 100,
            Ok(DenominatorType::Million) => 1,
            Err(_) => {
                return Err(ValidationError::new(
                    "denominator",
                    format!("unknown denominator {}", fp.denominator),
                ));
            }
        };
        Ok(Fraction {
            ppm: fp.numerator.saturating_mul(unit_ppm).min(MILLION),
            unit_ppm,
        })
    }

    /// The fraction in parts per million, `0..=1_000_000`.
    pub fn ppm(self) -> u32 {
        self.ppm
    }

    /// The fraction a fault-percentage header asks for: `numerator` in the configured
    /// denominator, capped at the configured value (gRFC A33).
    pub fn capped_by_header(self, numerator: u32) -> Fraction {
        Fraction {
            ppm: numerator.saturating_mul(self.unit_ppm).min(self.ppm),
            unit_ppm: self.unit_ppm,
        }
    }

    /// Draws once and says whether this RPC falls in the fraction; 0% and 100% draw nothing.
    pub fn sample(self, rng: &mut Rng) -> bool {
        match self.ppm {
            0 => false,
            p if p >= MILLION => true,
            p => rng.below(u64::from(MILLION)) < u64::from(p),
        }
    }
}

/// Header names the fault filter reads when configured with `header_delay` / `header_abort`
/// (gRFC A33).
pub mod fault_headers {
    /// Abort with this HTTP status (mapped to a gRPC code).
    pub const ABORT_HTTP: &str = "x-envoy-fault-abort-request";
    /// Abort with this gRPC status code.
    pub const ABORT_GRPC: &str = "x-envoy-fault-abort-grpc-request";
    /// Abort percentage (numerator in the configured denominator, capped by the config).
    pub const ABORT_PERCENTAGE: &str = "x-envoy-fault-abort-request-percentage";
    /// Delay in milliseconds.
    pub const DELAY: &str = "x-envoy-fault-delay-request";
    /// Delay percentage (numerator in the configured denominator, capped by the config).
    pub const DELAY_PERCENTAGE: &str = "x-envoy-fault-delay-request-percentage";
}

/// How long a fault delays the RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelaySource {
    /// `fixed_delay`.
    Fixed(Duration),
    /// `header_delay`: milliseconds from [`fault_headers::DELAY`]; no valid header, no delay.
    Header,
}

/// `HTTPFault.delay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultDelay {
    /// Where the delay comes from.
    pub source: DelaySource,
    /// `percentage` of RPCs delayed.
    pub percentage: Fraction,
}

/// What status a fault abort fails the RPC with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortSource {
    /// `grpc_status`, used as is (the call path maps codes above 16 to UNKNOWN).
    Grpc(u32),
    /// `http_status` (200..=599), mapped with [`http_status_to_grpc`].
    Http(u32),
    /// `header_abort`: from [`fault_headers::ABORT_GRPC`] or [`fault_headers::ABORT_HTTP`].
    Header,
}

impl AbortSource {
    /// The gRPC code for a configured status; `None` for [`AbortSource::Header`].
    pub fn grpc_code(self) -> Option<u32> {
        match self {
            AbortSource::Grpc(c) => Some(c),
            AbortSource::Http(h) => Some(http_status_to_grpc(h)),
            AbortSource::Header => None,
        }
    }
}

/// `HTTPFault.abort`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultAbort {
    /// Where the status comes from.
    pub source: AbortSource,
    /// `percentage` of RPCs aborted.
    pub percentage: Fraction,
}

/// A validated `envoy.extensions.filters.http.fault.v3.HTTPFault` (gRFC A33).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FaultConfig {
    /// `delay`.
    pub delay: Option<FaultDelay>,
    /// `abort`.
    pub abort: Option<FaultAbort>,
    /// `headers`: the fault applies only to RPCs whose headers all match (Envoy semantics;
    /// gRFC A33 defers this selector, so grpc-go/grpc-java apply the fault to every RPC).
    pub headers: Vec<HeaderMatcher>,
    /// `max_active_faults`: process-wide cap on RPCs with an active fault; `None` = unlimited.
    pub max_active_faults: Option<u32>,
}

impl FaultConfig {
    /// Validates a wire `HTTPFault`. Errors are relative to the message; `at` is its path for
    /// ignored-field notes.
    pub fn from_proto(
        f: &fault_pb::HttpFault,
        at: &str,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        use crate::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
        use fault_pb::fault_abort::ErrorType;

        let fraction = |p: &Option<FractionalPercent>, field: &str| match p {
            None => Ok(Fraction::ZERO),
            Some(p) => Fraction::from_proto(p).map_err(|e| e.within(field)),
        };

        let delay = match &f.delay {
            None => None,
            Some(d) => {
                let source = match &d.fault_delay_secifier {
                    Some(FaultDelaySecifier::FixedDelay(fixed)) => {
                        DelaySource::Fixed(duration("delay.fixed_delay", fixed)?)
                    }
                    Some(FaultDelaySecifier::HeaderDelay(_)) => DelaySource::Header,
                    None => {
                        return Err(ValidationError::new(
                            "delay",
                            "one of fixed_delay or header_delay is required",
                        ));
                    }
                };
                Some(FaultDelay {
                    source,
                    percentage: fraction(&d.percentage, "delay.percentage")?,
                })
            }
        };

        let abort = match &f.abort {
            None => None,
            Some(a) => {
                let source = match &a.error_type {
                    Some(ErrorType::GrpcStatus(c)) => AbortSource::Grpc(*c),
                    Some(ErrorType::HttpStatus(h)) => {
                        // Envoy's range; 200 itself is allowed and maps to UNKNOWN (gRFC A33).
                        if !(200..600).contains(h) {
                            return Err(ValidationError::new(
                                "abort.http_status",
                                format!("{h} is not in [200, 600)"),
                            ));
                        }
                        AbortSource::Http(*h)
                    }
                    Some(ErrorType::HeaderAbort(_)) => AbortSource::Header,
                    None => {
                        return Err(ValidationError::new(
                            "abort",
                            "one of http_status, grpc_status or header_abort is required",
                        ));
                    }
                };
                if !a.response_body.is_empty() {
                    ignored.note_in(at, "abort.response_body");
                }
                Some(FaultAbort {
                    source,
                    percentage: fraction(&a.percentage, "abort.percentage")?,
                })
            }
        };

        let mut headers = Vec::with_capacity(f.headers.len());
        for (i, h) in f.headers.iter().enumerate() {
            let at_h = join_path(at, &format!("headers[{i}]"));
            headers.push(
                HeaderMatcher::from_proto(h, &at_h, ignored)
                    .map_err(|e| e.within(&format!("headers[{i}]")))?,
            );
        }

        let mut note = |set: bool, field: &str| {
            if set {
                ignored.note_in(at, field);
            }
        };
        // gRFC A33: upstream-cluster and downstream-node selection are deferred, rate limiting
        // is deferred, and runtime overrides do not exist in gRPC.
        note(!f.upstream_cluster.is_empty(), "upstream_cluster");
        note(!f.downstream_nodes.is_empty(), "downstream_nodes");
        note(f.response_rate_limit.is_some(), "response_rate_limit");
        note(!f.delay_percent_runtime.is_empty(), "delay_percent_runtime");
        note(!f.abort_percent_runtime.is_empty(), "abort_percent_runtime");
        note(
            !f.delay_duration_runtime.is_empty(),
            "delay_duration_runtime",
        );
        note(
            !f.abort_http_status_runtime.is_empty(),
            "abort_http_status_runtime",
        );
        note(
            !f.max_active_faults_runtime.is_empty(),
            "max_active_faults_runtime",
        );
        note(
            !f.response_rate_limit_percent_runtime.is_empty(),
            "response_rate_limit_percent_runtime",
        );
        note(
            !f.abort_grpc_status_runtime.is_empty(),
            "abort_grpc_status_runtime",
        );
        note(
            f.disable_downstream_cluster_stats,
            "disable_downstream_cluster_stats",
        );
        note(f.filter_metadata.is_some(), "filter_metadata");

        Ok(FaultConfig {
            delay,
            abort,
            headers,
            max_active_faults: f.max_active_faults,
        })
    }

    /// Whether the fault applies to an RPC with these headers: every `headers` matcher must
    /// match (an empty list selects every RPC). Headers are seen as routing sees them.
    pub fn selects(&self, headers: &dyn HeaderSource) -> bool {
        self.headers.iter().all(|m| m.matches(headers))
    }
}

/// Maps an HTTP status to a gRPC code, per grpc/grpc `doc/http-grpc-status-mapping.md`:
/// 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED,
/// 429/502/503/504 UNAVAILABLE, anything else (200 included, gRFC A33) UNKNOWN.
pub fn http_status_to_grpc(status: u32) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

/// The filter types skiff knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Fault,
    Router,
    Rbac,
    RbacPerRoute,
}

impl Known {
    fn from_name(full_name: &str) -> Option<Known> {
        match full_name {
            FAULT_TYPE => Some(Known::Fault),
            ROUTER_TYPE => Some(Known::Router),
            RBAC_TYPE => Some(Known::Rbac),
            RBAC_PER_ROUTE_TYPE => Some(Known::RbacPerRoute),
            _ => None,
        }
    }
}

/// A filter config `Any` after looking through `TypedStruct`.
enum Classified<'a> {
    /// A known type as protobuf bytes.
    Proto(Known, &'a [u8]),
    /// A known type given as a `TypedStruct` (its fields in `Struct` form).
    Struct(Known),
    /// A type skiff has no implementation for (full name).
    Unknown(String),
}

/// The full message name of a type URL (the part after the last `/`).
fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// Looks through `TypedStruct` (gRFC A39) to find the config type of `any`.
fn classify(any: &prost_types::Any) -> Result<Classified<'_>, ValidationError> {
    let name = type_name(&any.type_url);
    if name == XDS_TYPED_STRUCT_TYPE || name == UDPA_TYPED_STRUCT_TYPE {
        let ts = TypedStruct::decode(any.value.as_slice())
            .map_err(|e| ValidationError::new("", format!("cannot decode {name}: {e}")))?;
        let inner = type_name(&ts.type_url);
        return Ok(match Known::from_name(inner) {
            Some(k) => Classified::Struct(k),
            None => Classified::Unknown(inner.to_string()),
        });
    }
    Ok(match Known::from_name(name) {
        Some(k) => Classified::Proto(k, any.value.as_slice()),
        None => Classified::Unknown(name.to_string()),
    })
}

/// Decodes protobuf bytes as `M`, naming the type in the error.
fn decode<M: prost::Message + Default>(bytes: &[u8], what: &str) -> Result<M, ValidationError> {
    M::decode(bytes).map_err(|e| ValidationError::new("", format!("cannot decode {what}: {e}")))
}

/// The error for a known filter whose config arrived as a `TypedStruct`: skiff cannot map a
/// `google.protobuf.Struct` onto the proto, so it cannot honour the config.
fn struct_form_error(k: Known) -> ValidationError {
    ValidationError::new(
        "",
        format!(
            "{} given as a TypedStruct is not supported; send the protobuf message",
            match k {
                Known::Fault => FAULT_TYPE,
                Known::Router => ROUTER_TYPE,
                Known::Rbac => RBAC_TYPE,
                Known::RbacPerRoute => RBAC_PER_ROUTE_TYPE,
            }
        ),
    )
}

/// Validates an HCM's `http_filters` for `side` (gRFC A39): at least one filter; unique,
/// non-empty names; every type known for this side unless `is_optional` (then the entry is
/// dropped and recorded as ignored); the router present exactly once, last.
///
/// Errors are rooted at `http_filters` (callers prefix the HCM's path with
/// [`ValidationError::within`]); ignored notes use `http_filters[i]...`.
pub fn validate_http_filters(
    filters: &[HttpFilter],
    side: FilterSide,
    ignored: &mut Ignored,
) -> Result<Vec<NamedFilter>, ValidationError> {
    let mut kept: Vec<(usize, NamedFilter)> = Vec::with_capacity(filters.len());
    let mut seen_names: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for (i, f) in filters.iter().enumerate() {
        let at = format!("http_filters[{i}]");
        let err_at = |e: ValidationError| e.within(&format!("[{i}]")).within("http_filters");
        if f.name.is_empty() {
            return Err(err_at(ValidationError::new("name", "must not be empty")));
        }
        if !seen_names.insert(&f.name) {
            return Err(err_at(ValidationError::new(
                "name",
                format!("duplicate filter name {:?}", f.name),
            )));
        }
        if f.disabled {
            // gRPC does not implement `disabled` (off unless enabled per route): it runs.
            ignored.note_in(&at, "disabled");
        }
        let any = match &f.config_type {
            Some(ConfigType::TypedConfig(any)) => any,
            Some(ConfigType::ConfigDiscovery(_)) => {
                if f.is_optional {
                    ignored.note(at);
                    continue;
                }
                return Err(err_at(ValidationError::new(
                    "config_discovery",
                    "filter config discovery (ECDS) is not supported",
                )));
            }
            None => {
                if f.is_optional {
                    ignored.note(at);
                    continue;
                }
                return Err(err_at(ValidationError::new("typed_config", "is required")));
            }
        };
        let in_config = |e: ValidationError| err_at(e.within("typed_config"));
        let classified = classify(any).map_err(in_config)?;
        let supported_here = |k: Known| {
            matches!(
                (k, side),
                (Known::Router, _)
                    | (Known::Fault, FilterSide::Client)
                    | (Known::Rbac, FilterSide::Server)
            )
        };
        let config = match classified {
            Classified::Proto(Known::RbacPerRoute, _) | Classified::Struct(Known::RbacPerRoute) => {
                return Err(in_config(ValidationError::new(
                    "",
                    format!("{RBAC_PER_ROUTE_TYPE} is an override type, not a filter config"),
                )));
            }
            Classified::Proto(k, _) | Classified::Struct(k) if !supported_here(k) => {
                if f.is_optional {
                    ignored.note(at);
                    continue;
                }
                return Err(in_config(ValidationError::new(
                    "",
                    format!(
                        "filter type {} is not supported on the {} side",
                        type_name(&any.type_url),
                        match side {
                            FilterSide::Client => "client",
                            FilterSide::Server => "server",
                        }
                    ),
                )));
            }
            Classified::Struct(Known::Router) => {
                ignored.note_in(&at, "typed_config");
                HttpFilterConfig::Router
            }
            Classified::Struct(k) => return Err(in_config(struct_form_error(k))),
            Classified::Proto(Known::Router, bytes) => {
                let r: router_pb::Router = decode(bytes, ROUTER_TYPE).map_err(in_config)?;
                if r != router_pb::Router::default() {
                    // gRFC A39: none of the router's fields are supported.
                    ignored.note_in(&at, "typed_config");
                }
                HttpFilterConfig::Router
            }
            Classified::Proto(Known::Fault, bytes) => {
                let pb: fault_pb::HttpFault = decode(bytes, FAULT_TYPE).map_err(in_config)?;
                let at_cfg = join_path(&at, "typed_config");
                let cfg = FaultConfig::from_proto(&pb, &at_cfg, ignored).map_err(in_config)?;
                HttpFilterConfig::Fault(Arc::new(cfg))
            }
            Classified::Proto(Known::Rbac, bytes) => {
                let pb: rbac_pb::Rbac = decode(bytes, RBAC_TYPE).map_err(in_config)?;
                HttpFilterConfig::Rbac(Arc::new(pb))
            }
            Classified::Unknown(name) => {
                if f.is_optional {
                    ignored.note(at);
                    continue;
                }
                return Err(in_config(ValidationError::new(
                    "",
                    format!("unsupported filter type {name}"),
                )));
            }
        };
        kept.push((
            i,
            NamedFilter {
                name: f.name.clone(),
                config,
            },
        ));
    }

    let last = kept.len().checked_sub(1);
    for (pos, (i, f)) in kept.iter().enumerate() {
        if f.config == HttpFilterConfig::Router && Some(pos) != last {
            return Err(ValidationError::new(
                format!("[{i}]"),
                "the router filter is terminal and must be the last filter",
            )
            .within("http_filters"));
        }
    }
    match kept.last() {
        None => Err(ValidationError::new(
            "http_filters",
            "at least one filter (the router) is required",
        )),
        Some((_, f)) if f.config != HttpFilterConfig::Router => Err(ValidationError::new(
            "http_filters",
            format!("the last filter must be the router ({ROUTER_TYPE})"),
        )),
        Some(_) => Ok(kept.into_iter().map(|(_, f)| f).collect()),
    }
}

/// Validates one `typed_per_filter_config` entry (gRFC A39): the key `name` is the filter
/// instance it overrides; the value is the override config, possibly wrapped in
/// `envoy.config.route.v3.FilterConfig` (whose `is_optional` lets an unknown type be skipped)
/// and/or a `TypedStruct`. `Ok(None)` means the entry is skipped (and recorded as ignored).
///
/// Errors are rooted at `typed_per_filter_config[name]`; `at` is the path of the map's owner
/// (virtual host, route or cluster weight) for ignored notes.
pub fn parse_filter_override(
    name: &str,
    any: &prost_types::Any,
    at: &str,
    ignored: &mut Ignored,
) -> Result<Option<FilterOverride>, ValidationError> {
    let entry = format!("typed_per_filter_config[{name}]");
    let at_entry = join_path(at, &entry);
    let err = |e: ValidationError| e.within(&entry);

    let (any, optional): (std::borrow::Cow<'_, prost_types::Any>, bool) =
        if type_name(&any.type_url) == FILTER_CONFIG_TYPE {
            let w: route_pb::FilterConfig = decode(&any.value, FILTER_CONFIG_TYPE).map_err(err)?;
            if w.disabled {
                // As for HttpFilter.disabled, gRPC does not implement it.
                ignored.note_in(&at_entry, "disabled");
            }
            match w.config {
                Some(inner) => (std::borrow::Cow::Owned(inner), w.is_optional),
                None => {
                    // Nothing to override with.
                    ignored.note(at_entry);
                    return Ok(None);
                }
            }
        } else {
            (std::borrow::Cow::Borrowed(any), false)
        };

    match classify(&any).map_err(err)? {
        Classified::Proto(Known::Fault, bytes) => {
            let pb: fault_pb::HttpFault = decode(bytes, FAULT_TYPE).map_err(err)?;
            let cfg = FaultConfig::from_proto(&pb, &at_entry, ignored).map_err(err)?;
            Ok(Some(FilterOverride::Fault(Arc::new(cfg))))
        }
        Classified::Proto(Known::RbacPerRoute, bytes) => {
            let pb: rbac_pb::RbacPerRoute = decode(bytes, RBAC_PER_ROUTE_TYPE).map_err(err)?;
            Ok(Some(FilterOverride::Rbac(Arc::new(pb))))
        }
        Classified::Proto(Known::Router, _) | Classified::Struct(Known::Router) => Err(err(
            ValidationError::new("", "the router filter has no per-route override config"),
        )),
        Classified::Proto(Known::Rbac, _) | Classified::Struct(Known::Rbac) => Err(err(
            ValidationError::new("", format!("RBAC overrides must be {RBAC_PER_ROUTE_TYPE}")),
        )),
        Classified::Struct(k) => Err(err(struct_form_error(k))),
        Classified::Unknown(type_name) => {
            if optional {
                ignored.note(at_entry);
                Ok(None)
            } else {
                Err(err(ValidationError::new(
                    "",
                    format!("unsupported filter override type {type_name}"),
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::extensions::filters::common::fault::v3 as common_fault;
    use crate::resource::matcher::SliceHeaders;
    use prost::Name;

    pub(crate) fn any_of<M: prost::Message + Name>(m: &M) -> prost_types::Any {
        prost_types::Any::from_msg(m).unwrap()
    }

    fn filter(name: &str, cfg: Option<prost_types::Any>, optional: bool) -> HttpFilter {
        HttpFilter {
            name: name.into(),
            is_optional: optional,
            disabled: false,
            config_type: cfg.map(ConfigType::TypedConfig),
        }
    }

    fn router() -> HttpFilter {
        filter(
            "envoy.filters.http.router",
            Some(any_of(&router_pb::Router::default())),
            false,
        )
    }

    fn pct(numerator: u32, d: DenominatorType) -> Option<FractionalPercent> {
        Some(FractionalPercent {
            numerator,
            denominator: d as i32,
        })
    }

    fn unknown_any() -> prost_types::Any {
        prost_types::Any {
            type_url: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors".into(),
            value: vec![],
        }
    }

    fn istio_fault() -> fault_pb::HttpFault {
        fault_pb::HttpFault {
            delay: Some(common_fault::FaultDelay {
                percentage: pct(50, DenominatorType::Hundred),
                fault_delay_secifier: Some(
                    common_fault::fault_delay::FaultDelaySecifier::FixedDelay(
                        prost_types::Duration {
                            seconds: 2,
                            nanos: 0,
                        },
                    ),
                ),
            }),
            abort: Some(fault_pb::FaultAbort {
                percentage: pct(1500, DenominatorType::TenThousand),
                response_body: String::new(),
                error_type: Some(fault_pb::fault_abort::ErrorType::HttpStatus(503)),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn type_names_match_generated_names() {
        assert_eq!(fault_pb::HttpFault::full_name(), FAULT_TYPE);
        assert_eq!(router_pb::Router::full_name(), ROUTER_TYPE);
        assert_eq!(rbac_pb::Rbac::full_name(), RBAC_TYPE);
        assert_eq!(rbac_pb::RbacPerRoute::full_name(), RBAC_PER_ROUTE_TYPE);
        assert_eq!(route_pb::FilterConfig::full_name(), FILTER_CONFIG_TYPE);
    }

    #[test]
    fn fractions_normalise_to_ppm() {
        let f = |n, d: DenominatorType| {
            Fraction::from_proto(&FractionalPercent {
                numerator: n,
                denominator: d as i32,
            })
            .unwrap()
            .ppm()
        };
        assert_eq!(f(50, DenominatorType::Hundred), 500_000);
        assert_eq!(f(1500, DenominatorType::TenThousand), 150_000);
        assert_eq!(f(7, DenominatorType::Million), 7);
        assert_eq!(f(101, DenominatorType::Hundred), MILLION, "capped at 100%");
        assert_eq!(f(u32::MAX, DenominatorType::Hundred), MILLION);
        let bad = FractionalPercent {
            numerator: 1,
            denominator: 9,
        };
        assert_eq!(Fraction::from_proto(&bad).unwrap_err().field, "denominator");
        // Header numerators are in the configured denominator and capped by it.
        let cfg = Fraction::from_proto(&FractionalPercent {
            numerator: 20,
            denominator: DenominatorType::Hundred as i32,
        })
        .unwrap();
        assert_eq!(cfg.capped_by_header(5).ppm(), 50_000);
        assert_eq!(cfg.capped_by_header(90).ppm(), 200_000);
    }

    #[test]
    fn fraction_sampling() {
        let mut rng = Rng::new(crate::rng::Seed(5));
        assert!(!Fraction::ZERO.sample(&mut rng));
        assert!(Fraction::ALL.sample(&mut rng));
        let half = Fraction::from_proto(&FractionalPercent {
            numerator: 50,
            denominator: 0,
        })
        .unwrap();
        let hits = (0..10_000).filter(|_| half.sample(&mut rng)).count();
        assert!((4_800..5_200).contains(&hits), "{hits}");
    }

    #[test]
    fn fault_config_parses() {
        let mut ignored = Ignored::default();
        let cfg = FaultConfig::from_proto(&istio_fault(), "f", &mut ignored).unwrap();
        let delay = cfg.delay.unwrap();
        assert_eq!(delay.source, DelaySource::Fixed(Duration::from_secs(2)));
        assert_eq!(delay.percentage.ppm(), 500_000);
        let abort = cfg.abort.unwrap();
        assert_eq!(abort.source, AbortSource::Http(503));
        assert_eq!(abort.source.grpc_code(), Some(14));
        assert_eq!(abort.percentage.ppm(), 150_000);
        assert_eq!(cfg.max_active_faults, None);
        assert!(ignored.is_empty());
    }

    #[test]
    fn fault_header_driven_and_selectors() {
        use route_pb::header_matcher::HeaderMatchSpecifier as S;
        let pb = fault_pb::HttpFault {
            delay: Some(common_fault::FaultDelay {
                percentage: None,
                fault_delay_secifier: Some(
                    common_fault::fault_delay::FaultDelaySecifier::HeaderDelay(
                        common_fault::fault_delay::HeaderDelay {},
                    ),
                ),
            }),
            abort: Some(fault_pb::FaultAbort {
                percentage: pct(100, DenominatorType::Hundred),
                response_body: "x".into(),
                error_type: Some(fault_pb::fault_abort::ErrorType::HeaderAbort(
                    fault_pb::fault_abort::HeaderAbort {},
                )),
            }),
            headers: vec![route_pb::HeaderMatcher {
                name: "x-fault".into(),
                header_match_specifier: Some(S::PresentMatch(true)),
                ..Default::default()
            }],
            max_active_faults: Some(3),
            upstream_cluster: "c".into(),
            ..Default::default()
        };
        let mut ignored = Ignored::default();
        let cfg = FaultConfig::from_proto(&pb, "f", &mut ignored).unwrap();
        assert_eq!(cfg.delay.unwrap().source, DelaySource::Header);
        assert_eq!(cfg.delay.unwrap().percentage, Fraction::ZERO, "unset = 0%");
        assert_eq!(cfg.abort.unwrap().source, AbortSource::Header);
        assert_eq!(cfg.abort.unwrap().source.grpc_code(), None);
        assert_eq!(cfg.max_active_faults, Some(3));
        assert!(cfg.selects(&SliceHeaders::new(&[("x-fault", "1")])));
        assert!(!cfg.selects(&SliceHeaders::new(&[])));
        assert_eq!(
            ignored.fields(),
            ["f.abort.response_body", "f.upstream_cluster"]
        );
    }

    #[test]
    fn fault_config_errors() {
        let mut ig = Ignored::default();
        let mut pb = istio_fault();
        pb.abort.as_mut().unwrap().error_type =
            Some(fault_pb::fault_abort::ErrorType::HttpStatus(99));
        assert_eq!(
            FaultConfig::from_proto(&pb, "", &mut ig).unwrap_err().field,
            "abort.http_status"
        );
        let mut pb = istio_fault();
        pb.abort.as_mut().unwrap().error_type = None;
        assert_eq!(
            FaultConfig::from_proto(&pb, "", &mut ig).unwrap_err().field,
            "abort"
        );
        let mut pb = istio_fault();
        pb.delay.as_mut().unwrap().fault_delay_secifier = None;
        assert_eq!(
            FaultConfig::from_proto(&pb, "", &mut ig).unwrap_err().field,
            "delay"
        );
        let mut pb = istio_fault();
        pb.delay.as_mut().unwrap().percentage = Some(FractionalPercent {
            numerator: 1,
            denominator: 7,
        });
        assert_eq!(
            FaultConfig::from_proto(&pb, "", &mut ig).unwrap_err().field,
            "delay.percentage.denominator"
        );
        let mut pb = istio_fault();
        pb.abort.as_mut().unwrap().error_type =
            Some(fault_pb::fault_abort::ErrorType::GrpcStatus(4));
        let cfg = FaultConfig::from_proto(&pb, "", &mut ig).unwrap();
        assert_eq!(cfg.abort.unwrap().source.grpc_code(), Some(4));
    }

    #[test]
    fn http_to_grpc_mapping() {
        for (h, g) in [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (502, 14),
            (503, 14),
            (504, 14),
            (200, 2),
            (500, 2),
        ] {
            assert_eq!(http_status_to_grpc(h), g, "{h}");
        }
    }

    #[test]
    fn istiod_client_chain_validates() {
        let filters = [
            filter(
                "envoy.filters.http.fault",
                Some(any_of(&istio_fault())),
                false,
            ),
            router(),
        ];
        let mut ig = Ignored::default();
        let chain = validate_http_filters(&filters, FilterSide::Client, &mut ig).unwrap();
        assert_eq!(chain.len(), 2);
        assert!(matches!(chain[0].config, HttpFilterConfig::Fault(_)));
        assert_eq!(chain[1].config, HttpFilterConfig::Router);
        assert!(ig.is_empty());
    }

    #[test]
    fn istiod_server_chain_validates() {
        let rbac = rbac_pb::Rbac::default();
        let filters = [
            filter("envoy.filters.http.rbac", Some(any_of(&rbac)), false),
            filter("envoy.filters.http.rbac.2", Some(any_of(&rbac)), false),
            router(),
        ];
        let chain =
            validate_http_filters(&filters, FilterSide::Server, &mut Ignored::default()).unwrap();
        assert_eq!(chain.len(), 3);
        // RBAC is server-only: required on a client it NACKs, optional it is dropped.
        let err = validate_http_filters(&filters, FilterSide::Client, &mut Ignored::default())
            .unwrap_err();
        assert_eq!(err.field, "http_filters[0].typed_config");
        assert!(err.reason.contains("client"), "{err}");
    }

    #[test]
    fn router_must_be_present_and_last() {
        let mut ig = Ignored::default();
        let fault = filter("fault", Some(any_of(&istio_fault())), false);
        let e = validate_http_filters(&[router(), fault.clone()], FilterSide::Client, &mut ig)
            .unwrap_err();
        assert_eq!(e.field, "http_filters[0]");
        let e = validate_http_filters(std::slice::from_ref(&fault), FilterSide::Client, &mut ig)
            .unwrap_err();
        assert_eq!(e.field, "http_filters");
        let e = validate_http_filters(&[], FilterSide::Client, &mut ig).unwrap_err();
        assert_eq!(e.field, "http_filters");
        // An optional unknown filter after the router is dropped, so the router is last.
        let chain = validate_http_filters(
            &[fault, router(), filter("cors", Some(unknown_any()), true)],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(ig.fields(), ["http_filters[2]"]);
    }

    #[test]
    fn unknown_filters_optional_vs_required() {
        let mut ig = Ignored::default();
        let chain = validate_http_filters(
            &[filter("cors", Some(unknown_any()), true), router()],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap();
        assert_eq!(chain.len(), 1);
        let e = validate_http_filters(
            &[filter("cors", Some(unknown_any()), false), router()],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap_err();
        assert_eq!(e.field, "http_filters[0].typed_config");
        assert!(
            e.reason
                .contains("envoy.extensions.filters.http.cors.v3.Cors"),
            "{e}"
        );
        // A missing config is an error unless optional.
        let e = validate_http_filters(
            &[filter("x", None, false), router()],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap_err();
        assert_eq!(e.field, "http_filters[0].typed_config");
    }

    #[test]
    fn duplicate_and_empty_names() {
        let mut ig = Ignored::default();
        let e =
            validate_http_filters(&[router(), router()], FilterSide::Client, &mut ig).unwrap_err();
        assert_eq!(e.field, "http_filters[1].name");
        let e = validate_http_filters(
            &[filter("", Some(unknown_any()), true), router()],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap_err();
        assert_eq!(e.field, "http_filters[0].name");
    }

    #[test]
    fn typed_struct_filters() {
        let ts = |inner: &str, tag: &str| prost_types::Any {
            type_url: format!("type.googleapis.com/{tag}"),
            value: TypedStruct {
                type_url: format!("type.googleapis.com/{inner}"),
                value: None,
            }
            .encode_to_vec(),
        };
        let mut ig = Ignored::default();
        // Unknown type inside a TypedStruct behaves like any unknown type.
        let unknown = ts("acme.Filter", XDS_TYPED_STRUCT_TYPE);
        assert!(
            validate_http_filters(
                &[filter("a", Some(unknown.clone()), true), router()],
                FilterSide::Client,
                &mut ig
            )
            .is_ok()
        );
        let e = validate_http_filters(
            &[filter("a", Some(unknown), false), router()],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap_err();
        assert!(e.reason.contains("acme.Filter"), "{e}");
        // A router given as a udpa TypedStruct is accepted (its fields are unused anyway).
        let chain = validate_http_filters(
            &[filter(
                "r",
                Some(ts(ROUTER_TYPE, UDPA_TYPED_STRUCT_TYPE)),
                false,
            )],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap();
        assert_eq!(chain[0].config, HttpFilterConfig::Router);
        // A fault config in Struct form cannot be honoured: rejected, not silently dropped.
        let e = validate_http_filters(
            &[
                filter("f", Some(ts(FAULT_TYPE, XDS_TYPED_STRUCT_TYPE)), false),
                router(),
            ],
            FilterSide::Client,
            &mut ig,
        )
        .unwrap_err();
        assert_eq!(e.field, "http_filters[0].typed_config");
    }

    #[test]
    fn bad_bytes_are_rejected() {
        let garbage = prost_types::Any {
            type_url: format!("type.googleapis.com/{FAULT_TYPE}"),
            value: vec![0xff, 0xff, 0xff],
        };
        let e = validate_http_filters(
            &[filter("f", Some(garbage), true), router()],
            FilterSide::Client,
            &mut Ignored::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "http_filters[0].typed_config");
        assert!(e.reason.contains("cannot decode"), "{e}");
    }

    #[test]
    fn overrides() {
        let mut ig = Ignored::default();
        let o = parse_filter_override("fault", &any_of(&istio_fault()), "vh", &mut ig).unwrap();
        assert!(matches!(o, Some(FilterOverride::Fault(_))));
        let per_route = rbac_pb::RbacPerRoute { rbac: None };
        let o = parse_filter_override("rbac", &any_of(&per_route), "vh", &mut ig).unwrap();
        assert!(matches!(o, Some(FilterOverride::Rbac(_))));
        // Wrapped in FilterConfig.
        let wrapped = route_pb::FilterConfig {
            config: Some(any_of(&istio_fault())),
            is_optional: false,
            disabled: false,
        };
        let o = parse_filter_override("fault", &any_of(&wrapped), "vh", &mut ig).unwrap();
        assert!(matches!(o, Some(FilterOverride::Fault(_))));
        // Unknown: skipped only when the wrapper says optional.
        let opt = route_pb::FilterConfig {
            config: Some(unknown_any()),
            is_optional: true,
            disabled: false,
        };
        assert_eq!(
            parse_filter_override("cors", &any_of(&opt), "vh", &mut ig).unwrap(),
            None
        );
        assert!(
            ig.fields()
                .contains(&"vh.typed_per_filter_config[cors]".to_string())
        );
        let e = parse_filter_override("cors", &unknown_any(), "vh", &mut ig).unwrap_err();
        assert_eq!(e.field, "typed_per_filter_config[cors]");
        // Wrong types for known filters.
        let e = parse_filter_override("r", &any_of(&router_pb::Router::default()), "", &mut ig)
            .unwrap_err();
        assert!(e.reason.contains("router"), "{e}");
        let e = parse_filter_override("rbac", &any_of(&rbac_pb::Rbac::default()), "", &mut ig)
            .unwrap_err();
        assert!(e.reason.contains("RBACPerRoute"), "{e}");
        // Invalid fault override: the error names the entry and the field.
        let mut bad = istio_fault();
        bad.abort.as_mut().unwrap().error_type = None;
        let e = parse_filter_override("fault", &any_of(&bad), "", &mut ig).unwrap_err();
        assert_eq!(e.field, "typed_per_filter_config[fault].abort");
    }
}
