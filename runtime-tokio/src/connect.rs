//! Dialing the control plane (skiff-adapter's targets and credentials, dialed with tokio).
//!
//! See [`skiff_adapter::connect`] for the target syntax and the `tls` channel credentials.

pub use skiff_adapter::connect::*;

use crate::runtime::Tokio;

/// Dials `target` once on the current tokio runtime: parse, resolve, connect, TLS.
pub async fn connect(target: &XdsServerTarget) -> Result<BoxIo, ConnectError> {
    let rt = Tokio::new(tokio::runtime::Handle::current());
    skiff_adapter::connect::connect(&rt, target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connection_is_reported() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let err = match connect(&XdsServerTarget::insecure(addr.to_string())).await {
            Err(e) => e,
            Ok(_) => panic!("connected to a closed port"),
        };
        assert!(matches!(err, ConnectError::Connect { .. }), "{err}");
    }
}
