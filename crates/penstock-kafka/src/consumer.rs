//! The consumer: a librdkafka group member with auto-commit off, whose rebalances are
//! reported to the pipeline through [`RebalanceHook`] while librdkafka waits.
//!
//! Penstock never lets librdkafka commit or store offsets on its own: the pipeline
//! commits explicit offsets only after ClickHouse acknowledged the rows before them.
//! [`GroupConsumer`] is all the pipeline sees: messages are lent as [`RawMessage`]s and
//! offsets are plain `(Partition, i64)` pairs, so no rdkafka type leaves this crate.

use crate::assigned::{raw_message, RawMessage};
use crate::error::{KafkaEdgeError, Result};
use penstock_config::{KafkaSource, StartFrom};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use std::sync::Arc;

/// A topic-partition owned by this process.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Topic.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
}

/// What the pipeline does when partitions come and go. Called on the thread that
/// polls the consumer, while librdkafka waits for the call to return.
pub trait RebalanceHook: Send + Sync {
    /// Partitions are being assigned; `committed` holds the group's committed offset of
    /// each (None when nothing is committed). Returns the offset each partition must
    /// start at, or None to start at the committed offset (or `start` when none).
    fn assigning(&self, partitions: &[Partition], committed: &[Option<i64>]) -> Vec<Option<i64>>;
    /// Partitions were assigned.
    fn assigned(&self, partitions: &[Partition]);
    /// Partitions are about to be revoked: finish or abandon their in-flight work
    /// before returning, and return the offsets to commit for them (committed
    /// synchronously before the partitions are released), so the next owner starts
    /// exactly after the last acknowledged batch.
    fn revoking(&self, partitions: &[Partition]) -> Vec<(Partition, i64)>;
    /// An asynchronous offset commit completed (`Err` holds the broker's reason).
    fn committed(&self, result: std::result::Result<(), String>, offsets: &[(Partition, i64)]);
}

/// librdkafka context forwarding rebalances and commit results to a [`RebalanceHook`].
pub struct SourceContext {
    hook: Arc<dyn RebalanceHook>,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<Partition> {
    tpl.elements().iter().map(|e| Partition { topic: e.topic().to_string(), partition: e.partition() }).collect()
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility = fac, "{log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{log_message}"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }
}

/// How long fetching committed offsets during a rebalance may take.
const COMMITTED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl SourceContext {
    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let parts = partitions(tpl);
        let committed = match committed(consumer, &parts, COMMITTED_TIMEOUT) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read committed offsets during the rebalance; starting from the group's positions");
                vec![None; parts.len()]
            }
        };
        let starts = self.hook.assigning(&parts, &committed);
        for (p, start) in parts.iter().zip(starts) {
            if let Some(offset) = start {
                if let Err(e) = tpl.set_partition_offset(&p.topic, p.partition, rdkafka::Offset::Offset(offset)) {
                    tracing::error!(error = %e, partition = ?p, "cannot set the start offset");
                }
            }
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "assigning partitions failed");
        }
        tracing::info!(partitions = ?parts, "partitions assigned");
        self.hook.assigned(&parts);
    }

    fn on_revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let parts = partitions(tpl);
        tracing::info!(partitions = ?parts, "partitions revoked");
        let offsets = self.hook.revoking(&parts);
        if !offsets.is_empty() {
            let result = offset_list(&offsets).and_then(|tpl| Ok(consumer.commit(&tpl, CommitMode::Sync)?));
            match result {
                Ok(()) => tracing::info!(offsets = ?offsets, "committed offsets of revoked partitions"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not commit offsets of revoked partitions; the next owner re-reads them")
                }
            }
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "unassigning partitions failed");
        }
    }
}

impl ConsumerContext for SourceContext {
    /// Replaces rdkafka's default handler so that the pipeline chooses each assigned
    /// partition's start offset (exactly-once recovery) before librdkafka starts
    /// fetching, and finishes in-flight work before partitions are given away.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.on_assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.on_revoke(consumer, tpl),
            other => {
                tracing::warn!(error = ?other, "rebalance error; releasing the assignment");
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let list: Vec<(Partition, i64)> = offsets
            .elements()
            .iter()
            .map(|e| {
                let p = Partition { topic: e.topic().to_string(), partition: e.partition() };
                (p, e.offset().to_raw().unwrap_or(-1))
            })
            .collect();
        self.hook.committed(result.map_err(|e| e.to_string()), &list);
    }
}

/// The librdkafka consumer behind a [`GroupConsumer`].
type SourceConsumer = BaseConsumer<SourceContext>;

/// How an offset commit waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Sent in the background; the result reaches [`RebalanceHook::committed`].
    Async,
    /// Returns once the broker stored the offsets.
    Sync,
}

