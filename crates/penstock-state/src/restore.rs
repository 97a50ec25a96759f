//! Restoring a partition's state from its changelog (see `docs/state.md`): from the
//! latest complete write from nothing (a snapshot, found by a scan of the tail), writes
//! applied in order — the snapshot resets the state, a write that continues the covers
//! reached (its start at or below them, its covers above) is applied (an overlap
//! re-sets identical entries: a write is a function of the rows it covers), a write
//! beyond the sink's delivered position is ignored, and a gap stops the restore there
//! (the source is re-read from the covers reached).
//!
//! A write is applied a part at a time ([`RESTORE_BATCH`] entries), so a restore holds
//! no more than that in memory whatever the state's size; only its last part moves the
//! covers. A write cut short (a crash between its chunks, at the end of the log) leaves
//! entries of its first rows beyond the covers: the catch-up that follows re-decides
//! those rows in order against them and gets the verdicts the first pass got (a row
//! with its own entry is itself again; the others see what they saw then).

use crate::changelog::Changelog;
use crate::record::Chunk;
use crate::runs::PartitionRuns;
use crate::StateError;
use penstock_stages::dedup::StateWrite;
use penstock_stages::dedup::{Entry, KeyHash};
use std::time::{Duration, Instant};

/// Entries a restore gathers before it writes them down (≈ 40 MiB).
pub const RESTORE_BATCH: usize = 1 << 20;

/// What a restore from the changelog did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    /// Source topic and partition.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Where in the changelog it started (the latest snapshot's offset; `None`: its
    /// beginning).
    pub from_offset: Option<i64>,
    /// Changelog records read (those read to find where to start included).
    pub records: u64,
    /// Writes applied.
    pub writes: u64,
    /// What the restored state covers.
    pub covers: Option<i64>,
    /// How long it took.
    pub took: Duration,
}

/// What to do with one complete changelog write, given the covers the restore has
/// reached (`at`) and the sink's delivered position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Start over from nothing, then apply it.
    Reset,
    /// Apply it on top of what is there.
    Apply,
    /// Leave it out.
    Skip,
    /// A gap: stop here.
    Stop,
}

/// The rule for one write (pure; see the module docs).
pub fn step(from: Option<i64>, covers: i64, at: Option<i64>, delivered: Option<i64>) -> Step {
    if delivered.is_some_and(|d| covers > d) {
        return Step::Skip; // beyond what the sink delivered: not part of the state
    }
    match (from, at) {
        (None, _) => Step::Reset,
        (Some(from), Some(at)) if from > at => Step::Stop,
        (Some(_), Some(at)) if covers > at => Step::Apply,
        (Some(_), Some(_)) => Step::Skip,
        (Some(_), None) => Step::Skip, // its start was lost: wait for a write from nothing
    }
}

/// Restores `topic`/`partition` into `runs` (which holds nothing) from `changelog`.
pub fn restore(
    runs: &mut PartitionRuns,
    changelog: &Changelog,
    topic: &str,
    partition: i32,
    delivered: Option<i64>,
) -> Result<Restore, StateError> {
    let started = Instant::now();
    // The snapshot the newest record points to, read once; else (or when that is not a
    // snapshot's start) a scan for the latest complete one.
    let (base, mut read) = changelog.latest_base(topic, partition)?;
    if let Some(base) = base {
        // (A base the broker no longer holds, or not a snapshot's start, applies
        // nothing: the scan below takes over.)
        let (records, writes) = apply_from(runs, changelog, topic, partition, Some(base), delivered)?;
        read += records;
        if writes > 0 {
            return Ok(finish(runs, topic, partition, Some(base), read, writes, started));
        }
        tracing::warn!(topic, partition, base, "the changelog's newest record points to no snapshot; scanning for one");
        runs.clear().map_err(|e| StateError::Store(e.to_string()))?;
    }
    let (from_offset, scanned) = changelog.latest_start(topic, partition, delivered)?;
    let (records, writes) = apply_from(runs, changelog, topic, partition, from_offset, delivered)?;
    Ok(finish(runs, topic, partition, from_offset, read + scanned + records, writes, started))
}

