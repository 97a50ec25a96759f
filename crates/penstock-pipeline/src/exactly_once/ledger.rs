//! The ledger: one small ClickHouse table recording each partition's latest batch range
//! and state, written before and after every insert. It works on every server and
//! broker, is shared by all Penstock processes of a pipeline (whoever owns a partition
//! next reads it), and shows an operator what is in flight:
//!
//! ```sql
//! SELECT pipeline, target, topic, partition, argMax(state, seq), argMax(next_offset, seq)
//! FROM penstock_ledger GROUP BY pipeline, target, topic, partition
//! ```

use super::decision::{BatchState, LedgerEntry};
use super::mode::{Capabilities, DedupMode};
use penstock_clickhouse::sql::{ident, literal, table_ref};
use penstock_clickhouse::{ClickHouseClient, Result};
use penstock_kafka::Partition;

/// Ledger access for one pipeline and destination table.
#[derive(Debug, Clone)]
pub struct Ledger {
    client: ClickHouseClient,
    table: String,
    pipeline: String,
    target: String,
}

impl Ledger {
    /// The ledger `database.ledger_table` for `pipeline` writing to `database.table`.
    pub fn new(client: ClickHouseClient, database: &str, ledger_table: &str, pipeline: &str, table: &str) -> Self {
        Ledger {
            client,
            table: table_ref(database, ledger_table),
            pipeline: pipeline.to_string(),
            target: format!("{database}.{table}"),
        }
    }

    /// Creates the ledger table if it does not exist. ReplacingMergeTree keeps only the
    /// newest row (by `seq`) of each partition once parts merge; reads use `argMax`, so
    /// they are right before merges too.
    pub async fn create(&self) -> Result<()> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (\
             pipeline String, target String, topic String, partition Int32, \
             first_offset Int64, next_offset Int64, state Enum8('pending' = 1, 'done' = 2), \
             batch_time_ns Int64, seq UInt64, written_at DateTime DEFAULT now()\
             ) ENGINE = ReplacingMergeTree(seq) ORDER BY (pipeline, target, topic, partition)",
            self.table
        );
        self.client.query(&sql).await.map(drop)
    }

    fn key_filter(&self, p: &Partition) -> String {
        format!(
            "pipeline = {} AND target = {} AND topic = {} AND partition = {}",
            literal(&self.pipeline),
            literal(&self.target),
            literal(&p.topic),
            p.partition
        )
    }

    /// The newest entry of a partition.
    pub async fn last(&self, p: &Partition) -> Result<Option<LedgerEntry>> {
        let sql = format!(
            "SELECT count(), argMax(first_offset, seq), argMax(next_offset, seq), argMax(toInt8(state), seq), \
             argMax(batch_time_ns, seq), max(seq) FROM {} WHERE {} FORMAT TabSeparated",
            self.table,
            self.key_filter(p)
        );
        let text = self.client.query(&sql).await?;
        Ok(parse_last(&text))
    }

    /// Appends an entry.
    pub async fn write(&self, p: &Partition, entry: &LedgerEntry) -> Result<()> {
        let state = match entry.state {
            BatchState::Pending => "pending",
            BatchState::Done => "done",
        };
        let sql = format!(
            "INSERT INTO {} (pipeline, target, topic, partition, first_offset, next_offset, state, batch_time_ns, seq) \
             VALUES ({}, {}, {}, {}, {}, {}, '{state}', {}, {})",
            self.table,
            literal(&self.pipeline),
            literal(&self.target),
            literal(&p.topic),
            p.partition,
            entry.first,
            entry.next,
            entry.batch_time_ns,
            entry.seq
        );
        self.client.query(&sql).await.map(drop)
    }
}

fn parse_last(text: &str) -> Option<LedgerEntry> {
    let f: Vec<&str> = text.trim().split('\t').collect();
    if f.len() != 6 || f[0] == "0" {
        return None;
    }
    Some(LedgerEntry {
        first: f[1].parse().ok()?,
        next: f[2].parse().ok()?,
        state: if f[3] == "2" { BatchState::Done } else { BatchState::Pending },
        batch_time_ns: f[4].parse().ok()?,
        seq: f[5].parse().ok()?,
    })
}

