//! Exactly-once into Kafka without transactions: what to resend after a crash.
//!
//! The sink sends rows in source order. Each row's partition is a function of the row
//! (its key, by Java-compatible murmur2), so a replayed row goes where it went before.
//! The idempotent, gap-less producer keeps every output partition's log a **prefix** of
//! the rows sent to that partition, in order: a delivery error ends the producer session
//! before anything later in that partition can land. Every message carries two headers:
//!
//! - its own source position, and
//! - the sink's **floor** when it was sent: the highest position up to which every row
//!   sent before it had been acknowledged, in *every* partition.
//!
//! Recovery reads the last message of each output partition (its position `tail[p]` and
//! floor) and decides, in [`plan`]:
//!
//! - `floor` = the greatest floor read (each is a true lower bound: rows at or below it
//!   were acknowledged before that message was even sent);
//! - a row at position `x` for partition `p` is already there iff `x ≤ max(tail[p], floor)`
//!   (prefix property: everything sent to `p` up to its tail landed);
//! - the source resumes after `min over p of max(tail[p], floor)`, every row after it is
//!   read again and sent unless [`ResumePlan::already_sent`] says it is there.
//!
//! Crash states, and why each is safe:
//! 1. crash before a row is produced: it is in no tail, it is resent;
//! 2. produced, delivery report not yet received: it either landed (then it is at or
//!    below its partition's tail and skipped) or not (then the tail is below it and,
//!    by the prefix property, so is every later row of that partition);
//! 3. a delivery error: the session ends at once, nothing later is produced in that
//!    session, recovery runs as after a crash;
//! 4. crash during recovery: recovery changes nothing, it is simply run again;
//! 5. a partition that holds none of this pipeline's rows: its tail is unknown, the
//!    floor bounds the replay (without a floor the source is read from the beginning).
//!
//! The hole without transactions: two writers at once would interleave and break the
//! prefix property, so a pipeline has one writer (see the sink's lease).

use crate::position::Position;
use crate::streams::StreamAckWindow;

/// What recovery read at the end of one output partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// Position of the partition's last message of this pipeline (`None`: none there).
    pub position: Option<Position>,
    /// The floor header of that message.
    pub floor: Option<Position>,
}

/// Where to resume and what to skip, per output partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumePlan {
    /// Resume the source after this position (`None`: from the beginning).
    pub resume_after: Option<Position>,
    /// Per partition: rows at or below this position are already there.
    pub delivered: Vec<Option<Position>>,
    /// The floor recovered (the greatest read).
    pub floor: Option<Position>,
}

/// The recovery decision from the tails of every output partition (index = partition).
pub fn plan(tails: &[Tail]) -> ResumePlan {
    let floor = tails.iter().filter_map(|t| t.floor.clone()).max();
    let delivered: Vec<Option<Position>> = tails.iter().map(|t| t.position.clone().max(floor.clone())).collect();
    // `None` (nothing known to be there) is below every position: Option's order says so.
    let resume_after = delivered.iter().min().cloned().flatten();
    ResumePlan { resume_after, delivered, floor }
}

impl ResumePlan {
    /// True when the row at `position`, for `partition`, already landed.
    pub fn already_sent(&self, partition: usize, position: &Position) -> bool {
        self.delivered.get(partition).and_then(Option::as_ref).is_some_and(|d| position <= d)
    }
}

/// Tracks rows in flight in send order and yields the floor: the position of the last
/// row of the acknowledged prefix. Bounded by the producer's queue. (One stream of
/// [`crate::streams::StreamAckWindow`].)
#[derive(Debug, Default)]
pub struct AckWindow(StreamAckWindow);

impl AckWindow {
    /// A window whose floor starts at `floor` (the recovered one).
    pub fn new(floor: Option<Position>) -> Self {
        AckWindow(StreamAckWindow::new(vec![floor]))
    }

    /// Records a row about to be sent; returns its sequence number. `position` may be
    /// left out for most rows (the floor then advances only to rows that have one:
    /// still a lower bound, at the cost of a slightly longer replay).
    pub fn sent(&mut self, position: Option<Position>) -> u64 {
        self.0.sent(0, position)
    }

    /// Records the acknowledgement of row `seq`; advances the floor over the prefix.
    pub fn acknowledged(&mut self, seq: u64) {
        self.0.acknowledged(seq);
    }

    /// The current floor.
    pub fn floor(&self) -> Option<&Position> {
        self.0.floor(0)
    }

    /// Rows sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::PositionValue;
    use proptest::prelude::*;

    fn pos(n: u64) -> Position {
        Position(vec![PositionValue::Int(i128::from(n))])
    }

    /// One output partition's log: (row number, floor header).
    type Log = Vec<(u64, Option<Position>)>;

