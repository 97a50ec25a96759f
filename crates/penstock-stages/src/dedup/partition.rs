//! One source partition's dedup state as the pipeline runs it: decisions at seal
//! against the written-down state plus the entries made since (which run ahead of
//! delivery), and the write-down of exactly what a delivery covers.
//!
//! The rule that keeps it exactly once (checked by the crash model below): entries
//! are written down only for batches the sink delivered, with the offset they cover,
//! so the written state always lies at or behind the sink's delivered position; after
//! a crash the pipeline re-reads the source from that offset up to the delivered
//! position and applies those rows again (their verdicts thrown away), which rebuilds
//! exactly the state the first pass had. Writes are handed to the store, which applies
//! them later (coalesced, off the source thread); the entries stay in the overlay
//! until the store reports them written, so a decision never misses one.
//!
//! A stream's rows are decided in two passes ([`PartitionDedup::rows`]): the store's
//! filters are probed for every row first (independent loads, so the processor
//! overlaps their cache misses), then each row is decided in order against the
//! overlay (one probe by key) and, only where a filter said so, the store.

use super::decide::{bucket_of, decide, Entry, Verdict};
use super::overlay::Overlay;
use super::{Covers, KeyHash, PartitionKeys, StateSize, StateWrite};
use std::collections::VecDeque;

/// Written entries the overlay may keep before it forgets them (small in tests, so
/// the crash model forgets often).
#[cfg(not(test))]
const FORGET_SLACK: usize = 4096;
#[cfg(test)]
const FORGET_SLACK: usize = 2;

/// Rows decided per pass: their filter blocks and index slots (a cache line each) stay
/// in the processor's cache between the two passes.
const CHUNK: usize = 256;

/// One row to decide: its key, source offset and time (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The key, hashed.
    pub key: KeyHash,
    /// Source offset.
    pub offset: i64,
    /// The time the window is measured on (ms).
    pub time: i64,
}

/// A sealed batch waiting for its delivery, or a delivery handed to the store and not
/// applied yet: its end, the watermark after it, and the overlay number one past its
/// last entry.
#[derive(Debug, Clone, Copy)]
struct Mark {
    end: i64,
    watermark: i64,
    upto: u64,
}

/// A partition's dedup state; see the module docs.
pub struct PartitionDedup {
    window: i64,
    /// Largest time applied (ahead of delivery).
    watermark: i64,
    /// Entries not known to be written, by key.
    overlay: Overlay,
    /// Overlay number where the open batch's entries start.
    open_from: u64,
    /// Sealed batches not yet delivered, in offset order.
    pending: VecDeque<Mark>,
    /// Deliveries handed to the store, not yet applied.
    handed: VecDeque<Mark>,
    /// Overlay entries below this number are written.
    written_upto: u64,
    keys: Box<dyn PartitionKeys>,
    /// What the applied writes cover.
    covers: Option<Covers>,
    /// What the writes handed over will cover.
    handed_covers: Option<Covers>,
    /// True once this instance sealed a batch: only then may a delivery that no
    /// decided row belongs to move the covers (an instance opened after a revocation
    /// has seen nothing of what was delivered before it).
    active: bool,
    /// Filter answers of the rows being decided (reused).
    probes: Vec<u8>,
}

