//! ClickHouse Native format: a block header followed by each column's buffer.
//!
//! Layout of one block (HTTP `FORMAT Native`, no BlockInfo): `VarUInt columns`,
//! `VarUInt rows`, then per column `String name`, `String type`, and the column data
//! (for `Nullable(T)`: the null map, one byte per row, then the values of `T`).
//! Because [`Column`](crate::column::Column) buffers already hold the data in this
//! layout, encoding emits a few header bytes and then borrows each buffer as is.

use crate::column::{write_varint, Block};

/// Feeds the Native encoding of `block` to `emit`, piece by piece, without copying the
/// column buffers.
pub fn emit_native(block: &Block, mut emit: impl FnMut(&[u8])) {
    let mut header = Vec::with_capacity(64);
    write_varint(&mut header, block.columns().len() as u64);
    write_varint(&mut header, block.rows() as u64);
    emit(&header);
    for col in block.columns() {
        header.clear();
        write_string(&mut header, col.name().as_bytes());
        write_string(&mut header, col.column_type().to_string().as_bytes());
        emit(&header);
        if col.column_type().needs_native_conversion() {
            header.clear();
            crate::encode::columnar::write_native(col, block.rows(), &mut header)
                .expect("row-encoded values are written by the decoder and always readable");
            emit(&header);
            continue;
        }
        if let Some(nulls) = col.nulls() {
            emit(nulls);
        }
        emit(col.data());
    }
}

/// The Native encoding of `block` as one buffer.
pub fn encode_native(block: &Block) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.byte_len() + 64 * block.columns().len() + 16);
    emit_native(block, |b| out.extend_from_slice(b));
    out
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    write_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::Column;
    use crate::types::ColumnType;

    #[test]
    fn golden_block() {
        let mut b = Block::new(vec![
            Column::new("id", ColumnType::UInt32),
            Column::new("s", ColumnType::Nullable(Box::new(ColumnType::String))),
        ]);
        b.columns_mut()[0].push_fixed(&7u32.to_le_bytes());
        b.columns_mut()[1].push_str(b"ab");
        b.commit_row();
        b.columns_mut()[0].push_fixed(&8u32.to_le_bytes());
        b.columns_mut()[1].push_null();
        b.commit_row();
        let expected: Vec<u8> = [
            &[2u8, 2][..],                // 2 columns, 2 rows
            b"\x02id\x06UInt32",          // name, type
            &[7, 0, 0, 0, 8, 0, 0, 0],    // values
            b"\x01s\x10Nullable(String)", // name, type
            &[0, 1],                      // null map
            b"\x02ab\x00",                // "ab", "" (NULL's default)
        ]
        .concat();
        assert_eq!(encode_native(&b), expected);
    }
}
