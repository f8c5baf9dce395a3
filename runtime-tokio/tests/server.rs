//! The xDS-enabled server (gRFC A36) end to end: a tonic service behind `skiff_tokio::Server`,
//! configured by the embedded control plane's inbound listener over the mesh's ADS stream, and
//! called by a skiff client through the same control plane. Real sockets on 127.0.0.1, bounded
//! in time.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_tokio::{Mesh, Server, ServingMode, XdsServerTarget};
use support::greeter::greeter_client::GreeterClient;
use support::greeter::greeter_server::{Greeter, GreeterServer};
use support::greeter::{HelloReply, HelloRequest};
use support::{CASE_LIMIT, Fixture, HOST, TARGET};

struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        Ok(tonic::Response::new(HelloReply {
            message: format!("hello {}", request.into_inner().name),
            backend: "xds-server".into(),
        }))
    }

    type SayHelloStreamStream =
        tonic::codegen::tokio_stream::Iter<std::vec::IntoIter<Result<HelloReply, tonic::Status>>>;

    async fn say_hello_stream(
        &self,
        _request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<Self::SayHelloStreamStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn say_hello_client_stream(
        &self,
        _request: tonic::Request<tonic::Streaming<HelloRequest>>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
}

fn mesh_yaml(endpoint_ip: &str, port: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: test}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 7000, name: grpc, protocol: GRPC}}]
  endpoints:
  - {{address: {endpoint_ip}, ports: {{grpc: {port}}}}}
"
    )
}

async fn hello(client: &mut GreeterClient<skiff_tokio::Channel>) -> Result<String, tonic::Status> {
    let mut req = tonic::Request::new(HelloRequest {
        name: "a36".into(),
        ..Default::default()
    });
    req.set_timeout(Duration::from_millis(500));
    client.say_hello(req).await.map(|r| r.into_inner().backend)
}

async fn wait_for(modes: &Arc<Mutex<Vec<ServingMode>>>, serving: bool) -> Vec<ServingMode> {
    for _ in 0..200 {
        let now = modes.lock().unwrap().clone();
        if now.last().is_some_and(|m| m.is_serving() == serving) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "serving mode never became {serving}: {:?}",
        modes.lock().unwrap()
    );
}

#[test]
fn the_server_serves_once_its_listener_arrives_and_stops_when_it_goes() {
    let fx = Fixture::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(CASE_LIMIT, async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            fx.start_control_plane(Some(&mesh_yaml("127.0.0.1", addr.port())))
                .await;
            let xds = fx.xds_target();

            // The server's mesh: its ADS stream carries the server's listener watch.
            let server_mesh = Mesh::builder()
                .xds_server(XdsServerTarget::insecure(&xds))
                .node_id("sidecar~127.0.0.1~greeter-0.test~test.svc.cluster.local")
                .build()
                .expect("server mesh");
            let modes: Arc<Mutex<Vec<ServingMode>>> = Arc::default();
            let seen = Arc::clone(&modes);
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(async move {
                Server::builder()
                    .serving_mode(move |a, m| {
                        assert_eq!(a, addr);
                        seen.lock().unwrap().push(m.clone());
                    })
                    .drain_grace(Duration::from_secs(1))
                    .serve_with_shutdown(
                        &server_mesh,
                        listener,
                        tonic::service::Routes::new(GreeterServer::new(Hello)),
                        async {
                            let _ = stop_rx.await;
                        },
                    )
                    .await
            });

            // Not serving first (waiting for the listener), then serving.
            let history = wait_for(&modes, true).await;
            assert!(
                matches!(&history[0], ServingMode::NotServing(why) if why.contains("waiting")),
                "{history:?}"
            );

            // A skiff client reaches it through the control plane.
            let client_mesh = Mesh::builder()
                .xds_server(XdsServerTarget::insecure(&xds))
                .node_id("client~127.0.0.1~client.test~test.svc.cluster.local")
                .build()
                .expect("client mesh");
            let mut client = GreeterClient::new(client_mesh.channel(TARGET).expect("channel"));
            let mut served = None;
            for _ in 0..100 {
                if let Ok(b) = hello(&mut client).await {
                    served = Some(b);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(served.as_deref(), Some("xds-server"));

            // CSDS (gRFC A40) on the app itself: its own xDS view, the server listener ACKed.
            let csds_channel = client_mesh.channel(&addr.to_string()).expect("direct channel");
            let mut grpc = tonic::client::Grpc::new(csds_channel);
            grpc.ready().await.expect("ready");
            let reply: skiff_core::pb::envoy::service::status::v3::ClientStatusResponse = grpc
                .unary(
                    tonic::Request::new(
                        skiff_core::pb::envoy::service::status::v3::ClientStatusRequest::default(),
                    ),
                    http::uri::PathAndQuery::from_static(
                        "/envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus",
                    ),
                    tonic_prost::ProstCodec::default(),
                )
                .await
                .expect("CSDS answer")
                .into_inner();
            let config = &reply.config[0];
            assert_eq!(
                config.node.as_ref().map(|n| n.id.as_str()),
                Some("sidecar~127.0.0.1~greeter-0.test~test.svc.cluster.local")
            );
            let inbound = format!("xds.istio.io/grpc/lds/inbound/{addr}");
            let entry = config
                .generic_xds_configs
                .iter()
                .find(|g| g.name == inbound)
                .unwrap_or_else(|| panic!("{inbound} in {:#?}", config.generic_xds_configs));
            // ClientResourceStatus::ACKED = 3.
            assert_eq!(entry.client_status, 3, "{entry:?}");

            // The workload leaves the configuration: its inbound listener is deleted and the
            // server stops serving (new connections are refused).
            fx.reconfigure(&mesh_yaml("127.0.0.2", addr.port())).await;
            let history = wait_for(&modes, false).await;
            assert!(
                matches!(history.last(), Some(ServingMode::NotServing(why)) if why.contains("does not exist")),
                "{history:?}"
            );
            let refused = tokio::time::timeout(Duration::from_secs(2), async {
                let direct = client_mesh.channel(&addr.to_string()).ok()?;
                let mut plain = GreeterClient::new(direct);
                plain.say_hello(HelloRequest::default()).await.ok()
            })
            .await
            .ok()
            .flatten();
            assert!(refused.is_none(), "a not-serving server answered an RPC");

            let _ = stop_tx.send(());
            server.await.expect("server task").expect("server");
        })
        .await
        .expect("the case did not finish within its time limit");
    });
}
