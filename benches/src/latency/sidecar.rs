//! The S2 baseline: the two sidecars Istio puts on a call, built from Debian's proxies with the
//! configurations of `reference/performance.md` §4.1 (h2c on both sides, one worker each):
//!
//! ```text
//! client --h2c--> nghttpx (client's sidecar) --h2c--> HAProxy (server's sidecar) --h2c--> server
//! ```

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::procs::{self, Guard};

/// Install hint printed when a proxy is missing.
pub const INSTALL_HINT: &str = "apt-get install -y nghttp2-proxy haproxy";

/// The running chain: `entry` is where clients connect (nghttpx).
#[derive(Debug)]
pub struct Chain {
    pub entry: SocketAddr,
    pub nghttpx: Guard,
    pub haproxy: Guard,
    pub versions: String,
}

/// HAProxy's configuration (performance.md §4.1, ports substituted).
pub fn haproxy_config(listen_port: u16, backend: SocketAddr) -> String {
    format!(
        "global\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client  60s\n    timeout server  60s\n\
         frontend fe\n    bind 127.0.0.1:{listen_port} proto h2\n    default_backend be\n\
         backend be\n    server s1 {backend} proto h2\n"
    )
}

/// nghttpx's arguments (performance.md §4.1, ports substituted).
pub fn nghttpx_args(listen_port: u16, backend: SocketAddr) -> Vec<String> {
    vec![
        "--conf=/dev/null".into(),
        format!("--frontend=127.0.0.1,{listen_port};no-tls"),
        format!("--backend={},{};;proto=h2", backend.ip(), backend.port()),
        "--workers=1".into(),
    ]
}

/// Starts HAProxy then nghttpx in front of `server`, pinned to `cpu`. `Err` explains what is
/// missing or broken (the caller reports it and measures the other variants).
pub fn start(server: SocketAddr, dir: &Path, cpu: Option<usize>) -> Result<Chain, String> {
    let nghttpx_bin = procs::find_program("nghttpx");
    let haproxy_bin = procs::find_program("haproxy");
    let (Some(nghttpx_bin), Some(haproxy_bin)) = (nghttpx_bin, haproxy_bin) else {
        return Err(format!(
            "nghttpx and/or haproxy not found; install the sidecar proxies with `{INSTALL_HINT}` (Debian packages)"
        ));
    };
    let version = |bin: &Path, arg: &str| {
        std::process::Command::new(bin)
            .arg(arg)
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let versions = format!(
        "{}; {}",
        version(&nghttpx_bin, "--version"),
        version(&haproxy_bin, "-v")
            .split(" - ")
            .next()
            .unwrap_or_default()
    );

    let hport = procs::free_port().map_err(|e| e.to_string())?;
    let haddr: SocketAddr = ([127, 0, 0, 1], hport).into();
    let cfg = dir.join("haproxy.cfg");
    fs::write(&cfg, haproxy_config(hport, server)).map_err(|e| e.to_string())?;
    let hlog = dir.join("haproxy.log");
    let hargs = ["-db".to_string(), "-f".into(), cfg.display().to_string()];
    let mut haproxy = Guard::supervised("haproxy", &haproxy_bin, &hargs, &hlog, cpu)?;
    procs::wait_listening(&mut haproxy, haddr, Duration::from_secs(5))
        .map_err(|e| format!("{e}\n{}", procs::tail(&hlog, 10)))?;

    let nport = procs::free_port().map_err(|e| e.to_string())?;
    let naddr: SocketAddr = ([127, 0, 0, 1], nport).into();
    let nlog = dir.join("nghttpx.log");
    let mut nghttpx = Guard::supervised(
        "nghttpx",
        &nghttpx_bin,
        &nghttpx_args(nport, haddr),
        &nlog,
        cpu,
    )?;
    procs::wait_listening(&mut nghttpx, naddr, Duration::from_secs(5))
        .map_err(|e| format!("{e}\n{}", procs::tail(&nlog, 10)))?;
    Ok(Chain {
        entry: naddr,
        nghttpx,
        haproxy,
        versions,
    })
}
