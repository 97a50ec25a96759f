//! One source partition's dedup state as the pipeline runs it: decisions at seal
//! against the written-down state plus the entries made since (which run ahead of
//! delivery), and the write-down of exactly what a delivery covers.
//!
//! The rule that keeps it exactly once (checked by the crash model below): entries
//! are written down only for batches the sink delivered, with the offset they cover,
//! so the written state always lies at or behind the sink's delivered position; after
//! a crash the pipeline re-reads the source from that offset up to the delivered
//! position and applies those rows again (their verdicts thrown away), which rebuilds
//! exactly the state the first pass had.

use super::decide::{bucket_of, decide, Entry, Verdict};
use super::key::KeyMap;
use super::{Covers, KeyHash, PartitionKeys, StateSize, StateWrite};
use std::collections::VecDeque;

/// Written entries the overlay may keep beyond twice the unwritten ones before it is
/// pruned (small in tests, so the crash model prunes often).
#[cfg(not(test))]
const PRUNE_SLACK: usize = 4096;
#[cfg(test)]
const PRUNE_SLACK: usize = 2;

/// The entries one sealed batch made, waiting for its delivery.
#[derive(Debug)]
struct Delta {
    /// One past the batch's last offset.
    end: i64,
    /// The watermark after it.
    watermark: i64,
    entries: Vec<(i64, KeyHash, Entry)>,
}

/// A partition's dedup state; see the module docs.
pub struct PartitionDedup {
    window: i64,
    /// Largest time applied (ahead of delivery).
    watermark: i64,
    /// Entries made since they were last pruned, for lookups, each with the number
    /// of the batch that made it. Those of written batches equal what the store
    /// holds, so they are pruned in bulk (amortized), never one by one per write.
    overlay: KeyMap<(Entry, u64)>,
    /// The number of the batch being decided; batches numbered below `written` are
    /// written down.
    batch: u64,
    written: u64,
    /// Entries of batches not written down yet (open and pending).
    unwritten: usize,
    /// The batch being decided.
    open: Vec<(i64, KeyHash, Entry)>,
    /// Sealed batches not yet delivered, in offset order.
    pending: VecDeque<Delta>,
    keys: Box<dyn PartitionKeys>,
    /// What the written-down state covers.
    covers: Option<Covers>,
    /// True once this instance sealed a batch: only then may a delivery that no
    /// decided row belongs to move the covers (an instance opened after a revocation
    /// has seen nothing of what was delivered before it).
    active: bool,
}

impl std::fmt::Debug for PartitionDedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionDedup")
            .field("watermark", &self.watermark)
            .field("overlay", &self.overlay.len())
            .field("pending", &self.pending.len())
            .field("covers", &self.covers)
            .finish()
    }
}

impl PartitionDedup {
    /// The partition's state as written down in `keys`, for a window of `window` ms.
    pub fn new(keys: Box<dyn PartitionKeys>, window: i64) -> Self {
        let covers = keys.covers();
        PartitionDedup {
            window: window.max(1),
            watermark: covers.map_or(i64::MIN, |c| c.watermark),
            overlay: KeyMap::default(),
            batch: 0,
            written: 0,
            unwritten: 0,
            open: Vec::new(),
            pending: VecDeque::new(),
            keys,
            covers,
            active: false,
        }
    }

    /// What the written-down state covers.
    pub fn covers(&self) -> Option<Covers> {
        self.covers
    }

    /// Entries decided but not written down yet.
    pub fn unwritten(&self) -> usize {
        self.unwritten
    }

    /// The written-down state's size.
    pub fn size(&self) -> StateSize {
        self.keys.size()
    }

    /// Decides one row of the open batch.
    #[inline]
    pub fn row(&mut self, key: &KeyHash, offset: i64, time: i64) -> Result<Verdict, String> {
        let (overlay, keys) = (&self.overlay, &self.keys);
        let lookup = |b: i64, k: &KeyHash| match overlay.get(&(b, *k)) {
            Some((e, _)) => Ok(Some(*e)),
            None => keys.get(b, k),
        };
        let row = Entry { offset, time };
        let v = decide(lookup, key, row, self.window, self.watermark)?;
        if let Verdict::New(b) = v {
            let _ = self.overlay.insert((b, *key), (row, self.batch));
            self.unwritten += 1;
            self.open.push((b, *key, row));
        }
        self.watermark = self.watermark.max(time);
        Ok(v)
    }

    /// The open batch is sealed: its rows end before `end`.
    pub fn seal(&mut self, end: i64) {
        self.active = true;
        let entries = std::mem::take(&mut self.open);
        match self.pending.back_mut() {
            // Several stage runs over one range (never today) fold into one delta, and
            // keep one batch number.
            Some(d) if d.end == end => d.entries.extend(entries),
            _ => {
                self.pending.push_back(Delta { end, watermark: self.watermark, entries });
                self.batch += 1;
            }
        }
        if let Some(d) = self.pending.back_mut() {
            d.watermark = self.watermark;
        }
    }

