//! The Markdown report: setup, the DESIGN.md bars, broker ceilings, one table per
//! fixed rate, the backlog drain, query latencies and links to the charts.

use super::{
    patterns, readings, scenarios, thousands, BenchReport, RunResult, Scenario, Verdict, ROLE_BROKER, ROLE_CLICKHOUSE,
    ROLE_PENSTOCK,
};
use std::fmt::Write;

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.digits$}"))
}

fn rows_cell(r: &RunResult) -> String {
    let mut s = format!("{} / {}", thousands(r.stored as f64), thousands(r.produced as f64));
    if r.exact() {
        s.push_str(" ✓");
    } else if r.distinct < r.stored {
        let _ = write!(s, " ({} duplicates)", thousands((r.stored - r.distinct) as f64));
    } else if r.stored < r.produced {
        let _ = write!(s, " ({} missing)", thousands((r.produced - r.stored) as f64));
    }
    s
}

/// The cells every run table ends with: CPU-s per million of Penstock, ClickHouse, the
/// pipeline and the broker, then peak RSS of Penstock / ClickHouse.
fn cost_cells(x: &RunResult) -> String {
    format!(
        "{} | {} | {} | {} | {} / {}",
        opt(x.cpu_per_million(ROLE_PENSTOCK), 2),
        opt(x.cpu_per_million(ROLE_CLICKHOUSE), 2),
        opt(x.pipeline_cpu_per_million(), 2),
        opt(x.cpu_per_million(ROLE_BROKER), 2),
        opt(x.peak_rss(ROLE_PENSTOCK), 0),
        opt(x.peak_rss(ROLE_CLICKHOUSE), 0),
    )
}

