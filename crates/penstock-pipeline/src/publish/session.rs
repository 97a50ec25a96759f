//! One producer session of the Kafka sink: rows in, messages out, acknowledgements
//! tracked in send order. The first delivery error (or a fatal producer error) ends the
//! session: nothing more is sent, and the caller recovers from the output topic.

use crate::publish::stats::PublishStats;
use penstock_codec::{Block, JsonRowEncoder};
use penstock_config::KafkaSink;
use penstock_kafka::{partition_for_key, Delivery, Publisher, Stamp};
use penstock_protocol::{AckWindow, Position, ResumePlan};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows sent between two servings of delivery reports (a poll per message would cost
/// more than the message).
const SERVE_EVERY: usize = 256;
/// Rows between two positions the floor can advance to.
const FLOOR_EVERY: usize = 64;
/// How long a full producer queue is polled before trying to send again.
const QUEUE_FULL_POLL: Duration = Duration::from_millis(5);

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionEnded {
    /// The broker refused or lost a message; the session's log may end before it.
    #[error("delivery failed: {0}")]
    DeliveryFailed(String),
    /// librdkafka raised a fatal error (e.g. a possible gap with the gap-less guarantee).
    #[error("fatal producer error: {0}")]
    Fatal(String),
    /// A row could not be encoded (a bug).
    #[error("cannot encode a row: {0}")]
    Encode(String),
}

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
    fn write(&self, block: &Block, row: usize, encoder: &JsonRowEncoder, out: &mut Vec<u8>) -> bool {
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
    publisher: Publisher,
    partitions: u32,
    pipeline: String,
    plan: ResumePlan,
    window: AckWindow,
    sent_at: VecDeque<Instant>,
    reports: Vec<Delivery>,
    ended: Option<SessionEnded>,
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
            publisher,
            partitions,
            pipeline: pipeline.to_string(),
            plan,
            window,
            sent_at: VecDeque::new(),
            reports: Vec::new(),
            ended: None,
            stats,
            payload: Vec::with_capacity(512),
            key: Vec::with_capacity(64),
            position_text: Vec::with_capacity(64),
            floor_text,
        }
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<&SessionEnded> {
        self.ended.as_ref()
    }

    /// Rows sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.window.in_flight()
    }

    /// Sends every row of `block` (positions given) that recovery's plan does not
    /// already find in its partition. Stops at the session's end.
    pub fn send_block(
        &mut self,
        block: &Block,
        positions: &[Position],
        keys: &KeyColumns,
        encoder: &JsonRowEncoder,
    ) -> Result<(), SessionEnded> {
        let sent_at = Instant::now();
        for (row, position) in positions.iter().enumerate() {
            if row % SERVE_EVERY == 0 {
                self.serve(Duration::ZERO);
            }
            if let Some(e) = &self.ended {
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
            encoder.encode_row(block, row, &mut self.payload).map_err(|e| SessionEnded::Encode(e.to_string()))?;
            // The floor needs a position now and then, not on every row (a clone each).
            let seq = self.window.sent((row % FLOOR_EVERY == 0).then(|| position.clone()));
            self.sent_at.push_back(sent_at);
            loop {
                let stamp = Stamp {
                    pipeline: &self.pipeline,
                    position: &self.position_text,
                    floor: self.floor_text.as_deref().map(str::as_bytes),
                };
                let key = has_key.then_some(self.key.as_slice());
                match self.publisher.send(partition as i32, key, &self.payload, stamp, seq) {
                    Ok(Ok(())) => break,
                    Ok(Err(_full)) => {
                        self.serve(QUEUE_FULL_POLL);
                        if let Some(e) = &self.ended {
                            return Err(e.clone());
                        }
                    }
                    Err(e) => {
                        let e = SessionEnded::DeliveryFailed(e.to_string());
                        self.ended = Some(e.clone());
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Serves delivery reports for up to `timeout` and applies them.
    pub fn serve(&mut self, timeout: Duration) {
        self.publisher.poll(timeout, &mut self.reports);
        if self.reports.is_empty() {
            if self.ended.is_none() {
                if let Some(f) = self.publisher.fatal_error() {
                    self.ended = Some(SessionEnded::Fatal(f));
                }
            }
            return;
        }
        let now = Instant::now();
        for d in self.reports.drain(..) {
            match d {
                Delivery::Acked(seq) => {
                    self.window.acknowledged(seq);
                    PublishStats::add(&self.stats.messages_produced, 1);
                }
                Delivery::Failed { error, .. } => {
                    if self.ended.is_none() {
                        self.ended = Some(SessionEnded::DeliveryFailed(error));
                    }
                }
            }
        }
        // Latency of the acknowledged prefix (send order), for the average.
        while self.sent_at.len() > self.window.in_flight() {
            if let Some(t) = self.sent_at.pop_front() {
                PublishStats::add(&self.stats.produce_latency_us, now.duration_since(t).as_micros() as u64);
            }
        }
        self.floor_text = self.window.floor().map(Position::to_header);
        if self.ended.is_none() {
            if let Some(f) = self.publisher.fatal_error() {
                self.ended = Some(SessionEnded::Fatal(f));
            }
        }
    }

    /// Waits until every sent row is acknowledged, the session ends, or `timeout`.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), SessionEnded> {
        let deadline = Instant::now() + timeout;
        while self.window.in_flight() > 0 && self.ended.is_none() && Instant::now() < deadline {
            self.serve(Duration::from_millis(10));
        }
        match &self.ended {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Ends the session: purges what librdkafka still holds and drops the producer.
    pub fn close(self) {
        drop(self.publisher);
    }
}
