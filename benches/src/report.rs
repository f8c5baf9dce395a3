//! The machine-readable result file (`<target>/skiff-bench/core.json`) and the summary table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// What a measurement is held to.
#[derive(Clone, Debug, PartialEq)]
pub enum Goal {
    /// No goal: reported for information.
    None,
    /// Median time at most this many nanoseconds.
    MaxNs(f64),
    /// Median time at most this many nanoseconds and at most this many allocations per
    /// operation.
    MaxNsAndAllocs(f64, f64),
    /// At most this many bytes (memory measurements).
    MaxBytes(f64),
}

impl Goal {
    /// The goal in words, or `None`.
    pub fn describe(&self) -> Option<String> {
        match self {
            Goal::None => None,
            Goal::MaxNs(ns) => Some(format!("median <= {}", fmt_ns(*ns))),
            Goal::MaxNsAndAllocs(ns, a) => {
                Some(format!("median <= {} and <= {a} allocations", fmt_ns(*ns)))
            }
            Goal::MaxBytes(b) => Some(format!("<= {b} B")),
        }
    }
}

/// One named result.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Median time per operation in nanoseconds (`None` for memory figures).
    pub median_ns: Option<f64>,
    /// Allocations per operation (or per item, for memory figures).
    pub allocations: Option<f64>,
    /// Bytes allocated per operation; for memory figures, bytes live per item.
    pub bytes: Option<f64>,
    /// The goal.
    pub goal: Goal,
    /// What one operation is ("decision", "pick", "update of 100k endpoints", ...).
    pub per: String,
    /// How the time was taken ("criterion: N samples" or "manual: N runs").
    pub method: String,
    /// Anything a reader needs to interpret the number.
    pub note: String,
}

impl Measurement {
    /// Whether the goal is met (`None` when there is no goal or no number to judge).
    pub fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::None => None,
            Goal::MaxNs(max) => self.median_ns.map(|m| m <= max),
            Goal::MaxNsAndAllocs(max, allocs) => match (self.median_ns, self.allocations) {
                (Some(m), Some(a)) => Some(m <= max && a <= allocs),
                _ => None,
            },
            Goal::MaxBytes(max) => self.bytes.map(|b| b <= max),
        }
    }
}

/// Results in insertion order, plus machine information.
#[derive(Debug, Default)]
pub struct Report {
    entries: Vec<(String, Measurement)>,
}

impl Report {
    /// Adds (or replaces) a result.
    pub fn add(&mut self, name: &str, m: Measurement) {
        if let Some(slot) = self.entries.iter_mut().find(|(n, _)| n == name) {
            slot.1 = m;
        } else {
            self.entries.push((name.to_string(), m));
        }
    }

