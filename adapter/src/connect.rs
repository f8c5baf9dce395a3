//! Dialing the control plane.
//!
//! A control plane is named the way gRPC xDS bootstrap files name it (`xds_servers[].server_uri`):
//!
//! | target                 | meaning                                                         |
//! | ---------------------- | --------------------------------------------------------------- |
//! | `host:port`            | TCP; `host` is resolved by the runtime (the system resolver)     |
//! | `dns:///host:port`     | the same (an authority, `dns://8.8.8.8/host:port`, is ignored)  |
//! | `unix:///abs/path`     | a unix-domain socket (istio-agent's `unix:///etc/istio/proxy/XDS`) |
//! | `unix:path`            | a unix-domain socket, path relative or absolute                 |
//!
//! A missing port means 443, as in gRPC. Every resolved address is tried in order until one
//! connects (gRPC's `pick_first`). TCP connections set `TCP_NODELAY`.
//!
//! Channel credentials are `insecure` or `tls` (gRFC A65): a rustls client over the ring
//! provider, trusting the CA file, presenting the certificate and key files when given (mTLS),
//! offering ALPN `h2`, and verifying the target's host name (`localhost` for unix sockets).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::runtime::Runtime;
pub use crate::runtime::{BoxIo, Io};

/// The files of `tls` channel credentials (gRFC A65's `ca_certificate_file`, `certificate_file`,
/// `private_key_file`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA bundle the server's certificate must chain to. Required for now: skiff does not
    /// load the system's roots (A65's default when this is absent).
    pub ca: Option<PathBuf>,
    /// PEM certificate chain presented to the server (mTLS). Needs `key`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

/// Where the control plane is and how to talk to it: one `xds_servers` entry of a bootstrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdsServerTarget {
    /// `host:port`, `dns:///host:port`, `unix:///path` or `unix:path`.
    pub uri: String,
    /// `None` for `insecure` channel credentials, the files for `tls`.
    pub tls: Option<TlsFiles>,
}

impl XdsServerTarget {
    /// Plaintext (`insecure` channel credentials).
    pub fn insecure(uri: impl Into<String>) -> Self {
        XdsServerTarget {
            uri: uri.into(),
            tls: None,
        }
    }

    /// TLS (`tls` channel credentials) with these files.
    pub fn tls(uri: impl Into<String>, files: TlsFiles) -> Self {
        XdsServerTarget {
            uri: uri.into(),
            tls: Some(files),
        }
    }
}

/// A parsed target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A host (name or IP literal, without brackets) and a port, resolved at dial time.
    Tcp {
        /// Host name or IP.
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix-domain socket path.
    Unix(PathBuf),
}

