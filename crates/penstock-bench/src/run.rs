//! `penstock bench`: runs every pattern against the same topics and data, one after
//! the other (so each process's CPU is its own), and collects a [`BenchReport`].
//!
//! Order: broker ceilings (raw produce, `penstock gen` unlimited, raw consume) → each
//! fixed rate × each pattern (a topic per run, same seed, so the same events) → the
//! backlog drain × each pattern (one topic, a group per pattern) → the seed's queries
//! on the drained tables. The report is rewritten after every run, so an interrupted
//! benchmark still leaves what it measured.

use crate::ceiling;
use crate::gen::{self, GenPlan, GenReport, Limit, Mix};
use crate::measure::{self, procfs, ProcessMeter};
use crate::patterns::{self, kafka_engine, penstock, PatternKind};
use crate::report::{
    self, BenchReport, Ceilings, Environment, ProcessCost, QueryResult, RunResult, Sample, Scenario, ROLE_BROKER,
    ROLE_CLICKHOUSE, ROLE_PENSTOCK,
};
use anyhow::{anyhow, Context};
use penstock_clickhouse::ClickHouseClient;
use penstock_codec::Timestamp;
use penstock_kafka::CountingProducer;
use penstock_testkit::{Services, Storage};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Services to measure against.
#[derive(Debug, Clone)]
pub enum ServicesChoice {
    /// Start a Tansu broker with this storage and a ClickHouse server on loopback.
    Start(Storage),
    /// Use running ones; CPU is measured only for the PIDs given.
    Given {
        /// Bootstrap servers.
        brokers: String,
        /// ClickHouse HTTP URL.
        clickhouse: String,
        /// The broker's PID.
        broker_pid: Option<u32>,
        /// The ClickHouse server's PID.
        clickhouse_pid: Option<u32>,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Fixed rates, events per second.
    pub rates: Vec<u64>,
    /// How long each fixed-rate run produces.
    pub duration: Duration,
    /// Backlog size for the drain (0: no drain).
    pub drain: u64,
    /// Patterns, in order.
    pub patterns: Vec<PatternKind>,
    /// Partitions of every topic.
    pub partitions: u32,
    /// `penstock gen` producer threads.
    pub gen_threads: usize,
    /// Left out of the freshness percentiles at the start of each fixed-rate run.
    pub warmup: Duration,
    /// Timed runs of each seed query.
    pub query_runs: usize,
    /// Results directory.
    pub results: PathBuf,
    /// The `penstock` executable to run the Penstock patterns with.
    pub penstock_exe: PathBuf,
    /// Generator seed.
    pub seed: u64,
    /// Producer properties for every producer of the run.
    pub producer: Vec<(String, String)>,
    /// Services.
    pub services: ServicesChoice,
    /// The command line, for the report.
    pub command: String,
}

/// Messages used for the ceilings when there is no drain.
const CEILING_MESSAGES: u64 = 500_000;
/// How long rows may take to become visible after the generator stopped.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// How long a backlog drain may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(900);

struct Bench {
    plan: BenchPlan,
    services: Option<Services>,
    brokers: String,
    clickhouse_url: String,
    client: ClickHouseClient,
    run_id: String,
    report: BenchReport,
    say: Box<dyn Fn(&str) + Send + Sync>,
}

/// Runs the benchmark, printing progress through `say`, writing the report files into
/// `plan.results` as it goes; returns the report.
pub async fn run(plan: BenchPlan, say: Box<dyn Fn(&str) + Send + Sync>) -> anyhow::Result<BenchReport> {
    let mut bench = Bench::start(plan, say).await?;
    let result = bench.run_all().await;
    bench.write()?;
    if let Some(s) = bench.services.take() {
        tokio::task::spawn_blocking(move || drop(s)).await?;
    }
    result.map(|()| bench.report)
}

impl Bench {
    async fn start(plan: BenchPlan, say: Box<dyn Fn(&str) + Send + Sync>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(plan.results.join("logs"))
            .with_context(|| format!("cannot create {}", plan.results.display()))?;
        let (services, brokers, clickhouse_url) = match &plan.services {
            ServicesChoice::Start(storage) => {
                let storage = *storage;
                say(&format!("starting a Tansu broker ({} storage) and a ClickHouse server", storage.name()));
                let s = tokio::task::spawn_blocking(move || Services::start_for_bench(storage))
                    .await?
                    .context("starting the services")?;
                let (b, c) = (s.kafka.bootstrap(), s.clickhouse.url());
                (Some(s), b, c)
            }
            ServicesChoice::Given { brokers, clickhouse, .. } => (None, brokers.clone(), clickhouse.clone()),
        };
        let client = ClickHouseClient::new(&clickhouse_url, "default", None, Duration::from_secs(60));
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut bench = Bench {
            run_id: format!("{}", secs % 1_000_000),
            report: BenchReport {
                warmup_seconds: plan.warmup.as_secs_f64(),
                pattern_notes: plan.patterns.iter().map(|p| (p.name().to_string(), p.describe())).collect(),
                ..BenchReport::default()
            },
            plan,
            services,
            brokers,
            clickhouse_url,
            client,
            say,
        };
        bench.report.environment = bench.environment().await?;
        Ok(bench)
    }

