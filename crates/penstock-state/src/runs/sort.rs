//! A write's entries turned into runs: grouped by bucket, sorted by key, the last
//! entry made for a key kept.
//!
//! Keys are uniform hashes, so a counting sort on their leading bits (about four
//! entries per slot) puts each entry within a few places of where it belongs, and an
//! insertion sort finishes each slot: two sequential passes and a scatter, instead of
//! a comparison sort's `n log n` compares of 16-byte keys (which, with a gather of the
//! entries in sorted order, took a tenth of a write's time).

use super::run::{order_of, Record, ENTRY};
use penstock_stages::dedup::{Entry, KeyHash};

/// Below this many entries a plain sort does.
const SMALL: usize = 256;

fn record_of(key: &KeyHash, e: &Entry) -> Record {
    let mut b = [0u8; ENTRY];
    b[..16].copy_from_slice(&key.0);
    b[16..24].copy_from_slice(&e.offset.to_le_bytes());
    b[24..].copy_from_slice(&e.time.to_le_bytes());
    b
}

/// The runs of `entries` (in the order they were made), one per bucket at or above
/// `expire_below`, in bucket order: each sorted by key, one record per key — the last
/// made.
pub fn runs_of(entries: &[(i64, KeyHash, Entry)], expire_below: i64) -> Vec<(i64, Vec<Record>)> {
    // Stable by bucket: entries keep the order they were made in within a bucket.
    // Buckets follow time, so the input is nearly sorted already.
    let mut order: Vec<u32> = (0..entries.len() as u32).filter(|i| entries[*i as usize].0 >= expire_below).collect();
    order.sort_by_key(|i| entries[*i as usize].0);
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let bucket = entries[order[start] as usize].0;
        let end = start + order[start..].partition_point(|i| entries[*i as usize].0 == bucket);
        let made: Vec<Record> = order[start..end]
            .iter()
            .map(|i| {
                let (_, k, e) = &entries[*i as usize];
                record_of(k, e)
            })
            .collect();
        out.push((bucket, sort_unique(made)));
        start = end;
    }
    out
}

/// `made` (records in the order they were made) sorted by key, keeping the last
/// record of each key.
pub fn sort_unique(made: Vec<Record>) -> Vec<Record> {
    let n = made.len();
    let mut sorted = if n < SMALL {
        let mut v = made;
        v.sort_by_key(order_of); // stable: equal keys stay in the order made
        v
    } else {
        let bits = (n / 4).ilog2().clamp(4, 20);
        let slot = |r: &Record| (u64::from_be_bytes(r[..8].try_into().unwrap_or_default()) >> (64 - bits)) as usize;
        let mut starts = vec![0u32; (1 << bits) + 1];
        made.iter().for_each(|r| starts[slot(r) + 1] += 1);
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut out = vec![[0u8; ENTRY]; n];
        for r in &made {
            let s = slot(r);
            out[next[s] as usize] = *r;
            next[s] += 1;
        }
        // Each slot holds a few records, in the order made: a stable insertion sort.
        for w in starts.windows(2) {
            let (a, b) = (w[0] as usize, w[1] as usize);
            for i in a + 1..b {
                let mut j = i;
                while j > a && order_of(&out[j - 1]) > order_of(&out[j]) {
                    out.swap(j - 1, j);
                    j -= 1;
                }
            }
        }
        out
    };
    // Equal keys are adjacent, in the order made: keep the last of each.
    let mut keep = 0;
    for i in 0..sorted.len() {
        if i + 1 < sorted.len() && sorted[i][..16] == sorted[i + 1][..16] {
            continue;
        }
        sorted[keep] = sorted[i];
        keep += 1;
    }
    sorted.truncate(keep);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Whatever the sizes and repeats: per bucket, the keys in order and each
        /// key's last entry, as a map fed in order would hold them.
        #[test]
        fn runs_hold_each_keys_last_entry_in_key_order(
            raw in proptest::collection::vec((0i64..3, 0u16..2000, any::<i64>()), 0..3000),
            expire in -1i64..2,
        ) {
            let entries: Vec<(i64, KeyHash, Entry)> = raw
                .iter()
                .map(|(b, k, o)| {
                    (*b, KeyHash(xxhash_rust::xxh3::xxh3_128(&k.to_le_bytes()).to_le_bytes()), Entry { offset: *o, time: *b })
                })
                .collect();
            let mut model: BTreeMap<i64, BTreeMap<[u8; 16], Entry>> = BTreeMap::new();
            for (b, k, e) in &entries {
                if *b >= expire {
                    let _ = model.entry(*b).or_default().insert(k.0, *e);
                }
            }
            let got = runs_of(&entries, expire);
            let want: Vec<(i64, Vec<Record>)> = model
                .into_iter()
                .map(|(b, m)| (b, m.iter().map(|(k, e)| record_of(&KeyHash(*k), e)).collect()))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