impl std::fmt::Debug for PartitionDedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionDedup")
            .field("watermark", &self.watermark)
            .field("overlay", &self.overlay.len())
            .field("pending", &self.pending.len())
            .field("handed", &self.handed.len())
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
            overlay: Overlay::default(),
            open_from: 0,
            pending: VecDeque::new(),
            handed: VecDeque::new(),
            written_upto: 0,
            keys,
            covers,
            handed_covers: covers,
            active: false,
            probes: Vec::new(),
        }
    }

    /// What the written-down state covers.
    pub fn covers(&self) -> Option<Covers> {
        self.covers
    }

    /// Entries decided but not written down yet.
    pub fn unwritten(&self) -> usize {
        (self.overlay.next() - self.written_upto) as usize
    }

    /// The written-down state's size.
    pub fn size(&self) -> StateSize {
        self.keys.size()
    }

    /// Takes in what the store applied: deliveries it covers leave `handed`, and their
    /// entries may leave the overlay.
    pub fn refresh(&mut self) -> Result<(), String> {
        let covers = self.keys.refresh()?;
        self.covers = covers;
        let Some(c) = covers else { return Ok(()) };
        while let Some(m) = self.handed.front() {
            if m.end > c.next_offset {
                break;
            }
            self.written_upto = self.written_upto.max(m.upto);
            let _ = self.handed.pop_front();
        }
        self.overlay.forget_below(self.written_upto, FORGET_SLACK);
        Ok(())
    }

    /// Decides one row of the open batch.
    pub fn row(&mut self, key: &KeyHash, offset: i64, time: i64) -> Result<Verdict, String> {
        let row = Row { key: *key, offset, time };
        let lo = bucket_of(time.saturating_sub(self.window), self.window);
        let hi = bucket_of(time.saturating_add(self.window), self.window);
        let mask = (0..=(hi - lo).min(2)).fold(0u8, |m, j| m | (u8::from(self.keys.may_contain(lo + j, key)) << j));
        self.decide_one(&row, mask)
    }

    /// Decides `rows` of the open batch, in order (see the module docs); `out` gets one
    /// verdict per row.
    pub fn rows(&mut self, rows: &[Row], out: &mut Vec<Verdict>) -> Result<(), String> {
        self.refresh()?;
        out.clear();
        let mut probes = std::mem::take(&mut self.probes);
        let decided = rows.chunks(CHUNK).try_for_each(|chunk| {
            // First pass: the filters, and the overlay's index slots (read now so the
            // second pass finds them cached: independent loads, overlapped).
            self.keys.probe(chunk, self.window, &mut probes);
            let touched = chunk.iter().fold(0u64, |acc, r| acc ^ self.overlay.touch(&r.key));
            let _ = std::hint::black_box(touched);
            for (r, m) in chunk.iter().zip(&probes) {
                out.push(self.decide_one(r, *m)?);
            }
            Ok::<_, String>(())
        });
        self.probes = probes;
        decided
    }

    /// One row, `mask` saying which of its buckets the store may hold its key in.
    #[inline]
    fn decide_one(&mut self, r: &Row, mask: u8) -> Result<Verdict, String> {
        let window = self.window;
        let watermark = self.watermark;
        let first = bucket_of(r.time.saturating_sub(window), window);
        let keys = &self.keys;
        let row = Entry { offset: r.offset, time: r.time };
        let mut verdict = Verdict::Again;
        self.overlay.upsert(&r.key, |each| {
            // The overlay's newest entry of the key in each of the row's buckets: it
            // shadows the store's (it is the same or newer).
            let mut mine: [Option<Entry>; 3] = [None; 3];
            each(&mut |b, e| {
                if let Some(slot) = usize::try_from(b - first).ok().and_then(|j| mine.get_mut(j)) {
                    let _ = slot.get_or_insert(e);
                }
            });
            let lookup = |b: i64, k: &KeyHash| {
                let j = (b - first) as usize;
                match mine.get(j).copied().flatten() {
                    Some(e) => Ok(Some(e)),
                    None if j < 3 && mask & (1 << j) != 0 => keys.get(b, k),
                    None => Ok(None),
                }
            };
            verdict = decide(lookup, &r.key, row, window, watermark)?;
            Ok::<_, String>(match verdict {
                Verdict::New(b) => Some((b, row)),
                _ => None,
            })
        })?;
        self.watermark = self.watermark.max(r.time);
        Ok(verdict)
    }

    /// The open batch is sealed: its rows end before `end`.
    pub fn seal(&mut self, end: i64) {
        self.active = true;
        let upto = self.overlay.next();
        self.open_from = upto;
        match self.pending.back_mut() {
            // Several stage runs over one range (never today) fold into one.
            Some(m) if m.end == end => {
                m.upto = upto;
                m.watermark = self.watermark;
            }
            _ => self.pending.push_back(Mark { end, watermark: self.watermark, upto }),
        }
    }

    /// Everything before `next_offset` was delivered: hands the store the entries of
    /// the batches that end at or before it, in one write. Returns whether it did.
    pub fn delivered(&mut self, next_offset: i64) -> Result<bool, String> {
        self.refresh()?;
        let n = self.pending.iter().take_while(|m| m.end <= next_offset).count();
        let from = self.handed.back().map_or(self.written_upto, |m| m.upto);
        let mark = if n == 0 {
            // Nothing decided there (every row of the range was undecodable, or no row
            // reached this stage): the state may still move its covers up, when nothing
            // decided before it waits.
            let behind = self.handed_covers.is_none_or(|c| c.next_offset < next_offset);
            let open = self.overlay.next() > self.open_from;
            if !(behind && self.active && self.pending.is_empty() && !open) {
                return Ok(false);
            }
            Mark { end: next_offset, watermark: self.watermark, upto: from }
        } else {
            self.pending.drain(..n).next_back().expect("n > 0")
        };
        let entries = self.overlay.range(from, mark.upto).map(|m| (m.bucket, m.key, m.entry)).collect();
        let covers = Covers { next_offset: mark.end, watermark: mark.watermark };
        let write = StateWrite { entries, covers, expire_below: self.expire_below(mark.watermark) };
        self.keys.write(write)?;
        self.handed_covers = Some(covers);
        self.handed.push_back(mark);
        Ok(true)
    }

    /// Waits until the store applied every delivery handed to it.
    pub fn flush(&mut self) -> Result<(), String> {
        self.keys.flush()?;
        self.refresh()
    }

    /// Buckets below this hold only entries older than `watermark` minus the window.
    fn expire_below(&self, watermark: i64) -> i64 {
        bucket_of(watermark.saturating_sub(self.window), self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::{KeyStore, MemoryStore};
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    fn k(n: u8) -> KeyHash {
        KeyHash([n; 16])
    }

    /// A store whose writes wait in a queue until the test applies them (as the
    /// on-disk store's writer thread does), and are lost in a crash.
    #[derive(Clone, Default)]
    struct Lagging {
        inner: MemoryStore,
        queue: Arc<Mutex<VecDeque<StateWrite>>>,
    }

    struct LaggingPartition {
        store: Lagging,
        inner: Box<dyn PartitionKeys>,
    }

    impl Lagging {
        fn open(&mut self) -> Box<dyn PartitionKeys> {
            Box::new(LaggingPartition { store: self.clone(), inner: self.inner.open("t", 0).unwrap() })
        }

        /// Applies the oldest `n` queued writes.
        fn apply(&self, n: usize) {
            let writes: Vec<StateWrite> = {
                let mut q = self.queue.lock().unwrap();
                let n = n.min(q.len());
                q.drain(..n).collect()
            };
            let mut target = self.inner.clone().open("t", 0).unwrap();
            writes.into_iter().for_each(|w| target.write(w).unwrap());
        }

        fn crash(&self) {
            self.queue.lock().unwrap().clear();
        }
    }

    impl PartitionKeys for LaggingPartition {
        fn covers(&self) -> Option<Covers> {
            self.inner.covers()
        }
        fn refresh(&mut self) -> Result<Option<Covers>, String> {
            self.inner.refresh()
        }
        fn may_contain(&self, bucket: i64, key: &KeyHash) -> bool {
            self.inner.may_contain(bucket, key)
        }
        fn get(&self, bucket: i64, key: &KeyHash) -> Result<Option<Entry>, String> {
            self.inner.get(bucket, key)
        }
        fn write(&mut self, write: StateWrite) -> Result<(), String> {
            self.store.queue.lock().unwrap().push_back(write);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), String> {
            self.store.apply(usize::MAX);
            Ok(())
        }
        fn size(&self) -> StateSize {
            self.inner.size()
        }
    }

    /// One row: key and time (its offset is its index).
    #[derive(Debug, Clone, Copy)]
    struct TestRow {
        key: u8,
        time: i64,
    }

    /// What one crash-free pass keeps: each row whose key has no kept occurrence
    /// within the window before it that the watermark has not left behind.
    fn reference(rows: &[TestRow], window: i64) -> Vec<usize> {
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
    /// decided at seal (in two passes, as the stage decides them) and delivered in
    /// order, at step `s` only when `deliver[s]` (delivery lags); each delivery is
    /// handed to the store at once, and the store applies the writes handed to it only
    /// when `persist[s]` (its writer lags too). At each step in `crashes` the
    /// undelivered batches, the writes not applied and the in-memory state are lost;
    /// the partition is reopened from the store and the source resumes at what it
    /// covers, applying the rows up to the delivered position again without
    /// delivering them. Returns the rows delivered, in order.
    fn run(
        rows: &[TestRow],
        window: i64,
        (cuts, deliver, persist, crashes): (&[usize], &[bool], &[bool], &[usize]),
    ) -> Vec<usize> {
        let n = rows.len();
        let mut store = Lagging::default();
        let mut part = PartitionDedup::new(store.open(), window);
        let (mut pos, mut delivered_to) = (0usize, 0usize);
        let mut queue: VecDeque<(usize, Vec<usize>)> = VecDeque::new();
        let mut out = Vec::new();
        let mut verdicts = Vec::new();
        let mut step = 0usize;
        while delivered_to < n {
            if pos < n {
                let len = cuts[step % cuts.len()].clamp(1, n - pos);
                // A batch never spans the delivered position (catch-up rows are sealed
                // apart, as the source does).
                let len = if pos < delivered_to { len.min(delivered_to - pos) } else { len };
                let batch: Vec<Row> = (pos..pos + len)
                    .map(|i| Row { key: k(rows[i].key), offset: i as i64, time: rows[i].time })
                    .collect();
                part.rows(&batch, &mut verdicts).unwrap();
                let kept: Vec<usize> = (pos..pos + len)
                    .zip(&verdicts)
                    .filter(|(_, v)| **v != Verdict::Duplicate)
                    .map(|(i, _)| i)
                    .collect();
                pos += len;
                part.seal(pos as i64);
                if pos <= delivered_to {
                    // Catch-up: delivered already, handed to the store at once.
                    part.delivered(pos as i64).unwrap();
                } else {
                    queue.push_back((pos, kept));
                }
            }
            if deliver[step % deliver.len()] || pos >= n {
                if let Some((end, kept)) = queue.pop_front() {
                    out.extend(kept);
                    delivered_to = delivered_to.max(end);
                    part.delivered(end as i64).unwrap();
                }
            }
            if persist[step % persist.len()] {
                store.apply(1 + step % 3);
            }
            if crashes.contains(&step) {
                queue.clear();
                store.crash();
                part = PartitionDedup::new(store.open(), window);
                pos = part.covers().map_or(0, |c| c.next_offset as usize);
                assert!(pos <= delivered_to, "the state never runs ahead of delivery");
            }
            step += 1;
        }
        out
    }

    fn rows_strategy() -> impl Strategy<Value = (Vec<TestRow>, i64)> {
        (proptest::collection::vec((0u8..6, 0i64..60), 1..120), 20i64..300).prop_map(|(raw, window)| {
            // Times mostly increase, a little out of order; keys recur within and beyond
            // the window.
            let mut t = 0;
            let rows = raw
                .into_iter()
                .map(|(key, step)| {
                    t += step;
                    TestRow { key, time: t - (step % 7) * 9 }
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
        /// Through any crashes, with the state applied behind delivery by any number of
        /// writes (and expired buckets dropped), the rows delivered are exactly what one
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
        p.refresh().unwrap();
        assert_eq!(p.covers(), Some(Covers { next_offset: 1, watermark: 10 }));
        let reopened = PartitionDedup::new(store.open("t", 0).unwrap(), 1_000);
        assert_eq!(reopened.covers(), Some(Covers { next_offset: 1, watermark: 10 }));
        assert_eq!(p.unwritten(), 1, "key 2 waits for its batch's delivery");
        assert!(p.delivered(3).unwrap());
        p.refresh().unwrap();
        assert_eq!(p.unwritten(), 0);
        assert!(!p.delivered(3).unwrap(), "nothing new");
        assert!(p.delivered(10).unwrap(), "an acknowledged range no row of reached: the covers move up");
        p.refresh().unwrap();
        assert_eq!(p.covers().unwrap().next_offset, 10);
        let mut fresh = PartitionDedup::new(store.open("t", 0).unwrap(), 1_000);
        assert!(!fresh.delivered(20).unwrap(), "an instance that decided nothing never moves the covers");
        assert_eq!(fresh.covers().unwrap().next_offset, 10);
    }

    #[test]
    fn entries_stay_visible_until_the_store_applied_them() {
        let mut store = Lagging::default();
        let mut p = PartitionDedup::new(store.open(), 1_000);
        let mut v = Vec::new();
        let rows: Vec<Row> = (0..10).map(|i| Row { key: k(i), offset: i64::from(i), time: 5 }).collect();
        p.rows(&rows, &mut v).unwrap();
        assert!(v.iter().all(|v| *v == Verdict::New(0)));
        p.seal(10);
        assert!(p.delivered(10).unwrap());
        for _ in 0..3 {
            p.refresh().unwrap();
            assert_eq!(p.row(&k(3), 10, 6).unwrap(), Verdict::Duplicate, "handed over, not applied: in the overlay");
        }
        assert_eq!(p.unwritten(), 10);
        store.apply(1);
        p.refresh().unwrap();
        assert_eq!(p.unwritten(), 0);
        assert_eq!(p.covers().map(|c| c.next_offset), Some(10));
        assert_eq!(p.row(&k(4), 11, 7).unwrap(), Verdict::Duplicate, "applied: in the store");
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
