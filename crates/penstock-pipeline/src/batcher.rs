//! Per-partition batching decisions: where a message goes, when a batch is sealed.
//!
//! Pure and synchronous: the source loop feeds it messages and the clock, and takes
//! sealed batches out. A batch is sealed when it reaches `max_rows` or `max_bytes`,
//! when its first message is older than `max_wait`, or when the open batches together
//! exceed the memory budget (then the largest is sealed), so memory stays bounded
//! whatever the number of partitions.

use crate::batch::{BatchRanges, Buffers, OpenBatch, SealedBatch, SourceRange};
use penstock_codec::Timestamp;
use penstock_config::BatchLimits;
use penstock_kafka::Partition;
use std::time::{Duration, Instant};

/// A message about to join a batch, and where and when it would open one.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    /// The message's own offset (checked against the partition's position).
    pub message: i64,
    /// The offset a new batch starts at (the message's, or a replayed range's first).
    pub offset: i64,
    /// Arrival time (for `max_wait`).
    pub at: Instant,
    /// The batch's `now`.
    pub batch_time: Timestamp,
}

/// One owned partition: its open batch and how far it has been read.
#[derive(Debug, Default)]
struct Slot {
    open: Option<OpenBatch>,
    /// One past the last offset taken into a batch under the current ownership.
    position: Option<i64>,
}

/// Open batches for the partitions this process owns.
#[derive(Debug)]
pub struct Batcher {
    limits: BatchLimits,
    budget: usize,
    template: Buffers,
    /// Per topic: the slot of each partition id (indexed by id).
    topics: Vec<(String, Vec<Slot>)>,
    /// Spare buffers, reused to avoid reallocating column buffers.
    spare: Vec<Buffers>,
}

impl Batcher {
    /// A batcher whose batches have `template`'s columns; `budget` bounds the bytes
    /// held by all open batches together.
    pub fn new(limits: BatchLimits, budget: usize, template: Buffers) -> Self {
        Batcher { limits, budget: budget.max(limits.max_bytes), template, topics: Vec::new(), spare: Vec::new() }
    }

    /// Indexes of a partition's slot, creating it when new.
    fn slot_index(&mut self, topic: &str, partition: i32) -> (usize, usize) {
        let ti = match self.topics.iter().position(|(t, _)| t == topic) {
            Some(i) => i,
            None => {
                self.topics.push((topic.to_string(), Vec::new()));
                self.topics.len() - 1
            }
        };
        let parts = &mut self.topics[ti].1;
        let pi = usize::try_from(partition).unwrap_or(0);
        if parts.len() <= pi {
            parts.resize_with(pi + 1, Slot::default);
        }
        (ti, pi)
    }

    fn slot(&mut self, topic: &str, partition: i32) -> &mut Slot {
        let (ti, pi) = self.slot_index(topic, partition);
        &mut self.topics[ti].1[pi]
    }

    fn slot_ref(&self, topic: &str, partition: i32) -> Option<&Slot> {
        let (_, parts) = self.topics.iter().find(|(t, _)| t == topic)?;
        parts.get(usize::try_from(partition).ok()?)
    }

    /// The open batch that message `open.message` of `topic`/`partition` joins, opened
    /// if there is none; the partition's position moves past the message. `None` when
    /// the message was already taken into a batch under the current ownership (a
    /// re-delivery after a pause or a fetch retry): it must be dropped, or its rows
    /// would be inserted twice.
    pub fn batch_for(
        &mut self,
        topic: &str,
        partition: i32,
        open: Opening,
        epoch: impl FnOnce() -> u64,
    ) -> Option<&mut OpenBatch> {
        let Opening { message, offset, at, batch_time } = open;
        let (ti, pi) = self.slot_index(topic, partition);
        let (template, spare) = (&self.template, &mut self.spare);
        let slot = &mut self.topics[ti].1[pi];
        if slot.position.is_some_and(|p| message < p) {
            return None;
        }
        slot.position = Some(message + 1);
        Some(slot.open.get_or_insert_with(|| OpenBatch {
            epoch: epoch(),
            buffers: spare.pop().unwrap_or_else(|| template.empty_like()),
            first_offset: offset,
            next_offset: offset,
            messages: 0,
            undecodable: 0,
            payload_bytes: 0,
            opened_at: at,
            batch_time,
            replay_end: None,
            already_landed: 0,
            dead_landed: Vec::new(),
            landed: Vec::new(),
            catch_up: false,
        }))
    }

