//! The changelog's byte layout, little-endian (the local store's is in
//! [`crate::runs`]): a changelog record: one write of one partition's state, in chunks (a write can
//!   hold more entries than a Kafka message may), each chunk
//!   `version u8 = 2, topic (u16 length + bytes), from i64 (the covers before the
//!   write; i64::MIN when none), next_offset i64, watermark i64, expire_below i64,
//!   base i64 (the changelog offset where the writer's latest complete snapshot
//!   starts; i64::MIN when it knows none), chunk u32, chunks u32, n u32,
//!   n × (bucket i64, key [16], offset i64, time i64)`. Version 1 had no `base`; it
//!   is still read.
//!
//! A chunk is its write's last when `chunks == chunk + 1`. A write whose size is known
//! up front gives every chunk the total; a snapshot, streamed from the runs, gives 0 to
//! all but its last ([`ChunkWriter`]) — readers need no more than the rule above.

use penstock_stages::dedup::{Covers, Entry, KeyHash, StateWrite};

/// Entries per changelog chunk: 40 bytes each, under Kafka's default 1 MB message.
pub const CHUNK_ENTRIES: usize = 20_000;

const VERSION: u8 = 2;
const ENTRY: usize = 40;
/// Bytes an entry takes in a changelog record.
pub const ENTRY_BYTES: usize = ENTRY;

/// An entry's bytes: offset, time.
pub fn entry_bytes(e: &Entry) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&e.offset.to_le_bytes());
    b[8..].copy_from_slice(&e.time.to_le_bytes());
    b
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// One chunk of a changelog record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The source topic.
    pub topic: String,
    /// The covers before the write (`None`: the state was empty).
    pub from: Option<i64>,
    /// The write's covers and expiry.
    pub covers: Covers,
    /// Buckets below this may be dropped.
    pub expire_below: i64,
    /// Where the writer's latest complete snapshot starts in the changelog, when it
    /// knew.
    pub base: Option<i64>,
    /// This chunk's index, and how many the write has.
    pub chunk: u32,
    /// Chunks in the write.
    pub chunks: u32,
    /// Its entries.
    pub entries: Vec<(i64, KeyHash, Entry)>,
}

/// The chunks of `write` of `topic`'s state (always at least one, so a write without
/// entries still moves the covers).
pub fn encode_chunks(topic: &str, from: Option<i64>, base: Option<i64>, write: &StateWrite) -> Vec<Vec<u8>> {
    let parts: Vec<&[(i64, KeyHash, Entry)]> =
        if write.entries.is_empty() { vec![&[]] } else { write.entries.chunks(CHUNK_ENTRIES).collect() };
    let chunks = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, entries)| {
            let mut b = Vec::with_capacity(64 + topic.len() + entries.len() * ENTRY);
            b.push(VERSION);
            b.extend_from_slice(&(topic.len() as u16).to_le_bytes());
            b.extend_from_slice(topic.as_bytes());
            let base = base.unwrap_or(i64::MIN);
            for v in
                [from.unwrap_or(i64::MIN), write.covers.next_offset, write.covers.watermark, write.expire_below, base]
            {
                b.extend_from_slice(&v.to_le_bytes());
            }
            for v in [i as u32, chunks, entries.len() as u32] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            for (bucket, key, e) in entries {
                b.extend_from_slice(&bucket.to_le_bytes());
                b.extend_from_slice(&key.0);
                b.extend_from_slice(&entry_bytes(e));
            }
            b
        })
        .collect()
}

/// Decodes a chunk; `Err` says what is wrong with it.
pub fn decode_chunk(b: &[u8]) -> Result<Chunk, String> {
    let (mut c, head) = decode_head(b)?;
    c.entries.reserve_exact((b.len() - head) / ENTRY);
    c.entries.extend(b[head..].chunks_exact(ENTRY).map(|e| {
        let mut key = [0u8; 16];
        key.copy_from_slice(&e[8..24]);
        (i64_at(e, 0), KeyHash(key), Entry { offset: i64_at(e, 24), time: i64_at(e, 32) })
    }));
    Ok(c)
}

/// Decodes a chunk's header only (its entries left empty), checking that the rest holds
/// the entries it counts: what a scan for the latest snapshot reads. Returns where the
/// entries start.
pub fn decode_head(b: &[u8]) -> Result<(Chunk, usize), String> {
    let short = || format!("changelog record of {} bytes is truncated", b.len());
    let fields = match b.first() {
        Some(1) => 4,
        Some(&VERSION) => 5,
        other => return Err(format!("changelog record version {other:?} is not 1 or {VERSION}")),
    };
    let tl = usize::from(u16::from_le_bytes([*b.get(1).ok_or_else(short)?, *b.get(2).ok_or_else(short)?]));
    let head = 3 + tl + fields * 8 + 12;
    if b.len() < head {
        return Err(short());
    }
    let topic =
        String::from_utf8(b[3..3 + tl].to_vec()).map_err(|_| "changelog record topic is not UTF-8".to_string())?;
    let at = 3 + tl;
    let from = i64_at(b, at);
    let covers = Covers { next_offset: i64_at(b, at + 8), watermark: i64_at(b, at + 16) };
    let expire_below = i64_at(b, at + 24);
    let base = if fields == 5 { i64_at(b, at + 32) } else { i64::MIN };
    let at = at + fields * 8;
    let (chunk, chunks, n) = (u32_at(b, at), u32_at(b, at + 4), u32_at(b, at + 8) as usize);
    if b.len() != head + n * ENTRY {
        return Err(format!("changelog record of {} bytes does not hold its {n} entries", b.len()));
    }
    let c = Chunk {
        topic,
        from: (from != i64::MIN).then_some(from),
        covers,
        expire_below,
        base: (base != i64::MIN).then_some(base),
        chunk,
        chunks,
        entries: Vec::new(),
    };
    Ok((c, head))
}

