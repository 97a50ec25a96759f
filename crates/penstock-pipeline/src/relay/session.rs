//! One producer session of a Kafka → Kafka pipeline: each source message is decoded
//! with the schema into a block (types checked), its rows re-encoded as JSON and sent
//! to the output topic — or, when it cannot be decoded, the message itself is sent to
//! the dead-letter topic — in source order, through the multi-stream protocol's
//! [`StreamSender`] (skip what a destination holds, checkpoint now and then).

use crate::publish::outbox::{Outbox, Outgoing, SessionEnded};
use crate::publish::session::KeyColumns;
use crate::publish::stats::PublishStats;
use penstock_codec::{Block, JsonDecoder, JsonRowEncoder};
use penstock_kafka::{partition_for_key, Publisher, RawMessage, Stamp};
use penstock_protocol::{Decision, Position, PositionValue, StreamSender};
use penstock_stages::{StageError, Stages, StreamRows};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages handled between two servings of delivery reports.
const SERVE_EVERY: u64 = 256;
/// Offsets between two positions the floor can advance to.
const FLOOR_EVERY: i64 = 64;
/// Header: why a message was dead-lettered.
pub const ERROR_HEADER: &str = "penstock-error";
/// Header: the class of that error (`syntax`, `type`, `missing`, ...).
pub const ERROR_KIND_HEADER: &str = "penstock-error-kind";
/// Header: `topic/partition/offset` of the source message.
pub const SOURCE_HEADER: &str = "penstock-source";
/// Header of a forwarded message (`dedup: { repartition: true }`): `topic/partition/offset`
/// of the message it forwards.
pub const ORIGIN_HEADER: &str = "penstock-origin";

/// The source streams: one per source topic-partition, named `topic/partition`.
#[derive(Debug, Clone)]
pub struct Streams {
    /// Source topics, in the order of the pipeline.
    topics: Vec<String>,
    /// Per topic, per partition id: the stream index.
    index: Vec<Vec<Option<usize>>>,
    /// Stream names, by index.
    names: Vec<String>,
    /// (topic, partition) of each stream.
    coordinates: Vec<(usize, i32)>,
}

impl Streams {
    /// The streams of `topics` with their partition ids.
    pub fn new(topics: &[(String, Vec<i32>)]) -> Self {
        let mut s = Streams { topics: Vec::new(), index: Vec::new(), names: Vec::new(), coordinates: Vec::new() };
        for (t, (topic, partitions)) in topics.iter().enumerate() {
            s.topics.push(topic.clone());
            let max = partitions.iter().copied().max().unwrap_or(-1);
            let mut idx = vec![None; (max + 1).max(0) as usize];
            for &p in partitions {
                idx[p as usize] = Some(s.names.len());
                s.names.push(format!("{topic}/{p}"));
                s.coordinates.push((t, p));
            }
            s.index.push(idx);
        }
        s
    }

    /// The stream of a message, if it is one of ours.
    pub fn of(&self, topic: &str, partition: i32) -> Option<usize> {
        let t = self.topics.iter().position(|x| x == topic)?;
        self.index[t].get(usize::try_from(partition).ok()?).copied().flatten()
    }

    /// Stream names, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// (topic, partition) of stream `s`.
    pub fn coordinates(&self, s: usize) -> (&str, i32) {
        let (t, p) = self.coordinates[s];
        (&self.topics[t], p)
    }