/// Applies the records from `start` on; returns the records read and writes applied.
fn apply_from(
    runs: &mut PartitionRuns,
    changelog: &Changelog,
    topic: &str,
    partition: i32,
    start: Option<i64>,
    delivered: Option<i64>,
) -> Result<(u64, u64), StateError> {
    let mut apply = Applying { runs, writes: 0, stopped: false, open: None, part: Vec::new() };
    let records = changelog.read(topic, partition, start, |offset, chunk| {
        apply.chunk(offset, chunk, start, delivered).map_err(|e| e.to_string())
    })?;
    Ok((records, apply.writes))
}

fn finish(
    runs: &PartitionRuns,
    topic: &str,
    partition: i32,
    from_offset: Option<i64>,
    records: u64,
    writes: u64,
    started: Instant,
) -> Restore {
    let covers = runs.covers().map(|c| c.next_offset);
    let took = started.elapsed();
    let r = Restore { topic: topic.into(), partition, from_offset, records, writes, covers, took };
    tracing::info!(
        topic,
        partition,
        from_offset,
        records,
        writes,
        covers,
        took_ms = r.took.as_millis() as u64,
        "state restored from the changelog"
    );
    r
}

/// A restore's progress through the chunks.
struct Applying<'r> {
    runs: &'r mut PartitionRuns,
    writes: u64,
    /// A gap was met: nothing more applies.
    stopped: bool,
    /// The write being applied: its first chunk's header and the next chunk expected.
    open: Option<(Chunk, u32)>,
    /// Its entries not written down yet.
    part: Vec<(i64, KeyHash, Entry)>,
}