    /// Everything before `next_offset` was delivered: writes down the entries of the
    /// batches that ends at or before it, in one write. Returns whether it wrote.
    pub fn delivered(&mut self, next_offset: i64) -> Result<bool, String> {
        let n = self.pending.iter().take_while(|d| d.end <= next_offset).count();
        if n == 0 {
            // Nothing decided there (every row of the range was undecodable, or no row
            // reached this stage): the state may still move its covers up, when nothing
            // decided before it waits.
            let behind = self.covers.is_none_or(|c| c.next_offset < next_offset);
            if !(behind && self.active && self.pending.is_empty() && self.open.is_empty()) {
                return Ok(false);
            }
            let covers = Covers { next_offset, watermark: self.watermark };
            let write = StateWrite { entries: Vec::new(), covers, expire_below: self.expire_below(covers.watermark) };
            self.keys.write(&write)?;
            self.covers = Some(covers);
            return Ok(true);
        }
        let mut entries = Vec::new();
        let mut last = None;
        for d in self.pending.drain(..n) {
            entries.extend(d.entries);
            last = Some((d.end, d.watermark));
        }
        let (end, watermark) = last.unwrap_or((next_offset, self.watermark));
        let covers = Covers { next_offset: end, watermark };
        let write = StateWrite { entries, covers, expire_below: self.expire_below(watermark) };
        self.keys.write(&write)?;
        self.covers = Some(covers);
        self.unwritten -= write.entries.len();
        // Batches numbered below this one are written: every batch sealed before the
        // pending ones left.
        self.written = self.batch - self.pending.len() as u64;
        if self.overlay.len() > 2 * self.unwritten + PRUNE_SLACK {
            let written = self.written;
            self.overlay.retain(|_, (_, n)| *n >= written);
        }
        Ok(true)
    }

