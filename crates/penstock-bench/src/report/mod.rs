//! What a `penstock bench` run measured, and its renderings: a Markdown report, CSV
//! files and SVG charts written to the results directory. Rendering is pure (results
//! in, text out) so it is tested without running anything.

mod bars;
mod csv;
mod markdown;
mod svg;

pub use bars::{readings, BarReading, Verdict};
pub use csv::{runs_csv, samples_csv};
pub use markdown::markdown;
pub use svg::{freshness_chart, throughput_cpu_chart};

use crate::measure::Summary;
use std::path::Path;

/// Where and with what a run happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    /// The command line that produced the report.
    pub command: String,
    /// UTC start time, ISO-8601.
    pub started_at: String,
    /// CPU model.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// Physical memory, GiB.
    pub memory_gib: f64,
    /// Operating system.
    pub os: String,
    /// Penstock's version.
    pub penstock: String,
    /// librdkafka inside Penstock.
    pub librdkafka: String,
    /// `SELECT version()`.
    pub clickhouse: String,
    /// The broker and its version.
    pub broker: String,
    /// Broker storage (`memory` or `sqlite`) and what it implies.
    pub storage: String,
    /// librdkafka preloaded into ClickHouse for its Kafka engine, if any.
    pub kafka_engine_librdkafka: Option<String>,
    /// Topic partitions.
    pub partitions: u32,
    /// Mean message size, bytes.
    pub event_bytes: f64,
}

/// The broker's raw rates, measured in the same run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ceilings {
    /// Messages the broker took per second from a bare producer sending prepared messages.
    pub raw_produce_rate: f64,
    /// Messages per second `penstock gen` reached, unlimited, same producer settings.
    pub gen_rate: f64,
    /// Producer threads `penstock gen` used.
    pub gen_threads: usize,
    /// Messages per second a bare consumer (no group, no processing) fetched.
    pub raw_consume_rate: f64,
    /// CPU-seconds per million messages of that bare consumer.
    pub raw_consume_cpu_per_million: Option<f64>,
    /// Messages used for these measurements.
    pub messages: u64,
}

/// What a run measured: at a fixed rate, or draining a backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    /// Events produced at this rate while the pattern consumes.
    Rate(u64),
    /// This many events produced first, then consumed as fast as the pattern can.
    Drain(u64),
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scenario::Rate(r) => write!(f, "rate {}/s", thousands(*r as f64)),
            Scenario::Drain(n) => write!(f, "drain {}", thousands(*n as f64)),
        }
    }
}

impl Scenario {
    /// A short machine-friendly name (`rate-50000`, `drain-1000000`).
    pub fn slug(&self) -> String {
        match self {
            Scenario::Rate(r) => format!("rate-{r}"),
            Scenario::Drain(n) => format!("drain-{n}"),
        }
    }
}

/// CPU and memory of one process over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessCost {
    /// `penstock`, `clickhouse-server` or `broker`.
    pub role: String,
    /// CPU-seconds over the run (`None`: the PID was unknown).
    pub cpu_seconds: Option<f64>,
    /// Highest resident memory, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// One freshness sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the pattern started.
    pub t: f64,
    /// now − max(event_time) visible to SELECT, ms (`None` while nothing is visible).
    pub freshness_ms: Option<f64>,
    /// Rows visible.
    pub visible: u64,
    /// Events produced but not yet visible.
    pub behind: u64,
}

/// One pattern in one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Rate or drain.
    pub scenario: Scenario,
    /// `kafka-engine`, `penstock`, `penstock-tuned`.
    pub pattern: String,
    /// Messages the broker acknowledged to the generator.
    pub produced: u64,
    /// Rows in the pattern's table at the end.
    pub stored: u64,
    /// Distinct `event_id`s among them.
    pub distinct: u64,
    /// The generator's rate during a fixed-rate run.
    pub gen_rate: Option<f64>,
    /// Rows made visible per second (drain: all rows / time until the last was visible).
    pub throughput: f64,
    /// From the pattern's start until every row was visible (or the run gave up), s.
    pub elapsed: f64,
    /// Freshness percentiles over the steady-state samples, ms.
    pub freshness: Option<Summary>,
    /// Events-behind percentiles over the same samples.
    pub lag: Option<Summary>,
    /// Every sample, for the charts and the CSV.
    pub samples: Vec<Sample>,
    /// Penstock (if any), the ClickHouse server, the broker.
    pub processes: Vec<ProcessCost>,
    /// Why a run is incomplete or anything else to know.
    pub note: Option<String>,
}

