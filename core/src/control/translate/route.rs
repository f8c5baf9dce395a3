//! Route configurations (`grpcgen/rds.go` over istiod's sidecar virtual-host builder,
//! `core/httproute.go` and `core/route/route.go`).

use std::collections::BTreeMap;

use prost_types::value::Kind;

use crate::pb::envoy::config::core::v3 as core_pb;
use crate::pb::envoy::config::route::v3 as route;
use crate::pb::envoy::extensions::filters::common::fault::v3 as common_fault;
use crate::pb::envoy::extensions::filters::http::fault::v3 as fault;
use crate::pb::envoy::r#type::matcher::v3 as matcher;
use crate::pb::envoy::r#type::v3 as types;

use super::super::config::{
    AbortStatus, Fault, HttpMatch, HttpRoute, LoadBalancer, Retries, RouteDestination, ServicePort,
    StringMatch, resolve_host,
};
use super::cluster::proto_duration;
use super::listener::FAULT_FILTER;
use super::{Service, cluster_name, join_host_port};

/// Istio's default retry conditions (`core/route/retry/retry.go`). gRPC honours only
/// `cancelled` and `unavailable` of these and ignores the rest (gRFC A44).
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
/// Istio's default number of retries.
pub const DEFAULT_NUM_RETRIES: u32 = 2;

const PREVIOUS_HOSTS_PREDICATE: &str = "envoy.retry_host_predicates.previous_hosts";
const PREVIOUS_HOSTS_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

