//! Two SVG charts, drawn by hand (a plotting crate would cost more to build than the
//! whole report): freshness over time per pattern at one rate, and throughput against
//! CPU per million events for every run.

use super::{patterns, thousands, BenchReport, Scenario};
use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 380.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 5] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A "nice" upper bound for an axis: 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10ⁿ at or above
/// `max`, so a line fills most of its chart; each step divides into five even ticks.
pub(crate) fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max * (1.0 - 1e-12))
        .unwrap_or(10.0 * magnitude)
}

struct Frame {
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        LEFT + v / self.x_max * (WIDTH - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - v / self.y_max * (HEIGHT - TOP - BOTTOM)
    }

    fn axes(&self, out: &mut String, title: &str, x_label: &str, y_label: &str) {
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(out, r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#, esc(title));
        for i in 0..=5 {
            let (xv, yv) = (self.x_max * i as f64 / 5.0, self.y_max * i as f64 / 5.0);
            let (x, y) = (self.x(xv), self.y(yv));
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                esc(&axis_label(yv))
            );
            let _ = writeln!(
                out,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                HEIGHT - BOTTOM + 16.0,
                esc(&axis_label(xv))
            );
        }
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 12.0,
            esc(x_label)
        );
        let _ = writeln!(
            out,
            r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
            (TOP + HEIGHT - BOTTOM) / 2.0,
            (TOP + HEIGHT - BOTTOM) / 2.0,
            esc(y_label)
        );
    }

    fn legend(&self, out: &mut String, i: usize, name: &str) {
        let y = TOP + 10.0 + 20.0 * i as f64;
        let x = WIDTH - RIGHT + 15.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="14" height="4" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            y - 4.0,
            COLOURS[i % COLOURS.len()],
            x + 20.0,
            y + 2.0,
            esc(name)
        );
    }
}

fn axis_label(v: f64) -> String {
    if v >= 10_000.0 {
        thousands(v)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Freshness (ms) over time (s) of every pattern in one fixed-rate scenario.
pub fn freshness_chart(r: &BenchReport, scenario: Scenario) -> String {
    let runs: Vec<_> = r.runs.iter().filter(|x| x.scenario == scenario).collect();
    let points = runs.iter().flat_map(|x| x.samples.iter().filter_map(|s| Some((s.t, s.freshness_ms?))));
    let (x_max, y_max) = points.fold((0.0f64, 0.0f64), |(a, b), (t, f)| (a.max(t), b.max(f)));
    let frame = Frame { x_max: nice_ceiling(x_max), y_max: nice_ceiling(y_max) };
    let mut out = String::new();
    frame.axes(
        &mut out,
        &format!("Freshness at {scenario} (now − newest visible event_time)"),
        "seconds since start",
        "freshness (ms)",
    );
    let names = patterns(r);
    for (i, name) in names.iter().enumerate() {
        frame.legend(&mut out, i, name);
        let Some(run) = runs.iter().find(|x| &x.pattern == name) else { continue };
        let mut path = String::new();
        for s in &run.samples {
            if let Some(f) = s.freshness_ms {
                let _ =
                    write!(path, "{}{:.1},{:.1}", if path.is_empty() { "M" } else { " L" }, frame.x(s.t), frame.y(f));
            }
        }
        if !path.is_empty() {
            let _ = writeln!(
                out,
                r#"<path d="{path}" fill="none" stroke="{}" stroke-width="1.5"><title>{}</title></path>"#,
                COLOURS[i % COLOURS.len()],
                esc(name)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// Throughput (events/s) against pipeline CPU-seconds per million events, one marker
/// per run, coloured by pattern and labelled with its scenario.
pub fn throughput_cpu_chart(r: &BenchReport) -> String {
    let points: Vec<(usize, f64, f64, String)> = {
        let names = patterns(r);
        r.runs
            .iter()
            .filter_map(|x| {
                let i = names.iter().position(|n| n == &x.pattern)?;
                Some((i, x.throughput, x.pipeline_cpu_per_million()?, x.scenario.to_string()))
            })
            .collect()
    };
    let x_max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let y_max = points.iter().map(|p| p.2).fold(0.0, f64::max);
    let frame = Frame { x_max: nice_ceiling(x_max), y_max: nice_ceiling(y_max) };
    let mut out = String::new();
    frame.axes(
        &mut out,
        "Throughput against CPU (pipeline processes, broker excluded)",
        "events per second",
        "CPU-seconds per million events",
    );
    for (i, name) in patterns(r).iter().enumerate() {
        frame.legend(&mut out, i, name);
    }
    for (i, x, y, label) in &points {
        let (cx, cy) = (frame.x(*x), frame.y(*y));
        let _ = writeln!(
            out,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{}"><title>{}</title></circle><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
            COLOURS[i % COLOURS.len()],
            esc(&format!("{label}: {} events/s, {y:.2} CPU-s/M", thousands(*x))),
            cx + 7.0,
            cy - 6.0,
            esc(label)
        );
    }
    out.push_str("</svg>\n");
    out
}