    /// The batch limits.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// True when the open batch of a partition must be sealed because of its size.
    pub fn is_full_at(&self, topic: &str, partition: i32) -> bool {
        self.slot_ref(topic, partition).and_then(|s| s.open.as_ref()).is_some_and(|b| b.is_full(&self.limits))
    }

    /// Seals the open batch of a partition, if any.
    pub fn seal(&mut self, topic: &str, partition: i32) -> Option<SealedBatch> {
        let b = self.slot(topic, partition).open.take()?;
        Some(SealedBatch {
            ranges: BatchRanges::one(SourceRange {
                partition: Partition { topic: topic.to_string(), partition },
                epoch: b.epoch,
                first_offset: b.first_offset,
                next_offset: b.replay_end.unwrap_or(b.next_offset),
                rows: b.buffers.block.rows(),
            }),
            batch_time: b.batch_time,
            replay: b.replay_end.is_some(),
            already_landed: b.already_landed,
            dead_landed: b.dead_landed,
            landed: b.landed,
            catch_up: b.catch_up,
            buffers: b.buffers,
            messages: b.messages,
            undecodable: b.undecodable,
            payload_bytes: b.payload_bytes,
            opened_at: b.opened_at,
        })
    }

    /// Seals every batch older than `max_wait`, and the largest batches while the total
    /// exceeds the memory budget. Replayed batches wait for their whole range.
    pub fn seal_due(&mut self, now: Instant, out: &mut Vec<SealedBatch>) {
        let mut total = 0;
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].1.len() {
                let Some(b) = &self.topics[ti].1[pi].open else { continue };
                if b.replay_end.is_some() {
                    continue;
                }
                if now.duration_since(b.opened_at) >= self.limits.max_wait {
                    out.extend(self.seal_at(ti, pi));
                } else {
                    total += b.buffers.byte_len();
                }
            }
        }
        while total > self.budget {
            let largest = self
                .topics
                .iter()
                .enumerate()
                .flat_map(|(ti, (_, parts))| {
                    parts.iter().enumerate().filter_map(move |(pi, s)| {
                        s.open.as_ref().filter(|b| b.replay_end.is_none()).map(|b| (b.buffers.byte_len(), ti, pi))
                    })
                })
                .max();
            let Some((size, ti, pi)) = largest else { break };
            total -= size;
            out.extend(self.seal_at(ti, pi));
        }
    }

    fn seal_at(&mut self, ti: usize, pi: usize) -> Option<SealedBatch> {
        let topic = self.topics[ti].0.clone();
        self.seal(&topic, pi as i32)
    }

    /// Seals everything (shutdown). An unfinished replayed batch is dropped instead: it
    /// must cover its exact range, and its ledger entry stays pending for the next start.
    pub fn seal_all(&mut self, out: &mut Vec<SealedBatch>) {
        for (_, parts) in &mut self.topics {
            for slot in parts.iter_mut() {
                if slot.open.as_ref().is_some_and(|b| b.replay_end.is_some()) {
                    slot.open = None;
                }
            }
        }
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].1.len() {
                out.extend(self.seal_at(ti, pi));
            }
        }
    }

    /// Forgets revoked partitions: their open batches are dropped (the next owner reads
    /// them again from the committed offset) and their positions reset.
    pub fn discard(&mut self, partitions: &[Partition]) {
        for p in partitions {
            let slot = std::mem::take(self.slot(&p.topic, p.partition));
            if let Some(b) = slot.open {
                self.recycle(b.buffers);
            }
        }
    }

    /// The buffers new batches are made like.
    pub fn template(&self) -> &Buffers {
        &self.template
    }

    /// Changes the columns of batches opened from now on (the schema gained columns).
    /// Call with no batch open; spare buffers of the old shape are dropped.
    pub fn set_template(&mut self, template: Buffers) {
        self.template = template;
        self.spare.clear();
    }

    /// Returns a batch's buffers for reuse (unless they have an outdated shape).
    pub fn recycle(&mut self, mut buffers: Buffers) {
        let same_shape = buffers.block.columns().len() == self.template.block.columns().len();
        if same_shape && self.spare.len() < 4 {
            buffers.clear();
            self.spare.push(buffers);
        }
    }

    /// Time until the oldest open batch is due, if any is open.
    pub fn next_deadline(&self, now: Instant) -> Option<Duration> {
        self.topics
            .iter()
            .flat_map(|(_, parts)| parts.iter().filter_map(|s| s.open.as_ref()))
            .filter(|b| b.replay_end.is_none())
            .map(|b| (b.opened_at + self.limits.max_wait).saturating_duration_since(now))
            .min()
    }

    /// True when no batch is open.
    pub fn is_empty(&self) -> bool {
        self.topics.iter().all(|(_, parts)| parts.iter().all(|s| s.open.is_none()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origins::RowOrigins;
    use penstock_codec::{Block, Column, ColumnType, Timestamp};

    fn batcher(max_rows: usize, max_bytes: usize, budget: usize) -> Batcher {
        let limits = BatchLimits { max_rows, max_bytes, max_wait: Duration::from_millis(100) };
        Batcher::new(limits, budget, template())
    }

    fn template() -> Buffers {
        Buffers {
            block: Block::new(vec![Column::new("v", ColumnType::UInt64)]),
            origins: RowOrigins::default(),
            dead: Block::new(Vec::new()),
        }
    }

    /// Feeds one message as the source loop does; returns whether its batch is full,
    /// or None when the message was a re-delivery.
    fn add(b: &mut Batcher, topic: &str, p: i32, off: i64, now: Instant) -> Option<bool> {
        let open = Opening { message: off, offset: off, at: now, batch_time: Timestamp { secs: 0, nanos: 0 } };
        let batch = b.batch_for(topic, p, open, || 7)?;
        batch.buffers.block.columns_mut()[0].push_fixed(&(off as u64).to_le_bytes());
        batch.buffers.block.commit_row();
        batch.next_offset = off + 1;
        batch.messages += 1;
        Some(b.is_full_at(topic, p))
    }

    #[test]
    fn batches_are_contiguous_per_partition() {
        let mut b = batcher(3, 1 << 20, 1 << 20);
        let now = Instant::now();
        for off in 0..3 {
            assert_eq!(add(&mut b, "t", 0, off, now), Some(off == 2));
            add(&mut b, "t", 1, 100 + off, now);
        }
        let s = b.seal("t", 0).unwrap();
        assert_eq!(
            (s.ranges.lead().first_offset, s.ranges.lead().next_offset, s.buffers.block.rows(), s.ranges.lead().epoch),
            (0, 3, 3, 7)
        );
        let s = b.seal("t", 1).unwrap();
        assert_eq!((s.ranges.lead().first_offset, s.ranges.lead().next_offset), (100, 103));
        assert!(b.is_empty());
    }

    #[test]
    fn redeliveries_are_dropped_even_after_sealing() {
        let mut b = batcher(100, 1 << 20, 1 << 20);
        let now = Instant::now();
        add(&mut b, "t", 0, 5, now);
        add(&mut b, "t", 0, 6, now);
        assert_eq!(add(&mut b, "t", 0, 5, now), None);
        let s = b.seal("t", 0).unwrap();
        assert_eq!((s.ranges.lead().first_offset, s.ranges.lead().next_offset, s.buffers.block.rows()), (5, 7, 2));
        assert_eq!(add(&mut b, "t", 0, 6, now), None, "position survives sealing");
        assert_eq!(add(&mut b, "t", 0, 9, now), Some(false), "gaps are fine");
        b.discard(&[Partition { topic: "t".into(), partition: 0 }]);
        assert_eq!(add(&mut b, "t", 0, 2, now), Some(false), "a new ownership starts afresh");
    }

    #[test]
    fn age_and_budget() {
        let mut b = batcher(1000, 1 << 20, 1024);
        let t0 = Instant::now();
        add(&mut b, "t", 0, 0, t0);
        for off in 0..200 {
            add(&mut b, "t", 1, off, t0 + Duration::from_millis(50));
        }
        assert_eq!(b.next_deadline(t0), Some(Duration::from_millis(100)));
        let mut out = Vec::new();
        // The budget is at least max_bytes (1 MiB): nothing sealed for size, and
        // partition 0 is not due yet.
        b.seal_due(t0 + Duration::from_millis(60), &mut out);
        assert!(out.is_empty());
        b.seal_due(t0 + Duration::from_millis(100), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ranges.lead().partition.partition, 0);
    }

    #[test]
    fn budget_seals_the_largest() {
        let limits = BatchLimits { max_rows: 1000, max_bytes: 1024, max_wait: Duration::from_secs(60) };
        let mut b = Batcher::new(limits, 1024, template());
        let now = Instant::now();
        for off in 0..100 {
            add(&mut b, "t", 0, off, now);
        }
        for off in 0..50 {
            add(&mut b, "t", 1, off, now);
        }
        let mut out = Vec::new();
        b.seal_due(now, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ranges.lead().partition.partition, 0);
    }

    #[test]
    fn replayed_batches_take_every_offset_and_wait_for_their_whole_range() {
        let mut b = batcher(2, 1 << 20, 1 << 20);
        let t0 = Instant::now();
        for off in 10..15 {
            // A replay opens its batch at the range's first offset whatever the message.
            let open = Opening { message: off, offset: 10, at: t0, batch_time: Timestamp { secs: 1, nanos: 0 } };
            let batch = b.batch_for("t", 0, open, || 3).expect("every offset of the range is new");
            batch.replay_end = Some(20);
            batch.buffers.block.columns_mut()[0].push_fixed(&(off as u64).to_le_bytes());
            batch.buffers.block.commit_row();
            batch.next_offset = off + 1;
        }
        assert!(!b.is_full_at("t", 0), "size does not seal a replay");
        let mut out = Vec::new();
        b.seal_due(t0 + Duration::from_secs(3600), &mut out);
        assert!(out.is_empty(), "age does not seal a replay");
        let sealed = b.seal("t", 0).unwrap();
        assert_eq!(
            (
                sealed.ranges.lead().first_offset,
                sealed.ranges.lead().next_offset,
                sealed.buffers.block.rows(),
                sealed.replay
            ),
            (10, 20, 5, true)
        );
        let open = Opening { message: 15, offset: 10, at: t0, batch_time: Timestamp { secs: 1, nanos: 0 } };
        b.batch_for("t", 0, open, || 3).unwrap().replay_end = Some(20);
        b.seal_all(&mut out);
        assert!(out.is_empty() && b.is_empty(), "shutdown drops an unfinished replay");
    }

    #[test]
    fn discard_and_seal_all() {
        let mut b = batcher(100, 1 << 20, 1 << 20);
        let now = Instant::now();
        add(&mut b, "a", 0, 0, now);
        add(&mut b, "b", 3, 0, now);
        b.discard(&[Partition { topic: "a".into(), partition: 0 }]);
        let mut out = Vec::new();
        b.seal_all(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (
                out[0].ranges.lead().partition.topic.as_str(),
                out[0].ranges.lead().partition.partition,
                out[0].ranges.lead().epoch
            ),
            ("b", 3, 7)
        );
    }
}