/// Renders the report.
pub fn markdown(r: &BenchReport) -> String {
    let e = &r.environment;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# `penstock bench` — {}\n", e.started_at);
    let _ = writeln!(w, "```sh\n{}\n```\n", e.command);
    let _ = writeln!(w, "## Setup\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| machine | {}, {} cores, {:.0} GiB, {} |", e.cpu, e.cores, e.memory_gib, e.os);
    let _ = writeln!(w, "| Penstock | {} (librdkafka {}) |", e.penstock, e.librdkafka);
    let _ = writeln!(w, "| ClickHouse | {} |", e.clickhouse);
    let _ = writeln!(w, "| broker | {}, storage: {} |", e.broker, e.storage);
    if let Some(k) = &e.kafka_engine_librdkafka {
        let _ = writeln!(w, "| Kafka engine's librdkafka | {k} |");
    }
    let _ = writeln!(
        w,
        "| topic | {} partitions, `transactions` events of {:.0} bytes on average |",
        e.partitions, e.event_bytes
    );
    let _ = writeln!(w);
    for (name, how) in &r.pattern_notes {
        let _ = writeln!(w, "- **{name}**: {how}");
    }
    let _ = writeln!(
        w,
        "\nFreshness = now − max(event_time) visible to `SELECT`, sampled every 500 ms while events are produced \
         (the first {:.0} s of each run left out as warm-up; while nothing is visible yet, the time since the first event \
         was produced counts); events behind = produced − visible at the same instant. \
         CPU is user + system time from `/proc/<pid>/stat` over the run, per million produced events.\n",
        r.warmup_seconds
    );

    let _ = writeln!(w, "## DESIGN.md bars\n\n| bar | measured | verdict |\n|---|---|---|");
    for b in readings(r) {
        let verdict = match b.verdict {
            Verdict::Met => "met".to_string(),
            Verdict::Missed => format!("**missed** by {}", b.gap.unwrap_or_default()),
            Verdict::NotMeasured => "not measured in this run".to_string(),
        };
        let _ = writeln!(w, "| {} | {} | {verdict} |", b.bar, b.measured);
    }

    let c = &r.ceilings;
    let _ = writeln!(w, "\n## Broker ceilings (same run, {} messages)\n", thousands(c.messages as f64));
    let _ = writeln!(w, "| measure | messages/s |\n|---|---|");
    let _ = writeln!(
        w,
        "| raw produce (bare producer, prepared messages, {} thread(s)) | {} |",
        c.gen_threads,
        thousands(c.raw_produce_rate)
    );
    let _ = writeln!(w, "| `penstock gen`, unlimited, {} thread(s) | {} |", c.gen_threads, thousands(c.gen_rate));
    let bare_cpu = c.raw_consume_cpu_per_million.map_or(String::new(), |v| format!(" ({v:.2} CPU-s per million)"));
    let _ = writeln!(w, "| raw consume (bare consumer, no group){bare_cpu} | {} |", thousands(c.raw_consume_rate));

    for scenario in scenarios(r) {
        let runs: Vec<&RunResult> = r.runs.iter().filter(|x| x.scenario == scenario).collect();
        match scenario {
            Scenario::Rate(rate) => {
                let _ = writeln!(w, "\n## {} events/s\n", thousands(rate as f64));
                let _ = writeln!(
                    w,
                    "| pattern | gen rate | rows stored / produced | freshness p50 / p95 / p99 / max (ms) | behind p99 | \
                     CPU-s/M Penstock | CPU-s/M ClickHouse | CPU-s/M pipeline | CPU-s/M broker | peak RSS Penstock / ClickHouse (MiB) |"
                );
                let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
                for x in runs {
                    let gen = x.gen_rate.map_or("—".into(), |g| {
                        format!("{} ({:+.1} %)", thousands(g), (g / rate as f64 - 1.0) * 100.0)
                    });
                    let fresh = x
                        .freshness
                        .map_or("—".into(), |f| format!("{:.0} / {:.0} / {:.0} / {:.0}", f.p50, f.p95, f.p99, f.max));
                    let _ = writeln!(
                        w,
                        "| {} | {gen} | {} | {fresh} | {} | {} |",
                        x.pattern,
                        rows_cell(x),
                        x.lag.map_or("—".into(), |l| thousands(l.p99)),
                        cost_cells(x),
                    );
                }
                let _ =
                    writeln!(w, "\n![freshness at {}/s](freshness-{}.svg)", thousands(rate as f64), scenario.slug());
            }
            Scenario::Drain(n) => {
                let _ = writeln!(w, "\n## Backlog drain: {} events already in the topic\n", thousands(n as f64));
                let _ = writeln!(
                    w,
                    "| pattern | time (s) | events/s | of raw consume ceiling | rows stored / produced | CPU-s/M Penstock | \
                     CPU-s/M ClickHouse | CPU-s/M pipeline | CPU-s/M broker | peak RSS Penstock / ClickHouse (MiB) |"
                );
                let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
                for x in runs {
                    let share = if c.raw_consume_rate > 0.0 {
                        format!("{:.0} %", x.throughput / c.raw_consume_rate * 100.0)
                    } else {
                        "—".to_string()
                    };
                    let _ = writeln!(
                        w,
                        "| {} | {:.1} | {} | {share} | {} | {} |",
                        x.pattern,
                        x.elapsed,
                        thousands(x.throughput),
                        rows_cell(x),
                        cost_cells(x),
                    );
                }
            }
        }
    }
    let _ = writeln!(w, "\n![throughput against CPU](throughput-cpu.svg)");

    if !r.queries.is_empty() {
        let names = patterns(r);
        let shown: Vec<&String> = names.iter().filter(|p| r.queries.iter().any(|q| &q.pattern == *p)).collect();
        let _ = writeln!(w, "\n## The seed's queries after the drain (median / slowest of each run, ms)\n");
        let _ = write!(w, "| query |");
        for p in &shown {
            let _ = write!(w, " {p} |");
        }
        let _ = writeln!(w, "\n|---|{}", "---|".repeat(shown.len()));
        let mut queries: Vec<&str> = Vec::new();
        for q in &r.queries {
            if !queries.contains(&q.query.as_str()) {
                queries.push(&q.query);
            }
        }
        for q in queries {
            let _ = write!(w, "| {q} |");
            for p in &shown {
                match r.queries.iter().find(|x| x.query == q && &x.pattern == *p) {
                    Some(x) => {
                        let _ = write!(
                            w,
                            " {:.1} / {:.1} ({} runs, {} rows) |",
                            x.median_ms,
                            x.max_ms,
                            x.runs,
                            thousands(x.table_rows as f64)
                        );
                    }
                    None => {
                        let _ = write!(w, " — |");
                    }
                }
            }
            let _ = writeln!(w);
        }
    }

    let notes: Vec<String> = r
        .runs
        .iter()
        .filter_map(|x| x.note.as_ref().map(|n| format!("- {} / {}: {n}", x.scenario, x.pattern)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(w, "\n## Notes\n\n{}", notes.join("\n"));
    }
    out
}
