//! ClickHouse's compressed-block framing, as accepted by the HTTP interface with
//! `decompress=1` (and used on the native protocol and in data parts).
//!
//! Each block: 16-byte CityHash128 (v1.0.2) checksum of the rest — the hash's high
//! 64-bit half first, then the low half, each little-endian (pinned below by a block
//! taken from a ClickHouse data part); method byte (0x82 = LZ4, 0x02 = none); `u32` size of
//! header + payload; `u32` uncompressed size; payload. A stream is any sequence of
//! blocks; the server decompresses them back to back, so block boundaries need not
//! match column boundaries.

use lz4_flex::block::{compress_into, get_maximum_output_size};

/// Uncompressed bytes per block: ClickHouse's default `max_compress_block_size`.
pub const BLOCK_SIZE: usize = 1 << 20;
const HEADER: usize = 16 + 9;
const METHOD_LZ4: u8 = 0x82;
const METHOD_NONE: u8 = 0x02;

/// Compresses a byte stream written in pieces into ClickHouse LZ4 blocks.
///
/// Small pieces are gathered in a staging buffer; pieces of a whole block or more are
/// compressed straight from the caller's slice.
#[derive(Debug)]
pub struct Lz4BlockWriter {
    out: Vec<u8>,
    staging: Vec<u8>,
}

impl Default for Lz4BlockWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Lz4BlockWriter {
    /// A writer with an empty output.
    pub fn new() -> Self {
        Lz4BlockWriter { out: Vec::new(), staging: Vec::with_capacity(BLOCK_SIZE) }
    }

    /// Appends `data` to the stream.
    pub fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.staging.is_empty() && data.len() >= BLOCK_SIZE {
                let (block, rest) = data.split_at(BLOCK_SIZE);
                compress_block(&mut self.out, block);
                data = rest;
                continue;
            }
            let room = BLOCK_SIZE - self.staging.len();
            let n = room.min(data.len());
            self.staging.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.staging.len() == BLOCK_SIZE {
                compress_block(&mut self.out, &self.staging);
                self.staging.clear();
            }
        }
    }

    /// Flushes the last partial block and returns the compressed stream.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.staging.is_empty() {
            compress_block(&mut self.out, &self.staging);
        }
        self.out
    }
}

/// Appends one LZ4 block holding `input` to `out`.
pub fn compress_block(out: &mut Vec<u8>, input: &[u8]) {
    let pos = out.len();
    out.resize(pos + HEADER + get_maximum_output_size(input.len()), 0);
    let n = compress_into(input, &mut out[pos + HEADER..]).expect("output sized by get_maximum_output_size");
    out.truncate(pos + HEADER + n);
    frame(out, pos, METHOD_LZ4, n, input.len());
}

/// Appends one uncompressed (method 0x02) block holding `input` to `out`.
pub fn store_block(out: &mut Vec<u8>, input: &[u8]) {
    let pos = out.len();
    out.resize(pos + HEADER, 0);
    out.extend_from_slice(input);
    frame(out, pos, METHOD_NONE, input.len(), input.len());
}

fn frame(out: &mut [u8], pos: usize, method: u8, payload: usize, raw: usize) {
    out[pos + 16] = method;
    out[pos + 17..pos + 21].copy_from_slice(&((9 + payload) as u32).to_le_bytes());
    out[pos + 21..pos + 25].copy_from_slice(&(raw as u32).to_le_bytes());
    let sum = checksum(&out[pos + 16..]);
    out[pos..pos + 16].copy_from_slice(&sum);
}

/// The 16 checksum bytes ClickHouse stores for `data` (header + payload).
fn checksum(data: &[u8]) -> [u8; 16] {
    let sum = cityhash_rs::cityhash_102_128(data);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&((sum >> 64) as u64).to_le_bytes());
    out[8..].copy_from_slice(&(sum as u64).to_le_bytes());
    out
}

/// Why a compressed stream could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt compressed stream at byte {at}: {what}")]
pub struct CorruptStream {
    /// Byte offset of the bad block.
    pub at: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Decompresses a stream of blocks, verifying every checksum (used by tests and tools).
pub fn decompress(mut stream: &[u8]) -> Result<Vec<u8>, CorruptStream> {
    let mut out = Vec::new();
    let mut at = 0;
    while !stream.is_empty() {
        let err = |what| CorruptStream { at, what };
        if stream.len() < HEADER {
            return Err(err("truncated header"));
        }
        let size = u32::from_le_bytes(stream[17..21].try_into().expect("4 bytes")) as usize;
        let raw = u32::from_le_bytes(stream[21..25].try_into().expect("4 bytes")) as usize;
        if size < 9 || stream.len() < 16 + size {
            return Err(err("truncated block"));
        }
        if stream[..16] != checksum(&stream[16..16 + size]) {
            return Err(err("checksum mismatch"));
        }
        let payload = &stream[HEADER..16 + size];
        match stream[16] {
            METHOD_LZ4 => {
                let data = lz4_flex::block::decompress(payload, raw).map_err(|_| err("bad LZ4 data"))?;
                out.extend_from_slice(&data);
            }
            METHOD_NONE => out.extend_from_slice(payload),
            _ => return Err(err("unknown compression method")),
        }
        at += 16 + size;
        stream = &stream[16 + size..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `s.bin` of a one-row String MergeTree part written by ClickHouse 18.16.
    const SERVER_BLOCK: &str = "3205c261e3661e57c9996839add9e1e3821300000009000000900870656e73746f636b";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn reads_and_writes_what_clickhouse_writes() {
        let block = unhex(SERVER_BLOCK);
        assert_eq!(decompress(&block).unwrap(), b"\x08penstock");
        let mut ours = Vec::new();
        compress_block(&mut ours, b"\x08penstock");
        assert_eq!(ours, block);
    }

    #[test]
    fn golden_header() {
        let mut out = Vec::new();
        store_block(&mut out, b"abc");
        assert_eq!(out[16], 0x02);
        assert_eq!(&out[17..25], &[12, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&out[25..], b"abc");
        assert_eq!(decompress(&out).unwrap(), b"abc");
    }

    #[test]
    fn corruption_is_detected() {
        let mut out = Vec::new();
        compress_block(&mut out, &[7u8; 1000]);
        out[30] ^= 1;
        assert_eq!(decompress(&out).unwrap_err().what, "checksum mismatch");
    }

    #[test]
    fn large_and_small_pieces() {
        let big: Vec<u8> = (0..BLOCK_SIZE * 2 + 77).map(|i| (i % 251) as u8).collect();
        let mut w = Lz4BlockWriter::new();
        w.write(b"head");
        w.write(&big);
        w.write(b"tail");
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&big);
        expected.extend_from_slice(b"tail");
        assert_eq!(decompress(&w.finish()).unwrap(), expected);
    }

    proptest! {
        #[test]
        fn round_trip(pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..8)) {
            let mut w = Lz4BlockWriter::new();
            for p in &pieces { w.write(p); }
            prop_assert_eq!(decompress(&w.finish()).unwrap(), pieces.concat());
        }
    }
}
