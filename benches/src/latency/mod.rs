//! End-to-end latency and cost: the same tonic echo server reached directly (D), through skiff
//! (P) and through a two-sidecar chain of real proxies (S2), on loopback, interleaved rounds,
//! CPU pinned. Method: `reference/performance.md` §5; how to run: `benches/LATENCY.md`.
//!
//! One binary plays every role: without `--role` it is the orchestrator; it re-executes itself
//! as `--role server` (the echo server), `--role control-plane` (skiff's embedded control
//! plane, for P) and `--role client` (one measurement per process, so CPU time and peak RSS are
//! per variant).

mod client;
mod echo;
mod output;
mod procs;
mod run;
mod sidecar;
mod skiff;
mod stats;
mod svg;
mod variant;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use variant::Variant;

const USAGE: &str = "\
cargo bench -p skiff-benches --bench latency -- [OPTIONS]

  --quick              short run (< 1 minute): 3 rounds, 500 warm-up + 2,000 calls, 1 s at 1,000/s
  --rounds N           interleaved rounds (default 5)
  --variants LIST      comma list of D (direct), P (skiff), S2 (nghttpx+HAProxy); default D,P,S2
  --payloads LIST      payload sizes in bytes (default 100,1024)
  --warmup N           warm-up calls per measurement (default 2000)
  --calls N            timed calls per service-time measurement (default 20000)
  --rates LIST         open-loop rates in calls/s, or `none` (default 1000,2000)
  --open-secs S        open-loop measured seconds per run (default 5; after a 1 s ramp)
  --pin MODE           split (default): client on CPU 0, server/proxies/control plane on CPU 1;
                       same: everything on CPU 0 (no cross-CPU wake-ups); off: no pinning
  --no-pin             same as --pin off
  --no-rerun           do not replace rounds whose direct p50 drifted > 25%
  --max-minutes M      stop scheduling measurements after M minutes (default 20; quick 0.85)
  --out DIR            output directory (default $CARGO_TARGET_DIR/skiff-bench or target/skiff-bench)
";

/// CPU placement of the client and the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// Client on CPU 0; echo server, proxies and control plane on CPU 1 (performance.md §5.3).
    Split,
    /// Everything on CPU 0: no cross-CPU wake-ups (they are very expensive in some VMs).
    Same,
    /// No pinning.
    Off,
}

/// Orchestrator options.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    pub quick: bool,
    pub rounds: usize,
    pub variants: Vec<Variant>,
    pub payloads: Vec<usize>,
    pub warmup: u64,
    pub calls: u64,
    pub rates: Vec<u64>,
    pub open_payload: usize,
    pub open_warmup: u64,
    pub ramp: Duration,
    pub open_duration: Duration,
    pub pin: Pin,
    pub rerun: bool,
    pub max_minutes: f64,
    pub out_dir: PathBuf,
}

impl BenchOpts {
    fn defaults(quick: bool) -> BenchOpts {
        BenchOpts {
            quick,
            rounds: if quick { 3 } else { 5 },
            variants: Variant::ALL.to_vec(),
            payloads: vec![100, 1024],
            warmup: if quick { 500 } else { 2_000 },
            calls: if quick { 2_000 } else { 20_000 },
            rates: if quick {
                vec![1_000]
            } else {
                vec![1_000, 2_000]
            },
            open_payload: 100,
            open_warmup: if quick { 300 } else { 2_000 },
            ramp: Duration::from_millis(if quick { 250 } else { 1_000 }),
            open_duration: Duration::from_millis(if quick { 1_000 } else { 5_000 }),
            pin: Pin::Split,
            rerun: !quick,
            max_minutes: if quick { 0.85 } else { 20.0 },
            out_dir: default_out_dir(),
        }
    }
}

/// `$CARGO_TARGET_DIR/skiff-bench`, else the `target/` this binary was built into.
fn default_out_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("skiff-bench");
    }
    // <target>/<profile>/deps/latency-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("skiff-bench")
}

fn parse_list<T>(s: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| f(p.trim()).ok_or_else(|| format!("bad {what}: {p:?}")))
        .collect()
}

fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, String> {
    it.next().ok_or_else(|| format!("{flag} needs a value"))
}

fn num<T: std::str::FromStr>(s: &str, flag: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{flag}: not a number: {s:?}"))
}

