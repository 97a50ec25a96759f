//! Column buffers laid out exactly as ClickHouse's Native format stores a column.
//!
//! Decoding writes each value straight into its column's final byte layout
//! (little-endian fixed-width values, or varint-length-prefixed strings), so turning a
//! batch into a Native block costs a header and nothing per value. Variable-width
//! columns also keep the end offset of each row so that RowBinary (row-major) can be
//! produced from the same buffers, and so a half-decoded row can be rolled back.
//!
//! Invariant: after every completed row, every column of a [`Block`] holds exactly
//! `rows` values; a failed row is removed from every column with [`Block::rollback`].

use crate::types::ColumnType;

/// One column of a batch in Native layout.
#[derive(Debug, Clone)]
pub struct Column {
    name: String,
    ty: ColumnType,
    /// Encoded values of the non-nullable part.
    data: Vec<u8>,
    /// For variable-width columns, the end offset in `data` of each row.
    ends: Vec<u32>,
    /// For `Nullable` columns, one byte per row: 1 = NULL.
    nulls: Option<Vec<u8>>,
    /// Width of one value when fixed.
    width: Option<usize>,
    /// The encoded bytes of the type's default value (what a NULL row stores).
    default: Vec<u8>,
}

impl Column {
    /// An empty column named `name` of type `ty`.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        let inner = ty.non_nullable().clone();
        let width = inner.fixed_width();
        let default = default_encoding(&inner);
        let nulls = ty.is_nullable().then(Vec::new);
        Column { name: name.into(), ty, data: Vec::new(), ends: Vec::new(), nulls, width, default }
    }

    /// Column name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Column type.
    pub fn column_type(&self) -> &ColumnType {
        &self.ty
    }

    /// Bytes held (data plus null map), a measure of the batch size.
    pub fn byte_len(&self) -> usize {
        self.data.len() + self.nulls.as_ref().map_or(0, Vec::len)
    }

    /// The Native bytes of the non-nullable part.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The null map, for `Nullable` columns.
    pub fn nulls(&self) -> Option<&[u8]> {
        self.nulls.as_deref()
    }

    /// Encoded bytes of row `row`'s value (the default value for a NULL).
    pub fn value_bytes(&self, row: usize) -> &[u8] {
        match self.width {
            Some(w) => &self.data[row * w..row * w + w],
            None => {
                let start = if row == 0 { 0 } else { self.ends[row - 1] as usize };
                &self.data[start..self.ends[row] as usize]
            }
        }
    }

    /// True when row `row` is NULL.
    pub fn is_null(&self, row: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n[row] != 0)
    }

    #[inline]
    fn finish_value(&mut self) {
        if self.width.is_none() {
            self.ends.push(self.data.len() as u32);
        }
        if let Some(n) = &mut self.nulls {
            n.push(0);
        }
    }

    /// Appends a fixed-width value given as little-endian bytes.
    #[inline]
    pub fn push_fixed(&mut self, bytes: &[u8]) {
        debug_assert_eq!(Some(bytes.len()), self.width, "column {}", self.name);
        self.data.extend_from_slice(bytes);
        self.finish_value();
    }

    /// Appends a string value (varint length + bytes).
    #[inline]
    pub fn push_str(&mut self, bytes: &[u8]) {
        debug_assert!(self.width.is_none(), "column {}", self.name);
        write_varint(&mut self.data, bytes.len() as u64);
        self.data.extend_from_slice(bytes);
        self.finish_value();
    }

    /// Appends NULL. Only valid for `Nullable` columns.
    #[inline]
    pub fn push_null(&mut self) {
        debug_assert!(self.nulls.is_some(), "column {} is not nullable", self.name);
        self.data.extend_from_slice(&self.default);
        if self.width.is_none() {
            self.ends.push(self.data.len() as u32);
        }
        if let Some(n) = &mut self.nulls {
            n.push(1);
        }
    }

    /// Appends the type's default value (0, empty string, 1970-01-01...), not NULL.
    #[inline]
    pub fn push_default(&mut self) {
        self.data.extend_from_slice(&self.default);
        self.finish_value();
    }

    /// Appends a value already in this column's encoding (as [`value_bytes`](Self::value_bytes)
    /// returns it), NULL when `null` (only for `Nullable` columns).
    pub fn push_encoded(&mut self, encoded: &[u8], null: bool) {
        debug_assert!(self.width.is_none_or(|w| w == encoded.len()), "column {}", self.name);
        self.data.extend_from_slice(encoded);
        if self.width.is_none() {
            self.ends.push(self.data.len() as u32);
        }
        if let Some(n) = &mut self.nulls {
            n.push(u8::from(null));
        }
    }

    /// Removes every row at index `rows` and above.
    pub fn truncate(&mut self, rows: usize) {
        match self.width {
            Some(w) => self.data.truncate(rows * w),
            None => {
                let end = if rows == 0 { 0 } else { self.ends[rows - 1] as usize };
                self.data.truncate(end);
                self.ends.truncate(rows);
            }
        }
        if let Some(n) = &mut self.nulls {
            n.truncate(rows);
        }
    }

    /// Empties the column, keeping its allocation.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Keeps the rows whose flag in `keep` is true, in order, moving them down in place
    /// (no allocation). `keep` has one flag per row.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        let mut write = 0; // byte position of the next kept value
        let mut kept = 0;
        for (row, &k) in keep.iter().enumerate() {
            let (start, end) = match self.width {
                Some(w) => (row * w, row * w + w),
                None => (if row == 0 { 0 } else { self.ends[row - 1] as usize }, self.ends[row] as usize),
            };
            if !k {
                continue;
            }
            if start != write {
                self.data.copy_within(start..end, write);
            }
            write += end - start;
            if self.width.is_none() {
                self.ends[kept] = write as u32;
            }
            if let Some(n) = &mut self.nulls {
                n[kept] = n[row];
            }
            kept += 1;
        }
        self.data.truncate(write);
        if self.width.is_none() {
            self.ends.truncate(kept);
        }
        if let Some(n) = &mut self.nulls {
            n.truncate(kept);
        }
    }
}

