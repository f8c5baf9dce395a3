//! {{name}}-server: the Greeter service.
//!
//! With `GRPC_XDS_BOOTSTRAP` (or `--xds-server HOST:PORT`) it is an xDS-enabled server
//! (gRFC A36): it serves once the control plane sends its listener and announces the
//! `helloworld.Greeter` interface. Without, it is a plain gRPC server.
//!
//! Usage: {{name}}-server [--xds-server HOST:PORT] [ADDR (default 127.0.0.1:50051)]

use {{crate}}::{Greeter, GreeterServer, HelloReply, HelloRequest};
use skiff_tokio::{Mesh, Server, XdsServerTarget};
use tonic::{Request, Response, Status};

struct Hello {
    name: String,
}

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("Hello {} from {}", request.into_inner().name, self.name),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let xds = match args.iter().position(|a| a == "--xds-server") {
        Some(i) if i + 1 < args.len() => {
            let v = args.remove(i + 1);
            args.remove(i);
            Some(v)
        }
        _ => None,
    };
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:50051".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!("{{name}}-server listening on {local}");
    let service = tonic::service::Routes::new(GreeterServer::new(Hello {
        name: format!("{{name}}@{local}"),
    }));

    let mesh = match xds {
        Some(x) => Some(
            Mesh::builder()
                .xds_server(XdsServerTarget::insecure(&x))
                .node_id(format!("sidecar~{}~{{name}}.default~default.svc.cluster.local", local.ip()))
                .serves(["helloworld.Greeter"])
                .build()?,
        ),
        None if std::env::var_os("GRPC_XDS_BOOTSTRAP").is_some() => Some(Mesh::from_env()?),
        None => None,
    };
    match mesh {
        Some(mesh) => {
            Server::builder()
                .serving_mode(|addr, mode| println!("{addr}: {mode:?}"))
                .serve_with_shutdown(&mesh, listener, service, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?
        }
        None => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            tonic::transport::Server::builder()
                .add_routes(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?
        }
    }
    Ok(())
}