/// A member of the source's consumer group, subscribed to its topics.
pub struct GroupConsumer {
    consumer: SourceConsumer,
}

impl GroupConsumer {
    /// Waits up to `timeout` for a message (rebalance callbacks run inside) and lends it
    /// to `f`; `None` when none came.
    #[inline]
    pub fn poll<R>(&self, timeout: std::time::Duration, f: impl FnOnce(RawMessage<'_>) -> R) -> Result<Option<R>> {
        match self.consumer.poll(timeout) {
            None => Ok(None),
            Some(Err(e)) => Err(KafkaEdgeError::Client(e)),
            Some(Ok(m)) => Ok(Some(f(raw_message(&m)))),
        }
    }

    /// Pauses (`true`) or resumes (`false`) fetching for every assigned partition;
    /// polling goes on serving the group.
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        let tpl = self.consumer.assignment()?;
        if paused {
            self.consumer.pause(&tpl)?;
        } else {
            self.consumer.resume(&tpl)?;
        }
        Ok(())
    }

    /// Commits `(partition, next offset)` pairs.
    pub fn commit(&self, offsets: &[(Partition, i64)], mode: Commit) -> Result<()> {
        let tpl = offset_list(offsets)?;
        let mode = match mode {
            Commit::Async => CommitMode::Async,
            Commit::Sync => CommitMode::Sync,
        };
        Ok(self.consumer.commit(&tpl, mode)?)
    }

    /// The group's committed offsets for `partitions` (`None` where nothing is committed).
    pub fn committed(&self, partitions: &[Partition], timeout: std::time::Duration) -> Result<Vec<Option<i64>>> {
        committed(&self.consumer, partitions, timeout)
    }

    /// Low and high watermark of a partition.
    pub fn watermarks(&self, p: &Partition, timeout: std::time::Duration) -> Result<(i64, i64)> {
        Ok(self.consumer.fetch_watermarks(&p.topic, p.partition, timeout)?)
    }
}

/// Penstock's librdkafka defaults; users may override any of them with
/// `source.kafka.properties` (except the reserved delivery settings).
const DEFAULTS: &[(&str, &str)] = &[
    // Brokers such as Tansu wait the full fetch.wait.max.ms on every fetch; a short wait
    // keeps freshness low at little cost.
    ("fetch.wait.max.ms", "10"),
    // Detect a dead group member within 10 s, so its partitions move on quickly.
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
    // Bound librdkafka's prefetch queue per partition (messages, KiB) so memory does not
    // grow with backlog...
    ("queued.min.messages", "20000"),
    ("queued.max.messages.kbytes", "8192"),
    // ...and refill it as soon as it drains below that: librdkafka's default waits 1 s
    // after the queue was full, which cut a backlog drain to a third of the broker's
    // rate (1 M events: 6.2 s → 2.6 s; see BENCHMARKS.md).
    ("fetch.queue.backoff.ms", "10"),
    ("fetch.max.bytes", "16777216"),
];

/// Penstock's defaults, the user's properties, then what delivery depends on: the
/// brokers, the group, and no automatic commit or offset store.
pub(crate) fn source_config(source: &KafkaSource, client_id: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    for (k, v) in DEFAULTS {
        cfg.set(*k, *v);
    }
    for (k, v) in &source.properties {
        cfg.set(k, v);
    }
    cfg.set("bootstrap.servers", &source.brokers)
        .set("group.id", &source.group)
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    cfg
}

/// Builds a consumer for `source`, subscribed to its topics.
pub fn subscribe(source: &KafkaSource, client_id: &str, hook: Arc<dyn RebalanceHook>) -> Result<GroupConsumer> {
    let mut cfg = source_config(source, client_id);
    cfg.set(
        "auto.offset.reset",
        match source.start {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        },
    );
    let consumer: SourceConsumer =
        cfg.create_with_context(SourceContext { hook }).map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
    let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(GroupConsumer { consumer })
}

/// A list of `(partition, next offset)` pairs as librdkafka wants them.
pub(crate) fn offset_list(offsets: &[(Partition, i64)]) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (p, off) in offsets {
        tpl.add_partition_offset(&p.topic, p.partition, rdkafka::Offset::Offset(*off))?;
    }
    Ok(tpl)
}

/// Committed offsets of the group for `partitions` (`None` where nothing is committed).
fn committed<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[Partition],
    timeout: std::time::Duration,
) -> Result<Vec<Option<i64>>> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(&p.topic, p.partition);
    }
    let got = consumer.committed_offsets(tpl, timeout)?;
    Ok(partitions
        .iter()
        .map(|p| {
            got.find_partition(&p.topic, p.partition).and_then(|e| match e.offset() {
                rdkafka::Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            })
        })
        .collect())
}
