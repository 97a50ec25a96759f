//! One row's verdict: kept (the key's first occurrence within the window) or a
//! duplicate — and the rule for when the state that decides it may be written down.
//!
//! Rows are applied to a partition's state once each, in offset order. The state is
//! written down (with the offset it covers) only for rows the sink has delivered; after
//! a crash it is read back at that `covers` offset and brought forward by applying the
//! rows from there to the sink's delivered position again, their verdicts thrown away
//! (those rows were delivered), before anything new is decided. So every row is decided
//! by the same state as the first time, and a replayed batch yields the same rows (see
//! `docs/state.md`). A state written ahead of delivery would decide the re-read rows a
//! second time against themselves; the crash model below shows that going wrong.
//!
//! A key's entry keeps the offset of its first occurrence too: the same row seen again
//! (a redelivery) is kept as itself, never dropped as its own duplicate.

use super::Keys;

/// Where and when a key occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// Source offset.
    pub offset: i64,
    /// Time (ms) the window is measured on: the Kafka timestamp or an event time.
    pub time: i64,
}

/// A key's state: its first occurrence in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The first occurrence.
    pub first: Occurrence,
}

/// What happens to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The key's first occurrence within the window: kept.
    Keep,
    /// The key occurred within the window before: dropped.
    Duplicate,
}

/// Decides the row at `offset` with `key` and `time` (window in ms), and records a kept
/// row as its key's first occurrence.
pub fn decide(keys: &mut impl Keys, offset: i64, key: &[u8], time: i64, window: i64) -> Verdict {
    match keys.get(key) {
        Some(e) if e.first.offset == offset => Verdict::Keep,
        Some(e) if (time - e.first.time).abs() <= window => Verdict::Duplicate,
        _ => {
            keys.put(key, Entry { first: Occurrence { offset, time } });
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::MemoryKeys;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// One row: key and time (its offset is its index).
    #[derive(Debug, Clone, Copy)]
    struct Row {
        key: u8,
        time: i64,
    }

    /// What one crash-free pass keeps: each row whose key has no kept occurrence within
    /// the window before it.
    fn reference(rows: &[Row], window: i64) -> Vec<usize> {
        let mut last: std::collections::HashMap<u8, i64> = Default::default();
        let mut kept = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            match last.get(&r.key) {
                Some(t) if (r.time - t).abs() <= window => {}
                _ => {
                    last.insert(r.key, r.time);
                    kept.push(i);
                }
            }
        }
        kept
    }

    /// When the state is written down.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Write {
        /// After the sink delivered the batch (on `persist[s]` steps only: it may lag).
        AfterDelivery,
        /// At seal, before delivery (the wrong rule).
        AtSeal,
    }

    /// A run with crashes, as the pipeline runs it: batches (sizes from `cuts`) are
    /// decided at seal and delivered in order, at step `s` only when `deliver[s]` (delivery
    /// lags); the state is written down as `write` says. At each step in `crashes` the
    /// undelivered batches and the unwritten state are lost; the source resumes at the
    /// written state's `covers`, applies the rows up to the delivered position again
    /// without delivering them, then goes on. Returns the rows delivered, in order.
    fn run(
        rows: &[Row],
        window: i64,
        (cuts, deliver, persist, crashes): (&[usize], &[bool], &[bool], &[usize]),
        write: Write,
    ) -> Vec<usize> {
        let n = rows.len();
        let mut keys = MemoryKeys::default();
        let mut written = (MemoryKeys::default(), 0usize); // (state, covers)
        let (mut pos, mut delivered_to) = (0usize, 0usize);
        let mut queue: VecDeque<(usize, Vec<usize>, MemoryKeys)> = VecDeque::new();
        let mut out = Vec::new();
        let mut step = 0usize;
        while delivered_to < n {
            if pos < n {
                let len = cuts[step % cuts.len()].clamp(1, n - pos);
                let kept: Vec<usize> = (pos..pos + len)
                    .filter(|&i| decide(&mut keys, i as i64, &[rows[i].key], rows[i].time, window) == Verdict::Keep)
                    .collect();
                pos += len;
                if write == Write::AtSeal {
                    written = (keys.clone(), pos);
                }
                // Rows before the delivered position are being caught up: not delivered again.
                let kept = kept.into_iter().filter(|&i| i >= delivered_to).collect();
                queue.push_back((pos, kept, keys.clone()));
            }
            if deliver[step % deliver.len()] || pos >= n {
                if let Some((end, kept, state)) = queue.pop_front() {
                    out.extend(kept);
                    delivered_to = delivered_to.max(end);
                    if write == Write::AfterDelivery && persist[step % persist.len()] {
                        written = (state, end);
                    }
                }
            }
            if crashes.contains(&step) {
                queue.clear();
                keys = written.0.clone();
                // Behind delivery: catch up from what it covers. Ahead of it: the sink's
                // delivered position is where the source resumes.
                pos = if write == Write::AtSeal { delivered_to } else { written.1 };
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
                    Row { key, time: t - (step % 7) }
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
        /// batches, the rows delivered are exactly what one crash-free pass keeps.
        #[test]
        fn crashes_and_catch_up_keep_exactly_the_first_occurrences(
            (rows, window) in rows_strategy(),
            (cuts, deliver, persist, crashes) in schedule(),
        ) {
            let got = run(&rows, window, (&cuts, &deliver, &persist, &crashes), Write::AfterDelivery);
            prop_assert_eq!(got, reference(&rows, window));
        }
    }

    /// Key A at 0 (delivered), at 90 (a duplicate) and at -150 (out of order, beyond the
    /// window of the first: kept); those two sealed, then a crash before they are
    /// delivered; then key B.
    #[test]
    fn a_state_written_ahead_of_delivery_decides_the_replay_wrongly() {
        let rows =
            [Row { key: 1, time: 0 }, Row { key: 1, time: 90 }, Row { key: 1, time: -150 }, Row { key: 2, time: 0 }];
        let right = reference(&rows, 100);
        assert_eq!(right, vec![0, 2, 3]);
        let schedule = (&[1usize, 2][..], &[true, false][..], &[true][..], &[1usize][..]);
        assert_eq!(run(&rows, 100, schedule, Write::AfterDelivery), right);
        // Written at seal, the re-read row 1 meets the entry row 2 made, is beyond its
        // window and passes: a duplicate delivered.
        assert_eq!(run(&rows, 100, schedule, Write::AtSeal), vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_same_row_again_is_itself_not_a_duplicate() {
        let mut keys = MemoryKeys::default();
        assert_eq!(decide(&mut keys, 7, b"k", 1_000, 60_000), Verdict::Keep);
        assert_eq!(decide(&mut keys, 7, b"k", 1_000, 60_000), Verdict::Keep);
        assert_eq!(decide(&mut keys, 8, b"k", 2_000, 60_000), Verdict::Duplicate);
        assert_eq!(decide(&mut keys, 9, b"k", 70_000, 60_000), Verdict::Keep, "beyond the window");
        assert_eq!(keys.len(), 1);
    }
}
