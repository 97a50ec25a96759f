//! ClickHouse's Kafka table engine + a materialized view into MergeTree: the seed
//! benchmark's pattern, run by the ClickHouse server itself.
//!
//! Set up as SERVICES.md found it works against Tansu: one consumer
//! (`kafka_num_consumers = 1`; with 4 it duplicated rows through rebalances), the
//! engine's default block size (65,536 rows) and flush interval, JSONEachRow with the
//! event time read as text and parsed in the view. The server must have a librdkafka
//! that speaks to the broker preloaded (see `penstock_testkit::kafka_engine_librdkafka`).
//!
//! Stopping: dropping the view stops the stream into the table. Dropping the Kafka
//! table itself aborts ClickHouse 18.16 running librdkafka 2.x (an assertion on a
//! consumer destroyed while subscribed), so the runner restarts a server it owns
//! without that table instead (see [`metadata_file`]).

use penstock_clickhouse::ClickHouseClient;
use std::path::{Path, PathBuf};

/// The seed's advice for fresher data: flush every 8,192 rows instead of 65,536.
pub const TUNED_BLOCK_SIZE: u32 = 8192;

/// How the pattern is set up, for the report.
pub fn describe(block_size: Option<u32>) -> String {
    let block = match block_size {
        None => "default kafka_max_block_size (65,536) and flush interval".to_string(),
        Some(n) => format!("kafka_max_block_size = {n} (the seed's tuning for freshness), default flush interval"),
    };
    format!(
        "ClickHouse Kafka table engine (JSONEachRow, kafka_num_consumers = 1, {block}; fetch_wait_max_ms = 10 in the \
         server's <kafka> config) + a materialized view into MergeTree, event time parsed by parseDateTimeBestEffort \
         in the view"
    )
}

/// The Kafka table and its view, in `database`.
pub fn create_sql(database: &str, brokers: &str, topic: &str, group: &str, block_size: Option<u32>) -> [String; 2] {
    let block = block_size.map_or(String::new(), |n| format!(", kafka_max_block_size = {n}"));
    let q = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    [
        format!(
            "CREATE TABLE `{database}`.kafka_transactions (event_id String, user_id UInt64, amount Decimal(12, 2), \
             region String, event_type String, event_time String) ENGINE = Kafka SETTINGS \
             kafka_broker_list = '{}', kafka_topic_list = '{}', kafka_group_name = '{}', \
             kafka_format = 'JSONEachRow', kafka_num_consumers = 1{block}",
            q(brokers),
            q(topic),
            q(group)
        ),
        format!(
            "CREATE MATERIALIZED VIEW `{database}`.transactions_mv TO `{database}`.transactions AS SELECT \
             toUUID(event_id) AS event_id, user_id, amount, region, CAST(event_type AS {}) AS event_type, \
             parseDateTimeBestEffort(event_time) AS event_ts, event_time AS event_time_text, now() AS ingest_time, \
             toInt32(-1) AS _partition, toInt64(-1) AS _offset FROM `{database}`.kafka_transactions",
            super::event_type_enum()
        ),
    ]
}

/// Starts consuming: creates the Kafka table and the view.
pub async fn start(
    client: &ClickHouseClient,
    database: &str,
    brokers: &str,
    topic: &str,
    group: &str,
    block_size: Option<u32>,
) -> penstock_clickhouse::Result<()> {
    for sql in create_sql(database, brokers, topic, group, block_size) {
        client.query(&sql).await?;
    }
    Ok(())
}

/// Stops the stream into the table (the Kafka table stays; see the module docs).
pub async fn stop(client: &ClickHouseClient, database: &str) -> penstock_clickhouse::Result<()> {
    client.query(&format!("DROP TABLE IF EXISTS `{database}`.transactions_mv")).await?;
    Ok(())
}

/// The Kafka table's metadata file in a server data directory: removing it while the
/// server is down makes the server start without the table (and its consumer).
pub fn metadata_file(data_dir: &Path, database: &str) -> PathBuf {
    data_dir.join("metadata").join(database).join("kafka_transactions.sql")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_quoted() {
        let [kafka, view] = create_sql("bench_ke_rate_10000", "127.0.0.1:9092", "top'ic", "g", None);
        assert!(!kafka.contains("kafka_max_block_size"));
        let [tuned, _] = create_sql("d", "b", "t", "g", Some(TUNED_BLOCK_SIZE));
        assert!(tuned.ends_with("kafka_num_consumers = 1, kafka_max_block_size = 8192"), "{tuned}");
        assert!(kafka.contains("kafka_topic_list = 'top\\'ic'"), "{kafka}");
        assert!(kafka.contains("kafka_num_consumers = 1"));
        assert!(view.contains("TO `bench_ke_rate_10000`.transactions"));
        assert!(view.contains("parseDateTimeBestEffort(event_time) AS event_ts, event_time AS event_time_text"));
    }
}
