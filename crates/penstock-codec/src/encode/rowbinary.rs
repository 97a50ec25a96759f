//! ClickHouse RowBinary format, produced from the same column buffers as Native.
//!
//! RowBinary is row-major: for each row, each column's value in turn; a `Nullable`
//! value is a flag byte (1 = NULL) followed by the value only when it is not NULL.
//! It serves servers or proxies that cannot take Native.

use crate::column::Block;

/// The RowBinary encoding of `block`.
pub fn encode_row_binary(block: &Block) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.byte_len() + block.rows());
    for row in 0..block.rows() {
        for col in block.columns() {
            if col.nulls().is_some() {
                let null = col.is_null(row);
                out.push(u8::from(null));
                if null {
                    continue;
                }
            }
            out.extend_from_slice(col.value_bytes(row));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::Column;
    use crate::types::ColumnType;

    #[test]
    fn golden_rows() {
        let mut b = Block::new(vec![
            Column::new("id", ColumnType::UInt16),
            Column::new("s", ColumnType::Nullable(Box::new(ColumnType::String))),
        ]);
        b.columns_mut()[0].push_fixed(&1u16.to_le_bytes());
        b.columns_mut()[1].push_null();
        b.commit_row();
        b.columns_mut()[0].push_fixed(&2u16.to_le_bytes());
        b.columns_mut()[1].push_str(b"xyz");
        b.commit_row();
        assert_eq!(encode_row_binary(&b), [1, 0, 1, 2, 0, 0, 3, b'x', b'y', b'z']);
    }
}