impl Endpoint {
    /// Parses a target (see the module docs).
    pub fn parse(uri: &str) -> Result<Endpoint, ConnectError> {
        let bad = |why: &str| ConnectError::InvalidTarget {
            target: uri.to_string(),
            reason: why.to_string(),
        };
        if let Some(rest) = uri.strip_prefix("unix:") {
            // `unix:///abs`, `unix://abs` is not valid gRPC but means the same to everyone.
            let path = match rest.strip_prefix("//") {
                Some(abs) => abs,
                None => rest,
            };
            if path.is_empty() {
                return Err(bad("empty unix socket path"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if uri.starts_with("unix-abstract:") {
            return Err(bad("abstract unix sockets are not supported"));
        }
        let hostport = if let Some(rest) = uri.strip_prefix("dns:") {
            match rest.strip_prefix("//") {
                // `dns://authority/host:port` or `dns:///host:port`: the authority names a DNS
                // server, which tokio's resolver cannot use; the system resolver answers.
                Some(with_authority) => match with_authority.split_once('/') {
                    Some((_authority, hp)) => hp,
                    None => return Err(bad("dns target without a host")),
                },
                None => rest,
            }
        } else if let Some((scheme, _)) = uri.split_once("://") {
            return Err(bad(&format!("unsupported scheme {scheme:?}")));
        } else {
            uri
        };
        let (host, port) = split_host_port(hostport).map_err(|e| bad(&e))?;
        Ok(Endpoint::Tcp { host, port })
    }

    /// The HTTP/2 `:authority` for requests on this endpoint.
    pub fn authority(&self) -> String {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
            Endpoint::Unix(_) => "localhost".to_string(),
        }
    }

    /// The name a TLS server certificate is verified against.
    pub fn tls_name(&self) -> &str {
        match self {
            Endpoint::Tcp { host, .. } => host,
            Endpoint::Unix(_) => "localhost",
        }
    }
}

/// `host:port`, `[v6]:port`, `host` (port 443).
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    if s.is_empty() {
        return Err("empty host".into());
    }
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {p:?}"))
            .and_then(|p| {
                if p == 0 {
                    Err("port 0".to_string())
                } else {
                    Ok(p)
                }
            })
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in IPv6 address".to_string())?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => 443,
            None => return Err(format!("unexpected {after:?} after IPv6 address")),
        };
        return Ok((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 literal.
        Some((host, _)) if host.contains(':') => Ok((s.to_string(), 443)),
        Some((host, port)) if !host.is_empty() => Ok((host.to_string(), parse_port(port)?)),
        Some(_) => Err("empty host".into()),
        None => Ok((s.to_string(), 443)),
    }
}

/// Why the control plane could not be reached.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The target string is not one skiff understands.
    InvalidTarget {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
    /// The host name did not resolve (or resolved to nothing).
    Resolve {
        /// `host:port`.
        host: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// Every address refused or failed.
    Connect {
        /// What was dialed (address or socket path).
        addr: String,
        /// The last error.
        error: io::Error,
    },
    /// A TLS file could not be read or parsed, or the TLS configuration is incomplete.
    TlsConfig(String),
    /// The TLS handshake failed.
    TlsHandshake {
        /// What was dialed.
        addr: String,
        /// The error.
        error: io::Error,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidTarget { target, reason } => {
                write!(f, "invalid control plane target {target:?}: {reason}")
            }
            ConnectError::Resolve { host, error } => write!(f, "resolving {host}: {error}"),
            ConnectError::Connect { addr, error } => write!(f, "connecting to {addr}: {error}"),
            ConnectError::TlsConfig(e) => write!(f, "TLS configuration: {e}"),
            ConnectError::TlsHandshake { addr, error } => {
                write!(f, "TLS handshake with {addr}: {error}")
            }
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Resolve { error, .. }
            | ConnectError::Connect { error, .. }
            | ConnectError::TlsHandshake { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A dialer for one target: parsed once, TLS configuration loaded once.
#[derive(Clone)]
pub struct Connector {
    endpoint: Endpoint,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Connector {
    /// Parses the target and loads its TLS files.
    pub fn new(target: &XdsServerTarget) -> Result<Connector, ConnectError> {
        let endpoint = Endpoint::parse(&target.uri)?;
        let tls = match &target.tls {
            None => None,
            Some(files) => {
                let config = client_tls_config(files)?;
                let name = ServerName::try_from(endpoint.tls_name().to_string()).map_err(|e| {
                    ConnectError::TlsConfig(format!(
                        "{:?} is not a valid TLS server name: {e}",
                        endpoint.tls_name()
                    ))
                })?;
                Some((Arc::new(config), name))
            }
        };
        Ok(Connector { endpoint, tls })
    }

    /// The parsed endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `https` under TLS, `http` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Opens one connection on `rt` (TCP or unix, then TLS if configured).
    pub async fn connect(&self, rt: &dyn Runtime) -> Result<BoxIo, ConnectError> {
        let (io, addr): (BoxIo, String) = match &self.endpoint {
            Endpoint::Unix(path) => {
                let s = rt
                    .connect_unix(path)
                    .await
                    .map_err(|error| ConnectError::Connect {
                        addr: path.display().to_string(),
                        error,
                    })?;
                (s, path.display().to_string())
            }
            Endpoint::Tcp { host, port } => {
                let (s, addr) = connect_tcp(rt, host, *port).await?;
                (s, addr.to_string())
            }
        };
        match &self.tls {
            None => Ok(io),
            Some((config, name)) => rt
                .tls_connect(Arc::clone(config), name.clone(), io)
                .await
                .map_err(|error| ConnectError::TlsHandshake { addr, error }),
        }
    }
}

/// Dials `target` once on `rt`: parse, resolve, connect, TLS.
pub async fn connect(rt: &dyn Runtime, target: &XdsServerTarget) -> Result<BoxIo, ConnectError> {
    Connector::new(target)?.connect(rt).await
}

async fn connect_tcp(
    rt: &dyn Runtime,
    host: &str,
    port: u16,
) -> Result<(BoxIo, SocketAddr), ConnectError> {
    let addrs: Vec<SocketAddr> =
        rt.resolve(host, port)
            .await
            .map_err(|error| ConnectError::Resolve {
                host: format!("{host}:{port}"),
                error,
            })?;
    let mut last = None;
    for addr in addrs {
        // Small xDS requests (ACKs) must not wait for Nagle: the runtime sets TCP_NODELAY.
        match rt.connect_tcp(addr).await {
            Ok(s) => {
                return Ok((s, addr));
            }
            Err(e) => {
                tracing::debug!(%addr, "connect: {e}");
                last = Some((addr, e));
            }
        }
    }
    match last {
        Some((addr, error)) => Err(ConnectError::Connect {
            addr: addr.to_string(),
            error,
        }),
        None => Err(ConnectError::Resolve {
            host: format!("{host}:{port}"),
            error: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        }),
    }
}

pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path)
        .map_err(|e| ConnectError::TlsConfig(format!("reading {what} {}: {e}", path.display())))
}

/// Every certificate of a PEM file.
pub fn load_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let pem = read_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConnectError::TlsConfig(format!("parsing {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConnectError::TlsConfig(format!(
            "{what} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConnectError> {
    let pem = read_file("private key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        ConnectError::TlsConfig(format!("parsing private key {}: {e}", path.display()))
    })
}

/// A root store from a PEM CA bundle.
pub fn load_roots(path: &Path) -> Result<RootCertStore, ConnectError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs("CA certificate", path)? {
        roots.add(cert).map_err(|e| {
            ConnectError::TlsConfig(format!("CA certificate {}: {e}", path.display()))
        })?;
    }
    Ok(roots)
}

/// The rustls client configuration for `tls` channel credentials (ALPN `h2`).
pub fn client_tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig, ConnectError> {
    let Some(ca) = &files.ca else {
        return Err(ConnectError::TlsConfig(
            "tls channel credentials without ca_certificate_file: system roots are not \
             supported yet"
                .into(),
        ));
    };
    let roots = load_roots(ca)?;
    let builder = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::TlsConfig(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs("certificate", cert)?, load_key(key)?)
            .map_err(|e| {
                ConnectError::TlsConfig(format!(
                    "certificate {} with key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?,
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ConnectError::TlsConfig(
                "certificate_file and private_key_file must be given together".into(),
            ));
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            Endpoint::parse("istiod.istio-system.svc:15010").unwrap(),
            tcp("istiod.istio-system.svc", 15010)
        );
        assert_eq!(
            Endpoint::parse("dns:///localhost:15010").unwrap(),
            tcp("localhost", 15010)
        );
        assert_eq!(
            Endpoint::parse("dns://8.8.8.8/xds.example.com:443").unwrap(),
            tcp("xds.example.com", 443)
        );
        assert_eq!(
            Endpoint::parse("dns:localhost:1").unwrap(),
            tcp("localhost", 1)
        );
        assert_eq!(
            Endpoint::parse("xds.example.com").unwrap(),
            tcp("xds.example.com", 443)
        );
        assert_eq!(Endpoint::parse("[::1]:15010").unwrap(), tcp("::1", 15010));
        assert_eq!(Endpoint::parse("::1").unwrap(), tcp("::1", 443));
        assert_eq!(
            Endpoint::parse("unix:///etc/istio/proxy/XDS").unwrap(),
            Endpoint::Unix("/etc/istio/proxy/XDS".into())
        );
        assert_eq!(
            Endpoint::parse("unix:relative/sock").unwrap(),
            Endpoint::Unix("relative/sock".into())
        );
        assert_eq!(
            Endpoint::parse("unix:/abs/sock").unwrap(),
            Endpoint::Unix("/abs/sock".into())
        );
        for bad in [
            "",
            "unix:",
            "host:notaport",
            "host:0",
            ":15010",
            "[::1",
            "http://host:1",
            "unix-abstract:x",
            "dns://only-authority",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn authority_and_tls_name() {
        assert_eq!(tcp("::1", 1).authority(), "[::1]:1");
        assert_eq!(tcp("a.b", 1).authority(), "a.b:1");
        assert_eq!(Endpoint::Unix("/x".into()).authority(), "localhost");
        assert_eq!(Endpoint::Unix("/x".into()).tls_name(), "localhost");
    }

    #[test]
    fn tls_needs_a_ca_and_pairs_cert_with_key() {
        let err = client_tls_config(&TlsFiles::default()).unwrap_err();
        assert!(err.to_string().contains("ca_certificate_file"), "{err}");
        let err = client_tls_config(&TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
