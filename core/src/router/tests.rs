use std::sync::Arc;

use proptest::prelude::*;
use xxhash_rust::xxh64::xxh64;

use super::*;
use crate::pb::envoy::config::route::v3 as pb;
use crate::pb::envoy::config::route::v3::route_action::ClusterSpecifier as Cs;
use crate::pb::envoy::config::route::v3::route_action::HashPolicy as HashPb;
use crate::pb::envoy::config::route::v3::route_action::hash_policy::{
    self as hp, PolicySpecifier as P,
};
use crate::pb::envoy::r#type::matcher::v3 as matcher_pb;
use crate::resource::Ignored;
use crate::resource::filter::{
    FaultConfig, FilterOverride, HttpFilterConfig, NamedFilter, parse_filter_override,
};
use crate::resource::route::tests::{istiod_route_config, prefix_match, rc, to_cluster, vh};
use crate::resource::route::{CHANNEL_ID_HASH_KEY, RouteConfig};
use crate::rng::{Rng, Seed};

fn build(rc: &pb::RouteConfiguration) -> RouteConfig {
    RouteConfig::from_proto(rc, &mut Ignored::default()).unwrap()
}

fn head<'a>(path: &'a str, headers: &'a SliceHeaders<'a>) -> RequestHead<'a> {
    RequestHead {
        path,
        headers,
        channel_id: 7,
    }
}

const NO_HEADERS: SliceHeaders<'static> = SliceHeaders::new(&[]);

fn domains_config() -> RouteConfig {
    build(&rc(vec![
        vh(&["*"], vec![]),
        vh(&["*.example.com"], vec![]),
        vh(&["*.b.example.com"], vec![]),
        vh(&["api.*"], vec![]),
        vh(&["api.example.*"], vec![]),
        vh(&["api.example.com", "API.example.com:8080"], vec![]),
        vh(&["svc"], vec![]),
    ]))
}

#[test]
fn domain_precedence() {
    let c = domains_config();
    let pick = |a: &str| select_virtual_host(&c, a);
    assert_eq!(pick("api.example.com"), Some(5), "exact beats everything");
    assert_eq!(pick("API.EXAMPLE.COM"), Some(5), "case-insensitive");
    assert_eq!(pick("x.b.example.com"), Some(2), "longest suffix wildcard");
    assert_eq!(pick("x.example.com"), Some(1));
    assert_eq!(pick("api.example.org"), Some(4), "longest prefix wildcard");
    assert_eq!(pick("api.other"), Some(3));
    assert_eq!(
        pick("api.b.example.com"),
        Some(2),
        "suffix wildcard beats prefix wildcard"
    );
    assert_eq!(pick("elsewhere"), Some(0), "universal wildcard last");
    // The wildcard stands for at least one character.
    assert_eq!(pick(".example.com"), Some(0));
    assert_eq!(pick("api."), Some(0));
}

#[test]
fn domain_ports_are_part_of_the_match() {
    let c = domains_config();
    assert_eq!(select_virtual_host(&c, "api.example.com:8080"), Some(5));
    // `svc` does not match `svc:7000`; the port makes it another name (here the wildcard).
    assert_eq!(select_virtual_host(&c, "svc:7000"), Some(0));
    assert_eq!(select_virtual_host(&c, "svc"), Some(6));
    let no_wildcard = build(&rc(vec![vh(&["svc"], vec![])]));
    assert_eq!(select_virtual_host(&no_wildcard, "svc:7000"), None);
    assert_eq!(select_virtual_host(&build(&rc(vec![])), "svc"), None);
}

#[test]
fn domain_ties_go_to_the_first_virtual_host() {
    let c = build(&rc(vec![
        vh(&["*.a.com"], vec![]),
        vh(&["*.a.com"], vec![]),
    ]));
    assert_eq!(select_virtual_host(&c, "x.a.com"), Some(0));
}

#[test]
fn istiod_config_routes() {
    let cfg = build(&istiod_route_config());
    for authority in [
        "echo.default.svc.cluster.local:7000",
        "echo.default.svc.cluster.local",
        "echo:7000",
        "ECHO.default:7000",
        "10.96.0.12:7000",
    ] {
        assert_eq!(select_virtual_host(&cfg, authority), Some(0), "{authority}");
    }
    assert_eq!(select_virtual_host(&cfg, "other:7000"), None);
    let vhost = &cfg.virtual_hosts[0];
    let mut rng = Rng::new(Seed(1));
    let h = SliceHeaders::new(&[("x-user", "a")]);
    let d = route(vhost, &head("/grpc.testing.EchoService/Echo", &h), &mut rng).unwrap();
    assert_eq!(
        d.cluster(),
        Some("outbound|7000||echo.default.svc.cluster.local")
    );
    assert_eq!(d.weighted_index(), None);
    assert_eq!(d.retry_policy().unwrap().max_attempts(), 3);
    assert_eq!(d.timeout(), RouteTimeout::Inherit);
    assert_eq!(d.hash, None);
}

