//! The changelog: every write of a partition's state, produced to a Kafka topic
//! (`penstock-<pipeline>-<stage>-changelog`, the source partition's number) *before*
//! it is written locally, so the local state never holds what the changelog lacks.
//!
//! **Snapshots bound a restore.** When a partition's writes since its last snapshot
//! outweigh that snapshot, the writer publishes the whole live state as one write from
//! nothing (a snapshot, streamed from the runs). Every record carries where the
//! writer's latest complete snapshot starts (`base`, known from the delivery of its
//! first record); a restore reads the newest record ([`Changelog::latest_base`]) and
//! reads from that snapshot on, once. When no base is known (a record written before
//! any snapshot, or the record at the base is not a snapshot's start) it scans the
//! tail, a growing window at a time, for the latest *complete* write from nothing
//! ([`Changelog::latest_start`]). Either way what it reads is at most about twice the
//! state, however long the pipeline has run, and correctness never depends on the
//! broker compacting the topic (unverified on Tansu 0.6).
//!
//! **Keys serve compaction only.** A write is keyed `<topic>#<partition>#w<slot>#<n>`
//! (the n-th write since the snapshot of key slot `slot`) and a snapshot's chunk `i`
//! `<topic>#<partition>#s<slot>#<i>`; each snapshot takes the other slot, so on a broker
//! that compacts, the topic keeps about two snapshots and the writes after them, and a
//! snapshot cut short never replaces the chunks of the last complete one. A restore
//! looks at no key: should compaction ever drop a record it needed, the restore stops
//! at the gap and the source is re-read from there (see [`crate::restore`]).

