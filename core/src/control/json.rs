//! A readable JSON rendering of the xDS resources skiff emits, in the shape of Envoy's and
//! istioctl's config dumps (proto field names, `@type` on every `Any`, durations as `"1.5s"`,
//! enums by name). Used by the golden tests and config dumps.
//!
//! It is not a general proto3 JSON mapper (the core carries no descriptors): it maps the fields
//! translation sets. Anything else that is set is never silently dropped: each message's
//! remaining fields are compared with the default, and any difference is rendered under
//! `"_unmapped"` as Rust debug text, so a golden file always shows the whole resource.

use core::fmt::Debug;

use prost::{Message, Name};
use prost_types::Any;
use serde_json::{Map, Value};

use crate::pb::envoy::config::cluster::v3 as cluster;
use crate::pb::envoy::config::core::v3 as core_pb;
use crate::pb::envoy::config::endpoint::v3 as endpoint;
use crate::pb::envoy::config::listener::v3 as listener;
use crate::pb::envoy::config::rbac::v3 as rbac;
use crate::pb::envoy::config::route::v3 as route;
use crate::pb::envoy::extensions::filters::common::fault::v3 as common_fault;
use crate::pb::envoy::extensions::filters::http::fault::v3 as fault;
use crate::pb::envoy::extensions::filters::http::rbac::v3 as rbac_filter;
use crate::pb::envoy::extensions::filters::http::router::v3 as router;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use crate::pb::envoy::extensions::transport_sockets::tls::v3 as tls;
use crate::pb::envoy::r#type::matcher::v3 as matcher;
use crate::pb::envoy::r#type::v3 as types;

use super::resources::Resources;

type Obj = Map<String, Value>;

/// Renders a whole resource set: `{type_url: {name: {"version": .., "resource": ..}}}`.
pub fn resources_to_json(resources: &Resources) -> Value {
    let mut out = Obj::new();
    for t in resources.type_urls() {
        let mut by_name = Obj::new();
        for (name, r) in resources.of_type(t).into_iter().flatten() {
            by_name.insert(
                name.clone(),
                obj([
                    ("version", Value::String(r.version.clone())),
                    ("resource", any_to_json(&r.resource)),
                ]),
            );
        }
        out.insert(t.to_string(), Value::Object(by_name));
    }
    Value::Object(out)
}

/// Renders one `Any`, decoding the types skiff emits; others show their type and size.
pub fn any_to_json(a: &Any) -> Value {
    let mut out = Obj::new();
    out.insert("@type".into(), Value::String(a.type_url.clone()));
    let body = match a.type_url.as_str() {
        t if t == listener::Listener::type_url() => decode(a, listener_json),
        t if t == route::RouteConfiguration::type_url() => decode(a, route_config_json),
        t if t == cluster::Cluster::type_url() => decode(a, cluster_json),
        t if t == endpoint::ClusterLoadAssignment::type_url() => decode(a, cla_json),
        t if t == hcm::HttpConnectionManager::type_url() => decode(a, hcm_json),
        t if t == fault::HttpFault::type_url() => decode(a, fault_json),
        t if t == router::Router::type_url() => {
            decode(a, |r: router::Router| finish(Obj::new(), r))
        }
        t if t == rbac_filter::Rbac::type_url() => decode(a, rbac_filter_json),
        t if t == tls::UpstreamTlsContext::type_url() => decode(a, upstream_tls_json),
        t if t == tls::DownstreamTlsContext::type_url() => decode(a, downstream_tls_json),
        _ if a.value.is_empty() => Ok(Value::Object(Obj::new())),
        _ => Ok(obj([("_bytes", Value::from(a.value.len()))])),
    };
    match body {
        Ok(Value::Object(m)) => out.extend(m),
        Ok(other) => {
            out.insert("value".into(), other);
        }
        Err(e) => {
            out.insert("_decode_error".into(), Value::String(e.to_string()));
        }
    }
    Value::Object(out)
}

fn decode<M: Message + Default>(
    a: &Any,
    f: impl FnOnce(M) -> Value,
) -> Result<Value, prost::DecodeError> {
    M::decode(a.value.as_slice()).map(f)
}

