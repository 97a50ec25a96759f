//! Native layout for the columns whose buffers hold row-encoded values: arrays, maps and
//! tuples (stored per row in RowBinary), and `LowCardinality` (stored as plain values).
//!
//! Native stores these column-wise — an array column is all the row lengths as
//! cumulative UInt64 offsets, then every element as one nested column; a tuple is each
//! element's column in turn; a map is an array of (key, value) tuples; a
//! `LowCardinality` column is a dictionary plus one index per row. Building that
//! layout once per batch, when the block is sent, keeps decoding a plain append for
//! every type. Only columns of these types pay for it.

use crate::column::Column;
use crate::types::ColumnType;
use std::collections::HashMap;

/// `LowCardinality` serialization: version of the keys stream (shared dictionaries
/// with additional keys), written once before the column's data.
const LC_KEYS_VERSION: u64 = 1;
/// Index-stream flag: the dictionary keys follow in this granule.
const LC_HAS_ADDITIONAL_KEYS: u64 = 1 << 9;

/// Builds one column's Native data from row-encoded values.
#[derive(Debug)]
enum Builder {
    Fixed {
        width: usize,
        data: Vec<u8>,
    },
    Str {
        data: Vec<u8>,
    },
    Nullable {
        nulls: Vec<u8>,
        inner: Box<Builder>,
    },
    /// Arrays, and maps (whose inner builder is a two-element tuple).
    Array {
        offsets: Vec<u64>,
        total: u64,
        inner: Box<Builder>,
    },
    Tuple {
        items: Vec<Builder>,
    },
    LowCardinality {
        nullable: bool,
        keys: Box<Builder>,
        index: HashMap<Vec<u8>, u64>,
        rows: Vec<u64>,
    },
}

/// The row encoding could not be read (a bug: the decoder wrote it).
#[derive(Debug)]
pub(crate) struct Corrupt;

impl Builder {
    fn new(ty: &ColumnType) -> Builder {
        match ty {
            ColumnType::Nullable(inner) => {
                Builder::Nullable { nulls: Vec::new(), inner: Box::new(Builder::new(inner)) }
            }
            ColumnType::Array(inner) => {
                Builder::Array { offsets: Vec::new(), total: 0, inner: Box::new(Builder::new(inner)) }
            }
            ColumnType::Map(k, v) => Builder::Array {
                offsets: Vec::new(),
                total: 0,
                inner: Box::new(Builder::Tuple { items: vec![Builder::new(k), Builder::new(v)] }),
            },
            ColumnType::Tuple(items) => Builder::Tuple { items: items.iter().map(|(_, t)| Builder::new(t)).collect() },
            ColumnType::LowCardinality(inner) => {
                let nullable = inner.is_nullable();
                let mut keys = Builder::new(inner.non_nullable());
                let mut index = HashMap::new();
                // Key 0 is the default value (standing for NULL when nullable); a
                // nullable dictionary also has the default as key 1.
                let default = crate::column::default_encoding(inner.non_nullable());
                let mut pos = 0;
                keys.push(&default, &mut pos).expect("default value");
                if nullable {
                    let mut pos = 0;
                    keys.push(&default, &mut pos).expect("default value");
                }
                index.insert(default, u64::from(nullable));
                Builder::LowCardinality { nullable, keys: Box::new(keys), index, rows: Vec::new() }
            }
            t => match t.fixed_width() {
                Some(width) => Builder::Fixed { width, data: Vec::new() },
                None => Builder::Str { data: Vec::new() },
            },
        }
    }

