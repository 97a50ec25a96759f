//! Reading ClickHouse Native blocks (an HTTP `FORMAT Native` response) into a [`Block`].
//!
//! The reverse direction (ClickHouse → Kafka) selects rows in Native: the server spends
//! the least CPU on it, and a Native column *is* Penstock's column layout for every
//! scalar type, so a column arrives with one copy per value and no parsing. Composite
//! types (arrays, maps, tuples) arrive column-wise — offsets, then nested columns — and
//! are turned into the row-encoded (RowBinary) values a [`Column`] of those types
//! holds, as the JSON decoder would have written them.
//!
//! A response is a sequence of blocks, each `VarUInt columns, VarUInt rows`, then per
//! column `String name, String type` and the data. Every block must carry the same
//! columns; their rows are appended to one [`Block`].
//!
//! `LowCardinality` columns must be asked for as plain values
//! (`low_cardinality_allow_in_native_format=0`): the dictionary serialization is not read.

use crate::column::{write_varint, Block, Column};
use crate::types::ColumnType;

/// Why a Native response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Native response, byte {offset}: {reason}")]
pub struct NativeDecodeError {
    /// Byte offset in the response where reading failed.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn err(&self, reason: impl Into<String>) -> NativeDecodeError {
        NativeDecodeError { offset: self.pos, reason: reason.into() }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], NativeDecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            self.err(format!("needs {n} more bytes, {} are left (truncated response)", self.bytes.len() - self.pos))
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, NativeDecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("variable-length integer longer than 10 bytes"))
    }

    fn string(&mut self) -> Result<&'a [u8], NativeDecodeError> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| self.err("string length overflows"))?)
    }

    fn count(&mut self, what: &str) -> Result<usize, NativeDecodeError> {
        let n = self.varint()?;
        // A count can never exceed the bytes left: every row or column takes at least one.
        usize::try_from(n).ok().filter(|&n| n <= self.bytes.len().saturating_mul(8)).ok_or_else(|| {
            self.err(format!("{what} count {n} is implausible for a {}-byte response", self.bytes.len()))
        })
    }
}

/// Reads a whole Native response. Returns `None` for an empty response (no blocks: the
/// query selected no rows).
pub fn decode_native(bytes: &[u8]) -> Result<Option<Block>, NativeDecodeError> {
    let mut input = Input { bytes, pos: 0 };
    let mut block: Option<Block> = None;
    while input.pos < bytes.len() {
        let columns = input.count("column")?;
        let rows = input.count("row")?;
        if block.is_none() {
            block = Some(Block::new(Vec::with_capacity(columns)));
        }
        let b = block.as_mut().expect("set above");
        let first = b.columns().is_empty() && b.rows() == 0;
        let mut fresh = Vec::new();
        for i in 0..columns {
            let name = input.string()?;
            let name = std::str::from_utf8(name).map_err(|_| input.err("column name is not UTF-8"))?.to_string();
            let ty_text = input.string()?;
            let ty_text = std::str::from_utf8(ty_text).map_err(|_| input.err("column type is not UTF-8"))?;
            let ty = ColumnType::parse(ty_text).map_err(|e| input.err(format!("column `{name}`: {e}")))?;
            if matches!(ty, ColumnType::LowCardinality(_)) {
                return Err(input.err(format!(
                    "column `{name}` is {ty_text}: query with low_cardinality_allow_in_native_format=0"
                )));
            }
            if first {
                fresh.push(Column::new(name.clone(), ty.clone()));
            } else {
                let known = b.columns().get(i).ok_or_else(|| input.err("a later block has more columns"))?;
                if known.name() != name || *known.column_type() != ty {
                    return Err(input.err(format!(
                        "block column {i} is `{name}` {ty}, the first block's is `{}` {}",
                        known.name(),
                        known.column_type()
                    )));
                }
            }
            let col = if first { fresh.last_mut().expect("pushed") } else { &mut b.columns_mut()[i] };
            read_column(&mut input, &ty, rows, col)?;
        }
        if first {
            *b = Block::new(fresh);
        } else if columns != b.columns().len() {
            return Err(input.err("a later block has fewer columns"));
        }
        b.commit_rows(rows);
    }
    Ok(block)
}

