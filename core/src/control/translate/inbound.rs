//! gRFC A36 server listeners (`grpcgen/lds.go` `buildInboundListeners`), with the mTLS mode from
//! PeerAuthentication and RBAC filters from AuthorizationPolicy.
//!
//! Kept deliberately close to istiod; the security work will extend it.

use std::collections::BTreeMap;

use crate::pb::envoy::config::listener::v3 as listener;
use crate::pb::envoy::config::rbac::v3 as rbac;
use crate::pb::envoy::config::route::v3 as route;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use crate::pb::envoy::extensions::transport_sockets::tls::v3 as tls;
use crate::pb::envoy::r#type::matcher::v3 as matcher;

use super::super::config::{
    AuthorizationPolicy, AuthzAction, MeshConfig, MtlsMode, ROOT_NAMESPACE, WorkloadEndpoint,
    labels_match,
};
use super::cluster::{common_tls_context, transport_socket};
use super::encode::rbac_filter_any;
use super::listener::{http_filter_router, socket_address};
use super::{Service, any, inbound_listener_name};

/// istiod's filter name for the ALLOW policies.
pub const RBAC_FILTER: &str = "envoy.filters.http.rbac";
/// istiod's filter name for the DENY policies (evaluated first).
pub const RBAC_DENY_FILTER: &str = "envoy.filters.http.rbac.DENY";

/// One server listener per endpoint `IP:PORT` (first declaration wins when two services share
/// a workload port), in name order.
pub(crate) fn server_listeners(
    config: &MeshConfig,
    services: &BTreeMap<&str, Service<'_>>,
) -> Vec<listener::Listener> {
    let mut by_name: BTreeMap<String, listener::Listener> = BTreeMap::new();
    for svc in services.values() {
        let ns = &svc.se.meta.namespace;
        for ep in &svc.endpoints {
            for port in &svc.se.ports {
                let p = Service::endpoint_port(ep, port);
                let name = inbound_listener_name(&ep.address, p);
                if by_name.contains_key(&name) {
                    continue;
                }
                let chain = filter_chain(config, ns, ep);
                by_name.insert(
                    name.clone(),
                    listener::Listener {
                        name,
                        address: Some(socket_address(&ep.address, p)),
                        filter_chains: vec![chain],
                        ..Default::default()
                    },
                );
            }
        }
    }
    by_name.into_values().collect()
}

/// The effective mTLS mode for a workload: workload selector, then namespace-wide, then
/// mesh-wide (root namespace), PERMISSIVE by default (Istio's default).
fn mtls_mode(config: &MeshConfig, ns: &str, ep: &WorkloadEndpoint) -> MtlsMode {
    let pas = &config.peer_authentications;
    let workload = pas.iter().find(|pa| {
        pa.meta.namespace == ns
            && pa.mode != MtlsMode::Unset
            && pa
                .selector
                .as_ref()
                .is_some_and(|s| !s.is_empty() && labels_match(s, &ep.labels))
    });
    let namespace_wide = |n: &str| {
        pas.iter().find(|pa| {
            pa.meta.namespace == n
                && pa.mode != MtlsMode::Unset
                && pa.selector.as_ref().is_none_or(BTreeMap::is_empty)
        })
    };
    workload
        .or_else(|| namespace_wide(ns))
        .or_else(|| namespace_wide(ROOT_NAMESPACE))
        .map_or(MtlsMode::Permissive, |pa| pa.mode)
}

