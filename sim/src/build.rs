//! Builders for istiod-shaped xDS resources, packed as `Any` the way a control plane sends them.

use prost::Name;
use prost_types::Any;
use skiff_core::pb::envoy::config::cluster::v3 as cluster_pb;
use skiff_core::pb::envoy::config::core::v3 as core_pb;
use skiff_core::pb::envoy::config::endpoint::v3 as ep_pb;
use skiff_core::pb::envoy::config::listener::v3 as listener_pb;
use skiff_core::pb::envoy::config::route::v3 as route_pb;
use skiff_core::pb::envoy::extensions::filters::http::router::v3::Router;
use skiff_core::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm_pb;

/// Packs a message.
pub fn pack<M: prost::Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// `ads: {}`, as istiod sends it.
pub fn ads() -> core_pb::ConfigSource {
    core_pb::ConfigSource {
        config_source_specifier: Some(core_pb::config_source::ConfigSourceSpecifier::Ads(
            core_pb::AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn router_filter() -> hcm_pb::HttpFilter {
    hcm_pb::HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(hcm_pb::http_filter::ConfigType::TypedConfig(pack(
            &Router::default(),
        ))),
        ..Default::default()
    }
}

/// A client listener (`api_listener`) whose HCM fetches `route_config` over RDS.
pub fn listener(name: &str, route_config: &str) -> listener_pb::Listener {
    let hcm = hcm_pb::HttpConnectionManager {
        route_specifier: Some(hcm_pb::http_connection_manager::RouteSpecifier::Rds(
            hcm_pb::Rds {
                config_source: Some(ads()),
                route_config_name: route_config.into(),
            },
        )),
        http_filters: vec![router_filter()],
        ..Default::default()
    };
    listener_pb::Listener {
        name: name.into(),
        api_listener: Some(listener_pb::ApiListener {
            api_listener: Some(pack(&hcm)),
        }),
        ..Default::default()
    }
}

/// A route configuration with one virtual host for `domains` whose single `/` route goes to
/// `cluster`.
pub fn route_config(name: &str, domains: &[&str], cluster: &str) -> route_pb::RouteConfiguration {
    route_pb::RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![route_pb::VirtualHost {
            name: format!("{name}-vhost"),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes: vec![route_pb::Route {
                r#match: Some(route_pb::RouteMatch {
                    path_specifier: Some(route_pb::route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route_pb::route::Action::Route(route_pb::RouteAction {
                    cluster_specifier: Some(route_pb::route_action::ClusterSpecifier::Cluster(
                        cluster.into(),
                    )),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// An EDS cluster fetched over ADS, with `service_name` = its own name (istiod's shape).
pub fn eds_cluster(name: &str) -> cluster_pb::Cluster {
    cluster_pb::Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster_pb::cluster::ClusterDiscoveryType::Type(
            cluster_pb::cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster_pb::cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: name.into(),
        }),
        ..Default::default()
    }
}

/// A cluster that every xDS client must reject (a STATIC cluster is not supported by gRPC).
pub fn invalid_cluster(name: &str) -> cluster_pb::Cluster {
    cluster_pb::Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster_pb::cluster::ClusterDiscoveryType::Type(
            cluster_pb::cluster::DiscoveryType::Static as i32,
        )),
        ..Default::default()
    }
}

/// A ClusterLoadAssignment with one locality holding `addrs` (`"ip:port"`).
pub fn endpoints(name: &str, addrs: &[&str]) -> ep_pb::ClusterLoadAssignment {
    let lb_endpoints = addrs
        .iter()
        .map(|a| {
            let (ip, port) = a.rsplit_once(':').unwrap_or((a, "0"));
            ep_pb::LbEndpoint {
                host_identifier: Some(ep_pb::lb_endpoint::HostIdentifier::Endpoint(
                    ep_pb::Endpoint {
                        address: Some(core_pb::Address {
                            address: Some(core_pb::address::Address::SocketAddress(
                                core_pb::SocketAddress {
                                    address: ip.trim_matches(['[', ']']).into(),
                                    port_specifier: Some(
                                        core_pb::socket_address::PortSpecifier::PortValue(
                                            port.parse().unwrap_or(0),
                                        ),
                                    ),
                                    ..Default::default()
                                },
                            )),
                        }),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }
        })
        .collect();
    ep_pb::ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![ep_pb::LocalityLbEndpoints {
            locality: Some(core_pb::Locality {
                region: "region-a".into(),
                zone: "zone-1".into(),
                ..Default::default()
            }),
            lb_endpoints,
            load_balancing_weight: Some(1),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The four resources of one istiod-shaped service `host:port` with endpoints `addrs`:
/// listener `host:port`, route config and cluster `outbound|port||host`, and its endpoints.
pub fn service(host: &str, port: u16, addrs: &[&str]) -> Vec<Any> {
    let listener_name = format!("{host}:{port}");
    let cluster = format!("outbound|{port}||{host}");
    vec![
        pack(&listener(&listener_name, &cluster)),
        pack(&route_config(
            &cluster,
            &[host, listener_name.as_str()],
            &cluster,
        )),
        pack(&eds_cluster(&cluster)),
        pack(&endpoints(&cluster, addrs)),
    ]
}

/// The four resources of an istiod-shaped service, as protobufs to adjust before packing.
#[derive(Clone, Debug)]
pub struct Service {
    /// Client listener `host:port`.
    pub listener: listener_pb::Listener,
    /// Route configuration `outbound|port||host`.
    pub routes: route_pb::RouteConfiguration,
    /// Cluster `outbound|port||host`.
    pub cluster: cluster_pb::Cluster,
    /// Its endpoints.
    pub endpoints: ep_pb::ClusterLoadAssignment,
}

fn pb_duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

impl Service {
    /// `host:port` with endpoints `addrs`.
    pub fn new(host: &str, port: u16, addrs: &[&str]) -> Self {
        let listener_name = format!("{host}:{port}");
        let cluster = format!("outbound|{port}||{host}");
        Service {
            listener: listener(&listener_name, &cluster),
            routes: route_config(&cluster, &[host, listener_name.as_str()], &cluster),
            cluster: eds_cluster(&cluster),
            endpoints: endpoints(&cluster, addrs),
        }
    }

    /// Packed, ready for [`crate::SimServer::set`].
    pub fn pack(&self) -> Vec<Any> {
        vec![
            pack(&self.listener),
            pack(&self.routes),
            pack(&self.cluster),
            pack(&self.endpoints),
        ]
    }

    /// The first route's action.
    pub fn action(&mut self) -> &mut route_pb::RouteAction {
        let route = self
            .routes
            .virtual_hosts
            .first_mut()
            .and_then(|v| v.routes.first_mut())
            .expect("one route");
        match &mut route.action {
            Some(route_pb::route::Action::Route(a)) => a,
            _ => panic!("route action"),
        }
    }

    /// A44 retry policy on the route.
    pub fn with_retry(mut self, retry_on: &str, num_retries: u32) -> Self {
        self.action().retry_policy = Some(route_pb::RetryPolicy {
            retry_on: retry_on.into(),
            num_retries: Some(num_retries),
            ..Default::default()
        });
        self
    }

    /// A31 `max_stream_duration` on the route.
    pub fn with_max_stream_duration(mut self, d: std::time::Duration) -> Self {
        self.action().max_stream_duration = Some(route_pb::route_action::MaxStreamDuration {
            max_stream_duration: Some(pb_duration(d)),
            ..Default::default()
        });
        self
    }

    /// A32 circuit breaker.
    pub fn with_max_requests(mut self, max: u32) -> Self {
        self.cluster.circuit_breakers = Some(cluster_pb::CircuitBreakers {
            thresholds: vec![cluster_pb::circuit_breakers::Thresholds {
                max_requests: Some(max),
                ..Default::default()
            }],
            ..Default::default()
        });
        self
    }

    /// A50 failure-percentage outlier detection (consecutive-5xx off).
    pub fn with_failure_percentage_ejection(
        mut self,
        interval: std::time::Duration,
        threshold: u32,
    ) -> Self {
        self.cluster.outlier_detection = Some(cluster_pb::OutlierDetection {
            interval: Some(pb_duration(interval)),
            base_ejection_time: Some(pb_duration(std::time::Duration::from_secs(30))),
            max_ejection_percent: Some(50),
            failure_percentage_threshold: Some(threshold),
            enforcing_failure_percentage: Some(100),
            failure_percentage_minimum_hosts: Some(2),
            failure_percentage_request_volume: Some(10),
            enforcing_consecutive_5xx: Some(0),
            enforcing_success_rate: Some(0),
            ..Default::default()
        });
        self
    }

    /// A33 fault injection: abort `ppm` parts per million of RPCs with gRPC `code` (fault
    /// filter in the listener's HCM, before the router).
    pub fn with_fault_abort(mut self, code: u32, ppm: u32) -> Self {
        use skiff_core::pb::envoy::extensions::filters::http::fault::v3 as fault_pb;
        use skiff_core::pb::envoy::r#type::v3::FractionalPercent;
        let fault = fault_pb::HttpFault {
            abort: Some(fault_pb::FaultAbort {
                error_type: Some(fault_pb::fault_abort::ErrorType::GrpcStatus(code)),
                percentage: Some(FractionalPercent {
                    numerator: ppm,
                    denominator: 2,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let filter = hcm_pb::HttpFilter {
            name: "envoy.filters.http.fault".into(),
            config_type: Some(hcm_pb::http_filter::ConfigType::TypedConfig(pack(&fault))),
            ..Default::default()
        };
        let api = self
            .listener
            .api_listener
            .as_mut()
            .and_then(|a| a.api_listener.as_mut())
            .expect("api listener");
        let mut hcm =
            <hcm_pb::HttpConnectionManager as prost::Message>::decode(api.value.as_slice())
                .expect("hcm");
        hcm.http_filters.insert(0, filter);
        *api = pack(&hcm);
        self
    }
}