/// The route configuration `outbound|PORT||HOST` for one service port.
pub(crate) fn route_configuration(
    svc: &Service<'_>,
    port: &ServicePort,
    services: &BTreeMap<&str, Service<'_>>,
    extra_domains: &[String],
) -> route::RouteConfiguration {
    let mut domains = vhost_domains(svc, port.number);
    domains.extend(extra_domains.iter().cloned());
    let routes = match svc.vs {
        Some(vs) => {
            let namespace = &vs.meta.namespace;
            let config_path = format!(
                "/apis/networking.istio.io/v1/namespaces/{namespace}/virtual-service/{}",
                vs.meta.name
            );
            vs_routes(
                &vs.http,
                port.number,
                namespace,
                &vs.meta.name,
                &config_path,
                services,
            )
        }
        None => Vec::new(),
    };
    // A VirtualService that yields no route is not used (istiod: "no routes matched").
    let routes = if routes.is_empty() {
        vec![default_route(svc, port.number)]
    } else {
        routes
    };
    route::RouteConfiguration {
        name: cluster_name(port.number, "", svc.host),
        virtual_hosts: vec![route::VirtualHost {
            name: join_host_port(svc.host, port.number),
            domains,
            routes,
            // istiod's default proxy headers (`GetProxyHeadersFromProxyConfig`).
            include_request_attempt_count: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// istiod's `generateVirtualHostDomains` for a proxyless client (ports kept) in the service's
/// own namespace, with `ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN` on (the default since 1.27):
/// `host`, `host:port`, the absolute forms `host.` / `host.:port`, for Kubernetes-style hosts
/// (`name.ns.svc.<domain>`) the short forms `name`, `name.ns.svc`, `name.ns` each with and
/// without the port, then each VIP with and without the port.
///
/// istiod computes domains per client namespace; skiff serves one view to every client and
/// uses the service's namespace. gRPC matches the virtual host against the listener name, which
/// is always `host:port` (or an interface name, added by the caller), so the choice only
/// affects which extra spellings are listed.
pub(crate) fn vhost_domains(svc: &Service<'_>, port: u32) -> Vec<String> {
    let host = svc.host;
    let mut d = vec![host.to_string(), join_host_port(host, port)];
    d.push(format!("{host}."));
    d.push(join_host_port(&format!("{host}."), port));
    // `generateAltVirtualHostsForKubernetesService`, same namespace: host = name.ns.svc.<domain>.
    let ns = &svc.se.meta.namespace;
    if let Some(ih) = host.find(".svc.")
        && let Some(name_ns) = host.get(..ih)
        && let Some((name, host_ns)) = name_ns.split_once('.')
        && host_ns == ns.as_str()
        && !name.is_empty()
    {
        for form in [
            name.to_string(),
            format!("{name_ns}.svc"),
            name_ns.to_string(),
        ] {
            d.push(join_host_port(&form, port));
            d.insert(d.len() - 1, form);
        }
    }
    for vip in &svc.se.addresses {
        d.push(vip.clone());
        d.push(join_host_port(vip, port));
    }
    d
}

fn consistent_hash_header(svc: Option<&Service<'_>>, subset: Option<&str>) -> Option<String> {
    let dr = svc?.dr?;
    let subset_policy = subset.and_then(|s| {
        dr.subsets
            .iter()
            .find(|x| x.name == s)
            .and_then(|x| x.traffic_policy.as_ref())
    });
    let policy = dr.traffic_policy.merged_with(subset_policy);
    match policy.load_balancer {
        Some(LoadBalancer::ConsistentHash {
            http_header_name, ..
        }) => Some(http_header_name),
        _ => None,
    }
}

fn header_hash_policy(header: String) -> route::route_action::HashPolicy {
    route::route_action::HashPolicy {
        policy_specifier: Some(route::route_action::hash_policy::PolicySpecifier::Header(
            route::route_action::hash_policy::Header {
                header_name: header,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn previous_hosts() -> route::retry_policy::RetryHostPredicate {
    route::retry_policy::RetryHostPredicate {
        name: PREVIOUS_HOSTS_PREDICATE.into(),
        // PreviousHostsPredicate has no fields: its encoding is empty.
        config_type: Some(
            route::retry_policy::retry_host_predicate::ConfigType::TypedConfig(prost_types::Any {
                type_url: PREVIOUS_HOSTS_TYPE_URL.into(),
                value: Vec::new(),
            }),
        ),
    }
}

/// Istio's `retry.ConvertPolicy`: the mesh default when the route has no `retries`, none when
/// `attempts` is 0. With consistent hashing the previous-hosts predicate is left out (retrying
/// on another host would break affinity).
fn retry_policy(retries: Option<&Retries>, consistent_hash: bool) -> Option<route::RetryPolicy> {
    let mut out = route::RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.into(),
        num_retries: Some(DEFAULT_NUM_RETRIES),
        host_selection_retry_max_attempts: 5,
        retry_host_predicate: if consistent_hash {
            Vec::new()
        } else {
            vec![previous_hosts()]
        },
        ..Default::default()
    };
    let Some(r) = retries else {
        return Some(out);
    };
    if r.attempts == 0 {
        return None;
    }
    out.num_retries = Some(r.attempts);
    if let Some(on) = r.retry_on.as_deref().filter(|s| !s.trim().is_empty()) {
        // Numbers are HTTP status codes (`parseRetryOn`).
        let mut tokens = Vec::new();
        for part in on.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part.parse::<u32>() {
                Ok(code) if (100..600).contains(&code) => out.retriable_status_codes.push(code),
                _ => tokens.push(part),
            }
        }
        out.retry_on = tokens.join(",");
        if !out.retriable_status_codes.is_empty()
            && !out.retry_on.contains("retriable-status-codes")
        {
            out.retry_on.push_str(",retriable-status-codes");
        }
    }
    out.per_try_timeout = r.per_try_timeout.map(proto_duration);
    Some(out)
}

/// The route for a host without a VirtualService (`BuildDefaultHTTPOutboundRoute` plus the
/// DestinationRule's hash policy, `buildSidecarVirtualHostForService`).
#[allow(deprecated)] // istiod sets the deprecated max_grpc_timeout here; so does skiff.
fn default_route(svc: &Service<'_>, port: u32) -> route::Route {
    let cluster = cluster_name(port, "", svc.host);
    let mut action = route::RouteAction {
        cluster_specifier: Some(route::route_action::ClusterSpecifier::Cluster(cluster)),
        retry_policy: retry_policy(None, false),
        // `setTimeout(.., nil, nil)`: 0s = no deadline, in the deprecated field too.
        timeout: Some(prost_types::Duration::default()),
        max_grpc_timeout: Some(prost_types::Duration::default()),
        ..Default::default()
    };
    if let Some(h) = consistent_hash_header(Some(svc), None) {
        action.hash_policy.push(header_hash_policy(h));
    }
    route::Route {
        name: "default".into(),
        r#match: Some(route::RouteMatch {
            path_specifier: Some(route::route_match::PathSpecifier::Prefix("/".into())),
            ..Default::default()
        }),
        decorator: Some(route::Decorator {
            operation: format!("{}/*", join_host_port(svc.host, port)),
            ..Default::default()
        }),
        action: Some(route::route::Action::Route(action)),
        ..Default::default()
    }
}

fn string_matcher(m: &StringMatch) -> Option<matcher::StringMatcher> {
    use matcher::string_matcher::MatchPattern;
    let pattern = match m {
        StringMatch::Exact(s) => MatchPattern::Exact(s.clone()),
        StringMatch::Prefix(s) => MatchPattern::Prefix(s.clone()),
        StringMatch::Regex(s) => MatchPattern::SafeRegex(matcher::RegexMatcher {
            regex: s.clone(),
            ..Default::default()
        }),
        StringMatch::Present => return None,
    };
    Some(matcher::StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    })
}

/// `TranslateRouteMatch`.
fn route_match(m: Option<&HttpMatch>) -> route::RouteMatch {
    use route::route_match::PathSpecifier;
    let mut out = route::RouteMatch {
        path_specifier: Some(PathSpecifier::Prefix("/".into())),
        ..Default::default()
    };
    let Some(m) = m else {
        return out;
    };
    let mut headers: Vec<route::HeaderMatcher> = m
        .headers
        .iter()
        .map(|(name, sm)| route::HeaderMatcher {
            name: name.clone(),
            header_match_specifier: Some(match string_matcher(sm) {
                Some(s) => route::header_matcher::HeaderMatchSpecifier::StringMatch(s),
                None => route::header_matcher::HeaderMatchSpecifier::PresentMatch(true),
            }),
            ..Default::default()
        })
        .collect();
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    out.headers = headers;
    match &m.uri {
        Some(StringMatch::Exact(p)) => out.path_specifier = Some(PathSpecifier::Path(p.clone())),
        Some(StringMatch::Prefix(p)) => out.path_specifier = Some(PathSpecifier::Prefix(p.clone())),
        Some(StringMatch::Regex(r)) => {
            out.path_specifier = Some(PathSpecifier::SafeRegex(matcher::RegexMatcher {
                regex: r.clone(),
                ..Default::default()
            }))
        }
        Some(StringMatch::Present) | None => {}
    }
    // `ignoreUriCase` is not in the subset: always case sensitive, explicitly, as istiod writes it.
    out.case_sensitive = Some(true);
    out
}

/// `IsCatchAllRoute`: prefix `/` (or regex `.*`) and no header matchers.
fn is_catch_all(m: &route::RouteMatch) -> bool {
    use route::route_match::PathSpecifier;
    let path_all = match &m.path_specifier {
        Some(PathSpecifier::Prefix(p)) => p == "/",
        Some(PathSpecifier::SafeRegex(r)) => r.regex == ".*",
        _ => false,
    };
    path_all && m.headers.is_empty() && m.query_parameters.is_empty()
}

/// `GetRouteOperation`: `host:port<path>` for a single destination, else `vsName:port<path>`.
fn operation(
    m: &route::RouteMatch,
    single: Option<(&str, u32)>,
    vs_name: &str,
    port: u32,
) -> String {
    use route::route_match::PathSpecifier;
    let path = match &m.path_specifier {
        Some(PathSpecifier::Prefix(p)) => format!("{p}*"),
        Some(PathSpecifier::Path(p)) => p.clone(),
        Some(PathSpecifier::SafeRegex(r)) => r.regex.clone(),
        _ => "/*".to_string(),
    };
    match single {
        Some((host, p)) => format!("{host}:{p}{path}"),
        None => format!("{vs_name}:{port}{path}"),
    }
}

/// `TranslateFault`: percentages become parts per million.
fn fault_config(f: &Fault) -> fault::HttpFault {
    let pct = |v: f64| types::FractionalPercent {
        numerator: (v * 10_000.0) as u32,
        denominator: types::fractional_percent::DenominatorType::Million as i32,
    };
    fault::HttpFault {
        // `TranslateFault`: without `percentage` the delay falls back to the deprecated integer
        // `percent` (0, out of a hundred) and the abort carries no percentage at all.
        delay: f.delay.map(|(p, d)| common_fault::FaultDelay {
            percentage: Some(p.map_or(
                types::FractionalPercent {
                    numerator: 0,
                    denominator: types::fractional_percent::DenominatorType::Hundred as i32,
                },
                pct,
            )),
            fault_delay_secifier: Some(common_fault::fault_delay::FaultDelaySecifier::FixedDelay(
                proto_duration(d),
            )),
        }),
        abort: f.abort.map(|(p, status)| fault::FaultAbort {
            percentage: p.map(pct),
            error_type: Some(match status {
                AbortStatus::Http(c) => fault::fault_abort::ErrorType::HttpStatus(c),
                AbortStatus::Grpc(c) => fault::fault_abort::ErrorType::GrpcStatus(c),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Resolves a destination to its cluster (`GetDestinationCluster`): the explicit port, else the
/// destination's only port, else the port being routed.
fn destination_cluster(
    d: &RouteDestination,
    namespace: &str,
    listen_port: u32,
    services: &BTreeMap<&str, Service<'_>>,
) -> (String, String, u32) {
    let host = resolve_host(&d.destination.host, namespace);
    let svc = services.get(host.as_str());
    let port = d.destination.port.unwrap_or_else(|| match svc {
        Some(s) if s.se.ports.len() == 1 => s.se.ports.first().map_or(listen_port, |p| p.number),
        _ => listen_port,
    });
    let subset = d.destination.subset.clone().unwrap_or_default();
    (cluster_name(port, &subset, &host), host, port)
}

fn istio_metadata(config_path: &str) -> core_pb::Metadata {
    let mut fields = BTreeMap::new();
    fields.insert(
        "config".to_string(),
        prost_types::Value {
            kind: Some(Kind::StringValue(config_path.to_string())),
        },
    );
    let mut md = core_pb::Metadata::default();
    // One entry: the HashMap's encoding order cannot vary.
    md.filter_metadata
        .insert("istio".to_string(), prost_types::Struct { fields });
    md
}

/// `BuildHTTPRoutesForVirtualService` + `TranslateRoute` for the mesh gateway.
fn vs_routes(
    http: &[HttpRoute],
    port: u32,
    namespace: &str,
    vs_name: &str,
    config_path: &str,
    services: &BTreeMap<&str, Service<'_>>,
) -> Vec<route::Route> {
    let mut out = Vec::new();
    for h in http {
        let matches: Vec<Option<&HttpMatch>> = if h.matches.is_empty() {
            vec![None]
        } else {
            h.matches.iter().map(Some).collect()
        };
        let mut catch_all = h.matches.is_empty();
        for m in matches {
            let r = translate_route(h, m, port, namespace, vs_name, config_path, services);
            let all = r.r#match.as_ref().is_some_and(is_catch_all);
            out.push(r);
            // Routes match in order: nothing after a catch-all can ever match.
            if all {
                catch_all = true;
                break;
            }
        }
        if catch_all {
            break;
        }
    }
    out
}

fn translate_route(
    h: &HttpRoute,
    m: Option<&HttpMatch>,
    port: u32,
    namespace: &str,
    vs_name: &str,
    config_path: &str,
    services: &BTreeMap<&str, Service<'_>>,
) -> route::Route {
    let mut name = h.name.clone();
    if let Some(m) = m
        && !m.name.is_empty()
    {
        name = format!("{name}.{}", m.name);
    }
    let rmatch = route_match(m);
    // `setTimeout` for a proxyless node: `timeout` and `max_stream_duration` both carry the
    // VirtualService timeout, 0s (no deadline) when unset (gRFC A31 reads the latter).
    let timeout = proto_duration(h.timeout.unwrap_or_default());
    let mut action = route::RouteAction {
        timeout: Some(timeout),
        max_stream_duration: Some(route::route_action::MaxStreamDuration {
            max_stream_duration: Some(timeout),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut single = None;
    let mut consistent_hash = false;
    if let [only] = h.route.as_slice() {
        let (cluster, host, dport) = destination_cluster(only, namespace, port, services);
        if let Some(hh) = consistent_hash_header(
            services.get(host.as_str()),
            only.destination.subset.as_deref(),
        ) {
            action.hash_policy.push(header_hash_policy(hh));
            consistent_hash = true;
        }
        single = Some((host, dport));
        action.cluster_specifier = Some(route::route_action::ClusterSpecifier::Cluster(cluster));
    } else {
        let mut clusters = Vec::new();
        for d in &h.route {
            // Zero-weight destinations are dropped when others exist (`applyHTTPRouteDestination`).
            if d.weight == 0 {
                continue;
            }
            let (cluster, host, _) = destination_cluster(d, namespace, port, services);
            if let Some(hh) =
                consistent_hash_header(services.get(host.as_str()), d.destination.subset.as_deref())
            {
                action.hash_policy.push(header_hash_policy(hh));
            }
            clusters.push(route::weighted_cluster::ClusterWeight {
                name: cluster,
                weight: Some(d.weight),
                ..Default::default()
            });
        }
        action.cluster_specifier = Some(route::route_action::ClusterSpecifier::WeightedClusters(
            route::WeightedCluster {
                clusters,
                ..Default::default()
            },
        ));
    }
    action.retry_policy = retry_policy(h.retries.as_ref(), consistent_hash);
    let op = operation(
        &rmatch,
        single.as_ref().map(|(h, p)| (h.as_str(), *p)),
        vs_name,
        port,
    );
    let mut out = route::Route {
        name,
        r#match: Some(rmatch),
        metadata: Some(istio_metadata(config_path)),
        decorator: Some(route::Decorator {
            operation: op,
            ..Default::default()
        }),
        action: Some(route::route::Action::Route(action)),
        ..Default::default()
    };
    if let Some(f) = &h.fault {
        // Per-route override of the listener's (empty) fault filter, gRFC A33. One entry: the
        // HashMap's encoding order cannot vary.
        out.typed_per_filter_config
            .insert(FAULT_FILTER.to_string(), super::any(&fault_config(f)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::services;
    use super::*;
    use crate::control::config::parse_str;

    #[test]
    fn non_kubernetes_hosts_get_only_absolute_forms_and_vips() {
        let cfg = parse_str(
            "t.yaml",
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api}\nspec:\n  \
             hosts: [api.example.com]\n  addresses: ['2001:db8::1']\n  ports: [{number: 443, name: grpc}]\n",
        )
        .unwrap()
        .config;
        let svcs = services(&cfg);
        let svc = &svcs["api.example.com"];
        assert_eq!(
            vhost_domains(svc, 443),
            [
                "api.example.com",
                "api.example.com:443",
                "api.example.com.",
                "api.example.com.:443",
                "2001:db8::1",
                "[2001:db8::1]:443"
            ]
        );
    }

    #[test]
    fn retry_on_numbers_become_status_codes() {
        let r = retry_policy(
            Some(&Retries {
                attempts: 4,
                per_try_timeout: None,
                retry_on: Some("503, unavailable".into()),
            }),
            true,
        )
        .unwrap();
        assert_eq!(r.retry_on, "unavailable,retriable-status-codes");
        assert_eq!(r.retriable_status_codes, [503]);
        assert!(r.retry_host_predicate.is_empty());
        assert_eq!(r.num_retries, Some(4));
        let none = Retries {
            attempts: 0,
            per_try_timeout: None,
            retry_on: None,
        };
        assert!(retry_policy(Some(&none), false).is_none());
    }
}
