//! A consumer of given partitions from given offsets, outside any consumer group's
//! assignment: for pipelines whose progress the **sink** owns (Kafka → Kafka: recovery
//! reads the output topic and says where each source partition resumes).
//!
//! Messages are lent to a closure as [`RawMessage`], so rdkafka's types stay here.
//! Offsets of the acknowledged prefix may be committed to the pipeline's group — for
//! the lag tools users already run, never to decide anything.

use crate::consumer::Partition;
use crate::error::{KafkaEdgeError, Result};
use penstock_config::KafkaSource;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Its oldest retained message.
    Beginning,
    /// Its end (only what arrives from now on).
    End,
    /// This offset (the next message to read).
    Offset(i64),
}

/// One message, borrowed from the consumer for the length of a closure call.
#[derive(Debug, Clone, Copy)]
pub struct RawMessage<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Producer/broker timestamp in ms, when it has one.
    pub timestamp_ms: Option<i64>,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Payload (empty for a tombstone).
    pub payload: &'a [u8],
}

/// A message of librdkafka's, as the rest of Penstock sees it.
#[inline]
pub(crate) fn raw_message<'a>(m: &'a rdkafka::message::BorrowedMessage<'_>) -> RawMessage<'a> {
    let timestamp_ms = match m.timestamp() {
        Timestamp::NotAvailable => None,
        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
    };
    RawMessage {
        topic: m.topic(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms,
        key: m.key(),
        payload: m.payload().unwrap_or_default(),
    }
}

/// A consumer of an explicit assignment.
pub struct AssignedConsumer {
    consumer: BaseConsumer,
}

impl AssignedConsumer {
    /// Reads `assignment` of `source`'s brokers (the source's own properties apply;
    /// its group only receives informational commits).
    pub fn new(source: &KafkaSource, client_id: &str, assignment: &[(Partition, StartAt)]) -> Result<Self> {
        let mut cfg = crate::consumer::source_config(source, client_id);
        cfg.set("auto.offset.reset", "earliest");
        let consumer: BaseConsumer = cfg.create().map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
        let mut tpl = TopicPartitionList::new();
        for (p, at) in assignment {
            let offset = match at {
                StartAt::Beginning => Offset::Beginning,
                StartAt::End => Offset::End,
                StartAt::Offset(o) => Offset::Offset(*o),
            };
            tpl.add_partition_offset(&p.topic, p.partition, offset)?;
        }
        consumer.assign(&tpl)?;
        Ok(AssignedConsumer { consumer })
    }

    /// Waits up to `timeout` for a message and lends it to `f`; `None` when none came.
    pub fn poll<R>(&self, timeout: Duration, f: impl FnOnce(RawMessage<'_>) -> R) -> Result<Option<R>> {
        match self.consumer.poll(timeout) {
            None => Ok(None),
            Some(Err(e)) => Err(KafkaEdgeError::Client(e)),
            Some(Ok(m)) => Ok(Some(f(raw_message(&m)))),
        }
    }

    /// Low and high watermark of a partition.
    pub fn watermarks(&self, p: &Partition, timeout: Duration) -> Result<(i64, i64)> {
        Ok(self.consumer.fetch_watermarks(&p.topic, p.partition, timeout)?)
    }

    /// Commits `(partition, next offset)` pairs to the group, asynchronously; for
    /// monitoring only (a failure is logged by the caller and changes nothing).
    pub fn commit_for_monitoring(&self, offsets: &[(Partition, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let tpl = crate::consumer::offset_list(offsets)?;
        Ok(self.consumer.commit(&tpl, CommitMode::Async)?)
    }
}
