//! The entries a partition made that its store does not hold yet (decided, maybe not
//! delivered, maybe handed to the store's writer but not written), in the order they
//! were made, indexed by key.
//!
//! Entries live in one append-only sequence (a sealed batch's entries are a contiguous
//! range of it, so a delivery hands a range to the store without copying per batch),
//! numbered from 0 for the life of the partition. The index is an open-addressing
//! table of 8-byte slots — 32 bits of the key (already uniform: an XXH3 hash) and the
//! low 32 bits of the number of the newest entry filed there — and each entry links to
//! the previous entry filed in the same slot. So a lookup is one probe, whatever
//! bucket the entries are in, and keys that share a slot are told apart by the full
//! key on the chain. The table is a plain array so the decide pass can touch a row's
//! slot a few hundred rows ahead ([`Overlay::touch`]): at a drain's rates the index
//! outgrows the processor's caches, and a miss per row was most of what a decision
//! cost. Entries the store has written are dropped from the front in bulk (amortized:
//! the index is rebuilt when they are at least half of what is held), never one by one.

use super::{Entry, KeyHash};
use std::collections::VecDeque;

/// No previous entry.
const NONE: u64 = u64::MAX;

/// One entry made by a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Made {
    /// Its time bucket.
    pub bucket: i64,
    /// Its key.
    pub key: KeyHash,
    /// Where and when.
    pub entry: Entry,
    /// The number of the previous entry filed in the same index slot.
    prev: u64,
}

/// Walks the chain from entry `n`: `f(bucket, entry)` for each entry of `key`.
#[inline]
fn chain(made: &VecDeque<Made>, base: u64, mut n: u64, key: &KeyHash, mut f: impl FnMut(i64, Entry)) {
    while n != NONE && n >= base {
        let m = &made[(n - base) as usize];
        if m.key == *key {
            f(m.bucket, m.entry);
        }
        n = m.prev;
    }
}

#[inline]
fn prefix(key: &KeyHash) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&key.0[..8]);
    u64::from_le_bytes(a)
}

/// The open-addressing table: a slot is `tag << 32 | (number as u32)`, 0 when empty;
/// the tag is the key's high 32 bits with the low bit set (never 0), the home slot its
/// low bits. Linear probing, at most half full.
#[derive(Debug, Default)]
struct Index {
    slots: Vec<u64>,
    len: usize,
}

impl Index {
    #[inline]
    fn tag(p: u64) -> u64 {
        ((p >> 32) | 1) << 32
    }

    #[inline]
    fn home(&self, p: u64) -> usize {
        p as usize & (self.slots.len() - 1)
    }

