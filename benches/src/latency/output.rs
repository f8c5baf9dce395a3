//! The report: summaries per (regime, variant), the goals of performance.md §6, the stdout
//! table, `latency.json` and `latency.svg`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::run::{Key, Measurement, Results};
use super::stats::{self, Pcts, median, num};
use super::svg;
use super::variant::Variant;

/// One (regime, variant) over the kept rounds.
#[derive(Debug)]
pub struct Summary {
    pub key: Key,
    pub variant: Variant,
    pub rounds: Vec<(usize, Pcts)>,
    pub median: Pcts,
    pub p50_min: f64,
    pub p50_max: f64,
    pub pooled_hist: Histogram<u64>,
    pub pooled: Pcts,
    pub client_cpu: f64,
    pub server_cpu: f64,
    pub proxies_cpu: f64,
    pub hwm_mib: f64,
    /// Median hypervisor steal (%) while these clients ran.
    pub steal: f64,
    pub failed: Vec<String>,
    pub achieved_min: Option<f64>,
    pub lag: Option<Pcts>,
}

fn kept(r: &Results, key: Key, v: Variant) -> impl Iterator<Item = &Measurement> {
    r.measurements.iter().filter(move |m| {
        m.key == key && m.variant == v && m.ok() && !r.discarded_rounds.contains(&m.round)
    })
}

pub fn summarize(r: &Results) -> BTreeMap<(Key, Variant), Summary> {
    let mut keys: Vec<Key> = r.measurements.iter().map(|m| m.key).collect();
    keys.sort();
    keys.dedup();
    let mut out = BTreeMap::new();
    for key in keys {
        for &v in &r.opts.variants {
            let ms: Vec<&Measurement> = kept(r, key, v).collect();
            let failed: Vec<String> = r
                .measurements
                .iter()
                .filter(|m| m.key == key && m.variant == v && !m.ok())
                .map(|m| format!("round {}: {}", m.round, m.error.as_deref().unwrap_or("?")))
                .collect();
            if ms.is_empty() && failed.is_empty() {
                continue;
            }
            let rounds: Vec<(usize, Pcts)> = ms.iter().map(|m| (m.round, m.pcts)).collect();
            let pcts: Vec<Pcts> = rounds.iter().map(|x| x.1).collect();
            let mut pooled_hist = stats::new_hist();
            let mut lag = stats::new_hist();
            for m in &ms {
                let _ = pooled_hist.add(&m.hist);
                if let Some(l) = &m.lag {
                    let _ = lag.add(l);
                }
            }
            let p50s: Vec<f64> = pcts.iter().map(|p| p.p50).collect();
            out.insert(
                (key, v),
                Summary {
                    key,
                    variant: v,
                    median: Pcts::median_of(&pcts),
                    p50_min: p50s.iter().copied().fold(f64::INFINITY, f64::min),
                    p50_max: p50s.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    pooled: Pcts::of(&pooled_hist),
                    pooled_hist,
                    client_cpu: median(ms.iter().map(|m| m.client_cpu_us_per_req).collect()),
                    server_cpu: median(ms.iter().map(|m| m.server_cpu_us_per_req).collect()),
                    proxies_cpu: median(ms.iter().map(|m| m.proxies_cpu_us_per_req).collect()),
                    hwm_mib: median(
                        ms.iter()
                            .filter_map(|m| m.client_hwm_kib)
                            .map(|k| k as f64 / 1024.0)
                            .collect(),
                    ),
                    steal: median(ms.iter().map(|m| m.steal_pct).collect()),
                    achieved_min: ms.iter().filter_map(|m| m.achieved_rps).reduce(f64::min),
                    lag: (!lag.is_empty()).then(|| Pcts::of(&lag)),
                    rounds,
                    failed,
                },
            );
        }
    }
    out
}

/// A goal's outcome.
#[derive(Debug)]
pub struct Goal {
    pub id: &'static str,
    pub what: String,
    pub target: String,
    pub measured: String,
    /// `Some(true/false)` when measurable.
    pub met: Option<bool>,
    pub note: String,
}

impl Goal {
    fn na(
        id: &'static str,
        what: impl Into<String>,
        target: impl Into<String>,
        why: impl Into<String>,
    ) -> Goal {
        Goal {
            id,
            what: what.into(),
            target: target.into(),
            measured: "-".into(),
            met: None,
            note: why.into(),
        }
    }

    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "MET",
            Some(false) => "NOT MET",
            None => "n/a",
        }
    }
}

