use super::*;
use crate::resource::listener::HttpConnectionManager;

fn chain(name: &str) -> FilterChain {
    FilterChain {
        name: name.into(),
        prefix_ranges: Vec::new(),
        source_type: SourceType::Any,
        source_prefix_ranges: Vec::new(),
        source_ports: Vec::new(),
        hcm: HttpConnectionManager {
            routes: RouteSource::Rds("r".into()),
            http_filters: Vec::new(),
            max_stream_duration: None,
        },
        tls: None,
    }
}

fn cidr(s: &str) -> Cidr {
    let (ip, len) = s.split_once('/').unwrap();
    Cidr {
        addr: ip.parse().unwrap(),
        len: len.parse().unwrap(),
    }
}

fn listener(chains: Vec<FilterChain>, default: Option<FilterChain>) -> ServerListener {
    ServerListener {
        address: "10.0.0.1:8080".parse().unwrap(),
        filter_chains: chains,
        default_filter_chain: default,
    }
}

fn pick<'a>(l: &'a ServerListener, dest: &str, src: &str) -> Option<&'a str> {
    select_filter_chain(l, dest.parse().unwrap(), src.parse().unwrap()).map(|c| c.name.as_str())
}

#[test]
fn listener_names_follow_the_template() {
    assert_eq!(
        listener_name(
            ISTIO_SERVER_LISTENER_TEMPLATE,
            "10.0.0.1:8080".parse().unwrap()
        ),
        "xds.istio.io/grpc/lds/inbound/10.0.0.1:8080"
    );
    assert_eq!(
        listener_name(
            "grpc/server?xds.resource.listening_address=%s",
            "[::1]:50051".parse().unwrap()
        ),
        "grpc/server?xds.resource.listening_address=[::1]:50051"
    );
}

#[test]
fn the_longest_destination_prefix_wins() {
    let mut wide = chain("wide");
    wide.prefix_ranges = vec![cidr("10.0.0.0/8")];
    let mut narrow = chain("narrow");
    narrow.prefix_ranges = vec![cidr("10.0.0.0/24")];
    let any = chain("any");
    let l = listener(vec![wide, narrow, any], None);
    assert_eq!(pick(&l, "10.0.0.1:8080", "10.9.9.9:1000"), Some("narrow"));
    assert_eq!(pick(&l, "10.1.0.1:8080", "10.9.9.9:1000"), Some("wide"));
    assert_eq!(pick(&l, "192.168.0.1:8080", "10.9.9.9:1000"), Some("any"));
}

#[test]
fn source_type_then_source_prefix_then_port() {
    let mut local = chain("local");
    local.source_type = SourceType::SameIpOrLoopback;
    let mut external = chain("external");
    external.source_type = SourceType::External;
    let l = listener(vec![local, external], None);
    assert_eq!(pick(&l, "10.0.0.1:8080", "127.0.0.1:1000"), Some("local"));
    assert_eq!(pick(&l, "10.0.0.1:8080", "10.0.0.1:1000"), Some("local"));
    assert_eq!(pick(&l, "10.0.0.1:8080", "10.0.0.2:1000"), Some("external"));

    let mut from_net = chain("from-net");
    from_net.source_prefix_ranges = vec![cidr("10.1.0.0/16")];
    let mut from_port = chain("from-port");
    from_port.source_prefix_ranges = vec![cidr("10.1.0.0/16")];
    from_port.source_ports = vec![4444];
    let other = chain("other");
    let l = listener(vec![other, from_net, from_port], None);
    assert_eq!(
        pick(&l, "10.0.0.1:8080", "10.1.2.3:4444"),
        Some("from-port")
    );
    assert_eq!(pick(&l, "10.0.0.1:8080", "10.1.2.3:5555"), Some("from-net"));
    assert_eq!(pick(&l, "10.0.0.1:8080", "10.2.2.3:4444"), Some("other"));
}

#[test]
fn no_match_falls_back_to_the_default_chain_or_closes() {
    let mut only = chain("only");
    only.prefix_ranges = vec![cidr("192.168.0.0/16")];
    let l = listener(vec![only.clone()], Some(chain("default")));
    assert_eq!(pick(&l, "10.0.0.1:8080", "10.0.0.2:1"), Some("default"));
    assert_eq!(pick(&l, "192.168.1.1:8080", "10.0.0.2:1"), Some("only"));
    let l = listener(vec![only], None);
    assert_eq!(pick(&l, "10.0.0.1:8080", "10.0.0.2:1"), None);
}

mod view {
    use super::*;
    use crate::pb::envoy::config::route::v3 as pb;
    use crate::resource::Ignored;
    use crate::rng::Seed;
    use crate::router::SliceHeaders;
    use std::collections::BTreeMap;

    /// A route configuration with one virtual host (`*`) whose `/ok.` routes are served here
    /// (non-forwarding) and whose `/fwd.` routes go to a cluster (not servable).
    fn routes() -> Arc<RouteConfig> {
        let prefix = |p: &str| {
            Some(pb::RouteMatch {
                path_specifier: Some(pb::route_match::PathSpecifier::Prefix(p.into())),
                ..Default::default()
            })
        };
        let rc = pb::RouteConfiguration {
            name: "r".into(),
            virtual_hosts: vec![pb::VirtualHost {
                name: "vh".into(),
                domains: vec!["*".into()],
                routes: vec![
                    pb::Route {
                        r#match: prefix("/ok."),
                        action: Some(pb::route::Action::NonForwardingAction(
                            pb::NonForwardingAction {},
                        )),
                        ..Default::default()
                    },
                    pb::Route {
                        r#match: prefix("/fwd."),
                        action: Some(pb::route::Action::Route(pb::RouteAction {
                            cluster_specifier: Some(pb::route_action::ClusterSpecifier::Cluster(
                                "c".into(),
                            )),
                            ..Default::default()
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        Arc::new(RouteConfig::from_proto(&rc, &mut Ignored::default()).unwrap())
    }

    fn view(rds: BTreeMap<String, Arc<RouteConfig>>) -> ServerView {
        ServerView {
            mode: ServingMode::Serving,
            listener: Some(Arc::new(listener(vec![chain("a")], None))),
            rds,
        }
    }

    fn route(v: &ServerView, chain: &FilterChain, path: &str) -> Result<(), Refused> {
        let headers = SliceHeaders::new(&[]);
        let head = RequestHead {
            path,
            headers: &headers,
            channel_id: 0,
        };
        v.route(chain, "svc.test:80", &head, &mut Rng::new(Seed(1)))
    }

    #[test]
    fn rpcs_route_in_the_views_rds_configuration() {
        let v = view(BTreeMap::from([("r".to_string(), routes())]));
        let c = chain("a"); // RDS "r"
        assert_eq!(route(&v, &c, "/ok.Svc/M"), Ok(()));
        let e = route(&v, &c, "/fwd.Svc/M").unwrap_err();
        assert!(e.0.contains("route"), "{e:?}");
        assert!(route(&v, &c, "/other.Svc/M").is_err());
    }

    #[test]
    fn a_missing_rds_configuration_refuses_and_inline_needs_none() {
        let v = view(BTreeMap::new());
        let e = route(&v, &chain("a"), "/ok.Svc/M").unwrap_err();
        assert_eq!(e.0, "route configuration r is not available");
        let mut inline = chain("b");
        inline.hcm.routes = RouteSource::Inline(routes());
        assert_eq!(route(&v, &inline, "/ok.Svc/M"), Ok(()));
        let off = ServerView::not_serving("gone");
        assert!(!off.mode.is_serving() && off.listener.is_none());
    }
}
