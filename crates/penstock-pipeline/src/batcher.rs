//! Per-partition batching decisions: where a message goes, when a batch is sealed.
//!
//! Pure and synchronous: the source loop feeds it messages and the clock, and takes
//! sealed batches out. A batch is sealed when it reaches `max_rows` or `max_bytes`,
//! when its first message is older than `max_wait`, or when the open batches together
//! exceed the memory budget (then the largest is sealed), so memory stays bounded
//! whatever the number of partitions.

use crate::batch::{OpenBatch, SealedBatch};
use penstock_codec::{Block, Timestamp};
use penstock_config::BatchLimits;
use penstock_kafka::Partition;
use std::time::{Duration, Instant};

/// Where and when a message would open a batch.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    /// The offset the batch starts at.
    pub offset: i64,
    /// Arrival time (for `max_wait`).
    pub at: Instant,
    /// The batch's `now`.
    pub batch_time: Timestamp,
}

/// Open batches for the partitions this process owns.
#[derive(Debug)]
pub struct Batcher {
    limits: BatchLimits,
    budget: usize,
    template: Block,
    /// Per topic: the open batch of each partition id (indexed by id).
    topics: Vec<(String, Vec<Option<OpenBatch>>)>,
    /// Spare blocks, reused to avoid reallocating column buffers.
    spare: Vec<Block>,
}

impl Batcher {
    /// A batcher whose batches have `template`'s columns; `budget` bounds the bytes
    /// held by all open batches together.
    pub fn new(limits: BatchLimits, budget: usize, template: Block) -> Self {
        Batcher { limits, budget: budget.max(limits.max_bytes), template, topics: Vec::new(), spare: Vec::new() }
    }

