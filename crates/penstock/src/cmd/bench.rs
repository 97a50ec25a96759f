//! `penstock bench`: Penstock side by side with ClickHouse's Kafka engine on the same
//! broker, topics and data (see `penstock_bench::run`).

use penstock_bench::gen::ProducerSettings;
use penstock_bench::patterns::PatternKind;
use penstock_bench::report::{readings, Verdict};
use penstock_bench::run::{BenchPlan, ServicesChoice};
use penstock_config::units::parse_duration;
use penstock_testkit::Storage;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `penstock bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Directory for report.md, runs.csv, samples.csv, the SVG charts and each run's logs
    /// (default: bench-results/<UTC time>).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Fixed rates in events per second, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,25000,50000")]
    rates: Vec<u64>,
    /// How long each fixed-rate run produces.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    duration: Duration,
    /// Events in the backlog-drain run (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    drain: u64,
    /// Patterns to run, comma-separated: kafka-engine, kafka-engine-tuned, penstock, penstock-tuned,
    /// penstock-transforms (the defaults plus a computed column and a filter), penstock-dedup (the defaults plus dedup by event_id; neither run unless named).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kafka-engine,kafka-engine-tuned,penstock,penstock-tuned",
        value_parser = PatternKind::parse
    )]
    patterns: Vec<PatternKind>,
    /// Broker storage when starting one: memory (throughput; the default) or sqlite.
    #[arg(long, default_value = "memory", value_parser = parse_storage)]
    storage: Storage,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// `penstock gen` producer threads.
    #[arg(long, default_value_t = 2)]
    gen_threads: usize,
    /// Seconds at the start of each fixed-rate run left out of the freshness percentiles.
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    warmup: Duration,
    /// Timed runs of each of the seed's queries.
    #[arg(long, default_value_t = 5)]
    query_runs: usize,
    /// Use this broker instead of starting one (with --clickhouse).
    #[arg(long, requires = "clickhouse")]
    brokers: Option<String>,
    /// Use this ClickHouse (HTTP URL) instead of starting one (with --brokers). Its Kafka
    /// engine must reach the broker.
    #[arg(long, requires = "brokers")]
    clickhouse: Option<String>,
    /// PID of the given broker, to measure its CPU.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// PID of the given ClickHouse server, to measure its CPU.
    #[arg(long)]
    clickhouse_pid: Option<u32>,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_storage(s: &str) -> Result<Storage, String> {
    match s {
        "memory" => Ok(Storage::Memory),
        "sqlite" => Ok(Storage::Sqlite),
        other => Err(format!("`{other}`: expected memory or sqlite")),
    }
}

/// How long an interrupted bench waits for its run to stop its services.
const ABORT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.rates.contains(&0) {
        eprintln!("error: --rates: a fixed rate must be above 0 (the drain measures unlimited speed)");
        return Ok(ExitCode::from(2));
    }
    let results = args.results.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        PathBuf::from(format!("bench-results/{secs}"))
    });
    let services = match (&args.brokers, &args.clickhouse) {
        (Some(b), Some(c)) => ServicesChoice::Given {
            brokers: b.clone(),
            clickhouse: c.clone(),
            broker_pid: args.broker_pid,
            clickhouse_pid: args.clickhouse_pid,
        },
        _ => ServicesChoice::Start(args.storage),
    };
    let plan = BenchPlan {
        rates: args.rates.clone(),
        duration: args.duration,
        drain: args.drain,
        patterns: args.patterns.clone(),
        partitions: args.partitions,
        gen_threads: args.gen_threads.max(1),
        warmup: args.warmup,
        query_runs: args.query_runs,
        results: results.clone(),
        penstock_exe: std::env::current_exe()?,
        seed: args.seed,
        producer: ProducerSettings::default().properties().map_err(anyhow::Error::msg)?,
        services,
        command: std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" "),
    };
    // The run is a task of its own, so Ctrl-C is seen at once even while the run is in a
    // blocking call; it then drops the run at its next await (its services and any
    // `penstock run` child stop with it) and exits within ABORT_LIMIT regardless. What
    // was measured so far is already in the results directory.
    let mut run = tokio::spawn(penstock_bench::run::run(plan, Box::new(|line: &str| eprintln!("bench: {line}"))));
    let report = tokio::select! {
        r = &mut run => r??,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("bench: interrupted; partial results in {}", results.display());
            run.abort();
            let _ = tokio::time::timeout(ABORT_LIMIT, run).await;
            return Ok(ExitCode::from(130));
        }
    };
    println!("report: {}", results.join("report.md").display());
    for b in readings(&report) {
        let verdict = match b.verdict {
            Verdict::Met => "met".to_string(),
            Verdict::Missed => format!("MISSED by {}", b.gap.unwrap_or_default()),
            Verdict::NotMeasured => "not measured".to_string(),
        };
        println!("  {}: {} — {verdict}", b.bar, b.measured);
    }
    Ok(ExitCode::SUCCESS)
}
