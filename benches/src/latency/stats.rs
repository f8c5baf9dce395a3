//! Histograms (HdrHistogram, ns, 3 significant digits) and the summaries the report uses.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Latency histogram in nanoseconds: 1 ns .. 60 s, 3 significant digits (0.1% resolution).
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Compact transfer form: `[[value_ns, count], ...]` of the recorded buckets.
pub fn encode(h: &Histogram<u64>) -> Value {
    Value::Array(
        h.iter_recorded()
            .map(|v| json!([v.value_iterated_to(), v.count_at_value()]))
            .collect(),
    )
}

pub fn decode(v: &Value) -> Histogram<u64> {
    let mut h = new_hist();
    for pair in v.as_array().into_iter().flatten() {
        if let (Some(value), Some(count)) = (pair[0].as_u64(), pair[1].as_u64()) {
            h.saturating_record_n(value, count);
        }
    }
    h
}

/// The percentiles reported for every run (µs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pcts {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Pcts {
    pub fn of(h: &Histogram<u64>) -> Pcts {
        if h.is_empty() {
            return Pcts::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Pcts {
            count: h.len(),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }

    /// Element-wise median over rounds.
    pub fn median_of(rounds: &[Pcts]) -> Pcts {
        let m = |f: fn(&Pcts) -> f64| median(rounds.iter().map(f).collect());
        Pcts {
            count: rounds.iter().map(|p| p.count).sum(),
            p50: m(|p| p.p50),
            p90: m(|p| p.p90),
            p99: m(|p| p.p99),
            p999: m(|p| p.p999),
            max: m(|p| p.max),
            mean: m(|p| p.mean),
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "p50_us": round2(self.p50),
            "p90_us": round2(self.p90),
            "p99_us": round2(self.p99),
            "p999_us": round2(self.p999),
            "max_us": round2(self.max),
            "mean_us": round2(self.mean),
        })
    }
}

/// Median of a list (mean of the middle two for even lengths); NaN for an empty list.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        x
    }
}

/// JSON number or null for NaN.
pub fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(round2(x))
    } else {
        Value::Null
    }
}