    async fn environment(&mut self) -> anyhow::Result<Environment> {
        let (cpu, cores, memory_gib, os) = crate::environment::this_machine();
        let clickhouse = self.client.server_version().await.context("ClickHouse did not answer")?;
        let (broker, storage, kafka_engine_librdkafka) = match &self.services {
            Some(s) => (
                s.kafka.version(),
                match s.kafka.storage() {
                    Storage::Memory => "memory (throughput runs; correctness tests use sqlite)".to_string(),
                    Storage::Sqlite => "sqlite".to_string(),
                },
                penstock_testkit::kafka_engine_librdkafka()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
            ),
            None => (format!("given at {}", self.brokers), "as configured".to_string(), None),
        };
        Ok(Environment {
            command: self.plan.command.clone(),
            started_at: iso_now(),
            cpu,
            cores,
            memory_gib,
            os,
            penstock: env!("CARGO_PKG_VERSION").to_string(),
            librdkafka: penstock_kafka::rdkafka::util::get_rdkafka_version().1,
            clickhouse,
            broker,
            storage,
            kafka_engine_librdkafka,
            partitions: self.plan.partitions,
            event_bytes: 0.0,
        })
    }

    fn write(&self) -> anyhow::Result<()> {
        report::write_all(&self.report, &self.plan.results)
            .with_context(|| format!("writing the report into {}", self.plan.results.display()))?;
        Ok(())
    }

    async fn run_all(&mut self) -> anyhow::Result<()> {
        let drained = self.ceilings().await?;
        self.write()?;
        let patterns = self.plan.patterns.clone();
        for rate in self.plan.rates.clone() {
            for &pattern in &patterns {
                let topic = format!("bench-{}-rate-{rate}-{}", self.run_id, pattern.name());
                self.topic(&topic).await?;
                let gen = GenPlan {
                    topic: topic.clone(),
                    limit: Limit::Duration(self.plan.duration),
                    rate,
                    threads: self.plan.gen_threads,
                    seed: self.plan.seed,
                    mix: Mix::default(),
                };
                let run = self.run_pattern(Scenario::Rate(rate), pattern, &topic, Some(gen), 0).await?;
                self.report.runs.push(run);
                self.write()?;
            }
        }
        if self.plan.drain > 0 {
            let topic = self.drain_topic();
            let mut databases = Vec::new();
            for &pattern in &patterns {
                let run = self.run_pattern(Scenario::Drain(self.plan.drain), pattern, &topic, None, drained).await?;
                databases.push((pattern, self.database(pattern, run.scenario)));
                self.report.runs.push(run);
                self.write()?;
            }
            for (pattern, db) in databases {
                self.queries(pattern, &db).await?;
            }
        }
        Ok(())
    }

    fn drain_topic(&self) -> String {
        format!("bench-{}-drain", self.run_id)
    }

