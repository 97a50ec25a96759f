//! The dead-letter table: where a message goes when it cannot become a row — it does
//! not decode, or ClickHouse rejects its row — so that rows inserted plus rows
//! dead-lettered always equals messages consumed, and one bad message never stalls the
//! pipeline or costs a batch.
//!
//! A dead letter keeps what an operator needs to understand and replay it: the Kafka
//! coordinates, key and raw bytes, the error kind (stable, for counting) and message
//! (which field, what was found, what was expected), the pipeline, and when. Dead
//! letters of a batch travel with the batch and are inserted before its ledger entry
//! says `done`, so they are delivered exactly once like the rows (a replay inserts
//! only the dead letters whose offsets are not in the table yet).

use penstock_clickhouse::sql::{ident, literal, table_ref};
use penstock_clickhouse::{ClickHouseClient, Result, ServerColumn};
use penstock_codec::{Block, Column, ColumnType, Timestamp};
use penstock_kafka::Partition;

/// How the table stores the Kafka timestamp: milliseconds where the server has
/// `DateTime64`, seconds on older servers (18.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaTimestamp {
    /// `Nullable(DateTime64(3, 'UTC'))`
    Millis,
    /// `Nullable(DateTime('UTC'))`
    Seconds,
}

/// Column order of a dead-letter block (and of the table Penstock creates).
const COLUMNS: [&str; 10] = [
    "pipeline",
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "key",
    "raw",
    "error_kind",
    "error_message",
    "dead_lettered_at",
];

/// Index of the `offset` column in a dead-letter block.
const OFFSET: usize = 3;

/// One dead letter.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Kafka timestamp in milliseconds, when the message has one.
    pub timestamp_ms: Option<i64>,
    /// Message key.
    pub key: Option<&'a [u8]>,
    /// The message bytes as consumed.
    pub raw: &'a [u8],
    /// Stable error class (`invalid_json`, `missing_field`, `rejected_by_clickhouse`...).
    pub kind: &'a str,
    /// What was wrong, where, and what was expected.
    pub message: &'a str,
    /// The batch's time (fixed per batch, so a replay rebuilds the same row).
    pub at: Timestamp,
}

impl DeadLetterTable {
    /// Adds rows of a batch, by row number, to its dead letters: each with its own
    /// message's coordinates and bytes, `kind`, and its reason (rows ClickHouse rejected,
    /// rows a transform could not compute).
    pub fn push_rows(&self, batch: &mut crate::batch::SealedBatch, rows: &[(usize, String)], kind: &str) {
        let crate::batch::SealedBatch { buffers, ranges, batch_time, .. } = batch;
        for (row, message) in rows {
            let o = buffers.origins.get(*row);
            let source = ranges.range_of_row(*row).unwrap_or(ranges.lead());
            let letter = DeadLetter {
                topic: &source.partition.topic,
                partition: source.partition.partition,
                offset: o.offset,
                timestamp_ms: o.timestamp_ms,
                key: o.key,
                raw: o.payload,
                kind,
                message,
                at: *batch_time,
            };
            self.push(&mut buffers.dead, &letter);
        }
    }
}

/// A pipeline's dead-letter table and how to write rows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterTable {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Pipeline name stored in every row.
    pub pipeline: String,
    /// How the Kafka timestamp is stored.
    pub kafka_timestamp: KafkaTimestamp,
}