/// Offsets of `[first, next)` of partition `p` already present in the destination table.
pub async fn landed_offsets(
    client: &ClickHouseClient,
    database: &str,
    table: &str,
    mode: &DedupMode,
    p: &Partition,
    first: i64,
    next: i64,
) -> Result<Vec<i64>> {
    let DedupMode::LandedOffsets { topic_column, partition_column, offset_column } = mode else {
        return Ok(Vec::new());
    };
    let topic_filter =
        topic_column.as_ref().map(|c| format!(" AND {} = {}", ident(c), literal(&p.topic))).unwrap_or_default();
    let sql = format!(
        "SELECT DISTINCT {o} FROM {} WHERE {} = {} AND {o} >= {first} AND {o} < {next}{topic_filter} ORDER BY {o} FORMAT TabSeparated",
        table_ref(database, table),
        ident(partition_column),
        p.partition,
        o = ident(offset_column),
    );
    let text = client.query(&sql).await?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// The statements capability detection runs, in order: the server version, whether
/// the server knows `insert_deduplication_token`, and the table's engine and DDL. The
/// answers (TabSeparated) go to [`parse_capabilities`].
pub fn capability_queries(database: &str, table: &str) -> [String; 3] {
    [
        "SELECT version() FORMAT TabSeparated".to_string(),
        "SELECT count() FROM system.settings WHERE name = 'insert_deduplication_token' FORMAT TabSeparated"
            .to_string(),
        format!(
            "SELECT engine, create_table_query FROM system.tables WHERE database = {} AND name = {} FORMAT TabSeparated",
            literal(database),
            literal(table)
        ),
    ]
}

/// What the answers to [`capability_queries`] say the server and table offer.
pub fn parse_capabilities(version: &str, token_count: &str, table_row: &str) -> Capabilities {
    let row = table_row.trim();
    let (engine, create) = row.split_once('\t').unwrap_or((row, ""));
    let window = create
        .split("non_replicated_deduplication_window")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start_matches([' ', '=']).split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok()
        })
        .is_some_and(|w| w > 0);
    Capabilities {
        version: version.trim().to_string(),
        dedup_token: !matches!(token_count.trim(), "0" | ""),
        engine: engine.to_string(),
        non_replicated_window: window,
    }
}

/// Asks the server what it and the table offer (see [`capability_queries`]).
pub async fn capabilities(client: &ClickHouseClient, database: &str, table: &str) -> Result<Capabilities> {
    let [version, token, table_row] = capability_queries(database, table);
    let version = client.query(&version).await?;
    let token = client.query(&token).await?;
    let table_row = client.query(&table_row).await?;
    Ok(parse_capabilities(&version, &token, &table_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capability_answers() {
        let c = parse_capabilities("18.16.1\n", "0\n", "MergeTree\tCREATE TABLE d.t (a UInt8) ENGINE = MergeTree\n");
        assert_eq!(
            (c.version.as_str(), c.dedup_token, c.engine.as_str(), c.non_replicated_window),
            ("18.16.1", false, "MergeTree", false)
        );
        let c = parse_capabilities(
            "26.9.2.1",
            "1",
            "MergeTree\tCREATE TABLE d.t (a UInt8) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100, index_granularity = 8192",
        );
        assert!(c.dedup_token && c.non_replicated_window);
        let c = parse_capabilities(
            "26.9",
            "1",
            "MergeTree\tCREATE TABLE ... SETTINGS non_replicated_deduplication_window = 0",
        );
        assert!(!c.non_replicated_window);
        assert_eq!(parse_capabilities("26.9", "1", "").engine, "", "a missing table has no engine");
    }

    #[test]
    fn parses_ledger_rows() {
        assert_eq!(parse_last("0\t0\t0\t0\t0\t0\n"), None);
        assert_eq!(
            parse_last("3\t10\t20\t1\t99\t5\n"),
            Some(LedgerEntry { first: 10, next: 20, state: BatchState::Pending, batch_time_ns: 99, seq: 5 })
        );
        assert_eq!(parse_last("3\t10\t20\t2\t99\t5\n").map(|e| e.state), Some(BatchState::Done));
    }
}