    fn database(&self, pattern: PatternKind, scenario: Scenario) -> String {
        format!("bench_{}_{}_{}", self.run_id, pattern.name().replace('-', "_"), scenario.slug().replace('-', "_"))
    }

    async fn topic(&self, name: &str) -> anyhow::Result<()> {
        penstock_kafka::metadata::ensure_topic(
            &self.brokers,
            name,
            self.plan.partitions as i32,
            Duration::from_secs(30),
        )
        .await
        .with_context(|| format!("creating topic {name}"))
    }

    /// Raw produce, `penstock gen` unlimited (filling the drain topic), raw consume.
    /// Returns the number of events in the drain topic.
    async fn ceilings(&mut self) -> anyhow::Result<u64> {
        let n = if self.plan.drain > 0 { self.plan.drain } else { CEILING_MESSAGES };
        let raw_topic = format!("bench-{}-raw", self.run_id);
        let drain_topic = self.drain_topic();
        self.topic(&raw_topic).await?;
        self.topic(&drain_topic).await?;
        let (brokers, props, threads, seed) =
            (self.brokers.clone(), self.plan.producer.clone(), self.plan.gen_threads, self.plan.seed);
        (self.say)(&format!("ceilings: raw produce of {n} prepared messages, {threads} thread(s)"));
        let raw = {
            let (brokers, props, topic) = (brokers.clone(), props.clone(), raw_topic.clone());
            tokio::task::spawn_blocking(move || {
                // A first, unmeasured round: connections, metadata and the broker's
                // topic structures are set up before either producer is timed.
                let warm = CountingProducer::new(&brokers, &props)?;
                ceiling::raw_produce(&warm, &topic, (n / 10).max(10_000), threads)?;
                let producer = CountingProducer::new(&brokers, &props)?;
                ceiling::raw_produce(&producer, &topic, n, threads)
            })
            .await??
        };
        (self.say)(&format!("ceilings: penstock gen, unlimited, {n} events, {threads} thread(s)"));
        let gen: GenReport = {
            let (brokers, props, topic) = (brokers.clone(), props.clone(), drain_topic.clone());
            tokio::task::spawn_blocking(move || {
                let producer = CountingProducer::new(&brokers, &props)?;
                let plan = GenPlan { topic, limit: Limit::Count(n), rate: 0, threads, seed, mix: Mix::default() };
                gen::produce(&producer, &plan, &AtomicBool::new(false), |_| {})
            })
            .await??
        };
        (self.say)("ceilings: raw consume");
        // The raw topic holds the warm-up round too: consume all of it.
        let expected = raw.messages + (n / 10).max(10_000);
        let consume = tokio::task::spawn_blocking(move || {
            ceiling::raw_consume(&brokers, &raw_topic, expected, Duration::from_secs(300))
        })
        .await??;
        self.report.environment.event_bytes = raw.mean_bytes;
        self.report.ceilings = Ceilings {
            raw_produce_rate: raw.per_second(),
            gen_rate: gen.delivered_rate(),
            gen_threads: threads,
            raw_consume_rate: consume.per_second(),
            raw_consume_cpu_per_million: consume.cpu_per_million,
            messages: n,
        };
        (self.say)(&format!(
            "ceilings: raw produce {:.0}/s, gen {:.0}/s, raw consume {:.0}/s",
            raw.per_second(),
            gen.delivered_rate(),
            consume.per_second()
        ));
        Ok(gen.delivered)
    }

    fn clickhouse_pid(&mut self) -> Option<u32> {
        match (&mut self.services, &self.plan.services) {
            (Some(s), _) => s.clickhouse.process().pid(),
            (None, ServicesChoice::Given { clickhouse_pid, .. }) => *clickhouse_pid,
            (None, ServicesChoice::Start(_)) => None,
        }
    }

    fn broker_pid(&mut self) -> Option<u32> {
        match (&mut self.services, &self.plan.services) {
            (Some(s), _) => s.kafka.process().pid(),
            (None, ServicesChoice::Given { broker_pid, .. }) => *broker_pid,
            (None, ServicesChoice::Start(_)) => None,
        }
    }

