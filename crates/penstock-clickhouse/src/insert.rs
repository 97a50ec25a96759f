//! Turning a block of rows into an insert request: SQL plus body, chosen by format and
//! compression. Pure: the request can be rebuilt or resent byte for byte.

use crate::sql::{ident, table_ref};
use penstock_codec::{emit_native, encode_row_binary, Block, Lz4BlockWriter};
use penstock_config::{Compression, InsertFormat};

/// A ready-to-send insert.
#[derive(Clone, Debug)]
pub struct InsertRequest {
    /// `INSERT INTO db.t (cols) FORMAT ...`
    pub sql: String,
    /// Encoded (and maybe compressed) rows.
    pub body: bytes::Bytes,
    /// Whether the body is in ClickHouse's compressed-block framing.
    pub compressed: bool,
    /// Rows in the body.
    pub rows: usize,
    /// Query-level settings sent as URL parameters (e.g. `insert_deduplication_token`);
    /// URL parameters work on every server version, `INSERT ... SETTINGS` does not.
    pub settings: Vec<(String, String)>,
}

/// Builds the insert of `block` into `database.table`.
pub fn build_insert(
    database: &str,
    table: &str,
    block: &Block,
    format: InsertFormat,
    compression: Compression,
) -> InsertRequest {
    let columns: Vec<String> = block.columns().iter().map(|c| ident(c.name())).collect();
    let format_name = match format {
        InsertFormat::Native => "Native",
        InsertFormat::RowBinary => "RowBinary",
    };
    let sql = format!("INSERT INTO {} ({}) FORMAT {format_name}", table_ref(database, table), columns.join(", "));
    let body = match (format, compression) {
        (InsertFormat::Native, Compression::Lz4) => {
            let mut w = Lz4BlockWriter::new();
            emit_native(block, |piece| w.write(piece));
            w.finish()
        }
        (InsertFormat::Native, Compression::None) => penstock_codec::encode_native(block),
        (InsertFormat::RowBinary, Compression::Lz4) => {
            let mut w = Lz4BlockWriter::new();
            w.write(&encode_row_binary(block));
            w.finish()
        }
        (InsertFormat::RowBinary, Compression::None) => encode_row_binary(block),
    };
    InsertRequest {
        sql,
        body: body.into(),
        compressed: compression == Compression::Lz4,
        rows: block.rows(),
        settings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_codec::{decompress, encode_native, Column, ColumnType};

    fn block() -> Block {
        let mut b = Block::new(vec![Column::new("a`b", ColumnType::UInt8)]);
        b.columns_mut()[0].push_fixed(&[9]);
        b.commit_row();
        b
    }

    #[test]
    fn sql_quotes_everything() {
        let r = build_insert("db", "t; DROP TABLE x", &block(), InsertFormat::Native, Compression::None);
        assert_eq!(r.sql, "INSERT INTO `db`.`t; DROP TABLE x` (`a\\`b`) FORMAT Native");
        assert_eq!(r.body.as_ref(), encode_native(&block()).as_slice());
        assert!(!r.compressed);
    }

    #[test]
    fn compressed_bodies_decompress_to_the_plain_ones() {
        let r = build_insert("db", "t", &block(), InsertFormat::Native, Compression::Lz4);
        assert_eq!(decompress(&r.body).unwrap(), encode_native(&block()));
        let r = build_insert("db", "t", &block(), InsertFormat::RowBinary, Compression::Lz4);
        assert_eq!(decompress(&r.body).unwrap(), [9]);
        assert!(r.sql.ends_with("FORMAT RowBinary"));
    }
}
