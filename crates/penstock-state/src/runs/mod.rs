//! One partition's dedup state on disk, built for what dedup does to it: every
//! delivered batch adds a set of new keys, lookups are by key, and a whole time bucket
//! expires at once. Each write turns its entries into one sorted, immutable run per
//! bucket it touches (written and synced, then named in the manifest, which is
//! replaced atomically with the new covers); an expired bucket leaves the manifest and
//! its files are deleted.
//!
//! Runs of a bucket are merged size-tiered: the newest [`FANOUT`] runs are merged into
//! one when the oldest of them is no more than twice the largest of the others (runs
//! of one tier), so a bucket of `n` keys written `w` at a time holds
//! O(FANOUT · log_FANOUT(n/w)) runs and each entry is rewritten log_FANOUT(n/w) times
//! (half as often as merging pairs). The store's writer thread writes rarely and
//! large (it coalesces deliveries), which keeps `n/w` small.
//!
//! In memory: one blocked Bloom filter per bucket (2 bytes a key) and the first key of
//! every 4 KiB block of each run (1/8 byte a key). A lookup the filter rules out costs
//! one cache line; one it passes reads one block per run, newest first. No cache of its
//! own: the kernel's page cache keeps the blocks read often. The filters stay within
//! the configured memory: once the store's filters reach it, a bucket's filter is no
//! longer enlarged (more false positives, never a missed key). A new bucket's filter
//! is sized from the bucket before it (a steady stream fills each bucket alike), so it
//! is rarely rebuilt.
//!
//! This is the writer's side: lookups read a [`View`] it publishes after each write.

pub mod bloom;
pub mod manifest;
pub mod run;
pub mod sort;

use crate::view::{BucketView, View};
use bloom::Bloom;
use manifest::{Chain, Manifest};
use penstock_stages::dedup::{Covers, Entry, KeyHash, StateWrite};
use run::{Record, Run};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Runs merged at once, and the ratio between tiers.
pub const FANOUT: usize = 4;
/// Runs a bucket may hold before the newest are merged whatever their sizes.
const MAX_RUNS: usize = 24;

/// The memory the filters of one store may take, shared by its partitions.
#[derive(Debug, Default)]
pub struct FilterBudget {
    /// Bytes allowed.
    pub limit: u64,
    /// Bytes held.
    pub used: AtomicU64,
}

/// One partition's runs; see the module docs.
pub struct PartitionRuns {
    dir: PathBuf,
    manifest: Manifest,
    buckets: BTreeMap<i64, BucketView>,
    budget: Arc<FilterBudget>,
}

impl std::fmt::Debug for PartitionRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionRuns").field("dir", &self.dir).field("manifest", &self.manifest).finish()
    }
}

impl Drop for PartitionRuns {
    fn drop(&mut self) {
        let held: u64 = self.buckets.values().map(|b| b.bloom.bytes()).sum();
        let _ = self.budget.used.fetch_sub(held, Ordering::Relaxed);
    }
}

/// What a manifest says a partition covers, without opening its runs.
pub fn covers_in(dir: &Path) -> io::Result<Option<Covers>> {
    Ok(Manifest::load(dir)?.covers)
}