    /// Rows visible in `db.transactions` and, when `newest`, the newest event time among
    /// them (epoch ms).
    async fn visible(&self, db: &str, newest: bool) -> Option<(u64, Option<i64>)> {
        let text = self.client.query(&sampling_query(db, newest)).await.ok()?;
        parse_visible(&text)
    }

    async fn run_pattern(
        &mut self,
        scenario: Scenario,
        pattern: PatternKind,
        topic: &str,
        produce: Option<GenPlan>,
        backlog: u64,
    ) -> anyhow::Result<RunResult> {
        let db = self.database(pattern, scenario);
        (self.say)(&format!("{scenario} / {}: starting", pattern.name()));
        self.client.query(&format!("CREATE DATABASE `{db}`")).await?;
        self.client.query(&patterns::create_table_sql(&db)).await?;
        let mut child = None;
        match pattern {
            PatternKind::KafkaEngine | PatternKind::KafkaEngineTuned => {
                let block = (pattern == PatternKind::KafkaEngineTuned).then_some(kafka_engine::TUNED_BLOCK_SIZE);
                kafka_engine::start(&self.client, &db, &self.brokers, topic, &db, block)
                    .await
                    .context("Kafka engine")?
            }
            PatternKind::Penstock
            | PatternKind::PenstockTuned
            | PatternKind::PenstockTransforms
            | PatternKind::PenstockDedup => {
                let settings = match pattern {
                    PatternKind::PenstockTuned => penstock::Settings::tuned(),
                    PatternKind::PenstockTransforms => penstock::Settings::with_transforms(),
                    PatternKind::PenstockDedup => penstock::Settings::with_dedup(),
                    _ => penstock::Settings::defaults(),
                };
                let state_dir = self.plan.results.join("logs").join(format!("{db}-state"));
                let state_dir = state_dir.to_string_lossy();
                let endpoints = penstock::Endpoints {
                    brokers: &self.brokers,
                    topic,
                    group: &db,
                    clickhouse: &self.clickhouse_url,
                    database: &db,
                    state_dir: &state_dir,
                };
                let pipeline = self.plan.results.join("logs").join(format!("{db}.yaml"));
                std::fs::write(&pipeline, penstock::pipeline_yaml(&db, &endpoints, &settings))?;
                let log = self.plan.results.join("logs").join(format!("{db}.log"));
                let port = penstock_testkit::free_port();
                let mut c = penstock::spawn(&self.plan.penstock_exe, &pipeline, port, &log)
                    .with_context(|| format!("starting {}", self.plan.penstock_exe.display()))?;
                if let Err(e) = penstock::wait_ready(&mut c, port, Duration::from_secs(60)).await {
                    penstock::stop(&mut c).await;
                    return Err(anyhow!("{e}; its log: {}", log.display()));
                }
                child = Some(penstock::KillOnDrop(c));
            }
        }
        let mut meters = Vec::new();
        if let Some(c) = &child {
            meters.push(ProcessMeter::start(ROLE_PENSTOCK, c.0.id()));
        }
        if let Some(pid) = self.clickhouse_pid() {
            meters.push(ProcessMeter::start(ROLE_CLICKHOUSE, pid));
        }
        if let Some(pid) = self.broker_pid() {
            meters.push(ProcessMeter::start(ROLE_BROKER, pid));
        }

        let t0 = Instant::now();
        let producer = Arc::new(CountingProducer::new(&self.brokers, &self.plan.producer)?);
        let producing = produce.is_some();
        let mut gen_task = produce.map(|plan| {
            let p = producer.clone();
            tokio::task::spawn_blocking(move || gen::produce(&p, &plan, &AtomicBool::new(false), |_| {}))
        });
        let mut gen_report: Option<GenReport> = None;
        let mut gen_end = None;
        let mut samples = Vec::new();
        let mut all_visible_at = None;
        let mut note = None;
        // Fixed rates: a freshness sample every 500 ms. Drains: only the row count, which
        // ClickHouse answers from part metadata, every 100 ms for a precise end time.
        let every = if producing { Duration::from_millis(500) } else { Duration::from_millis(100) };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for m in &mut meters {
                m.sample();
            }
            let t = t0.elapsed().as_secs_f64();
            if gen_task.as_ref().is_some_and(|h| h.is_finished()) {
                let r = gen_task.take().expect("checked").await??;
                gen_report = Some(r);
                gen_end = Some(t);
            }
            let delivered_now = if producing { producer.counts().delivered.load(Ordering::Relaxed) } else { backlog };
            let (visible, newest) = self.visible(&db, producing).await.unwrap_or((0, None));
            // While nothing is visible, the newest visible event is older than the first
            // one produced: the time since production started is a lower bound.
            let freshness_ms = match (producing, newest) {
                (false, _) => None,
                (true, Some(n)) => Some((epoch_ms() - n) as f64),
                (true, None) => Some(t * 1000.0),
            };
            samples.push(Sample { t, freshness_ms, visible, behind: delivered_now.saturating_sub(visible) });
            let target = if producing { gen_report.as_ref().map(|r| r.delivered) } else { Some(backlog) };
            if let Some(total) = target {
                if visible >= total {
                    all_visible_at = Some(t);
                    break;
                }
            }
            let limit = if producing {
                gen_end.map(|e| e + SETTLE_LIMIT.as_secs_f64())
            } else {
                Some(DRAIN_LIMIT.as_secs_f64())
            };
            if limit.is_some_and(|l| t > l) {
                note = Some(format!("gave up after {t:.0} s with {visible} of {} rows visible", target.unwrap_or(0)));
                break;
            }
            if child.as_mut().is_some_and(|c| matches!(c.0.try_wait(), Ok(Some(_)))) {
                note = Some("penstock exited before every row was visible".to_string());
                break;
            }
        }
        if let Some(h) = gen_task.take() {
            gen_report = Some(h.await??);
        }
        for m in &mut meters {
            m.sample();
            if m.role == ROLE_PENSTOCK {
                m.include_lifetime_peak();
            }
        }
        let end = t0.elapsed().as_secs_f64();
        self.stop_pattern(pattern, &db, child.as_mut().map(|c| &mut c.0)).await?;

