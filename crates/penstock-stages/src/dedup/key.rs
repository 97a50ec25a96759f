//! What a dedup decision reads off a row: its key (the key columns' bytes, hashed) and
//! its time (the Kafka timestamp or a DateTime/DateTime64 column, in ms).
//!
//! Keys are kept as 128-bit XXH3 hashes of the columns' Native bytes (each prefixed by
//! its NULL flag, strings by their length), so an entry has a fixed size whatever the
//! key; two distinct keys share a hash with probability ~2⁻¹²⁸ per pair.

use penstock_codec::{Block, ColumnType};
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// A key, hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(pub [u8; 16]);

/// Hashes `(bucket, key)` pairs for the in-memory maps of dedup state: the key is an
/// XXH3 hash already, so its first eight bytes, mixed with the bucket, are the hash
/// (SipHash would cost more than the lookup it serves).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for the key's bytes (through `[u8; 16]`'s Hash); take the first 8.
        let mut a = [0u8; 8];
        let n = bytes.len().min(8);
        a[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(a);
    }

    #[inline]
    fn write_i64(&mut self, v: i64) {
        self.0 ^= (v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    #[inline]
    fn write_usize(&mut self, _: usize) {
        // The array length `[u8; 16]`'s Hash writes first: constant, nothing to mix.
    }
}

/// A map keyed by `(bucket, key)` with [`KeyHasher`].
pub type KeyMap<V> = std::collections::HashMap<(i64, KeyHash), V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The time a dedup window is measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupTime {
    /// The message's Kafka timestamp (`_timestamp`).
    Kafka,
    /// A `DateTime` column (seconds) at this block index.
    Seconds(usize),
    /// A `DateTime64(precision)` column (ticks of 10^-precision s) at this block index.
    Ticks(usize, u32),
}

impl DedupTime {
    /// The time of a column of type `ty` at `index`, or why it cannot be one.
    pub fn column(index: usize, name: &str, ty: &ColumnType) -> Result<DedupTime, String> {
        match ty.non_nullable() {
            ColumnType::DateTime { .. } => Ok(DedupTime::Seconds(index)),
            ColumnType::DateTime64 { precision, .. } => Ok(DedupTime::Ticks(index, u32::from(*precision))),
            other => Err(format!(
                "the dedup time must be `_timestamp` or a DateTime/DateTime64 column, but `{name}` is {other}"
            )),
        }
    }

    /// Row `row`'s time in ms; `None` when it has none (NULL column, no timestamp).
    #[inline]
    pub fn of(&self, block: &Block, row: usize, kafka_ms: Option<i64>) -> Option<i64> {
        match *self {
            DedupTime::Kafka => kafka_ms,
            DedupTime::Seconds(i) => {
                let c = &block.columns()[i];
                (!c.is_null(row))
                    .then(|| i64::from(u32::from_le_bytes(c.value_bytes(row).try_into().unwrap_or_default())) * 1000)
            }
            DedupTime::Ticks(i, precision) => {
                let c = &block.columns()[i];
                (!c.is_null(row)).then(|| {
                    let ticks = i64::from_le_bytes(c.value_bytes(row).try_into().unwrap_or_default());
                    match precision {
                        0..=3 => ticks.saturating_mul(10i64.pow(3 - precision)),
                        p => ticks.div_euclid(10i64.pow(p - 3)),
                    }
                })
            }
        }
    }
}

/// The hash of row `row`'s key columns.
#[inline]
pub fn key_of(block: &Block, columns: &[usize], row: usize) -> KeyHash {
    let cols = block.columns();
    if let [one] = columns {
        let c = &cols[*one];
        if c.nulls().is_none() {
            return KeyHash(xxh3_128(c.value_bytes(row)).to_le_bytes());
        }
    }
    let mut h = Xxh3::new();
    for &i in columns {
        let c = &cols[i];
        let null = c.is_null(row);
        h.update(&[u8::from(null)]);
        if !null {
            let v = c.value_bytes(row);
            if c.column_type().non_nullable().fixed_width().is_none() {
                h.update(&(v.len() as u32).to_le_bytes());
            }
            h.update(v);
        }
    }
    KeyHash(h.digest128().to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_codec::Column;

    fn block() -> Block {
        let mut b = Block::new(vec![
            Column::new("a", ColumnType::String),
            Column::new("b", ColumnType::Nullable(Box::new(ColumnType::String))),
            Column::new("t", ColumnType::DateTime { tz: None }),
            Column::new("t64", ColumnType::DateTime64 { precision: 6, tz: None }),
        ]);
        for (a, bv) in [("x", Some("yz")), ("xy", Some("z")), ("x", None), ("x", Some(""))] {
            let c = b.columns_mut();
            c[0].push_str(a.as_bytes());
            match bv {
                Some(v) => c[1].push_str(v.as_bytes()),
                None => c[1].push_null(),
            }
            c[2].push_fixed(&1_700_000_000u32.to_le_bytes());
            c[3].push_fixed(&1_700_000_000_123_456i64.to_le_bytes());
            b.commit_row();
        }
        b
    }

    #[test]
    fn composite_keys_do_not_run_into_each_other_and_null_is_not_empty() {
        let b = block();
        let keys: Vec<KeyHash> = (0..4).map(|r| key_of(&b, &[0, 1], r)).collect();
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(keys[i], keys[j], "rows {i} and {j}");
            }
        }
        assert_eq!(key_of(&b, &[0], 0), key_of(&b, &[0], 2), "the same single key");
    }

    #[test]
    fn times_are_read_in_milliseconds() {
        let b = block();
        assert_eq!(DedupTime::Seconds(2).of(&b, 0, None), Some(1_700_000_000_000));
        assert_eq!(DedupTime::Ticks(3, 6).of(&b, 0, None), Some(1_700_000_000_123));
        assert_eq!(DedupTime::Kafka.of(&b, 0, Some(5)), Some(5));
        assert_eq!(DedupTime::Kafka.of(&b, 0, None), None);
        assert!(DedupTime::column(0, "a", &ColumnType::String).unwrap_err().contains("`a` is String"));
    }
}