/// Appends `rows` values of `ty` from the input to `col`.
fn read_column(input: &mut Input<'_>, ty: &ColumnType, rows: usize, col: &mut Column) -> Result<(), NativeDecodeError> {
    if ty.needs_native_conversion() {
        let values = read_rows(input, ty, rows)?;
        for v in values {
            // Nullable composites do not exist in ClickHouse; the flag is never set here.
            col.push_encoded(&v, false);
        }
        return Ok(());
    }
    let (nulls, inner) = match ty {
        ColumnType::Nullable(inner) => (Some(input.take(rows)?), &**inner),
        other => (None, other),
    };
    match inner.fixed_width() {
        Some(w) => {
            let data = input.take(rows.checked_mul(w).ok_or_else(|| input.err("column size overflows"))?)?;
            for (i, v) in data.chunks_exact(w.max(1)).take(rows).enumerate() {
                match nulls {
                    Some(n) => col.push_encoded(v, n[i] != 0),
                    None => col.push_fixed(v),
                }
            }
            if w == 0 {
                return Err(input.err("zero-width column"));
            }
        }
        None => {
            let mut encoded = Vec::new();
            for i in 0..rows {
                let s = input.string()?;
                match nulls {
                    Some(n) => {
                        encoded.clear();
                        write_varint(&mut encoded, s.len() as u64);
                        encoded.extend_from_slice(s);
                        col.push_encoded(&encoded, n[i] != 0);
                    }
                    None => col.push_str(s),
                }
            }
        }
    }
    Ok(())
}

/// Reads `rows` values of `ty`, column-wise, and returns each row's RowBinary encoding.
fn read_rows(input: &mut Input<'_>, ty: &ColumnType, rows: usize) -> Result<Vec<Vec<u8>>, NativeDecodeError> {
    Ok(match ty {
        ColumnType::Nullable(inner) => {
            let nulls = input.take(rows)?.to_vec();
            let values = read_rows(input, inner, rows)?;
            nulls.iter().zip(values).map(|(&n, v)| if n != 0 { vec![1] } else { [&[0u8][..], &v].concat() }).collect()
        }
        ColumnType::Array(inner) => {
            let offsets = read_offsets(input, rows)?;
            let items = read_rows(input, inner, offsets.last().copied().unwrap_or(0))?;
            join_ranges(&offsets, |range, out| {
                for item in &items[range] {
                    out.extend_from_slice(item);
                }
            })
        }
        ColumnType::Map(k, v) => {
            let offsets = read_offsets(input, rows)?;
            let total = offsets.last().copied().unwrap_or(0);
            let keys = read_rows(input, k, total)?;
            let values = read_rows(input, v, total)?;
            join_ranges(&offsets, |range, out| {
                for i in range {
                    out.extend_from_slice(&keys[i]);
                    out.extend_from_slice(&values[i]);
                }
            })
        }
        ColumnType::Tuple(items) => {
            let mut rows_out = vec![Vec::new(); rows];
            for (_, item_ty) in items {
                for (row, v) in rows_out.iter_mut().zip(read_rows(input, item_ty, rows)?) {
                    row.extend_from_slice(&v);
                }
            }
            rows_out
        }
        ColumnType::LowCardinality(_) => {
            return Err(input.err("LowCardinality inside a composite type is not read (query it as plain values)"))
        }
        other => match other.fixed_width() {
            Some(w) => input.take(rows * w)?.chunks_exact(w).map(<[u8]>::to_vec).collect(),
            None => (0..rows)
                .map(|_| {
                    let s = input.string()?;
                    let mut v = Vec::with_capacity(s.len() + 2);
                    write_varint(&mut v, s.len() as u64);
                    v.extend_from_slice(s);
                    Ok(v)
                })
                .collect::<Result<_, _>>()?,
        },
    })
}

/// Native array offsets: cumulative UInt64 end of each row's items.
fn read_offsets(input: &mut Input<'_>, rows: usize) -> Result<Vec<usize>, NativeDecodeError> {
    let raw = input.take(rows * 8)?;
    let mut prev = 0usize;
    raw.chunks_exact(8)
        .map(|c| {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            let v = usize::try_from(v).ok().filter(|&v| v >= prev && v <= input.bytes.len() * 8);
            let v = v.ok_or_else(|| input.err("array offsets are not ascending"))?;
            prev = v;
            Ok(v)
        })
        .collect()
}

