//! Validated Listener (LDS): a client's `api_listener` (gRFC A27) or an xDS-enabled server's
//! listener with filter chains (gRFC A36).

use core::time::Duration;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use prost::{Message, Name};

use super::filter::{self, NamedFilter};
use super::route::{self, RouteConfig};
use super::{Ignored, ValidationError, duration};
use crate::pb::envoy::config::core::v3 as core_pb;
use crate::pb::envoy::config::listener::v3 as pb;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm_pb;
use crate::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;

/// Name of the HCM network filter in server filter chains.
pub const HCM_FILTER_NAME: &str = "envoy.filters.network.http_connection_manager";
/// Name of the TLS transport socket (gRFC A29).
pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// A validated Listener.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// Resource name (`host:port` for istiod clients, `xds.istio.io/grpc/lds/inbound/IP:PORT`
    /// for servers).
    pub name: String,
    /// Client or server shape.
    pub kind: ListenerKind,
}

/// A Listener is either a client's API listener or a server's socket listener.
#[derive(Clone, Debug)]
pub enum ListenerKind {
    /// `api_listener` with an HttpConnectionManager (gRFC A27).
    Client(HttpConnectionManager),
    /// A server listener with filter chains (gRFC A36).
    Server(ServerListener),
}

/// Where an HCM gets its routes.
#[derive(Clone, Debug)]
pub enum RouteSource {
    /// RDS by name (`rds.route_config_name`), fetched over ADS.
    Rds(String),
    /// Inline `route_config`.
    Inline(Arc<RouteConfig>),
}

/// A validated HttpConnectionManager.
#[derive(Clone, Debug)]
pub struct HttpConnectionManager {
    /// Routes.
    pub routes: RouteSource,
    /// HTTP filters in order; the router is last (gRFC A39).
    pub http_filters: Vec<NamedFilter>,
    /// `common_http_protocol_options.max_stream_duration` (gRFC A31): the default RPC timeout
    /// when the route sets none. `None` when unset or zero.
    pub max_stream_duration: Option<Duration>,
}

/// A server listener (gRFC A36).
#[derive(Clone, Debug)]
pub struct ServerListener {
    /// `address.socket_address`.
    pub address: SocketAddr,
    /// `filter_chains` that can match (chains gRPC never matches, e.g. with `destination_port`,
    /// are dropped at validation and recorded as ignored).
    pub filter_chains: Vec<FilterChain>,
    /// `default_filter_chain`.
    pub default_filter_chain: Option<FilterChain>,
}

/// A source-type constraint of a filter chain match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceType {
    /// Any source.
    Any,
    /// Only connections from the same host (loopback or the destination address).
    SameIpOrLoopback,
    /// Only connections from other hosts.
    External,
}

/// A CIDR range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let len = u32::from(self.len.min(32));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let len = u32::from(self.len.min(128));
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

/// One server filter chain.
#[derive(Clone, Debug)]
pub struct FilterChain {
    /// `name`.
    pub name: String,
    /// `filter_chain_match.prefix_ranges` (destination).
    pub prefix_ranges: Vec<Cidr>,
    /// `filter_chain_match.source_type`.
    pub source_type: SourceType,
    /// `filter_chain_match.source_prefix_ranges`.
    pub source_prefix_ranges: Vec<Cidr>,
    /// `filter_chain_match.source_ports`.
    pub source_ports: Vec<u16>,
    /// The chain's HCM.
    pub hcm: HttpConnectionManager,
    /// The raw `DownstreamTlsContext` when the chain terminates TLS (validated by the security
    /// layer, gRFC A29).
    pub tls: Option<Arc<DownstreamTlsContext>>,
}

/// Validates a Listener resource.
pub fn validate_listener(
    l: &pb::Listener,
    ignored: &mut Ignored,
) -> Result<ListenerConfig, ValidationError> {
    if l.name.is_empty() {
        return Err(ValidationError::new("name", "empty listener name"));
    }
    if let Some(api) = &l.api_listener {
        let any = api
            .api_listener
            .as_ref()
            .ok_or_else(|| ValidationError::new("api_listener.api_listener", "missing"))?;
        let hcm = decode_hcm(any).map_err(|e| e.within("api_listener.api_listener"))?;
        let hcm = validate_hcm(&hcm, false, ignored, "api_listener.api_listener")
            .map_err(|e| e.within("api_listener.api_listener"))?;
        if !l.filter_chains.is_empty() {
            ignored.note("filter_chains");
        }
        return Ok(ListenerConfig {
            name: l.name.clone(),
            kind: ListenerKind::Client(hcm),
        });
    }
    validate_server(l, ignored).map(|s| ListenerConfig {
        name: l.name.clone(),
        kind: ListenerKind::Server(s),
    })
}

