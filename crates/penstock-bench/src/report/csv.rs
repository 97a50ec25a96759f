//! CSV files for spreadsheets and plotting tools: one row per run, one row per sample.

use super::{BenchReport, ROLE_BROKER, ROLE_CLICKHOUSE, ROLE_PENSTOCK};
use std::fmt::Write;

fn num(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.3}"))
}

/// RFC 4180 quoting when a field holds a comma, quote or line break.
pub(crate) fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `runs.csv`: one row per scenario and pattern.
pub fn runs_csv(r: &BenchReport) -> String {
    let mut out = String::from(
        "scenario,pattern,produced,stored,distinct,gen_rate,throughput,elapsed_s,\
         freshness_p50_ms,freshness_p95_ms,freshness_p99_ms,freshness_max_ms,behind_p99,\
         penstock_cpu_s_per_m,clickhouse_cpu_s_per_m,pipeline_cpu_s_per_m,broker_cpu_s_per_m,\
         penstock_peak_rss_mib,clickhouse_peak_rss_mib,broker_peak_rss_mib,note\n",
    );
    for x in &r.runs {
        let f = x.freshness;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:.1},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            x.scenario.slug(),
            field(&x.pattern),
            x.produced,
            x.stored,
            x.distinct,
            num(x.gen_rate),
            x.throughput,
            x.elapsed,
            num(f.map(|f| f.p50)),
            num(f.map(|f| f.p95)),
            num(f.map(|f| f.p99)),
            num(f.map(|f| f.max)),
            num(x.lag.map(|l| l.p99)),
            num(x.cpu_per_million(ROLE_PENSTOCK)),
            num(x.cpu_per_million(ROLE_CLICKHOUSE)),
            num(x.pipeline_cpu_per_million()),
            num(x.cpu_per_million(ROLE_BROKER)),
            num(x.peak_rss(ROLE_PENSTOCK)),
            num(x.peak_rss(ROLE_CLICKHOUSE)),
            num(x.peak_rss(ROLE_BROKER)),
            field(x.note.as_deref().unwrap_or("")),
        );
    }
    out
}

/// `samples.csv`: every freshness sample of every run.
pub fn samples_csv(r: &BenchReport) -> String {
    let mut out = String::from("scenario,pattern,t_s,freshness_ms,visible,behind\n");
    for x in &r.runs {
        for s in &x.samples {
            let _ = writeln!(
                out,
                "{},{},{:.3},{},{},{}",
                x.scenario.slug(),
                field(&x.pattern),
                s.t,
                num(s.freshness_ms),
                s.visible,
                s.behind
            );
        }
    }
    out
}