    /// The model: rows 0..n (row i's partition = parts[i]) are sent in order by
    /// sessions that crash. In each session, a random prefix (per partition) of what it
    /// sent lands; acknowledgements arrive for a prefix of what landed. Recovery uses
    /// `decide` on the tails. After the last session (no crash) every partition must
    /// hold exactly its rows, once each, in order.
    fn run_model(
        n: u64,
        parts: &[usize],
        partitions: usize,
        crashes: &[Crash],
        decide: impl Fn(&[Tail]) -> ResumePlan,
    ) -> Vec<Log> {
        let mut logs: Vec<Log> = vec![Vec::new(); partitions];
        let mut sessions: Vec<Crash> = crashes.to_vec();
        sessions.push((u64::MAX, vec![u64::MAX; partitions], u64::MAX)); // the final run finishes
        for (stop_after, land_limit, ack_limit) in sessions {
            let tails: Vec<Tail> = logs
                .iter()
                .map(|l| match l.last() {
                    None => Tail::default(),
                    Some((row, floor)) => Tail { position: Some(pos(*row)), floor: floor.clone() },
                })
                .collect();
            let plan = decide(&tails);
            let start = plan.resume_after.as_ref().map_or(0, |p| match p.0[0] {
                PositionValue::Int(v) => v as u64 + 1,
                _ => unreachable!(),
            });
            let mut window = AckWindow::new(plan.floor.clone());
            let mut sent_in_session = vec![0u64; partitions];
            let mut landed_seqs = Vec::new();
            for row in start..n {
                if row >= start.saturating_add(stop_after) {
                    break;
                }
                let p = parts[row as usize];
                if plan.already_sent(p, &pos(row)) {
                    continue;
                }
                let floor = window.floor().cloned();
                // Positions on every third row only: the floor must stay a lower bound.
                let seq = window.sent((row % 3 == 0).then(|| pos(row)));
                // Lands only while this partition's prefix in this session continues.
                if sent_in_session[p] < land_limit[p] {
                    sent_in_session[p] += 1;
                    logs[p].push((row, floor));
                    landed_seqs.push(seq);
                } else {
                    sent_in_session[p] = u64::MAX; // later rows of p cannot land (gap-less)
                }
                // Acknowledge early landed rows, in an order that differs by partition.
                for &s in landed_seqs.iter().take(ack_limit.min(landed_seqs.len() as u64) as usize) {
                    window.acknowledged(s);
                }
            }
        }
        logs
    }

    /// One crashing session: rows it reads before crashing, rows landing per partition,
    /// acknowledgements received.
    type Crash = (u64, Vec<u64>, u64);

    fn strategy() -> impl Strategy<Value = (u64, Vec<usize>, usize, Vec<Crash>)> {
        (1usize..5, 1u64..60).prop_flat_map(|(partitions, n)| {
            (
                Just(n),
                prop::collection::vec(0..partitions, n as usize),
                Just(partitions),
                prop::collection::vec((0u64..40, prop::collection::vec(0u64..20, partitions), 0u64..30), 0..6),
            )
        })
    }

    fn exact(n: u64, parts: &[usize], logs: &[Log]) -> bool {
        logs.iter().enumerate().all(|(p, log)| {
            let want: Vec<u64> = (0..n).filter(|&r| parts[r as usize] == p).collect();
            log.iter().map(|(r, _)| *r).collect::<Vec<_>>() == want
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_row_lands_exactly_once_in_order((n, parts, partitions, crashes) in strategy()) {
            let logs = run_model(n, &parts, partitions, &crashes, plan);
            prop_assert!(exact(n, &parts, &logs), "{logs:?}");
        }
    }

    /// The deliberately wrong rule — resume after the *greatest* tail — loses rows, and
    /// the model sees it.
    #[test]
    fn resuming_after_the_greatest_tail_loses_rows() {
        let wrong = |tails: &[Tail]| {
            let mut p = plan(tails);
            p.resume_after = p.delivered.iter().max().cloned().flatten();
            p
        };
        // Two partitions; first session lands rows of partition 0 only, then crashes.
        let parts = [0, 1, 0, 1, 0, 1];
        let logs = run_model(6, &parts, 2, &[(6, vec![3, 0], 0)], wrong);
        assert!(!exact(6, &parts, &logs), "{logs:?}");
        let logs = run_model(6, &parts, 2, &[(6, vec![3, 0], 0)], plan);
        assert!(exact(6, &parts, &logs), "{logs:?}");
    }

    /// Ignoring the floor is safe but replays from the beginning; trusting a floor that
    /// is not a lower bound loses rows.
    #[test]
    fn floor_bounds_the_replay_of_empty_partitions() {
        let tails = [Tail { position: Some(pos(10)), floor: Some(pos(7)) }, Tail::default()];
        let p = plan(&tails);
        assert_eq!(p.resume_after, Some(pos(7)));
        assert!(p.already_sent(1, &pos(7)) && !p.already_sent(1, &pos(8)));
        assert!(p.already_sent(0, &pos(10)) && !p.already_sent(0, &pos(11)));
        let none = plan(&[Tail::default(), Tail::default()]);
        assert_eq!(none.resume_after, None);
    }

    #[test]
    fn window_floor_is_the_acknowledged_prefix() {
        let mut w = AckWindow::new(None);
        let a = w.sent(Some(pos(1)));
        let b = w.sent(Some(pos(2)));
        let c = w.sent(Some(pos(3)));
        w.acknowledged(b);
        assert_eq!(w.floor(), None);
        w.acknowledged(a);
        assert_eq!(w.floor(), Some(&pos(2)));
        w.acknowledged(c);
        assert_eq!((w.floor(), w.in_flight()), (Some(&pos(3)), 0));
        w.acknowledged(a); // a late duplicate report changes nothing
        assert_eq!(w.floor(), Some(&pos(3)));
        let d = w.sent(None);
        w.acknowledged(d);
        assert_eq!((w.floor(), w.in_flight()), (Some(&pos(3)), 0), "a row without a position keeps the floor");
    }
}