fn filter_chain(config: &MeshConfig, ns: &str, ep: &WorkloadEndpoint) -> listener::FilterChain {
    let mut mode = mtls_mode(config, ns, ep);
    // `buildInboundFilterChains`: gRPC has no PERMISSIVE (one filter chain, no protocol
    // sniffing, gRFC A36). With the auto-mTLS label clients will use mTLS, so serve STRICT;
    // otherwise plaintext.
    if mode == MtlsMode::Permissive {
        mode = if ep
            .labels
            .get("security.istio.io/tlsMode")
            .map(String::as_str)
            == Some("istio")
        {
            MtlsMode::Strict
        } else {
            MtlsMode::Disable
        };
    }
    let mtls = mode == MtlsMode::Strict;
    let suffix = if mtls { "mtls" } else { "plaintext" };

    let mut filters = Vec::new();
    let policies: Vec<&AuthorizationPolicy> = config
        .authorization_policies
        .iter()
        .filter(|ap| applies(ap, ns, ep))
        .collect();
    let deny = rbac_policies(&policies, AuthzAction::Deny);
    if !deny.is_empty() {
        filters.push(hcm::HttpFilter {
            name: RBAC_DENY_FILTER.into(),
            config_type: Some(hcm::http_filter::ConfigType::TypedConfig(rbac_filter_any(
                rbac::rbac::Action::Deny,
                &deny,
            ))),
            ..Default::default()
        });
    }
    // Deviation: an ALLOW policy without rules allows nothing (Istio's semantics), so when any
    // ALLOW policy applies the ALLOW filter is sent even with zero rules. istiod's grpcgen
    // drops an empty rule set here, which lets every request in.
    if policies.iter().any(|p| p.action == AuthzAction::Allow) {
        let allow = rbac_policies(&policies, AuthzAction::Allow);
        filters.push(hcm::HttpFilter {
            name: RBAC_FILTER.into(),
            config_type: Some(hcm::http_filter::ConfigType::TypedConfig(rbac_filter_any(
                rbac::rbac::Action::Allow,
                &allow,
            ))),
            ..Default::default()
        });
    }
    filters.push(http_filter_router());

    let manager = hcm::HttpConnectionManager {
        // gRPC servers need an inline route configuration whose routes use
        // NonForwardingAction (gRFC A36; grpc/grpc-go#4924).
        route_specifier: Some(hcm::http_connection_manager::RouteSpecifier::RouteConfig(
            route::RouteConfiguration {
                name: "inbound".into(),
                virtual_hosts: vec![route::VirtualHost {
                    domains: vec!["*".into()],
                    routes: vec![route::Route {
                        r#match: Some(route::RouteMatch {
                            path_specifier: Some(route::route_match::PathSpecifier::Prefix(
                                "/".into(),
                            )),
                            ..Default::default()
                        }),
                        action: Some(route::route::Action::NonForwardingAction(
                            route::NonForwardingAction {},
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        )),
        http_filters: filters,
        ..Default::default()
    };
    let mut chain = listener::FilterChain {
        name: format!("inbound-{suffix}"),
        filters: vec![listener::Filter {
            // Sic: istiod concatenates without a separator.
            name: format!("inbound-hcm{suffix}"),
            config_type: Some(listener::filter::ConfigType::TypedConfig(any(&manager))),
        }],
        ..Default::default()
    };
    if mtls {
        let ctx = tls::DownstreamTlsContext {
            // No SAN matching on the server side (istiod: not supported by gRPC servers).
            common_tls_context: Some(common_tls_context(&[])),
            require_client_certificate: Some(true),
            ..Default::default()
        };
        chain.transport_socket = Some(transport_socket(any(&ctx)));
    }
    chain
}

/// Whether a policy applies to a workload: same namespace or the root namespace, and a selector
/// that is absent, empty, or matches the workload's labels.
fn applies(ap: &AuthorizationPolicy, ns: &str, ep: &WorkloadEndpoint) -> bool {
    (ap.meta.namespace == ns || ap.meta.namespace == ROOT_NAMESPACE)
        && ap
            .selector
            .as_ref()
            .is_none_or(|s| labels_match(s, &ep.labels))
}

/// Policies named `<namespace>-<name>-<rule index>` as istiod's `buildRBAC` names them.
fn rbac_policies(
    policies: &[&AuthorizationPolicy],
    action: AuthzAction,
) -> BTreeMap<String, rbac::Policy> {
    let mut out = BTreeMap::new();
    for ap in policies.iter().filter(|p| p.action == action) {
        for (i, rule) in ap.rules.iter().enumerate() {
            let name = format!("{}-{}-{i}", ap.meta.namespace, ap.meta.name);
            let permissions = if rule.to.is_empty() {
                vec![perm_and(vec![perm_any()])]
            } else {
                rule.to
                    .iter()
                    .map(|paths| {
                        if paths.is_empty() {
                            perm_and(vec![perm_any()])
                        } else {
                            perm_and(vec![rbac::Permission {
                                rule: Some(rbac::permission::Rule::OrRules(
                                    rbac::permission::Set {
                                        rules: paths
                                            .iter()
                                            .map(|p| rbac::Permission {
                                                rule: Some(rbac::permission::Rule::UrlPath(
                                                    matcher::PathMatcher {
                                                        rule: Some(
                                                            matcher::path_matcher::Rule::Path(
                                                                istio_string_matcher(p, ""),
                                                            ),
                                                        ),
                                                    },
                                                )),
                                            })
                                            .collect(),
                                    },
                                )),
                            }])
                        }
                    })
                    .collect()
            };
            let principals = if rule.from.is_empty() {
                vec![princ_and(vec![princ_any()])]
            } else {
                rule.from
                    .iter()
                    .map(|ps| {
                        if ps.is_empty() {
                            princ_and(vec![princ_any()])
                        } else {
                            princ_and(vec![rbac::Principal {
                                identifier: Some(rbac::principal::Identifier::OrIds(
                                    rbac::principal::Set {
                                        ids: ps
                                            .iter()
                                            .map(|p| rbac::Principal {
                                                identifier: Some(
                                                    rbac::principal::Identifier::Authenticated(
                                                        rbac::principal::Authenticated {
                                                            principal_name: Some(
                                                                istio_string_matcher(
                                                                    p,
                                                                    "spiffe://",
                                                                ),
                                                            ),
                                                        },
                                                    ),
                                                ),
                                            })
                                            .collect(),
                                    },
                                )),
                            }])
                        }
                    })
                    .collect()
            };
            out.insert(
                name,
                rbac::Policy {
                    permissions,
                    principals,
                    ..Default::default()
                },
            );
        }
    }
    out
}

fn perm_any() -> rbac::Permission {
    rbac::Permission {
        rule: Some(rbac::permission::Rule::Any(true)),
    }
}

fn perm_and(rules: Vec<rbac::Permission>) -> rbac::Permission {
    rbac::Permission {
        rule: Some(rbac::permission::Rule::AndRules(rbac::permission::Set {
            rules,
        })),
    }
}

fn princ_any() -> rbac::Principal {
    rbac::Principal {
        identifier: Some(rbac::principal::Identifier::Any(true)),
    }
}

fn princ_and(ids: Vec<rbac::Principal>) -> rbac::Principal {
    rbac::Principal {
        identifier: Some(rbac::principal::Identifier::AndIds(rbac::principal::Set {
            ids,
        })),
    }
}

/// Istio's `StringMatcherWithPrefix`: `*` = non-empty (regex `.+`), `*x` = suffix (a regex when a
/// prefix must be kept), `x*` = prefix, else exact; `prefix` is prepended (`spiffe://` for
/// principals).
fn istio_string_matcher(v: &str, prefix: &str) -> matcher::StringMatcher {
    use matcher::string_matcher::MatchPattern;
    let regex = |r: String| {
        MatchPattern::SafeRegex(matcher::RegexMatcher {
            regex: r,
            ..Default::default()
        })
    };
    let pattern = if v == "*" {
        regex(".+".into())
    } else if let Some(rest) = v.strip_prefix('*') {
        if prefix.is_empty() {
            MatchPattern::Suffix(rest.into())
        } else {
            regex(format!("{prefix}.*{}", regex_quote(rest)))
        }
    } else if let Some(rest) = v.strip_suffix('*') {
        MatchPattern::Prefix(format!("{prefix}{rest}"))
    } else {
        MatchPattern::Exact(format!("{prefix}{v}"))
    };
    matcher::StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    }
}

/// Go's `regexp.QuoteMeta`.
fn regex_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use matcher::string_matcher::MatchPattern;

    fn pattern(v: &str, prefix: &str) -> MatchPattern {
        istio_string_matcher(v, prefix).match_pattern.unwrap()
    }

    #[test]
    fn istio_wildcards() {
        assert_eq!(
            pattern("*", "spiffe://"),
            MatchPattern::SafeRegex(matcher::RegexMatcher {
                regex: ".+".into(),
                ..Default::default()
            })
        );
        assert_eq!(pattern("/a/*", ""), MatchPattern::Prefix("/a/".into()));
        assert_eq!(
            pattern("*.Check", ""),
            MatchPattern::Suffix(".Check".into())
        );
        assert_eq!(
            pattern("*/sa/a.b", "spiffe://"),
            MatchPattern::SafeRegex(matcher::RegexMatcher {
                regex: r"spiffe://.*/sa/a\.b".into(),
                ..Default::default()
            })
        );
        assert_eq!(
            pattern("td/ns/x/sa/y", "spiffe://"),
            MatchPattern::Exact("spiffe://td/ns/x/sa/y".into())
        );
    }
}
