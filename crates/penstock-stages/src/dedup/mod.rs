//! Deduplication by key within a time window — the decision, pure (see
//! `docs/state.md`). The store behind [`Keys`], the stage over blocks, the changelog and
//! restore are not built yet; this is the rule they will run, with the crash model it is
//! checked against.

pub mod decide;
pub mod memory;

pub use decide::{decide, Entry, Occurrence, Verdict};
pub use memory::MemoryKeys;

/// A partition's keys: each key's first occurrence in the current window.
pub trait Keys {
    /// The entry of `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Entry>;
    /// Sets the entry of `key`.
    fn put(&mut self, key: &[u8], entry: Entry);
}