    /// A result by name.
    pub fn get(&self, name: &str) -> Option<&Measurement> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }

    /// Mutable access to a result by name.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Measurement> {
        self.entries
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The JSON document: `{"machine": {...}, "results": {name: {...}}}`.
    pub fn to_json(&self, machine: &Value) -> Value {
        let mut results = serde_json::Map::new();
        for (name, m) in &self.entries {
            results.insert(
                name.clone(),
                json!({
                    "median_ns": m.median_ns.map(round3),
                    "allocations": m.allocations.map(round3),
                    "bytes": m.bytes.map(round3),
                    "goal": m.goal.describe(),
                    "met": m.met(),
                    "per": m.per,
                    "method": m.method,
                    "note": m.note,
                }),
            );
        }
        json!({ "machine": machine, "results": Value::Object(results) })
    }

    /// The summary table: name, median, allocations, bytes, goal, met.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 6]> = vec![[
            "name".into(),
            "median".into(),
            "allocs".into(),
            "bytes".into(),
            "goal".into(),
            "met".into(),
        ]];
        for (name, m) in &self.entries {
            rows.push([
                name.clone(),
                m.median_ns.map_or("-".into(), fmt_ns),
                m.allocations.map_or("-".into(), fmt_num),
                m.bytes.map_or("-".into(), fmt_num),
                m.goal.describe().unwrap_or_else(|| "-".into()),
                match m.met() {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
            ]);
        }
        let mut widths = [0usize; 6];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let mut out = String::new();
        for (i, r) in rows.iter().enumerate() {
            let line: Vec<String> = r
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(j, (c, w))| {
                    if j == 0 || j == 4 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `123 ns`, `4.56 µs`, `7.89 ms`, `1.23 s`.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_num(x: f64) -> String {
    if (x == x.trunc() && x.abs() < 1e15) || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The workspace target directory: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("target"),
    }
}

/// Median of per-iteration times (ns) of a criterion benchmark, from the `sample.json` criterion
/// wrote for it in this run (`None` if it did not run). `dir_name` is criterion's directory name
/// for the benchmark (`group/function` with our plain ASCII names).
pub fn criterion_median_ns(
    criterion_dir: &Path,
    dir_name: &str,
    since: SystemTime,
) -> Option<(f64, usize)> {
    let path = criterion_dir.join(dir_name).join("new").join("sample.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let iters = v.get("iters")?.as_array()?;
    let times = v.get("times")?.as_array()?;
    let mut per: Vec<f64> = iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
        .collect();
    Some((median(&mut per)?, per.len()))
}

/// The median of `xs` (sorted in place).
pub fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// Median of durations in nanoseconds.
pub fn median_duration_ns(ds: &[Duration]) -> Option<f64> {
    let mut xs: Vec<f64> = ds.iter().map(|d| d.as_nanos() as f64).collect();
    median(&mut xs)
}

/// CPU model, core count, rustc version, date, kernel and git commit.
pub fn machine_info() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let cores = if logical > 0 {
        logical
    } else {
        std::thread::available_parallelism().map_or(0, |n| n.get())
    };
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut flags = BTreeMap::new();
    if let Some(f) = field("flags") {
        for want in ["avx2", "avx512f", "sse4_2", "bmi2", "hypervisor"] {
            flags.insert(want, f.split_whitespace().any(|x| x == want));
        }
    }
    json!({
        "cpu_model": field("model name"),
        "cpu_mhz": field("cpu MHz"),
        "cpu_family": field("cpu family"),
        "cpu_model_number": field("model"),
        "cache_size": field("cache size"),
        "cpu_flags": flags,
        "cores": cores,
        "rustc": run(&rustc, &["-V"]),
        "kernel": run("uname", &["-sr"]),
        "date": utc_now(),
        "git_commit": run("git", &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"]),
        "profile": "bench (release, debug = line-tables-only)",
    })
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no dependency).
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn goals() {
        let m = |ns, a, b, goal| Measurement {
            median_ns: ns,
            allocations: a,
            bytes: b,
            goal,
            per: String::new(),
            method: String::new(),
            note: String::new(),
        };
        assert_eq!(
            m(
                Some(100.0),
                Some(0.0),
                None,
                Goal::MaxNsAndAllocs(150.0, 0.0)
            )
            .met(),
            Some(true)
        );
        assert_eq!(
            m(
                Some(100.0),
                Some(0.01),
                None,
                Goal::MaxNsAndAllocs(150.0, 0.0)
            )
            .met(),
            Some(false)
        );
        assert_eq!(
            m(Some(200.0), None, None, Goal::MaxNs(150.0)).met(),
            Some(false)
        );
        assert_eq!(
            m(None, None, Some(300.0), Goal::MaxBytes(400.0)).met(),
            Some(true)
        );
        assert_eq!(m(Some(1.0), None, None, Goal::None).met(), None);
    }

    #[test]
    fn dates_format() {
        let s = utc_now();
        assert_eq!(s.len(), 20);
        assert!(s.ends_with('Z'));
    }

    #[test]
    fn table_lines_up() {
        let mut r = Report::default();
        r.add(
            "a",
            Measurement {
                median_ns: Some(12.0),
                allocations: Some(0.0),
                bytes: Some(0.0),
                goal: Goal::MaxNs(40.0),
                per: "pick".into(),
                method: String::new(),
                note: String::new(),
            },
        );
        let t = r.table();
        assert!(t.contains("12.0 ns"));
        assert!(t.contains("yes"));
    }
}