/// Encodes a write whose entries come one by one (a snapshot streamed from the runs),
/// a chunk at a time: every full chunk as soon as it is full (`chunks` 0: more follow),
/// and the last one at [`ChunkWriter::finish`].
#[derive(Debug)]
pub struct ChunkWriter {
    head: StateWrite,
    topic: String,
    from: Option<i64>,
    base: Option<i64>,
    next: u32,
}

impl ChunkWriter {
    /// A write of `topic`'s state from `from` to `covers` (`base`: see [`Chunk::base`]).
    pub fn new(topic: &str, from: Option<i64>, base: Option<i64>, covers: Covers, expire_below: i64) -> Self {
        let head = StateWrite { entries: Vec::with_capacity(CHUNK_ENTRIES), covers, expire_below };
        ChunkWriter { head, topic: topic.to_string(), from, base, next: 0 }
    }

    /// Adds an entry; returns a full chunk's bytes when this entry filled one.
    pub fn push(&mut self, entry: (i64, KeyHash, Entry)) -> Option<Vec<u8>> {
        self.head.entries.push(entry);
        (self.head.entries.len() == CHUNK_ENTRIES).then(|| self.emit(false))
    }

    /// The last chunk (possibly without entries).
    pub fn finish(mut self) -> Vec<u8> {
        self.emit(true)
    }

    fn emit(&mut self, last: bool) -> Vec<u8> {
        let mut b = encode_chunks(&self.topic, self.from, self.base, &self.head).swap_remove(0);
        // encode_chunks numbered it 0 of 1: renumber.
        let at = 3 + self.topic.len() + 40;
        b[at..at + 4].copy_from_slice(&self.next.to_le_bytes());
        let chunks = if last { self.next + 1 } else { 0 };
        b[at + 4..at + 8].copy_from_slice(&chunks.to_le_bytes());
        self.next += 1;
        self.head.entries.clear();
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn chunks_round_trip(n in 0usize..45_000, from in proptest::option::of(0i64..1000)) {
            let entries: Vec<_> = (0..n).map(|i| (i as i64 % 3, KeyHash([(i % 251) as u8; 16]), Entry { offset: i as i64, time: -(i as i64) })).collect();
            let write = StateWrite { entries: entries.clone(), covers: Covers { next_offset: 77, watermark: 5 }, expire_below: -2 };
            let chunks = encode_chunks("orders", from, Some(3), &write);
            prop_assert_eq!(chunks.len(), n.div_ceil(CHUNK_ENTRIES).max(1));
            let mut got = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                prop_assert!(c.len() < 1_000_000);
                let d = decode_chunk(c).unwrap();
                prop_assert_eq!((d.chunk as usize, d.chunks as usize), (i, chunks.len()));
                prop_assert_eq!((&d.topic[..], d.from, d.covers, d.expire_below, d.base), ("orders", from, write.covers, -2, Some(3)));
                got.extend(d.entries);
            }
            prop_assert_eq!(got, entries);
        }
    }

    #[test]
    fn a_streamed_write_marks_only_its_last_chunk() {
        let covers = Covers { next_offset: 9, watermark: 3 };
        let mut w = ChunkWriter::new("t", None, None, covers, 1);
        let entry = |i: usize| (1, KeyHash([i as u8; 16]), Entry { offset: i as i64, time: 0 });
        let mut chunks: Vec<Vec<u8>> = (0..CHUNK_ENTRIES * 2 + 5).filter_map(|i| w.push(entry(i))).collect();
        chunks.push(w.finish());
        let decoded: Vec<Chunk> = chunks.iter().map(|c| decode_chunk(c).unwrap()).collect();
        let last: Vec<bool> = decoded.iter().map(|c| c.chunk + 1 == c.chunks).collect();
        assert_eq!(last, vec![false, false, true]);
        assert_eq!(decoded.iter().map(|c| c.chunk).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(decoded.iter().map(|c| c.entries.len()).sum::<usize>(), CHUNK_ENTRIES * 2 + 5);
        assert!(decoded.iter().all(|c| c.from.is_none() && c.covers == covers && c.expire_below == 1));
        let (head, _) = decode_head(&chunks[2]).unwrap();
        assert_eq!((head.chunk, head.chunks), (2, 3));
        let mut empty = ChunkWriter::new("t", Some(4), Some(9), covers, 1);
        assert!(empty.push(entry(0)).is_none());
        let only = decode_chunk(&empty.finish()).unwrap();
        assert_eq!((only.chunk, only.chunks, only.entries.len(), only.from, only.base), (0, 1, 1, Some(4), Some(9)));
    }

    #[test]
    fn a_truncated_or_foreign_record_is_an_error_not_a_state() {
        let c = &encode_chunks(
            "t",
            None,
            None,
            &StateWrite {
                entries: vec![(0, KeyHash([1; 16]), Entry { offset: 1, time: 2 })],
                covers: Covers { next_offset: 2, watermark: 2 },
                expire_below: 0,
            },
        )[0];
        assert!(decode_chunk(&c[..c.len() - 1]).unwrap_err().contains("does not hold its 1 entries"));
        assert!(decode_chunk(&c[..5]).unwrap_err().contains("truncated"));
        assert!(decode_chunk(b"{\"json\":1}").unwrap_err().contains("version"));
        // A version 1 record (no base) is still read.
        let mut v1 = c.clone();
        v1[0] = 1;
        let at = 3 + 1 + 32;
        let _ = v1.drain(at..at + 8);
        let d = decode_chunk(&v1).unwrap();
        assert_eq!((d.base, d.entries.len(), d.covers.next_offset), (None, 1, 2));
    }
}
