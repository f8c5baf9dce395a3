//! Variant P: the skiff side. The embedded control plane (a child process, like istiod would
//! be) serves a ServiceEntry for `echo.default.svc.cluster.local:7000` pointing at the echo
//! server; the client resolves `xds:///echo.default.svc.cluster.local:7000` through skiff.

use std::net::SocketAddr;

use skiff_tokio::{ConfigSource, ControlPlaneServer};

/// The xDS target every P client dials.
pub const TARGET: &str = "xds:///echo.default.svc.cluster.local:7000";

/// The mesh configuration: one STATIC ServiceEntry whose single endpoint is the echo server.
pub fn mesh_yaml(echo: SocketAddr) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{{number: 7000, name: grpc}}]
  resolution: STATIC
  endpoints:
  - {{address: {ip}, ports: {{grpc: {port}}}}}
"#,
        ip = echo.ip(),
        port = echo.port()
    )
}

/// Role `control-plane`: binds the embedded control plane on loopback, prints its address,
/// serves until the parent goes away.
pub fn control_plane_role(echo: SocketAddr) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let cp = ControlPlaneServer::bind(
            "127.0.0.1:0",
            ConfigSource::text("mesh.yaml", mesh_yaml(echo)),
        )
        .await
        .map_err(|e| format!("control plane: {e}"))?;
        if !cp.warnings().is_empty() {
            eprintln!("control plane warnings: {:?}", cp.warnings());
        }
        println!("{}", cp.local_addr());
        cp.run().await;
        Ok(())
    })
}
