//! A [`KeyStore`] in memory: the store of the unit tests and crash models. It keeps
//! what a durable store keeps across a "crash" (a reopen), and drops expired buckets
//! whole, as the on-disk store does.

use super::{Covers, Entry, KeyHash, KeyStore, PartitionKeys, StateSize, StateWrite};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

type Buckets = BTreeMap<i64, HashMap<KeyHash, Entry>>;
/// One partition's buckets and covers, shared by its handles.
type Shared = Arc<Mutex<(Buckets, Option<Covers>)>>;

/// Partitions' states, shared by every handle opened on them (so a reopened handle
/// sees what was written, as after a restart).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    parts: Arc<Mutex<HashMap<(String, i32), Shared>>>,
}

impl KeyStore for MemoryStore {
    fn open(&mut self, topic: &str, partition: i32) -> Result<Box<dyn PartitionKeys>, String> {
        let mut g = self.parts.lock().map_err(|e| e.to_string())?;
        let state = g.entry((topic.to_string(), partition)).or_default().clone();
        Ok(Box::new(MemoryPartition { state }))
    }
}

struct MemoryPartition {
    state: Shared,
}

impl PartitionKeys for MemoryPartition {
    fn covers(&self) -> Option<Covers> {
        self.state.lock().ok().and_then(|g| g.1)
    }

    fn refresh(&mut self) -> Result<Option<Covers>, String> {
        Ok(self.covers())
    }

    fn may_contain(&self, bucket: i64, key: &KeyHash) -> bool {
        self.state.lock().is_ok_and(|g| g.0.get(&bucket).is_some_and(|m| m.contains_key(key)))
    }

    fn get(&self, bucket: i64, key: &KeyHash) -> Result<Option<Entry>, String> {
        let g = self.state.lock().map_err(|e| e.to_string())?;
        Ok(g.0.get(&bucket).and_then(|m| m.get(key)).copied())
    }

    fn write(&mut self, w: StateWrite) -> Result<(), String> {
        let mut g = self.state.lock().map_err(|e| e.to_string())?;
        for (b, k, e) in &w.entries {
            let _ = g.0.entry(*b).or_default().insert(*k, *e);
        }
        g.0 = g.0.split_off(&w.expire_below);
        g.1 = Some(w.covers);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn size(&self) -> StateSize {
        let keys = self.state.lock().map_or(0, |g| g.0.values().map(|m| m.len() as u64).sum());
        StateSize { keys, bytes: 0 }
    }
}