    /// Reads one row-encoded value from `bytes` at `pos` and appends it.
    fn push(&mut self, bytes: &[u8], pos: &mut usize) -> Result<(), Corrupt> {
        match self {
            Builder::Fixed { width, data } => data.extend_from_slice(take(bytes, pos, *width)?),
            Builder::Str { data } => {
                let start = *pos;
                let len = read_varint(bytes, pos)?;
                take(bytes, pos, usize::try_from(len).map_err(|_| Corrupt)?)?;
                data.extend_from_slice(&bytes[start..*pos]);
            }
            Builder::Nullable { nulls, inner } => {
                let flag = *take(bytes, pos, 1)?.first().ok_or(Corrupt)?;
                nulls.push(flag);
                if flag == 0 {
                    inner.push(bytes, pos)?;
                } else {
                    inner.push_default();
                }
            }
            Builder::Array { offsets, total, inner } => {
                let n = read_varint(bytes, pos)?;
                for _ in 0..n {
                    inner.push(bytes, pos)?;
                }
                *total += n;
                offsets.push(*total);
            }
            Builder::Tuple { items } => {
                for item in items {
                    item.push(bytes, pos)?;
                }
            }
            Builder::LowCardinality { nullable, keys, index, rows } => {
                let null = *nullable && *take(bytes, pos, 1)?.first().ok_or(Corrupt)? != 0;
                if null {
                    rows.push(0);
                } else {
                    let start = *pos;
                    match &**keys {
                        Builder::Fixed { width, .. } => drop(take(bytes, pos, *width)?),
                        _ => {
                            let len = read_varint(bytes, pos)?;
                            take(bytes, pos, usize::try_from(len).map_err(|_| Corrupt)?)?;
                        }
                    }
                    let value = &bytes[start..*pos];
                    let next = index.len() as u64 + u64::from(*nullable);
                    let key = match index.get(value) {
                        Some(k) => *k,
                        None => {
                            let mut p = start;
                            keys.push(bytes, &mut p)?;
                            index.insert(value.to_vec(), next);
                            next
                        }
                    };
                    rows.push(key);
                }
            }
        }
        Ok(())
    }

    /// Appends the default value (under a NULL).
    fn push_default(&mut self) {
        match self {
            Builder::Fixed { width, data } => data.resize(data.len() + *width, 0),
            Builder::Str { data } => data.push(0),
            Builder::Nullable { nulls, inner } => {
                nulls.push(1);
                inner.push_default();
            }
            Builder::Array { offsets, total, .. } => offsets.push(*total),
            Builder::Tuple { items } => items.iter_mut().for_each(Builder::push_default),
            Builder::LowCardinality { nullable, rows, .. } => rows.push(u64::from(*nullable)),
        }
    }

    /// What Native writes before any column data (the `LowCardinality` key versions).
    fn write_prefix(&self, out: &mut Vec<u8>) {
        match self {
            Builder::Fixed { .. } | Builder::Str { .. } => {}
            Builder::Nullable { inner, .. } | Builder::Array { inner, .. } => inner.write_prefix(out),
            Builder::Tuple { items } => items.iter().for_each(|i| i.write_prefix(out)),
            Builder::LowCardinality { .. } => out.extend_from_slice(&LC_KEYS_VERSION.to_le_bytes()),
        }
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Builder::Fixed { data, .. } | Builder::Str { data } => out.extend_from_slice(data),
            Builder::Nullable { nulls, inner } => {
                out.extend_from_slice(nulls);
                inner.write_body(out);
            }
            Builder::Array { offsets, inner, .. } => {
                for o in offsets {
                    out.extend_from_slice(&o.to_le_bytes());
                }
                inner.write_body(out);
            }
            Builder::Tuple { items } => items.iter().for_each(|i| i.write_body(out)),
            Builder::LowCardinality { keys, index, rows, nullable } => {
                let dictionary = index.len() + usize::from(*nullable);
                let (code, width) = match dictionary {
                    0..=0x100 => (0u64, 1),
                    0x101..=0x1_0000 => (1, 2),
                    0x1_0001..=0x1_0000_0000 => (2, 4),
                    _ => (3, 8),
                };
                out.extend_from_slice(&(code | LC_HAS_ADDITIONAL_KEYS).to_le_bytes());
                out.extend_from_slice(&(dictionary as u64).to_le_bytes());
                keys.write_body(out);
                out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
                for r in rows {
                    out.extend_from_slice(&r.to_le_bytes()[..width]);
                }
            }
        }
    }
}

fn take<'b>(bytes: &'b [u8], pos: &mut usize, n: usize) -> Result<&'b [u8], Corrupt> {
    let end = pos.checked_add(n).ok_or(Corrupt)?;
    let s = bytes.get(*pos..end).ok_or(Corrupt)?;
    *pos = end;
    Ok(s)
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, Corrupt> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(Corrupt)?;
        *pos += 1;
        v |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Corrupt)
}

