//! skiff-tokio's Greeter client example on smol: the same code, with `skiff_smol` for
//! `skiff_tokio` and `smol::block_on` for `#[tokio::main]`. No tokio runtime runs.
//!
//! ```text
//! GRPC_XDS_BOOTSTRAP=/tmp/bootstrap.json cargo run -p skiff-smol --example smol_greeter_client
//! cargo run -p skiff-smol --example smol_greeter_client -- --xds 127.0.0.1:15010 xds:///helloworld.Greeter 20
//! ```
//!
//! With `GRPC_XDS_BOOTSTRAP` (or `GRPC_XDS_BOOTSTRAP_CONFIG`) set, the mesh is configured from
//! the bootstrap (`skiff bootstrap` writes one); otherwise `--xds ADDR` names the control plane.
//! Then: the target (default `xds:///helloworld.Greeter`; `xds:///greeter.demo.svc.cluster.local:50051`
//! or a plain `127.0.0.1:50051` work too) and how many calls to make (default 10).

#[path = "../../runtime-tokio/tests/support/greeter.rs"]
mod greeter;

#[path = "../../runtime-tokio/examples/common/demo.rs"]
mod demo;

use skiff_smol::{Mesh, XdsServerTarget};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        demo::init_logs();
        let args = demo::Args::from_env()?;
        // One mesh per process: one ADS stream, one connection per endpoint, shared by every
        // channel.
        let mesh = match args.xds {
            Some(addr) => Mesh::builder()
                .xds_server(XdsServerTarget::insecure(addr))
                .node_id(demo::NODE_ID)
                .build()?,
            None => Mesh::from_env()?,
        };
        let answered_by = demo::greet(mesh.channel(&args.target)?, "", args.calls, false).await;
        println!("answered by: {answered_by:?}");
        mesh.shutdown().await;
        Ok(())
    })
}