    fn slot(&mut self, topic: &str, partition: i32) -> &mut Option<OpenBatch> {
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
            parts.resize_with(pi + 1, || None);
        }
        &mut parts[pi]
    }

    /// The open batch for `topic`/`partition`, opened at `offset` if there is none.
    /// If the message does not continue the open range (a gap after a seek or
    /// compaction is fine; going backwards is not), the open batch is sealed first and
    /// returned in `sealed`.
    pub fn batch_for(
        &mut self,
        topic: &str,
        partition: i32,
        open: Opening,
        epoch: impl FnOnce() -> u64,
        sealed: &mut Vec<SealedBatch>,
    ) -> &mut OpenBatch {
        let Opening { offset, at: now, batch_time } = open;
        let backwards = self.slot(topic, partition).as_ref().is_some_and(|b| offset < b.next_offset);
        if backwards {
            if let Some(b) = self.seal(topic, partition) {
                sealed.push(b);
            }
        }
        let template = &self.template;
        let spare = &mut self.spare;
        let slot = {
            let ti = self.topics.iter().position(|(t, _)| t == topic).expect("slot() created the topic");
            &mut self.topics[ti].1[usize::try_from(partition).unwrap_or(0)]
        };
        slot.get_or_insert_with(|| OpenBatch {
            epoch: epoch(),
            block: spare.pop().unwrap_or_else(|| template.empty_like()),
            first_offset: offset,
            next_offset: offset,
            messages: 0,
            skipped: 0,
            payload_bytes: 0,
            opened_at: now,
            batch_time,
            replay_end: None,
            already_landed: 0,
        })
    }

    /// True when `batch` must be sealed because of its own size (never a replayed one).
    pub fn is_full(&self, batch: &OpenBatch) -> bool {
        batch.replay_end.is_none()
            && (batch.block.rows() >= self.limits.max_rows || batch.block.byte_len() >= self.limits.max_bytes)
    }

    /// True when the open batch of a partition must be sealed because of its size.
    pub fn is_full_at(&self, topic: &str, partition: i32) -> bool {
        self.topics
            .iter()
            .find(|(t, _)| t == topic)
            .and_then(|(_, parts)| parts.get(usize::try_from(partition).ok()?)?.as_ref())
            .is_some_and(|b| self.is_full(b))
    }

    /// Seals the open batch of a partition, if any.
    pub fn seal(&mut self, topic: &str, partition: i32) -> Option<SealedBatch> {
        let b = self.slot(topic, partition).take()?;
        Some(SealedBatch {
            partition: Partition { topic: topic.to_string(), partition },
            epoch: b.epoch,
            first_offset: b.first_offset,
            next_offset: b.replay_end.unwrap_or(b.next_offset),
            batch_time: b.batch_time,
            replay: b.replay_end.is_some(),
            already_landed: b.already_landed,
            block: b.block,
            messages: b.messages,
            skipped: b.skipped,
            payload_bytes: b.payload_bytes,
            opened_at: b.opened_at,
        })
    }

    /// Seals every batch older than `max_wait`, and the largest batches while the total
    /// exceeds the memory budget.
    pub fn seal_due(&mut self, now: Instant, out: &mut Vec<SealedBatch>) {
        let mut total = 0;
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].1.len() {
                let Some(b) = &self.topics[ti].1[pi] else { continue };
                if b.replay_end.is_some() {
                    continue;
                }
                if now.duration_since(b.opened_at) >= self.limits.max_wait {
                    out.extend(self.seal_at(ti, pi));
                } else {
                    total += b.block.byte_len();
                }
            }
        }
        while total > self.budget {
            let largest = self
                .topics
                .iter()
                .enumerate()
                .flat_map(|(ti, (_, parts))| {
                    parts.iter().enumerate().filter_map(move |(pi, b)| {
                        b.as_ref().filter(|b| b.replay_end.is_none()).map(|b| (b.block.byte_len(), ti, pi))
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
                if slot.as_ref().is_some_and(|b| b.replay_end.is_some()) {
                    *slot = None;
                }
            }
        }
        let keys: Vec<(String, i32)> = self
            .topics
            .iter()
            .flat_map(|(t, parts)| {
                parts.iter().enumerate().filter(|(_, b)| b.is_some()).map(move |(i, _)| (t.clone(), i as i32))
            })
            .collect();
        for (topic, p) in keys {
            if let Some(b) = self.seal(&topic, p) {
                out.push(b);
            }
        }
    }

    /// Drops the open batches of revoked partitions (their messages will be read again
    /// by the next owner from the committed offset).
    pub fn discard(&mut self, partitions: &[Partition]) {
        for p in partitions {
            if let Some(b) = self.slot(&p.topic, p.partition).take() {
                self.recycle(b.block);
            }
        }
    }

    /// Returns a block's buffers for reuse.
    pub fn recycle(&mut self, mut block: Block) {
        if self.spare.len() < 4 {
            block.clear();
            self.spare.push(block);
        }
    }

    /// Time until the oldest open batch is due, if any is open.
    pub fn next_deadline(&self, now: Instant) -> Option<Duration> {
        self.topics
            .iter()
            .flat_map(|(_, parts)| parts.iter().flatten())
            .map(|b| (b.opened_at + self.limits.max_wait).saturating_duration_since(now))
            .min()
    }

    /// True when no batch is open.
    pub fn is_empty(&self) -> bool {
        self.topics.iter().all(|(_, parts)| parts.iter().all(Option::is_none))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_codec::{Column, ColumnType, Timestamp};

    fn batcher(max_rows: usize, max_bytes: usize, budget: usize) -> Batcher {
        let limits = BatchLimits { max_rows, max_bytes, max_wait: Duration::from_millis(100) };
        Batcher::new(limits, budget, Block::new(vec![Column::new("v", ColumnType::UInt64)]))
    }

    fn add(b: &mut Batcher, topic: &str, p: i32, off: i64, now: Instant, sealed: &mut Vec<SealedBatch>) -> bool {
        let open = Opening { offset: off, at: now, batch_time: Timestamp { secs: 0, nanos: 0 } };
        let batch = b.batch_for(topic, p, open, || 7, sealed);
        batch.block.columns_mut()[0].push_fixed(&(off as u64).to_le_bytes());
        batch.block.commit_row();
        batch.next_offset = off + 1;
        batch.messages += 1;
        let full = b.is_full(b.topics.iter().find(|(t, _)| t == topic).unwrap().1[p as usize].as_ref().unwrap());
        full
    }

    #[test]
    fn batches_are_contiguous_per_partition() {
        let mut b = batcher(3, 1 << 20, 1 << 20);
        let now = Instant::now();
        let mut sealed = Vec::new();
        for off in 0..3 {
            assert_eq!(add(&mut b, "t", 0, off, now, &mut sealed), off == 2);
            add(&mut b, "t", 1, 100 + off, now, &mut sealed);
        }
        let s = b.seal("t", 0).unwrap();
        assert_eq!((s.first_offset, s.next_offset, s.block.rows()), (0, 3, 3));
        let s = b.seal("t", 1).unwrap();
        assert_eq!((s.first_offset, s.next_offset), (100, 103));
        assert!(b.is_empty());
    }

    #[test]
    fn going_backwards_seals_the_open_range() {
        let mut b = batcher(100, 1 << 20, 1 << 20);
        let now = Instant::now();
        let mut sealed = Vec::new();
        add(&mut b, "t", 0, 5, now, &mut sealed);
        add(&mut b, "t", 0, 6, now, &mut sealed);
        add(&mut b, "t", 0, 2, now, &mut sealed);
        assert_eq!(sealed.len(), 1);
        assert_eq!((sealed[0].first_offset, sealed[0].next_offset), (5, 7));
    }

    #[test]
    fn age_and_budget() {
        let mut b = batcher(1000, 1 << 20, 1024);
        let t0 = Instant::now();
        let mut sealed = Vec::new();
        add(&mut b, "t", 0, 0, t0, &mut sealed);
        for off in 0..200 {
            add(&mut b, "t", 1, off, t0 + Duration::from_millis(50), &mut sealed);
        }
        assert_eq!(b.next_deadline(t0), Some(Duration::from_millis(100)));
        let mut out = Vec::new();
        b.seal_due(t0 + Duration::from_millis(60), &mut out);
        // Partition 1 holds 1600 bytes > 1024 budget... but the budget is at least
        // max_bytes (1 MiB), so nothing is sealed for size, and partition 0 is not due.
        assert!(out.is_empty());
        b.seal_due(t0 + Duration::from_millis(100), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].partition.partition, 0);
    }

    #[test]
    fn budget_seals_the_largest() {
        let limits = BatchLimits { max_rows: 1000, max_bytes: 1024, max_wait: Duration::from_secs(60) };
        let mut b = Batcher::new(limits, 1024, Block::new(vec![Column::new("v", ColumnType::UInt64)]));
        let now = Instant::now();
        let mut sealed = Vec::new();
        for off in 0..100 {
            add(&mut b, "t", 0, off, now, &mut sealed);
        }
        for off in 0..50 {
            add(&mut b, "t", 1, off, now, &mut sealed);
        }
        let mut out = Vec::new();
        b.seal_due(now, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].partition.partition, 0);
    }

    #[test]
    fn discard_and_seal_all() {
        let mut b = batcher(100, 1 << 20, 1 << 20);
        let now = Instant::now();
        let mut sealed = Vec::new();
        add(&mut b, "a", 0, 0, now, &mut sealed);
        add(&mut b, "b", 3, 0, now, &mut sealed);
        b.discard(&[Partition { topic: "a".into(), partition: 0 }]);
        let mut out = Vec::new();
        b.seal_all(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].partition.topic.as_str(), out[0].partition.partition, out[0].epoch), ("b", 3, 7));
    }
}
