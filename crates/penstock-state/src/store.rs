//! The embedded store of one stage: a fjall database under
//! `<state.dir>/<pipeline>/<stage>`, with
//!
//! - a `meta` keyspace: `topic#partition` → what that partition's state covers;
//! - one keyspace per partition and time bucket, `topic#partition#bucket`: key hash →
//!   entry. A bucket older than the window behind the watermark holds only expired
//!   entries and is dropped whole (no per-key TTL, no tombstones).
//!
//! A partition's write (its entries, its covers, in one batch) is synced before it
//! returns; a crash in the middle leaves the last complete write (fjall's journal).
//! Memory: the block cache (`state.memory`, shared by every partition) and small
//! memtables per keyspace bound it whatever the key count.

use crate::changelog::Changelog;
use crate::record::{covers_bytes, covers_from, entry_bytes, entry_from};
use crate::StateError;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use penstock_stages::dedup::{Covers, Entry, KeyHash, KeyStore, PartitionKeys, StateSize, StateWrite};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Memtable size of a bucket keyspace: written down to a table at this size.
const MEMTABLE: u64 = 4 << 20;

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
    db: Database,
    meta: Keyspace,
    dir: PathBuf,
    changelog: Option<Changelog>,
    restores: Mutex<Vec<Restore>>,
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

fn store_err(e: fjall::Error) -> String {
    e.to_string()
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
        // fjall opens read-only trees happily; prove the directory takes a write first.
        let probe = dir.join(".penstock-write-probe");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| dir_err(format!("cannot write in {}: {e}", dir.display())))?;
        let db = Database::builder(&dir)
            .cache_size(settings.memory)
            .open()
            .map_err(|e| dir_err(format!("cannot open the store in {}: {e}", dir.display())))?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).map_err(|e| StateError::Store(store_err(e)))?;
        let inner = Inner { db, meta, dir, changelog, restores: Mutex::new(Vec::new()) };
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

    fn meta_key(topic: &str, partition: i32) -> String {
        format!("{topic}#{partition}")
    }

    /// What `topic`/`partition`'s local state covers.
    pub fn covers(&self, topic: &str, partition: i32) -> Result<Option<Covers>, StateError> {
        let v = self.inner.meta.get(Self::meta_key(topic, partition)).map_err(|e| StateError::Store(store_err(e)))?;
        Ok(v.and_then(|v| covers_from(&v)))
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
            let at = part.covers.map(|c| c.next_offset);
            let apply = match (head.from, at) {
                (None, _) => {
                    // The writer started from nothing: so does the state.
                    if let Err(e) = part.clear() {
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
            match part.write_local(&write, PersistMode::Buffer) {
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
        self.inner.db.persist(PersistMode::SyncAll).map_err(|e| StateError::Store(store_err(e)))?;
        let covers = part.covers.map(|c| c.next_offset);
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
        let prefix = format!("{}#", Self::meta_key(topic, partition));
        let mut buckets = BTreeMap::new();
        for name in self.inner.db.list_keyspace_names() {
            let Some(b) = name.strip_prefix(prefix.as_str()).and_then(|b| b.parse::<i64>().ok()) else { continue };
            let ks = self.keyspace(&name)?;
            let _ = buckets.insert(b, ks);
        }
        let covers = self.covers(topic, partition)?;
        Ok(StorePartition { store: self.clone(), topic: topic.into(), partition, prefix, buckets, covers })
    }

    fn keyspace(&self, name: &str) -> Result<Keyspace, StateError> {
        self.inner
            .db
            .keyspace(name, || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE))
            .map_err(|e| StateError::Store(store_err(e)))
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
    /// `topic#partition#`.
    prefix: String,
    buckets: BTreeMap<i64, Keyspace>,
    covers: Option<Covers>,
}

impl StorePartition {
    /// Writes `w` locally (no changelog) with `durability`.
    fn write_local(&mut self, w: &StateWrite, durability: PersistMode) -> Result<(), String> {
        let inner = &self.store.inner;
        let mut batch = inner.db.batch().durability(Some(durability));
        for (b, k, e) in &w.entries {
            let ks = match self.buckets.get(b) {
                Some(ks) => ks.clone(),
                None => {
                    let ks = self.store.keyspace(&format!("{}{b}", self.prefix)).map_err(|e| e.to_string())?;
                    let _ = self.buckets.insert(*b, ks.clone());
                    ks
                }
            };
            batch.insert(&ks, k.0, entry_bytes(e));
        }
        batch.insert(&inner.meta, StateStore::meta_key(&self.topic, self.partition), covers_bytes(&w.covers));
        batch.commit().map_err(store_err)?;
        self.covers = Some(w.covers);
        // Expired buckets go after the write that expired them; a crash between leaves
        // them for the next write (their entries are invisible anyway).
        let keep = self.buckets.split_off(&w.expire_below);
        for (_, ks) in std::mem::replace(&mut self.buckets, keep) {
            inner.db.delete_keyspace(ks).map_err(store_err)?;
        }
        Ok(())
    }

    /// Forgets everything (a changelog write that starts from nothing).
    fn clear(&mut self) -> Result<(), String> {
        for (_, ks) in std::mem::take(&mut self.buckets) {
            self.store.inner.db.delete_keyspace(ks).map_err(store_err)?;
        }
        self.store.inner.meta.remove(StateStore::meta_key(&self.topic, self.partition)).map_err(store_err)?;
        self.covers = None;
        Ok(())
    }
}

impl PartitionKeys for StorePartition {
    fn covers(&self) -> Option<Covers> {
        self.covers
    }

    #[inline]
    fn get(&self, bucket: i64, key: &KeyHash) -> Result<Option<Entry>, String> {
        let Some(ks) = self.buckets.get(&bucket) else { return Ok(None) };
        Ok(ks.get(key.0).map_err(store_err)?.and_then(|v| entry_from(&v)))
    }

    fn write(&mut self, w: &StateWrite) -> Result<(), String> {
        if let Some(c) = &self.store.inner.changelog {
            c.publish(&self.topic, self.partition, self.covers.map(|c| c.next_offset), w).map_err(|e| e.to_string())?;
        }
        self.write_local(w, PersistMode::SyncData)?;
        penstock_protocol::failpoint::hit("after_state_write");
        Ok(())
    }

    fn size(&self) -> StateSize {
        let keys = self.buckets.values().map(|k| k.approximate_len() as u64).sum();
        let bytes = self.buckets.values().map(Keyspace::disk_space).sum();
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
        let names = store.inner.db.list_keyspace_names();
        assert!(names.iter().all(|n| !n.ends_with("#0")), "bucket 0 dropped: {names:?}");
        assert_eq!(part.row(&k(7), 102, 6_001).unwrap(), Verdict::New(6), "expired, then dropped");
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
