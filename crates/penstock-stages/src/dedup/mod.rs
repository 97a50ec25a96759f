//! Deduplication by key within a time window (see `docs/state.md`).
//!
//! - [`decide`]: one row's verdict against the entries of its key — pure.
//! - [`PartitionDedup`]: a source partition's decisions batch after batch, the entries
//!   not yet written down (ahead of delivery) and the write of those a delivery covers.
//! - [`Dedup`]: the stage over blocks (key columns hashed, time read, rows dropped).
//! - [`KeyStore`] / [`PartitionKeys`]: where the written-down entries live — the
//!   embedded store of `penstock-state` in the pipeline, [`MemoryStore`] in tests.

pub mod decide;
pub mod key;
pub mod memory;
pub mod partition;
pub mod stage;

pub use decide::{bucket_of, decide, Entry, Verdict};
pub use key::{DedupTime, KeyHash};
pub use memory::MemoryStore;
pub use partition::PartitionDedup;
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

/// One source partition's written-down state.
pub trait PartitionKeys: Send {
    /// What the state covers; `None` when nothing was ever written.
    fn covers(&self) -> Option<Covers>;
    /// The entry of `key` in time bucket `bucket`.
    fn get(&self, bucket: i64, key: &KeyHash) -> Result<Option<Entry>, String>;
    /// Applies `write` atomically and durably.
    fn write(&mut self, write: &StateWrite) -> Result<(), String>;
    /// Its size now.
    fn size(&self) -> StateSize;
}