impl DeadLetterTable {
    /// The DDL Penstock runs when the table is missing.
    pub fn create_sql(database: &str, table: &str, kafka_timestamp: KafkaTimestamp) -> String {
        let ts = match kafka_timestamp {
            KafkaTimestamp::Millis => "Nullable(DateTime64(3, 'UTC'))",
            KafkaTimestamp::Seconds => "Nullable(DateTime('UTC'))",
        };
        let types = [
            "String",
            "String",
            "Int32",
            "Int64",
            ts,
            "Nullable(String)",
            "String",
            "String",
            "String",
            "DateTime('UTC')",
        ];
        let columns: Vec<String> = COLUMNS.iter().zip(types).map(|(c, t)| format!("    {} {t}", ident(c))).collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {}\n(\n{}\n)\nENGINE = MergeTree\nPARTITION BY toYYYYMM(dead_lettered_at)\n\
             ORDER BY (pipeline, topic, {}, {})",
            table_ref(database, table),
            columns.join(",\n"),
            ident("partition"),
            ident("offset")
        )
    }

    /// Checks an existing table's columns (from `system.columns`) and learns how it
    /// stores the Kafka timestamp. The error names each missing or unusable column.
    pub fn from_columns(
        database: &str,
        table: &str,
        pipeline: &str,
        columns: &[ServerColumn],
    ) -> std::result::Result<Self, String> {
        let type_of = |name: &str| columns.iter().find(|c| c.name == name).map(|c| c.ty.as_str());
        let mut problems = Vec::new();
        let mut kafka_timestamp = KafkaTimestamp::Seconds;
        for name in COLUMNS {
            let Some(ty) = type_of(name) else {
                problems.push(format!("column `{name}` is missing"));
                continue;
            };
            let ok = match name {
                "pipeline" | "topic" | "raw" | "error_kind" | "error_message" => {
                    matches!(ty, "String" | "LowCardinality(String)")
                }
                "partition" => ty == "Int32",
                "offset" => ty == "Int64",
                "key" => ty == "Nullable(String)",
                "dead_lettered_at" => ty.starts_with("DateTime") && !ty.starts_with("DateTime64"),
                _ => match ColumnType::parse(ty) {
                    Ok(ColumnType::Nullable(inner)) => match *inner {
                        ColumnType::DateTime64 { precision: 3, .. } => {
                            kafka_timestamp = KafkaTimestamp::Millis;
                            true
                        }
                        ColumnType::DateTime { .. } => true,
                        _ => false,
                    },
                    _ => false,
                },
            };
            if !ok {
                problems.push(format!("column `{name}` has type {ty}"));
            }
        }
        if problems.is_empty() {
            Ok(DeadLetterTable {
                database: database.into(),
                table: table.into(),
                pipeline: pipeline.into(),
                kafka_timestamp,
            })
        } else {
            Err(format!(
                "the dead-letter table {database}.{table} does not fit: {}; expected columns as in:\n{}",
                problems.join(", "),
                Self::create_sql(database, table, KafkaTimestamp::Millis)
            ))
        }
    }

    /// An empty block with this table's columns.
    pub fn new_block(&self) -> Block {
        let ts = match self.kafka_timestamp {
            KafkaTimestamp::Millis => ColumnType::DateTime64 { precision: 3, tz: Some("UTC".into()) },
            KafkaTimestamp::Seconds => ColumnType::DateTime { tz: Some("UTC".into()) },
        };
        let nullable = |t: ColumnType| ColumnType::Nullable(Box::new(t));
        let types = [
            ColumnType::String,
            ColumnType::String,
            ColumnType::Int32,
            ColumnType::Int64,
            nullable(ts),
            nullable(ColumnType::String),
            ColumnType::String,
            ColumnType::String,
            ColumnType::String,
            ColumnType::DateTime { tz: Some("UTC".into()) },
        ];
        Block::new(COLUMNS.iter().zip(types).map(|(name, ty)| Column::new(*name, ty)).collect())
    }

    /// Appends one dead letter to `block` (made by [`new_block`](Self::new_block)).
    pub fn push(&self, block: &mut Block, d: &DeadLetter<'_>) {
        let cols = block.columns_mut();
        cols[0].push_str(self.pipeline.as_bytes());
        cols[1].push_str(d.topic.as_bytes());
        cols[2].push_fixed(&d.partition.to_le_bytes());
        cols[3].push_fixed(&d.offset.to_le_bytes());
        match (d.timestamp_ms, self.kafka_timestamp) {
            (None, _) => cols[4].push_null(),
            (Some(ms), KafkaTimestamp::Millis) => cols[4].push_fixed(&ms.to_le_bytes()),
            (Some(ms), KafkaTimestamp::Seconds) => {
                cols[4].push_fixed(&clamp_u32(ms.div_euclid(1000)).to_le_bytes());
            }
        }
        match d.key {
            None => cols[5].push_null(),
            Some(k) => cols[5].push_str(k),
        }
        cols[6].push_str(d.raw);
        cols[7].push_str(d.kind.as_bytes());
        cols[8].push_str(d.message.as_bytes());
        cols[9].push_fixed(&clamp_u32(d.at.secs).to_le_bytes());
        block.commit_row();
    }

    /// The source offset of row `row` of a dead-letter block.
    pub fn offset_of(block: &Block, row: usize) -> i64 {
        let bytes = block.columns()[OFFSET].value_bytes(row);
        i64::from_le_bytes(bytes.try_into().expect("Int64 offset"))
    }

    /// The rows of `block` whose offsets are not in `landed` (sorted), as a new block;
    /// `None` when all of them are.
    pub fn without_landed(block: &Block, landed: &[i64]) -> Option<Block> {
        if landed.is_empty() {
            return None; // nothing to leave out: use the block as it is
        }
        let keep: Vec<usize> =
            (0..block.rows()).filter(|&r| landed.binary_search(&Self::offset_of(block, r)).is_err()).collect();
        Some(block.select_rows(keep.iter().copied()))
    }

    /// Offsets of `[first, next)` of `p` already dead-lettered by this pipeline (sorted).
    pub async fn landed(&self, client: &ClickHouseClient, p: &Partition, first: i64, next: i64) -> Result<Vec<i64>> {
        let sql = format!(
            "SELECT DISTINCT {o} FROM {} WHERE pipeline = {} AND topic = {} AND {} = {} AND {o} >= {first} \
             AND {o} < {next} ORDER BY {o} FORMAT TabSeparated",
            table_ref(&self.database, &self.table),
            literal(&self.pipeline),
            literal(&p.topic),
            ident("partition"),
            p.partition,
            o = ident("offset"),
        );
        let text = client.query(&sql).await?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }
}

/// Seconds since the epoch as ClickHouse `DateTime` stores them (UInt32), clamped.
fn clamp_u32(secs: i64) -> u32 {
    secs.clamp(0, i64::from(u32::MAX)) as u32
}

