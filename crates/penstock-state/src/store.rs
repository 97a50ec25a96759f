//! The store of one stage, under `<state.dir>/<pipeline>/<stage>`: one directory per
//! source partition (`<topic>#<partition>`) holding its runs and manifest
//! ([`crate::runs`]), and a `LOCK` file held while a process uses the store (one
//! process per directory).
//!
//! A partition's write (its entries, its covers) is atomic and synced before it
//! returns; a crash in the middle leaves the last complete write. Memory: the
//! partitions' filters, within `state.memory` whatever the key count, and the
//! kernel's page cache (not the process's) for the blocks read.

use crate::changelog::Changelog;
use crate::runs::{covers_in, FilterBudget, PartitionRuns};
use crate::StateError;
use penstock_stages::dedup::{Covers, Entry, KeyHash, KeyStore, PartitionKeys, StateSize, StateWrite};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a pipeline keeps its stage state, and how much memory it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// The pipeline's state directory (`state.dir`).
    pub dir: PathBuf,
    /// Block cache bytes per stage (`state.memory`).
    pub memory: u64,
}

/// What a restore from the changelog did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    /// Source topic and partition.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Changelog records read.
    pub records: u64,
    /// Writes applied.
    pub writes: u64,
    /// What the restored state covers.
    pub covers: Option<i64>,
    /// How long it took.
    pub took: Duration,
}

struct Inner {
    dir: PathBuf,
    changelog: Option<Changelog>,
    restores: Mutex<Vec<Restore>>,
    budget: Arc<FilterBudget>,
    /// Held (locked) while the store is open.
    _lock: std::fs::File,
}

/// One stage's store (cheap to clone: the rebalance hook prepares partitions with
/// one clone, the stage reads and writes them with another).
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").field("dir", &self.inner.dir).finish()
    }
}

fn store_err(dir: &std::path::Path, e: std::io::Error) -> StateError {
    StateError::Store(format!("{}: {e}", dir.display()))
}

impl StateStore {
    /// Opens (creating) the store of `stage` of `pipeline` under `settings.dir`.
    pub fn open(
        settings: &StateSettings,
        pipeline: &str,
        stage: &str,
        changelog: Option<Changelog>,
    ) -> Result<Self, StateError> {
        let dir = settings.dir.join(pipeline).join(stage);
        let dir_err = |message: String| StateError::Directory { dir: settings.dir.display().to_string(), message };
        std::fs::create_dir_all(&dir).map_err(|e| dir_err(format!("cannot create {}: {e}", dir.display())))?;
        let lock_path = dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| dir_err(format!("cannot write in {}: {e}", dir.display())))?;
        lock.try_lock().map_err(|_| {
            dir_err(format!("{} is in use by another process (one process per state directory)", dir.display()))
        })?;
        let budget = Arc::new(FilterBudget { limit: settings.memory, used: AtomicU64::new(0) });
        let inner = Inner { dir, changelog, restores: Mutex::new(Vec::new()), budget, _lock: lock };
        Ok(StateStore { inner: Arc::new(inner) })
    }

    /// The store's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.inner.dir
    }

    /// The changelog topic, when there is one.
    pub fn changelog_topic(&self) -> Option<&str> {
        self.inner.changelog.as_ref().map(Changelog::topic)
    }

    /// Restores taken so far (for status and metrics).
    pub fn restores(&self) -> Vec<Restore> {
        self.inner.restores.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.inner.dir.join(format!("{topic}#{partition}"))
    }

    /// What `topic`/`partition`'s local state covers.
    pub fn covers(&self, topic: &str, partition: i32) -> Result<Option<Covers>, StateError> {
        let dir = self.partition_dir(topic, partition);
        covers_in(&dir).map_err(|e| store_err(&dir, e))
    }

    /// Makes `topic`/`partition`'s state ready before its messages are read: the local
    /// state when there is one, else the changelog's (writes beyond `delivered`, the
    /// sink's delivered position, ignored). Returns the offset the state covers: the
    /// source re-reads from there to `delivered` to bring it forward.
    pub fn prepare(&self, topic: &str, partition: i32, delivered: Option<i64>) -> Result<Option<i64>, StateError> {
        if let Some(c) = self.covers(topic, partition)? {
            return Ok(Some(c.next_offset));
        }
        let Some(changelog) = &self.inner.changelog else { return Ok(None) };
        let started = Instant::now();
        let mut part = self.partition(topic, partition)?;
        let (mut writes, mut stopped) = (0u64, false);
        let mut failure = None;
        let records = changelog.read(topic, partition, |chunks| {
            if stopped || failure.is_some() {
                return;
            }
            let head = &chunks[0];
            if delivered.is_some_and(|d| head.covers.next_offset > d) {
                return; // beyond what the sink delivered: not part of the state
            }
            let at = part.runs.covers().map(|c| c.next_offset);
            let apply = match (head.from, at) {
                (None, _) => {
                    // The writer started from nothing: so does the state.
                    if let Err(e) = part.runs.clear().map_err(|e| e.to_string()) {
                        failure = Some(e);
                        return;
                    }
                    true
                }
                (Some(from), Some(at)) => from <= at && head.covers.next_offset > at,
                (Some(_), None) => false, // its start was lost: wait for a write from nothing
            };
            if let (Some(from), Some(at)) = (head.from, at) {
                if from > at {
                    tracing::warn!(
                        topic,
                        partition,
                        at,
                        from,
                        "changelog has a gap; the rest is re-read from the source"
                    );
                    stopped = true;
                    return;
                }
            }
            if !apply {
                return;
            }
            let write = StateWrite {
                entries: chunks.iter().flat_map(|c| c.entries.iter().copied()).collect(),
                covers: head.covers,
                expire_below: head.expire_below,
            };
            match part.runs.write(&write).map_err(|e| e.to_string()) {
                Ok(()) => {
                    writes += 1;
                    penstock_protocol::failpoint::hit("during_restore");
                }
                Err(e) => failure = Some(e),
            }
        })?;
        if let Some(e) = failure {
            return Err(StateError::Store(e));
        }
        let covers = part.runs.covers().map(|c| c.next_offset);
        let r = Restore { topic: topic.into(), partition, records, writes, covers, took: started.elapsed() };
        tracing::info!(
            topic,
            partition,
            records,
            writes,
            covers,
            took_ms = r.took.as_millis() as u64,
            "state restored from the changelog"
        );
        if let Ok(mut g) = self.inner.restores.lock() {
            g.push(r);
        }
        Ok(covers)
    }

    fn partition(&self, topic: &str, partition: i32) -> Result<StorePartition, StateError> {
        let dir = self.partition_dir(topic, partition);
        let runs = PartitionRuns::open(&dir, self.inner.budget.clone()).map_err(|e| store_err(&dir, e))?;
        Ok(StorePartition { store: self.clone(), topic: topic.into(), partition, runs })
    }
}