    /// The slot of `p`'s tag, or the empty slot where it would go.
    #[inline]
    fn find(&self, p: u64) -> usize {
        let tag = Index::tag(p);
        let mask = self.slots.len() - 1;
        let mut i = self.home(p);
        loop {
            let s = self.slots[i];
            if s == 0 || s & !0xffff_ffff == tag {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// The full number of a slot's entry (`base` ≤ it < `base` + 2³²).
    #[inline]
    fn number(s: u64, base: u64) -> u64 {
        base + u64::from((s as u32).wrapping_sub(base as u32))
    }

    fn with_room(capacity: usize) -> Index {
        Index { slots: vec![0; (capacity * 2).next_power_of_two().max(1024)], len: 0 }
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Overlay {
    /// Entries numbered `base..base + len`.
    made: VecDeque<Made>,
    base: u64,
    index: Index,
}

impl Overlay {
    /// The number the next entry gets.
    pub fn next(&self) -> u64 {
        self.base + self.made.len() as u64
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.made.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.made.is_empty()
    }

    /// Files entry `n`, of key prefix `p`, in slot `at`; returns the number of the
    /// entry filed there before (the new entry's `prev`).
    #[inline]
    fn file(&mut self, at: usize, p: u64, n: u64) -> u64 {
        let s = self.index.slots[at];
        self.index.slots[at] = Index::tag(p) | (n & 0xffff_ffff);
        if s == 0 {
            self.index.len += 1;
            NONE
        } else {
            Index::number(s, self.base)
        }
    }

    /// Rebuilds the index, with room for `room` entries, from the entries held.
    fn reindex(&mut self, room: usize) {
        self.index = Index::with_room(room);
        for i in 0..self.made.len() {
            let p = prefix(&self.made[i].key);
            let at = self.index.find(p);
            self.made[i].prev = self.file(at, p, self.base + i as u64);
        }
    }

    /// Makes room for one more entry.
    #[inline]
    fn reserve_one(&mut self) {
        if (self.index.len + 1) * 2 > self.index.slots.len() {
            self.reindex((self.made.len() + 1).max(self.index.slots.len()));
        }
    }

    /// Adds an entry; returns its number.
    #[inline]
    pub fn push(&mut self, bucket: i64, key: KeyHash, entry: Entry) -> u64 {
        self.upsert(&key, |_| Ok::<_, ()>(Some((bucket, entry)))).unwrap_or_default();
        self.next() - 1
    }

    /// Reads `key`'s index slot, so that a lookup of it soon after finds the slot in
    /// the processor's cache (the decide pass touches a chunk of rows' slots, then
    /// decides them).
    #[inline]
    pub fn touch(&self, key: &KeyHash) -> u64 {
        if self.index.slots.is_empty() {
            return 0;
        }
        self.index.slots[self.index.home(prefix(key))]
    }

    /// Calls `f(bucket, entry)` for each entry of `key` held, newest first (so the
    /// first one seen for a bucket is the one that counts there).
    #[inline]
    pub fn each(&self, key: &KeyHash, f: impl FnMut(i64, Entry)) {
        if self.index.slots.is_empty() {
            return;
        }
        let s = self.index.slots[self.index.find(prefix(key))];
        if s != 0 {
            chain(&self.made, self.base, Index::number(s, self.base), key, f);
        }
    }

    /// Looks `key` up and, when `decide` (given each of its entries, as
    /// [`Overlay::each`] gives them) returns an entry, adds it — with one probe of the
    /// index for both.
    #[inline]
    pub fn upsert<E>(
        &mut self,
        key: &KeyHash,
        decide: impl FnOnce(&dyn Fn(&mut dyn FnMut(i64, Entry))) -> Result<Option<(i64, Entry)>, E>,
    ) -> Result<(), E> {
        self.reserve_one();
        let at = self.index.find(prefix(key));
        let s = self.index.slots[at];
        let head = if s == 0 { NONE } else { Index::number(s, self.base) };
        let (made, base) = (&self.made, self.base);
        let found = decide(&|f: &mut dyn FnMut(i64, Entry)| chain(made, base, head, key, f))?;
        if let Some((bucket, entry)) = found {
            let n = self.next();
            let prev = self.file(at, prefix(key), n);
            self.made.push_back(Made { bucket, key: *key, entry, prev });
        }
        Ok(())
    }

    /// The entries numbered `from..to` (both within what is held).
    pub fn range(&self, from: u64, to: u64) -> impl Iterator<Item = &Made> + '_ {
        let (a, b) = ((from - self.base) as usize, (to - self.base) as usize);
        self.made.range(a..b)
    }

    /// Forgets the entries numbered below `upto` (the store holds them now), when they
    /// are at least `slack` and at least as many as those left, rebuilding the index.
    pub fn forget_below(&mut self, upto: u64, slack: usize) {
        let upto = upto.min(self.next());
        let gone = upto.saturating_sub(self.base) as usize;
        // At least half of what is held: the rebuild (of the half left at most) costs an
        // index write or two per entry forgotten. (Forgetting at a quarter held less
        // memory but cost more rebuilds than it saved, measured end to end.)
        if gone == 0 || gone < slack || gone * 2 < self.made.len() {
            return;
        }
        let _ = self.made.drain(..gone);
        self.base = upto;
        if self.made.capacity() > 4 * self.made.len().max(1024) {
            self.made.shrink_to_fit();
        }
        self.reindex(self.made.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any pushes (keys that share their first bytes, or their tag, or nothing),
        /// forgets and lookups answer as a list of the entries held would, newest first.
        #[test]
        fn lookups_answer_as_a_list_would(
            ops in proptest::collection::vec((0u8..4, 0u64..40, 0u64..3, any::<bool>()), 1..600),
        ) {
            let mut o = Overlay::default();
            let mut model: Vec<(u64, KeyHash, i64)> = Vec::new(); // (number, key, bucket)
            let mut base = 0u64;
            // Keys whose low bytes collide (same home slot) and whose high bytes do too.
            let key_of = |k: u64, twin: u64| key((k % 8) | ((k / 8) << 40) | (twin << 60), twin);
            for (op, k, twin, big) in ops {
                match op {
                    0 | 1 => {
                        let n = o.push(op as i64, key_of(k, twin), Entry { offset: k as i64, time: 0 });
                        model.push((n, key_of(k, twin), op as i64));
                    }
                    2 => {
                        let upto = base + (o.len() as u64) / if big { 1 } else { 2 };
                        o.forget_below(upto, 0);
                        base = o.next() - o.len() as u64;
                        model.retain(|(n, _, _)| *n >= base);
                    }
                    _ => {
                        let want: Vec<(i64, u64)> = model.iter().rev().filter(|(_, kk, _)| *kk == key_of(k, twin)).map(|(n, _, b)| (*b, *n)).collect();
                        let mut got = Vec::new();
                        o.each(&key_of(k, twin), |b, e| got.push((b, e.offset as u64)));
                        prop_assert!(got.iter().all(|(_, off)| *off == k));
                        let buckets = |v: &[(i64, u64)]| v.iter().map(|(b, _)| *b).collect::<Vec<_>>();
                        prop_assert_eq!(buckets(&got), buckets(&want), "newest first");
                    }
                }
                prop_assert_eq!(o.len(), model.len());
            }
        }
    }

    fn key(hi: u64, lo: u64) -> KeyHash {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_le_bytes());
        b[8..].copy_from_slice(&lo.to_le_bytes());
        KeyHash(b)
    }

    fn all(o: &Overlay, k: &KeyHash) -> Vec<(i64, i64)> {
        let mut v = Vec::new();
        o.each(k, |b, e| v.push((b, e.offset)));
        v
    }

    #[test]
    fn keys_sharing_their_first_bytes_are_told_apart_newest_first() {
        let mut o = Overlay::default();
        let (a, b) = (key(7, 1), key(7, 2));
        let e = |offset| Entry { offset, time: 0 };
        assert_eq!(o.push(0, a, e(0)), 0);
        assert_eq!(o.push(0, b, e(1)), 1);
        assert_eq!(o.push(1, a, e(2)), 2);
        assert_eq!(all(&o, &a), vec![(1, 2), (0, 0)]);
        assert_eq!(all(&o, &b), vec![(0, 1)]);
        assert_eq!(all(&o, &key(8, 1)), vec![]);
        let mut seen = Vec::new();
        o.upsert(&a, |each| {
            each(&mut |b, e| seen.push((b, e.offset)));
            Ok::<_, ()>(Some((2, e(3))))
        })
        .unwrap();
        assert_eq!(seen, vec![(1, 2), (0, 0)], "upsert sees what each sees");
        o.upsert(&key(9, 9), |_| Ok::<_, ()>(None)).unwrap();
        assert_eq!(o.next(), 4, "nothing added when nothing is decided");
        assert_eq!(all(&o, &a), vec![(2, 3), (1, 2), (0, 0)]);
        assert_eq!(o.range(1, 3).map(|m| m.entry.offset).collect::<Vec<_>>(), vec![1, 2]);
        o.forget_below(2, 0);
        assert_eq!(all(&o, &a), vec![(2, 3), (1, 2)], "the forgotten entry is gone from the chain");
        assert_eq!(all(&o, &b), vec![]);
        assert_eq!((o.len(), o.next()), (2, 4));
    }

    #[test]
    fn forgetting_waits_until_it_pays() {
        let mut o = Overlay::default();
        for i in 0..10 {
            let _ = o.push(0, key(i, 0), Entry { offset: i as i64, time: 0 });
        }
        o.forget_below(3, 0);
        assert_eq!(o.len(), 10, "3 written of 10: the index is not rebuilt for them yet");
        o.forget_below(6, 8);
        assert_eq!(o.len(), 10, "below the slack");
        o.forget_below(6, 0);
        assert_eq!(o.len(), 4);
        assert_eq!(all(&o, &key(2, 0)), vec![]);
        assert_eq!(all(&o, &key(7, 0)), vec![(0, 7)]);
    }
}