    /// Buckets below this hold only entries older than `watermark` minus the window.
    fn expire_below(&self, watermark: i64) -> i64 {
        bucket_of(watermark.saturating_sub(self.window), self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::KeyStore;
    use crate::dedup::MemoryStore;
    use proptest::prelude::*;

    fn k(n: u8) -> KeyHash {
        KeyHash([n; 16])
    }

    /// One row: key and time (its offset is its index).
    #[derive(Debug, Clone, Copy)]
    struct Row {
        key: u8,
        time: i64,
    }

    /// What one crash-free pass keeps: each row whose key has no kept occurrence
    /// within the window before it that the watermark has not left behind.
    fn reference(rows: &[Row], window: i64) -> Vec<usize> {
        let mut kept: Vec<(u8, i64)> = Vec::new();
        let mut out = Vec::new();
        let mut watermark = i64::MIN;
        for (i, r) in rows.iter().enumerate() {
            let horizon = watermark.saturating_sub(window);
            let dup = kept.iter().any(|(k, t)| *k == r.key && *t >= horizon && (r.time - t).abs() <= window);
            if !dup {
                kept.push((r.key, r.time));
                out.push(i);
            }
            watermark = watermark.max(r.time);
        }
        out
    }

    /// A run with crashes, as the pipeline runs it: batches (sizes from `cuts`) are
    /// decided at seal and delivered in order, at step `s` only when `deliver[s]`
    /// (delivery lags); delivered batches are written down only when `persist[s]` (the
    /// write lags too). At each step in `crashes` the undelivered batches and the
    /// in-memory state are lost; the partition is reopened from the store and the
    /// source resumes at what it covers, applying the rows up to the delivered
    /// position again without delivering them. Returns the rows delivered, in order.
    fn run(
        rows: &[Row],
        window: i64,
        (cuts, deliver, persist, crashes): (&[usize], &[bool], &[bool], &[usize]),
    ) -> Vec<usize> {
        let n = rows.len();
        let mut store = MemoryStore::default();
        let mut part = PartitionDedup::new(store.open("t", 0).unwrap(), window);
        let (mut pos, mut delivered_to) = (0usize, 0usize);
        let mut queue: VecDeque<(usize, Vec<usize>)> = VecDeque::new();
        let mut unwritten_ack = None;
        let mut out = Vec::new();
        let mut step = 0usize;
        while delivered_to < n {
            if pos < n {
                let len = cuts[step % cuts.len()].clamp(1, n - pos);
                // A batch never spans the delivered position (catch-up rows are sealed
                // apart, as the source does).
                let len = if pos < delivered_to { len.min(delivered_to - pos) } else { len };
                let kept: Vec<usize> = (pos..pos + len)
                    .filter(|&i| part.row(&k(rows[i].key), i as i64, rows[i].time).unwrap() != Verdict::Duplicate)
                    .collect();
                pos += len;
                part.seal(pos as i64);
                if pos <= delivered_to {
                    // Catch-up: delivered already, written down at once.
                    part.delivered(pos as i64).unwrap();
                } else {
                    queue.push_back((pos, kept));
                }
            }
            if deliver[step % deliver.len()] || pos >= n {
                if let Some((end, kept)) = queue.pop_front() {
                    out.extend(kept);
                    delivered_to = delivered_to.max(end);
                    unwritten_ack = Some(end);
                }
            }
            if persist[step % persist.len()] {
                if let Some(end) = unwritten_ack.take() {
                    part.delivered(end as i64).unwrap();
                }
            }
            if crashes.contains(&step) {
                queue.clear();
                unwritten_ack = None;
                part = PartitionDedup::new(store.open("t", 0).unwrap(), window);
                pos = part.covers().map_or(0, |c| c.next_offset as usize);
                assert!(pos <= delivered_to, "the state never runs ahead of delivery");
            }
            step += 1;
        }
        out
    }

    fn rows_strategy() -> impl Strategy<Value = (Vec<Row>, i64)> {
        (proptest::collection::vec((0u8..6, 0i64..60), 1..120), 20i64..300).prop_map(|(raw, window)| {
            // Times mostly increase, a little out of order; keys recur within and beyond
            // the window.
            let mut t = 0;
            let rows = raw
                .into_iter()
                .map(|(key, step)| {
                    t += step;
                    Row { key, time: t - (step % 7) * 9 }
                })
                .collect();
            (rows, window)
        })
    }

    #[allow(clippy::type_complexity)]
    fn schedule() -> impl Strategy<Value = (Vec<usize>, Vec<bool>, Vec<bool>, Vec<usize>)> {
        (
            proptest::collection::vec(1usize..12, 1..6),
            proptest::collection::vec(any::<bool>(), 1..8),
            proptest::collection::vec(any::<bool>(), 1..8),
            proptest::collection::vec(0usize..80, 0..8),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        /// Through any crashes, with the state written behind delivery by any number of
        /// batches (and expired buckets dropped), the rows delivered are exactly what one
        /// crash-free pass keeps.
        #[test]
        fn crashes_and_catch_up_keep_exactly_the_first_occurrences(
            (rows, window) in rows_strategy(),
            (cuts, deliver, persist, crashes) in schedule(),
        ) {
            let got = run(&rows, window, (&cuts, &deliver, &persist, &crashes));
            prop_assert_eq!(got, reference(&rows, window));
        }
    }

    #[test]
    fn delivery_writes_down_exactly_the_batches_it_covers() {
        let mut store = MemoryStore::default();
        let mut p = PartitionDedup::new(store.open("t", 0).unwrap(), 1_000);
        assert_eq!(p.row(&k(1), 0, 10).unwrap(), Verdict::New(0));
        p.seal(1);
        assert_eq!(p.row(&k(2), 1, 20).unwrap(), Verdict::New(0));
        assert_eq!(p.row(&k(1), 2, 30).unwrap(), Verdict::Duplicate, "seen in the undelivered batch");
        p.seal(3);
        assert!(p.delivered(1).unwrap());
        assert_eq!(p.covers(), Some(Covers { next_offset: 1, watermark: 10 }));
        let reopened = PartitionDedup::new(store.open("t", 0).unwrap(), 1_000);
        assert_eq!(reopened.covers(), Some(Covers { next_offset: 1, watermark: 10 }));
        assert_eq!(p.unwritten(), 1, "key 2 waits for its batch's delivery");
        assert!(p.delivered(3).unwrap());
        assert_eq!(p.unwritten(), 0);
        assert!(!p.delivered(3).unwrap(), "nothing new");
        assert!(p.delivered(10).unwrap(), "an acknowledged range no row of reached: the covers move up");
        assert_eq!(p.covers().unwrap().next_offset, 10);
        let mut fresh = PartitionDedup::new(store.open("t", 0).unwrap(), 1_000);
        assert!(!fresh.delivered(20).unwrap(), "an instance that decided nothing never moves the covers");
        assert_eq!(fresh.covers().unwrap().next_offset, 10);
    }

    #[test]
    fn a_redelivered_row_below_the_written_state_is_kept_as_itself() {
        let mut store = MemoryStore::default();
        let mut p = PartitionDedup::new(store.open("t", 0).unwrap(), 1_000);
        assert_eq!(p.row(&k(1), 5, 10).unwrap(), Verdict::New(0));
        p.seal(6);
        p.delivered(6).unwrap();
        let mut p = PartitionDedup::new(store.open("t", 0).unwrap(), 1_000);
        assert_eq!(p.row(&k(1), 5, 10).unwrap(), Verdict::Again);
        assert_eq!(p.row(&k(1), 6, 11).unwrap(), Verdict::Duplicate);
    }
}