/// Adds `_unmapped` when fields this renderer does not know are set.
fn finish<M: Debug + Default + PartialEq>(mut o: Obj, rest: M) -> Value {
    if rest != M::default() {
        o.insert("_unmapped".into(), Value::String(format!("{rest:?}")));
    }
    Value::Object(o)
}

fn obj<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn put(o: &mut Obj, k: &str, v: Value) {
    o.insert(k.into(), v);
}

fn put_str(o: &mut Obj, k: &str, v: String) {
    if !v.is_empty() {
        o.insert(k.into(), Value::String(v));
    }
}

fn put_opt<T>(o: &mut Obj, k: &str, v: Option<T>, f: impl FnOnce(T) -> Value) {
    if let Some(v) = v {
        o.insert(k.into(), f(v));
    }
}

fn put_list<T>(o: &mut Obj, k: &str, v: Vec<T>, f: impl FnMut(T) -> Value) {
    if !v.is_empty() {
        o.insert(k.into(), Value::Array(v.into_iter().map(f).collect()));
    }
}

/// Protobuf JSON duration: `"0s"`, `"1.500s"` → `"1.5s"`.
fn duration(d: prost_types::Duration) -> Value {
    if d.nanos == 0 {
        return Value::String(format!("{}s", d.seconds));
    }
    let frac = format!("{:09}", d.nanos.unsigned_abs());
    Value::String(format!("{}.{}s", d.seconds, frac.trim_end_matches('0')))
}

fn any_box(a: Any) -> Value {
    any_to_json(&a)
}

fn address(mut a: core_pb::Address) -> Value {
    let mut o = Obj::new();
    if let Some(core_pb::address::Address::SocketAddress(mut s)) = a.address.take() {
        let mut so = Obj::new();
        put_str(&mut so, "address", core::mem::take(&mut s.address));
        if let Some(core_pb::socket_address::PortSpecifier::PortValue(p)) = s.port_specifier.take()
        {
            put(&mut so, "port_value", Value::from(p));
        }
        put(&mut o, "socket_address", finish(so, s));
    } else if let Some(other) = a.address.take() {
        put(&mut o, "_unmapped", Value::String(format!("{other:?}")));
    }
    finish(o, a)
}

fn config_source(mut c: core_pb::ConfigSource) -> Value {
    let mut o = Obj::new();
    if let Some(core_pb::config_source::ConfigSourceSpecifier::Ads(_)) = c.config_source_specifier {
        c.config_source_specifier = None;
        put(&mut o, "ads", Value::Object(Obj::new()));
    }
    finish(o, c)
}

fn listener_json(mut l: listener::Listener) -> Value {
    let mut o = Obj::new();
    put_str(&mut o, "name", core::mem::take(&mut l.name));
    put_opt(&mut o, "address", l.address.take(), address);
    put_list(
        &mut o,
        "filter_chains",
        core::mem::take(&mut l.filter_chains),
        filter_chain_json,
    );
    put_opt(&mut o, "api_listener", l.api_listener.take(), |mut a| {
        let mut ao = Obj::new();
        put_opt(&mut ao, "api_listener", a.api_listener.take(), any_box);
        finish(ao, a)
    });
    finish(o, l)
}

fn filter_chain_json(mut c: listener::FilterChain) -> Value {
    let mut o = Obj::new();
    put_str(&mut o, "name", core::mem::take(&mut c.name));
    put_list(
        &mut o,
        "filters",
        core::mem::take(&mut c.filters),
        |mut f| {
            let mut fo = Obj::new();
            put_str(&mut fo, "name", core::mem::take(&mut f.name));
            if let Some(listener::filter::ConfigType::TypedConfig(a)) = f.config_type.take() {
                put(&mut fo, "typed_config", any_to_json(&a));
            }
            finish(fo, f)
        },
    );
    put_opt(
        &mut o,
        "transport_socket",
        c.transport_socket.take(),
        transport_socket_json,
    );
    finish(o, c)
}