/// Creates the dead-letter table if missing (and its database, when it is not the
/// sink's), then checks its columns.
pub async fn ensure(
    client: &ClickHouseClient,
    sink_database: &str,
    database: &str,
    table: &str,
    pipeline: &str,
) -> std::result::Result<DeadLetterTable, crate::PipelineError> {
    use crate::PipelineError::ClickHouseUnavailable as Unavailable;
    let version = client.server_version().await.map_err(Unavailable)?;
    let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    // DateTime64 arrived in ClickHouse 20.1.
    let ts = if major >= 20 { KafkaTimestamp::Millis } else { KafkaTimestamp::Seconds };
    if database != sink_database {
        client.query(&format!("CREATE DATABASE IF NOT EXISTS {}", ident(database))).await.map_err(Unavailable)?;
    }
    client.query(&DeadLetterTable::create_sql(database, table, ts)).await.map_err(Unavailable)?;
    let columns = client.table_columns(database, table).await.map_err(Unavailable)?;
    DeadLetterTable::from_columns(database, table, pipeline, &columns).map_err(crate::PipelineError::DeadLetterTable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ts: KafkaTimestamp) -> DeadLetterTable {
        DeadLetterTable { database: "d".into(), table: "t".into(), pipeline: "p".into(), kafka_timestamp: ts }
    }

    fn letter(offset: i64) -> DeadLetter<'static> {
        DeadLetter {
            topic: "events",
            partition: 2,
            offset,
            timestamp_ms: Some(1_700_000_000_123),
            key: None,
            raw: b"{oops",
            kind: "invalid_json",
            message: "expected a value at byte 1",
            at: Timestamp { secs: 1_700_000_001, nanos: 5 },
        }
    }

    #[test]
    fn rows_hold_every_field_in_native_layout() {
        let t = table(KafkaTimestamp::Millis);
        let mut b = t.new_block();
        t.push(&mut b, &letter(41));
        t.push(&mut b, &DeadLetter { key: Some(b"k"), timestamp_ms: None, ..letter(42) });
        assert_eq!(b.rows(), 2);
        let c = b.columns();
        assert_eq!(c[0].value_bytes(0), b"\x01p");
        assert_eq!(c[3].value_bytes(1), 42i64.to_le_bytes());
        assert_eq!(c[4].value_bytes(0), 1_700_000_000_123i64.to_le_bytes());
        assert!(c[4].is_null(1) && c[5].is_null(0) && !c[5].is_null(1));
        assert_eq!(c[6].value_bytes(0), b"\x05{oops");
        assert_eq!(c[9].value_bytes(0), 1_700_000_001u32.to_le_bytes());
        assert_eq!(DeadLetterTable::offset_of(&b, 1), 42);

        let s = table(KafkaTimestamp::Seconds);
        let mut b = s.new_block();
        s.push(&mut b, &letter(1));
        assert_eq!(b.columns()[4].value_bytes(0), 1_700_000_000u32.to_le_bytes());
    }

    #[test]
    fn replays_leave_out_landed_offsets() {
        let t = table(KafkaTimestamp::Seconds);
        let mut b = t.new_block();
        for o in [10, 11, 12, 13] {
            t.push(&mut b, &letter(o));
        }
        assert!(DeadLetterTable::without_landed(&b, &[]).is_none());
        let rest = DeadLetterTable::without_landed(&b, &[11, 13]).unwrap();
        assert_eq!((0..rest.rows()).map(|r| DeadLetterTable::offset_of(&rest, r)).collect::<Vec<_>>(), [10, 12]);
        assert!(DeadLetterTable::without_landed(&b, &[10, 11, 12, 13]).unwrap().is_empty());
    }

    #[test]
    fn existing_tables_are_checked_column_by_column() {
        let col = |name: &str, ty: &str| ServerColumn { name: name.into(), ty: ty.into(), default_kind: String::new() };
        let good: Vec<ServerColumn> = COLUMNS
            .iter()
            .zip([
                "String",
                "LowCardinality(String)",
                "Int32",
                "Int64",
                "Nullable(DateTime64(3, 'UTC'))",
                "Nullable(String)",
                "String",
                "String",
                "String",
                "DateTime('UTC')",
            ])
            .map(|(n, t)| col(n, t))
            .collect();
        let t = DeadLetterTable::from_columns("d", "t", "p", &good).unwrap();
        assert_eq!(t.kafka_timestamp, KafkaTimestamp::Millis);
        let mut bad = good.clone();
        bad.remove(6);
        bad[2].ty = "UInt32".into();
        let e = DeadLetterTable::from_columns("d", "t", "p", &bad).unwrap_err();
        assert!(e.contains("`raw` is missing") && e.contains("`partition` has type UInt32"), "{e}");
    }

    #[test]
    fn generated_ddl_quotes_keywords() {
        let sql = DeadLetterTable::create_sql("my db", "t`x", KafkaTimestamp::Seconds);
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS `my db`.`t\\`x`"), "{sql}");
        assert!(sql.contains("`offset` Int64") && sql.contains("Nullable(DateTime('UTC'))"), "{sql}");
    }
}