fn first_match_config() -> RouteConfig {
    use crate::pb::envoy::config::route::v3::route_match::PathSpecifier;
    let exact = pb::RouteMatch {
        path_specifier: Some(PathSpecifier::Path("/pkg.Svc/Get".into())),
        ..Default::default()
    };
    build(&rc(vec![vh(
        &["*"],
        vec![
            to_cluster(prefix_match("/pkg.Svc/"), "svc"),
            to_cluster(Some(exact), "get"),
            to_cluster(prefix_match(""), "default"),
        ],
    )]))
}

#[test]
fn first_match_wins() {
    let cfg = first_match_config();
    let vhost = &cfg.virtual_hosts[0];
    let mut rng = Rng::new(Seed(1));
    let d = route(vhost, &head("/pkg.Svc/Get", &NO_HEADERS), &mut rng).unwrap();
    assert_eq!(
        (d.route_index, d.cluster()),
        (0, Some("svc")),
        "prefix listed first wins"
    );
    let d = route(vhost, &head("/other.Svc/Get", &NO_HEADERS), &mut rng).unwrap();
    assert_eq!((d.route_index, d.cluster()), (2, Some("default")));
}

#[test]
fn no_matching_route_is_unavailable() {
    let cfg = build(&rc(vec![vh(
        &["*"],
        vec![to_cluster(prefix_match("/a."), "a")],
    )]));
    let mut rng = Rng::new(Seed(1));
    let e = route(
        &cfg.virtual_hosts[0],
        &head("/pkg.Svc/Method", &NO_HEADERS),
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(
        e,
        RouteError::NoMatchingRoute {
            path: "/pkg.Svc/Method"
        }
    );
    assert_eq!(e.code(), UNAVAILABLE);
    assert_eq!(e.to_string(), "no matching route for /pkg.Svc/Method");
}

#[test]
fn header_matchers_gate_routes() {
    use crate::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier as S;
    let mut m = prefix_match("").unwrap();
    m.headers = vec![
        pb::HeaderMatcher {
            name: "x-canary".into(),
            header_match_specifier: Some(S::StringMatch(matcher_pb::StringMatcher {
                ignore_case: true,
                match_pattern: Some(matcher_pb::string_matcher::MatchPattern::Exact(
                    "yes".into(),
                )),
            })),
            ..Default::default()
        },
        pb::HeaderMatcher {
            name: "x-trace-bin".into(),
            header_match_specifier: Some(S::PresentMatch(false)),
            ..Default::default()
        },
    ];
    let cfg = build(&rc(vec![vh(
        &["*"],
        vec![
            to_cluster(Some(m), "canary"),
            to_cluster(prefix_match(""), "stable"),
        ],
    )]));
    let vhost = &cfg.virtual_hosts[0];
    let mut rng = Rng::new(Seed(1));
    let h = SliceHeaders::new(&[("x-canary", "YES"), ("x-trace-bin", "AAA=")]);
    assert_eq!(
        route(vhost, &head("/a/b", &h), &mut rng).unwrap().cluster(),
        Some("canary")
    );
    let h = SliceHeaders::new(&[("x-canary", "no")]);
    assert_eq!(
        route(vhost, &head("/a/b", &h), &mut rng).unwrap().cluster(),
        Some("stable")
    );
}

#[test]
fn query_parameter_routes_never_match_and_case_insensitive_paths_do() {
    let mut q = prefix_match("").unwrap();
    q.query_parameters = vec![pb::QueryParameterMatcher {
        name: "a".into(),
        query_parameter_match_specifier: None,
    }];
    let mut ci = prefix_match("/PKG.").unwrap();
    ci.case_sensitive = Some(false);
    let cfg = build(&rc(vec![vh(
        &["*"],
        vec![to_cluster(Some(q), "query"), to_cluster(Some(ci), "ci")],
    )]));
    let mut rng = Rng::new(Seed(1));
    let d = route(
        &cfg.virtual_hosts[0],
        &head("/pkg.Svc/M", &NO_HEADERS),
        &mut rng,
    )
    .unwrap();
    assert_eq!(d.cluster(), Some("ci"));
}

#[test]
fn runtime_fraction_gates_routes() {
    use crate::pb::envoy::config::core::v3::RuntimeFractionalPercent;
    use crate::pb::envoy::r#type::v3::FractionalPercent;
    let frac = |n: u32| {
        let mut m = prefix_match("").unwrap();
        m.runtime_fraction = Some(RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator: n,
                denominator: 0,
            }),
            runtime_key: String::new(),
        });
        Some(m)
    };
    let cfg = build(&rc(vec![vh(
        &["*"],
        vec![
            to_cluster(frac(25), "quarter"),
            to_cluster(prefix_match(""), "rest"),
        ],
    )]));
    let mut rng = Rng::new(Seed(99));
    let n = 10_000;
    let quarter = (0..n)
        .filter(|_| {
            route(&cfg.virtual_hosts[0], &head("/a/b", &NO_HEADERS), &mut rng)
                .unwrap()
                .cluster()
                == Some("quarter")
        })
        .count();
    assert!((2_300..2_700).contains(&quarter), "{quarter}");
    let never = build(&rc(vec![vh(&["*"], vec![to_cluster(frac(0), "zero")])]));
    let always = build(&rc(vec![vh(&["*"], vec![to_cluster(frac(100), "all")])]));
    for _ in 0..100 {
        assert!(
            route(
                &never.virtual_hosts[0],
                &head("/a/b", &NO_HEADERS),
                &mut rng
            )
            .is_err()
        );
        assert!(
            route(
                &always.virtual_hosts[0],
                &head("/a/b", &NO_HEADERS),
                &mut rng
            )
            .is_ok()
        );
    }
}

