//! The Kafka sink's edge: an idempotent, gap-less producer that sends each message to
//! the partition Penstock chose, with its position headers, and reports deliveries by
//! sequence number; and the tail reader recovery starts from.
//!
//! librdkafka settings that exactly-once depends on are set here and cannot be
//! overridden: `enable.idempotence` (no duplicates from internal retries, order kept per
//! partition) and `enable.gapless.guarantee` (a failure that could leave a gap in a
//! partition raises a fatal error instead of letting later messages through — the
//! prefix property recovery relies on) — with `message.timeout.ms = 0`, since a message
//! that times out is outside that guarantee.

use crate::error::{KafkaEdgeError, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Header naming the pipeline that wrote a message.
pub const PIPELINE_HEADER: &str = "penstock-pipeline";
/// Header with the message's source position.
pub const POSITION_HEADER: &str = "penstock-position";
/// Header with the sink's acknowledged floor when the message was sent.
pub const FLOOR_HEADER: &str = "penstock-floor";
/// Header with a multi-stream checkpoint (Kafka → Kafka; see `penstock_protocol::streams`).
pub const CHECKPOINT_HEADER: &str = "penstock-checkpoint";

/// What the broker said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored; the sequence number given to [`Publisher::send`].
    Acked(u64),
    /// Not stored (the session must end).
    Failed {
        /// Sequence number.
        seq: u64,
        /// librdkafka's description.
        error: String,
    },
}

/// Collects delivery reports; they are served on the thread that calls `poll`.
#[derive(Default)]
pub struct PublishContext {
    reports: Mutex<Vec<Delivery>>,
}

impl ClientContext for PublishContext {}

impl ProducerContext for PublishContext {
    // The sequence number itself, no allocation per message.
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let seq = seq as u64;
        let d = match result {
            Ok(_) => Delivery::Acked(seq),
            Err((e, _)) => Delivery::Failed { seq, error: e.to_string() },
        };
        // Uncontended: only the sink thread polls and drains.
        self.reports.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(d);
    }
}

/// The headers of one outgoing message.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Source position (header text).
    pub position: &'a [u8],
    /// Acknowledged floor (header text), when there is one.
    pub floor: Option<&'a [u8]>,
    /// Multi-stream checkpoint (header text), when this message carries one.
    pub checkpoint: Option<&'a [u8]>,
    /// More headers (dead letters: the error and the source coordinates).
    pub extra: &'a [(&'a str, &'a [u8])],
}

/// Delivery-report events served by one [`Publisher::poll`] at most.
const MAX_EVENTS_PER_POLL: usize = 10_000;

/// One producer session of the Kafka sink, to one or more topics (the output topic, and
/// for Kafka → Kafka its dead-letter topic).
pub struct Publisher {
    producer: BaseProducer<PublishContext>,
    topics: Vec<String>,
}

/// The producer's queue is full: poll, take deliveries, and send again.
#[derive(Debug)]
pub struct QueueFull;

impl Publisher {
    /// A new session to `topics` on `brokers` with the user's extra `properties`.
    pub fn new(brokers: &str, properties: &[(String, String)], topics: &[String], client_id: &str) -> Result<Self> {
        let mut cfg = ClientConfig::new();
        cfg.set("linger.ms", "5").set("queue.buffering.max.messages", "100000").set("client.id", client_id);
        for (k, v) in properties {
            cfg.set(k, v);
        }
        cfg.set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("enable.gapless.guarantee", "true")
            .set("acks", "all")
            // The gap-less guarantee does not cover messages that time out: they never
            // do. A broker that stays away blocks the queue (backpressure) instead.
            .set("message.timeout.ms", "0");
        let producer =
            cfg.create_with_context(PublishContext::default()).map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
        Ok(Publisher { producer, topics: topics.to_vec() })
    }

    /// Enqueues one message for `partition` of topic number `topic` (with its
    /// timestamp, when given; the producer's clock otherwise), tagged with `seq` for its
    /// delivery report.
    #[allow(clippy::too_many_arguments)] // one message: where, what, and its report tag
    pub fn send(
        &self,
        topic: usize,
        partition: i32,
        key: Option<&[u8]>,
        payload: &[u8],
        timestamp_ms: Option<i64>,
        stamp: Stamp<'_>,
        seq: u64,
    ) -> Result<std::result::Result<(), QueueFull>> {
        let mut headers = OwnedHeaders::new_with_capacity(3 + stamp.extra.len())
            .insert(Header { key: PIPELINE_HEADER, value: Some(stamp.pipeline) })
            .insert(Header { key: POSITION_HEADER, value: Some(stamp.position) });
        if let Some(f) = stamp.floor {
            headers = headers.insert(Header { key: FLOOR_HEADER, value: Some(f) });
        }
        if let Some(c) = stamp.checkpoint {
            headers = headers.insert(Header { key: CHECKPOINT_HEADER, value: Some(c) });
        }
        for (key, value) in stamp.extra {
            headers = headers.insert(Header { key, value: Some(*value) });
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topics[topic], seq as usize)
                .partition(partition)
                .payload(payload)
                .headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(t) = timestamp_ms {
            record = record.timestamp(t);
        }
        match self.producer.send(record) {
            Ok(()) => Ok(Ok(())),
            Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => Ok(Err(QueueFull)),
            Err((e, _)) => Err(KafkaEdgeError::Client(e)),
        }
    }