        let counts = self
            .client
            .query(&format!("SELECT count(), uniqExact(event_id) FROM `{db}`.transactions FORMAT TabSeparated"))
            .await?;
        let mut parts = counts.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
        let (stored, distinct) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let produced = gen_report.as_ref().map_or(backlog, |r| r.delivered);
        let elapsed = all_visible_at.unwrap_or(end);
        let window_end = gen_end.unwrap_or(f64::MAX);
        let steady: Vec<&Sample> =
            samples.iter().filter(|s| s.t >= self.plan.warmup.as_secs_f64() && s.t <= window_end).collect();
        let fresh: Vec<f64> = steady.iter().filter_map(|s| s.freshness_ms).collect();
        let behind: Vec<f64> = steady.iter().map(|s| s.behind as f64).collect();
        let ticks = procfs::ticks_per_second();
        let run = RunResult {
            scenario,
            pattern: pattern.name().to_string(),
            produced,
            stored,
            distinct,
            gen_rate: gen_report.as_ref().map(GenReport::send_rate),
            throughput: produced as f64 / elapsed.max(1e-9),
            elapsed,
            freshness: if producing { measure::summarize(&fresh) } else { None },
            lag: if producing { measure::summarize(&behind) } else { None },
            samples,
            processes: meters
                .iter()
                .map(|m| ProcessCost {
                    role: m.role.clone(),
                    cpu_seconds: m.cpu_seconds(ticks),
                    peak_rss_mib: Some(m.peak_rss_mib()),
                })
                .collect(),
            note,
        };
        (self.say)(&format!(
            "{scenario} / {}: {} of {} rows in {:.1} s{}{}",
            pattern.name(),
            run.stored,
            run.produced,
            run.elapsed,
            run.freshness.map_or(String::new(), |f| format!(", freshness p50 {:.0} ms p99 {:.0} ms", f.p50, f.p99)),
            run.cpu_per_million(ROLE_PENSTOCK).map_or(String::new(), |c| format!(", Penstock {c:.2} CPU-s/M")),
        ));
        Ok(run)
    }

