//! The changelog: every write of a partition's state, produced to a Kafka topic
//! (`penstock-<pipeline>-<stage>-changelog`, the source partition's number) *before*
//! it is written locally, so the local state never holds what the changelog lacks.
//!
//! Restore reads a partition's records in order and applies each complete write that
//! continues the state it has (its `from` at or below the covers reached, its covers
//! above them — an overlap replays identical entries, because a write is a function of
//! the rows it covers); a write that starts from nothing resets the state; a gap stops
//! the restore there, and the pipeline re-reads the source from the covers reached.
//! Writes beyond the sink's delivered position are ignored.

use crate::record::{decode_chunk, encode_chunks, Chunk};
use crate::StateError;
use penstock_config::KafkaSource;
use penstock_kafka::assigned::{AssignedConsumer, StartAt};
use penstock_kafka::{BatchProducer, Partition};
use penstock_stages::dedup::StateWrite;
use std::time::{Duration, Instant};

/// How long a write waits for the broker to take its records.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a restore waits for the next record before giving up.
const READ_STALL: Duration = Duration::from_secs(60);

/// A stage's changelog topic.
pub struct Changelog {
    topic: String,
    source: KafkaSource,
    producer: BatchProducer,
}

impl std::fmt::Debug for Changelog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changelog").field("topic", &self.topic).finish()
    }
}

/// The changelog topic of `stage` in `pipeline`.
pub fn topic_name(pipeline: &str, stage: &str) -> String {
    format!("penstock-{pipeline}-{stage}-changelog")
}

impl Changelog {
    /// The changelog `topic` on `source`'s brokers (with its client properties).
    pub fn new(source: &KafkaSource, topic: String) -> Result<Self, StateError> {
        // The source's client properties that concern the connection (security, client
        // id, sockets), not its consumer settings.
        let connection = ["security.", "sasl.", "ssl.", "client.", "socket.", "broker.", "api."];
        let mut props: Vec<(String, String)> =
            source.properties.iter().filter(|(k, _)| connection.iter().any(|p| k.starts_with(p))).cloned().collect();
        props.push(("message.max.bytes".into(), "2000000".into()));
        let producer = BatchProducer::new(&source.brokers, &props)
            .map_err(|e| StateError::Changelog { topic: topic.clone(), message: e.to_string() })?;
        // Restores read outside the pipeline's group: another group id, and never its
        // static member id (a consumer closing with it would make the broker drop the
        // pipeline's own member and revoke its partitions).
        let mut source = source.clone();
        source.group = format!("{}-changelog-restore", source.group);
        source.properties.retain(|(k, _)| k != "group.instance.id");
        Ok(Changelog { topic, source, producer })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn err(&self, message: impl std::fmt::Display) -> StateError {
        StateError::Changelog { topic: self.topic.clone(), message: message.to_string() }
    }

    /// Produces `write` of `topic`/`partition` (whose state covered `from` before it)
    /// and waits until the broker has every record of it.
    pub fn publish(
        &self,
        topic: &str,
        partition: i32,
        from: Option<i64>,
        write: &StateWrite,
    ) -> Result<(), StateError> {
        let failed = self.failures();
        self.send(topic, partition, from, write)?;
        self.flush(failed)
    }

    /// Deliveries that failed so far (give it to [`Changelog::flush`]).
    pub fn failures(&self) -> u64 {
        self.producer.failures()
    }

    /// Enqueues the records of `write` of `topic`/`partition` (whose state covered
    /// `from` before it); [`Changelog::flush`] waits for them.
    pub fn send(&self, topic: &str, partition: i32, from: Option<i64>, write: &StateWrite) -> Result<(), StateError> {
        let key = format!("{topic}#{partition}#{}", write.covers.next_offset);
        for chunk in encode_chunks(topic, from, write) {
            self.producer.send(&self.topic, key.as_bytes(), &chunk, partition, 0).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Waits until the broker has every record sent, and checks that none failed since
    /// `failures` were counted.
    pub fn flush(&self, failures: u64) -> Result<(), StateError> {
        self.producer.flush(PUBLISH_TIMEOUT).map_err(|e| self.err(format!("records not delivered: {e}")))?;
        if self.failures() != failures {
            return Err(self.err("the broker refused a record (see the log)"));
        }
        penstock_protocol::failpoint::hit("after_changelog_write");
        Ok(())
    }

    /// Reads every record of `partition` there is now, in order, handing each
    /// complete write of `topic` to `apply` (a partial write at the end — a crash
    /// between its chunks — is left out). Returns the records read.
    pub fn read(&self, topic: &str, partition: i32, mut apply: impl FnMut(Vec<Chunk>)) -> Result<u64, StateError> {
        let p = Partition { topic: self.topic.clone(), partition };
        let consumer =
            AssignedConsumer::new(&self.source, "penstock-changelog-restore", &[(p.clone(), StartAt::Beginning)])
                .map_err(|e| self.err(e))?;
        let (low, high) = consumer.watermarks(&p, Duration::from_secs(30)).map_err(|e| self.err(e))?;
        let (mut next, mut records) = (low, 0u64);
        let mut write: Vec<Chunk> = Vec::new();
        let mut last = Instant::now();
        while next < high {
            let got = consumer
                .poll(Duration::from_millis(200), |m| {
                    next = m.offset + 1;
                    decode_chunk(m.payload).map_err(|e| format!("offset {}: {e}", m.offset))
                })
                .map_err(|e| self.err(e))?;
            let Some(chunk) = got else {
                if last.elapsed() > READ_STALL {
                    return Err(self.err(format!("no record for {READ_STALL:?} at offset {next} of {high}")));
                }
                continue;
            };
            last = Instant::now();
            records += 1;
            let chunk = chunk.map_err(|e| self.err(e))?;
            if chunk.topic != topic {
                continue;
            }
            if chunk.chunk == 0 {
                write.clear();
            } else if write.len() != chunk.chunk as usize {
                write.clear();
                continue; // the rest of a write whose start was lost
            }
            let complete = chunk.chunk + 1 == chunk.chunks;
            write.push(chunk);
            if complete {
                apply(std::mem::take(&mut write));
            }
        }
        Ok(records)
    }
}
