//! What to do with a partition when this process gets it: a pure function of the
//! ledger's last entry, the group's committed offset and the deduplication mode.
//!
//! Per batch the sink writes `pending(first, next)`, inserts the rows, writes
//! `done(first, next)`, and only then lets the offset `next` be committed to Kafka.
//! So at any crash the ledger's last entry of a partition is one of:
//!
//! - none: nothing was ever delivered by an exactly-once run → resume at the committed
//!   offset (or the `start` policy);
//! - `done(first, next)`: everything before `next` is in the table → resume at `next`
//!   (the Kafka commit may have been lost in the crash; the ledger is authoritative),
//!   unless Kafka is further ahead (another, at-least-once run moved on);
//! - `pending(first, next)`: the rows of `[first, next)` may be absent, partly or fully
//!   present → replay exactly that range as one batch, with the batch time recorded in
//!   the ledger, and let deduplication make the insert idempotent.

/// The state of a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Recorded before the insert; the insert may or may not have happened.
    Pending,
    /// The insert was acknowledged.
    Done,
}

/// The last ledger entry of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    /// First offset of the batch.
    pub first: i64,
    /// One past its last offset.
    pub next: i64,
    /// Pending or done.
    pub state: BatchState,
    /// The batch's `now` (nanoseconds since the epoch), reused when replaying.
    pub batch_time_ns: i64,
    /// Sequence number of the entry (larger is newer).
    pub seq: u64,
}

/// What the new owner of a partition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start consuming at this offset (None: the committed offset, else `start`).
    Resume(Option<i64>),
    /// Rebuild exactly `[first, next)` as one batch and insert it idempotently, then go on.
    Replay {
        /// First offset.
        first: i64,
        /// One past the last.
        next: i64,
        /// The batch time to reuse.
        batch_time_ns: i64,
    },
}

/// Decides how to resume a partition.
pub fn decide(ledger: Option<LedgerEntry>, committed: Option<i64>) -> Decision {
    match ledger {
        None => Decision::Resume(committed),
        Some(e) if committed.is_some_and(|c| c >= e.next) => Decision::Resume(committed),
        Some(LedgerEntry { state: BatchState::Done, next, .. }) => Decision::Resume(Some(next)),
        Some(LedgerEntry { state: BatchState::Pending, first, next, batch_time_ns, .. }) => {
            Decision::Replay { first, next, batch_time_ns }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(first: i64, next: i64, state: BatchState) -> Option<LedgerEntry> {
        Some(LedgerEntry { first, next, state, batch_time_ns: 7, seq: 1 })
    }

    #[test]
    fn cases() {
        assert_eq!(decide(None, None), Decision::Resume(None));
        assert_eq!(decide(None, Some(5)), Decision::Resume(Some(5)));
        assert_eq!(decide(entry(10, 20, BatchState::Done), Some(10)), Decision::Resume(Some(20)));
        assert_eq!(decide(entry(10, 20, BatchState::Done), None), Decision::Resume(Some(20)));
        assert_eq!(decide(entry(10, 20, BatchState::Done), Some(30)), Decision::Resume(Some(30)));
        assert_eq!(
            decide(entry(10, 20, BatchState::Pending), Some(10)),
            Decision::Replay { first: 10, next: 20, batch_time_ns: 7 }
        );
        assert_eq!(decide(entry(10, 20, BatchState::Pending), Some(20)), Decision::Resume(Some(20)));
    }

    /// A model of one partition's delivery: batches of arbitrary sizes, the protocol's
    /// steps, and a crash after any step; recovery by `decide` plus an idempotent replay
    /// must deliver every offset exactly once.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Pending,
        Insert,
        Done,
        Commit,
    }

    fn simulate(batches: &[i64], crashes: &[usize]) -> Vec<u32> {
        simulate_with(batches, crashes, decide)
    }

    fn simulate_with(
        batches: &[i64],
        crashes: &[usize],
        decide: impl Fn(Option<LedgerEntry>, Option<i64>) -> Decision,
    ) -> Vec<u32> {
        let total: i64 = batches.iter().sum();
        let mut rows = vec![0u32; total as usize];
        let mut ledger: Option<LedgerEntry> = None;
        let mut committed: Option<i64> = None;
        let steps = [Step::Pending, Step::Insert, Step::Done, Step::Commit];
        let mut crash_iter = crashes.iter().copied();
        let mut next_crash = crash_iter.next();
        let mut step_counter = 0usize;
        let mut position: i64;
        let mut pending_replay: Option<(i64, i64)> = None;
        // Batch boundaries as a process would cut them from `position`.
        let boundaries: Vec<i64> = batches
            .iter()
            .scan(0, |acc, b| {
                *acc += b;
                Some(*acc)
            })
            .collect();
        'run: loop {
            // Recovery.
            match decide(ledger, committed) {
                Decision::Resume(p) => position = p.unwrap_or(0),
                Decision::Replay { first, next, .. } => {
                    pending_replay = Some((first, next));
                    position = first;
                }
            }
            while position < total {
                let (first, next, replay) = match pending_replay.take() {
                    Some((f, n)) => (f, n, true),
                    None => (position, *boundaries.iter().find(|b| **b > position).unwrap(), false),
                };
                for step in steps {
                    match step {
                        Step::Pending => {
                            ledger =
                                Some(LedgerEntry { first, next, state: BatchState::Pending, batch_time_ns: 0, seq: 0 })
                        }
                        // Only a replay is deduplicated by the server (token, identical
                        // block, or landed-offset check); a normal insert adds rows, so
                        // resuming too early would show up as a count of 2.
                        Step::Insert if replay => (first..next).for_each(|o| rows[o as usize] = 1),
                        Step::Insert => (first..next).for_each(|o| rows[o as usize] += 1),
                        Step::Done => {
                            ledger =
                                Some(LedgerEntry { first, next, state: BatchState::Done, batch_time_ns: 0, seq: 0 })
                        }
                        Step::Commit => committed = Some(next),
                    }
                    step_counter += 1;
                    if next_crash == Some(step_counter) {
                        next_crash = crash_iter.next();
                        continue 'run;
                    }
                }
                position = next;
            }
            break;
        }
        rows
    }

    #[test]
    fn the_model_catches_a_wrong_decision() {
        // Trusting Kafka's committed offset over a `done` ledger entry replays a
        // delivered batch as a normal one: a crash after `done`, before the commit.
        let trust_kafka = |l: Option<LedgerEntry>, c: Option<i64>| match l {
            Some(e) if e.state == BatchState::Pending => decide(l, c),
            _ => Decision::Resume(c),
        };
        let rows = simulate_with(&[3, 3], &[3], trust_kafka);
        assert!(rows.contains(&2), "{rows:?}");
        assert!(simulate(&[3, 3], &[3]).iter().all(|r| *r == 1));
    }

    proptest! {
        #[test]
        fn every_offset_exactly_once_whatever_the_crash_points(
            batches in proptest::collection::vec(1i64..20, 1..12),
            mut crashes in proptest::collection::vec(1usize..60, 0..8),
        ) {
            crashes.sort_unstable();
            crashes.dedup();
            let rows = simulate(&batches, &crashes);
            prop_assert!(rows.iter().all(|r| *r == 1), "{rows:?}");
        }
    }
}