    async fn stop_pattern(
        &mut self,
        pattern: PatternKind,
        db: &str,
        child: Option<&mut std::process::Child>,
    ) -> anyhow::Result<()> {
        if let Some(c) = child {
            penstock::stop(c).await;
        }
        if !pattern.is_kafka_engine() {
            return Ok(());
        }
        kafka_engine::stop(&self.client, db).await?;
        // The Kafka table's consumer keeps fetching until the server forgets the table;
        // a server of our own restarts without it (see kafka_engine's docs).
        if let Some(mut s) = self.services.take() {
            let db = db.to_string();
            let s2 = tokio::task::spawn_blocking(move || -> std::io::Result<Services> {
                s.clickhouse.process().kill();
                let file = kafka_engine::metadata_file(&s.clickhouse.data_dir(), &db);
                std::fs::remove_file(&file)?;
                s.clickhouse.restart()?;
                Ok(s)
            })
            .await?
            .context("restarting ClickHouse without the Kafka table")?;
            self.services = Some(s2);
        }
        Ok(())
    }

    async fn queries(&mut self, pattern: PatternKind, db: &str) -> anyhow::Result<()> {
        let rows: u64 = self.client.query(&format!("SELECT count() FROM `{db}`.transactions")).await?.trim().parse()?;
        for (name, sql) in patterns::seed_queries(db) {
            self.client.query(&sql).await.with_context(|| format!("{name} on {db}"))?;
            let mut times = Vec::new();
            for _ in 0..self.plan.query_runs.max(1) {
                let t = Instant::now();
                self.client.query(&sql).await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let s = measure::summarize(&times).expect("at least one run");
            self.report.queries.push(QueryResult {
                pattern: pattern.name().to_string(),
                query: name.to_string(),
                median_ms: s.p50,
                max_ms: s.max,
                runs: times.len(),
                table_rows: rows,
            });
        }
        Ok(())
    }
}

/// The sampler's query. The newest event's text is looked up only in granules holding
/// the newest second (`event_ts`, 4 bytes a row, is scanned instead of the ≈ 24-byte
/// text), so sampling a table of millions of rows twice a second stays cheap for the
/// ClickHouse server whose CPU is being measured; the count comes from part metadata.
pub fn sampling_query(db: &str, newest: bool) -> String {
    let t = format!("`{db}`.transactions");
    if newest {
        format!(
            "SELECT (SELECT count() FROM {t}), \
             (SELECT max(event_time_text) FROM {t} PREWHERE event_ts >= (SELECT max(event_ts) FROM {t})) \
             FORMAT TabSeparated"
        )
    } else {
        format!("SELECT count(), '' FROM {t} FORMAT TabSeparated")
    }
}

/// Parses `count \t max(event_time_text)`; the time is `None` while the table is empty.
pub fn parse_visible(text: &str) -> Option<(u64, Option<i64>)> {
    let mut parts = text.trim_end_matches('\n').splitn(2, '\t');
    let count = parts.next()?.trim().parse().ok()?;
    let newest = parts.next().and_then(|t| penstock_codec::datetime::parse_timestamp(t.trim().as_bytes()));
    Some((count, newest.map(|ts| ts.secs * 1000 + i64::from(ts.nanos / 1_000_000))))
}

fn epoch_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn iso_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut s = String::new();
    penstock_codec::datetime::write_iso_millis(&mut s, Timestamp { secs: d.as_secs() as i64, nanos: d.subsec_nanos() });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_rows_and_newest_event_time() {
        assert_eq!(parse_visible("0\t\n"), Some((0, None)));
        assert_eq!(parse_visible("12345\t2026-11-21T12:52:54.929Z\n"), Some((12_345, Some(1_795_265_574_929))));
        assert_eq!(parse_visible("garbage"), None);
    }
}