/// The RowBinary encoding of a type's default value (what a NULL or missing value
/// stores): zeros, an empty string or collection, NULL inside a tuple.
pub fn default_encoding(ty: &ColumnType) -> Vec<u8> {
    match ty.storage() {
        ColumnType::Nullable(_) => vec![1],
        ColumnType::String | ColumnType::Array(_) | ColumnType::Map(..) => vec![0],
        ColumnType::Tuple(items) => items.iter().flat_map(|(_, t)| default_encoding(t)).collect(),
        t => vec![0; t.fixed_width().unwrap_or(0)],
    }
}

/// Appends `v` as an unsigned LEB128 varint (ClickHouse's `VarUInt`).
#[inline]
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A batch of rows held as columns.
#[derive(Debug, Clone)]
pub struct Block {
    columns: Vec<Column>,
    rows: usize,
}

impl Block {
    /// An empty block with the given columns.
    pub fn new(columns: Vec<Column>) -> Self {
        Block { columns, rows: 0 }
    }

    /// Number of complete rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// True when the block has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The columns, in insert order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Mutable access for decoders; callers must keep the row invariant.
    pub fn columns_mut(&mut self) -> &mut [Column] {
        &mut self.columns
    }

    /// Bytes held by all columns.
    pub fn byte_len(&self) -> usize {
        self.columns.iter().map(Column::byte_len).sum()
    }

    /// Declares that every column has received one more value.
    pub fn commit_row(&mut self) {
        self.rows += 1;
        debug_assert!(self.columns.iter().all(|c| c.nulls.as_ref().is_none_or(|n| n.len() == self.rows)));
    }

    /// Declares that every column has received `n` more values (a decoder that fills
    /// columns one at a time, as the Native reader does).
    pub fn commit_rows(&mut self, n: usize) {
        self.rows += n;
        debug_assert!(self.columns.iter().all(|c| c.nulls.as_ref().is_none_or(|x| x.len() == self.rows)));
    }

    /// Removes any partial row written since the last [`Block::commit_row`].
    pub fn rollback(&mut self) {
        let rows = self.rows;
        for c in &mut self.columns {
            c.truncate(rows);
        }
    }

    /// Removes every row from index `rows` on (and any partial row).
    pub fn truncate(&mut self, rows: usize) {
        let rows = rows.min(self.rows);
        for c in &mut self.columns {
            c.truncate(rows);
        }
        self.rows = rows;
    }