/// Entry point of the bench binary.
pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match dispatch(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("latency: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn dispatch(args: &[String]) -> Result<(), String> {
    if let Some(i) = args.iter().position(|a| a == "--role") {
        let role = args.get(i + 1).ok_or("--role needs a value")?;
        return run_role(role, args);
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = BenchOpts::defaults(quick);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" | "--bench" => {}
            "--rounds" => o.rounds = num::<usize>(value(&mut it, a)?, a)?.max(1),
            "--variants" => {
                o.variants = parse_list(value(&mut it, a)?, "variant", Variant::parse)?;
                o.variants.sort();
                o.variants.dedup();
            }
            "--payloads" => {
                o.payloads = parse_list(value(&mut it, a)?, "payload", |p| p.parse().ok())?
            }
            "--warmup" => {
                o.warmup = num(value(&mut it, a)?, a)?;
                o.open_warmup = o.warmup;
            }
            "--calls" => o.calls = num::<u64>(value(&mut it, a)?, a)?.max(1),
            "--rates" => {
                let v = value(&mut it, a)?;
                o.rates = if v == "none" {
                    vec![]
                } else {
                    parse_list(v, "rate", |p| p.parse().ok().filter(|r: &u64| *r > 0))?
                };
            }
            "--open-secs" => {
                o.open_duration =
                    Duration::from_secs_f64(num::<f64>(value(&mut it, a)?, a)?.max(0.1))
            }
            "--no-pin" => o.pin = Pin::Off,
            "--pin" => {
                o.pin = match value(&mut it, a)?.as_str() {
                    "split" => Pin::Split,
                    "same" => Pin::Same,
                    "off" => Pin::Off,
                    other => return Err(format!("--pin: split, same or off, not {other:?}")),
                }
            }
            "--no-rerun" => o.rerun = false,
            "--max-minutes" => o.max_minutes = num(value(&mut it, a)?, a)?,
            "--out" => o.out_dir = PathBuf::from(value(&mut it, a)?),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if o.variants.is_empty() {
        return Err("no variants".into());
    }
    run::orchestrate(o)
}

/// `--key value` lookup for the child roles.
fn arg<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn run_role(role: &str, args: &[String]) -> Result<(), String> {
    if let Some(cpu) = arg(args, "--cpu") {
        procs::pin_self(num(cpu, "--cpu")?)?;
    }
    if role == "supervise" {
        return procs::supervise_role(args);
    }
    procs::exit_when_parent_dies();
    match role {
        "server" => server_role(),
        "control-plane" => {
            let echo: SocketAddr = num(arg(args, "--echo").ok_or("--echo")?, "--echo")?;
            skiff::control_plane_role(echo)
        }
        "client" => {
            let out = PathBuf::from(arg(args, "--out").ok_or("--out")?);
            let opts = client::ClientOpts {
                variant: Variant::parse(arg(args, "--variant").ok_or("--variant")?)
                    .ok_or("bad --variant")?,
                target: arg(args, "--target")
                    .map(|t| num(t, "--target"))
                    .transpose()?,
                xds: arg(args, "--xds").map(str::to_owned),
                payload: num(arg(args, "--payload").unwrap_or("100"), "--payload")?,
                open: arg(args, "--mode") == Some("open"),
                warmup: num(arg(args, "--warmup").unwrap_or("0"), "--warmup")?,
                calls: num(arg(args, "--calls").unwrap_or("1"), "--calls")?,
                rate: num(arg(args, "--rate").unwrap_or("1000"), "--rate")?,
                ramp: Duration::from_millis(num(
                    arg(args, "--ramp-ms").unwrap_or("0"),
                    "--ramp-ms",
                )?),
                duration: Duration::from_millis(num(
                    arg(args, "--open-ms").unwrap_or("1000"),
                    "--open-ms",
                )?),
            };
            let result = match client::run(&opts) {
                Ok(v) => v,
                Err(e) => serde_json::json!({ "error": e }),
            };
            std::fs::write(&out, result.to_string())
                .map_err(|e| format!("write {}: {e}", out.display()))
        }
        other => Err(format!("unknown role {other}")),
    }
}

/// Role `server`: the tonic echo server on a 1-worker runtime; prints its address.
fn server_role() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        println!("{}", listener.local_addr().map_err(|e| e.to_string())?);
        echo::serve(listener).await.map_err(|e| e.to_string())
    })
}