impl RunResult {
    /// CPU-seconds per million produced events of the process in `role`.
    pub fn cpu_per_million(&self, role: &str) -> Option<f64> {
        let p = self.processes.iter().find(|p| p.role == role)?;
        Some(p.cpu_seconds? / (self.produced.max(1) as f64 / 1e6))
    }

    /// CPU-seconds per million of the pipeline's own processes (everything but the broker).
    pub fn pipeline_cpu_per_million(&self) -> Option<f64> {
        let mut total = 0.0;
        for p in self.processes.iter().filter(|p| p.role != ROLE_BROKER) {
            total += p.cpu_seconds?;
        }
        Some(total / (self.produced.max(1) as f64 / 1e6))
    }

    /// Peak RSS of the process in `role`, MiB.
    pub fn peak_rss(&self, role: &str) -> Option<f64> {
        self.processes.iter().find(|p| p.role == role)?.peak_rss_mib
    }

    /// Every produced event stored exactly once.
    pub fn exact(&self) -> bool {
        self.stored == self.produced && self.distinct == self.produced
    }
}

/// Role names of measured processes.
pub const ROLE_PENSTOCK: &str = "penstock";
/// The ClickHouse server.
pub const ROLE_CLICKHOUSE: &str = "clickhouse-server";
/// The Kafka broker.
pub const ROLE_BROKER: &str = "broker";

/// Latency of one of the seed's queries against one pattern's table.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Pattern whose table was queried.
    pub pattern: String,
    /// `Q1`, `Q2`, `Q3`.
    pub query: String,
    /// Median over the runs, ms.
    pub median_ms: f64,
    /// Slowest run, ms.
    pub max_ms: f64,
    /// Runs.
    pub runs: usize,
    /// Rows in the table when queried.
    pub table_rows: u64,
}

/// Everything one `penstock bench` run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchReport {
    /// Machine, versions, command.
    pub environment: Environment,
    /// Broker ceilings.
    pub ceilings: Ceilings,
    /// One per scenario and pattern, in the order run.
    pub runs: Vec<RunResult>,
    /// Q1/Q2/Q3 latencies after the backlog drain.
    pub queries: Vec<QueryResult>,
    /// Seconds at the start of each fixed-rate run left out of the percentiles.
    pub warmup_seconds: f64,
    /// Each pattern's name and how it was set up.
    pub pattern_notes: Vec<(String, String)>,
}

/// Writes `report.md`, `runs.csv`, `samples.csv`, one `freshness-<scenario>.svg` per
/// fixed-rate scenario and `throughput-cpu.svg` into `dir`; returns the files written.
pub fn write_all(report: &BenchReport, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let mut put = |name: String, text: String| -> std::io::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        files.push(path);
        Ok(())
    };
    put("report.md".into(), markdown(report))?;
    put("runs.csv".into(), runs_csv(report))?;
    put("samples.csv".into(), samples_csv(report))?;
    for scenario in scenarios(report) {
        if let Scenario::Rate(_) = scenario {
            put(format!("freshness-{}.svg", scenario.slug()), freshness_chart(report, scenario))?;
        }
    }
    put("throughput-cpu.svg".into(), throughput_cpu_chart(report))?;
    Ok(files)
}

/// The scenarios of a report, in the order run.
pub fn scenarios(report: &BenchReport) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::new();
    for r in &report.runs {
        if !out.contains(&r.scenario) {
            out.push(r.scenario);
        }
    }
    out
}

/// The patterns of a report, in the order first run.
pub fn patterns(report: &BenchReport) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &report.runs {
        if !out.contains(&r.pattern) {
            out.push(r.pattern.clone());
        }
    }
    out
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
