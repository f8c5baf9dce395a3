//! Client listeners (`grpcgen/lds.go` `buildOutboundListeners`).

use crate::pb::envoy::config::core::v3 as core_pb;
use crate::pb::envoy::config::listener::v3 as listener;
use crate::pb::envoy::extensions::filters::http::fault::v3 as fault;
use crate::pb::envoy::extensions::filters::http::router::v3 as router;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;

use super::super::config::ServicePort;
use super::{Service, any, cluster_name};

/// `envoy.filters.http.fault`: always present on client listeners so routes can carry per-route
/// fault overrides (istiod's `xdsfilters.Fault`, an empty `HTTPFault`).
pub(crate) const FAULT_FILTER: &str = "envoy.filters.http.fault";
/// `envoy.filters.http.router`: must be last (gRFC A39).
pub(crate) const ROUTER_FILTER: &str = "envoy.filters.http.router";

pub(crate) fn http_filter_fault() -> hcm::HttpFilter {
    hcm::HttpFilter {
        name: FAULT_FILTER.into(),
        config_type: Some(hcm::http_filter::ConfigType::TypedConfig(any(
            &fault::HttpFault::default(),
        ))),
        ..Default::default()
    }
}

/// istiod sends `Router { start_child_span: false, suppress_envoy_headers: false }`, i.e. the
/// default message.
pub(crate) fn http_filter_router() -> hcm::HttpFilter {
    hcm::HttpFilter {
        name: ROUTER_FILTER.into(),
        config_type: Some(hcm::http_filter::ConfigType::TypedConfig(any(
            &router::Router::default(),
        ))),
        ..Default::default()
    }
}

/// `ads: {}` with no `resource_api_version`, exactly as istiod writes config sources.
pub(crate) fn ads_config_source() -> core_pb::ConfigSource {
    core_pb::ConfigSource {
        config_source_specifier: Some(core_pb::config_source::ConfigSourceSpecifier::Ads(
            core_pb::AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub(crate) fn socket_address(ip: &str, port: u32) -> core_pb::Address {
    core_pb::Address {
        address: Some(core_pb::address::Address::SocketAddress(
            core_pb::SocketAddress {
                address: ip.to_string(),
                port_specifier: Some(core_pb::socket_address::PortSpecifier::PortValue(port)),
                ..Default::default()
            },
        )),
    }
}

/// The listener a client gets for `xds:///<name>`; `name` is `host:port`, or an interface
/// name for interface listeners (same content, DESIGN §7).
pub(crate) fn client_listener(
    svc: &Service<'_>,
    port: &ServicePort,
    name: &str,
) -> listener::Listener {
    // istiod: `sv.GetAddressForProxy(node)`, the first VIP, or 0.0.0.0 for a ServiceEntry
    // without `addresses`.
    let vip = svc.se.addresses.first().map_or("0.0.0.0", String::as_str);
    let manager = hcm::HttpConnectionManager {
        http_filters: vec![http_filter_fault(), http_filter_router()],
        route_specifier: Some(hcm::http_connection_manager::RouteSpecifier::Rds(
            hcm::Rds {
                config_source: Some(ads_config_source()),
                route_config_name: cluster_name(port.number, "", svc.host),
            },
        )),
        ..Default::default()
    };
    listener::Listener {
        name: name.to_string(),
        address: Some(socket_address(vip, port.number)),
        api_listener: Some(listener::ApiListener {
            api_listener: Some(any(&manager)),
        }),
        ..Default::default()
    }
}
