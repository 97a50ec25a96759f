//! A partition's manifest: what its state covers and which runs make up each time
//! bucket. Replaced atomically (written to `MANIFEST.tmp`, synced, renamed over
//! `MANIFEST`, directory synced), so after a crash it is the last complete write and
//! names only runs that were synced before it.
//!
//! Layout, little-endian: `magic (8) | has_covers u8 | next_offset i64 | watermark i64
//! | next_run u64 | buckets u32 | per bucket: bucket i64, runs u32, run ids u64… |
//! (version 2) chain slot u8, writes u32, bytes u64, snapshot u64, base i64 |
//! xxh3-64 of everything before`.
//! Version 1 (without the chain) is read as a chain not started.

use penstock_stages::dedup::Covers;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 8] = b"PSMAN\x02\0\0";
const MAGIC_V1: &[u8; 8] = b"PSMAN\x01\0\0";
/// The manifest's file name.
pub const FILE: &str = "MANIFEST";

/// A partition's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// What the state covers (`None`: nothing written yet).
    pub covers: Option<Covers>,
    /// The id the next run gets.
    pub next_run: u64,
    /// Runs of each bucket, oldest first.
    pub buckets: BTreeMap<i64, Vec<u64>>,
    /// Where the partition's changelog stands (see `crate::changelog`).
    pub chain: Chain,
}

/// The partition's changelog since its last snapshot: the snapshot's key slot (0 or
/// 1; the next snapshot takes the other, so a snapshot cut short never overwrites the
/// last complete one under compaction), its bytes, and the writes made since and
/// their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chain {
    /// Key slot of the last complete snapshot.
    pub slot: u8,
    /// Writes published since it.
    pub writes: u32,
    /// Bytes of those writes.
    pub bytes: u64,
    /// Bytes of the snapshot (0 before any).
    pub snapshot: u64,
    /// The changelog offset where that snapshot starts, when known: every write
    /// carries it, so a restore reads the newest record and starts there.
    pub base: Option<i64>,
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.buckets.len() * 32);
        b.extend_from_slice(MAGIC);
        let c = self.covers.unwrap_or(Covers { next_offset: 0, watermark: 0 });
        b.push(u8::from(self.covers.is_some()));
        b.extend_from_slice(&c.next_offset.to_le_bytes());
        b.extend_from_slice(&c.watermark.to_le_bytes());
        b.extend_from_slice(&self.next_run.to_le_bytes());
        b.extend_from_slice(&(self.buckets.len() as u32).to_le_bytes());
        for (bucket, runs) in &self.buckets {
            b.extend_from_slice(&bucket.to_le_bytes());
            b.extend_from_slice(&(runs.len() as u32).to_le_bytes());
            runs.iter().for_each(|r| b.extend_from_slice(&r.to_le_bytes()));
        }
        b.push(self.chain.slot);
        b.extend_from_slice(&self.chain.writes.to_le_bytes());
        b.extend_from_slice(&self.chain.bytes.to_le_bytes());
        b.extend_from_slice(&self.chain.snapshot.to_le_bytes());
        b.extend_from_slice(&self.chain.base.unwrap_or(i64::MIN).to_le_bytes());
        let sum = xxhash_rust::xxh3::xxh3_64(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Manifest, String> {
        if b.len() < 8 + 1 + 24 + 4 + 8 || (&b[..8] != MAGIC && &b[..8] != MAGIC_V1) {
            return Err("not a Penstock state manifest".into());
        }
        let v2 = &b[..8] == MAGIC;
        let (body, sum) = b.split_at(b.len() - 8);
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
            return Err("manifest checksum mismatch".into());
        }
        let mut at = 8;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = body.get(at..at + n).ok_or_else(|| "manifest is truncated".to_string())?;
            at += n;
            Ok(s)
        };
        let i64_of = |s: &[u8]| i64::from_le_bytes(s.try_into().unwrap_or_default());
        let has = take(1)?[0] == 1;
        let covers = Covers { next_offset: i64_of(take(8)?), watermark: i64_of(take(8)?) };
        let next_run = i64_of(take(8)?) as u64;
        let n = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default());
        let mut buckets = BTreeMap::new();
        for _ in 0..n {
            let bucket = i64_of(take(8)?);
            let runs = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default());
            let ids = (0..runs).map(|_| take(8).map(|s| i64_of(s) as u64)).collect::<Result<Vec<_>, _>>()?;
            let _ = buckets.insert(bucket, ids);
        }
        let chain = if v2 {
            let slot = take(1)?[0];
            let writes = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default());
            let (bytes, snapshot) = (i64_of(take(8)?) as u64, i64_of(take(8)?) as u64);
            let base = Some(i64_of(take(8)?)).filter(|b| *b != i64::MIN);
            Chain { slot, writes, bytes, snapshot, base }
        } else {
            Chain::default()
        };
        Ok(Manifest { covers: has.then_some(covers), next_run, buckets, chain })
    }

    /// Reads the manifest in `dir` (an empty one when there is none).
    pub fn load(dir: &Path) -> std::io::Result<Manifest> {
        match std::fs::read(dir.join(FILE)) {
            Ok(b) => Manifest::decode(&b).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", dir.join(FILE).display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the manifest in `dir` atomically and durably.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("MANIFEST.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_data()?;
        std::fs::rename(&tmp, dir.join(FILE))?;
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Manifest::default());
        let m = Manifest {
            covers: Some(Covers { next_offset: 42, watermark: -7 }),
            next_run: 9,
            buckets: [(-1, vec![1, 2]), (5, vec![8])].into_iter().collect(),
            chain: Chain { slot: 1, writes: 7, bytes: 1 << 40, snapshot: 12_345, base: Some(77) },
        };
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
        let path = dir.path().join(FILE);
        let mut b = std::fs::read(&path).unwrap();
        b[12] ^= 1;
        std::fs::write(&path, b).unwrap();
        assert!(Manifest::load(dir.path()).unwrap_err().to_string().contains("checksum"));
    }

    #[test]
    fn a_version_1_manifest_reads_as_a_chain_not_started() {
        let m = Manifest {
            covers: None,
            next_run: 3,
            buckets: [(0, vec![2])].into_iter().collect(),
            chain: Chain::default(),
        };
        let v2 = m.encode();
        let mut v1 = v2[..v2.len() - 8 - 29].to_vec();
        v1[..8].copy_from_slice(MAGIC_V1);
        let sum = xxhash_rust::xxh3::xxh3_64(&v1);
        v1.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(Manifest::decode(&v1).unwrap(), m);
    }
}
