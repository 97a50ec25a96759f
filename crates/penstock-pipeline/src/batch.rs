//! Batches: the source ranges a batch covers, and the columns decoded from them.
//!
//! A batch is described by its [`BatchRanges`]: one or more contiguous offset ranges,
//! each of one partition, its rows in range order. Everything downstream is a function
//! of (state at the batch's start, the batch), so a batch rebuilt from its ranges gives
//! the same output — the property the exactly-once protocols build on — and offsets are
//! committed per range in order.
//!
//! The batcher cuts single-range batches today, and the ClickHouse sink takes only
//! those: its ledger records one range per partition, and a replay rebuilds a batch
//! from that one range. Batches over several ranges (one insert for many partitions'
//! small batches, a join's two inputs) need the ledger to record the whole set under
//! one batch id and recovery to rebuild them together; that is designed in
//! `docs/exactly-once.md` ("Batches over several ranges") and comes with the work that
//! cuts such batches.

use crate::origins::RowOrigins;
use penstock_codec::{Block, Timestamp};
use penstock_config::BatchLimits;
use penstock_kafka::Partition;
use std::time::Instant;

/// Messages between two checks of a batch's byte size (see [`OpenBatch::is_full`]).
pub const BYTES_CHECK_EVERY: u64 = 32;

/// A batch being filled.
#[derive(Debug)]
pub struct OpenBatch {
    /// Ownership epoch of the partition when the first message was read.
    pub epoch: u64,
    /// Decoded rows, their origins, and the batch's dead letters.
    pub buffers: Buffers,
    /// First offset in the range.
    pub first_offset: i64,
    /// One past the last offset seen.
    pub next_offset: i64,
    /// Messages in the range (rows + undecodable).
    pub messages: u64,
    /// Messages that could not be decoded (dead-lettered).
    pub undecodable: u64,
    /// Payload bytes consumed.
    pub payload_bytes: u64,
    /// When the first message arrived.
    pub opened_at: Instant,
    /// The batch's `now` (fixed per batch, recorded in the exactly-once ledger).
    pub batch_time: Timestamp,
    /// For a replayed batch: the exact end of its range. Such a batch is sealed only
    /// when its range is complete, never by age, size or shutdown.
    pub replay_end: Option<i64>,
    /// Messages of a replayed range whose rows had already landed (left out).
    pub already_landed: u64,
    /// For a replayed batch: offsets of its range already in the dead-letter table.
    pub dead_landed: Vec<i64>,
    /// For a replayed batch: offsets of its range whose rows already landed. They are
    /// decoded and pass the stages like the others (stage state must see them), then
    /// leave the batch before it is inserted.
    pub landed: Vec<i64>,
    /// Rows the sink delivered before a restart, read again only to bring stage state
    /// forward (see `docs/state.md`): never inserted.
    pub catch_up: bool,
}

impl OpenBatch {
    /// True when the batch must be sealed because of its size. A replayed batch never
    /// is: it must cover exactly its recorded range.
    ///
    /// The byte size is summed over every column, so it is checked every
    /// [`BYTES_CHECK_EVERY`] messages: a batch may pass `max_bytes` by that many messages.
    pub fn is_full(&self, limits: &BatchLimits) -> bool {
        self.replay_end.is_none()
            && (self.buffers.block.rows() >= limits.max_rows
                || (self.messages.is_multiple_of(BYTES_CHECK_EVERY) && self.buffers.byte_len() >= limits.max_bytes))
    }
}

/// The buffers a batch fills, reused from batch to batch.
#[derive(Debug)]
pub struct Buffers {
    /// Decoded rows.
    pub block: Block,
    /// Where each row came from (for dead-lettering rows ClickHouse rejects).
    pub origins: RowOrigins,
    /// Dead letters of the batch's range, in the dead-letter table's columns.
    pub dead: Block,
}

impl Buffers {
    /// Bytes held, the measure batch sizes and the memory budget use.
    pub fn byte_len(&self) -> usize {
        self.block.byte_len() + self.origins.byte_len() + self.dead.byte_len()
    }

    /// Empties every buffer, keeping allocations.
    pub fn clear(&mut self) {
        self.block.clear();
        self.origins.clear();
        self.dead.clear();
    }

    /// Empty buffers with the same columns.
    pub fn empty_like(&self) -> Buffers {
        Buffers { block: self.block.empty_like(), origins: RowOrigins::default(), dead: self.dead.empty_like() }
    }
}

/// One contiguous offset range of one partition, as a batch covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRange {
    /// Source partition.
    pub partition: Partition,
    /// Ownership epoch of the partition when the range was read (see `ownership`).
    pub epoch: u64,
    /// First offset in the range.
    pub first_offset: i64,
    /// One past the last offset: the offset to commit once delivered.
    pub next_offset: i64,
    /// Rows decoded from the range (the batch's rows are its ranges' rows, in order).
    pub rows: usize,
}

