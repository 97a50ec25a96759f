//! The store of one stage, under `<state.dir>/<pipeline>/<stage>`: one directory per
//! source partition (`<topic>#<partition>`) holding its runs and manifest
//! ([`crate::runs`]), and a `LOCK` file held while a process uses the store (one
//! process per directory).
//!
//! The store's writer thread ([`crate::writer`]) owns the partitions' runs: the source
//! thread hands it writes ([`PartitionKeys::write`]) and reads an immutable view it
//! publishes ([`crate::view`]), taken once per batch. A partition's write (its entries,
//! its covers) is atomic and synced; a crash in the middle leaves the last complete
//! write. Memory: the partitions' filters, within `state.memory` whatever the key
//! count; the writes queued for the writer (bounded); and the kernel's page cache (not
//! the process's) for the blocks read.

use crate::changelog::Changelog;
use crate::restore::Restore;
use crate::runs::{covers_in, FilterBudget};
use crate::view::View;
use crate::writer::{Job, PartId, Slot, Writer, WriterHandle};
use crate::StateError;
use penstock_stages::dedup::{Covers, Entry, KeyHash, KeyStore, PartitionKeys, Row, StateSize, StateWrite};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Where a pipeline keeps its stage state, and how much memory it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// The pipeline's state directory (`state.dir`).
    pub dir: PathBuf,
    /// Memory per stage (`state.memory`): up to three quarters for the filters, the
    /// rest for the writes waiting for the writer thread.
    pub memory: u64,
    /// The least a partition's changelog writes add up to before a snapshot follows
    /// ([`crate::writer::SNAPSHOT_MIN_BYTES`]; smaller in tests, to take several).
    pub snapshot_min_bytes: u64,
}

impl StateSettings {
    /// State under `dir` with `memory` bytes for filters, snapshots as by default.
    pub fn new(dir: PathBuf, memory: u64) -> Self {
        StateSettings { dir, memory, snapshot_min_bytes: crate::writer::SNAPSHOT_MIN_BYTES }
    }
}

struct Inner {
    dir: PathBuf,
    changelog_topic: Option<String>,
    restores: Arc<Mutex<Vec<Restore>>>,
    writer: WriterHandle,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held (locked) while the store is open.
    _lock: std::fs::File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer applies what is queued, then ends.
        let _ = self.writer.send(Job::Stop);
        if let Some(t) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }
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

impl StateStore {
    /// Opens (creating) the store of `stage` of `pipeline` under `settings.dir`, and
    /// starts its writer thread.
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
        // Up to three quarters of `state.memory` for the filters; the writes waiting
        // for the writer get the rest (see `crate::writer`).
        let budget = Arc::new(FilterBudget { limit: settings.memory / 4 * 3, used: AtomicU64::new(0) });
        let restores = Arc::new(Mutex::new(Vec::new()));
        let changelog_topic = changelog.as_ref().map(|c| c.topic().to_string());
        let (writer, thread) =
            Writer::new(dir.clone(), changelog, budget, restores.clone(), settings.snapshot_min_bytes)
                .spawn(crate::writer::queue_limit(settings.memory))
                .map_err(|e| StateError::Store(format!("cannot start the state writer: {e}")))?;
        let inner = Inner { dir, changelog_topic, restores, writer, thread: Mutex::new(Some(thread)), _lock: lock };
        Ok(StateStore { inner: Arc::new(inner) })
    }

    /// The store's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.inner.dir
    }

    /// The changelog topic, when there is one.
    pub fn changelog_topic(&self) -> Option<&str> {
        self.inner.changelog_topic.as_deref()
    }

    /// Restores taken so far (for status and metrics).
    pub fn restores(&self) -> Vec<Restore> {
        self.inner.restores.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.inner.dir.join(format!("{topic}#{partition}"))
    }

    /// What `topic`/`partition`'s local state covers, as written on disk now.
    pub fn covers(&self, topic: &str, partition: i32) -> Result<Option<Covers>, StateError> {
        let dir = self.partition_dir(topic, partition);
        covers_in(&dir).map_err(|e| StateError::Store(format!("{}: {e}", dir.display())))
    }

    /// Makes `topic`/`partition`'s state ready before its messages are read: the local
    /// state when there is one (after the writes queued for it are applied), else the
    /// changelog's (writes beyond `delivered`, the sink's delivered position, ignored).
    /// Returns the offset the state covers: the source re-reads from there to
    /// `delivered` to bring it forward.
    pub fn prepare(&self, topic: &str, partition: i32, delivered: Option<i64>) -> Result<Option<i64>, StateError> {
        let part: PartId = (topic.to_string(), partition);
        self.inner.writer.ask(|reply| Job::Prepare(part, delivered, reply)).map_err(StateError::Store)?
    }

    /// Waits until every write handed to the store is applied.
    pub fn flush(&self) -> Result<(), StateError> {
        self.inner.writer.ask(|reply| Job::Flush(None, reply)).map_err(StateError::Store)?.map_err(StateError::Store)
    }
}

impl KeyStore for StateStore {
    fn open(&mut self, topic: &str, partition: i32) -> Result<Box<dyn PartitionKeys>, String> {
        let part: PartId = (topic.to_string(), partition);
        let slot = self.inner.writer.ask(|reply| Job::Open(part.clone(), reply))??;
        let view = slot.view.lock().map_err(|e| e.to_string())?.clone();
        Ok(Box::new(StorePartition { part, slot, view, writer: self.inner.writer.clone() }))
    }
}

/// One partition's state as its source side sees it.
struct StorePartition {
    part: PartId,
    slot: Arc<Slot>,
    view: Arc<View>,
    writer: WriterHandle,
}

impl Drop for StorePartition {
    fn drop(&mut self) {
        let _ = self.writer.send(Job::Close(self.part.clone()));
    }
}

impl PartitionKeys for StorePartition {
    fn covers(&self) -> Option<Covers> {
        self.view.covers
    }

    fn refresh(&mut self) -> Result<Option<Covers>, String> {
        if let Some(why) = self.slot.failed.lock().map_err(|e| e.to_string())?.clone() {
            return Err(why);
        }
        self.view = self.slot.view.lock().map_err(|e| e.to_string())?.clone();
        Ok(self.view.covers)
    }

    #[inline]
    fn may_contain(&self, bucket: i64, key: &KeyHash) -> bool {
        self.view.may_contain(bucket, key)
    }

    fn probe(&self, rows: &[Row], window: i64, out: &mut Vec<u8>) {
        self.view.probe(rows, window, out);
    }

    #[inline]
    fn get(&self, bucket: i64, key: &KeyHash) -> Result<Option<Entry>, String> {
        self.view.get(bucket, key).map_err(|e| e.to_string())
    }

    fn write(&mut self, w: StateWrite) -> Result<(), String> {
        self.writer.write(self.part.clone(), w, &self.slot)
    }

    fn flush(&mut self) -> Result<(), String> {
        self.writer.ask(|reply| Job::Flush(Some(self.part.clone()), reply))??;
        Ok(())
    }

    fn size(&self) -> StateSize {
        let (keys, bytes) = self.view.size();
        StateSize { keys, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_stages::dedup::{PartitionDedup, Verdict};

    fn settings(dir: &std::path::Path) -> StateSettings {
        StateSettings::new(dir.to_path_buf(), 8 << 20)
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
            part.flush().unwrap();
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
        part.flush().unwrap();
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