impl KeyStore for StateStore {
    fn open(&mut self, topic: &str, partition: i32) -> Result<Box<dyn PartitionKeys>, String> {
        Ok(Box::new(self.partition(topic, partition).map_err(|e| e.to_string())?))
    }
}

/// One partition's state in the store.
struct StorePartition {
    store: StateStore,
    topic: String,
    partition: i32,
    runs: PartitionRuns,
}

impl PartitionKeys for StorePartition {
    fn covers(&self) -> Option<Covers> {
        self.runs.covers()
    }

    #[inline]
    fn get(&self, bucket: i64, key: &KeyHash) -> Result<Option<Entry>, String> {
        self.runs.get(bucket, key).map_err(|e| e.to_string())
    }

    fn write(&mut self, w: &StateWrite) -> Result<(), String> {
        if let Some(c) = &self.store.inner.changelog {
            let from = self.runs.covers().map(|c| c.next_offset);
            c.publish(&self.topic, self.partition, from, w).map_err(|e| e.to_string())?;
        }
        self.runs.write(w).map_err(|e| e.to_string())?;
        penstock_protocol::failpoint::hit("after_state_write");
        Ok(())
    }

    fn size(&self) -> StateSize {
        let (keys, bytes, _) = self.runs.size();
        StateSize { keys, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_stages::dedup::{PartitionDedup, Verdict};

    fn settings(dir: &std::path::Path) -> StateSettings {
        StateSettings { dir: dir.to_path_buf(), memory: 8 << 20 }
    }

    fn k(n: u32) -> KeyHash {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&n.to_le_bytes());
        KeyHash(b)
    }

    #[test]
    fn written_state_survives_a_reopen_and_expired_buckets_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = StateStore::open(&settings(dir.path()), "p", "dedup", None).unwrap();
            let mut part = PartitionDedup::new(store.open("t", 3).unwrap(), 1_000);
            for i in 0..100u32 {
                assert_eq!(
                    part.row(&k(i % 50), i64::from(i), i64::from(i) * 10).unwrap() == Verdict::Duplicate,
                    i >= 50
                );
            }
            part.seal(100);
            part.delivered(100).unwrap();
            assert_eq!(part.size().keys, 50);
        }
        let mut store = StateStore::open(&settings(dir.path()), "p", "dedup", None).unwrap();
        assert_eq!(store.prepare("t", 3, Some(100)).unwrap(), Some(100));
        assert_eq!(store.prepare("t", 4, None).unwrap(), None, "another partition has nothing");
        let mut part = PartitionDedup::new(store.open("t", 3).unwrap(), 1_000);
        assert_eq!(part.covers(), Some(Covers { next_offset: 100, watermark: 990 }));
        assert_eq!(part.row(&k(7), 100, 1_000).unwrap(), Verdict::Duplicate, "key 7 at 70 ms is within the window");
        // Time moves 5 windows on: the first buckets expire and are dropped.
        assert!(matches!(part.row(&k(999), 101, 6_000).unwrap(), Verdict::New(6)));
        part.seal(102);
        part.delivered(102).unwrap();
        let manifest = std::fs::read(store.partition_dir("t", 3).join("MANIFEST")).unwrap();
        assert!(!manifest.is_empty());
        assert_eq!(part.size().keys, 1, "buckets 0 to 4 dropped, the key of bucket 6 left");
        assert_eq!(part.row(&k(7), 102, 6_001).unwrap(), Verdict::New(6), "expired, then dropped");
    }

    #[test]
    fn a_second_process_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateStore::open(&settings(dir.path()), "p", "dedup", None).unwrap();
        let err = StateStore::open(&settings(dir.path()), "p", "dedup", None).unwrap_err().to_string();
        assert!(err.contains("in use by another process"), "{err}");
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let err = StateStore::open(&settings(&file), "p", "dedup", None).unwrap_err().to_string();
        assert!(err.contains("a-file") && err.contains("cannot create"), "{err}");
    }
}
