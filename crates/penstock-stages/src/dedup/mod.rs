//! Deduplication by key within a time window (see `docs/state.md`).
//!
//! - [`decide`]: one row's verdict against the entries of its key — pure.
//! - [`PartitionDedup`]: a source partition's decisions batch after batch, the entries
//!   not yet written down (ahead of delivery, or handed to the store's writer) and the
//!   write of those a delivery covers; [`overlay`] holds those entries, by key.
//! - [`Dedup`]: the stage over blocks (key columns hashed, time read, rows dropped).
//! - [`KeyStore`] / [`PartitionKeys`]: where the written-down entries live — the
//!   embedded store of `penstock-state` in the pipeline, [`MemoryStore`] in tests.

pub mod decide;
pub mod key;
pub mod memory;
pub mod overlay;
pub mod partition;
pub mod stage;

pub use decide::{bucket_of, decide, Entry, Verdict};
pub use key::{DedupTime, KeyHash};
pub use memory::MemoryStore;
pub use partition::{PartitionDedup, Row};
pub use stage::{Dedup, DedupSpec};

/// What a partition's written-down state covers: every row below `next_offset` has
/// been applied, and `watermark` is the largest time (ms) among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Covers {
    /// One past the last applied offset.
    pub next_offset: i64,
    /// Largest time applied (ms); `i64::MIN` before any.
    pub watermark: i64,
}

/// One atomic write of a partition's state: the entries of the delivered batches, what
/// the state covers after them, and the time buckets it no longer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    /// `(bucket, key, entry)`, in the order they were made (a later one for the same
    /// bucket and key replaces an earlier one).
    pub entries: Vec<(i64, KeyHash, Entry)>,
    /// What the state covers once this write is applied.
    pub covers: Covers,
    /// Buckets below this one hold only expired entries and may be dropped whole.
    pub expire_below: i64,
}

/// Sizes of a partition's state, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSize {
    /// Keys written down (approximate for an on-disk store).
    pub keys: u64,
    /// Bytes on disk (0 in memory).
    pub bytes: u64,
}

/// The store of one stage: one [`PartitionKeys`] per source partition.
pub trait KeyStore: Send {
    /// Opens `topic`/`partition`'s state (empty when it has none).
    fn open(&mut self, topic: &str, partition: i32) -> Result<Box<dyn PartitionKeys>, String>;
}

/// One source partition's written-down state, as the partition's decisions see it.
///
/// Writes are handed over and applied later, in order, atomically and durably (the
/// on-disk store applies them on a writer thread, coalesced); until a write is applied
/// its entries stay in the partition's overlay, so lookups never miss them. Lookups see
/// what was applied up to the last [`PartitionKeys::refresh`].
pub trait PartitionKeys: Send {
    /// What the applied writes cover; `None` when nothing was ever written.
    fn covers(&self) -> Option<Covers>;
    /// Takes in the writes applied since the last call (lookups see them from now on)
    /// and returns what they cover: a write's entries may leave the overlay once the
    /// covers reach its end. `Err` when a write failed (the pipeline stops).
    fn refresh(&mut self) -> Result<Option<Covers>, String>;
    /// False when `bucket` certainly holds no entry of `key` (a filter).
    fn may_contain(&self, bucket: i64, key: &KeyHash) -> bool;
    /// For each row, bit `j` set when bucket `bucket_of(time - window) + j` may hold its
    /// key (`j` ≤ 2: a row's window spans at most three buckets). One call per batch,
    /// so a store can keep its per-bucket lookups out of the per-row path.
    fn probe(&self, rows: &[Row], window: i64, out: &mut Vec<u8>) {
        out.clear();
        out.extend(rows.iter().map(|r| {
            let lo = bucket_of(r.time.saturating_sub(window), window);
            let hi = bucket_of(r.time.saturating_add(window), window);
            (0..=(hi - lo).min(2)).fold(0u8, |m, j| m | (u8::from(self.may_contain(lo + j, &r.key)) << j))
        }));
    }
    /// The entry of `key` in time bucket `bucket`.
    fn get(&self, bucket: i64, key: &KeyHash) -> Result<Option<Entry>, String>;
    /// Hands `write` over, to be applied after the writes handed before it.
    fn write(&mut self, write: StateWrite) -> Result<(), String>;
    /// Waits until every write handed over is applied.
    fn flush(&mut self) -> Result<(), String>;
    /// Its size now.
    fn size(&self) -> StateSize;
}