fn weighted_route(ws: &[(&str, u32)]) -> pb::Route {
    pb::Route {
        r#match: prefix_match(""),
        action: Some(pb::route::Action::Route(pb::RouteAction {
            cluster_specifier: Some(Cs::WeightedClusters(pb::WeightedCluster {
                clusters: ws
                    .iter()
                    .map(|(n, w)| pb::weighted_cluster::ClusterWeight {
                        name: n.to_string(),
                        weight: Some(*w),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn weighted_split_80_20() {
    let cfg = build(&rc(vec![vh(
        &["*"],
        vec![weighted_route(&[("v1", 80), ("v2", 20)])],
    )]));
    let vhost = &cfg.virtual_hosts[0];
    let mut rng = Rng::new(Seed(2024));
    let n = 10_000;
    let mut v1 = 0;
    for _ in 0..n {
        let d = route(vhost, &head("/a/b", &NO_HEADERS), &mut rng).unwrap();
        match d.cluster() {
            Some("v1") => {
                assert_eq!(d.weighted_index(), Some(0));
                v1 += 1;
            }
            Some("v2") => assert_eq!(d.weighted_index(), Some(1)),
            other => panic!("{other:?}"),
        }
    }
    // 80% ± 2 percentage points.
    assert!((7_800..=8_200).contains(&v1), "v1 = {v1}");
}

#[test]
fn same_seed_same_decisions() {
    let cfg = build(&rc(vec![vh(
        &["*"],
        vec![weighted_route(&[("a", 1), ("b", 2), ("c", 3)])],
    )]));
    let run = |seed| {
        let mut rng = Rng::new(Seed(seed));
        (0..200)
            .map(|_| {
                route(&cfg.virtual_hosts[0], &head("/x/y", &NO_HEADERS), &mut rng)
                    .unwrap()
                    .cluster()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn unsupported_action_is_unavailable() {
    let redirect = pb::Route {
        r#match: prefix_match("/r."),
        action: Some(pb::route::Action::Redirect(pb::RedirectAction::default())),
        ..Default::default()
    };
    let server = pb::Route {
        r#match: prefix_match("/s."),
        action: Some(pb::route::Action::NonForwardingAction(
            pb::NonForwardingAction {},
        )),
        ..Default::default()
    };
    let cfg = build(&rc(vec![vh(
        &["*"],
        vec![redirect, server, to_cluster(prefix_match("/c."), "c")],
    )]));
    let vhost = &cfg.virtual_hosts[0];
    let mut rng = Rng::new(Seed(1));
    let e = route(vhost, &head("/r.Svc/M", &NO_HEADERS), &mut rng).unwrap_err();
    assert_eq!(
        e,
        RouteError::UnsupportedAction {
            route_index: 0,
            action: "redirect"
        }
    );
    assert_eq!(e.code(), UNAVAILABLE);
    assert!(e.to_string().contains("redirect"));
    // Non-forwarding routes serve servers, not clients; and vice versa.
    let e = route(vhost, &head("/s.Svc/M", &NO_HEADERS), &mut rng).unwrap_err();
    assert!(matches!(
        e,
        RouteError::UnsupportedAction { route_index: 1, .. }
    ));
    let d = route_server(vhost, &head("/s.Svc/M", &NO_HEADERS), &mut rng).unwrap();
    assert_eq!(d.target, RouteTarget::NonForwarding);
    assert_eq!((d.cluster(), d.retry_policy(), d.hash), (None, None, None));
    let e = route_server(vhost, &head("/c.Svc/M", &NO_HEADERS), &mut rng).unwrap_err();
    assert_eq!(
        e,
        RouteError::UnsupportedAction {
            route_index: 2,
            action: "route"
        }
    );
    let e = route_server(vhost, &head("/r.Svc/M", &NO_HEADERS), &mut rng).unwrap_err();
    assert!(matches!(
        e,
        RouteError::UnsupportedAction {
            action: "redirect",
            ..
        }
    ));
}

#[test]
fn cluster_header() {
    let r = pb::Route {
        r#match: prefix_match(""),
        action: Some(pb::route::Action::Route(pb::RouteAction {
            cluster_specifier: Some(Cs::ClusterHeader("X-Cluster".into())),
            ..Default::default()
        })),
        ..Default::default()
    };
    let cfg = build(&rc(vec![vh(&["*"], vec![r])]));
    assert!(cfg.cluster_names().is_empty());
    let vhost = &cfg.virtual_hosts[0];
    let mut rng = Rng::new(Seed(1));
    let h = SliceHeaders::new(&[("x-cluster", "blue"), ("x-cluster", "green")]);
    assert_eq!(
        route(vhost, &head("/a/b", &h), &mut rng).unwrap().cluster(),
        Some("blue")
    );
    for pairs in [&[][..], &[("x-cluster", "")][..]] {
        let h = SliceHeaders::new(pairs);
        let e = route(vhost, &head("/a/b", &h), &mut rng).unwrap_err();
        assert_eq!(
            e,
            RouteError::ClusterHeaderMissing {
                header: "x-cluster"
            }
        );
        assert_eq!(e.code(), UNAVAILABLE);
    }
}

fn header_policy(name: &str, terminal: bool) -> HashPb {
    HashPb {
        terminal,
        policy_specifier: Some(P::Header(hp::Header {
            header_name: name.into(),
            regex_rewrite: None,
        })),
    }
}

fn channel_policy(terminal: bool) -> HashPb {
    HashPb {
        terminal,
        policy_specifier: Some(P::FilterState(hp::FilterState {
            key: CHANNEL_ID_HASH_KEY.into(),
        })),
    }
}

fn hashing_config(policies: Vec<HashPb>) -> RouteConfig {
    let mut r = to_cluster(prefix_match(""), "ring");
    if let Some(pb::route::Action::Route(ra)) = &mut r.action {
        ra.hash_policy = policies;
    }
    build(&rc(vec![vh(&["*"], vec![r])]))
}

fn hash_of(cfg: &RouteConfig, pairs: &[(&str, &str)], channel_id: u64) -> Option<u64> {
    let h = SliceHeaders::new(pairs);
    let head = RequestHead {
        path: "/a/b",
        headers: &h,
        channel_id,
    };
    route(&cfg.virtual_hosts[0], &head, &mut Rng::new(Seed(0)))
        .unwrap()
        .hash
}

#[test]
fn header_hash_is_xxh64_of_the_value() {
    let cfg = hashing_config(vec![header_policy("x-user", false)]);
    assert_eq!(
        hash_of(&cfg, &[("x-user", "alice")], 1),
        Some(xxh64(b"alice", 0))
    );
    assert_eq!(
        hash_of(&cfg, &[("x-user", "alice")], 1),
        hash_of(&cfg, &[("x-user", "alice")], 2),
        "deterministic, independent of the channel"
    );
    assert_ne!(
        hash_of(&cfg, &[("x-user", "alice")], 1),
        hash_of(&cfg, &[("x-user", "bob")], 1)
    );
    assert_eq!(hash_of(&cfg, &[], 1), None, "missing header: no hash");
    // Several values hash as their comma join (gRFC A42 uses the A28 header view).
    assert_eq!(
        hash_of(&cfg, &[("x-user", "a"), ("x-user", "b")], 1),
        Some(xxh64(b"a,b", 0))
    );
    let bin = hashing_config(vec![header_policy("x-id-bin", false)]);
    assert_eq!(
        hash_of(&bin, &[("x-id-bin", "AAA=")], 1),
        None,
        "-bin never hashes"
    );
}

#[test]
fn hash_policies_combine_and_terminal_stops() {
    let a = xxh64(b"A", 0);
    let b = xxh64(b"B", 0);
    let ch = xxh64(&9u64.to_le_bytes(), 0);
    let both = hashing_config(vec![
        header_policy("x-a", false),
        header_policy("x-b", false),
    ]);
    assert_eq!(
        hash_of(&both, &[("x-a", "A"), ("x-b", "B")], 9),
        Some(a.rotate_left(1) ^ b)
    );
    // A policy without a result is skipped, not mixed in.
    assert_eq!(hash_of(&both, &[("x-b", "B")], 9), Some(b));
    let terminal = hashing_config(vec![header_policy("x-a", true), channel_policy(false)]);
    assert_eq!(
        hash_of(&terminal, &[("x-a", "A")], 9),
        Some(a),
        "terminal stops after a hash"
    );
    assert_eq!(
        hash_of(&terminal, &[], 9),
        Some(ch),
        "terminal without a hash does not stop"
    );
    let chan = hashing_config(vec![channel_policy(false)]);
    assert_eq!(hash_of(&chan, &[], 9), Some(ch));
    assert_eq!(hash_of(&chan, &[], 9), hash_of(&chan, &[("x", "y")], 9));
    assert_ne!(hash_of(&chan, &[], 9), hash_of(&chan, &[], 10));
    let unsupported = hashing_config(vec![HashPb {
        terminal: true,
        policy_specifier: Some(P::Cookie(hp::Cookie::default())),
    }]);
    assert_eq!(hash_of(&unsupported, &[], 9), None);
}

#[test]
fn hash_with_regex_rewrite() {
    let policy = |subst: &str| HashPb {
        terminal: false,
        policy_specifier: Some(P::Header(hp::Header {
            header_name: "x-session".into(),
            regex_rewrite: Some(matcher_pb::RegexMatchAndSubstitute {
                pattern: Some(matcher_pb::RegexMatcher {
                    regex: "^([a-z]+)-[0-9]+$".into(),
                    engine_type: None,
                }),
                substitution: subst.into(),
            }),
        })),
    };
    let cfg = hashing_config(vec![policy(r"\1")]);
    assert_eq!(
        hash_of(&cfg, &[("x-session", "bob-123")], 1),
        Some(xxh64(b"bob", 0))
    );
    assert_eq!(
        hash_of(&cfg, &[("x-session", "bob-123")], 1),
        hash_of(&cfg, &[("x-session", "bob-999")], 1)
    );
    let cfg = hashing_config(vec![policy("fixed")]);
    assert_eq!(
        hash_of(&cfg, &[("x-session", "bob-1")], 1),
        Some(xxh64(b"fixed", 0))
    );
    assert_eq!(
        hash_of(&cfg, &[("x-session", "nomatch")], 1),
        Some(xxh64(b"nomatch", 0))
    );
}

fn fault_any(grpc_status: u32) -> prost_types::Any {
    use crate::pb::envoy::extensions::filters::http::fault::v3 as f;
    prost_types::Any::from_msg(&f::HttpFault {
        abort: Some(f::FaultAbort {
            percentage: None,
            response_body: String::new(),
            error_type: Some(f::fault_abort::ErrorType::GrpcStatus(grpc_status)),
        }),
        ..Default::default()
    })
    .unwrap()
}

fn abort_code(f: &EffectiveFilter) -> Option<u32> {
    f.fault()
        .and_then(|c| c.abort)
        .and_then(|a| a.source.grpc_code())
}

#[test]
fn filter_overrides_resolve_most_specific_first() {
    let mut weighted = weighted_route(&[("a", 1), ("b", 1)]);
    if let Some(pb::route::Action::Route(ra)) = &mut weighted.action
        && let Some(Cs::WeightedClusters(wc)) = &mut ra.cluster_specifier
    {
        wc.clusters[0]
            .typed_per_filter_config
            .insert("fault".into(), fault_any(4));
    }
    weighted
        .typed_per_filter_config
        .insert("fault".into(), fault_any(3));
    let plain = to_cluster(prefix_match("/plain."), "p");
    let mut with_vhost = vh(&["a"], vec![plain.clone(), weighted]);
    with_vhost
        .typed_per_filter_config
        .insert("fault".into(), fault_any(2));
    let untouched = vh(&["b"], vec![plain]);
    // Route order: the plain route first so both are reachable.
    let cfg = build(&rc(vec![with_vhost, untouched]));

    let base_fault = FaultConfig::from_proto(
        &crate::pb::envoy::extensions::filters::http::fault::v3::HttpFault {
            abort: Some(crate::pb::envoy::extensions::filters::http::fault::v3::FaultAbort {
                percentage: None,
                response_body: String::new(),
                error_type: Some(
                    crate::pb::envoy::extensions::filters::http::fault::v3::fault_abort::ErrorType::GrpcStatus(1),
                ),
            }),
            ..Default::default()
        },
        "",
        &mut Ignored::default(),
    )
    .unwrap();
    let filters = vec![
        NamedFilter {
            name: "fault".into(),
            config: HttpFilterConfig::Fault(Arc::new(base_fault)),
        },
        NamedFilter {
            name: "router".into(),
            config: HttpFilterConfig::Router,
        },
    ];
    let plan = FilterPlan::build(&filters, &cfg, &mut Ignored::default());
    assert_eq!(plan.names(), ["fault", "router"]);
    assert_eq!(abort_code(&plan.base()[0]), Some(1), "HCM config");
    assert_eq!(
        abort_code(&plan.chain(1, 0, None)[0]),
        Some(1),
        "no override anywhere"
    );
    assert_eq!(
        abort_code(&plan.chain(0, 0, None)[0]),
        Some(2),
        "virtual host"
    );
    assert_eq!(abort_code(&plan.chain(0, 1, None)[0]), Some(3), "route");
    assert_eq!(
        abort_code(&plan.chain(0, 1, Some(1))[0]),
        Some(3),
        "entry b: route"
    );
    assert_eq!(
        abort_code(&plan.chain(0, 1, Some(0))[0]),
        Some(4),
        "entry a: its own"
    );
    assert!(plan.chain(0, 1, Some(0))[1].is_router());
    assert_eq!(plan.chain_count(), 4, "untouched routes share chains");
    assert_eq!(
        abort_code(&plan.chain(9, 9, None)[0]),
        Some(1),
        "out of range: HCM chain"
    );

    // Through a decision: weighted picks land on their entry's chain.
    let mut rng = Rng::new(Seed(3));
    let mut seen = [false; 2];
    for _ in 0..64 {
        let d = route(
            &cfg.virtual_hosts[0],
            &head("/w.S/M", &NO_HEADERS),
            &mut rng,
        )
        .unwrap();
        let code = abort_code(&plan.for_decision(0, &d)[0]);
        match d.weighted_index() {
            Some(0) => {
                assert_eq!(code, Some(4));
                seen[0] = true;
            }
            Some(1) => {
                assert_eq!(code, Some(3));
                seen[1] = true;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, [true, true]);
}

#[test]
fn mismatched_and_rbac_overrides() {
    use crate::pb::envoy::extensions::filters::http::rbac::v3::{Rbac, RbacPerRoute};
    let per_route =
        |rbac: Option<Rbac>| prost_types::Any::from_msg(&RbacPerRoute { rbac }).unwrap();
    let mut disabled = to_cluster(prefix_match("/off."), "c");
    disabled
        .typed_per_filter_config
        .insert("rbac".into(), per_route(None));
    let mut replaced = to_cluster(prefix_match("/new."), "c");
    replaced.typed_per_filter_config.insert(
        "rbac".into(),
        per_route(Some(Rbac {
            rules_stat_prefix: "replaced".into(),
            ..Default::default()
        })),
    );
    // An RBACPerRoute aimed at the fault filter's name cannot apply.
    let mut wrong = to_cluster(prefix_match("/wrong."), "c");
    wrong
        .typed_per_filter_config
        .insert("fault".into(), per_route(None));
    let cfg = build(&rc(vec![vh(&["*"], vec![disabled, replaced, wrong])]));
    let filters = vec![
        NamedFilter {
            name: "fault".into(),
            config: HttpFilterConfig::Fault(Arc::new(FaultConfig::default())),
        },
        NamedFilter {
            name: "rbac".into(),
            config: HttpFilterConfig::Rbac(Arc::new(Rbac {
                rules_stat_prefix: "base".into(),
                ..Default::default()
            })),
        },
        NamedFilter {
            name: "router".into(),
            config: HttpFilterConfig::Router,
        },
    ];
    let mut ignored = Ignored::default();
    let plan = FilterPlan::build(&filters, &cfg, &mut ignored);
    assert_eq!(plan.chain(0, 0, None)[1].rbac(), Some(RbacPolicy::Disabled));
    assert!(matches!(
        plan.chain(0, 1, None)[1].rbac(),
        Some(RbacPolicy::Enforce(r)) if r.rules_stat_prefix == "replaced"
    ));
    assert!(matches!(
        plan.base()[1].rbac(),
        Some(RbacPolicy::Enforce(r)) if r.rules_stat_prefix == "base"
    ));
    assert_eq!(plan.chain(0, 2, None)[0].override_config, None);
    assert_eq!(
        ignored.fields(),
        ["virtual_hosts[0].routes[2].typed_per_filter_config[fault]"]
    );
    assert_eq!(plan.base()[0].rbac(), None);
    assert_eq!(plan.base()[1].fault(), None);
    // The same override parsed directly is the Rbac kind.
    assert!(matches!(
        parse_filter_override("rbac", &per_route(None), "", &mut Ignored::default()),
        Ok(Some(FilterOverride::Rbac(_)))
    ));
}

proptest! {
    #[test]
    fn selected_virtual_host_really_matches(host in "[a-c]{1,3}(\\.[a-c]{1,3}){0,2}(:[0-9]{1,2})?") {
        let cfg = build(&rc(vec![
            vh(&["a.b"], vec![]),
            vh(&["*.b", "*b"], vec![]),
            vh(&["a*", "c.*"], vec![]),
            vh(&["b.c:1"], vec![]),
        ]));
        if let Some(i) = select_virtual_host(&cfg, &host) {
            let score = cfg.virtual_hosts[i]
                .domains
                .iter()
                .filter_map(|d| domain_score(d, &host))
                .max();
            prop_assert!(score.is_some());
            // No other virtual host has a strictly better domain.
            for vh in &cfg.virtual_hosts {
                for d in &vh.domains {
                    if let Some(s) = domain_score(d, &host) {
                        prop_assert!(Some(s) <= score);
                    }
                }
            }
        }
    }

    #[test]
    fn routing_never_panics_on_arbitrary_requests(
        path in "\\PC{0,40}",
        pairs in proptest::collection::vec(("[a-z-]{1,8}", "\\PC{0,20}"), 0..6),
        seed in any::<u64>(),
    ) {
        let cfg = first_match_config();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let h = SliceHeaders::new(&refs);
        let mut rng = Rng::new(Seed(seed));
        let d = route(&cfg.virtual_hosts[0], &head(&path, &h), &mut rng).unwrap();
        prop_assert!(d.cluster().is_some());
    }
}

// ---- the route index against the linear scan ------------------------------------------------

/// Path specifiers whose strings share services, case variants and partial keys, so that
/// grouped, general and never-matching routes interleave.
const INDEX_PATHS: &[&str] = &[
    "", "/", "//", "/a", "/a.S", "/a.S/", "/a.S/M", "/a.S/M/x", "/a.S/N", "/A.S/", "/a.s/m",
    "/b.T/", "/b.T/M1", "/b.TT/", "a.S/", "a.S/M",
];

/// One generated route: (path kind, path string index, case_sensitive, header rule,
/// query parameters, fraction percent).
type RouteSpec = (u8, usize, u8, u8, bool, u8);

fn index_route(i: usize, spec: &RouteSpec) -> pb::Route {
    use crate::pb::envoy::config::core::v3::RuntimeFractionalPercent;
    use crate::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier as Hm;
    use crate::pb::envoy::config::route::v3::route_match::PathSpecifier;
    use crate::pb::envoy::r#type::v3::FractionalPercent;
    let &(kind, p, cs, header, query, fraction) = spec;
    let text = INDEX_PATHS[p % INDEX_PATHS.len()].to_string();
    let path_specifier = match kind % 4 {
        0 | 1 => PathSpecifier::Prefix(text),
        2 => PathSpecifier::Path(text),
        _ => PathSpecifier::SafeRegex(matcher_pb::RegexMatcher {
            regex: ["/a\\..*", ".*M.*", "/b\\.T/M[0-9]", "[^/]*"][p % 4].into(),
            ..Default::default()
        }),
    };
    let headers = match header % 4 {
        0 | 1 => vec![],
        2 => vec![pb::HeaderMatcher {
            name: "x-h".into(),
            header_match_specifier: Some(Hm::StringMatch(matcher_pb::StringMatcher {
                match_pattern: Some(matcher_pb::string_matcher::MatchPattern::Exact("1".into())),
                ..Default::default()
            })),
            ..Default::default()
        }],
        _ => vec![pb::HeaderMatcher {
            name: "x-h".into(),
            header_match_specifier: Some(Hm::PresentMatch(true)),
            invert_match: true,
            ..Default::default()
        }],
    };
    let query_parameters = if query {
        vec![pb::QueryParameterMatcher {
            name: "q".into(),
            ..Default::default()
        }]
    } else {
        vec![]
    };
    let runtime_fraction = (fraction < 100).then(|| RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: u32::from(fraction),
            denominator: 0,
        }),
        runtime_key: String::new(),
    });
    let m = pb::RouteMatch {
        path_specifier: Some(path_specifier),
        case_sensitive: match cs % 3 {
            0 => None,
            1 => Some(true),
            _ => Some(false),
        },
        headers,
        query_parameters,
        runtime_fraction,
        ..Default::default()
    };
    to_cluster(Some(m), &format!("c{i}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The indexed first match is the linear first match, with the same random draws.
    #[test]
    fn indexed_routing_equals_the_linear_scan(
        specs in proptest::collection::vec(
            (0u8..4, 0usize..64, 0u8..3, 0u8..4, proptest::bool::weighted(0.1),
             prop_oneof![4 => Just(100u8), 1 => 0u8..100]),
            0..24,
        ),
        requests in proptest::collection::vec(
            (prop_oneof![
                3 => (0usize..INDEX_PATHS.len()).prop_map(|i| INDEX_PATHS[i].to_string()),
                2 => (0usize..INDEX_PATHS.len(), "[a-zA-Z0-9./]{0,6}")
                    .prop_map(|(i, tail)| format!("{}{tail}", INDEX_PATHS[i])),
                1 => "[a-zA-Z./]{0,12}",
            ], 0u8..3),
            1..16,
        ),
        seed in any::<u64>(),
    ) {
        let routes: Vec<pb::Route> = specs.iter().enumerate().map(|(i, s)| index_route(i, s)).collect();
        let cfg = build(&rc(vec![vh(&["*"], routes)]));
        let vhost = &cfg.virtual_hosts[0];
        let mut indexed_rng = Rng::new(Seed(seed));
        let mut linear_rng = Rng::new(Seed(seed));
        for (path, header) in &requests {
            let pairs: &[(&str, &str)] = match header {
                0 => &[],
                1 => &[("x-h", "1")],
                _ => &[("x-h", "2")],
            };
            let h = SliceHeaders::new(pairs);
            let rh = head(path, &h);
            let indexed = first_match(vhost, &rh, &mut indexed_rng).ok().map(|(i, _)| i);
            let linear = first_match_linear(vhost, &rh, &mut linear_rng).map(|(i, _)| i);
            prop_assert_eq!(indexed, linear, "path {:?} header {}", path, header);
        }
        prop_assert_eq!(indexed_rng.next_u64(), linear_rng.next_u64(), "same draws");
    }
}

#[test]
fn index_follows_route_edits() {
    use crate::pb::envoy::config::route::v3::route_match::PathSpecifier;
    let m = |p: &str| {
        Some(pb::RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(p.into())),
            ..Default::default()
        })
    };
    let mut cfg = build(&rc(vec![vh(
        &["*"],
        vec![to_cluster(m("/a.S/"), "a"), to_cluster(m("/b.T/"), "b")],
    )]));
    let mut rng = Rng::new(Seed(1));
    let vhost = &mut cfg.virtual_hosts[0];
    let cluster = |vhost: &VirtualHost, path: &str, rng: &mut Rng| {
        route(vhost, &head(path, &NO_HEADERS), rng)
            .ok()
            .and_then(|d| d.cluster().map(str::to_string))
    };
    assert_eq!(cluster(vhost, "/b.T/M", &mut rng).as_deref(), Some("b"));
    assert_eq!(cluster(vhost, "/c.U/M", &mut rng), None);
    // A route added without reindexing is still found (the index notices the new length).
    let extra = build(&rc(vec![vh(&["*"], vec![to_cluster(m("/"), "all")])]));
    vhost.routes.push(extra.virtual_hosts[0].routes[0].clone());
    assert_eq!(cluster(vhost, "/c.U/M", &mut rng).as_deref(), Some("all"));
    // A route replaced in place is found once reindexed.
    vhost.routes[1] = extra.virtual_hosts[0].routes[0].clone();
    vhost.reindex();
    assert_eq!(cluster(vhost, "/b.T/M", &mut rng).as_deref(), Some("all"));
    assert_eq!(cluster(vhost, "/a.S/M", &mut rng).as_deref(), Some("a"));
    assert_eq!(*vhost, {
        let mut v = vhost.clone();
        v.reindex();
        v
    });
}