fn decode_hcm(any: &prost_types::Any) -> Result<hcm_pb::HttpConnectionManager, ValidationError> {
    if any.type_url != hcm_pb::HttpConnectionManager::type_url() {
        return Err(ValidationError::new(
            "",
            format!(
                "unsupported type {:?}; expected HttpConnectionManager",
                any.type_url
            ),
        ));
    }
    hcm_pb::HttpConnectionManager::decode(any.value.as_slice())
        .map_err(|e| ValidationError::new("", format!("undecodable HttpConnectionManager: {e}")))
}

/// gRFC A27: RDS config sources must be `ads` (or `self`).
fn check_config_source(src: Option<&core_pb::ConfigSource>) -> Result<(), ValidationError> {
    use core_pb::config_source::ConfigSourceSpecifier as S;
    match src.and_then(|s| s.config_source_specifier.as_ref()) {
        Some(S::Ads(_)) | Some(S::Self_(_)) => Ok(()),
        _ => Err(ValidationError::new(
            "config_source",
            "only `ads` or `self` config sources are supported",
        )),
    }
}

fn validate_hcm(
    h: &hcm_pb::HttpConnectionManager,
    server: bool,
    ignored: &mut Ignored,
    prefix: &str,
) -> Result<HttpConnectionManager, ValidationError> {
    use hcm_pb::http_connection_manager::RouteSpecifier;
    let routes = match &h.route_specifier {
        Some(RouteSpecifier::Rds(rds)) => {
            check_config_source(rds.config_source.as_ref()).map_err(|e| e.within("rds"))?;
            if rds.route_config_name.is_empty() {
                return Err(ValidationError::new("rds.route_config_name", "empty"));
            }
            RouteSource::Rds(rds.route_config_name.clone())
        }
        Some(RouteSpecifier::RouteConfig(rc)) => {
            let mut inner = Ignored::default();
            let rc = route::validate_route_configuration(rc, &mut inner)
                .map_err(|e| e.within("route_config"))?;
            for f in inner.fields() {
                ignored.note_in(prefix, &format!("route_config.{f}"));
            }
            RouteSource::Inline(Arc::new(rc))
        }
        Some(RouteSpecifier::ScopedRoutes(_)) => {
            return Err(ValidationError::new(
                "scoped_routes",
                "scoped routes are not supported",
            ));
        }
        None => {
            return Err(ValidationError::new(
                "route_specifier",
                "neither rds nor route_config is set",
            ));
        }
    };
    let side = if server {
        filter::FilterSide::Server
    } else {
        filter::FilterSide::Client
    };
    let http_filters = filter::validate_http_filters(&h.http_filters, side, ignored)
        .map_err(|e| e.within("http_filters"))?;
    let max_stream_duration = match h
        .common_http_protocol_options
        .as_ref()
        .and_then(|o| o.max_stream_duration.as_ref())
    {
        Some(d) => {
            let d = duration("common_http_protocol_options.max_stream_duration", d)?;
            (!d.is_zero()).then_some(d)
        }
        None => None,
    };
    Ok(HttpConnectionManager {
        routes,
        http_filters,
        max_stream_duration,
    })
}

