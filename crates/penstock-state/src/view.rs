//! What lookups read: an immutable picture of one partition's state — each live
//! bucket's filter and runs, and what they cover — published by the store's writer
//! thread after each write it applies and taken by the source thread once per batch
//! (a lock and a reference count, never per row).
//!
//! Runs are shared by reference: a merge publishes a view without the runs it
//! replaced and deletes their files, while a view taken before still reads them
//! through its open handles (the data of an unlinked file lives while a handle does).

use crate::runs::bloom::Bloom;
use crate::runs::run::Run;
use penstock_stages::dedup::{bucket_of, Covers, Entry, KeyHash, Row};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One time bucket: its filter and its runs, oldest first.
#[derive(Debug, Clone)]
pub struct BucketView {
    /// The filter of every key the runs hold (and of keys being added).
    pub bloom: Arc<Bloom>,
    /// The runs, oldest first (a newer run's entry wins).
    pub runs: Vec<Arc<Run>>,
}

/// One partition's state as lookups see it.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// What the runs cover.
    pub covers: Option<Covers>,
    /// Live buckets.
    pub buckets: BTreeMap<i64, BucketView>,
}

impl View {
    /// `(keys, bytes on disk)` of its runs.
    pub fn size(&self) -> (u64, u64) {
        let runs = || self.buckets.values().flat_map(|b| b.runs.iter());
        (runs().map(|r| r.count()).sum(), runs().map(|r| r.bytes()).sum())
    }

    /// False when `bucket` certainly holds no entry of `key`.
    #[inline]
    pub fn may_contain(&self, bucket: i64, key: &KeyHash) -> bool {
        self.buckets.get(&bucket).is_some_and(|b| b.bloom.may_contain(key))
    }

    /// The entry of `key` in `bucket`: the newest run holding it.
    pub fn get(&self, bucket: i64, key: &KeyHash) -> std::io::Result<Option<Entry>> {
        let Some(b) = self.buckets.get(&bucket) else { return Ok(None) };
        if !b.bloom.may_contain(key) {
            return Ok(None);
        }
        for r in b.runs.iter().rev() {
            if let Some(e) = r.get(key)? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// The filter answers of `rows` (see `PartitionKeys::probe`): the buckets of a
    /// row's window are looked up once for a run of rows that share them (rows come
    /// in time order, nearly), so the per-row work is the filters' cache lines — read
    /// first for every row (a pass of independent loads the processor overlaps), then
    /// tested.
    pub fn probe(&self, rows: &[Row], window: i64, out: &mut Vec<u8>) {
        out.clear();
        out.resize(rows.len(), 0);
        let mut touched = 0u64;
        self.each_filter(rows, window, |_, _, f, key| touched ^= f.touch(key));
        let _ = std::hint::black_box(touched);
        self.each_filter(rows, window, |i, j, f, key| out[i] |= u8::from(f.may_contain(key)) << j);
    }

    /// Calls `f(row index, j, filter, key)` for each of each row's buckets
    /// (`bucket_of(time - window) + j`) that exists, in row order.
    #[inline]
    fn each_filter(&self, rows: &[Row], window: i64, mut f: impl FnMut(usize, usize, &Bloom, &KeyHash)) {
        let mut first = i64::MIN;
        let mut filters: [Option<&Bloom>; 3] = [None; 3];
        for (i, r) in rows.iter().enumerate() {
            let lo = bucket_of(r.time.saturating_sub(window), window);
            let hi = bucket_of(r.time.saturating_add(window), window);
            if lo != first {
                first = lo;
                for (j, slot) in filters.iter_mut().enumerate() {
                    *slot = self.buckets.get(&(lo + j as i64)).map(|b| &*b.bloom);
                }
            }
            for (j, filter) in filters.iter().enumerate().take((hi - lo).min(2) as usize + 1) {
                if let Some(filter) = filter {
                    f(i, j, filter, &r.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::{FilterBudget, PartitionRuns};
    use penstock_stages::dedup::StateWrite;

    fn k(n: u64) -> KeyHash {
        KeyHash(xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_le_bytes())
    }

    #[test]
    fn probing_a_chunk_answers_as_each_filter_does() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(FilterBudget { limit: 64 << 20, used: Default::default() });
        let mut runs = PartitionRuns::open(dir.path(), budget).unwrap();
        let window = 100;
        // Keys 0..300 in buckets 0..3 (time n), every third one written.
        let entries = (0..300u64)
            .filter(|n| n % 3 == 0)
            .map(|n| (n as i64 / 100, k(n), Entry { offset: n as i64, time: n as i64 }))
            .collect();
        runs.write(&StateWrite { entries, covers: Covers { next_offset: 300, watermark: 299 }, expire_below: 0 })
            .unwrap();
        let view = runs.view();
        let rows: Vec<Row> =
            (0..400u64).map(|n| Row { key: k(n % 300), offset: n as i64, time: (n as i64 * 7) % 450 - 50 }).collect();
        let mut got = Vec::new();
        view.probe(&rows, window, &mut got);
        let want: Vec<u8> = rows
            .iter()
            .map(|r| {
                let lo = bucket_of(r.time - window, window);
                let hi = bucket_of(r.time + window, window);
                (0..=(hi - lo).min(2)).fold(0u8, |m, j| m | (u8::from(view.may_contain(lo + j, &r.key)) << j))
            })
            .collect();
        assert_eq!(got, want);
        assert!(got.iter().any(|m| *m != 0) && got.contains(&0));
    }
}
