//! The orchestrator: starts the echo server, the sidecar chain and skiff's control plane
//! (pinned to the "server" CPU), then runs interleaved rounds of client processes (pinned to
//! the "client" CPU), samples every process's CPU time around each measurement, and hands the
//! results to `output`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;

use super::procs::{self, Guard, MachineInfo, TempDir};
use super::stats::{self, Pcts};
use super::variant::Variant;
use super::{BenchOpts, Pin, output, sidecar};

/// What a measurement measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// Service time, 1 call in flight, payload bytes.
    Service(usize),
    /// Open loop at a rate (calls/s), payload bytes.
    Open(u64, usize),
}

impl Key {
    pub fn title(self) -> String {
        match self {
            Key::Service(p) => format!("service time (1 call in flight), payload {p} B"),
            Key::Open(r, p) => format!(
                "open loop {r} calls/s (constant spacing, from intended send time), payload {p} B"
            ),
        }
    }

    /// Short form for plot panels.
    pub fn short_title(self) -> String {
        match self {
            Key::Service(p) => format!("service time (1 in flight), {p} B"),
            Key::Open(r, p) => format!("open loop {r}/s, {p} B (from intended send time)"),
        }
    }

    pub fn slug(self) -> String {
        match self {
            Key::Service(p) => format!("service_{p}B"),
            Key::Open(r, p) => format!("open_{r}rps_{p}B"),
        }
    }
}

/// One client process's result plus what the other processes spent meanwhile.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub round: usize,
    pub key: Key,
    pub variant: Variant,
    pub error: Option<String>,
    pub hist: Histogram<u64>,
    pub lag: Option<Histogram<u64>>,
    pub pcts: Pcts,
    pub errors: u64,
    pub client_cpu_us_per_req: f64,
    pub server_cpu_us_per_req: f64,
    pub proxies_cpu_us_per_req: f64,
    pub client_hwm_kib: Option<u64>,
    pub achieved_rps: Option<f64>,
    /// Hypervisor steal (% of all CPU time) while this client ran.
    pub steal_pct: f64,
    pub raw: Value,
}

impl Measurement {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Everything the report needs.
#[derive(Debug)]
pub struct Results {
    pub opts: BenchOpts,
    pub machine_before: MachineInfo,
    pub loadavg_after: String,
    pub pinned: Option<(usize, usize)>,
    pub unavailable: BTreeMap<Variant, String>,
    pub measurements: Vec<Measurement>,
    pub discarded_rounds: Vec<usize>,
    pub rounds_run: usize,
    pub truncated: bool,
    pub elapsed: Duration,
    /// Hypervisor steal (% of all CPU time) over the whole run.
    pub steal_pct: f64,
    pub processes: Vec<(String, Option<u64>)>,
    pub proxy_versions: Option<String>,
}

struct Infra {
    _dir: TempDir,
    dir: std::path::PathBuf,
    server: Guard,
    echo: SocketAddr,
    chain: Option<sidecar::Chain>,
    control_plane: Option<(Guard, String)>,
    client_cpu: Option<usize>,
}

impl Infra {
    fn proxies_cpu_ns(&self) -> u64 {
        self.chain.as_ref().map_or(0, |c| {
            procs::tree_cpu_ns(&c.nghttpx.tree()) + procs::tree_cpu_ns(&c.haproxy.tree())
        })
    }

    fn client_args(&self, variant: Variant) -> Vec<String> {
        let mut a = vec![
            "--role".to_string(),
            "client".into(),
            "--variant".into(),
            variant.label().into(),
        ];
        if let Some(cpu) = self.client_cpu {
            a.extend(["--cpu".into(), cpu.to_string()]);
        }
        match variant {
            Variant::Direct => a.extend(["--target".into(), self.echo.to_string()]),
            Variant::Sidecar2 => {
                if let Some(c) = &self.chain {
                    a.extend(["--target".into(), c.entry.to_string()]);
                }
            }
            Variant::Skiff | Variant::SkiffSmol | Variant::SkiffGlommio => {
                if let Some((_, addr)) = &self.control_plane {
                    a.extend(["--xds".into(), addr.clone()]);
                }
            }
        }
        a
    }