/// The source ranges a batch covers: never empty, at most one per partition, in the
/// order their rows appear in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRanges {
    lead: SourceRange,
    more: Vec<SourceRange>,
}

impl BatchRanges {
    /// A batch of one range.
    pub fn one(range: SourceRange) -> Self {
        BatchRanges { lead: range, more: Vec::new() }
    }

    /// Adds a range whose rows follow the batch's. Refused (given back) when the batch
    /// already covers that partition: a batch holds one contiguous range per partition.
    pub fn push(&mut self, range: SourceRange) -> Result<(), SourceRange> {
        if self.iter().any(|r| r.partition == range.partition) {
            return Err(range);
        }
        self.more.push(range);
        Ok(())
    }

    /// The ranges, in row order.
    pub fn iter(&self) -> impl Iterator<Item = &SourceRange> {
        std::iter::once(&self.lead).chain(self.more.iter())
    }

    /// How many ranges.
    pub fn len(&self) -> usize {
        1 + self.more.len()
    }

    /// Always false: a batch covers at least one range.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The range, when the batch covers exactly one.
    pub fn single(&self) -> Option<&SourceRange> {
        self.more.is_empty().then_some(&self.lead)
    }

    /// The first range (for log lines).
    pub fn lead(&self) -> &SourceRange {
        &self.lead
    }

    /// The range of `partition`, if the batch covers it.
    pub fn of(&self, partition: &Partition) -> Option<&SourceRange> {
        self.iter().find(|r| &r.partition == partition)
    }

    /// Which range row `row` of the batch came from.
    pub fn range_of_row(&self, row: usize) -> Option<&SourceRange> {
        let mut end = 0;
        self.iter().find(|r| {
            end += r.rows;
            row < end
        })
    }

    /// After rows were dropped (stages), each range's count of the rows left: `kept`
    /// flags every row of the batch as it was.
    pub fn recount(&mut self, kept: &[bool]) {
        let mut start = 0;
        let counts: Vec<usize> = self
            .iter()
            .map(|r| {
                let n = kept[start..start + r.rows].iter().filter(|k| **k).count();
                start += r.rows;
                n
            })
            .collect();
        self.lead.rows = counts[0];
        for (r, n) in self.more.iter_mut().zip(&counts[1..]) {
            r.rows = *n;
        }
    }
}

impl std::fmt::Display for BatchRanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}/{} [{}, {})", r.partition.topic, r.partition.partition, r.first_offset, r.next_offset)?;
        }
        Ok(())
    }
}

/// A batch ready to insert.
#[derive(Debug)]
pub struct SealedBatch {
    /// The source ranges it covers.
    pub ranges: BatchRanges,
    /// Decoded rows, their origins, and the batch's dead letters.
    pub buffers: Buffers,
    /// Messages in the range.
    pub messages: u64,
    /// Messages that could not be decoded (dead-lettered).
    pub undecodable: u64,
    /// Payload bytes consumed.
    pub payload_bytes: u64,
    /// When the first message of the batch arrived.
    pub opened_at: Instant,
    /// The batch's `now`.
    pub batch_time: Timestamp,
    /// True for a batch rebuilt from a pending ledger entry.
    pub replay: bool,
    /// Messages of a replayed range whose rows had already landed (left out).
    pub already_landed: u64,
    /// For a replayed batch: offsets of its range already in the dead-letter table.
    pub dead_landed: Vec<i64>,
    /// For a replayed batch: offsets whose rows already landed (dropped after the stages).
    pub landed: Vec<i64>,
    /// Rows delivered before a restart, read again for stage state only.
    pub catch_up: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(partition: i32, first: i64, next: i64, rows: usize) -> SourceRange {
        SourceRange {
            partition: Partition { topic: "t".into(), partition },
            epoch: 1,
            first_offset: first,
            next_offset: next,
            rows,
        }
    }

    #[test]
    fn a_batch_covers_one_range_per_partition_its_rows_in_order() {
        let mut r = BatchRanges::one(range(0, 10, 20, 3));
        assert_eq!(r.single().map(|r| r.next_offset), Some(20));
        assert!(r.push(range(0, 20, 30, 1)).is_err(), "a second range of the same partition");
        r.push(range(2, 5, 7, 2)).unwrap();
        assert_eq!((r.len(), r.single()), (2, None));
        let parts = |row| r.range_of_row(row).map(|x| x.partition.partition);
        assert_eq!([parts(0), parts(2), parts(3), parts(4), parts(5)], [Some(0), Some(0), Some(2), Some(2), None]);
        assert_eq!(r.of(&Partition { topic: "t".into(), partition: 2 }).map(|x| x.first_offset), Some(5));
        assert_eq!(r.to_string(), "t/0 [10, 20), t/2 [5, 7)");
        r.recount(&[true, false, true, false, false]);
        assert_eq!(r.iter().map(|x| x.rows).collect::<Vec<_>>(), vec![2, 0]);
    }
}
