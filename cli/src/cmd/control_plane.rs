//! `skiff control-plane`: serve the embedded control plane.

use std::path::PathBuf;

use skiff_tokio::{ConfigSource, ControlPlaneOptions, ControlPlaneServer, ServerTls};

use super::CliError;

/// Arguments of `skiff control-plane`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Mesh configuration: ServiceEntry, WorkloadEntry, VirtualService, DestinationRule,
    /// PeerAuthentication, AuthorizationPolicy documents.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,

    /// Address to listen on (`host:port`, port 0 picks one), or `unix:PATH` for a unix socket.
    #[arg(
        long,
        short = 'l',
        value_name = "ADDR",
        default_value = "127.0.0.1:15010"
    )]
    pub listen: String,

    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates chaining to this PEM CA bundle (mTLS; needs --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), CliError> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls {
            cert,
            key,
            client_ca: args.tls_client_ca,
        }),
        _ => None,
    };
    let options = ControlPlaneOptions {
        tls,
        ..ControlPlaneOptions::default()
    };
    let source = ConfigSource::file(&args.config);
    let server = match args.listen.strip_prefix("unix:") {
        Some(path) => {
            let path = path.strip_prefix("//").unwrap_or(path);
            ControlPlaneServer::bind_unix(path, source, options).await?
        }
        None => ControlPlaneServer::bind_with(args.listen.as_str(), source, options).await?,
    };
    for w in server.warnings() {
        println!("{w}");
    }
    println!(
        "skiff control-plane: serving {} on {}",
        args.config.display(),
        server.local_addr()
    );
    let mut events = server.config_events();
    let running = server.spawn();
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => println!("{e}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    println!("({n} configuration events not shown)");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            signal = &mut stop => {
                signal?;
                println!("skiff control-plane: shutting down");
                break;
            }
        }
    }
    running.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what container runtimes send).
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