/// Each row's RowBinary array: its length, then what `fill` writes for its item range.
fn join_ranges(offsets: &[usize], mut fill: impl FnMut(std::ops::Range<usize>, &mut Vec<u8>)) -> Vec<Vec<u8>> {
    let mut start = 0;
    offsets
        .iter()
        .map(|&end| {
            let mut out = Vec::new();
            write_varint(&mut out, (end - start) as u64);
            fill(start..end, &mut out);
            start = end;
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::native::encode_native;

    fn sample() -> Block {
        let mut b = Block::new(vec![
            Column::new("id", ColumnType::UInt32),
            Column::new("s", ColumnType::Nullable(Box::new(ColumnType::String))),
            Column::new("tags", ColumnType::parse("Array(String)").unwrap()),
            Column::new("t", ColumnType::parse("Tuple(a UInt8, b Nullable(String))").unwrap()),
        ]);
        let cols = b.columns_mut();
        cols[0].push_fixed(&7u32.to_le_bytes());
        cols[1].push_str(b"ab");
        cols[2].push_encoded(b"\x02\x01x\x02yz", false);
        cols[3].push_encoded(b"\x05\x00\x01q", false);
        b.commit_row();
        let cols = b.columns_mut();
        cols[0].push_fixed(&8u32.to_le_bytes());
        cols[1].push_null();
        cols[2].push_encoded(b"\x00", false);
        cols[3].push_encoded(b"\x06\x01", false);
        b.commit_row();
        b
    }

    #[test]
    fn round_trips_what_the_encoder_writes() {
        let b = sample();
        let bytes = encode_native(&b);
        let back = decode_native(&bytes).unwrap().unwrap();
        assert_eq!(back.rows(), 2);
        for (x, y) in b.columns().iter().zip(back.columns()) {
            assert_eq!((x.name(), x.column_type()), (y.name(), y.column_type()));
            for row in 0..2 {
                assert_eq!(x.value_bytes(row), y.value_bytes(row), "{} row {row}", x.name());
                assert_eq!(x.is_null(row), y.is_null(row));
            }
        }
        // Two blocks append.
        let twice = [bytes.clone(), bytes].concat();
        assert_eq!(decode_native(&twice).unwrap().unwrap().rows(), 4);
    }

    #[test]
    fn empty_response_is_no_block() {
        assert!(decode_native(b"").unwrap().is_none());
    }

    #[test]
    fn truncation_and_mismatch_are_located_errors() {
        let bytes = encode_native(&sample());
        for cut in [1, 5, bytes.len() / 2, bytes.len() - 1] {
            let e = decode_native(&bytes[..cut]).unwrap_err();
            assert!(e.offset <= cut, "{e}");
        }
        let mut other = Block::new(vec![Column::new("x", ColumnType::UInt8)]);
        other.columns_mut()[0].push_fixed(&[1]);
        other.commit_row();
        let mixed = [encode_native(&sample()), encode_native(&other)].concat();
        assert!(decode_native(&mixed).unwrap_err().reason.contains("block"));
        let lc = b"\x01\x01\x01c\x16LowCardinality(String)\x00";
        assert!(decode_native(lc).unwrap_err().reason.contains("low_cardinality_allow_in_native_format"));
    }

    #[test]
    fn golden_map_column() {
        // Map(String, UInt8), rows {a:1,b:2} and {}: offsets [2, 2], keys, values.
        let bytes: Vec<u8> = [
            &[1u8, 2][..],
            b"\x01m\x12Map(String, UInt8)",
            &2u64.to_le_bytes(),
            &2u64.to_le_bytes(),
            b"\x01a\x01b",
            &[1, 2],
        ]
        .concat();
        let b = decode_native(&bytes).unwrap().unwrap();
        assert_eq!(b.columns()[0].value_bytes(0), b"\x02\x01a\x01\x01b\x02");
        assert_eq!(b.columns()[0].value_bytes(1), b"\x00");
    }
}
