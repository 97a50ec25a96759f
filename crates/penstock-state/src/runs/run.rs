//! A run: an immutable file of one time bucket's entries, sorted by key —
//! `magic (8) | count u64 | count × (key 16, offset i64, time i64) | xxh3-64 of the
//! entries`, little-endian. In memory a run keeps only its file handle and the first
//! key of each 4 KiB block (128 entries), so a lookup is a binary search over the
//! fences, one positioned read, and a binary search in the block.

use penstock_stages::dedup::{Entry, KeyHash};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

const MAGIC: &[u8; 8] = b"PSRUN\x01\0\0";
/// Bytes of one entry.
pub const ENTRY: usize = 32;
/// Entries per block.
const BLOCK: usize = 128;
const HEADER: u64 = 16;

/// One entry of a run.
pub type Item = (KeyHash, Entry);
/// One entry as stored.
pub type Record = [u8; ENTRY];

/// A record's key.
#[inline]
pub fn key_of(rec: &Record) -> KeyHash {
    let mut k = [0u8; 16];
    k.copy_from_slice(&rec[..16]);
    KeyHash(k)
}

/// An open run.
#[derive(Debug)]
pub struct Run {
    /// Its id (file `run-<id>.dat`).
    pub id: u64,
    file: File,
    count: u64,
    fences: Vec<KeyHash>,
}

/// The file of run `id` in `dir`.
pub fn path_of(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("run-{id}.dat"))
}

fn encode(item: &Item, out: &mut [u8; ENTRY]) {
    out[..16].copy_from_slice(&item.0 .0);
    out[16..24].copy_from_slice(&item.1.offset.to_le_bytes());
    out[24..].copy_from_slice(&item.1.time.to_le_bytes());
}

/// A record's key and entry.
pub fn decode(b: &[u8]) -> Item {
    let mut key = [0u8; 16];
    key.copy_from_slice(&b[..16]);
    let mut o = [0u8; 8];
    o.copy_from_slice(&b[16..24]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[24..32]);
    (KeyHash(key), Entry { offset: i64::from_le_bytes(o), time: i64::from_le_bytes(t) })
}

impl Run {
    /// Entries in the run.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        HEADER + self.count * ENTRY as u64 + 8
    }

    /// Writes run `id` in `dir` from `items` (sorted by key, unique), synced.
    pub fn write(dir: &Path, id: u64, items: impl Iterator<Item = Item>) -> std::io::Result<Run> {
        Run::write_records(
            dir,
            id,
            items.map(|i| {
                let mut b = [0u8; ENTRY];
                encode(&i, &mut b);
                b
            }),
        )
    }

    /// Writes run `id` in `dir` from encoded records (sorted by key, unique), synced.
    pub fn write_records(dir: &Path, id: u64, records: impl Iterator<Item = Record>) -> std::io::Result<Run> {
        let path = path_of(dir, id);
        // One handle, written and then read through (no second open per run).
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        let mut w = BufWriter::with_capacity(1 << 18, file);
        w.write_all(MAGIC)?;
        w.write_all(&0u64.to_le_bytes())?; // the count, filled in below
        let (mut count, mut fences, mut sum) = (0u64, Vec::new(), Xxh3::new());
        // A block at a time: one checksum update and one buffered write per 4 KiB.
        let mut block = Vec::with_capacity(BLOCK * ENTRY);
        for rec in records {
            if count.is_multiple_of(BLOCK as u64) {
                fences.push(key_of(&rec));
                if !block.is_empty() {
                    sum.update(&block);
                    w.write_all(&block)?;
                    block.clear();
                }
            }
            block.extend_from_slice(&rec);
            count += 1;
        }
        sum.update(&block);
        w.write_all(&block)?;
        w.write_all(&sum.digest().to_le_bytes())?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.write_all_at(&count.to_le_bytes(), 8)?;
        file.sync_data()?;
        Ok(Run { id, file, count, fences })
    }

    /// Opens run `id` in `dir`, checking it whole; `seen` gets every key (to build
    /// the bucket's filter).
    pub fn open(dir: &Path, id: u64, mut seen: impl FnMut(&KeyHash)) -> std::io::Result<Run> {
        let path = path_of(dir, id);
        let file = File::open(&path)?;
        let bad =
            |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
        let len = file.metadata()?.len();
        let mut r = BufReader::with_capacity(1 << 18, &file);
        let mut head = [0u8; 16];
        r.read_exact(&mut head).map_err(|_| bad("shorter than its header".into()))?;
        if &head[..8] != MAGIC {
            return Err(bad("not a Penstock state run".into()));
        }
        let count = u64::from_le_bytes(head[8..].try_into().unwrap_or_default());
        if len != HEADER + count * ENTRY as u64 + 8 {
            return Err(bad(format!("{len} bytes for {count} entries")));
        }
        let (mut fences, mut sum, mut buf) = (Vec::new(), Xxh3::new(), [0u8; ENTRY]);
        for i in 0..count {
            r.read_exact(&mut buf)?;
            sum.update(&buf);
            let (key, _) = decode(&buf);
            if i % BLOCK as u64 == 0 {
                fences.push(key);
            }
            seen(&key);
        }
        let mut tail = [0u8; 8];
        r.read_exact(&mut tail)?;
        if u64::from_le_bytes(tail) != sum.digest() {
            return Err(bad("checksum mismatch".into()));
        }
        Ok(Run { id, file, count, fences })
    }

    /// The entry of `key`, if the run has it.
    pub fn get(&self, key: &KeyHash) -> std::io::Result<Option<Entry>> {
        let block = self.fences.partition_point(|f| f <= key);
        if block == 0 {
            return Ok(None);
        }
        let block = block - 1;
        let first = block * BLOCK;
        let n = (self.count as usize - first).min(BLOCK);
        let mut buf = [0u8; BLOCK * ENTRY];
        let bytes = &mut buf[..n * ENTRY];
        self.file.read_exact_at(bytes, HEADER + (first * ENTRY) as u64)?;
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let at = &bytes[mid * ENTRY..(mid + 1) * ENTRY];
            match at[..16].cmp(&key.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(decode(at).1)),
            }
        }
        Ok(None)
    }

    /// Every entry, in key order (for filter rebuilds and tests).
    pub fn items(&self) -> std::io::Result<impl Iterator<Item = std::io::Result<Item>> + '_> {
        Ok(self.records()?.map(|r| r.map(|b| decode(&b))))
    }

    /// Every record, in key order (for merges).
    pub fn records(&self) -> std::io::Result<impl Iterator<Item = std::io::Result<Record>> + '_> {
        let mut r = BufReader::with_capacity(1 << 18, &self.file);
        std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(HEADER))?;
        let mut left = self.count;
        Ok(std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let mut buf = [0u8; ENTRY];
            Some(r.read_exact(&mut buf).map(|()| buf))
        }))
    }
}