    /// Runs one client process (bounded by `timeout`) and accounts the other processes' CPU.
    fn measure(
        &mut self,
        variant: Variant,
        key: Key,
        round: usize,
        extra: &[String],
        timeout: Duration,
    ) -> Measurement {
        let out = self.dir.join(format!(
            "result-{}-{}-{round}.json",
            variant.label(),
            key.slug()
        ));
        let _ = std::fs::remove_file(&out);
        let mut args = self.client_args(variant);
        args.extend(extra.iter().cloned());
        args.extend(["--out".into(), out.display().to_string()]);

        let server_tree = self.server.tree();
        let server0 = procs::tree_cpu_ns(&server_tree);
        let proxies0 = self.proxies_cpu_ns();
        let ticks0 = procs::cpu_ticks();
        let result = procs::spawn_self(&args)
            .map_err(|e| format!("spawn client: {e}"))
            .and_then(|child| {
                let mut guard = Guard::new(format!("client {variant}"), child);
                let deadline = Instant::now() + timeout;
                loop {
                    if let Some(status) = guard.exited() {
                        if !status.success() {
                            return Err(format!("client exited with {status}"));
                        }
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err(format!("client timed out after {timeout:?} (killed)"));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let text = std::fs::read_to_string(&out)
                    .map_err(|e| format!("client wrote no result: {e}"))?;
                serde_json::from_str::<Value>(&text).map_err(|e| format!("bad client result: {e}"))
            });
        let server_ns = procs::tree_cpu_ns(&server_tree).saturating_sub(server0);
        let proxies_ns = self.proxies_cpu_ns().saturating_sub(proxies0);
        let steal_pct = procs::steal_pct(ticks0, procs::cpu_ticks());

        let mut m = Measurement {
            round,
            key,
            variant,
            error: None,
            hist: stats::new_hist(),
            lag: None,
            pcts: Pcts::default(),
            errors: 0,
            client_cpu_us_per_req: f64::NAN,
            server_cpu_us_per_req: f64::NAN,
            proxies_cpu_us_per_req: f64::NAN,
            client_hwm_kib: None,
            achieved_rps: None,
            steal_pct,
            raw: Value::Null,
        };
        let raw = match result {
            Ok(v) => v,
            Err(e) => {
                m.error = Some(e);
                return m;
            }
        };
        if let Some(e) = raw.get("error").and_then(Value::as_str) {
            m.error = Some(e.to_string());
            return m;
        }
        m.hist = stats::decode(&raw["hist"]);
        m.pcts = Pcts::of(&m.hist);
        m.lag = raw.get("lag").map(stats::decode);
        m.errors = raw["errors"].as_u64().unwrap_or(0);
        let cpu_requests = raw["cpu_requests"].as_u64().unwrap_or(0).max(1) as f64;
        let total_requests = raw["requests_total"].as_u64().unwrap_or(0).max(1) as f64;
        m.client_cpu_us_per_req =
            raw["cpu_ns"].as_u64().unwrap_or(0) as f64 / 1000.0 / cpu_requests;
        m.server_cpu_us_per_req = server_ns as f64 / 1000.0 / total_requests;
        m.proxies_cpu_us_per_req = if variant == Variant::Sidecar2 {
            proxies_ns as f64 / 1000.0 / total_requests
        } else {
            0.0
        };
        m.client_hwm_kib = raw["vm_hwm_kib"].as_u64();
        m.achieved_rps = raw["achieved_rps"].as_f64();
        if m.errors > 0 {
            m.error = Some(format!(
                "{} errors (first: {})",
                m.errors,
                raw["first_error"].as_str().unwrap_or("?")
            ));
        } else if let (Key::Open(rate, _), Some(a)) = (key, m.achieved_rps)
            && a < 0.99 * rate as f64
        {
            m.error = Some(format!(
                "achieved {a:.0} of {rate} calls/s (< 99%): invalid"
            ));
        }
        // The histograms are decoded; keep only the scalars.
        let mut raw = raw;
        if let Some(obj) = raw.as_object_mut() {
            obj.remove("hist");
            obj.remove("lag");
        }
        m.raw = raw;
        m
    }
}

fn service_args(o: &BenchOpts, payload: usize) -> Vec<String> {
    vec![
        "--mode".into(),
        "service".into(),
        "--payload".into(),
        payload.to_string(),
        "--warmup".into(),
        o.warmup.to_string(),
        "--calls".into(),
        o.calls.to_string(),
    ]
}

fn open_args(o: &BenchOpts, rate: u64) -> Vec<String> {
    vec![
        "--mode".into(),
        "open".into(),
        "--payload".into(),
        o.open_payload.to_string(),
        "--warmup".into(),
        o.open_warmup.to_string(),
        "--rate".into(),
        rate.to_string(),
        "--ramp-ms".into(),
        o.ramp.as_millis().to_string(),
        "--open-ms".into(),
        o.open_duration.as_millis().to_string(),
    ]
}

fn start_infra(
    o: &BenchOpts,
    unavailable: &mut BTreeMap<Variant, String>,
) -> Result<(Infra, Option<(usize, usize)>), String> {
    let dir = TempDir::new("latency").map_err(|e| format!("temp dir: {e}"))?;
    let pinned = match o.pin {
        Pin::Split if procs::online_cpus() >= 2 => Some((0usize, 1usize)),
        Pin::Split => Some((0, 0)),
        Pin::Same => Some((0, 0)),
        Pin::Off => None,
    };
    let (client_cpu, infra_cpu) = (pinned.map(|p| p.0), pinned.map(|p| p.1));
    if let Some(cpu) = infra_cpu {
        // The orchestrator (idle while a client runs) stays off the client's CPU; children
        // inherit this until they pin themselves.
        if let Err(e) = procs::pin_self(cpu) {
            eprintln!("warning: cannot pin: {e}");
        }
    }
    let cpu_arg = |cpu: Option<usize>| {
        cpu.map(|c| vec!["--cpu".to_string(), c.to_string()])
            .unwrap_or_default()
    };

    let mut args = vec!["--role".to_string(), "server".into()];
    args.extend(cpu_arg(infra_cpu));
    let mut server = Guard::new(
        "echo server",
        procs::spawn_self(&args).map_err(|e| format!("spawn echo server: {e}"))?,
    );
    let echo: SocketAddr = procs::read_ready_line(&mut server, Duration::from_secs(10))?
        .parse()
        .map_err(|e| format!("echo server address: {e}"))?;

    let dir_path = dir.path().to_path_buf();
    let mut chain = None;
    if o.variants.contains(&Variant::Sidecar2) {
        match sidecar::start(echo, &dir_path, infra_cpu) {
            Ok(c) => chain = Some(c),
            Err(e) => {
                eprintln!("S2 skipped: {e}");
                unavailable.insert(Variant::Sidecar2, e);
            }
        }
    }
    let mut control_plane = None;
    if o.variants.iter().any(|v| v.is_skiff()) {
        {
            let mut args = vec![
                "--role".to_string(),
                "control-plane".into(),
                "--echo".into(),
                echo.to_string(),
            ];
            args.extend(cpu_arg(infra_cpu));
            match procs::spawn_self(&args)
                .map_err(|e| format!("spawn control plane: {e}"))
                .and_then(|c| {
                    let mut g = Guard::new("skiff control plane", c);
                    let addr = procs::read_ready_line(&mut g, Duration::from_secs(10))?;
                    Ok((g, addr))
                }) {
                Ok(cp) => control_plane = Some(cp),
                Err(e) => {
                    eprintln!("P skipped: {e}");
                    for v in o.variants.iter().filter(|v| v.is_skiff()) {
                        unavailable.insert(*v, e.clone());
                    }
                }
            }
        }
    }
    Ok((
        Infra {
            _dir: dir,
            dir: dir_path,
            server,
            echo,
            chain,
            control_plane,
            client_cpu,
        },
        pinned,
    ))
}

pub fn orchestrate(o: BenchOpts) -> Result<(), String> {
    let started = Instant::now();
    let ticks0 = procs::cpu_ticks();
    let machine_before = MachineInfo::read();
    let deadline = started + Duration::from_secs_f64(o.max_minutes * 60.0);
    eprintln!(
        "latency: {} CPU(s) ({}), load {}; variants {}; {} rounds{}",
        machine_before.nproc,
        machine_before.cpu_model,
        machine_before.loadavg,
        o.variants
            .iter()
            .map(|v| v.label())
            .collect::<Vec<_>>()
            .join(","),
        o.rounds,
        if o.quick { " (quick)" } else { "" }
    );
    let mut unavailable = BTreeMap::new();
    let (mut infra, pinned) = start_infra(&o, &mut unavailable)?;

    // Pre-flight: a few calls per variant; a variant that cannot complete them is reported and
    // left out instead of failing the run.
    for &v in &o.variants {
        if unavailable.contains_key(&v) {
            continue;
        }
        let pre = infra.measure(
            v,
            Key::Service(100),
            0,
            &["--warmup".into(), "0".into(), "--calls".into(), "20".into()],
            Duration::from_secs(30),
        );
        if let Some(e) = pre.error {
            eprintln!("{v} skipped: pre-flight failed: {e}");
            unavailable.insert(v, format!("pre-flight failed: {e}"));
        }
    }
    let active: Vec<Variant> = o
        .variants
        .iter()
        .copied()
        .filter(|v| !unavailable.contains_key(v))
        .collect();
    let mut keys: Vec<Key> = o.payloads.iter().map(|&p| Key::Service(p)).collect();
    keys.extend(o.rates.iter().map(|&r| Key::Open(r, o.open_payload)));

    let service_timeout = Duration::from_secs(30) + Duration::from_millis((o.warmup + o.calls) / 2); // 0.5 ms/call worst case
    let open_timeout = Duration::from_secs(30) + o.ramp + o.open_duration;
    let mut measurements = Vec::new();
    let mut truncated = false;
    let mut discarded = Vec::new();
    let max_extra = if o.rerun { (o.rounds / 2).max(1) } else { 0 };
    let mut planned = o.rounds;
    let mut round = 0;
    while round < planned && !active.is_empty() {
        round += 1;
        for &key in &keys {
            // Rotate the order every round so drift and ordering effects cancel.
            let mut order = active.clone();
            let n = order.len();
            order.rotate_left((round - 1) % n);
            let mut line = format!("round {round}/{planned} {:<24}", key.slug());
            for v in order {
                if matches!(key, Key::Open(..)) && !v.open_loop() {
                    continue;
                }
                if Instant::now() > deadline {
                    truncated = true;
                    break;
                }
                let (args, timeout) = match key {
                    Key::Service(p) => (service_args(&o, p), service_timeout),
                    Key::Open(r, _) => (open_args(&o, r), open_timeout),
                };
                let m = infra.measure(v, key, round, &args, timeout);
                match &m.error {
                    None => line.push_str(&format!(
                        "  {v} p50 {:.1} p99 {:.1} µs",
                        m.pcts.p50, m.pcts.p99
                    )),
                    Some(e) => line.push_str(&format!("  {v} ERROR {e}")),
                }
                measurements.push(m);
            }
            eprintln!("{line}");
            if truncated {
                break;
            }
        }
        if truncated {
            eprintln!("time budget of {} min reached: stopping", o.max_minutes);
            break;
        }
        // Drift rule (performance.md §5.2): once the planned rounds are in, a round whose direct
        // p50 is > 25% away from the run's median is discarded and replaced (bounded).
        if round == planned {
            let newly = drifting_rounds(&measurements, &o.payloads, &discarded);
            for r in newly {
                eprintln!("round {r}: direct p50 drifted > 25% from the run median: discarded");
                discarded.push(r);
                if planned < o.rounds + max_extra {
                    planned += 1;
                }
            }
        }
    }

    let mut processes = vec![(
        "echo server".to_string(),
        procs::vm_hwm_kib(infra.server.pid()),
    )];
    if let Some(c) = &infra.chain {
        for g in [&c.nghttpx, &c.haproxy] {
            for (i, pid) in g.tree().into_iter().enumerate() {
                let name = if i == 0 {
                    g.name.clone()
                } else {
                    format!("{} (worker {pid})", g.name)
                };
                processes.push((name, procs::vm_hwm_kib(pid)));
            }
        }
    }
    if let Some((g, _)) = &infra.control_plane {
        processes.push((g.name.clone(), procs::vm_hwm_kib(g.pid())));
    }
    processes.push(("orchestrator".into(), procs::self_vm_hwm_kib()));
    let proxy_versions = infra.chain.as_ref().map(|c| c.versions.clone());
    drop(infra); // stops every process we started

    let results = Results {
        opts: o,
        machine_before,
        loadavg_after: procs::loadavg(),
        pinned,
        unavailable,
        measurements,
        discarded_rounds: discarded,
        rounds_run: round,
        truncated,
        elapsed: started.elapsed(),
        steal_pct: procs::steal_pct(ticks0, procs::cpu_ticks()),
        processes,
        proxy_versions,
    };
    output::report(&results)
}

/// Rounds (not yet discarded) whose direct service-time p50 deviates > 25% from the median.
fn drifting_rounds(ms: &[Measurement], payloads: &[usize], already: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    for &p in payloads {
        let direct: Vec<&Measurement> = ms
            .iter()
            .filter(|m| {
                m.variant == Variant::Direct
                    && m.key == Key::Service(p)
                    && m.ok()
                    && !already.contains(&m.round)
            })
            .collect();
        if direct.len() < 3 {
            continue;
        }
        let med = stats::median(direct.iter().map(|m| m.pcts.p50).collect());
        for m in direct {
            if (m.pcts.p50 / med - 1.0).abs() > 0.25 && !out.contains(&m.round) {
                out.push(m.round);
            }
        }
    }
    out.sort_unstable();
    out
}
