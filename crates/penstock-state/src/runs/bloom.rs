//! A blocked Bloom filter over key hashes: each key sets 6 bits of one 512-bit block,
//! so a lookup costs one cache line. Keys are already uniform (XXH3-128), so their
//! own bytes choose the block and the bits. About 1.25 bytes a key at 10 bits/key
//! (≈ 1–2 % false positives).

use penstock_stages::dedup::KeyHash;

/// Bits per key the filter is sized for.
const BITS_PER_KEY: u64 = 10;
/// Bits each key sets in its block.
const PROBES: u32 = 6;

/// The filter of one time bucket.
#[derive(Debug, Clone)]
pub struct Bloom {
    blocks: Vec<[u64; 8]>,
    mask: usize,
    capacity: u64,
    count: u64,
}

fn halves(key: &KeyHash) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&key.0[..8]);
    b.copy_from_slice(&key.0[8..]);
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

impl Bloom {
    /// A filter sized for `capacity` keys.
    pub fn with_capacity(capacity: u64) -> Self {
        let capacity = capacity.max(1 << 12);
        let blocks = (capacity * BITS_PER_KEY).div_ceil(512).next_power_of_two() as usize;
        Bloom { blocks: vec![[0; 8]; blocks], mask: blocks - 1, capacity, count: 0 }
    }

    /// Keys it was sized for.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Keys added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        (self.blocks.len() * 64) as u64
    }

    /// Adds `key`.
    #[inline]
    pub fn insert(&mut self, key: &KeyHash) {
        let (h1, h2) = halves(key);
        let block = &mut self.blocks[h1 as usize & self.mask];
        for i in 0..PROBES {
            let bit = (h2 >> (i * 9)) & 511;
            block[(bit >> 6) as usize] |= 1 << (bit & 63);
        }
        self.count += 1;
    }

    /// False when `key` was certainly never added.
    #[inline]
    pub fn may_contain(&self, key: &KeyHash) -> bool {
        let (h1, h2) = halves(key);
        let block = &self.blocks[h1 as usize & self.mask];
        (0..PROBES).all(|i| {
            let bit = (h2 >> (i * 9)) & 511;
            block[(bit >> 6) as usize] & (1 << (bit & 63)) != 0
        })
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
        let mut b = Bloom::with_capacity(100_000);
        (0..100_000).for_each(|n| b.insert(&key(n)));
        assert!((0..100_000).all(|n| b.may_contain(&key(n))));
        let fp = (100_000..200_000).filter(|n| b.may_contain(&key(*n))).count();
        assert!(fp < 3_000, "{fp} false positives in 100,000");
        assert!(b.bytes() <= 100_000 * 10 / 8 * 2);
    }
}