fn transport_socket_json(mut t: core_pb::TransportSocket) -> Value {
    let mut o = Obj::new();
    put_str(&mut o, "name", core::mem::take(&mut t.name));
    if let Some(core_pb::transport_socket::ConfigType::TypedConfig(a)) = t.config_type.take() {
        put(&mut o, "typed_config", any_to_json(&a));
    }
    finish(o, t)
}

fn hcm_json(mut h: hcm::HttpConnectionManager) -> Value {
    let mut o = Obj::new();
    put_list(
        &mut o,
        "http_filters",
        core::mem::take(&mut h.http_filters),
        |mut f| {
            let mut fo = Obj::new();
            put_str(&mut fo, "name", core::mem::take(&mut f.name));
            if let Some(hcm::http_filter::ConfigType::TypedConfig(a)) = f.config_type.take() {
                put(&mut fo, "typed_config", any_to_json(&a));
            }
            finish(fo, f)
        },
    );
    match h.route_specifier.take() {
        Some(hcm::http_connection_manager::RouteSpecifier::Rds(mut r)) => {
            let mut ro = Obj::new();
            put_opt(
                &mut ro,
                "config_source",
                r.config_source.take(),
                config_source,
            );
            put_str(
                &mut ro,
                "route_config_name",
                core::mem::take(&mut r.route_config_name),
            );
            put(&mut o, "rds", finish(ro, r));
        }
        Some(hcm::http_connection_manager::RouteSpecifier::RouteConfig(rc)) => {
            put(&mut o, "route_config", route_config_json(rc));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_route_specifier",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    finish(o, h)
}

fn route_config_json(mut rc: route::RouteConfiguration) -> Value {
    let mut o = Obj::new();
    put_str(&mut o, "name", core::mem::take(&mut rc.name));
    put_list(
        &mut o,
        "virtual_hosts",
        core::mem::take(&mut rc.virtual_hosts),
        |mut v| {
            let mut vo = Obj::new();
            put_str(&mut vo, "name", core::mem::take(&mut v.name));
            put_list(
                &mut vo,
                "domains",
                core::mem::take(&mut v.domains),
                Value::String,
            );
            put_list(
                &mut vo,
                "routes",
                core::mem::take(&mut v.routes),
                route_json,
            );
            if v.include_request_attempt_count {
                v.include_request_attempt_count = false;
                put(&mut vo, "include_request_attempt_count", Value::Bool(true));
            }
            finish(vo, v)
        },
    );
    finish(o, rc)
}

fn string_matcher_json(mut m: matcher::StringMatcher) -> Value {
    use matcher::string_matcher::MatchPattern;
    let mut o = Obj::new();
    match m.match_pattern.take() {
        Some(MatchPattern::Exact(s)) => put(&mut o, "exact", Value::String(s)),
        Some(MatchPattern::Prefix(s)) => put(&mut o, "prefix", Value::String(s)),
        Some(MatchPattern::Suffix(s)) => put(&mut o, "suffix", Value::String(s)),
        Some(MatchPattern::Contains(s)) => put(&mut o, "contains", Value::String(s)),
        Some(MatchPattern::SafeRegex(r)) => put(&mut o, "safe_regex", regex_json(r)),
        Some(other) => put(
            &mut o,
            "_unmapped_pattern",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    if m.ignore_case {
        m.ignore_case = false;
        put(&mut o, "ignore_case", Value::Bool(true));
    }
    finish(o, m)
}

fn regex_json(mut r: matcher::RegexMatcher) -> Value {
    let mut o = Obj::new();
    put(
        &mut o,
        "regex",
        Value::String(core::mem::take(&mut r.regex)),
    );
    finish(o, r)
}

fn struct_json(s: prost_types::Struct) -> Value {
    use prost_types::value::Kind;
    fn value(v: prost_types::Value) -> Value {
        match v.kind {
            Some(Kind::StringValue(s)) => Value::String(s),
            Some(Kind::BoolValue(b)) => Value::Bool(b),
            Some(Kind::NumberValue(n)) => Value::from(n),
            Some(Kind::StructValue(s)) => struct_json(s),
            Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(value).collect()),
            Some(Kind::NullValue(_)) | None => Value::Null,
        }
    }
    Value::Object(s.fields.into_iter().map(|(k, v)| (k, value(v))).collect())
}

fn metadata_json(mut m: core_pb::Metadata) -> Value {
    let mut o = Obj::new();
    let mut fm: Vec<_> = core::mem::take(&mut m.filter_metadata)
        .into_iter()
        .collect();
    fm.sort_by(|a, b| a.0.cmp(&b.0));
    if !fm.is_empty() {
        put(
            &mut o,
            "filter_metadata",
            Value::Object(fm.into_iter().map(|(k, v)| (k, struct_json(v))).collect()),
        );
    }
    finish(o, m)
}

fn route_json(mut r: route::Route) -> Value {
    let mut o = Obj::new();
    put_str(&mut o, "name", core::mem::take(&mut r.name));
    put_opt(&mut o, "match", r.r#match.take(), route_match_json);
    put_opt(&mut o, "metadata", r.metadata.take(), metadata_json);
    put_opt(&mut o, "decorator", r.decorator.take(), |mut d| {
        let mut dobj = Obj::new();
        put_str(&mut dobj, "operation", core::mem::take(&mut d.operation));
        finish(dobj, d)
    });
    let mut tpfc: Vec<_> = core::mem::take(&mut r.typed_per_filter_config)
        .into_iter()
        .collect();
    tpfc.sort_by(|a, b| a.0.cmp(&b.0));
    if !tpfc.is_empty() {
        put(
            &mut o,
            "typed_per_filter_config",
            Value::Object(
                tpfc.into_iter()
                    .map(|(k, v)| (k, any_to_json(&v)))
                    .collect(),
            ),
        );
    }
    match r.action.take() {
        Some(route::route::Action::Route(a)) => put(&mut o, "route", route_action_json(a)),
        Some(route::route::Action::NonForwardingAction(_)) => {
            put(&mut o, "non_forwarding_action", Value::Object(Obj::new()));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_action",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    finish(o, r)
}

fn route_match_json(mut m: route::RouteMatch) -> Value {
    use route::route_match::PathSpecifier;
    let mut o = Obj::new();
    match m.path_specifier.take() {
        Some(PathSpecifier::Prefix(p)) => put(&mut o, "prefix", Value::String(p)),
        Some(PathSpecifier::Path(p)) => put(&mut o, "path", Value::String(p)),
        Some(PathSpecifier::SafeRegex(r)) => put(&mut o, "safe_regex", regex_json(r)),
        Some(other) => put(
            &mut o,
            "_unmapped_path",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    put_opt(
        &mut o,
        "case_sensitive",
        m.case_sensitive.take(),
        Value::Bool,
    );
    put_list(
        &mut o,
        "headers",
        core::mem::take(&mut m.headers),
        |mut h| {
            let mut ho = Obj::new();
            put_str(&mut ho, "name", core::mem::take(&mut h.name));
            match h.header_match_specifier.take() {
                Some(route::header_matcher::HeaderMatchSpecifier::PresentMatch(b)) => {
                    put(&mut ho, "present_match", Value::Bool(b));
                }
                Some(route::header_matcher::HeaderMatchSpecifier::StringMatch(s)) => {
                    put(&mut ho, "string_match", string_matcher_json(s));
                }
                Some(other) => put(
                    &mut ho,
                    "_unmapped_match",
                    Value::String(format!("{other:?}")),
                ),
                None => {}
            }
            finish(ho, h)
        },
    );
    finish(o, m)
}

#[allow(deprecated)] // max_grpc_timeout is rendered because istiod (and skiff) set it.
fn route_action_json(mut a: route::RouteAction) -> Value {
    use route::route_action::ClusterSpecifier;
    let mut o = Obj::new();
    match a.cluster_specifier.take() {
        Some(ClusterSpecifier::Cluster(c)) => put(&mut o, "cluster", Value::String(c)),
        Some(ClusterSpecifier::WeightedClusters(mut w)) => {
            let mut wo = Obj::new();
            put_list(
                &mut wo,
                "clusters",
                core::mem::take(&mut w.clusters),
                |mut c| {
                    let mut co = Obj::new();
                    put_str(&mut co, "name", core::mem::take(&mut c.name));
                    put_opt(&mut co, "weight", c.weight.take(), Value::from);
                    finish(co, c)
                },
            );
            put(&mut o, "weighted_clusters", finish(wo, w));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_cluster",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    put_opt(&mut o, "timeout", a.timeout.take(), duration);
    put_opt(
        &mut o,
        "max_grpc_timeout",
        a.max_grpc_timeout.take(),
        duration,
    );
    put_opt(
        &mut o,
        "max_stream_duration",
        a.max_stream_duration.take(),
        |mut m| {
            let mut mo = Obj::new();
            put_opt(
                &mut mo,
                "max_stream_duration",
                m.max_stream_duration.take(),
                duration,
            );
            finish(mo, m)
        },
    );
    put_opt(&mut o, "retry_policy", a.retry_policy.take(), |mut r| {
        let mut ro = Obj::new();
        put_str(&mut ro, "retry_on", core::mem::take(&mut r.retry_on));
        put_opt(&mut ro, "num_retries", r.num_retries.take(), Value::from);
        put_opt(
            &mut ro,
            "per_try_timeout",
            r.per_try_timeout.take(),
            duration,
        );
        put_list(
            &mut ro,
            "retry_host_predicate",
            core::mem::take(&mut r.retry_host_predicate),
            |mut p| {
                let mut po = Obj::new();
                put_str(&mut po, "name", core::mem::take(&mut p.name));
                if let Some(route::retry_policy::retry_host_predicate::ConfigType::TypedConfig(a)) =
                    p.config_type.take()
                {
                    put(&mut po, "typed_config", any_to_json(&a));
                }
                finish(po, p)
            },
        );
        if r.host_selection_retry_max_attempts != 0 {
            put(
                &mut ro,
                "host_selection_retry_max_attempts",
                Value::from(r.host_selection_retry_max_attempts),
            );
            r.host_selection_retry_max_attempts = 0;
        }
        put_list(
            &mut ro,
            "retriable_status_codes",
            core::mem::take(&mut r.retriable_status_codes),
            Value::from,
        );
        finish(ro, r)
    });
    put_list(
        &mut o,
        "hash_policy",
        core::mem::take(&mut a.hash_policy),
        |mut h| {
            let mut ho = Obj::new();
            match h.policy_specifier.take() {
                Some(route::route_action::hash_policy::PolicySpecifier::Header(mut hh)) => {
                    let mut hdr = Obj::new();
                    put_str(
                        &mut hdr,
                        "header_name",
                        core::mem::take(&mut hh.header_name),
                    );
                    put(&mut ho, "header", finish(hdr, hh));
                }
                Some(other) => put(
                    &mut ho,
                    "_unmapped_policy",
                    Value::String(format!("{other:?}")),
                ),
                None => {}
            }
            finish(ho, h)
        },
    );
    finish(o, a)
}

fn percent(p: types::FractionalPercent) -> Value {
    let denom = match types::fractional_percent::DenominatorType::try_from(p.denominator) {
        Ok(types::fractional_percent::DenominatorType::Hundred) => "HUNDRED",
        Ok(types::fractional_percent::DenominatorType::TenThousand) => "TEN_THOUSAND",
        Ok(types::fractional_percent::DenominatorType::Million) => "MILLION",
        Err(_) => "UNKNOWN",
    };
    obj([
        ("numerator", Value::from(p.numerator)),
        ("denominator", Value::String(denom.to_string())),
    ])
}

fn fault_json(mut f: fault::HttpFault) -> Value {
    let mut o = Obj::new();
    put_opt(&mut o, "delay", f.delay.take(), |mut d| {
        let mut dobj = Obj::new();
        put_opt(&mut dobj, "percentage", d.percentage.take(), percent);
        if let Some(common_fault::fault_delay::FaultDelaySecifier::FixedDelay(fd)) =
            d.fault_delay_secifier.take()
        {
            put(&mut dobj, "fixed_delay", duration(fd));
        }
        finish(dobj, d)
    });
    put_opt(&mut o, "abort", f.abort.take(), |mut a| {
        let mut ao = Obj::new();
        put_opt(&mut ao, "percentage", a.percentage.take(), percent);
        match a.error_type.take() {
            Some(fault::fault_abort::ErrorType::HttpStatus(c)) => {
                put(&mut ao, "http_status", Value::from(c))
            }
            Some(fault::fault_abort::ErrorType::GrpcStatus(c)) => {
                put(&mut ao, "grpc_status", Value::from(c))
            }
            Some(other) => put(
                &mut ao,
                "_unmapped_error",
                Value::String(format!("{other:?}")),
            ),
            None => {}
        }
        finish(ao, a)
    });
    finish(o, f)
}

fn lb_policy_name(v: i32) -> Value {
    let s = match cluster::cluster::LbPolicy::try_from(v) {
        Ok(p) => p.as_str_name(),
        Err(_) => "UNKNOWN",
    };
    Value::String(s.to_string())
}

fn cluster_json(mut c: cluster::Cluster) -> Value {
    let mut o = Obj::new();
    put_str(&mut o, "name", core::mem::take(&mut c.name));
    put_str(
        &mut o,
        "alt_stat_name",
        core::mem::take(&mut c.alt_stat_name),
    );
    match c.cluster_discovery_type.take() {
        Some(cluster::cluster::ClusterDiscoveryType::Type(t)) => {
            let name =
                cluster::cluster::DiscoveryType::try_from(t).map_or("UNKNOWN", |d| d.as_str_name());
            put(&mut o, "type", Value::String(name.to_string()));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_type",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    put_opt(
        &mut o,
        "eds_cluster_config",
        c.eds_cluster_config.take(),
        |mut e| {
            let mut eo = Obj::new();
            put_opt(&mut eo, "eds_config", e.eds_config.take(), config_source);
            put_str(
                &mut eo,
                "service_name",
                core::mem::take(&mut e.service_name),
            );
            finish(eo, e)
        },
    );
    if c.lb_policy != 0 {
        put(&mut o, "lb_policy", lb_policy_name(c.lb_policy));
        c.lb_policy = 0;
    }
    match c.lb_config.take() {
        Some(cluster::cluster::LbConfig::RingHashLbConfig(mut r)) => {
            let mut ro = Obj::new();
            put_opt(
                &mut ro,
                "minimum_ring_size",
                r.minimum_ring_size.take(),
                Value::from,
            );
            put(&mut o, "ring_hash_lb_config", finish(ro, r));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_lb_config",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    put_opt(
        &mut o,
        "circuit_breakers",
        c.circuit_breakers.take(),
        |mut cb| {
            let mut co = Obj::new();
            put_list(
                &mut co,
                "thresholds",
                core::mem::take(&mut cb.thresholds),
                |mut t| {
                    let mut to = Obj::new();
                    put_opt(&mut to, "max_requests", t.max_requests.take(), Value::from);
                    finish(to, t)
                },
            );
            finish(co, cb)
        },
    );
    put_opt(
        &mut o,
        "outlier_detection",
        c.outlier_detection.take(),
        |mut od| {
            let mut oo = Obj::new();
            put_opt(
                &mut oo,
                "consecutive_5xx",
                od.consecutive_5xx.take(),
                Value::from,
            );
            put_opt(&mut oo, "interval", od.interval.take(), duration);
            put_opt(
                &mut oo,
                "base_ejection_time",
                od.base_ejection_time.take(),
                duration,
            );
            put_opt(
                &mut oo,
                "max_ejection_percent",
                od.max_ejection_percent.take(),
                Value::from,
            );
            put_opt(
                &mut oo,
                "enforcing_consecutive_5xx",
                od.enforcing_consecutive_5xx.take(),
                Value::from,
            );
            put_opt(
                &mut oo,
                "enforcing_success_rate",
                od.enforcing_success_rate.take(),
                Value::from,
            );
            finish(oo, od)
        },
    );
    put_opt(
        &mut o,
        "transport_socket",
        c.transport_socket.take(),
        transport_socket_json,
    );
    finish(o, c)
}

#[allow(deprecated)] // The deprecated certificate provider fields are rendered: istiod sends them.
fn common_tls_json(mut c: tls::CommonTlsContext) -> Value {
    let mut o = Obj::new();
    let plugin = |mut p: tls::CertificateProviderPluginInstance| {
        let mut po = Obj::new();
        put_str(
            &mut po,
            "instance_name",
            core::mem::take(&mut p.instance_name),
        );
        put_str(
            &mut po,
            "certificate_name",
            core::mem::take(&mut p.certificate_name),
        );
        finish(po, p)
    };
    let legacy = |mut p: tls::common_tls_context::CertificateProviderInstance| {
        let mut po = Obj::new();
        put_str(
            &mut po,
            "instance_name",
            core::mem::take(&mut p.instance_name),
        );
        put_str(
            &mut po,
            "certificate_name",
            core::mem::take(&mut p.certificate_name),
        );
        finish(po, p)
    };
    put_opt(
        &mut o,
        "tls_certificate_provider_instance",
        c.tls_certificate_provider_instance.take(),
        plugin,
    );
    put_opt(
        &mut o,
        "tls_certificate_certificate_provider_instance",
        c.tls_certificate_certificate_provider_instance.take(),
        legacy,
    );
    match c.validation_context_type.take() {
        Some(tls::common_tls_context::ValidationContextType::CombinedValidationContext(mut cv)) => {
            let mut co = Obj::new();
            put_opt(
                &mut co,
                "default_validation_context",
                cv.default_validation_context.take(),
                |mut v| {
                    let mut vo = Obj::new();
                    put_list(
                        &mut vo,
                        "match_subject_alt_names",
                        core::mem::take(&mut v.match_subject_alt_names),
                        string_matcher_json,
                    );
                    put_opt(
                        &mut vo,
                        "ca_certificate_provider_instance",
                        v.ca_certificate_provider_instance.take(),
                        plugin,
                    );
                    finish(vo, v)
                },
            );
            put_opt(
                &mut co,
                "validation_context_certificate_provider_instance",
                cv.validation_context_certificate_provider_instance.take(),
                legacy,
            );
            put(&mut o, "combined_validation_context", finish(co, cv));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_validation",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    finish(o, c)
}

fn upstream_tls_json(mut t: tls::UpstreamTlsContext) -> Value {
    let mut o = Obj::new();
    put_opt(
        &mut o,
        "common_tls_context",
        t.common_tls_context.take(),
        common_tls_json,
    );
    finish(o, t)
}

fn downstream_tls_json(mut t: tls::DownstreamTlsContext) -> Value {
    let mut o = Obj::new();
    put_opt(
        &mut o,
        "common_tls_context",
        t.common_tls_context.take(),
        common_tls_json,
    );
    put_opt(
        &mut o,
        "require_client_certificate",
        t.require_client_certificate.take(),
        Value::Bool,
    );
    finish(o, t)
}

fn cla_json(mut c: endpoint::ClusterLoadAssignment) -> Value {
    let mut o = Obj::new();
    put_str(&mut o, "cluster_name", core::mem::take(&mut c.cluster_name));
    put_list(
        &mut o,
        "endpoints",
        core::mem::take(&mut c.endpoints),
        |mut l| {
            let mut lo = Obj::new();
            put_opt(&mut lo, "locality", l.locality.take(), |mut loc| {
                let mut lco = Obj::new();
                put_str(&mut lco, "region", core::mem::take(&mut loc.region));
                put_str(&mut lco, "zone", core::mem::take(&mut loc.zone));
                put_str(&mut lco, "sub_zone", core::mem::take(&mut loc.sub_zone));
                finish(lco, loc)
            });
            put_list(
                &mut lo,
                "lb_endpoints",
                core::mem::take(&mut l.lb_endpoints),
                |mut e| {
                    let mut eo = Obj::new();
                    if let Some(endpoint::lb_endpoint::HostIdentifier::Endpoint(mut ep)) =
                        e.host_identifier.take()
                    {
                        let mut epo = Obj::new();
                        put_opt(&mut epo, "address", ep.address.take(), address);
                        put(&mut eo, "endpoint", finish(epo, ep));
                    }
                    if e.health_status != 0 {
                        let s = core_pb::HealthStatus::try_from(e.health_status)
                            .map_or("UNKNOWN", |h| h.as_str_name());
                        put(&mut eo, "health_status", Value::String(s.to_string()));
                        e.health_status = 0;
                    }
                    put_opt(
                        &mut eo,
                        "load_balancing_weight",
                        e.load_balancing_weight.take(),
                        Value::from,
                    );
                    finish(eo, e)
                },
            );
            put_opt(
                &mut lo,
                "load_balancing_weight",
                l.load_balancing_weight.take(),
                Value::from,
            );
            finish(lo, l)
        },
    );
    finish(o, c)
}

fn rbac_filter_json(mut r: rbac_filter::Rbac) -> Value {
    let mut o = Obj::new();
    put_opt(&mut o, "rules", r.rules.take(), |mut rules| {
        let mut ro = Obj::new();
        let action =
            rbac::rbac::Action::try_from(rules.action).map_or("UNKNOWN", |a| a.as_str_name());
        put(&mut ro, "action", Value::String(action.to_string()));
        rules.action = 0;
        let mut policies: Vec<_> = core::mem::take(&mut rules.policies).into_iter().collect();
        policies.sort_by(|a, b| a.0.cmp(&b.0));
        let mut po = Obj::new();
        for (name, mut p) in policies {
            let mut pobj = Obj::new();
            put_list(
                &mut pobj,
                "permissions",
                core::mem::take(&mut p.permissions),
                permission_json,
            );
            put_list(
                &mut pobj,
                "principals",
                core::mem::take(&mut p.principals),
                principal_json,
            );
            po.insert(name, finish(pobj, p));
        }
        put(&mut ro, "policies", Value::Object(po));
        finish(ro, rules)
    });
    finish(o, r)
}

fn permission_json(mut p: rbac::Permission) -> Value {
    use rbac::permission::Rule;
    let mut o = Obj::new();
    match p.rule.take() {
        Some(Rule::Any(b)) => put(&mut o, "any", Value::Bool(b)),
        Some(Rule::AndRules(s)) => put(
            &mut o,
            "and_rules",
            obj([(
                "rules",
                Value::Array(s.rules.into_iter().map(permission_json).collect()),
            )]),
        ),
        Some(Rule::OrRules(s)) => put(
            &mut o,
            "or_rules",
            obj([(
                "rules",
                Value::Array(s.rules.into_iter().map(permission_json).collect()),
            )]),
        ),
        Some(Rule::UrlPath(mut pm)) => {
            let mut pmo = Obj::new();
            if let Some(matcher::path_matcher::Rule::Path(s)) = pm.rule.take() {
                put(&mut pmo, "path", string_matcher_json(s));
            }
            put(&mut o, "url_path", finish(pmo, pm));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_rule",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    finish(o, p)
}

fn principal_json(mut p: rbac::Principal) -> Value {
    use rbac::principal::Identifier;
    let mut o = Obj::new();
    match p.identifier.take() {
        Some(Identifier::Any(b)) => put(&mut o, "any", Value::Bool(b)),
        Some(Identifier::AndIds(s)) => put(
            &mut o,
            "and_ids",
            obj([(
                "ids",
                Value::Array(s.ids.into_iter().map(principal_json).collect()),
            )]),
        ),
        Some(Identifier::OrIds(s)) => put(
            &mut o,
            "or_ids",
            obj([(
                "ids",
                Value::Array(s.ids.into_iter().map(principal_json).collect()),
            )]),
        ),
        Some(Identifier::Authenticated(mut a)) => {
            let mut ao = Obj::new();
            put_opt(
                &mut ao,
                "principal_name",
                a.principal_name.take(),
                string_matcher_json,
            );
            put(&mut o, "authenticated", finish(ao, a));
        }
        Some(other) => put(
            &mut o,
            "_unmapped_identifier",
            Value::String(format!("{other:?}")),
        ),
        None => {}
    }
    finish(o, p)
}
