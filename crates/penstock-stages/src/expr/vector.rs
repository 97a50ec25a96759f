//! Column-at-a-time values: what every expression node produces for a whole batch.
//!
//! A [`Vector`] holds one value per row (or one value for every row, when constant) in
//! the representation of its type (see [`Repr`]), with an optional null map. Reading a
//! block's column and writing a computed column are the only places that know the
//! Native byte layout.

use super::ty::{Base, Repr, Ty};
use penstock_codec::{Column, ColumnType};

/// Strings: the bytes of every value, and where each ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Strings {
    ends: Vec<u32>,
    bytes: Vec<u8>,
}

impl Strings {
    /// Room for `n` values.
    pub fn with_capacity(n: usize) -> Self {
        Strings { ends: Vec::with_capacity(n), bytes: Vec::with_capacity(n * 8) }
    }

    /// Value `i`.
    #[inline]
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// Appends a value.
    #[inline]
    pub fn push(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
        self.ends.push(self.bytes.len() as u32);
    }

    /// Appends a value written by `f` into the buffer.
    #[inline]
    pub fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.bytes);
        self.ends.push(self.bytes.len() as u32);
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The values of a vector.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// Integers, Bool, dates, times, enum values, decimals (unscaled).
    Int(Vec<i128>),
    /// Floats.
    Float(Vec<f64>),
    /// Strings.
    Str(Strings),
    /// All NULL.
    Null,
}

/// One value per row of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Vector {
    /// The values' type.
    pub ty: Ty,
    /// The values.
    pub data: Data,
    /// Per row: NULL (only for nullable types).
    pub nulls: Option<Vec<bool>>,
    /// One value stands for every row.
    pub constant: bool,
    /// Rows.
    pub len: usize,
}

impl Vector {
    #[inline]
    fn at(&self, i: usize) -> usize {
        if self.constant {
            0
        } else {
            i
        }
    }

    /// The integers of a non-constant vector (a fast path for kernels).
    #[inline]
    pub fn ints(&self) -> Option<&[i128]> {
        match (&self.data, self.constant) {
            (Data::Int(v), false) => Some(v),
            _ => None,
        }
    }

