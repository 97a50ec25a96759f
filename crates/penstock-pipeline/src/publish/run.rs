//! Running a ClickHouse → Kafka publication: preflight, then producer sessions, each
//! starting with recovery from the output topic's tails.
//!
//! The loop runs on one blocking thread (librdkafka's producer is polled there, and
//! serves its delivery reports on it); ClickHouse queries are awaited on the runtime
//! from that thread. librdkafka sends a batch while the next is being read.

use crate::error::PipelineError;
use crate::failpoint;
use crate::publish::driver::{drive, finish, sessions, still_writer, Outcome};
use crate::publish::outbox::SessionEnded;
use crate::publish::reader::Reader;
use crate::publish::session::{KeyColumns, Session};
use crate::publish::stats::{PublishSnapshot, PublishStats};
use crate::publish::topic::{describe_topic, prepare_topic, KAFKA_TIMEOUT};
use crate::retry::{Next, RetryPolicy};
use crate::runner::RunOptions;
use crate::stop::{Stop, StopReason};
use penstock_codec::JsonRowEncoder;
use penstock_config::{Publication, SourceStart};
use penstock_kafka::{default_instance, read_tails, Publisher, WriterLease};
use penstock_protocol::{plan, Position, ResumePlan, Tail};
use penstock_stages::StreamRows;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait between two attempts of a failed read or a failed session.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// After a session ends, how long to wait before reading the tails: a produce request
/// the old session had already sent lands within this time (see docs/exactly-once.md,
/// "Kafka sink").
pub(crate) const SETTLE_AFTER_SESSION: Duration = Duration::from_secs(1);
/// Retries of the source's ClickHouse reads: the Kafka → ClickHouse policy, with the
/// publication's fixed backoff.
const READ_RETRY: RetryPolicy = RetryPolicy::fixed(Duration::from_millis(200), MAX_BACKOFF);

/// What `penstock check` reports about a publication.
#[derive(Debug, Clone)]
pub struct PublicationCheck {
    /// The relation's columns (name, type).
    pub columns: Vec<(String, String)>,
    /// Cursor columns with their types.
    pub cursor: Vec<(String, String)>,
    /// Partitions of the output topic, or `None` when it will be created.
    pub partitions: Option<usize>,
    /// Partitions it will be created with.
    pub create_partitions: Option<i32>,
}

/// The outcome of a publication run that ended cleanly.
#[derive(Debug, Clone)]
pub struct PublishSummary {
    /// Counters at the end.
    pub stats: PublishSnapshot,
    /// Why it ended.
    pub reason: StopReason,
    /// Wall time.
    pub elapsed: Duration,
}

/// Checks everything a run needs, changing nothing: the source, the cursor, the key
/// columns, the output topic.
pub async fn check(p: &Publication) -> Result<PublicationCheck, PipelineError> {
    let stats = Arc::new(PublishStats::default());
    let reader = Reader::open(&p.source, stats).await?;
    check_keys(p, reader.columns())?;
    filters(p, reader.columns())?;
    let partitions = describe_topic(&p.sink, &p.sink.topic, p.sink.create.is_some()).await?.map(|n| n as usize);
    Ok(PublicationCheck {
        columns: reader.columns().iter().map(|(n, t)| (n.clone(), t.to_string())).collect(),
        cursor: reader.cursor().columns().iter().map(|(n, t)| (n.clone(), t.to_string())).collect(),
        partitions,
        create_partitions: p.sink.create.as_ref().map(|c| c.partitions),
    })
}