impl Applying<'_> {
    fn chunk(&mut self, offset: i64, mut c: Chunk, start: Option<i64>, delivered: Option<i64>) -> std::io::Result<()> {
        if self.stopped {
            return Ok(());
        }
        let last = c.chunk + 1 == c.chunks;
        if c.chunk == 0 {
            self.open = None;
            self.part.clear();
            let at = self.runs.covers().map(|c| c.next_offset);
            let step = match step(c.from, c.covers.next_offset, at, delivered) {
                // Only the snapshot the scan chose resets: a later write from nothing is
                // one cut short (the scan found the latest complete one).
                Step::Reset if start.is_some_and(|s| s != offset) => Step::Skip,
                other => other,
            };
            match step {
                Step::Skip => return Ok(()),
                Step::Stop => {
                    tracing::warn!(offset, ?at, from = ?c.from, "changelog has a gap; the rest is re-read from the source");
                    self.stopped = true;
                    return Ok(());
                }
                Step::Reset => self.runs.clear()?,
                Step::Apply => {}
            }
            self.part.append(&mut c.entries);
            self.open = Some((c, 1));
        } else {
            match &mut self.open {
                Some((_, next)) if *next == c.chunk => *next += 1,
                // The rest of a write whose start was skipped, or lost.
                _ => {
                    self.open = None;
                    return Ok(());
                }
            }
            self.part.append(&mut c.entries);
        }
        let head = &self.open.as_ref().expect("a write is open").0;
        if last {
            let write = StateWrite {
                entries: std::mem::take(&mut self.part),
                covers: head.covers,
                expire_below: head.expire_below,
            };
            self.runs.write(&write)?;
            self.writes += 1;
            self.open = None;
            penstock_protocol::failpoint::hit("during_restore");
        } else if self.part.len() >= RESTORE_BATCH {
            self.runs.add_entries(&self.part, head.expire_below)?;
            self.part.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{decode_chunk, encode_chunks};
    use crate::runs::FilterBudget;
    use penstock_stages::dedup::Covers;
    use std::sync::Arc;

    fn k(n: u64) -> KeyHash {
        KeyHash(xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_le_bytes())
    }

    /// The chunks of a write of keys `keys` from `from` to `to`.
    fn write(from: Option<i64>, to: i64, keys: std::ops::Range<u64>) -> Vec<Chunk> {
        let entries = keys.map(|n| (0, k(n), Entry { offset: n as i64, time: 0 })).collect();
        let w = StateWrite { entries, covers: Covers { next_offset: to, watermark: 0 }, expire_below: 0 };
        encode_chunks("t", from, None, &w).iter().map(|c| decode_chunk(c).unwrap()).collect()
    }

    #[test]
    fn only_the_chosen_snapshot_resets_and_a_write_cut_short_moves_no_covers() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(FilterBudget { limit: 64 << 20, used: Default::default() });
        let mut runs = PartitionRuns::open(dir.path(), budget).unwrap();
        // The log from the scan's choice (offset 10) on: the snapshot to 100, a write to
        // 150, a snapshot cut short (its first of two chunks), a write to 200, then a
        // write to 250 cut short.
        let mut log: Vec<(i64, Chunk)> = Vec::new();
        let mut at = 10;
        let mut add = |chunks: Vec<Chunk>, keep: usize| {
            for c in chunks.into_iter().take(keep) {
                log.push((at, c));
                at += 1;
            }
        };
        add(write(None, 100, 0..100), usize::MAX);
        add(write(Some(100), 150, 100..150), usize::MAX);
        add(write(None, 180, 1000..1000 + 30_000), 1);
        add(write(Some(150), 200, 150..200), usize::MAX);
        add(write(Some(200), 250, 200..30_250), 1);
        let mut a = Applying { runs: &mut runs, writes: 0, stopped: false, open: None, part: Vec::new() };
        for (offset, c) in log {
            a.chunk(offset, c, Some(10), None).unwrap();
        }
        assert_eq!(a.writes, 3);
        let view = runs.view();
        assert_eq!(runs.covers().map(|c| c.next_offset), Some(200), "the write cut short moved nothing");
        assert!((0..200).all(|n| view.get(0, &k(n)).unwrap().is_some()), "the snapshot and the writes after it");
        assert!(view.get(0, &k(1000)).unwrap().is_none(), "the snapshot cut short applied nothing");
        // Its first chunk was less than a part (RESTORE_BATCH entries): never written down.
        assert!(view.get(0, &k(200)).unwrap().is_none(), "the write cut short left nothing");
    }

    #[test]
    fn a_gap_stops_the_restore() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(FilterBudget { limit: 64 << 20, used: Default::default() });
        let mut runs = PartitionRuns::open(dir.path(), budget).unwrap();
        let mut a = Applying { runs: &mut runs, writes: 0, stopped: false, open: None, part: Vec::new() };
        let log = [write(None, 100, 0..10), write(Some(120), 150, 10..20), write(Some(100), 160, 20..30)];
        for (i, chunks) in log.into_iter().enumerate() {
            for c in chunks {
                a.chunk(i as i64, c, None, None).unwrap();
            }
        }
        assert!(a.stopped);
        assert_eq!(runs.covers().map(|c| c.next_offset), Some(100), "nothing after the gap");
    }

    #[test]
    fn the_restore_rule() {
        assert_eq!(step(None, 10, Some(50), None), Step::Reset, "a write from nothing starts over");
        assert_eq!(step(Some(0), 10, Some(10), None), Step::Skip, "already there");
        assert_eq!(step(Some(5), 20, Some(10), None), Step::Apply, "an overlap continues the state");
        assert_eq!(step(Some(11), 20, Some(10), None), Step::Stop, "a gap");
        assert_eq!(step(Some(0), 10, None, None), Step::Skip, "its start was lost");
        assert_eq!(step(Some(10), 30, Some(10), Some(20)), Step::Skip, "beyond what was delivered");
        assert_eq!(step(None, 30, None, Some(20)), Step::Skip, "even from nothing");
    }
}