    /// Serves delivery callbacks — waiting up to `timeout` for the first — then every
    /// report already there, and moves them into `out`.
    ///
    /// One `poll` serves one librdkafka event (one delivery-report batch), so it is
    /// called again while reports keep coming: a caller polling now and then (an idle
    /// source) would otherwise take one batch per call and let the queue drain at a
    /// few thousand messages a second.
    pub fn poll(&self, timeout: Duration, out: &mut Vec<Delivery>) {
        let reports = || self.producer.context().reports.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.producer.poll(timeout);
        let mut seen = reports().len();
        for _ in 0..MAX_EVENTS_PER_POLL {
            self.producer.poll(Duration::ZERO);
            let now = reports().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        out.append(&mut reports());
    }

    /// Messages enqueued and not yet reported.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// A fatal producer error (the session is over), if one was raised.
    pub fn fatal_error(&self) -> Option<String> {
        self.producer.client().fatal_error().map(|(code, text)| format!("{code:?}: {text}"))
    }
}

/// One message of this pipeline read back by recovery: its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailMessage {
    /// Offset of that message.
    pub offset: Option<i64>,
    /// Its position header.
    pub position: Option<Vec<u8>>,
    /// Its floor header.
    pub floor: Option<Vec<u8>>,
    /// Its checkpoint header.
    pub checkpoint: Option<Vec<u8>>,
}

/// Messages read per step when a partition's newest messages were written by someone
/// else and recovery must look further back.
const TAIL_STEP: i64 = 1000;

/// Reads, for each of `partitions` partitions of `topic`, the newest message whose
/// pipeline header is `pipeline` (the default when none: no offset). Looks back as far
/// as needed (a topic shared with other producers costs a longer scan; never a guess).
pub fn read_tails(
    brokers: &str,
    properties: &[(String, String)],
    topic: &str,
    partitions: usize,
    pipeline: &str,
    timeout: Duration,
) -> Result<Vec<TailMessage>> {
    let recent = read_recent(brokers, properties, topic, partitions, pipeline, timeout, |_| true)?;
    Ok(recent.into_iter().map(|newest_first| newest_first.into_iter().next().unwrap_or_default()).collect())
}

/// Reads, for each of `partitions` partitions of `topic`, this pipeline's messages
/// newest first, back to (and including) the newest one for which `enough` is true, or
/// to the start of the partition.
pub fn read_recent(
    brokers: &str,
    properties: &[(String, String)],
    topic: &str,
    partitions: usize,
    pipeline: &str,
    timeout: Duration,
    enough: impl Fn(&TailMessage) -> bool,
) -> Result<Vec<Vec<TailMessage>>> {
    let mut cfg = ClientConfig::new();
    for (k, v) in properties {
        cfg.set(k, v);
    }
    cfg.set("bootstrap.servers", brokers)
        .set("group.id", format!("penstock-{pipeline}-recovery"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "10")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = cfg.create().map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
    let mut out = Vec::with_capacity(partitions);
    for p in 0..partitions as i32 {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        let mut newest_first: Vec<TailMessage> = Vec::new();
        let mut end = high;
        let mut done = false;
        while end > low && !done {
            let start = (end - TAIL_STEP).max(low);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, Offset::Offset(start))?;
            consumer.assign(&tpl)?;
            let deadline = Instant::now() + timeout;
            let mut next = start;
            let mut chunk = Vec::new();
            while next < end {
                if Instant::now() > deadline {
                    return Err(KafkaEdgeError::Config(format!(
                        "recovery: reading {topic}[{p}] offsets {start}..{end} timed out at offset {next}"
                    )));
                }
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) if m.partition() == p => {
                        next = m.offset() + 1;
                        if m.offset() >= end {
                            break;
                        }
                        let Some(h) = m.headers() else { continue };
                        let mut ours = false;
                        let mut t = TailMessage { offset: Some(m.offset()), ..TailMessage::default() };
                        for h in h.iter() {
                            match (h.key, h.value) {
                                (PIPELINE_HEADER, Some(v)) => ours = v == pipeline.as_bytes(),
                                (POSITION_HEADER, Some(v)) => t.position = Some(v.to_vec()),
                                (FLOOR_HEADER, Some(v)) => t.floor = Some(v.to_vec()),
                                (CHECKPOINT_HEADER, Some(v)) => t.checkpoint = Some(v.to_vec()),
                                _ => {}
                            }
                        }
                        if ours && t.position.is_some() {
                            chunk.push(t);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                    Some(Err(e)) => return Err(KafkaEdgeError::Client(e)),
                    None => {}
                }
            }
            for t in chunk.into_iter().rev() {
                let stop = enough(&t);
                newest_first.push(t);
                if stop {
                    done = true;
                    break;
                }
            }
            end = start;
        }
        out.push(newest_first);
    }
    Ok(out)
}