/// A record's key as a number that orders as its bytes do.
#[inline]
pub fn order_of(rec: &Record) -> u128 {
    let mut k = [0u8; 16];
    k.copy_from_slice(&rec[..16]);
    u128::from_be_bytes(k)
}

/// Merges runs given oldest first (each sorted by key) into one sorted stream: on an
/// equal key the newest run's record wins. Few runs at a time (a merge takes a
/// handful), so the smallest head is found by a scan, not a heap.
pub fn merge_runs<'r>(runs: &[&'r Run]) -> std::io::Result<impl Iterator<Item = std::io::Result<Record>> + 'r> {
    let mut cursors = Vec::with_capacity(runs.len());
    for r in runs {
        let mut it = r.records()?;
        let head = it.next().transpose()?.map(|h| (order_of(&h), h));
        cursors.push((it, head));
    }
    Ok(std::iter::from_fn(move || {
        let mut best: Option<(u128, usize)> = None;
        for (i, (_, head)) in cursors.iter().enumerate() {
            if let Some((k, _)) = head {
                // `<=`: a later (newer) run wins a tie.
                if best.is_none_or(|(b, _)| *k <= b) {
                    best = Some((*k, i));
                }
            }
        }
        let (key, winner) = best?;
        let rec = cursors[winner].1.expect("the winner has a head").1;
        for (it, head) in cursors.iter_mut() {
            if head.as_ref().is_some_and(|(k, _)| *k == key) {
                match it.next().transpose() {
                    Ok(next) => *head = next.map(|h| (order_of(&h), h)),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        Some(Ok(rec))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u32) -> KeyHash {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&n.to_be_bytes());
        KeyHash(b)
    }

    #[test]
    fn a_run_finds_every_key_it_holds_and_none_it_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<Item> =
            (0..1000u32).map(|n| (k(n * 2), Entry { offset: i64::from(n), time: -i64::from(n) })).collect();
        let run = Run::write(dir.path(), 7, items.iter().copied()).unwrap();
        let mut seen = 0;
        let reopened = Run::open(dir.path(), 7, |_| seen += 1).unwrap();
        assert_eq!((run.count(), seen), (1000, 1000));
        for r in [&run, &reopened] {
            for n in 0..1000u32 {
                assert_eq!(r.get(&k(n * 2)).unwrap(), Some(Entry { offset: i64::from(n), time: -i64::from(n) }));
                assert_eq!(r.get(&k(n * 2 + 1)).unwrap(), None);
            }
        }
        let all: Vec<Item> = reopened.items().unwrap().map(Result::unwrap).collect();
        assert_eq!(all, items);
    }

    #[test]
    fn a_damaged_run_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        Run::write(dir.path(), 1, [(k(1), Entry { offset: 1, time: 1 })].into_iter()).unwrap();
        let path = path_of(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Run::open(dir.path(), 1, |_| {}).unwrap_err().to_string();
        assert!(err.contains("run-1.dat") && err.contains("checksum"), "{err}");
    }

    #[test]
    fn the_newest_run_wins_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let e = |o| Entry { offset: o, time: 0 };
        let runs = [
            vec![(k(1), e(1)), (k(2), e(2)), (k(4), e(4))],
            vec![(k(2), e(20)), (k(3), e(30))],
            vec![(k(3), e(300)), (k(5), e(500))],
        ];
        let runs: Vec<Run> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| Run::write(dir.path(), i as u64, r.iter().copied()).unwrap())
            .collect();
        let refs: Vec<&Run> = runs.iter().collect();
        let got: Vec<Item> = merge_runs(&refs).unwrap().map(|r| decode(&r.unwrap())).collect();
        assert_eq!(got, vec![(k(1), e(1)), (k(2), e(20)), (k(3), e(300)), (k(4), e(4)), (k(5), e(500))]);
    }
}