    /// Row `i` is NULL.
    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        match &self.data {
            Data::Null => true,
            _ => self.nulls.as_ref().is_some_and(|n| n[self.at(i)]),
        }
    }

    /// Row `i` as an integer (integer-like types).
    #[inline]
    pub fn int(&self, i: usize) -> i128 {
        match &self.data {
            Data::Int(v) => v[self.at(i)],
            Data::Float(v) => v[self.at(i)] as i128,
            _ => 0,
        }
    }

    /// Row `i` as a float: integers converted, decimals scaled.
    #[inline]
    pub fn float(&self, i: usize) -> f64 {
        match (&self.data, &self.ty.base) {
            (Data::Float(v), _) => v[self.at(i)],
            (Data::Int(v), Base::Decimal { scale, .. }) => v[self.at(i)] as f64 / 10f64.powi(i32::from(*scale)),
            (Data::Int(v), _) => v[self.at(i)] as f64,
            _ => 0.0,
        }
    }

    /// Row `i`'s bytes (strings).
    #[inline]
    pub fn bytes(&self, i: usize) -> &[u8] {
        match &self.data {
            Data::Str(s) => s.get(self.at(i)),
            _ => &[],
        }
    }

    /// Row `i` is true for logic: not NULL and non-zero.
    #[inline]
    pub fn truthy(&self, i: usize) -> bool {
        !self.is_null(i)
            && match &self.data {
                Data::Int(v) => v[self.at(i)] != 0,
                Data::Float(v) => v[self.at(i)] != 0.0,
                Data::Str(_) | Data::Null => false,
            }
    }

    /// A vector of `len` NULLs.
    pub fn nulls_of(ty: Ty, len: usize) -> Vector {
        Vector {
            ty: Ty { base: Base::Nothing, nullable: true }.with_null(ty.nullable),
            data: Data::Null,
            nulls: None,
            constant: true,
            len,
        }
    }

    /// Reads `rows` values of a block's column, typed `ty` (see [`Ty::from_column`]).
    pub fn from_column(col: &Column, ty: &Ty, rows: usize) -> Vector {
        let stored = col.column_type().non_nullable();
        let data = match ty.repr() {
            Repr::Float => Data::Float(
                (0..rows)
                    .map(|r| {
                        let b = col.value_bytes(r);
                        match b.len() {
                            4 => f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
                            _ => f64::from_le_bytes(b.try_into().expect("8 bytes")),
                        }
                    })
                    .collect(),
            ),
            Repr::Str => {
                let mut s = Strings::with_capacity(rows);
                let fixed = matches!(stored, ColumnType::FixedString(_));
                for r in 0..rows {
                    let b = col.value_bytes(r);
                    s.push(if fixed { b } else { skip_varint(b) });
                }
                Data::Str(s)
            }
            Repr::Int => {
                let signed = matches!(
                    stored,
                    ColumnType::Int8
                        | ColumnType::Int16
                        | ColumnType::Int32
                        | ColumnType::Int64
                        | ColumnType::Decimal { .. }
                        | ColumnType::Date32
                        | ColumnType::DateTime64 { .. }
                        | ColumnType::Enum8(_)
                        | ColumnType::Enum16(_)
                );
                // Fixed-width values are contiguous: one pass over the column's bytes.
                let w = stored.fixed_width().unwrap_or(0);
                let data = &col.data()[..rows * w];
                Data::Int(match (w, signed) {
                    (1, false) => data.iter().map(|b| i128::from(*b)).collect(),
                    (1, true) => data.iter().map(|b| i128::from(*b as i8)).collect(),
                    (2, false) => data.chunks_exact(2).map(|c| i128::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
                    (4, false) => {
                        data.chunks_exact(4).map(|c| i128::from(u32::from_le_bytes(c.try_into().expect("4")))).collect()
                    }
                    (4, true) => {
                        data.chunks_exact(4).map(|c| i128::from(i32::from_le_bytes(c.try_into().expect("4")))).collect()
                    }
                    (8, false) => {
                        data.chunks_exact(8).map(|c| i128::from(u64::from_le_bytes(c.try_into().expect("8")))).collect()
                    }
                    (8, true) => {
                        data.chunks_exact(8).map(|c| i128::from(i64::from_le_bytes(c.try_into().expect("8")))).collect()
                    }
                    _ => (0..rows).map(|r| read_int(col.value_bytes(r), signed)).collect(),
                })
            }
            Repr::Null => Data::Null,
        };
        let nulls = col.nulls().map(|n| n[..rows].iter().map(|b| *b != 0).collect());
        Vector { ty: ty.clone(), data, nulls, constant: false, len: rows }
    }

    /// Writes the values into `col`, whose expression type is this vector's (converted
    /// before), replacing what it held. NULLs become NULL (the column is Nullable, or
    /// the expression was checked never to give NULL).
    pub fn store(&self, col: &mut Column) {
        col.clear();
        let stored = col.column_type().non_nullable().clone();
        let width = stored.fixed_width().unwrap_or(0);
        if let (Some(v), None, Some(w)) = (self.ints(), &self.nulls, stored.fixed_width()) {
            if !matches!(stored, ColumnType::Float32 | ColumnType::Float64) {
                for x in v {
                    col.push_fixed(&x.to_le_bytes()[..w]);
                }
                return;
            }
        }
        for i in 0..self.len {
            if self.is_null(i) {
                if col.nulls().is_some() {
                    col.push_null();
                } else {
                    col.push_default();
                }
                continue;
            }
            match (&self.data, &stored) {
                (Data::Str(_), _) => col.push_str(self.bytes(i)),
                (_, ColumnType::Float32) => col.push_fixed(&(self.float(i) as f32).to_le_bytes()),
                (_, ColumnType::Float64) => col.push_fixed(&self.float(i).to_le_bytes()),
                _ => col.push_fixed(&self.int(i).to_le_bytes()[..width]),
            }
        }
    }
}

/// Little-endian integer of 1–16 bytes.
fn read_int(b: &[u8], signed: bool) -> i128 {
    let mut buf = [0u8; 16];
    buf[..b.len()].copy_from_slice(b);
    if signed && b.last().is_some_and(|x| x & 0x80 != 0) {
        buf[b.len()..].fill(0xFF);
    }
    i128::from_le_bytes(buf)
}

/// A String value's bytes without its varint length.
fn skip_varint(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|x| x & 0x80 == 0).map_or(b.len(), |p| p + 1);
    &b[n..]
}
