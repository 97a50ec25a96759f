//! The producing half of a Kafka-sink session, shared by every source: sends messages
//! (waiting while librdkafka's queue is full), serves delivery reports into the
//! session's acknowledgement tracker, measures produce latency, and notes the first
//! delivery or fatal error — after which nothing more is sent.

use crate::publish::stats::PublishStats;
use penstock_kafka::{Delivery, Publisher, Stamp};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Another instance took the writer lease: this one stops writing at once.
    #[error("the writer lease was lost (another instance writes this pipeline now)")]
    LeaseLost,
}

/// What tracks a session's messages in send order (the floor's acknowledged prefix).
pub trait Acks {
    /// Message `seq` was acknowledged.
    fn acknowledged(&mut self, seq: u64);
    /// Messages sent and not yet acknowledged.
    fn in_flight(&self) -> usize;
}

impl Acks for penstock_protocol::AckWindow {
    fn acknowledged(&mut self, seq: u64) {
        penstock_protocol::AckWindow::acknowledged(self, seq);
    }
    fn in_flight(&self) -> usize {
        penstock_protocol::AckWindow::in_flight(self)
    }
}

impl Acks for penstock_protocol::StreamSender {
    fn acknowledged(&mut self, seq: u64) {
        penstock_protocol::StreamSender::acknowledged(self, seq);
    }
    fn in_flight(&self) -> usize {
        penstock_protocol::StreamSender::in_flight(self)
    }
}

/// One message to send.
pub struct Outgoing<'a> {
    /// Topic number (in the publisher's list).
    pub topic: usize,
    /// Partition.
    pub partition: i32,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Payload.
    pub payload: &'a [u8],
    /// Its timestamp (ms); `None`: the producer's clock.
    pub timestamp_ms: Option<i64>,
    /// Headers.
    pub stamp: Stamp<'a>,
    /// Sequence number of its delivery report.
    pub seq: u64,
}

/// The producer of one session and what its delivery reports said.
pub struct Outbox {
    publisher: Publisher,
    reports: Vec<Delivery>,
    sent_at: VecDeque<Instant>,
    ended: Option<SessionEnded>,
    stats: Arc<PublishStats>,
}

impl Outbox {
    /// A session's outbox over `publisher`.
    pub fn new(publisher: Publisher, stats: Arc<PublishStats>) -> Self {
        Outbox { publisher, reports: Vec::new(), sent_at: VecDeque::new(), ended: None, stats }
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<&SessionEnded> {
        self.ended.as_ref()
    }

    /// Ends the session for a reason found by the caller.
    pub fn end(&mut self, why: SessionEnded) -> SessionEnded {
        self.ended.get_or_insert(why).clone()
    }

    /// Enqueues `m` (sent at `sent_at`, for the latency), serving reports into `acks`
    /// while the queue is full. Fails once the session has ended.
    pub fn send(&mut self, m: Outgoing<'_>, sent_at: Instant, acks: &mut impl Acks) -> Result<(), SessionEnded> {
        self.sent_at.push_back(sent_at);
        loop {
            if let Some(e) = &self.ended {
                return Err(e.clone());
            }
            match self.publisher.send(m.topic, m.partition, m.key, m.payload, m.timestamp_ms, m.stamp, m.seq) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_full)) => {
                    self.serve(QUEUE_FULL_POLL, acks);
                }
                Err(e) => return Err(self.end(SessionEnded::DeliveryFailed(e.to_string()))),
            }
        }
    }

    /// Serves delivery reports for up to `timeout` and applies them to `acks`; true
    /// when any arrived.
    pub fn serve(&mut self, timeout: Duration, acks: &mut impl Acks) -> bool {
        self.publisher.poll(timeout, &mut self.reports);
        let any = !self.reports.is_empty();
        if any {
            let now = Instant::now();
            for d in self.reports.drain(..) {
                match d {
                    Delivery::Acked(seq) => {
                        acks.acknowledged(seq);
                        PublishStats::add(&self.stats.messages_produced, 1);
                    }
                    Delivery::Failed { error, .. } => {
                        self.ended.get_or_insert(SessionEnded::DeliveryFailed(error));
                    }
                }
            }
            // Latency of the acknowledged prefix (send order), for the average.
            while self.sent_at.len() > acks.in_flight() {
                if let Some(t) = self.sent_at.pop_front() {
                    PublishStats::add(&self.stats.produce_latency_us, now.duration_since(t).as_micros() as u64);
                }
            }
        }
        if self.ended.is_none() {
            if let Some(f) = self.publisher.fatal_error() {
                self.ended = Some(SessionEnded::Fatal(f));
            }
        }
        any
    }

    /// Waits until `acks` has nothing in flight, the session ends, or `timeout`.
    pub fn flush(&mut self, timeout: Duration, acks: &mut impl Acks) -> Result<(), SessionEnded> {
        let deadline = Instant::now() + timeout;
        while acks.in_flight() > 0 && self.ended.is_none() && Instant::now() < deadline {
            self.serve(Duration::from_millis(10), acks);
        }
        match &self.ended {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}
