//! Large xDS updates (100k-endpoint EDS, 10k-cluster CDS) and an `XdsClient` set up to receive
//! them on an open ADS stream, as gRPC-framed `DiscoveryResponse` bytes.

use bytes::{Bytes, BytesMut};
use prost_types::Any;
use skiff_core::grpc::codec::encode_frame;
use skiff_core::ids::AdsStreamId;
use skiff_core::pb::envoy::config::endpoint::v3 as ep_pb;
use skiff_core::pb::envoy::config::route::v3 as route_pb;
use skiff_core::pb::envoy::service::discovery::v3 as disc;
use skiff_core::rng::{Rng, Seed};
use skiff_core::time::Instant;
use skiff_core::xds::{ResourceType, XdsClient, XdsClientConfig, XdsEvent, XdsOutput};

use crate::fixtures;

/// Zones of the big EDS update.
pub const EDS_ZONES: usize = 10;

/// The EDS resource name of the big update.
pub fn big_eds_name() -> String {
    fixtures::cluster_name(fixtures::PORT, "", "big.default.svc.cluster.local")
}

/// A ClusterLoadAssignment of `n` endpoints in [`EDS_ZONES`] zones (istiod's shape). `variant`
/// changes exactly one endpoint (the middle one gets port `8080 + variant`), so variants differ
/// by a one-endpoint change.
pub fn big_eds(n: usize, variant: u32) -> ep_pb::ClusterLoadAssignment {
    let per_zone = n / EDS_ZONES;
    let mut cla = fixtures::load_assignment(&big_eds_name(), 0, EDS_ZONES, per_zone, |_| 1);
    if variant != 0 {
        let z = EDS_ZONES / 2;
        let ep = &mut cla.endpoints[z].lb_endpoints[0];
        *ep = fixtures::lb_endpoint(&fixtures::endpoint_ip(0, z * per_zone), 8080 + variant, 1);
    }
    cla
}

/// A SotW `DiscoveryResponse` carrying `resources`, gRPC-framed.
pub fn framed_response(ty: ResourceType, resources: Vec<Any>, version: &str) -> Bytes {
    let resp = disc::DiscoveryResponse {
        version_info: version.into(),
        resources,
        type_url: ty.type_url().into(),
        nonce: format!("nonce-{version}"),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    encode_frame(&resp, &mut buf);
    buf.freeze()
}

/// What the client said while handling an input.
#[derive(Debug, Default)]
pub struct Drained {
    /// `Updated` events' names.
    pub updated: usize,
    /// `Nacked` errors.
    pub nacks: Vec<String>,
    /// Bytes the client asked to send.
    pub sent_bytes: usize,
}

/// Drains every output.
pub fn drain(client: &mut XdsClient) -> Drained {
    let mut d = Drained::default();
    while let Some(o) = client.poll_output() {
        match o {
            XdsOutput::AdsSend(_, b) => d.sent_bytes += b.len(),
            XdsOutput::Event(XdsEvent::Updated { names, .. }) => d.updated += names.len(),
            XdsOutput::Event(XdsEvent::Nacked { errors, .. }) => d.nacks.extend(errors),
            _ => {}
        }
    }
    d
}

/// An `XdsClient` with an open SotW stream, and its stream id.
#[derive(Debug)]
pub struct Client {
    /// The client.
    pub client: XdsClient,
    /// The open stream.
    pub stream: AdsStreamId,
    /// The time passed on every input.
    pub now: Instant,
}

impl Client {
    /// A client watching `name` of type `ty`, with its stream open and the request drained.
    pub fn watching(ty: ResourceType, name: &str) -> Client {
        let now = Instant::from_secs(1);
        let mut client = XdsClient::new(
            XdsClientConfig::new(skiff_sim::test_node()),
            Rng::new(Seed(7)).fork("xds"),
            now,
        );
        client.watch(now, ty, name);
        let mut stream = None;
        while let Some(o) = client.poll_output() {
            if let XdsOutput::AdsOpen(id) = o {
                stream = Some(id);
            }
        }
        let stream = stream.expect("the client opens a stream");
        client.handle_ads_open(now, stream);
        drain(&mut client);
        Client {
            client,
            stream,
            now,
        }
    }

    /// Feeds bytes and drains the outputs.
    pub fn feed(&mut self, bytes: &[u8]) -> Drained {
        self.client.handle_ads_data(self.now, self.stream, bytes);
        drain(&mut self.client)
    }
}

/// Cluster names of the CDS benchmark.
pub fn cds_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| fixtures::cluster_name(fixtures::PORT, "", &fixtures::host(i)))
        .collect()
}

/// `n` istiod-shaped clusters; `variant` changes every cluster's circuit breaker, so two
/// variants differ in every resource.
pub fn cds_clusters(names: &[String], variant: u32) -> Vec<Any> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let lb = match i % 10 {
                6 | 7 => fixtures::Lb::LeastRequest,
                8 | 9 => fixtures::Lb::RingHash,
                _ => fixtures::Lb::RoundRobin,
            };
            fixtures::pack(&fixtures::cluster(n, lb, 1024 + variant))
        })
        .collect()
}

/// A client subscribed to the clusters `names` the way a real one gets there: it watches a
/// listener, receives it (LDS), then a route configuration whose routes name every cluster
/// (RDS), which subscribes them all (CDS).
pub fn cds_client(names: &[String]) -> Client {
    let listener_name = "big.default.svc.cluster.local:7000";
    let rc_name = "outbound|7000||big.default.svc.cluster.local";
    let mut c = Client::watching(ResourceType::Listener, listener_name);
    let lds = framed_response(
        ResourceType::Listener,
        vec![fixtures::pack(&skiff_sim::build::listener(
            listener_name,
            rc_name,
        ))],
        "1",
    );
    let d = c.feed(&lds);
    assert!(d.nacks.is_empty(), "LDS rejected: {:?}", d.nacks);
    let routes = names
        .iter()
        .enumerate()
        .map(|(i, n)| route_pb::Route {
            r#match: Some(route_pb::RouteMatch {
                path_specifier: Some(route_pb::route_match::PathSpecifier::Prefix(
                    fixtures::service_prefix(i),
                )),
                ..Default::default()
            }),
            action: Some(route_pb::route::Action::Route(route_pb::RouteAction {
                cluster_specifier: Some(route_pb::route_action::ClusterSpecifier::Cluster(
                    n.clone(),
                )),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    let rc = route_pb::RouteConfiguration {
        name: rc_name.into(),
        virtual_hosts: vec![route_pb::VirtualHost {
            name: "big".into(),
            domains: vec!["*".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    };
    let rds = framed_response(
        ResourceType::RouteConfiguration,
        vec![fixtures::pack(&rc)],
        "1",
    );
    let d = c.feed(&rds);
    assert!(d.nacks.is_empty(), "RDS rejected: {:?}", d.nacks);
    assert_eq!(
        c.client.subscribed(ResourceType::Cluster).count(),
        names.len(),
        "every cluster subscribed"
    );
    c
}