/// Rounds where both variants have a kept result, and how many pass `ok(a, b)`.
fn per_round(
    s: &BTreeMap<(Key, Variant), Summary>,
    key: Key,
    a: Variant,
    b: Variant,
    ok: impl Fn(&Pcts, &Pcts) -> bool,
) -> (usize, usize) {
    let (Some(sa), Some(sb)) = (s.get(&(key, a)), s.get(&(key, b))) else {
        return (0, 0);
    };
    let mut n = 0;
    let mut pass = 0;
    for (round, pa) in &sa.rounds {
        if let Some((_, pb)) = sb.rounds.iter().find(|(r, _)| r == round) {
            n += 1;
            if ok(pa, pb) {
                pass += 1;
            }
        }
    }
    (pass, n)
}

/// "Passes in >= 4 of 5 rounds" generalised: at least 80% of the paired rounds.
fn enough(pass: usize, n: usize) -> bool {
    n > 0 && pass * 5 >= n * 4
}

pub fn goals(r: &Results, s: &BTreeMap<(Key, Variant), Summary>) -> Vec<Goal> {
    use Variant::{Direct as D, Sidecar2 as S2, Skiff as P};
    let mut g = Vec::new();
    let payload = if r.opts.payloads.contains(&100) {
        100
    } else {
        r.opts.payloads[0]
    };
    let key = Key::Service(payload);
    let get = |v: Variant| s.get(&(key, v)).filter(|x| !x.rounds.is_empty());
    let missing = |v: Variant| -> String {
        r.unavailable
            .get(&v)
            .cloned()
            .unwrap_or_else(|| format!("{v} has no valid rounds"))
    };

    // G1: P vs D.
    match (get(P), get(D)) {
        (Some(p), Some(d)) => {
            let ratio = p.median.p50 / d.median.p50;
            let delta = p.median.p50 - d.median.p50;
            let (pass, n) = per_round(s, key, P, D, |a, b| {
                a.p50 / b.p50 <= 1.05 || a.p50 - b.p50 <= 5.0
            });
            g.push(Goal {
                id: "G1a",
                what: format!("P/D p50, service time {payload} B"),
                target: "<= 1.05x or <= +5 µs".into(),
                measured: format!("{ratio:.3}x ({delta:+.1} µs); {pass}/{n} rounds pass"),
                met: Some((ratio <= 1.05 || delta <= 5.0) && enough(pass, n)),
                note: String::new(),
            });
            let ratio = p.median.p90 / d.median.p90;
            let (pass, n) = per_round(s, key, P, D, |a, b| a.p90 / b.p90 <= 1.10);
            g.push(Goal {
                id: "G1b",
                what: format!("P/D p90, service time {payload} B"),
                target: "<= 1.10x".into(),
                measured: format!("{ratio:.3}x; {pass}/{n} rounds pass"),
                met: Some(ratio <= 1.10 && enough(pass, n)),
                note: String::new(),
            });
            let ratio = p.pooled.p99 / d.pooled.p99;
            g.push(Goal {
                id: "G1c",
                what: format!("P/D pooled p99, service time {payload} B"),
                target: "<= 1.20x".into(),
                measured: format!(
                    "{ratio:.3}x ({:.1} vs {:.1} µs)",
                    p.pooled.p99, d.pooled.p99
                ),
                met: Some(ratio <= 1.20),
                note: "tail: VM jitter dominates".into(),
            });
        }
        (p, _) => {
            let why = if p.is_none() { missing(P) } else { missing(D) };
            g.push(Goal::na(
                "G1",
                "P/D p50 <= 1.05x (or +5 µs), p90 <= 1.10x",
                "",
                why,
            ));
        }
    }
    // G2: P vs S2.
    match (get(P), get(S2)) {
        (Some(p), Some(s2)) => {
            let ratio = p.median.p50 / s2.median.p50;
            let (pass, n) = per_round(s, key, P, S2, |a, b| a.p50 / b.p50 <= 0.30);
            g.push(Goal {
                id: "G2a",
                what: format!("P/S2 p50, service time {payload} B (nghttpx+HAProxy)"),
                target: "<= 0.30x".into(),
                measured: format!("{ratio:.3}x; {pass}/{n} rounds pass"),
                met: Some(ratio <= 0.30 && enough(pass, n)),
                note: String::new(),
            });
            let ratio = p.median.p90 / s2.median.p90;
            g.push(Goal {
                id: "G2b",
                what: format!("P/S2 p90, service time {payload} B"),
                target: "<= 0.30x".into(),
                measured: format!("{ratio:.3}x"),
                met: Some(ratio <= 0.30),
                note: String::new(),
            });
        }
        (p, _) => {
            let why = if p.is_none() { missing(P) } else { missing(S2) };
            g.push(Goal::na("G2", "P/S2 p50 <= 0.30x", "", why));
        }
    }
    // G3: open loop.
    for &rate in &r.opts.rates {
        let k = Key::Open(rate, r.opts.open_payload);
        let get = |v: Variant| s.get(&(k, v)).filter(|x| !x.rounds.is_empty());
        match (get(P), get(D), get(S2)) {
            (Some(p), d, s2) => {
                if let Some(s2) = s2 {
                    let ratio = p.median.p99 / s2.median.p99;
                    g.push(Goal {
                        id: "G3a",
                        what: format!("P/S2 p99, open loop {rate}/s"),
                        target: "<= 0.5x".into(),
                        measured: format!("{ratio:.3}x"),
                        met: Some(ratio <= 0.5),
                        note: String::new(),
                    });
                }
                if let Some(d) = d {
                    let ratio = p.median.p50 / d.median.p50;
                    g.push(Goal {
                        id: "G3b",
                        what: format!("P/D p50, open loop {rate}/s"),
                        target: "<= 1.15x".into(),
                        measured: format!("{ratio:.3}x"),
                        met: Some(ratio <= 1.15),
                        note: String::new(),
                    });
                }
            }
            (None, _, _) => g.push(Goal::na(
                "G3",
                format!("open loop {rate}/s: P p99 <= 0.5x S2, P p50 <= 1.15x D"),
                "",
                missing(P),
            )),
        }
    }
    // G5: client CPU.
    match (get(P), get(D)) {
        (Some(p), Some(d)) => {
            let added = p.client_cpu - d.client_cpu;
            g.push(Goal {
                id: "G5",
                what: format!("client CPU added by skiff, service time {payload} B"),
                target: "<= 5 µs/request".into(),
                measured: format!(
                    "{added:+.2} µs/request ({:.2} vs {:.2})",
                    p.client_cpu, d.client_cpu
                ),
                met: Some(added <= 5.0),
                note: String::new(),
            });
        }
        (p, _) => {
            let why = if p.is_none() { missing(P) } else { missing(D) };
            g.push(Goal::na(
                "G5",
                "client CPU added by skiff <= 5 µs/request",
                "",
                why,
            ));
        }
    }
    // G6: RSS.
    match (get(P), get(D)) {
        (Some(p), Some(d)) => {
            let added = p.hwm_mib - d.hwm_mib;
            g.push(Goal {
                id: "G6",
                what: "client peak RSS (VmHWM), skiff vs direct".into(),
                target: "<= direct + 4 MiB".into(),
                measured: format!("{added:+.2} MiB ({:.1} vs {:.1} MiB)", p.hwm_mib, d.hwm_mib),
                met: Some(added <= 4.0),
                note: String::new(),
            });
        }
        (p, _) => {
            let why = if p.is_none() { missing(P) } else { missing(D) };
            g.push(Goal::na(
                "G6",
                "skiff client RSS <= direct + 4 MiB",
                "",
                why,
            ));
        }
    }
    // G7: the three runtimes' P within ±10 % of each other at p50.
    let runtimes: Vec<(Variant, f64)> = [P, Variant::SkiffSmol, Variant::SkiffGlommio]
        .into_iter()
        .filter_map(|v| get(v).map(|x| (v, x.median.p50)))
        .collect();
    if runtimes.len() >= 2 {
        let lo = runtimes
            .iter()
            .map(|(_, p)| *p)
            .fold(f64::INFINITY, f64::min);
        let hi = runtimes.iter().map(|(_, p)| *p).fold(0.0, f64::max);
        let listed = runtimes
            .iter()
            .map(|(v, p)| format!("{v} {p:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        g.push(Goal {
            id: "G7",
            what: format!("runtimes' p50 spread (max/min), service time {payload} B"),
            target: "<= 1.10x".into(),
            measured: format!("{:.3}x ({listed} µs)", hi / lo),
            met: Some(hi / lo <= 1.10),
            note: if runtimes.len() < 3 {
                "not every runtime was measured".into()
            } else {
                String::new()
            },
        });
    } else {
        g.push(Goal::na(
            "G7",
            "tokio, smol and glommio p50 within ±10%",
            "",
            "fewer than two runtimes measured".to_string(),
        ));
    }
    // Generator precision (performance.md §5.8).
    if let (Some(&rate), Some(d)) = (r.opts.rates.first(), get(D)) {
        let k = Key::Open(rate, r.opts.open_payload);
        if let Some(lag) = s.get(&(k, D)).and_then(|x| x.lag) {
            let share = lag.p50 / d.median.p50;
            g.push(Goal {
                id: "gen",
                what: format!("open-loop dispatch lag p50 vs direct service p50 ({rate}/s)"),
                target: "< 10%".into(),
                measured: format!(
                    "{:.1} µs = {:.1}% (lag p99 {:.1} µs)",
                    lag.p50,
                    share * 100.0,
                    lag.p99
                ),
                met: Some(share < 0.10),
                note: "load generator self-check".into(),
            });
        }
    }
    g
}

