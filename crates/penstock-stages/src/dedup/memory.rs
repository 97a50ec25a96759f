//! Keys held in memory: the state of the unit tests and crash models (and of a
//! partition whose store is not open yet). No expiry here; the on-disk store drops
//! whole time buckets (see `docs/state.md`).

use super::{Entry, Keys};
use std::collections::HashMap;

/// A partition's keys in a map.
#[derive(Debug, Default, Clone)]
pub struct MemoryKeys {
    map: HashMap<Vec<u8>, Entry>,
}

impl MemoryKeys {
    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Keys for MemoryKeys {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.map.get(key).copied()
    }

    fn put(&mut self, key: &[u8], entry: Entry) {
        let _ = self.map.insert(key.to_vec(), entry);
    }
}
