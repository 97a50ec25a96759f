//! The DESIGN.md performance bars, read off a report: each with the measured value,
//! met or not, and by how much it is missed.

use super::{BenchReport, RunResult, Scenario, ROLE_CLICKHOUSE, ROLE_PENSTOCK};

/// Whether a bar holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// This run did not measure it.
    NotMeasured,
}

/// One bar against this run.
#[derive(Debug, Clone, PartialEq)]
pub struct BarReading {
    /// The bar, as DESIGN.md states it.
    pub bar: String,
    /// What was measured, with units.
    pub measured: String,
    /// Met, missed, not measured.
    pub verdict: Verdict,
    /// For a miss: by how much.
    pub gap: Option<String>,
}

const PENSTOCK: &str = "penstock";
const KAFKA_ENGINE: &str = "kafka-engine";

fn run<'a>(r: &'a BenchReport, scenario: impl Fn(Scenario) -> bool, pattern: &str) -> Option<&'a RunResult> {
    r.runs.iter().find(|x| scenario(x.scenario) && x.pattern == pattern)
}

fn drain<'a>(r: &'a BenchReport, pattern: &str) -> Option<&'a RunResult> {
    run(r, |s| matches!(s, Scenario::Drain(_)), pattern)
}

fn reading(bar: &str, measured: Option<String>, met: Option<bool>, gap: impl FnOnce() -> String) -> BarReading {
    let verdict = match met {
        Some(true) => Verdict::Met,
        Some(false) => Verdict::Missed,
        None => Verdict::NotMeasured,
    };
    BarReading {
        bar: bar.to_string(),
        measured: measured.unwrap_or_else(|| "—".to_string()),
        gap: (verdict == Verdict::Missed).then(gap),
        verdict,
    }
}

/// Every bar this benchmark can read, in DESIGN.md's order.
pub fn readings(r: &BenchReport) -> Vec<BarReading> {
    let mut out = Vec::new();
    let p_drain = drain(r, PENSTOCK);
    let k_drain = drain(r, KAFKA_ENGINE);

    // Penstock's own CPU.
    let cpu = p_drain.and_then(|d| d.cpu_per_million(ROLE_PENSTOCK));
    out.push(reading(
        "Penstock process ≤ 1.0 CPU-s per million events (backlog drain)",
        cpu.map(|c| format!("{c:.2} CPU-s/M")),
        cpu.map(|c| c <= 1.0),
        || {
            format!(
                "{:.2} CPU-s/M over ({:.0} % above the bar)",
                cpu.unwrap_or(0.0) - 1.0,
                (cpu.unwrap_or(0.0) - 1.0) * 100.0
            )
        },
    ));

    // ClickHouse server CPU, Kafka engine vs Penstock's inserts.
    let ch = |d: Option<&RunResult>| d.and_then(|d| d.cpu_per_million(ROLE_CLICKHOUSE));
    let ratio = ch(k_drain).zip(ch(p_drain)).map(|(k, p)| k / p.max(1e-9));
    out.push(reading(
        "ClickHouse server CPU: Kafka engine ÷ Penstock's inserts ≥ 2.5× (backlog drain)",
        ratio.map(|x| {
            format!("{x:.2}× ({:.2} vs {:.2} CPU-s/M)", ch(k_drain).unwrap_or(0.0), ch(p_drain).unwrap_or(0.0))
        }),
        ratio.map(|x| x >= 2.5),
        || format!("{:.0} % short of 2.5×", (1.0 - ratio.unwrap_or(0.0) / 2.5) * 100.0),
    ));

    // Penstock + ClickHouse below the Kafka engine path.
    let totals = p_drain
        .and_then(RunResult::pipeline_cpu_per_million)
        .zip(k_drain.and_then(RunResult::pipeline_cpu_per_million));
    out.push(reading(
        "Penstock + ClickHouse CPU below the Kafka engine path's (backlog drain)",
        totals.map(|(p, k)| format!("{p:.2} vs {k:.2} CPU-s/M")),
        totals.map(|(p, k)| p < k),
        || {
            let (p, k) = totals.unwrap_or((0.0, 0.0));
            format!("{:.2} CPU-s/M above ({:.0} %)", p - k, (p / k.max(1e-9) - 1.0) * 100.0)
        },
    ));

    // Throughput against the broker's raw consume ceiling.
    let share = p_drain.map(|d| d.throughput / r.ceilings.raw_consume_rate.max(1e-9));
    let measured_share = (r.ceilings.raw_consume_rate > 0.0).then_some(share).flatten();
    out.push(reading(
        "Throughput ≥ 90 % of the broker's raw consume ceiling (backlog drain)",
        measured_share.map(|s| {
            format!(
                "{:.0} % ({} of {} events/s)",
                s * 100.0,
                super::thousands(p_drain.map_or(0.0, |d| d.throughput)),
                super::thousands(r.ceilings.raw_consume_rate)
            )
        }),
        measured_share.map(|s| s >= 0.9),
        || format!("{:.0} points short", (0.9 - measured_share.unwrap_or(0.0)) * 100.0),
    ));

    // Freshness at 50,000 events/s.
    let at_50k = run(r, |s| s == Scenario::Rate(50_000), PENSTOCK);
    let p99 = at_50k.and_then(|x| x.freshness).map(|f| f.p99);
    out.push(reading(
        "Freshness p99 ≤ 1 s at 50,000 events/s",
        p99.map(|v| format!("{:.0} ms", v)),
        p99.map(|v| v <= 1000.0),
        || format!("{:.0} ms over", p99.unwrap_or(0.0) - 1000.0),
    ));

    // Memory.
    let rss =
        r.runs.iter().filter(|x| x.pattern == PENSTOCK).filter_map(|x| x.peak_rss(ROLE_PENSTOCK)).reduce(f64::max);
    out.push(reading(
        "Penstock ≤ 256 MiB RSS at full rate, independent of backlog",
        rss.map(|m| format!("{m:.0} MiB peak")),
        rss.map(|m| m <= 256.0),
        || format!("{:.0} MiB over", rss.unwrap_or(0.0) - 256.0),
    ));

    // The generator.
    let c = &r.ceilings;
    let gen_share = (c.raw_produce_rate > 0.0 && c.gen_rate > 0.0).then(|| c.gen_rate / c.raw_produce_rate);
    out.push(reading(
        "`penstock gen` ≥ 90 % of the broker's raw produce rate",
        gen_share.map(|s| {
            format!(
                "{:.0} % ({} of {} msg/s)",
                s * 100.0,
                super::thousands(c.gen_rate),
                super::thousands(c.raw_produce_rate)
            )
        }),
        gen_share.map(|s| s >= 0.9),
        || format!("{:.0} points short", (0.9 - gen_share.unwrap_or(0.0)) * 100.0),
    ));
    let errors: Vec<f64> = r
        .runs
        .iter()
        .filter_map(|x| match x.scenario {
            Scenario::Rate(target) => x.gen_rate.map(|g| (g / target as f64 - 1.0) * 100.0),
            Scenario::Drain(_) => None,
        })
        .collect();
    let worst = errors.iter().copied().map(f64::abs).reduce(f64::max);
    out.push(reading(
        "`penstock gen` holds its target rate within ±5 %",
        worst.map(|w| format!("worst {w:.2} % off over {} fixed-rate runs", errors.len())),
        worst.map(|w| w <= 5.0),
        || format!("{:.2} points beyond ±5 %", worst.unwrap_or(0.0) - 5.0),
    ));
    out
}
