//! Where each row of a batch came from: its Kafka offset, timestamp, key and raw bytes.
//!
//! Kept so that a row ClickHouse rejects at insert time can be dead-lettered with the
//! message it was decoded from. One arena per batch (reused across batches), one small
//! fixed-size record per row: no allocation per message.

/// The origins of a batch's rows, row `i` of the block being origin `i`.
#[derive(Debug, Default)]
pub struct RowOrigins {
    arena: Vec<u8>,
    rows: Vec<Origin>,
}

#[derive(Debug, Clone, Copy)]
struct Origin {
    offset: i64,
    /// Kafka timestamp in ms; `i64::MIN` when absent.
    timestamp_ms: i64,
    /// Start of the key in the arena; the payload follows it.
    start: u32,
    /// Key length; `u32::MAX` when the message has no key.
    key_len: u32,
    /// End of the payload in the arena.
    end: u32,
}

/// One row's origin, borrowed from the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginRef<'a> {
    /// Kafka offset.
    pub offset: i64,
    /// Kafka timestamp in ms.
    pub timestamp_ms: Option<i64>,
    /// Message key.
    pub key: Option<&'a [u8]>,
    /// Message bytes.
    pub payload: &'a [u8],
}

impl RowOrigins {
    /// Records the origin of the next `rows` rows, all decoded from one message (a JSON
    /// array can give several): its bytes are stored once.
    #[inline]
    pub fn push(&mut self, rows: usize, offset: i64, timestamp_ms: Option<i64>, key: Option<&[u8]>, payload: &[u8]) {
        if rows == 0 {
            return;
        }
        let start = self.arena.len() as u32;
        if let Some(k) = key {
            self.arena.extend_from_slice(k);
        }
        self.arena.extend_from_slice(payload);
        let origin = Origin {
            offset,
            timestamp_ms: timestamp_ms.unwrap_or(i64::MIN),
            start,
            key_len: key.map_or(u32::MAX, |k| k.len() as u32),
            end: self.arena.len() as u32,
        };
        self.rows.extend(std::iter::repeat_n(origin, rows));
    }

    /// The origin of row `row`.
    pub fn get(&self, row: usize) -> OriginRef<'_> {
        let o = self.rows[row];
        let (start, end) = (o.start as usize, o.end as usize);
        let (key, payload_start) = match o.key_len {
            u32::MAX => (None, start),
            n => (Some(&self.arena[start..start + n as usize]), start + n as usize),
        };
        OriginRef {
            offset: o.offset,
            timestamp_ms: (o.timestamp_ms != i64::MIN).then_some(o.timestamp_ms),
            key,
            payload: &self.arena[payload_start..end],
        }
    }

    /// Rows recorded.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row is recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes held (counted in the batch's size).
    pub fn byte_len(&self) -> usize {
        self.arena.len() + self.rows.len() * std::mem::size_of::<Origin>()
    }

    /// Keeps the origins of the rows flagged in `keep` (one flag per row), in order. The
    /// arena is left as it is (it is cleared with the batch).
    pub fn retain_rows(&mut self, keep: &[bool]) {
        let mut flags = keep.iter();
        self.rows.retain(|_| *flags.next().expect("one flag per row"));
    }

    /// Empties, keeping the allocations.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_rows_key_payload_and_coordinates() {
        let mut o = RowOrigins::default();
        o.push(1, 7, Some(1_000), Some(b"key"), b"{\"a\":1}");
        o.push(1, 8, None, None, b"");
        o.push(1, 9, Some(-5), Some(b""), b"x");
        o.push(0, 10, None, None, b"nothing");
        assert_eq!(o.len(), 3);
        assert_eq!(
            o.get(0),
            OriginRef { offset: 7, timestamp_ms: Some(1_000), key: Some(b"key"), payload: b"{\"a\":1}" }
        );
        assert_eq!(o.get(1), OriginRef { offset: 8, timestamp_ms: None, key: None, payload: b"" });
        assert_eq!(o.get(2), OriginRef { offset: 9, timestamp_ms: Some(-5), key: Some(b""), payload: b"x" });
        let arena = o.arena.len();
        o.push(2, 11, None, None, b"[{},{}]");
        assert_eq!((o.len(), o.arena.len() - arena), (5, 7), "two rows, one copy of the message");
        assert_eq!(o.get(3), o.get(4));
        o.retain_rows(&[true, false, true, false, true]);
        assert_eq!((o.len(), o.get(0).offset, o.get(1).offset, o.get(2).offset), (3, 7, 9, 11));
        o.clear();
        assert!(o.is_empty() && o.byte_len() == 0);
    }
}
