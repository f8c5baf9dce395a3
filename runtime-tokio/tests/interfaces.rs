//! Interface-level discovery end to end (DESIGN.md §7): a provider announces the gRPC interface
//! it serves in its node metadata (`MeshBuilder::serves`), the embedded control plane maps the
//! interface to the provider's service, and a client reaches it with `mesh.client::<T>()`
//! without naming any host. Real sockets on 127.0.0.1, the real control plane, a real tonic
//! backend; bounded in time.

mod support;

use std::time::Duration;

use skiff_core::xds::ResourceType;
use skiff_tokio::{Mesh, XdsServerTarget, mesh_client};
use support::greeter::HelloRequest;
use support::greeter::greeter_client::GreeterClient;
use support::{CASE_LIMIT, Fixture, HOST};

mesh_client!(GreeterClient => "helloworld.Greeter");

/// The greeter service with no `skiff.dev/interfaces` annotation: only an announcement can
/// make `helloworld.Greeter` resolvable.
fn unannotated_mesh(endpoint_line: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: test}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 7000, name: grpc, protocol: GRPC}}]
  endpoints:
{endpoint_line}"
    )
}

async fn hello(client: &mut GreeterClient<skiff_tokio::Channel>) -> Result<String, tonic::Status> {
    let mut req = tonic::Request::new(HelloRequest {
        name: "interface".into(),
        ..Default::default()
    });
    req.set_timeout(Duration::from_millis(500));
    client.say_hello(req).await.map(|r| r.into_inner().backend)
}

#[test]
fn a_client_finds_the_provider_by_interface_name() {
    let fx = Fixture::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(CASE_LIMIT, async {
            let backend = fx.backend("a").await;
            fx.start_control_plane(Some(&unannotated_mesh(&backend.endpoint_yaml("v1"))))
                .await;
            let xds = fx.xds_target();

            // The client dials the interface before anyone serves it: nothing routes there.
            let client_mesh = Mesh::builder()
                .xds_server(XdsServerTarget::insecure(&xds))
                .node_id("client~127.0.0.1~client.test~test.svc.cluster.local")
                .build()
                .expect("client mesh");
            let mut client = client_mesh
                .client::<GreeterClient<skiff_tokio::Channel>>()
                .expect("client");
            let before = hello(&mut client).await;
            assert!(before.is_err(), "no provider announced yet: {before:?}");

            // The provider announces the interface and, as an xDS-enabled server (gRFC A36)
            // does, subscribes to its own inbound listener: that ties it to the ServiceEntry
            // endpoint it listens on.
            let provider = Mesh::builder()
                .xds_server(XdsServerTarget::insecure(&xds))
                .node_id("sidecar~127.0.0.1~greeter-a.test~test.svc.cluster.local")
                .serves(["helloworld.Greeter"])
                .build()
                .expect("provider mesh");
            let inbound = format!("xds.istio.io/grpc/lds/inbound/{}", backend.addr);
            provider
                .with_core(|core, now| core.watch_resource(now, ResourceType::Listener, &inbound));

            let mut last = None;
            for _ in 0..100 {
                match hello(&mut client).await {
                    Ok(backend_name) => {
                        assert_eq!(backend_name, "a");
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(last.is_none(), "the interface never resolved: {last:?}");
            assert!(backend.hits() >= 1);

            // The provider goes away: its announcement (and the interface) with it.
            drop(provider);
            let mut gone = false;
            for _ in 0..100 {
                if hello(&mut client).await.is_err() {
                    gone = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(gone, "the interface outlived its only provider");
        })
        .await
        .expect("the case did not finish within its time limit");
    });
}