impl PartitionRuns {
    /// Opens (creating) the partition's state in `dir`: the manifest's runs, each
    /// checked whole while its bucket's filter is built; files a crash left behind
    /// (runs no manifest names, a half-written manifest) are deleted.
    pub fn open(dir: &Path, budget: Arc<FilterBudget>) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let manifest = Manifest::load(dir)?;
        let mut p = PartitionRuns { dir: dir.to_path_buf(), manifest, buckets: BTreeMap::new(), budget };
        for (b, ids) in p.manifest.buckets.clone() {
            let count: u64 = ids
                .iter()
                .map(|id| std::fs::metadata(run::path_of(dir, *id)).map(|m| m.len() / run::ENTRY as u64))
                .sum::<io::Result<u64>>()?;
            let bloom = p.new_filter(count * 2);
            let runs = ids
                .iter()
                .map(|id| Run::open(dir, *id, |k| bloom.insert(k)).map(Arc::new))
                .collect::<io::Result<Vec<_>>>()?;
            let _ = p.buckets.insert(b, BucketView { runs, bloom: Arc::new(bloom) });
        }
        p.delete_unreferenced()?;
        Ok(p)
    }

    /// A filter for about `capacity` keys, as large as the budget allows.
    fn new_filter(&self, capacity: u64) -> Bloom {
        let room = self.budget.limit.saturating_sub(self.budget.used.load(Ordering::Relaxed));
        let mut capacity = capacity;
        while capacity > 4096 && Bloom::bytes_for(capacity) > room {
            capacity /= 2;
        }
        let bloom = Bloom::with_capacity(capacity);
        let _ = self.budget.used.fetch_add(bloom.bytes(), Ordering::Relaxed);
        bloom
    }

    fn delete_unreferenced(&self) -> io::Result<()> {
        let live: std::collections::HashSet<u64> = self.manifest.buckets.values().flatten().copied().collect();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            let stale = match name.strip_prefix("run-").and_then(|n| n.strip_suffix(".dat")) {
                Some(id) => id.parse::<u64>().map_or(true, |id| !live.contains(&id)),
                None => name == "MANIFEST.tmp",
            };
            if stale {
                std::fs::remove_file(e.path())?;
            }
        }
        Ok(())
    }

    /// What the state covers.
    pub fn covers(&self) -> Option<Covers> {
        self.manifest.covers
    }

    /// The state as lookups see it now.
    pub fn view(&self) -> View {
        View { covers: self.manifest.covers, buckets: self.buckets.clone() }
    }

    /// `(keys, bytes on disk, filter bytes)`.
    pub fn size(&self) -> (u64, u64, u64) {
        let runs = || self.buckets.values().flat_map(|b| b.runs.iter());
        let filters = self.buckets.values().map(|b| b.bloom.bytes()).sum();
        (runs().map(|r| r.count()).sum(), runs().map(|r| r.bytes()).sum(), filters)
    }

    /// Calls `f(bucket, key, entry)` for every live entry (each bucket's runs merged,
    /// so each key once per bucket): what a snapshot of the state holds.
    pub fn for_each_entry(&self, mut f: impl FnMut(i64, KeyHash, Entry)) -> io::Result<()> {
        for (b, bucket) in &self.buckets {
            let refs: Vec<&Run> = bucket.runs.iter().map(|r| &**r).collect();
            for rec in run::merge_runs(&refs)? {
                let (key, e) = run::decode(&rec?);
                f(*b, key, e);
            }
        }
        Ok(())
    }

    /// Applies `w` atomically and durably: new runs synced, then the manifest.
    pub fn write(&mut self, w: &StateWrite) -> io::Result<()> {
        self.apply(&w.entries, w.expire_below, Some(w.covers))
    }

    /// Adds `entries` durably without moving what the state covers: a part of a write
    /// a restore applies a part at a time (a write made of many chunks need not be held
    /// whole in memory); the last part moves the covers ([`PartitionRuns::write`]).
    pub fn add_entries(&mut self, entries: &[(i64, KeyHash, Entry)], expire_below: i64) -> io::Result<()> {
        self.apply(entries, expire_below, self.manifest.covers)
    }

    fn apply(
        &mut self,
        entries: &[(i64, KeyHash, Entry)],
        expire_below: i64,
        covers: Option<Covers>,
    ) -> io::Result<()> {
        let mut gone = Vec::new();
        for (bucket, sorted) in sort::runs_of(entries, expire_below) {
            self.add_run(bucket, &sorted, &mut gone)?;
        }
        let keep = self.buckets.split_off(&expire_below);
        for (_, b) in std::mem::replace(&mut self.buckets, keep) {
            gone.extend(b.runs.iter().map(|r| r.id));
            let _ = self.budget.used.fetch_sub(b.bloom.bytes(), Ordering::Relaxed);
        }
        self.manifest.covers = covers;
        self.save(&gone)
    }

    /// Where the partition's changelog stands (kept in the manifest).
    pub fn chain(&self) -> Chain {
        self.manifest.chain
    }

    /// Sets where the changelog stands; written with the next write (or now, when
    /// `save_now`).
    pub fn set_chain(&mut self, chain: Chain, save_now: bool) -> io::Result<()> {
        self.manifest.chain = chain;
        if save_now {
            self.save(&[])?;
        }
        Ok(())
    }

    /// The lowest live bucket (what a snapshot must not let a restore drop).
    pub fn lowest_bucket(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }

    /// Forgets everything (a changelog write that starts from nothing).
    pub fn clear(&mut self) -> io::Result<()> {
        let mut gone = Vec::new();
        for (_, b) in std::mem::take(&mut self.buckets) {
            gone.extend(b.runs.iter().map(|r| r.id));
            let _ = self.budget.used.fetch_sub(b.bloom.bytes(), Ordering::Relaxed);
        }
        self.manifest.covers = None;
        self.save(&gone)
    }

    fn save(&mut self, gone: &[u64]) -> io::Result<()> {
        self.manifest.buckets = self.buckets.iter().map(|(b, k)| (*b, k.runs.iter().map(|r| r.id).collect())).collect();
        self.manifest.save(&self.dir)?;
        for id in gone {
            std::fs::remove_file(run::path_of(&self.dir, *id))?;
        }
        Ok(())
    }

    fn next_id(&mut self) -> u64 {
        let id = self.manifest.next_run;
        self.manifest.next_run += 1;
        id
    }

    /// Adds a run of `sorted` records to `bucket`, merges runs as the module docs say,
    /// and enlarges the bucket's filter when it is over capacity and the budget allows.
    fn add_run(&mut self, bucket: i64, sorted: &[Record], gone: &mut Vec<u64>) -> io::Result<()> {
        if sorted.is_empty() {
            return Ok(());
        }
        let id = self.next_id();
        let run = Arc::new(Run::write_records(&self.dir, id, sorted.iter().copied())?);
        if !self.buckets.contains_key(&bucket) {
            // Sized from the bucket before (a steady stream fills buckets alike).
            let before = self.buckets.range(..bucket).next_back().map_or(0, |(_, b)| b.bloom.count());
            let bloom = Arc::new(self.new_filter((sorted.len() as u64 * 16).max(before + before / 4)));
            let _ = self.buckets.insert(bucket, BucketView { runs: Vec::new(), bloom });
        }
        let b = self.buckets.get_mut(&bucket).expect("inserted above");
        b.bloom.insert_all(sorted.iter().map(run::key_of));
        b.runs.push(run);
        loop {
            let b = self.buckets.get_mut(&bucket).expect("present");
            let n = b.runs.len();
            if n < FANOUT {
                break;
            }
            let group = &b.runs[n - FANOUT..];
            let largest_newer = group[1..].iter().map(|r| r.count()).max().unwrap_or(0);
            if group[0].count() > 2 * largest_newer && n <= MAX_RUNS {
                break;
            }
            let id = self.next_id();
            let b = self.buckets.get_mut(&bucket).expect("present");
            let refs: Vec<&Run> = b.runs[n - FANOUT..].iter().map(|r| &**r).collect();
            let merged = {
                let mut failed = None;
                let ok = run::merge_runs(&refs)?.map_while(|r| r.map_err(|e| failed = Some(e)).ok());
                let merged = Run::write_records(&self.dir, id, ok)?;
                if let Some(e) = failed {
                    return Err(e);
                }
                merged
            };
            gone.extend(b.runs.drain(n - FANOUT..).map(|r| r.id));
            b.runs.push(Arc::new(merged));
        }
        self.grow_filter(bucket)
    }

    fn grow_filter(&mut self, bucket: i64) -> io::Result<()> {
        let b = self.buckets.get(&bucket).expect("present");
        if b.bloom.count() <= b.bloom.capacity() {
            return Ok(());
        }
        // Up to four times what it holds (a growing bucket rebuilds its filter, reading
        // every key again, once per quadrupling, not per doubling), as the budget allows.
        let keys: u64 = b.runs.iter().map(|r| r.count()).sum();
        // The old filter stays until the new one is built: both count.
        let room = self.budget.limit.saturating_sub(self.budget.used.load(Ordering::Relaxed));
        let mut capacity = keys * 4;
        while capacity > keys && Bloom::bytes_for(capacity) > room {
            capacity /= 2;
        }
        if Bloom::bytes_for(capacity) > room || Bloom::bytes_for(capacity) <= b.bloom.bytes() {
            return Ok(()); // at the memory bound: the filter stays, fuller
        }
        let bloom = Bloom::with_capacity(capacity);
        let _ = self.budget.used.fetch_add(bloom.bytes(), Ordering::Relaxed);
        for r in &b.runs {
            let mut failed = None;
            bloom.insert_all(
                r.records()?.map_while(|rec| rec.map_err(|e| failed = Some(e)).ok()).map(|rec| run::key_of(&rec)),
            );
            if let Some(e) = failed {
                let _ = self.budget.used.fetch_sub(bloom.bytes(), Ordering::Relaxed);
                return Err(e);
            }
        }
        let b = self.buckets.get_mut(&bucket).expect("present");
        let old = std::mem::replace(&mut b.bloom, Arc::new(bloom));
        let _ = self.budget.used.fetch_sub(old.bytes(), Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn k(n: u16) -> KeyHash {
        KeyHash(xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_le_bytes())
    }

    fn budget() -> Arc<FilterBudget> {
        Arc::new(FilterBudget { limit: 64 << 20, used: AtomicU64::new(0) })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any sequence of writes (with overwrites and expiry), reopened at any point,
        /// answers every lookup as a map applying the same writes would.
        #[test]
        fn runs_answer_as_a_map_through_reopens(
            writes in proptest::collection::vec(
                (proptest::collection::vec((0i64..4, 0u16..300, 0i64..1000), 0..200), 0i64..3, any::<bool>()),
                1..25,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut p = PartitionRuns::open(dir.path(), budget()).unwrap();
            let mut model: HashMap<(i64, KeyHash), Entry> = HashMap::new();
            let mut floor = i64::MIN;
            for (n, (entries, expire, reopen)) in writes.into_iter().enumerate() {
                floor = floor.max(expire);
                let entries: Vec<(i64, KeyHash, Entry)> =
                    entries.into_iter().map(|(b, key, o)| (b, k(key), Entry { offset: o, time: b })).collect();
                for (b, key, e) in &entries {
                    if *b >= floor {
                        model.insert((*b, *key), *e);
                    }
                }
                model.retain(|(b, _), _| *b >= floor);
                let covers = Covers { next_offset: n as i64, watermark: 0 };
                p.write(&StateWrite { entries, covers, expire_below: floor }).unwrap();
                if reopen {
                    drop(p);
                    p = PartitionRuns::open(dir.path(), budget()).unwrap();
                }
                prop_assert_eq!(p.covers(), Some(covers));
                for b in -1i64..5 {
                    for key in 0u16..300 {
                        prop_assert_eq!(p.view().get(b, &k(key)).unwrap(), model.get(&(b, k(key))).copied());
                    }
                }
            }
            let runs: usize = p.buckets.values().map(|b| b.runs.len()).sum();
            let files = std::fs::read_dir(dir.path()).unwrap().count();
            prop_assert_eq!(files, runs + 1, "only live runs and the manifest are left");
        }
    }

    #[test]
    fn a_crash_between_a_run_and_its_manifest_leaves_the_last_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartitionRuns::open(dir.path(), budget()).unwrap();
        let one = |o| StateWrite {
            entries: vec![(0, k(o as u16), Entry { offset: o, time: 0 })],
            covers: Covers { next_offset: o + 1, watermark: 0 },
            expire_below: 0,
        };
        p.write(&one(1)).unwrap();
        drop(p);
        // A run written by a write whose manifest never landed.
        Run::write(dir.path(), 99, [(k(2), Entry { offset: 2, time: 0 })].into_iter()).unwrap();
        std::fs::write(dir.path().join("MANIFEST.tmp"), b"half").unwrap();
        let p = PartitionRuns::open(dir.path(), budget()).unwrap();
        assert_eq!(p.covers().unwrap().next_offset, 2);
        assert_eq!(p.view().get(0, &k(2)).unwrap(), None);
        assert!(!run::path_of(dir.path(), 99).exists() && !dir.path().join("MANIFEST.tmp").exists());
    }

    #[test]
    fn filters_stop_growing_at_the_budget_and_miss_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tight = Arc::new(FilterBudget { limit: 70_000, used: AtomicU64::new(0) });
        let mut p = PartitionRuns::open(dir.path(), tight.clone()).unwrap();
        for w in 0..20u16 {
            let entries = (0..1000u16).map(|i| (0, k(w * 1000 + i), Entry { offset: i64::from(w), time: 0 })).collect();
            p.write(&StateWrite {
                entries,
                covers: Covers { next_offset: i64::from(w), watermark: 0 },
                expire_below: 0,
            })
            .unwrap();
        }
        assert!(tight.used.load(Ordering::Relaxed) <= 70_000);
        assert!((0..20_000u16).all(|n| p.view().get(0, &k(n)).unwrap().is_some()));
    }
}
