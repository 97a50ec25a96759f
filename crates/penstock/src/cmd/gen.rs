//! `penstock gen`: produce the seed benchmark's `transactions` events to a topic.

use penstock_bench::gen::{self, GenPlan, GenProgress, Limit, Mix, ProducerSettings};
use penstock_config::units::{parse_duration, parse_size};
use penstock_kafka::CountingProducer;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `penstock gen`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenArgs {
    /// Bootstrap servers.
    #[arg(long, env = "PENSTOCK_KAFKA_BROKERS")]
    brokers: String,
    /// Topic to produce to.
    #[arg(long, default_value = "transactions")]
    topic: String,
    /// Number of messages (default 1,000,000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Produce for this long instead, e.g. `30s`, `5m`.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Target messages per second over all threads (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Producer threads generating events.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Acknowledgements the broker gives: all, 1 or 0 (not all turns idempotence off).
    #[arg(long)]
    acks: Option<String>,
    /// Batch compression: none, gzip, snappy or lz4.
    #[arg(long)]
    compression: Option<String>,
    /// How long the producer waits to fill a batch, e.g. `5ms` (librdkafka linger.ms).
    #[arg(long, value_parser = parse_duration)]
    linger: Option<Duration>,
    /// Largest producer batch, e.g. `1MiB` (librdkafka batch.size).
    #[arg(long, value_parser = parse_size)]
    batch_size: Option<u64>,
    /// Fraction of messages that re-send the previous event (same event_id), 0–1.
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Fraction of messages that are malformed (truncated, not JSON, wrong type, missing event_id), 0–1.
    #[arg(long, default_value_t = 0.0)]
    malformed: f64,
    /// Fraction of events whose event_time lies in the past (out of order), 0–1.
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    /// How late a late event is at most, e.g. `5m`.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    late_by: Duration,
    /// Seed: the same seed and thread count produce the same messages.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    create_partitions: Option<i32>,
    /// Extra producer properties, `key=value` (repeatable).
    #[arg(long = "property", value_parser = parse_kv)]
    properties: Vec<(String, String)>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not key=value"))
}

pub(crate) async fn gen(args: GenArgs) -> anyhow::Result<ExitCode> {
    let mix = Mix { duplicates: args.duplicates, malformed: args.malformed, late: args.late, late_by: args.late_by };
    let settings = ProducerSettings {
        acks: args.acks.clone(),
        compression: args.compression.clone(),
        linger: args.linger,
        batch_size: args.batch_size,
        properties: args.properties.clone(),
    };
    let properties = match mix.validate().and_then(|()| settings.properties()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.threads == 0 {
        eprintln!("error: --threads 0: at least one producer thread is needed");
        return Ok(ExitCode::from(2));
    }
    if let Some(partitions) = args.create_partitions {
        penstock_kafka::metadata::ensure_topic(&args.brokers, &args.topic, partitions, Duration::from_secs(10)).await?;
    } else {
        // Fail now, not after librdkafka's message timeout, when the topic is missing.
        let (brokers, topic) = (args.brokers.clone(), args.topic.clone());
        let found = tokio::task::spawn_blocking(move || {
            penstock_kafka::MetadataClient::new(&brokers, &[], Duration::from_secs(10))?.topics(&[topic])
        })
        .await?;
        match found {
            Ok(_) => {}
            Err(e @ penstock_kafka::KafkaEdgeError::NoSuchTopic { .. }) => {
                eprintln!("error: {e} (pass --create-partitions N to create it)");
                return Ok(ExitCode::from(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let plan = GenPlan {
        topic: args.topic.clone(),
        limit: match (args.count, args.duration) {
            (_, Some(d)) => Limit::Duration(d),
            (Some(n), None) => Limit::Count(n),
            (None, None) => Limit::Count(1_000_000),
        },
        rate: args.rate,
        threads: args.threads,
        seed: args.seed,
        mix,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    let brokers = args.brokers.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<ExitCode> {
        let producer = CountingProducer::new(&brokers, &properties)?;
        let mut bar = ProgressLine::new(std::io::stderr().is_terminal());
        let report = gen::produce(&producer, &plan, &stop, |p| bar.update(p))?;
        bar.finish();
        let rate = match report.rate_error_percent() {
            Some(err) => format!(" (target {}/s, {err:+.1} %)", report.target_rate),
            None => String::new(),
        };
        println!(
            "gen: {} messages delivered to {}, {} failed, in {:.1} s: {:.0}/s while sending{rate}, {:.0}/s acknowledged",
            report.delivered,
            plan.topic,
            report.failed,
            report.total_time.as_secs_f64(),
            report.send_rate(),
            report.delivered_rate(),
        );
        if report.duplicates + report.malformed + report.late > 0 {
            println!(
                "gen: of which {} duplicates, {} malformed, {} late events",
                report.duplicates, report.malformed, report.late
            );
        }
        let complete = report.failed == 0 && report.delivered == report.sent;
        Ok(if complete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
    .await?
}

/// A progress bar on a terminal (count or time, with the live rate); a line every 5 s
/// otherwise.
struct ProgressLine {
    tty: bool,
    last: Option<(Duration, u64)>,
    shown_at: Duration,
    rate: f64,
}

impl ProgressLine {
    fn new(tty: bool) -> Self {
        ProgressLine { tty, last: None, shown_at: Duration::ZERO, rate: 0.0 }
    }

    fn update(&mut self, p: &GenProgress) {
        let every = if self.tty { Duration::from_millis(250) } else { Duration::from_secs(5) };
        if p.elapsed < self.shown_at + every {
            return;
        }
        if let Some((t, n)) = self.last {
            let dt = (p.elapsed - t).as_secs_f64();
            if dt > 0.0 {
                self.rate = (p.sent - n) as f64 / dt;
            }
        }
        self.last = Some((p.elapsed, p.sent));
        self.shown_at = p.elapsed;
        let fraction = match (p.planned, p.duration) {
            (Some(n), _) if n > 0 => p.sent as f64 / n as f64,
            (_, Some(d)) => p.elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9),
            _ => 0.0,
        }
        .min(1.0);
        let total = p.planned.map_or(String::new(), |n| format!("/{n}"));
        let text = format!(
            "{} sent{total}, {} acknowledged, {:.0} msg/s, {:.0} s",
            p.sent,
            p.delivered,
            self.rate,
            p.elapsed.as_secs_f64()
        );
        if self.tty {
            let width = 30;
            let done = (fraction * width as f64) as usize;
            eprint!("\rgen [{}{}] {text}   ", "#".repeat(done), " ".repeat(width - done));
        } else {
            eprintln!("gen: {text}");
        }
    }

    fn finish(&self) {
        if self.tty && self.last.is_some() {
            eprintln!();
        }
    }
}
