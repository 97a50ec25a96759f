//! Running a Kafka → Kafka pipeline: preflight (source partitions, output and
//! dead-letter topics, key columns), then producer sessions, each starting with
//! recovery from both topics.
//!
//! Everything runs on one blocking thread: the source consumer is polled there and each
//! message is decoded and sent before the next is taken, so per stream the sends are in
//! offset order — which the floors of the protocol need.

use crate::error::PipelineError;
use crate::failpoint;
use crate::publish::driver::{drive, finish, sessions, still_writer, Outcome};
use crate::publish::outbox::SessionEnded;
use crate::publish::run::{join_lease, retry_until_stopped, PublishSummary};
use crate::publish::session::KeyColumns;
use crate::publish::stats::PublishStats;
use crate::publish::topic::{describe_topic, prepare_topic, KAFKA_TIMEOUT, METADATA_TIMEOUT};
use crate::relay::session::{offset_of, Destinations, Halt, RelaySession, Streams};
use crate::runner::RunOptions;
use crate::stop::{Stop, StopReason};
use penstock_codec::JsonDecoder;
use penstock_config::{Relay, StartFrom, TopicCreation};
use penstock_kafka::{
    read_recent, AssignedConsumer, MetadataClient, Partition, Publisher, StartAt, TailMessage, WriterLease,
};
use penstock_protocol::{
    destination_tails, plan_streams, Checkpoint, Position, PositionValue, Recovered, ResumePlan, StreamSender,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one poll of the source waits when nothing is there.
const POLL: Duration = Duration::from_millis(50);
/// Messages between two looks at the writer lease (and at every empty poll).
const LEASE_EVERY: u64 = 512;
/// How often lag is measured and floors are committed to the group (for monitoring).
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// What `penstock check` reports about a Kafka → Kafka pipeline.
#[derive(Debug, Clone)]
pub struct RelayCheck {
    /// Source partitions (`topic/partition`).
    pub streams: Vec<String>,
    /// Partitions of the output topic, or `None` when it will be created.
    pub output_partitions: Option<u32>,
    /// Partitions of the dead-letter topic, or `None` when it will be created.
    pub dead_letter_partitions: Option<u32>,
}

/// The dead-letter topic is created like the output topic, or with one partition.
fn dead_letter_creation(r: &Relay) -> TopicCreation {
    r.sink.create.clone().unwrap_or(TopicCreation { partitions: 1, replication_factor: 1, config: Vec::new() })
}

/// The source topics' partitions, as streams.
async fn source_streams(r: &Relay) -> Result<Streams, PipelineError> {
    let s = r.source.clone();
    let topics = tokio::task::spawn_blocking(move || {
        MetadataClient::new(&s.brokers, &s.properties, METADATA_TIMEOUT)?.topics(&s.topics)
    })
    .await
    .map_err(|e| PipelineError::Internal(e.to_string()))??;
    Ok(Streams::new(&topics.into_iter().map(|t| (t.name, t.partitions)).collect::<Vec<_>>()))
}

fn decoder(r: &Relay) -> Result<JsonDecoder, PipelineError> {
    Ok(JsonDecoder::new(r.fields.clone(), r.limits)?.with_arrays_as_rows(r.arrays_as_rows))
}

fn keys(r: &Relay) -> Result<KeyColumns, PipelineError> {
    KeyColumns::find(&r.sink, r.fields.iter().map(|f| f.column.as_str()))
        .map_err(|missing| PipelineError::Sink(format!("key column(s) {} are not in the schema", missing.join(", "))))
}

/// Checks everything a run needs, changing nothing.
pub async fn check(r: &Relay) -> Result<RelayCheck, PipelineError> {
    decoder(r)?;
    keys(r)?;
    let streams = source_streams(r).await?;
    Ok(RelayCheck {
        streams: streams.names().to_vec(),
        output_partitions: describe_topic(&r.sink, &r.sink.topic, r.sink.create.is_some()).await?,
        dead_letter_partitions: describe_topic(&r.sink, &r.dead_letter_topic, true).await?,
    })
}

/// Runs a Kafka → Kafka pipeline until a signal, `--until-caught-up`, or a permanent
/// failure.
pub async fn run_relay(r: Relay, opts: RunOptions, stop: Arc<Stop>) -> Result<PublishSummary, PipelineError> {
    let started = Instant::now();
    let stats = Arc::new(PublishStats::default());
    let decoder = decoder(&r)?;
    let keys = keys(&r)?;
    let streams = source_streams(&r).await?;
    let output = prepare_topic(&r.sink, &r.sink.topic, r.sink.create.as_ref()).await?;
    // A forwarder dead-letters nothing (the pipeline reading its output does).
    let dead_letter = if r.forward {
        0
    } else {
        prepare_topic(&r.sink, &r.dead_letter_topic, Some(&dead_letter_creation(&r))).await?
    };
    let destinations = Destinations { output, dead_letter };
    tracing::info!(
        pipeline = %r.name, sources = %streams.names().join(" "), topic = %r.sink.topic, partitions = output,
        dead_letter_topic = %r.dead_letter_topic, "Kafka → Kafka pipeline started"
    );
    let lease = join_lease(&r.sink, &r.name)?;
    let name = r.name.clone();
    let work = {
        let (stop, stats, opts) = (stop.clone(), stats.clone(), opts.clone());
        move || {
            let stages = r.stages.build_stateless();
            RelayLoop { r, decoder, keys, streams, destinations, stop, stats, opts, targets: None, lease, stages }.run()
        }
    };
    drive(started, &name, &opts, &stop, &stats, work).await
}

struct RelayLoop {
    r: Relay,
    decoder: JsonDecoder,
    keys: KeyColumns,
    streams: Streams,
    destinations: Destinations,
    stop: Arc<Stop>,
    stats: Arc<PublishStats>,
    opts: RunOptions,
    /// `--until-caught-up`: per stream, the end offset when the run started.
    targets: Option<Vec<i64>>,
    lease: Option<Arc<WriterLease>>,
    /// The transforms, kept across sessions (their state is per source partition).
    stages: penstock_stages::Stages,
}

impl RelayLoop {
    fn run(mut self) -> Result<(), PipelineError> {
        let (stop, stats, lease) = (self.stop.clone(), self.stats.clone(), self.lease.clone());
        sessions(&stop, &stats, lease.as_deref(), || self.session())
    }

    /// Watermarks of every stream (low, high).
    fn watermarks(&self, consumer: &AssignedConsumer) -> Result<Vec<(i64, i64)>, PipelineError> {
        (0..self.streams.len())
            .map(|s| {
                let (topic, partition) = self.streams.coordinates(s);
                let p = Partition { topic: topic.to_string(), partition };
                Ok(consumer.watermarks(&p, KAFKA_TIMEOUT)?)
            })
            .collect()
    }

    fn session(&mut self) -> Result<Outcome, PipelineError> {
        let Some(plans) = retry_until_stopped(&self.stop, "recovery could not read the output topics", || {
            recover(&self.r, &self.destinations)
        })?
        else {
            return Ok(Outcome::Done);
        };
        failpoint::hit("publish_after_recovery");
        // Where each stream starts: after the plan; a stream no destination knows starts
        // at its beginning — or, for a pipeline that never wrote anything, where `start` says.
        let fresh = plans.is_empty();
        let starts: Vec<StartAt> = self
            .streams
            .names()
            .iter()
            .map(|name| match StreamSender::resume_after(&plans, name).as_ref().and_then(offset_of) {
                // The message at the resume position is read again: its later rows (a
                // JSON array) may be missing; its earlier ones are skipped by the plan.
                Some(o) => StartAt::Offset(o),
                None if fresh && self.r.source.start == StartFrom::Latest => StartAt::End,
                None => StartAt::Beginning,
            })
            .collect();
        let assignment: Vec<(Partition, StartAt)> = (0..self.streams.len())
            .map(|s| {
                let (topic, partition) = self.streams.coordinates(s);
                (Partition { topic: topic.to_string(), partition }, starts[s])
            })
            .collect();
        let client_id = format!("{}-{}", self.opts.client_id, self.r.name);
        let consumer = AssignedConsumer::new(&self.r.source, &client_id, &assignment)?;
        let Some(marks) = retry_until_stopped(&self.stop, "cannot read the source partitions' watermarks", || {
            self.watermarks(&consumer)
        })?
        else {
            return Ok(Outcome::Done);
        };
        if self.opts.until_caught_up && self.targets.is_none() {
            self.targets = Some(marks.iter().map(|(_, high)| *high).collect());
        }
        let next: Vec<i64> = starts
            .iter()
            .zip(&marks)
            .map(|(at, (low, high))| match at {
                StartAt::Offset(o) => *o,
                StartAt::Beginning => *low,
                StartAt::End => *high,
            })
            .collect();
        tracing::info!(
            starts = %self.streams.names().iter().zip(&next).map(|(n, o)| format!("{n}@{o}")).collect::<Vec<_>>().join(" "),
            "recovered from the output topics' checkpoints"
        );
        let sender = StreamSender::new(self.streams.names().to_vec(), self.destinations.len(), &plans);
        let s = &self.r.sink;
        let topics = [s.topic.clone(), self.r.dead_letter_topic.clone()];
        let publisher = Publisher::new(&s.brokers, &s.properties, &topics, &client_id)?;
        let mut session = RelaySession::new(
            publisher,
            sender,
            self.streams.clone(),
            self.destinations,
            &self.r.name,
            self.decoder.clone(),
            self.keys.clone(),
            self.r.forward,
            next,
            self.stats.clone(),
        );
        let mut last_housekeeping = Instant::now();
        let mut poll_errors = 0u64;
        let mut turns = 0u64;
        loop {
            if self.stop.is_requested() {
                return self.finish(session);
            }
            if let Some(targets) = &self.targets {
                if session.next_offsets().iter().zip(targets).all(|(n, t)| n >= t) {
                    if let Err(e) = session.flush(Duration::from_secs(3600)) {
                        session.close();
                        return Ok(Outcome::Recover(e));
                    }
                    failpoint::hit("publish_after_flush");
                    tracing::info!("caught up: every message present at start is relayed");
                    self.stop.request(StopReason::CaughtUp);
                    return self.finish(session);
                }
            }
            failpoint::hit("publish_before_send");
            let mut idle = false;
            let stages = &mut self.stages;
            match consumer.poll(POLL, |m| session.handle(m, stages)) {
                Ok(Some(Ok(()))) => failpoint::hit("publish_after_send"),
                Ok(Some(Err(Halt::Ended(e)))) => {
                    session.close();
                    return Ok(Outcome::Recover(e));
                }
                Ok(Some(Err(Halt::Stage(e)))) => {
                    session.close();
                    return Err(e.into());
                }
                Ok(None) => {
                    idle = true;
                    session.serve(Duration::ZERO);
                }
                Err(e) => {
                    // librdkafka reconnects by itself; say so now and then.
                    poll_errors += 1;
                    if poll_errors == 1 || poll_errors.is_multiple_of(100) {
                        tracing::warn!(error = %e, count = poll_errors, "reading the source failed; retrying");
                    }
                    PublishStats::add(&self.stats.read_retries, 1);
                    session.serve(Duration::from_millis(20));
                }
            }
            if let Some(e) = session.ended() {
                let e = e.clone();
                session.close();
                return Ok(Outcome::Recover(e));
            }
            turns += 1;
            if (idle || turns.is_multiple_of(LEASE_EVERY)) && !still_writer(self.lease.as_deref()) {
                session.close();
                return Ok(Outcome::Recover(SessionEnded::LeaseLost));
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING {
                self.housekeeping(&consumer, &session);
                last_housekeeping = Instant::now();
            }
        }
    }

    /// Lag in messages, and the floors committed to the group for monitoring tools.
    fn housekeeping(&self, consumer: &AssignedConsumer, session: &RelaySession) {
        if let Ok(marks) = self.watermarks(consumer) {
            let lag: i64 = marks.iter().zip(session.next_offsets()).map(|((_, high), next)| (high - next).max(0)).sum();
            self.stats.lag_rows.store(lag as u64, Ordering::Relaxed);
        }
        let offsets: Vec<(Partition, i64)> = (0..self.streams.len())
            .filter_map(|s| {
                let o = session.floor(s).and_then(offset_of)?;
                let (topic, partition) = self.streams.coordinates(s);
                Some((Partition { topic: topic.to_string(), partition }, o))
            })
            .collect();
        if let Err(e) = consumer.commit_for_monitoring(&offsets) {
            tracing::debug!(error = %e, "committing floors to the group (monitoring only) failed");
        }
    }

    fn finish(&self, session: RelaySession) -> Result<Outcome, PipelineError> {
        finish(&self.stop, &self.opts, session)
    }
}

/// Reads both topics back to their newest checkpoints and plans every stream.
fn recover(r: &Relay, d: &Destinations) -> Result<BTreeMap<String, ResumePlan>, PipelineError> {
    let s = &r.sink;
    let enough = |t: &TailMessage| t.checkpoint.is_some();
    let mut read = read_recent(&s.brokers, &s.properties, &s.topic, d.output as usize, &r.name, KAFKA_TIMEOUT, enough)?;
    read.extend(read_recent(
        &s.brokers,
        &s.properties,
        &r.dead_letter_topic,
        d.dead_letter as usize,
        &r.name,
        KAFKA_TIMEOUT,
        enough,
    )?);
    let mut tails = Vec::with_capacity(read.len());
    for (i, newest_first) in read.into_iter().enumerate() {
        let (topic, partition) = match d.topic_partition(i) {
            (0, p) => (&s.topic, p),
            (_, p) => (&r.dead_letter_topic, p),
        };
        let mut recovered = Vec::with_capacity(newest_first.len());
        for t in newest_first {
            let bad = |what: &str, e: String| {
                PipelineError::Sink(format!("{topic}[{partition}] offset {:?}: the {what} header: {e}", t.offset))
            };
            let position = Position::parse(t.position.as_deref().unwrap_or_default())
                .map_err(|e| bad("position", e.to_string()))?;
            let Some(PositionValue::Text(stream)) = position.0.first().cloned() else {
                return Err(bad("position", "does not start with its stream".into()));
            };
            let checkpoint = t
                .checkpoint
                .as_deref()
                .map(Checkpoint::parse)
                .transpose()
                .map_err(|e| bad("checkpoint", e.to_string()))?;
            recovered.push(Recovered { stream, position, checkpoint });
        }
        tails.push(destination_tails(&recovered));
    }
    Ok(plan_streams(&tails))
}
