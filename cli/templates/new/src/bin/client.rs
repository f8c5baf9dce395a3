//! {{name}}-client: calls the Greeter through the mesh.
//!
//! Usage: {{name}}-client [--xds-server HOST:PORT | TARGET] [COUNT]
//!   --xds-server HOST:PORT   find the Greeter by interface name through that control plane
//!   TARGET                   a plain host:port (no mesh), e.g. 127.0.0.1:50051
//! With neither, GRPC_XDS_BOOTSTRAP names the control plane.

use {{crate}}::{GreeterClient, HelloRequest};
use skiff_tokio::{Channel, Mesh, XdsServerTarget};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut client, rest): (GreeterClient<Channel>, &[String]) = match args.first().map(String::as_str) {
        Some("--xds-server") => {
            let x = args.get(1).ok_or("--xds-server needs HOST:PORT")?;
            let mesh = Mesh::builder().xds_server(XdsServerTarget::insecure(x)).build()?;
            (mesh.client::<GreeterClient<Channel>>()?, &args[2..])
        }
        Some(target) if !target.chars().all(|c| c.is_ascii_digit()) => {
            let mesh = Mesh::builder().build()?;
            (GreeterClient::new(mesh.channel(target)?), &args[1..])
        }
        _ => {
            let mesh = Mesh::from_env()?;
            (mesh.client::<GreeterClient<Channel>>()?, &args[..])
        }
    };
    let count: usize = rest.first().map(|c| c.parse()).transpose()?.unwrap_or(5);
    for i in 0..count {
        let reply = client
            .say_hello(HelloRequest { name: format!("call {i}") })
            .await?;
        println!("{}", reply.into_inner().message);
    }
    Ok(())
}