    /// How many streams.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A message's position in its stream: `[stream, offset, row]`.
pub fn position(stream: &str, offset: i64, row: usize) -> Position {
    Position(vec![
        PositionValue::Text(stream.to_string()),
        PositionValue::Int(i128::from(offset)),
        PositionValue::Int(row as i128),
    ])
}

/// The offset of a position written by [`position`].
pub fn offset_of(p: &Position) -> Option<i64> {
    match p.0.get(1) {
        Some(PositionValue::Int(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

/// Where the destinations are: output partitions first, then dead-letter partitions.
#[derive(Debug, Clone, Copy)]
pub struct Destinations {
    /// Output topic partitions.
    pub output: u32,
    /// Dead-letter topic partitions.
    pub dead_letter: u32,
}

impl Destinations {
    /// All destinations.
    pub fn len(self) -> usize {
        (self.output + self.dead_letter) as usize
    }

    /// True when there are none.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// (topic number, partition) of destination `d`.
    pub fn topic_partition(self, d: usize) -> (usize, i32) {
        if d < self.output as usize {
            (0, d as i32)
        } else {
            (1, (d - self.output as usize) as i32)
        }
    }
}

/// Where a message goes: topic number, partition, and its timestamp (`None`: the
/// producer's clock).
#[derive(Debug, Clone, Copy)]
struct Target {
    topic: usize,
    partition: u32,
    timestamp_ms: Option<i64>,
}

/// Why a session stopped handling messages.
#[derive(Debug)]
pub enum Halt {
    /// The producer session ended: recover from the output topic and go on.
    Ended(SessionEnded),
    /// A transform failed: the pipeline stops.
    Stage(StageError),
}

impl From<SessionEnded> for Halt {
    fn from(e: SessionEnded) -> Self {
        Halt::Ended(e)
    }
}

impl From<StageError> for Halt {
    fn from(e: StageError) -> Self {
        Halt::Stage(e)
    }
}

/// One producer session.
pub struct RelaySession {
    outbox: Outbox,
    sender: StreamSender,
    streams: Streams,
    destinations: Destinations,
    pipeline: String,
    decoder: JsonDecoder,
    block: Block,
    encoder: JsonRowEncoder,
    keys: KeyColumns,
    /// Forward messages unchanged (see `penstock_config::Relay::forward`).
    forward: bool,
    stats: Arc<PublishStats>,
    /// Per stream: the next offset to read.
    next: Vec<i64>,
    /// Per stream: a position reused for every row (its offset and row set in place).
    positions: Vec<Position>,
    /// The wall clock for `now` columns and the send time for latency, read once per
    /// [`SERVE_EVERY`] messages rather than per message.
    now: penstock_codec::Timestamp,
    sent_at: Instant,
    handled: u64,
    payload: Vec<u8>,
    key: Vec<u8>,
    position_text: Vec<u8>,
    checkpoint_text: Vec<u8>,
}

impl RelaySession {
    /// A session over `streams` (each starting at `next[s]`), after recovery's sender.
    #[allow(clippy::too_many_arguments)] // the parts of one session, assembled once
    pub fn new(
        publisher: Publisher,
        sender: StreamSender,
        streams: Streams,
        destinations: Destinations,
        pipeline: &str,
        decoder: JsonDecoder,
        keys: KeyColumns,
        forward: bool,
        next: Vec<i64>,
        stats: Arc<PublishStats>,
    ) -> Self {
        let block = decoder.new_block();
        let encoder = JsonRowEncoder::new(&block);
        RelaySession {
            outbox: Outbox::new(publisher, stats.clone()),
            sender,
            positions: streams.names().iter().map(|n| position(n, 0, 0)).collect(),
            streams,
            destinations,
            pipeline: pipeline.to_string(),
            decoder,
            block,
            encoder,
            keys,
            forward,
            stats,
            next,
            now: crate::source::wall_clock(),
            sent_at: Instant::now(),
            handled: 0,
            payload: Vec::with_capacity(512),
            key: Vec::with_capacity(64),
            position_text: Vec::with_capacity(64),
            checkpoint_text: Vec::new(),
        }
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<&SessionEnded> {
        self.outbox.ended()
    }

    /// Per stream: the next offset to read.
    pub fn next_offsets(&self) -> &[i64] {
        &self.next
    }

    /// A stream's acknowledged floor.
    pub fn floor(&self, stream: usize) -> Option<&Position> {
        self.sender.floor(stream)
    }

    /// Messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.sender.in_flight()
    }

    /// Decodes one source message, runs the stages over its rows and sends those they
    /// keep (or its dead letter).
    pub fn handle(&mut self, m: RawMessage<'_>, stages: &mut Stages) -> Result<(), Halt> {
        if self.handled.is_multiple_of(SERVE_EVERY) {
            self.serve(Duration::ZERO);
            self.now = crate::source::wall_clock();
            self.sent_at = Instant::now();
        }
        self.handled += 1;
        if let Some(e) = self.outbox.ended() {
            return Err(e.clone().into());
        }
        let Some(stream) = self.streams.of(m.topic, m.partition) else { return Ok(()) };
        if m.offset < self.next[stream] {
            return Ok(()); // a re-delivery of what this session already handled
        }
        self.next[stream] = m.offset + 1;
        PublishStats::add(&self.stats.rows_read, 1);
        let meta = crate::source::meta_of(&m, self.now);
        self.block.clear();
        if self.forward {
            return self.forward(stream, &m, &meta, stages);
        }
        match self.decoder.decode_rows(m.payload, &meta, &mut self.block) {
            Ok(rows) => {
                let from = [StreamRows { topic: m.topic, partition: m.partition, rows, next_offset: m.offset + 1 }];
                let at = penstock_stages::OneMessage { offset: m.offset, timestamp_ms: m.timestamp_ms };
                // Rows a stage drops are not sent; the others keep their row numbers;
                // rows a stage could not compute are dead-lettered in their place.
                let outcome = stages.run(&mut self.block, self.now, &from, &at)?;
                PublishStats::add(&self.stats.rows_filtered, outcome.dropped);
                for row in 0..rows {
                    if let Some((_, why)) = outcome.rejected.iter().find(|(r, _)| *r == row) {
                        self.send_dead_letter(stream, &m, row, "transform_failed", why)?;
                    } else if outcome.keep.is_none_or(|k| k[row]) {
                        self.send_row(stream, m.offset, row)?;
                    }
                }
                Ok(())
            }
            Err(e) => {
                let reason = match &e.column {
                    Some(c) => format!("column `{c}`: {}", e.message),
                    None => e.message.clone(),
                };
                Ok(self.send_dead_letter(stream, &m, 0, e.kind.as_str(), &reason)?)
            }
        }
    }

    /// Forwards message `m` unchanged to the output partition of its key columns (read
    /// from its first row, computed columns included), or — when it cannot be decoded, or
    /// its key computed — to its source partition's number: the pipeline that reads the
    /// output decodes it again and dead-letters it there, as it would have.
    fn forward(
        &mut self,
        stream: usize,
        m: &RawMessage<'_>,
        meta: &penstock_codec::MessageMeta<'_>,
        stages: &mut Stages,
    ) -> Result<(), Halt> {
        let keyed = match self.decoder.decode_rows(m.payload, meta, &mut self.block) {
            Ok(rows) if rows > 0 => {
                let from = [StreamRows { topic: m.topic, partition: m.partition, rows, next_offset: m.offset + 1 }];
                let at = penstock_stages::OneMessage { offset: m.offset, timestamp_ms: m.timestamp_ms };
                let outcome = stages.run(&mut self.block, self.now, &from, &at)?;
                !outcome.rejected.iter().any(|(r, _)| *r == 0)
                    && self.keys.write(&self.block, 0, &self.encoder, &mut self.key)
            }
            _ => false,
        };
        let output = self.destinations.output;
        let partition = if keyed { partition_for_key(&self.key, output) } else { m.partition.unsigned_abs() % output };
        self.place(stream, m.offset, 0);
        let sample = m.offset % FLOOR_EVERY == 0;
        let Some((seq, checkpoint)) = self.admit(stream, partition as usize, sample) else { return Ok(()) };
        let origin = format!("{}/{}/{}", m.topic, m.partition, m.offset);
        let extra: [(&str, &[u8]); 1] = [(ORIGIN_HEADER, origin.as_bytes())];
        let to = Target { topic: 0, partition, timestamp_ms: m.timestamp_ms };
        Ok(self.send_message(m, to, &extra, seq, checkpoint)?)
    }

    /// Sends message `m` itself (its key and payload) to `to`, with `extra` headers
    /// after the protocol's (its position placed and admitted as `seq`).
    fn send_message(
        &mut self,
        m: &RawMessage<'_>,
        to: Target,
        extra: &[(&str, &[u8])],
        seq: u64,
        checkpoint: bool,
    ) -> Result<(), SessionEnded> {
        let out = Outgoing {
            topic: to.topic,
            partition: to.partition as i32,
            key: m.key,
            payload: m.payload,
            timestamp_ms: to.timestamp_ms,
            stamp: Stamp {
                pipeline: &self.pipeline,
                position: &self.position_text,
                floor: None,
                checkpoint: checkpoint.then_some(self.checkpoint_text.as_slice()),
                extra,
            },
            seq,
        };
        self.outbox.send(out, self.sent_at, &mut self.sender)
    }

    /// Sets `stream`'s reused position to `(offset, row)` and writes its header text.
    fn place(&mut self, stream: usize, offset: i64, row: usize) {
        let position = &mut self.positions[stream];
        position.0[1] = PositionValue::Int(i128::from(offset));
        position.0[2] = PositionValue::Int(row as i128);
        position.write_header(&mut self.position_text);
    }

    /// Asks the protocol about `stream`'s placed position for `destination`: `None`
    /// when the destination already holds it (counted), else its sequence number and
    /// whether it carries a checkpoint (its header text written).
    fn admit(&mut self, stream: usize, destination: usize, sample: bool) -> Option<(u64, bool)> {
        match self.sender.decide(stream, destination, &self.positions[stream], sample) {
            Decision::Skip => {
                PublishStats::add(&self.stats.messages_skipped, 1);
                None
            }
            Decision::Send { seq, checkpoint } => {
                if let Some(c) = &checkpoint {
                    c.write(&mut self.checkpoint_text);
                }
                Some((seq, checkpoint.is_some()))
            }
        }
    }

    fn send_row(&mut self, stream: usize, offset: i64, row: usize) -> Result<(), SessionEnded> {
        self.place(stream, offset, row);
        let has_key = self.keys.write(&self.block, row, &self.encoder, &mut self.key);
        let partition = if has_key {
            partition_for_key(&self.key, self.destinations.output)
        } else {
            partition_for_key(&self.position_text, self.destinations.output)
        };
        let sample = row == 0 && offset % FLOOR_EVERY == 0;
        let Some((seq, checkpoint)) = self.admit(stream, partition as usize, sample) else { return Ok(()) };
        self.payload.clear();
        if let Err(e) = self.encoder.encode_row(&self.block, row, &mut self.payload) {
            return Err(self.outbox.end(SessionEnded::Encode(e.to_string())));
        }
        let m = Outgoing {
            topic: 0,
            partition: partition as i32,
            key: has_key.then_some(self.key.as_slice()),
            payload: &self.payload,
            timestamp_ms: None,
            stamp: Stamp {
                pipeline: &self.pipeline,
                position: &self.position_text,
                floor: None,
                checkpoint: checkpoint.then_some(self.checkpoint_text.as_slice()),
                extra: &[],
            },
            seq,
        };
        self.outbox.send(m, self.sent_at, &mut self.sender)
    }

    /// Sends message `m` to the dead-letter topic in the place of its row `row`.
    fn send_dead_letter(
        &mut self,
        stream: usize,
        m: &RawMessage<'_>,
        row: usize,
        kind: &str,
        reason: &str,
    ) -> Result<(), SessionEnded> {
        self.place(stream, m.offset, row);
        let partition = m.partition.unsigned_abs() % self.destinations.dead_letter;
        let destination = self.destinations.output as usize + partition as usize;
        let Some((seq, checkpoint)) = self.admit(stream, destination, false) else { return Ok(()) };
        PublishStats::add(&self.stats.dead_letters, 1);
        let source = format!("{}/{}/{}", m.topic, m.partition, m.offset);
        let extra: [(&str, &[u8]); 3] = [
            (ERROR_HEADER, reason.as_bytes()),
            (ERROR_KIND_HEADER, kind.as_bytes()),
            (SOURCE_HEADER, source.as_bytes()),
        ];
        self.send_message(m, Target { topic: 1, partition, timestamp_ms: None }, &extra, seq, checkpoint)
    }

    /// Serves delivery reports for up to `timeout`.
    pub fn serve(&mut self, timeout: Duration) {
        self.outbox.serve(timeout, &mut self.sender);
    }

    /// Waits until every sent message is acknowledged, the session ends, or `timeout`.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), SessionEnded> {
        self.outbox.flush(timeout, &mut self.sender)
    }

    /// Ends the session: drops the producer.
    pub fn close(self) {
        drop(self.outbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_named_and_found_by_topic_and_partition() {
        let s = Streams::new(&[("a".into(), vec![0, 2, 1]), ("b".into(), vec![0])]);
        assert_eq!(s.names(), ["a/0", "a/2", "a/1", "b/0"]);
        assert_eq!(
            (s.of("a", 1), s.of("b", 0), s.of("b", 1), s.of("c", 0), s.of("a", -1)),
            (Some(2), Some(3), None, None, None)
        );
        assert_eq!(s.coordinates(1), ("a", 2));
    }

    #[test]
    fn destinations_put_dead_letters_after_the_output() {
        let d = Destinations { output: 4, dead_letter: 2 };
        assert_eq!(d.len(), 6);
        assert_eq!((d.topic_partition(3), d.topic_partition(4), d.topic_partition(5)), ((0, 3), (1, 0), (1, 1)));
    }

    #[test]
    fn positions_order_by_offset_then_row_and_give_their_offset_back() {
        assert!(position("t/0", 9, 3) < position("t/0", 10, 0));
        assert_eq!(offset_of(&position("t/0", 42, 1)), Some(42));
        assert_eq!(position("t/0", 7, 0).to_header(), r#"["t/0",7,0]"#);
    }
}
