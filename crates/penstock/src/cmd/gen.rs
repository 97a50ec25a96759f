//! `penstock gen`: produce the seed benchmark's `transactions` events.

use penstock::generator::TransactionGenerator;
use penstock_codec::Timestamp;
use penstock_kafka::CountingProducer;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Arguments of `penstock gen`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenArgs {
    /// Bootstrap servers.
    #[arg(long, env = "PENSTOCK_KAFKA_BROKERS")]
    brokers: String,
    /// Topic to produce to.
    #[arg(long, default_value = "transactions")]
    topic: String,
    /// Number of events.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Target events per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seed for reproducible events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    create_partitions: Option<i32>,
    /// Extra producer properties, `key=value` (repeatable), e.g. `compression.type=lz4`.
    #[arg(long = "property", value_parser = parse_kv)]
    properties: Vec<(String, String)>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not key=value"))
}

pub(crate) async fn gen(args: GenArgs) -> anyhow::Result<ExitCode> {
    if let Some(partitions) = args.create_partitions {
        penstock_kafka::metadata::ensure_topic(&args.brokers, &args.topic, partitions, Duration::from_secs(10)).await?;
    }
    tokio::task::spawn_blocking(move || produce(&args)).await?
}

fn produce(args: &GenArgs) -> anyhow::Result<ExitCode> {
    let producer = CountingProducer::new(&args.brokers, &args.properties)?;
    let mut generator = TransactionGenerator::new(args.seed);
    let (mut json, mut key) = (String::new(), String::new());
    let start = Instant::now();
    let mut last_report = start;
    for i in 0..args.count {
        if args.rate > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / args.rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let now = Timestamp { secs: wall.as_secs() as i64, nanos: wall.subsec_nanos() };
        let _ = generator.next_into(now, &mut json, &mut key);
        producer.send(&args.topic, key.as_bytes(), json.as_bytes(), None)?;
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            let delivered = producer.counts().delivered.load(Ordering::Relaxed);
            eprintln!(
                "gen: {} of {} sent, {delivered} delivered, {:.0} events/s",
                i + 1,
                args.count,
                (i + 1) as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let delivered = producer.counts().delivered.load(Ordering::Relaxed);
    let failed = producer.counts().failed.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "gen: {delivered} events delivered to {}, {failed} failed, in {secs:.1}s ({:.0} events/s)",
        args.topic,
        delivered as f64 / secs
    );
    Ok(if failed == 0 && delivered == args.count { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