fn f1(x: f64) -> String {
    if x.is_finite() {
        if x >= 1000.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    } else {
        "-".into()
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// The stdout table.
pub fn table(r: &Results, s: &BTreeMap<(Key, Variant), Summary>, goals: &[Goal]) -> String {
    let mut t = String::new();
    let m = &r.machine_before;
    let _ = writeln!(
        t,
        "\n== skiff latency: D (direct) vs P (skiff) vs S2 (nghttpx -> HAProxy) =="
    );
    let _ = writeln!(
        t,
        "machine: {} CPU(s), {}, kernel {}; load avg before {} / after {}; hypervisor steal {:.1}% of CPU time during the run; pinning: {}",
        m.nproc,
        m.cpu_model,
        m.kernel,
        m.loadavg,
        r.loadavg_after,
        r.steal_pct,
        match r.pinned {
            Some((c, s)) if c == s => format!("everything on CPU {c} (--pin same)"),
            Some((c, s)) => format!("client CPU {c}, server+proxies+control plane CPU {s}"),
            None => "off".into(),
        }
    );
    let _ = writeln!(
        t,
        "rounds: {} run, kept {}{}{}; {} warm-up + {} calls per service-time run; open loop {:.1} s after {:.1} s ramp; {:.0} s total",
        r.rounds_run,
        r.rounds_run.saturating_sub(r.discarded_rounds.len()),
        if r.discarded_rounds.is_empty() {
            String::new()
        } else {
            format!(" (discarded for direct drift: {:?})", r.discarded_rounds)
        },
        if r.truncated {
            "; TRUNCATED by the time budget"
        } else {
            ""
        },
        r.opts.warmup,
        r.opts.calls,
        r.opts.open_duration.as_secs_f64(),
        r.opts.ramp.as_secs_f64(),
        r.elapsed.as_secs_f64(),
    );
    if let Some(v) = &r.proxy_versions {
        let _ = writeln!(t, "proxies: {v}");
    }
    for (v, why) in &r.unavailable {
        let _ = writeln!(t, "{v}: NOT MEASURED — {why}");
    }

    let mut keys: Vec<Key> = s.keys().map(|k| k.0).collect();
    keys.dedup();
    for key in keys {
        let _ = writeln!(t, "\n-- {} — median of kept rounds, µs --", key.title());
        let _ = writeln!(
            t,
            "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>15} {:>9} {:>6} {:>6}  {:>8} {:>8} {:>8} {:>7} {:>6}{}",
            "",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "[p50 min-max]",
            "pool p99",
            "xD p50",
            "xD p90",
            "cli CPU",
            "srv CPU",
            "prx CPU",
            "cli RSS",
            "steal",
            if matches!(key, Key::Open(..)) {
                "  achieved  lag p50/p99"
            } else {
                ""
            }
        );
        let d = s.get(&(key, Variant::Direct));
        for v in Variant::ALL {
            let Some(x) = s.get(&(key, v)) else { continue };
            if x.rounds.is_empty() {
                let _ = writeln!(
                    t,
                    "{:<8} no valid rounds: {}",
                    v.label(),
                    x.failed.join("; ")
                );
                continue;
            }
            let mut row = format!(
                "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>15} {:>9} {:>6} {:>6}  {:>8} {:>8} {:>8} {:>7} {:>6}",
                v.label(),
                f1(x.median.p50),
                f1(x.median.p90),
                f1(x.median.p99),
                f1(x.median.p999),
                f1(x.median.max),
                format!("[{}-{}]", f1(x.p50_min), f1(x.p50_max)),
                f1(x.pooled.p99),
                d.map_or("-".into(), |d| ratio(x.median.p50, d.median.p50)),
                d.map_or("-".into(), |d| ratio(x.median.p90, d.median.p90)),
                f1(x.client_cpu),
                f1(x.server_cpu),
                if v == Variant::Sidecar2 {
                    f1(x.proxies_cpu)
                } else {
                    "-".into()
                },
                format!("{:.1}M", x.hwm_mib),
                format!("{:.0}%", x.steal),
            );
            if matches!(key, Key::Open(..)) {
                let _ = write!(
                    row,
                    "  {:>8} {:>6}/{}",
                    x.achieved_min.map_or("-".into(), |a| format!("{a:.0}/s")),
                    x.lag.map_or("-".into(), |l| f1(l.p50)),
                    x.lag.map_or("-".into(), |l| f1(l.p99)),
                );
            }
            let _ = writeln!(t, "{row}");
            if !x.failed.is_empty() {
                let _ = writeln!(t, "    failed runs: {}", x.failed.join("; "));
            }
        }
        let _ = writeln!(t, "  per round p50/p90/p99/p99.9/max µs:");
        for v in Variant::ALL {
            let Some(x) = s.get(&(key, v)) else { continue };
            let rounds: Vec<String> = x
                .rounds
                .iter()
                .map(|(n, p)| {
                    format!(
                        "r{n} {}/{}/{}/{}/{}",
                        f1(p.p50),
                        f1(p.p90),
                        f1(p.p99),
                        f1(p.p999),
                        f1(p.max)
                    )
                })
                .collect();
            let _ = writeln!(t, "    {:<8} {}", v.label(), rounds.join("  "));
        }
    }
    let _ = writeln!(
        t,
        "\ncolumns: CPU = µs of CPU time per request (client: whole client process during the timed calls, open loop without the pacing thread; srv = echo server; prx = nghttpx+HAProxy); RSS = client peak RSS (VmHWM, MiB); steal = hypervisor steal, % of all CPU time while the client ran (median)"
    );
    let _ = writeln!(t, "\nprocess peak RSS (VmHWM):");
    for (name, kib) in &r.processes {
        let _ = writeln!(
            t,
            "  {:<28} {}",
            name,
            kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
        );
    }
    let _ = writeln!(
        t,
        "\n-- goals (performance.md §6; a goal passes only with its per-round condition in >= 80% of paired rounds) --"
    );
    for g in goals {
        let _ = writeln!(
            t,
            "{:<4} {:<8} {:<58} target {:<22} measured {}{}",
            g.id,
            g.verdict(),
            g.what,
            g.target,
            g.measured,
            if g.note.is_empty() {
                String::new()
            } else {
                format!("  [{}]", g.note)
            }
        );
    }
    t
}

pub fn to_json(r: &Results, s: &BTreeMap<(Key, Variant), Summary>, goals: &[Goal]) -> Value {
    let m = &r.machine_before;
    let summaries: Vec<Value> = s
        .values()
        .map(|x| {
            json!({
                "regime": match x.key { Key::Service(_) => "service_time", Key::Open(..) => "open_loop" },
                "payload_bytes": match x.key { Key::Service(p) | Key::Open(_, p) => p },
                "rate_per_s": match x.key { Key::Open(r, _) => json!(r), Key::Service(_) => Value::Null },
                "variant": x.variant.label(),
                "median_of_rounds": x.median.to_json(),
                "p50_min_us": num(x.p50_min),
                "p50_max_us": num(x.p50_max),
                "pooled": x.pooled.to_json(),
                "client_cpu_us_per_request": num(x.client_cpu),
                "server_cpu_us_per_request": num(x.server_cpu),
                "proxies_cpu_us_per_request": num(x.proxies_cpu),
                "client_peak_rss_mib": num(x.hwm_mib),
                "steal_pct_median": num(x.steal),
                "achieved_rps_min": x.achieved_min.map(stats::round2),
                "dispatch_lag": x.lag.map(Pcts::to_json),
                "rounds": x.rounds.iter().map(|(n, p)| json!({"round": n, "pcts": p.to_json()})).collect::<Vec<_>>(),
                "failed": x.failed,
                "percentile_curve_us": svg::curve(&x.pooled_hist).iter().map(|(q, v)| json!([q, stats::round2(*v)])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let runs: Vec<Value> = r
        .measurements
        .iter()
        .map(|m| {
            json!({
                "round": m.round,
                "regime": m.key.slug(),
                "variant": m.variant.label(),
                "discarded": r.discarded_rounds.contains(&m.round),
                "error": m.error,
                "pcts": m.pcts.to_json(),
                "client_cpu_us_per_request": num(m.client_cpu_us_per_req),
                "server_cpu_us_per_request": num(m.server_cpu_us_per_req),
                "proxies_cpu_us_per_request": num(m.proxies_cpu_us_per_req),
                "client_peak_rss_kib": m.client_hwm_kib,
                "achieved_rps": m.achieved_rps.map(stats::round2),
                "steal_pct": stats::round2(m.steal_pct),
                "max_in_flight": m.raw.get("max_in_flight"),
                "pacer_late": m.raw.get("pacer_late"),
            })
        })
        .collect();
    json!({
        "bench": "skiff latency (benches/benches/latency.rs)",
        "method": "reference/performance.md §5: service time (1 in flight) and open loop (constant spacing, latency from intended send time, HdrHistogram); interleaved rounds with rotating variant order; client process per measurement",
        "machine": {
            "nproc": m.nproc,
            "cpu_model": m.cpu_model,
            "kernel": m.kernel,
            "loadavg_before": m.loadavg,
            "loadavg_after": r.loadavg_after,
            "steal_pct": stats::round2(r.steal_pct),
        },
        "pinning": r.pinned.map(|(c, s)| json!({"client_cpu": c, "servers_cpu": s})),
        "options": {
            "quick": r.opts.quick,
            "pin": format!("{:?}", r.opts.pin).to_lowercase(),
            "rounds": r.opts.rounds,
            "rounds_run": r.rounds_run,
            "discarded_rounds": r.discarded_rounds,
            "truncated": r.truncated,
            "variants": r.opts.variants.iter().map(|v| v.label()).collect::<Vec<_>>(),
            "payloads": r.opts.payloads,
            "warmup": r.opts.warmup,
            "calls": r.opts.calls,
            "rates": r.opts.rates,
            "open_payload": r.opts.open_payload,
            "open_ramp_s": r.opts.ramp.as_secs_f64(),
            "open_duration_s": r.opts.open_duration.as_secs_f64(),
            "elapsed_s": stats::round2(r.elapsed.as_secs_f64()),
        },
        "variants": r.opts.variants.iter().map(|v| json!({"label": v.label(), "description": v.describe()})).collect::<Vec<_>>(),
        "unavailable": r.unavailable.iter().map(|(v, w)| (v.label().to_string(), json!(w))).collect::<serde_json::Map<_, _>>(),
        "proxies": r.proxy_versions,
        "process_peak_rss_kib": r.processes.iter().map(|(n, k)| json!({"process": n, "vm_hwm_kib": k})).collect::<Vec<_>>(),
        "summaries": summaries,
        "goals": goals.iter().map(|g| json!({"id": g.id, "what": g.what, "target": g.target, "measured": g.measured, "met": g.met, "note": g.note})).collect::<Vec<_>>(),
        "runs": runs,
    })
}

pub fn report(r: &Results) -> Result<(), String> {
    let s = summarize(r);
    let goals = goals(r, &s);
    print!("{}", table(r, &s, &goals));
    std::fs::create_dir_all(&r.opts.out_dir)
        .map_err(|e| format!("create {}: {e}", r.opts.out_dir.display()))?;
    let json_path = r.opts.out_dir.join("latency.json");
    let text = serde_json::to_string_pretty(&to_json(r, &s, &goals)).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text).map_err(|e| format!("write {}: {e}", json_path.display()))?;
    let svg_path = r.opts.out_dir.join("latency.svg");
    std::fs::write(&svg_path, svg::render(r, &s))
        .map_err(|e| format!("write {}: {e}", svg_path.display()))?;
    println!(
        "\nwrote {}\nwrote {}",
        json_path.display(),
        svg_path.display()
    );
    Ok(())
}
