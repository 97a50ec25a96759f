//! The partition of a keyed message, as the Java client computes it (`murmur2(key)`,
//! made positive, modulo the partition count), so that Penstock, Kafka Streams, the
//! Java producer and librdkafka's `murmur2` partitioner put a key in the same partition.
//!
//! The Kafka sink chooses every partition itself with this function: a row's partition
//! must be a function of the row for its exactly-once recovery (a replayed row goes
//! where it went before), which librdkafka's random or sticky choice for keyless
//! messages is not.

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition (0-based) of `key` among `partitions` partitions.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    // Java's Utils.toPositive: clear the sign bit (not abs: abs(MIN) overflows).
    ((murmur2(key) as u32) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn matches_the_java_client() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key.as_bytes()), want, "{key}");
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for p in 1..10 {
            for k in 0..200u32 {
                let key = k.to_string();
                let a = partition_for_key(key.as_bytes(), p);
                assert!(a < p);
                assert_eq!(a, partition_for_key(key.as_bytes(), p));
            }
        }
    }
}
