//! A hand-written SVG: one percentile-distribution panel per regime (HdrHistogram style: x =
//! percentile on a "number of nines" scale, y = latency on a log scale), one line per variant,
//! pooled over the kept rounds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::output::Summary;
use super::run::{Key, Results};
use super::variant::Variant;

/// Highest "nines" shown: 4 = p99.99.
const NINES: f64 = 4.0;

/// `(percentile, µs)` points from p0 to p99.99 on the nines scale.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=200)
        .map(|i| {
            let nines = NINES * i as f64 / 200.0;
            let q = 1.0 - 10f64.powf(-nines);
            (
                (q * 1e6).round() / 1e4,
                h.value_at_quantile(q.clamp(0.0, 1.0)) as f64 / 1000.0,
            )
        })
        .collect()
}

fn nines_of(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(10f64.powf(-NINES));
    -rest.log10()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(r: &Results, s: &BTreeMap<(Key, Variant), Summary>) -> String {
    let mut keys: Vec<Key> = s.keys().map(|k| k.0).collect();
    keys.dedup();
    let (pw, ph) = (460.0, 320.0);
    let cols = 2usize;
    let rows = keys.len().div_ceil(cols).max(1);
    let top = 70.0;
    let width = pw * cols as f64 + 20.0;
    let height = top + ph * rows as f64 + 20.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let m = &r.machine_before;
    let _ = writeln!(
        o,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">skiff latency: D direct, P skiff, S2 nghttpx→HAProxy sidecars (loopback, pooled over kept rounds)</text>"#
    );
    let _ = writeln!(
        o,
        r#"<text x="10" y="38">{} CPU(s) {} · load {} → {} · {} rounds · {} · pin {:?}</text>"#,
        m.nproc,
        esc(&m.cpu_model),
        esc(&m.loadavg),
        esc(&r.loadavg_after),
        r.rounds_run,
        if r.opts.quick { "quick" } else { "full" },
        r.opts.pin
    );
    // Legend.
    let mut lx = 10.0;
    for v in Variant::ALL {
        if !r.opts.variants.contains(&v) {
            continue;
        }
        let label = match r.unavailable.get(&v) {
            Some(_) => format!("{} (not measured)", v.label()),
            None => v.label().to_string(),
        };
        let _ = writeln!(
            o,
            r#"<line x1="{lx}" y1="54" x2="{}" y2="54" stroke="{}" stroke-width="3"/><text x="{}" y="58">{}</text>"#,
            lx + 18.0,
            v.colour(),
            lx + 22.0,
            esc(&label)
        );
        lx += 22.0 + 7.0 * label.len() as f64 + 14.0;
    }
    let _ = writeln!(
        o,
        r##"<text x="{lx}" y="58" fill="#555">x: percentile (log of 1/(1-q)); y: latency µs (log)</text>"##
    );

    for (i, key) in keys.iter().enumerate() {
        let x0 = 10.0 + pw * (i % cols) as f64;
        let y0 = top + ph * (i / cols) as f64;
        panel(&mut o, s, *key, x0, y0, pw - 10.0, ph - 10.0);
    }
    o.push_str("</svg>\n");
    o
}

fn panel(
    o: &mut String,
    s: &BTreeMap<(Key, Variant), Summary>,
    key: Key,
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
) {
    let (ml, mr, mt, mb) = (50.0, 10.0, 22.0, 34.0);
    let (px, py, pw, ph) = (x0 + ml, y0 + mt, w - ml - mr, h - mt - mb);
    let curves: Vec<(Variant, Vec<(f64, f64)>)> = Variant::ALL
        .iter()
        .filter_map(|&v| s.get(&(key, v)).map(|x| (v, curve(&x.pooled_hist))))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    let _ = writeln!(
        o,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#ccc"/><text x="{}" y="{}" font-weight="bold">{}</text>"##,
        x0 + 6.0,
        y0 + 15.0,
        esc(&key.short_title())
    );
    if curves.is_empty() {
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}">no data</text>"#,
            px + 10.0,
            py + 20.0
        );
        return;
    }
    let lo = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(f64::INFINITY, f64::min)
        .max(0.1);
    let hi = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(lo * 2.0);
    let (llo, lhi) = ((lo * 0.9).log10(), (hi * 1.1).log10());
    let xs = |nines: f64| px + pw * nines / NINES;
    let ys = |us: f64| py + ph - ph * (us.max(lo).log10() - llo) / (lhi - llo);
    // Grid: y at 1/2/5 x 10^k, x at 0, 50, 90, 99, 99.9, 99.99.
    let mut decade = 10f64.powf(llo.floor());
    while decade <= 10f64.powf(lhi) {
        for mult in [1.0, 2.0, 5.0] {
            let v = decade * mult;
            if v.log10() >= llo && v.log10() <= lhi {
                let y = ys(v);
                let _ = writeln!(
                    o,
                    r##"<line x1="{px}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                    px + pw,
                    px - 4.0,
                    y + 4.0,
                    if v >= 1.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v}")
                    }
                );
            }
        }
        decade *= 10.0;
    }
    for (pct, label) in [
        (0.0, "0%"),
        (50.0, "50%"),
        (90.0, "90%"),
        (99.0, "99%"),
        (99.9, "99.9%"),
        (99.99, "99.99%"),
    ] {
        let x = xs(nines_of(pct));
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{py}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            py + ph,
            py + ph + 14.0
        );
    }
    let _ = writeln!(
        o,
        r##"<rect x="{px}" y="{py}" width="{pw}" height="{ph}" fill="none" stroke="#888"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">percentile</text><text x="{:.1}" y="{:.1}" fill="#555" transform="rotate(-90 {:.1} {:.1})" text-anchor="middle">µs</text>"##,
        px + pw / 2.0,
        py + ph + 28.0,
        x0 + 12.0,
        py + ph / 2.0,
        x0 + 12.0,
        py + ph / 2.0
    );
    for (v, c) in &curves {
        let pts: Vec<String> = c
            .iter()
            .map(|(pct, us)| format!("{:.1},{:.1}", xs(nines_of(*pct)), ys(*us)))
            .collect();
        let p50 = s.get(&(key, *v)).map_or(f64::NAN, |x| x.median.p50);
        let _ = writeln!(
            o,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{} median p50 {:.1} µs</title></polyline>"#,
            v.colour(),
            pts.join(" "),
            v.label(),
            p50
        );
    }
    // Direct labels at the p50 point.
    for (i, (v, _)) in curves.iter().enumerate() {
        if let Some(x) = s.get(&(key, *v)) {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" fill="{}">{} p50 {:.0} µs</text>"#,
                px + 6.0,
                py + 14.0 + 13.0 * i as f64,
                v.colour(),
                v.label(),
                x.median.p50
            );
        }
    }
}
