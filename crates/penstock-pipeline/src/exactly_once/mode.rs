//! How the server makes a repeated insert harmless, chosen by capability detection.

use penstock_codec::{FieldSpec, ValueSource};

/// How a replayed batch is kept from being stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupMode {
    /// `insert_deduplication_token` (modern servers; Replicated tables, or plain
    /// MergeTree with `non_replicated_deduplication_window`).
    Token,
    /// Replicated*MergeTree drops a block identical to a recent one (any version); the
    /// replay rebuilds the identical block.
    ReplicatedBlocks,
    /// No server-side deduplication (e.g. plain MergeTree on 18.16): before a replay,
    /// read which offsets of the range already landed and insert only the others.
    LandedOffsets {
        /// Column holding `_topic`, when the pipeline reads several topics.
        topic_column: Option<String>,
        /// Column holding `_partition`.
        partition_column: String,
        /// Column holding `_offset`.
        offset_column: String,
    },
}

impl std::fmt::Display for DedupMode {
    /// How a replay is recognised, in words (for `penstock check` and logs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DedupMode::Token => f.write_str("the server drops a replayed batch by its insert_deduplication_token"),
            DedupMode::ReplicatedBlocks => {
                f.write_str("the replicated table drops a replayed batch as an identical block")
            }
            DedupMode::LandedOffsets { topic_column, partition_column, offset_column } => {
                write!(f, "before a replay, Penstock reads which offsets already landed (columns ")?;
                if let Some(t) = topic_column {
                    write!(f, "{t}, ")?;
                }
                write!(f, "{partition_column}, {offset_column}) and inserts only the others")
            }
        }
    }
}

/// The `insert_deduplication_token` of a batch in [`DedupMode::Token`]: the same for
/// a replay of the same offset range by any process of the pipeline, different for
/// every other batch (the server keeps the tokens of recent inserts per table).
pub fn dedup_token(pipeline: &str, topic: &str, partition: i32, first_offset: i64, next_offset: i64) -> String {
    format!("penstock/{pipeline}/{topic}/{partition}/{first_offset}-{next_offset}")
}

/// What the server and table offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Server version string.
    pub version: String,
    /// The server knows `insert_deduplication_token`.
    pub dedup_token: bool,
    /// Table engine name.
    pub engine: String,
    /// The table sets `non_replicated_deduplication_window` above 0.
    pub non_replicated_window: bool,
}

/// Chooses the deduplication mode, or explains why exactly-once is impossible.
pub fn choose(caps: &Capabilities, fields: &[FieldSpec], topics: usize) -> Result<DedupMode, String> {
    let replicated = caps.engine.starts_with("Replicated");
    if caps.dedup_token && (replicated || caps.non_replicated_window) {
        return Ok(DedupMode::Token);
    }
    if replicated {
        return Ok(DedupMode::ReplicatedBlocks);
    }
    let column = |src: ValueSource| fields.iter().find(|f| f.source == src).map(|f| f.column.clone());
    let (partition, offset, topic) =
        (column(ValueSource::Partition), column(ValueSource::Offset), column(ValueSource::Topic));
    match (partition, offset) {
        (Some(partition_column), Some(offset_column)) if topics == 1 || topic.is_some() => {
            Ok(DedupMode::LandedOffsets {
                topic_column: if topics > 1 { topic } else { None },
                partition_column,
                offset_column,
            })
        }
        _ => {
            let token_hint = if caps.dedup_token {
                "set `non_replicated_deduplication_window` on the table (e.g. ALTER TABLE ... MODIFY SETTING non_replicated_deduplication_window = 1000)"
            } else {
                "this server has no insert_deduplication_token"
            };
            Err(format!(
                "exactly-once delivery into the {} table on ClickHouse {} needs a way to recognise a repeated insert: \
                 {token_hint}; or use a Replicated*MergeTree table; or add columns filled from Kafka metadata \
                 (`_partition: Int32` and `_offset: Int64` in the schema and the table{}) so Penstock can check which \
                 offsets already landed; or set `delivery: at_least_once`",
                caps.engine,
                caps.version,
                if topics > 1 { ", plus `_topic: String` for several topics" } else { "" }
            ))
        }
    }
}

#[cfg(test)]
mod display_tests {
    use super::DedupMode;

    #[test]
    fn modes_read_as_words() {
        let m = DedupMode::LandedOffsets {
            topic_column: None,
            partition_column: "_partition".into(),
            offset_column: "_offset".into(),
        };
        assert_eq!(
            m.to_string(),
            "before a replay, Penstock reads which offsets already landed (columns _partition, _offset) and inserts only the others"
        );
        assert!(DedupMode::Token.to_string().contains("insert_deduplication_token"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_codec::ColumnType;

    fn f(column: &str, source: ValueSource) -> FieldSpec {
        FieldSpec { source, ..FieldSpec::from_key(column, ColumnType::Int64) }
    }

    fn caps(token: bool, engine: &str, window: bool) -> Capabilities {
        Capabilities { version: "v".into(), dedup_token: token, engine: engine.into(), non_replicated_window: window }
    }

    #[test]
    fn chooses_by_capability() {
        let meta = [f("p", ValueSource::Partition), f("o", ValueSource::Offset)];
        assert_eq!(choose(&caps(true, "ReplicatedMergeTree", false), &[], 1), Ok(DedupMode::Token));
        assert_eq!(choose(&caps(true, "MergeTree", true), &[], 1), Ok(DedupMode::Token));
        assert_eq!(choose(&caps(false, "ReplicatedMergeTree", false), &[], 1), Ok(DedupMode::ReplicatedBlocks));
        assert_eq!(
            choose(&caps(false, "MergeTree", false), &meta, 1),
            Ok(DedupMode::LandedOffsets {
                topic_column: None,
                partition_column: "p".into(),
                offset_column: "o".into()
            })
        );
        let e = choose(&caps(false, "MergeTree", false), &meta, 2).unwrap_err();
        assert!(e.contains("_topic"), "{e}");
        let e = choose(&caps(false, "MergeTree", false), &[], 1).unwrap_err();
        assert!(e.contains("no insert_deduplication_token") && e.contains("at_least_once"), "{e}");
        let e = choose(&caps(true, "MergeTree", false), &[], 1).unwrap_err();
        assert!(e.contains("non_replicated_deduplication_window"), "{e}");
    }
}
