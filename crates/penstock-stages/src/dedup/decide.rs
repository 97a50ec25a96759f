//! One row's verdict: kept (no occurrence of its key within the window) or a
//! duplicate.
//!
//! A partition's state is a set of kept occurrences `(key, offset, time)`, filed by
//! time bucket (`bucket_of(time, window)`: buckets one window wide, so the entries
//! within a window of a time lie in at most three buckets). Entries older than the
//! watermark minus the window are expired: invisible to every decision, whatever
//! bucket still holds them, so dropping whole buckets later changes nothing. Rows are
//! applied once each, in offset order, and the watermark is the largest time applied
//! before the row — so a verdict is a function of the applied prefix, and a replay
//! from a state written at some offset gives the verdicts the first pass gave.
//!
//! A key's entry keeps the offset of its occurrence: the same row seen again (a
//! redelivery) is recognised as itself, never dropped as its own duplicate
//! (KAFKA-12508).

use super::KeyHash;

/// A kept occurrence of a key: where and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Source offset.
    pub offset: i64,
    /// Time (ms) the window is measured on: the Kafka timestamp or an event time.
    pub time: i64,
}

/// What happens to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No occurrence of its key within the window: kept, and recorded (in the bucket
    /// returned).
    New(i64),
    /// The very row seen before (same offset): kept, nothing recorded.
    Again,
    /// Its key occurred within the window: dropped.
    Duplicate,
}

/// The bucket of `time` for `window` (both ms).
#[inline]
pub fn bucket_of(time: i64, window: i64) -> i64 {
    time.div_euclid(window.max(1))
}

/// Decides the row `(offset, time)` of `key` (window in ms, `watermark` the largest
/// time applied before it), looking its key up by bucket with `lookup`.
#[inline]
pub fn decide<E>(
    mut lookup: impl FnMut(i64, &KeyHash) -> Result<Option<Entry>, E>,
    key: &KeyHash,
    row: Entry,
    window: i64,
    watermark: i64,
) -> Result<Verdict, E> {
    let horizon = watermark.saturating_sub(window);
    let lo = bucket_of(row.time.saturating_sub(window).max(horizon), window);
    let hi = bucket_of(row.time.saturating_add(window), window);
    let mut duplicate = false;
    let mut b = lo;
    while b <= hi {
        if let Some(e) = lookup(b, key)? {
            if e.time >= horizon {
                if e.offset == row.offset {
                    return Ok(Verdict::Again);
                }
                duplicate |= (row.time - e.time).abs() <= window;
            }
        }
        b += 1;
    }
    Ok(if duplicate { Verdict::Duplicate } else { Verdict::New(bucket_of(row.time, window)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn k(n: u8) -> KeyHash {
        KeyHash([n; 16])
    }

    /// Decides rows against a map, as a store would hold them.
    struct State {
        map: HashMap<(i64, KeyHash), Entry>,
        watermark: i64,
    }

    impl State {
        fn new() -> Self {
            State { map: HashMap::new(), watermark: i64::MIN }
        }
        fn row(&mut self, key: u8, offset: i64, time: i64, window: i64) -> Verdict {
            let map = &self.map;
            let v = decide(
                |b, key| Ok::<_, ()>(map.get(&(b, *key)).copied()),
                &k(key),
                Entry { offset, time },
                window,
                self.watermark,
            )
            .unwrap();
            if let Verdict::New(b) = v {
                self.map.insert((b, k(key)), Entry { offset, time });
            }
            self.watermark = self.watermark.max(time);
            v
        }
    }

    #[test]
    fn the_same_row_again_is_itself_not_a_duplicate() {
        let mut s = State::new();
        assert_eq!(s.row(1, 7, 1_000, 60_000), Verdict::New(0));
        assert_eq!(s.row(1, 7, 1_000, 60_000), Verdict::Again);
        assert_eq!(s.row(1, 8, 2_000, 60_000), Verdict::Duplicate);
        assert_eq!(s.row(1, 9, 70_000, 60_000), Verdict::New(1), "beyond the window");
        assert_eq!(s.row(1, 10, 125_000, 60_000), Verdict::Duplicate, "within the window of the one at 70 s");
    }

    #[test]
    fn entries_behind_the_watermark_by_more_than_the_window_are_expired() {
        let mut s = State::new();
        assert_eq!(s.row(1, 0, 0, 100), Verdict::New(0));
        assert_eq!(s.row(2, 1, 500, 100), Verdict::New(5));
        // Key 1 at 50 is within 100 of its entry at 0, but the watermark (500) has left
        // that entry behind: expired, so the row is new.
        assert_eq!(s.row(1, 2, 50, 100), Verdict::New(0));
        assert_eq!(s.map.len(), 2, "the expired entry was replaced in its bucket");
    }

    #[test]
    fn a_late_row_sees_an_entry_ahead_of_it_within_the_window() {
        let mut s = State::new();
        assert_eq!(s.row(1, 0, 1_000, 100), Verdict::New(10));
        assert_eq!(s.row(1, 1, 950, 100), Verdict::Duplicate, "50 ms earlier, the bucket before");
    }
}