fn socket_addr(field: &str, a: Option<&core_pb::Address>) -> Result<SocketAddr, ValidationError> {
    use core_pb::address::Address as A;
    use core_pb::socket_address::PortSpecifier;
    let Some(A::SocketAddress(sa)) = a.and_then(|a| a.address.as_ref()) else {
        return Err(ValidationError::new(field, "must be a socket_address"));
    };
    let ip: IpAddr = sa.address.parse().map_err(|_| {
        ValidationError::new(
            format!("{field}.socket_address.address"),
            format!("{:?} is not an IP address", sa.address),
        )
    })?;
    let port = match sa.port_specifier {
        Some(PortSpecifier::PortValue(p)) => u16::try_from(p).map_err(|_| {
            ValidationError::new(format!("{field}.socket_address.port_value"), "out of range")
        })?,
        _ => {
            return Err(ValidationError::new(
                format!("{field}.socket_address.port_value"),
                "a numeric port is required",
            ));
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn cidrs(field: &str, ranges: &[core_pb::CidrRange]) -> Result<Vec<Cidr>, ValidationError> {
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let addr: IpAddr = r.address_prefix.parse().map_err(|_| {
                ValidationError::new(
                    format!("{field}[{i}].address_prefix"),
                    format!("{:?} is not an IP address", r.address_prefix),
                )
            })?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = r.prefix_len.unwrap_or(max);
            if len > max {
                return Err(ValidationError::new(
                    format!("{field}[{i}].prefix_len"),
                    format!("{len} is longer than {max}"),
                ));
            }
            Ok(Cidr {
                addr,
                len: u8::try_from(len).unwrap_or(0),
            })
        })
        .collect()
}

fn validate_server(
    l: &pb::Listener,
    ignored: &mut Ignored,
) -> Result<ServerListener, ValidationError> {
    let address = socket_addr("address", l.address.as_ref())?;
    if l.use_original_dst == Some(true) {
        return Err(ValidationError::new(
            "use_original_dst",
            "not supported by xDS-enabled servers (gRFC A36)",
        ));
    }
    if !l.listener_filters.is_empty() {
        ignored.note("listener_filters");
    }
    let mut filter_chains = Vec::with_capacity(l.filter_chains.len());
    for (i, fc) in l.filter_chains.iter().enumerate() {
        let prefix = format!("filter_chains[{i}]");
        if let Some(chain) = validate_chain(fc, ignored, &prefix).map_err(|e| e.within(&prefix))? {
            filter_chains.push(chain);
        }
    }
    let default_filter_chain = match &l.default_filter_chain {
        Some(fc) => validate_chain(fc, ignored, "default_filter_chain")
            .map_err(|e| e.within("default_filter_chain"))?,
        None => None,
    };
    Ok(ServerListener {
        address,
        filter_chains,
        default_filter_chain,
    })
}

/// `Ok(None)`: a chain gRPC never matches (gRFC A36), kept out of the model.
fn validate_chain(
    fc: &pb::FilterChain,
    ignored: &mut Ignored,
    prefix: &str,
) -> Result<Option<FilterChain>, ValidationError> {
    let m = fc.filter_chain_match.clone().unwrap_or_default();
    // A36: chains that match on fields gRPC does not support can never match.
    if m.destination_port.is_some()
        || !m.server_names.is_empty()
        || !(m.transport_protocol.is_empty() || m.transport_protocol == "raw_buffer")
        || !m.application_protocols.is_empty()
    {
        ignored.note(format!(
            "{prefix} (never matches: unsupported match criteria)"
        ));
        return Ok(None);
    }
    let source_type = match m.source_type {
        0 => SourceType::Any,
        1 => SourceType::SameIpOrLoopback,
        2 => SourceType::External,
        other => {
            return Err(ValidationError::new(
                "filter_chain_match.source_type",
                format!("unknown value {other}"),
            ));
        }
    };
    let source_ports = m
        .source_ports
        .iter()
        .map(|p| {
            u16::try_from(*p).map_err(|_| {
                ValidationError::new(
                    "filter_chain_match.source_ports",
                    format!("{p} out of range"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A36: exactly one network filter, the HCM.
    if fc.filters.len() != 1 {
        return Err(ValidationError::new(
            "filters",
            format!(
                "expected exactly one HttpConnectionManager filter, got {}",
                fc.filters.len()
            ),
        ));
    }
    let Some(f) = fc.filters.first() else {
        return Err(ValidationError::new("filters", "empty"));
    };
    use crate::pb::envoy::config::listener::v3::filter::ConfigType;
    let Some(ConfigType::TypedConfig(any)) = &f.config_type else {
        return Err(ValidationError::new("filters[0].typed_config", "missing"));
    };
    let hcm = decode_hcm(any).map_err(|e| e.within("filters[0].typed_config"))?;
    let hcm = validate_hcm(&hcm, true, ignored, &format!("{prefix}.filters[0]"))
        .map_err(|e| e.within("filters[0].typed_config"))?;
    let tls = match &fc.transport_socket {
        None => None,
        Some(ts) if ts.name == TLS_TRANSPORT_SOCKET => {
            use crate::pb::envoy::config::core::v3::transport_socket::ConfigType as T;
            let Some(T::TypedConfig(any)) = &ts.config_type else {
                return Err(ValidationError::new(
                    "transport_socket.typed_config",
                    "missing",
                ));
            };
            let ctx = DownstreamTlsContext::decode(any.value.as_slice()).map_err(|e| {
                ValidationError::new(
                    "transport_socket.typed_config",
                    format!("undecodable DownstreamTlsContext: {e}"),
                )
            })?;
            Some(Arc::new(ctx))
        }
        Some(ts) => {
            return Err(ValidationError::new(
                "transport_socket.name",
                format!("unsupported transport socket {:?}", ts.name),
            ));
        }
    };
    Ok(Some(FilterChain {
        name: fc.name.clone(),
        prefix_ranges: cidrs("filter_chain_match.prefix_ranges", &m.prefix_ranges)?,
        source_type,
        source_prefix_ranges: cidrs(
            "filter_chain_match.source_prefix_ranges",
            &m.source_prefix_ranges,
        )?,
        source_ports,
        hcm,
        tls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::listener::v3::ApiListener;

    fn client_listener(hcm: &hcm_pb::HttpConnectionManager) -> pb::Listener {
        pb::Listener {
            name: "echo.default.svc.cluster.local:7000".into(),
            api_listener: Some(ApiListener {
                api_listener: Some(prost_types::Any::from_msg(hcm).unwrap()),
            }),
            ..Default::default()
        }
    }

    fn router_filter() -> hcm_pb::HttpFilter {
        use crate::pb::envoy::extensions::filters::http::router::v3::Router;
        hcm_pb::HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(hcm_pb::http_filter::ConfigType::TypedConfig(
                prost_types::Any::from_msg(&Router::default()).unwrap(),
            )),
            ..Default::default()
        }
    }

    fn ads() -> core_pb::ConfigSource {
        core_pb::ConfigSource {
            config_source_specifier: Some(core_pb::config_source::ConfigSourceSpecifier::Ads(
                core_pb::AggregatedConfigSource {},
            )),
            ..Default::default()
        }
    }

    #[test]
    fn istiod_client_listener_with_rds() {
        let hcm = hcm_pb::HttpConnectionManager {
            route_specifier: Some(hcm_pb::http_connection_manager::RouteSpecifier::Rds(
                hcm_pb::Rds {
                    config_source: Some(ads()),
                    route_config_name: "outbound|7000||echo.default.svc.cluster.local".into(),
                },
            )),
            http_filters: vec![router_filter()],
            ..Default::default()
        };
        let mut ig = Ignored::default();
        let l = validate_listener(&client_listener(&hcm), &mut ig).unwrap();
        let ListenerKind::Client(h) = l.kind else {
            panic!("client")
        };
        assert!(
            matches!(h.routes, RouteSource::Rds(ref n) if n == "outbound|7000||echo.default.svc.cluster.local")
        );
        assert_eq!(h.http_filters.len(), 1);
        assert_eq!(h.max_stream_duration, None);
    }

    #[test]
    fn rds_must_come_from_ads() {
        let hcm = hcm_pb::HttpConnectionManager {
            route_specifier: Some(hcm_pb::http_connection_manager::RouteSpecifier::Rds(
                hcm_pb::Rds {
                    config_source: None,
                    route_config_name: "r".into(),
                },
            )),
            http_filters: vec![router_filter()],
            ..Default::default()
        };
        let err = validate_listener(&client_listener(&hcm), &mut Ignored::default()).unwrap_err();
        assert!(err.to_string().contains("rds.config_source"), "{err}");
    }

    #[test]
    fn missing_route_specifier_rejected() {
        let hcm = hcm_pb::HttpConnectionManager {
            http_filters: vec![router_filter()],
            ..Default::default()
        };
        let err = validate_listener(&client_listener(&hcm), &mut Ignored::default()).unwrap_err();
        assert!(err.to_string().contains("route_specifier"), "{err}");
    }

    #[test]
    fn wrong_api_listener_type_rejected() {
        let l = pb::Listener {
            name: "x:1".into(),
            api_listener: Some(ApiListener {
                api_listener: Some(prost_types::Any {
                    type_url: "type.googleapis.com/some.Other".into(),
                    value: vec![],
                }),
            }),
            ..Default::default()
        };
        let err = validate_listener(&l, &mut Ignored::default()).unwrap_err();
        assert!(err.to_string().contains("unsupported type"), "{err}");
    }

    #[test]
    fn cidr_contains() {
        let c = Cidr {
            addr: "10.1.0.0".parse().unwrap(),
            len: 16,
        };
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let all = Cidr {
            addr: "0.0.0.0".parse().unwrap(),
            len: 0,
        };
        assert!(all.contains("1.2.3.4".parse().unwrap()));
    }
}