use crate::record::{decode_chunk, decode_head, encode_chunks, Chunk, ChunkWriter};
use crate::runs::manifest::Chain;
use crate::StateError;
use penstock_config::KafkaSource;
use penstock_kafka::assigned::{AssignedConsumer, StartAt};
use penstock_kafka::{BatchProducer, Partition};
use penstock_stages::dedup::{Covers, Entry, KeyHash, StateWrite};
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
    /// Tags for snapshots' first records (0 is untagged).
    next_tag: std::sync::atomic::AtomicUsize,
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
        // A snapshot streams many records: librdkafka holds at most this much of them
        // (its default is 1 GiB), and `send` waits for room.
        props.push(("queue.buffering.max.kbytes".into(), "8192".into()));
        let producer = BatchProducer::new(&source.brokers, &props)
            .map_err(|e| StateError::Changelog { topic: topic.clone(), message: e.to_string() })?;
        // Restores read outside the pipeline's group: another group id, and never its
        // static member id (a consumer closing with it would make the broker drop the
        // pipeline's own member and revoke its partitions).
        let mut source = source.clone();
        source.group = format!("{}-changelog-restore", source.group);
        source.properties.retain(|(k, _)| k != "group.instance.id");
        Ok(Changelog { topic, source, producer, next_tag: std::sync::atomic::AtomicUsize::new(1) })
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
        let _ = self.send(topic, partition, from, write, Chain::default())?;
        self.flush(failed)
    }

    /// Deliveries that failed so far (give it to [`Changelog::flush`]).
    pub fn failures(&self) -> u64 {
        self.producer.failures()
    }

    /// Enqueues the records of `write` of `topic`/`partition` (whose state covered
    /// `from` before it), the `chain.writes`-th write after the snapshot of
    /// `chain.slot`; [`Changelog::flush`] waits for them. Returns the bytes sent.
    pub fn send(
        &self,
        topic: &str,
        partition: i32,
        from: Option<i64>,
        write: &StateWrite,
        chain: Chain,
    ) -> Result<u64, StateError> {
        let key = format!("{topic}#{partition}#w{}#{}", chain.slot, chain.writes);
        let mut bytes = 0;
        for chunk in encode_chunks(topic, from, chain.base, write) {
            self.producer.send(&self.topic, key.as_bytes(), &chunk, partition, 0).map_err(|e| self.err(e))?;
            bytes += chunk.len() as u64;
        }
        Ok(bytes)
    }

    /// Enqueues a snapshot of `topic`/`partition`: every live entry (`entries`), as a
    /// write from nothing to `covers`, keyed in `slot` (its records carry `base`, the
    /// snapshot before it). Returns the bytes sent and a tag: after the flush,
    /// [`Changelog::offset_of`] gives the offset where it starts.
    #[allow(clippy::too_many_arguments)] // the parts of one record set
    pub fn send_snapshot(
        &self,
        topic: &str,
        partition: i32,
        slot: u8,
        base: Option<i64>,
        covers: Covers,
        expire_below: i64,
        entries: impl FnOnce(&mut dyn FnMut(i64, KeyHash, Entry)) -> std::io::Result<()>,
    ) -> Result<(u64, usize), StateError> {
        let tag = self.next_tag.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut w = ChunkWriter::new(topic, None, base, covers, expire_below);
        let (mut n, mut bytes, mut failed) = (0u32, 0u64, None);
        let mut send = |chunk: Vec<u8>, n: &mut u32| {
            let key = format!("{topic}#{partition}#s{slot}#{n}");
            let tagged = if *n == 0 { tag } else { 0 };
            *n += 1;
            bytes += chunk.len() as u64;
            self.producer.send(&self.topic, key.as_bytes(), &chunk, partition, tagged)
        };
        entries(&mut |bucket, key, entry| {
            if failed.is_none() {
                if let Some(chunk) = w.push((bucket, key, entry)) {
                    failed = send(chunk, &mut n).err();
                }
            }
        })
        .map_err(|e| self.err(format!("reading the state for a snapshot: {e}")))?;
        if let Some(e) = failed {
            return Err(self.err(e));
        }
        send(w.finish(), &mut n).map_err(|e| self.err(e))?;
        Ok((bytes, tag))
    }

    /// The offset of the first record of the snapshot sent with `tag`, once a flush
    /// delivered it.
    pub fn offset_of(&self, tag: usize) -> Option<i64> {
        self.producer.take_offset(tag)
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

    /// The snapshot the newest record of `topic`/`partition` points to (its `base`):
    /// where a restore may start, reading the changelog once. `None` when the newest
    /// record knows none (or there is no record): [`Changelog::latest_start`] scans.
    /// Reads a few records back from the end, four times further each time until one
    /// of `topic` is among them. Returns the base and the records read to find it.
    pub fn latest_base(&self, topic: &str, partition: i32) -> Result<(Option<i64>, u64), StateError> {
        let newest = |s: &mut Option<Option<i64>>, _: i64, c: &Chunk| *s = Some(c.base);
        let (found, read) = self.search_tail(topic, partition, 4, || None, newest, |s| s)?;
        Ok((found.flatten(), read))
    }

    /// The offset where the latest complete write from nothing (a snapshot, or the
    /// first write ever) of `topic`/`partition` starts, among those within what the sink
    /// delivered (`delivered`); `None` when there is none (read from the beginning).
    /// Scans the tail, four times further back each time it finds none, reading
    /// records' headers only. Returns the offset and the records read to find it.
    pub fn latest_start(
        &self,
        topic: &str,
        partition: i32,
        delivered: Option<i64>,
    ) -> Result<(Option<i64>, u64), StateError> {
        // The latest found, and the write being scanned: where it starts, whether from
        // nothing, the next chunk.
        type Scan = (Option<i64>, Option<(i64, bool, u32)>);
        let step = |(latest, open): &mut Scan, offset: i64, c: &Chunk| {
            *open = match *open {
                _ if c.chunk == 0 => Some((offset, c.from.is_none(), 1)),
                Some((at, nothing, next)) if c.chunk == next => Some((at, nothing, next + 1)),
                _ => None,
            };
            if c.chunk + 1 == c.chunks {
                if let Some((at, true, _)) = *open {
                    if delivered.is_none_or(|d| c.covers.next_offset <= d) {
                        *latest = Some(at);
                    }
                }
                *open = None;
            }
        };
        self.search_tail(topic, partition, 256, || (None, None), step, |(latest, _)| latest)
    }

    /// Reads the headers of `topic`'s records at the tail of `partition`: the last
    /// `first` records, then four times as many, and so on, each window with a fresh
    /// state `fresh()` fed by `step`, until `answer` gives one or the window covers the
    /// partition. Returns the answer and the records read.
    fn search_tail<S, T>(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
        fresh: impl Fn() -> S,
        mut step: impl FnMut(&mut S, i64, &Chunk),
        answer: impl Fn(S) -> Option<T>,
    ) -> Result<(Option<T>, u64), StateError> {
        let p = Partition { topic: self.topic.clone(), partition };
        let (low, high) = self.watermarks(&p)?;
        let (mut window, mut read) = (first, 0u64);
        loop {
            let start = high.saturating_sub(window).max(low);
            let mut state = fresh();
            read += self.scan(&p, start, high, |offset, payload| {
                let (c, _) = decode_head(payload).map_err(|e| format!("offset {offset}: {e}"))?;
                if c.topic == topic {
                    step(&mut state, offset, &c);
                }
                Ok(())
            })?;
            if let Some(t) = answer(state) {
                return Ok((Some(t), read));
            }
            if start == low {
                return Ok((None, read));
            }
            window = window.saturating_mul(4);
        }
    }

    /// Reads the records of `partition` from `start` (its beginning when `None`) to the
    /// end there is now, in order, handing each chunk of `topic` to `apply` with its
    /// offset. Returns the records read.
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        start: Option<i64>,
        mut apply: impl FnMut(i64, Chunk) -> Result<(), String>,
    ) -> Result<u64, StateError> {
        let p = Partition { topic: self.topic.clone(), partition };
        let (low, high) = self.watermarks(&p)?;
        self.scan(&p, start.unwrap_or(low).max(low), high, |offset, payload| {
            let chunk = decode_chunk(payload).map_err(|e| format!("offset {offset}: {e}"))?;
            if chunk.topic == topic {
                apply(offset, chunk)?;
            }
            Ok(())
        })
    }

    fn watermarks(&self, p: &Partition) -> Result<(i64, i64), StateError> {
        let consumer = AssignedConsumer::new(&self.source, "penstock-changelog-restore", &[(p.clone(), StartAt::End)])
            .map_err(|e| self.err(e))?;
        consumer.watermarks(p, Duration::from_secs(30)).map_err(|e| self.err(e))
    }

    /// Reads the records of `p` in `[from, to)`, lending each payload to `f`. Returns
    /// the records read.
    fn scan(
        &self,
        p: &Partition,
        from: i64,
        to: i64,
        mut f: impl FnMut(i64, &[u8]) -> Result<(), String>,
    ) -> Result<u64, StateError> {
        if from >= to {
            return Ok(0);
        }
        let consumer =
            AssignedConsumer::new(&self.source, "penstock-changelog-restore", &[(p.clone(), StartAt::Offset(from))])
                .map_err(|e| self.err(e))?;
        let (mut next, mut records) = (from, 0u64);
        let mut last = Instant::now();
        while next < to {
            let got = consumer
                .poll(Duration::from_millis(200), |m| {
                    next = m.offset + 1;
                    if m.offset >= to {
                        return Ok(());
                    }
                    records += 1;
                    f(m.offset, m.payload)
                })
                .map_err(|e| self.err(e))?;
            match got {
                Some(result) => {
                    result.map_err(|e| self.err(e))?;
                    last = Instant::now();
                }
                None if last.elapsed() > READ_STALL => {
                    return Err(self.err(format!("no record for {READ_STALL:?} at offset {next} of {to}")));
                }
                None => {}
            }
        }
        Ok(records)
    }
}
