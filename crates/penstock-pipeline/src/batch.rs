//! Batches: each is a contiguous offset range of one partition, decoded into columns.
//!
//! Keeping a batch to one partition's contiguous range means its content is fully
//! determined by (partition, first offset, next offset) — the property the
//! exactly-once protocol builds on — and offsets can be committed per batch in order.

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
                || (self.messages % BYTES_CHECK_EVERY == 0 && self.buffers.byte_len() >= limits.max_bytes))
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

/// A batch ready to insert.
#[derive(Debug)]
pub struct SealedBatch {
    /// Source partition.
    pub partition: Partition,
    /// Ownership epoch of the partition when the batch was read (see `shared`).
    pub epoch: u64,
    /// First offset in the range.
    pub first_offset: i64,
    /// One past the last offset: the offset to commit once inserted.
    pub next_offset: i64,
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
}
