//! One producer session of the Kafka sink: rows in, messages out, acknowledgements
//! tracked in send order. The first delivery error (or a fatal producer error) ends the
//! session: nothing more is sent, and the caller recovers from the output topic.

use crate::publish::outbox::{Outbox, Outgoing};
use crate::publish::stats::PublishStats;
use penstock_codec::{Block, JsonRowEncoder};
use penstock_config::KafkaSink;
use penstock_kafka::{partition_for_key, Publisher, Stamp};
use penstock_protocol::{AckWindow, Position, ResumePlan};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows sent between two servings of delivery reports (a poll per message would cost
/// more than the message).
const SERVE_EVERY: usize = 256;
/// Rows between two positions the floor can advance to.
const FLOOR_EVERY: usize = 64;
pub use crate::publish::outbox::SessionEnded;

/// What the key of a message is made of.
#[derive(Debug, Clone)]
pub struct KeyColumns {
    /// Indexes in the block, in key order (empty: no key).
    indexes: Vec<usize>,
}

impl KeyColumns {
    /// The key columns of `sink` among `columns` (the block's, in order), or the names
    /// that are missing.
    pub fn find<'a>(
        sink: &KafkaSink,
        columns: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<KeyColumns, Vec<String>> {
        let mut indexes = Vec::new();
        let mut missing = Vec::new();
        for k in &sink.key {
            match columns.clone().position(|c| c == k) {
                Some(i) => indexes.push(i),
                None => missing.push(k.clone()),
            }
        }
        if missing.is_empty() {
            Ok(KeyColumns { indexes })
        } else {
            Err(missing)
        }
    }

    /// Writes row `row`'s key into `out` (one column: its JSON value without quotes
    /// for strings; several: a JSON array); false when there is no key.
    pub(crate) fn write(&self, block: &Block, row: usize, encoder: &JsonRowEncoder, out: &mut Vec<u8>) -> bool {
        out.clear();
        match self.indexes.as_slice() {
            [] => false,
            [i] => {
                encoder.encode_value(block, *i, row, out);
                if out.len() >= 2 && out[0] == b'"' && !out[1..out.len() - 1].contains(&b'\\') {
                    out.pop();
                    out.remove(0);
                }
                true
            }
            many => {
                out.push(b'[');
                for (n, i) in many.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    encoder.encode_value(block, *i, row, out);
                }
                out.push(b']');
                true
            }
        }
    }
}

/// One producer session.
pub struct Session {
    outbox: Outbox,
    partitions: u32,
    pipeline: String,
    plan: ResumePlan,
    window: AckWindow,
    stats: Arc<PublishStats>,
    payload: Vec<u8>,
    key: Vec<u8>,
    position_text: Vec<u8>,
    floor_text: Option<String>,
}

impl Session {
    /// A session that continues after recovery's `plan`.
    pub fn new(
        publisher: Publisher,
        partitions: u32,
        pipeline: &str,
        plan: ResumePlan,
        stats: Arc<PublishStats>,
    ) -> Self {
        let window = AckWindow::new(plan.floor.clone());
        let floor_text = plan.floor.as_ref().map(Position::to_header);
        Session {
            outbox: Outbox::new(publisher, stats.clone()),
            partitions,
            pipeline: pipeline.to_string(),
            plan,
            window,
            stats,
            payload: Vec::with_capacity(512),
            key: Vec::with_capacity(64),
            position_text: Vec::with_capacity(64),
            floor_text,
        }
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<&SessionEnded> {
        self.outbox.ended()
    }

    /// Rows sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.window.in_flight()
    }

    /// Sends every row of `block` (positions given) that the stages kept (`keep`, when
    /// they dropped some) and recovery's plan does not already find in its partition.
    /// Stops at the session's end.
    pub fn send_block(
        &mut self,
        block: &Block,
        positions: &[Position],
        keep: Option<&[bool]>,
        keys: &KeyColumns,
        encoder: &JsonRowEncoder,
    ) -> Result<(), SessionEnded> {
        let sent_at = Instant::now();
        for (row, position) in positions.iter().enumerate() {
            if keep.is_some_and(|k| !k[row]) {
                continue;
            }
            if row % SERVE_EVERY == 0 {
                self.serve(Duration::ZERO);
            }
            if let Some(e) = self.outbox.ended() {
                return Err(e.clone());
            }
            position.write_header(&mut self.position_text);
            let has_key = keys.write(block, row, encoder, &mut self.key);
            let partition = if has_key {
                partition_for_key(&self.key, self.partitions)
            } else {
                partition_for_key(&self.position_text, self.partitions)
            };
            if self.plan.already_sent(partition as usize, position) {
                PublishStats::add(&self.stats.messages_skipped, 1);
                continue;
            }
            self.payload.clear();
            if let Err(e) = encoder.encode_row(block, row, &mut self.payload) {
                return Err(self.outbox.end(SessionEnded::Encode(e.to_string())));
            }
            // The floor needs a position now and then, not on every row (a clone each).
            let seq = self.window.sent((row % FLOOR_EVERY == 0).then(|| position.clone()));
            let m = Outgoing {
                topic: 0,
                partition: partition as i32,
                key: has_key.then_some(self.key.as_slice()),
                payload: &self.payload,
                timestamp_ms: None,
                stamp: Stamp {
                    pipeline: &self.pipeline,
                    position: &self.position_text,
                    floor: self.floor_text.as_deref().map(str::as_bytes),
                    checkpoint: None,
                    extra: &[],
                },
                seq,
            };
            self.outbox.send(m, sent_at, &mut self.window)?;
        }
        Ok(())
    }

    /// Serves delivery reports for up to `timeout` and applies them.
    pub fn serve(&mut self, timeout: Duration) {
        if self.outbox.serve(timeout, &mut self.window) {
            self.floor_text = self.window.floor().map(Position::to_header);
        }
    }

    /// Waits until every sent row is acknowledged, the session ends, or `timeout`.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), SessionEnded> {
        self.outbox.flush(timeout, &mut self.window)
    }

    /// Ends the session: purges what librdkafka still holds and drops the producer.
    pub fn close(self) {
        drop(self.outbox);
    }
}