    /// Keeps the rows whose flag in `keep` is true (one flag per row), in place.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.rows, "one flag per row");
        for c in &mut self.columns {
            c.retain_rows(keep);
        }
        self.rows = keep.iter().filter(|k| **k).count();
    }

    /// Empties the block for reuse, keeping allocations.
    pub fn clear(&mut self) {
        for c in &mut self.columns {
            c.clear();
        }
        self.rows = 0;
    }

    /// A new block holding a copy of rows `rows` (e.g. one half of a batch a server
    /// rejected, to find the offending row).
    pub fn select(&self, rows: std::ops::Range<usize>) -> Block {
        self.select_rows(rows)
    }

    /// A new block holding a copy of the given rows, in the order given.
    pub fn select_rows<I: IntoIterator<Item = usize> + Clone>(&self, rows: I) -> Block {
        let mut out = self.empty_like();
        for (from, to) in self.columns.iter().zip(&mut out.columns) {
            for row in rows.clone() {
                to.push_encoded(from.value_bytes(row), from.is_null(row));
            }
        }
        out.rows = rows.into_iter().count();
        out
    }

    /// An empty block with the same columns (fresh allocations).
    pub fn empty_like(&self) -> Block {
        Block::new(self.columns.iter().map(|c| Column::new(c.name.clone(), c.ty.clone())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut v = Vec::new();
        write_varint(&mut v, 0);
        write_varint(&mut v, 127);
        write_varint(&mut v, 128);
        write_varint(&mut v, 300);
        assert_eq!(v, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
    }

    #[test]
    fn rollback_restores_every_column() {
        let mut b = Block::new(vec![
            Column::new("s", ColumnType::String),
            Column::new("n", ColumnType::Nullable(Box::new(ColumnType::UInt32))),
        ]);
        b.columns_mut()[0].push_str(b"ok");
        b.columns_mut()[1].push_null();
        b.commit_row();
        b.columns_mut()[0].push_str(b"half");
        b.rollback();
        assert_eq!(b.columns()[0].data(), b"\x02ok");
        assert_eq!(b.columns()[1].nulls().unwrap(), [1]);
        assert_eq!(b.columns()[1].data(), [0, 0, 0, 0]);
        assert_eq!(b.columns()[0].value_bytes(0), b"\x02ok");
        assert!(b.columns()[1].is_null(0));
    }

    #[test]
    fn retain_keeps_the_flagged_rows_of_every_column_in_order() {
        let mut b = Block::new(vec![
            Column::new("n", ColumnType::parse("Nullable(UInt16)").unwrap()),
            Column::new("s", ColumnType::parse("Nullable(String)").unwrap()),
            Column::new("a", ColumnType::parse("Array(UInt8)").unwrap()),
        ]);
        for i in 0..6u16 {
            let c = b.columns_mut();
            if i % 3 == 0 {
                c[0].push_null();
                c[1].push_null();
            } else {
                c[0].push_fixed(&i.to_le_bytes());
                c[1].push_str("x".repeat(usize::from(i)).as_bytes());
            }
            c[2].push_encoded(&[1, i as u8], false);
            b.commit_row();
        }
        let keep = [false, true, false, true, true, false];
        let expected = b.select_rows([1usize, 3, 4]);
        b.retain_rows(&keep);
        assert_eq!(b.rows(), 3);
        for (got, want) in b.columns().iter().zip(expected.columns()) {
            assert_eq!((got.data(), got.nulls()), (want.data(), want.nulls()), "column {}", got.name());
            assert_eq!(
                (0..3).map(|r| got.value_bytes(r)).collect::<Vec<_>>(),
                (0..3).map(|r| want.value_bytes(r)).collect::<Vec<_>>()
            );
        }
        b.retain_rows(&[false, false, false]);
        assert!(b.is_empty() && b.byte_len() == 0);
    }

    #[test]
    fn select_copies_a_row_range_exactly() {
        let mut b = Block::new(vec![
            Column::new("s", ColumnType::String),
            Column::new("n", ColumnType::Nullable(Box::new(ColumnType::UInt32))),
            Column::new("u", ColumnType::UInt8),
        ]);
        for i in 0..5u8 {
            b.columns_mut()[0].push_str(&vec![b'x'; usize::from(i)]);
            if i % 2 == 0 {
                b.columns_mut()[1].push_null();
            } else {
                b.columns_mut()[1].push_fixed(&u32::from(i).to_le_bytes());
            }
            b.columns_mut()[2].push_fixed(&[i]);
            b.commit_row();
        }
        let whole = b.select(0..5);
        for (a, c) in whole.columns().iter().zip(b.columns()) {
            assert_eq!((a.data(), a.nulls()), (c.data(), c.nulls()));
        }
        let mid = b.select(1..4);
        assert_eq!(mid.rows(), 3);
        assert_eq!(mid.columns()[0].value_bytes(2), b"\x03xxx");
        assert_eq!(mid.columns()[1].nulls().unwrap(), [0, 1, 0]);
        assert_eq!(mid.columns()[1].data(), [1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(mid.columns()[2].data(), [1, 2, 3]);
        assert!(b.select(2..2).is_empty());
    }
}
