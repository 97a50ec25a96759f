//! Restoring a partition's state from its changelog (see `docs/state.md`): complete
//! writes applied in order — a write from nothing resets the state, a write that
//! continues the covers reached (its start at or below them, its covers above) is
//! applied (an overlap re-sets identical entries: a write is a function of the rows it
//! covers), a write beyond the sink's delivered position is ignored, and a gap stops
//! the restore there (the source is re-read from the covers reached).

use crate::changelog::Changelog;
use crate::record::Chunk;
use crate::runs::PartitionRuns;
use crate::StateError;
use penstock_stages::dedup::StateWrite;
use std::time::{Duration, Instant};

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
    let (mut writes, mut stopped) = (0u64, false);
    let mut failure = None;
    let records = changelog.read(topic, partition, |chunks: Vec<Chunk>| {
        if stopped || failure.is_some() {
            return;
        }
        let head = &chunks[0];
        let at = runs.covers().map(|c| c.next_offset);
        match step(head.from, head.covers.next_offset, at, delivered) {
            Step::Skip => return,
            Step::Stop => {
                tracing::warn!(topic, partition, ?at, from = ?head.from, "changelog has a gap; the rest is re-read from the source");
                stopped = true;
                return;
            }
            Step::Reset => {
                if let Err(e) = runs.clear() {
                    failure = Some(e.to_string());
                    return;
                }
            }
            Step::Apply => {}
        }
        let write = StateWrite {
            entries: chunks.iter().flat_map(|c| c.entries.iter().copied()).collect(),
            covers: head.covers,
            expire_below: head.expire_below,
        };
        match runs.write(&write) {
            Ok(()) => {
                writes += 1;
                penstock_protocol::failpoint::hit("during_restore");
            }
            Err(e) => failure = Some(e.to_string()),
        }
    })?;
    if let Some(e) = failure {
        return Err(StateError::Store(e));
    }
    let covers = runs.covers().map(|c| c.next_offset);
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
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

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