/// Writes the Native data of `col` (whose type needs conversion, see
/// [`ColumnType::needs_native_conversion`]) into `out`.
pub(crate) fn write_native(col: &Column, rows: usize, out: &mut Vec<u8>) -> Result<(), Corrupt> {
    let ty = col.column_type();
    let mut b = Builder::new(ty);
    // LowCardinality(Nullable(T)) keeps NULLs in the column's null map; its builder
    // reads them as RowBinary does, from a flag byte before the value.
    let flagged = matches!(b, Builder::LowCardinality { nullable: true, .. });
    let mut encoded = Vec::new();
    for row in 0..rows {
        let value = col.value_bytes(row);
        let bytes = if flagged {
            encoded.clear();
            if col.is_null(row) {
                encoded.push(1);
            } else {
                encoded.push(0);
                encoded.extend_from_slice(value);
            }
            &encoded[..]
        } else {
            value
        };
        let mut pos = 0;
        b.push(bytes, &mut pos)?;
        if pos != bytes.len() {
            return Err(Corrupt);
        }
    }
    b.write_prefix(out);
    b.write_body(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native_of(ty: &str, rows: &[Option<&[u8]>]) -> Vec<u8> {
        let mut col = Column::new("c", ColumnType::parse(ty).unwrap());
        for r in rows {
            match r {
                Some(bytes) => col.push_encoded(bytes, false),
                None => col.push_null(),
            }
        }
        let mut out = Vec::new();
        write_native(&col, rows.len(), &mut out).unwrap();
        out
    }

    fn u64s(v: &[u64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn arrays_become_offsets_then_elements() {
        let got = native_of("Array(Int32)", &[Some(&[2, 1, 0, 0, 0, 2, 0, 0, 0]), Some(&[0]), Some(&[1, 3, 0, 0, 0])]);
        let want = [u64s(&[2, 2, 3]), vec![1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]].concat();
        assert_eq!(got, want);
        // Array(Nullable(String)): offsets, then the null map of all elements, then values.
        let got = native_of("Array(Nullable(String))", &[Some(&[2, 0, 1, b'a', 1])]);
        assert_eq!(got, [u64s(&[2]), vec![0, 1], vec![1, b'a', 0]].concat());
        // Array(Array(UInt8)): outer offsets, inner offsets, data.
        let got = native_of("Array(Array(UInt8))", &[Some(&[2, 1, 7, 0]), Some(&[1, 2, 8, 9])]);
        assert_eq!(got, [u64s(&[2, 3]), u64s(&[1, 1, 3]), vec![7, 8, 9]].concat());
    }

    #[test]
    fn maps_are_arrays_of_key_value_tuples() {
        let got = native_of("Map(String, UInt8)", &[Some(&[2, 1, b'a', 1, 1, b'b', 2]), Some(&[0])]);
        assert_eq!(got, [u64s(&[2, 2]), vec![1, b'a', 1, b'b'], vec![1, 2]].concat());
    }

    #[test]
    fn tuples_are_one_column_per_element() {
        let got = native_of("Tuple(UInt8, String)", &[Some(&[1, 1, b'x']), Some(&[2, 0])]);
        assert_eq!(got, vec![1, 2, 1, b'x', 0]);
    }

    #[test]
    fn low_cardinality_is_a_dictionary_and_indexes() {
        let got = native_of("LowCardinality(String)", &[Some(b"\x01b"), Some(b"\x01a"), Some(b"\x01b")]);
        let want = [
            u64s(&[1]),                      // keys serialization version
            u64s(&[LC_HAS_ADDITIONAL_KEYS]), // UInt8 indexes, keys follow
            u64s(&[3]),                      // "", "b", "a"
            vec![0, 1, b'b', 1, b'a'],       // the keys
            u64s(&[3]),                      // rows
            vec![1, 2, 1],                   // indexes
        ]
        .concat();
        assert_eq!(got, want);
        // Nullable: key 0 is NULL, key 1 the default value.
        let got = native_of("LowCardinality(Nullable(String))", &[None, Some(b"\x01x"), Some(b"\x00")]);
        let want = [u64s(&[1, LC_HAS_ADDITIONAL_KEYS, 3]), vec![0, 0, 1, b'x'], u64s(&[3]), vec![0, 2, 1]].concat();
        assert_eq!(got, want);
        // Inside an array the version comes before the offsets.
        let got = native_of("Array(LowCardinality(String))", &[Some(b"\x02\x01p\x01p")]);
        let want =
            [u64s(&[1]), u64s(&[2]), u64s(&[LC_HAS_ADDITIONAL_KEYS, 2]), vec![0, 1, b'p'], u64s(&[2]), vec![1, 1]]
                .concat();
        assert_eq!(got, want);
    }

    #[test]
    fn truncated_row_encodings_are_reported_not_read_past() {
        let mut col = Column::new("c", ColumnType::parse("Array(Int32)").unwrap());
        col.push_encoded(&[2, 1, 0, 0, 0], false);
        assert!(write_native(&col, 1, &mut Vec::new()).is_err());
    }
}