fn check_keys(p: &Publication, columns: &[(String, penstock_codec::ColumnType)]) -> Result<(), PipelineError> {
    KeyColumns::find(&p.sink, columns.iter().map(|(n, _)| n.as_str())).map(drop).map_err(|missing| {
        PipelineError::Sink(format!(
            "key column(s) {} are not columns of the source (it has: {})",
            missing.join(", "),
            columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Reads the tails of every output partition and decides where to resume.
fn recover(p: &Publication, partitions: u32) -> Result<ResumePlan, PipelineError> {
    let s = &p.sink;
    let tails = read_tails(&s.brokers, &s.properties, &s.topic, partitions as usize, &p.name, KAFKA_TIMEOUT)?;
    let mut parsed = Vec::with_capacity(tails.len());
    for (partition, t) in tails.into_iter().enumerate() {
        let parse = |b: Option<Vec<u8>>, what: &str| -> Result<Option<Position>, PipelineError> {
            b.map(|b| Position::parse(&b)).transpose().map_err(|e| {
                PipelineError::Sink(format!("{}[{partition}]: the last message's {what} header: {e}", s.topic))
            })
        };
        parsed.push(Tail { position: parse(t.position, "position")?, floor: parse(t.floor, "floor")? });
    }
    let decided = plan(&parsed);
    tracing::info!(
        resume_after = %decided.resume_after.as_ref().map_or_else(|| "the beginning".into(), Position::to_header),
        floor = %decided.floor.as_ref().map_or_else(|| "none".into(), Position::to_header),
        tails = %parsed.iter().map(|t| t.position.as_ref().map_or_else(|| "-".into(), Position::to_header)).collect::<Vec<_>>().join(" "),
        "recovered from the output topic's tails"
    );
    Ok(decided)
}

/// Runs a publication until a signal, `--until-caught-up`, or a permanent failure.
pub async fn run_publication(
    p: Publication,
    opts: RunOptions,
    stop: Arc<Stop>,
) -> Result<PublishSummary, PipelineError> {
    let started = Instant::now();
    let stats = Arc::new(PublishStats::default());
    let reader = Reader::open(&p.source, stats.clone()).await?;
    check_keys(&p, reader.columns())?;
    let stages = filters(&p, reader.columns())?;
    let partitions = prepare_topic(&p.sink, &p.sink.topic, p.sink.create.as_ref()).await?;
    tracing::info!(
        pipeline = %p.name, source = %penstock_clickhouse::Cursor::from_sql(&p.source), topic = %p.sink.topic, partitions,
        cursor = ?p.source.cursor, settle = ?p.source.settle, "publication started"
    );
    if let Some(t) = &opts.telemetry {
        t.set_clickhouse_reachable(true);
    }
    let lease = join_lease(&p.sink, &p.name)?;
    let runtime = tokio::runtime::Handle::current();
    let name = p.name.clone();
    let work = {
        let (stop, stats, opts) = (stop.clone(), stats.clone(), opts.clone());
        move || Loop { p, reader, partitions, stop, stats, runtime, opts, lease, stages }.run()
    };
    drive(started, &name, &opts, &stop, &stats, work).await
}

struct Loop {
    p: Publication,
    reader: Reader,
    partitions: u32,
    stop: Arc<Stop>,
    stats: Arc<PublishStats>,
    runtime: tokio::runtime::Handle,
    opts: RunOptions,
    lease: Option<Arc<WriterLease>>,
    /// The transforms, kept across sessions.
    stages: penstock_stages::Stages,
}

/// The publication's filters, checked against the columns the source reads.
fn filters(
    p: &Publication,
    columns: &[(String, penstock_codec::ColumnType)],
) -> Result<penstock_stages::Stages, PipelineError> {
    let mut stages: Vec<Box<dyn penstock_stages::Stage>> = Vec::new();
    for (i, text) in p.filters.iter().enumerate() {
        let e = penstock_stages::expr::Expr::compile(text, columns).map_err(|e| {
            let at = if e.line > 0 {
                format!(" (line {}, column {} of the expression)", e.line, e.column)
            } else {
                String::new()
            };
            PipelineError::Source(format!("transforms[{i}].filter `{text}`: {}{at}", e.message))
        })?;
        if !e.ty().is_integer() {
            return Err(PipelineError::Source(format!(
                "transforms[{i}].filter `{text}` is {}, not a condition (UInt8 or Bool)",
                e.ty()
            )));
        }
        stages.push(Box::new(penstock_stages::Filter::new(e)));
    }
    Ok(penstock_stages::Stages::new(stages))
}

/// Joins the writer group of the pipeline (see `penstock_kafka::lease`), unless the sink
/// says `lease: none`.
pub(crate) fn join_lease(
    sink: &penstock_config::KafkaSink,
    name: &str,
) -> Result<Option<Arc<WriterLease>>, PipelineError> {
    if !sink.lease {
        tracing::warn!("`lease: none`: nothing keeps a second process of this pipeline from writing too");
        return Ok(None);
    }
    let instance = default_instance();
    Ok(Some(Arc::new(WriterLease::join(&sink.brokers, &sink.properties, name, &instance, &sink.topic)?)))
}

impl Loop {
    fn run(mut self) -> Result<(), PipelineError> {
        let (stop, stats, lease) = (self.stop.clone(), self.stats.clone(), self.lease.clone());
        sessions(&stop, &stats, lease.as_deref(), || self.session())
    }

    /// One producer session: recover, then read and send until stopped or an error.
    fn session(&mut self) -> Result<Outcome, PipelineError> {
        let s = &self.p.sink;
        let client_id = format!("{}-{}", self.opts.client_id, self.p.name);
        let publisher = Publisher::new(&s.brokers, &s.properties, std::slice::from_ref(&s.topic), &client_id)?;
        let plan = match retry_until_stopped(&self.stop, "recovery could not read the output topic", || {
            recover(&self.p, self.partitions)
        })? {
            Some(plan) => plan,
            None => return Ok(Outcome::Done),
        };
        failpoint::hit("publish_after_recovery");
        let mut after = plan.resume_after.clone();
        if after.is_none() && self.p.source.start == SourceStart::Now && plan.delivered.iter().all(Option::is_none) {
            after = self.read(|l| l.runtime.block_on(l.reader.end()))?.flatten();
            tracing::info!(after = %after.as_ref().map_or_else(|| "the beginning".into(), Position::to_header), "start: now");
        }
        let mut session = Session::new(publisher, self.partitions, &self.p.name, plan, self.stats.clone());
        let mut layout: Option<(JsonRowEncoder, KeyColumns)> = None;
        let mut last_lag = Instant::now() - Duration::from_secs(3600);
        loop {
            if self.stop.is_requested() {
                return self.finish(session);
            }
            let mut batch = match self.read(|l| l.runtime.block_on(l.reader.next_batch(after.as_ref())))? {
                Some(b) => b,
                None => return self.finish(session),
            };
            session.serve(Duration::ZERO);
            if let Some(e) = session.ended() {
                let e = e.clone();
                session.close();
                return Ok(Outcome::Recover(e));
            }
            let rows = batch.as_ref().map_or(0, |b| b.block.rows());
            if let Some(b) = &mut batch {
                // The ClickHouse source is one stream; a dropped row is not sent.
                let from = [StreamRows { topic: &self.p.name, partition: 0, rows: b.block.rows(), next_offset: 0 }];
                let outcome = match self.stages.run(
                    &mut b.block,
                    crate::source::wall_clock(),
                    &from,
                    &penstock_stages::RowNumbers,
                ) {
                    Ok(o) => o,
                    Err(e) => {
                        session.close();
                        return Err(e.into());
                    }
                };
                if let Some((row, why)) = outcome.rejected.first() {
                    session.close();
                    return Err(PipelineError::RowRejected(format!(
                        "the row at cursor position {}: {why}",
                        b.positions[*row].to_header()
                    )));
                }
                PublishStats::add(&self.stats.rows_filtered, outcome.dropped);
                let keep = outcome.keep;
                let (encoder, keys) = layout.get_or_insert_with(|| {
                    (
                        JsonRowEncoder::new(&b.block),
                        KeyColumns::find(&self.p.sink, b.block.columns().iter().map(|c| c.name()))
                            .expect("checked at start"),
                    )
                });
                failpoint::hit("publish_before_send");
                if let Err(e) = session.send_block(&b.block, &b.positions, keep, keys, encoder) {
                    session.close();
                    return Ok(Outcome::Recover(e));
                }
                failpoint::hit("publish_after_send");
                if !still_writer(self.lease.as_deref()) {
                    session.close();
                    return Ok(Outcome::Recover(SessionEnded::LeaseLost));
                }
                after = b.positions.last().cloned();
                if let Some(penstock_protocol::PositionValue::Int(v)) = after.as_ref().and_then(|p| p.0.first()) {
                    self.stats.cursor_first.store(i64::try_from(*v).unwrap_or(i64::MAX), Ordering::Relaxed);
                }
            }
            if last_lag.elapsed() >= Duration::from_secs(5) {
                self.update_lag(after.as_ref());
                last_lag = Instant::now();
            }
            self.runtime.block_on(self.reader.check_late_rows());
            if rows < self.p.source.batch_rows {
                if self.opts.until_caught_up {
                    if let Err(e) = session.flush(Duration::from_secs(3600)) {
                        session.close();
                        return Ok(Outcome::Recover(e));
                    }
                    failpoint::hit("publish_after_flush");
                    tracing::info!("caught up: every settled row is published");
                    self.stop.request(StopReason::CaughtUp);
                    return self.finish(session);
                }
                // Nothing more yet: wait, serving delivery reports meanwhile.
                let until = Instant::now() + self.p.source.poll_interval;
                while Instant::now() < until && !self.stop.is_requested() && session.ended().is_none() {
                    session.serve(Duration::from_millis(20));
                    if !still_writer(self.lease.as_deref()) {
                        session.close();
                        return Ok(Outcome::Recover(SessionEnded::LeaseLost));
                    }
                }
            }
        }
    }

    fn finish(&self, session: Session) -> Result<Outcome, PipelineError> {
        finish(&self.stop, &self.opts, session)
    }

    /// Lag: rows and seconds between the cursor and the newest settled row.
    fn update_lag(&self, after: Option<&Position>) {
        let reader = &self.reader;
        let lag = self.runtime.block_on(async {
            let Some(end) = reader.end().await? else { return Ok::<_, crate::publish::reader::ReadError>(None) };
            let rows = reader.count_between(after, &end).await?;
            Ok(Some((rows, end)))
        });
        if let Ok(Some((rows, end))) = lag {
            self.stats.lag_rows.store(rows, Ordering::Relaxed);
            let first = |p: &Position| match p.0.first() {
                Some(penstock_protocol::PositionValue::Int(v)) => Some(*v),
                _ => None,
            };
            if let (Some(e), Some(a)) = (first(&end), after.and_then(first)) {
                let is_secs = matches!(reader.cursor().columns()[0].1, penstock_codec::ColumnType::DateTime { .. });
                if is_secs {
                    self.stats.lag_seconds.store((e - a).max(0) as i64, Ordering::Relaxed);
                }
            }
        }
    }

    /// Runs a ClickHouse read, retrying what is worth retrying until stopped. `None`
    /// when a stop came first.
    fn read<T>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> Result<T, crate::publish::reader::ReadError>,
    ) -> Result<Option<T>, PipelineError> {
        let mut attempt = 0u32;
        loop {
            let result = f(self);
            if let Some(t) = &self.opts.telemetry {
                t.set_clickhouse_reachable(result.is_ok());
            }
            match result {
                Ok(v) => return Ok(Some(v)),
                Err(e) => {
                    let Next::Retry(wait) = READ_RETRY.after(attempt, e.retry_hint()) else {
                        return Err(PipelineError::Source(format!("reading the source failed: {e}")));
                    };
                    attempt += 1;
                    PublishStats::add(&self.stats.read_retries, 1);
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(error = %e, attempt, "reading the source failed; retrying");
                    }
                    if sleep_unless_stopped(&self.stop, wait) {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// Runs a Kafka step (recovery), retrying until stopped; `None` when a stop came first.
pub(crate) fn retry_until_stopped<T>(
    stop: &Stop,
    what: &str,
    mut f: impl FnMut() -> Result<T, PipelineError>,
) -> Result<Option<T>, PipelineError> {
    let mut attempt = 0u32;
    loop {
        match f() {
            Ok(v) => return Ok(Some(v)),
            Err(e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "{what}; retrying");
                if sleep_unless_stopped(stop, backoff(attempt)) {
                    return Ok(None);
                }
            }
        }
    }
}

/// Sleeps; true when a stop was requested meanwhile.
pub(crate) fn sleep_unless_stopped(stop: &Stop, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.is_requested() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.is_requested()
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(8))).min(MAX_BACKOFF)
}
