//! A blocked Bloom filter over key hashes: each key sets 7 bits of one 512-bit block
//! (one cache line), so a lookup costs one cache line. Keys are already uniform
//! (XXH3-128), so their own bytes choose the block and the bits: the block by the
//! key's leading bytes, as runs order keys — keys added in a run's order fill the
//! blocks front to back (a stream the processor prefetches, not a random write per
//! key). Sized at 16 bits
//! (2 bytes) a key: a few false positives in a thousand, each of which costs a read of
//! one block per run — at 10 bits a key they were 1–2 %, which made the reads of
//! false positives a visible part of what a new key costs.
//!
//! Shared between the store's writer thread, its only writer, and the source thread,
//! which reads it while keys are being added: the words are atomics read and written
//! with relaxed ordering. A reader may see a key's bits half set — a "no" for a key
//! whose write has not been applied yet, which the partition's overlay still holds —
//! and the channel that hands a new view to the reader orders every bit of the keys
//! the view covers before it.

use penstock_stages::dedup::KeyHash;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits per key the filter is sized for.
const BITS_PER_KEY: u64 = 16;
/// Bits each key sets in its block (9 bits of the key's second half each).
const PROBES: u32 = 7;

/// One cache line of bits.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Block([AtomicU64; 8]);

/// The filter of one time bucket.
#[derive(Debug)]
pub struct Bloom {
    blocks: Box<[Block]>,
    /// The block of a key is its leading 64 bits shifted right by this.
    shift: u32,
    capacity: u64,
    count: AtomicU64,
}

#[inline]
fn halves(key: &KeyHash) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&key.0[..8]);
    b.copy_from_slice(&key.0[8..]);
    (u64::from_be_bytes(a), u64::from_le_bytes(b))
}

/// The bits `key` sets in each word of its block.
#[inline]
fn masks(h2: u64) -> [u64; 8] {
    let mut m = [0u64; 8];
    for i in 0..PROBES {
        let bit = (h2 >> (i * 9)) & 511;
        m[(bit >> 6) as usize] |= 1 << (bit & 63);
    }
    m
}

impl Bloom {
    /// A filter sized for `capacity` keys.
    pub fn with_capacity(capacity: u64) -> Self {
        let capacity = capacity.max(1 << 12);
        let blocks = (capacity * BITS_PER_KEY).div_ceil(512).next_power_of_two() as usize;
        let blocks: Box<[Block]> = (0..blocks).map(|_| Block::default()).collect();
        // A power of two: `64 - log2(blocks)` leading bits choose the block (one
        // block: a shift of 64, done as a checked shift giving 0).
        let shift = 64 - blocks.len().trailing_zeros();
        Bloom { shift, blocks, capacity, count: AtomicU64::new(0) }
    }

    /// The bytes a filter for `capacity` keys takes.
    pub fn bytes_for(capacity: u64) -> u64 {
        (capacity.max(1 << 12) * BITS_PER_KEY).div_ceil(512).next_power_of_two() * 64
    }

    /// Keys it was sized for.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Keys added.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        (self.blocks.len() * 64) as u64
    }

    #[inline]
    fn block(&self, h1: u64) -> &[AtomicU64; 8] {
        &self.blocks[h1.checked_shr(self.shift).unwrap_or(0) as usize].0
    }

    /// Adds `key`. Only one thread adds (the store's writer): a plain read and write
    /// of each word loses nothing, and costs no locked instruction.
    #[inline]
    pub fn insert(&self, key: &KeyHash) {
        let (h1, h2) = halves(key);
        let block = self.block(h1);
        for (w, m) in block.iter().zip(masks(h2)) {
            if m != 0 {
                w.store(w.load(Ordering::Relaxed) | m, Ordering::Relaxed);
            }
        }
        let _ = self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds every key of `keys` (one count update for all); fastest in key order.
    pub fn insert_all(&self, keys: impl Iterator<Item = KeyHash>) {
        let mut n = 0;
        for key in keys {
            let (h1, h2) = halves(&key);
            let block = self.block(h1);
            for (w, m) in block.iter().zip(masks(h2)) {
                if m != 0 {
                    w.store(w.load(Ordering::Relaxed) | m, Ordering::Relaxed);
                }
            }
            n += 1;
        }
        let _ = self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads the first word of `key`'s block, so that [`Bloom::may_contain`] soon after
    /// finds the block cached: a pass of these over a chunk of rows is a stream of
    /// independent loads the processor overlaps (no prefetch instruction is reachable
    /// without `unsafe`; a load whose value is thrown away does the same here).
    #[inline]
    pub fn touch(&self, key: &KeyHash) -> u64 {
        let (h1, _) = halves(key);
        self.block(h1)[0].load(Ordering::Relaxed)
    }

    /// False when `key` was certainly never added.
    #[inline]
    pub fn may_contain(&self, key: &KeyHash) -> bool {
        let (h1, h2) = halves(key);
        let block = self.block(h1);
        // Every word tested, without a branch per word (whether a word has its bits is
        // a coin toss for an absent key: a branch would be mispredicted half the time).
        block.iter().zip(masks(h2)).fold(true, |all, (w, m)| all & (w.load(Ordering::Relaxed) & m == m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> KeyHash {
        KeyHash(xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_le_bytes())
    }

    #[test]
    fn no_false_negatives_and_few_false_positives_at_capacity() {
        let b = Bloom::with_capacity(100_000);
        (0..50_000).for_each(|n| b.insert(&key(n)));
        b.insert_all((50_000..100_000).map(key));
        assert_eq!(b.count(), 100_000);
        assert!((0..100_000).all(|n| b.may_contain(&key(n))));
        let fp = (100_000..1_100_000).filter(|n| b.may_contain(&key(*n))).count();
        assert!(fp < 5_000, "{fp} false positives in 1,000,000");
        assert!(b.bytes() <= 100_000 * 16 / 8 * 2);
        assert_eq!(Bloom::bytes_for(100_000), b.bytes());
    }

    #[test]
    fn a_reader_on_another_thread_sees_every_key_added_before_a_handover() {
        let b = std::sync::Arc::new(Bloom::with_capacity(10_000));
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = {
            let b = b.clone();
            std::thread::spawn(move || {
                for batch in 0..10u64 {
                    (batch * 1000..(batch + 1) * 1000).for_each(|n| b.insert(&key(n)));
                    tx.send((batch + 1) * 1000).unwrap();
                }
            })
        };
        for upto in rx {
            assert!((0..upto).all(|n| b.may_contain(&key(n))));
        }
        writer.join().unwrap();
    }
}
