//! The ingestion patterns `penstock bench` compares, each writing the same events into
//! the same table shape:
//!
//! - [`kafka_engine`]: ClickHouse's Kafka table engine + a materialized view into
//!   MergeTree (the seed benchmark's pattern), run inside the ClickHouse server;
//! - [`penstock`]: a `penstock run` process, with default settings or tuned ones.
//!
//! The table keeps the parsed event time in `event_ts` and its original ISO-8601
//! text (milliseconds) in `event_time_text`, so freshness is measured to the
//! millisecond on a server whose DateTime has whole seconds; `event_time` is an ALIAS
//! of `event_ts`, so the seed's queries run unchanged. (ClickHouse 18.16's
//! materialized views cannot read a column and also output a column of the same name
//! next to its raw text — the alias would capture the raw column — hence the
//! different physical name.)
//!
//! `_partition` and `_offset` are where Penstock's exactly-once delivery (its default)
//! records each row's Kafka position on a server without insert deduplication tokens;
//! 18.16's Kafka engine has no such virtual columns, so its view writes -1 there — it
//! has no way to be exactly once.

pub mod kafka_engine;
pub mod penstock;

use crate::gen::EVENT_TYPES;

/// Which pattern a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// ClickHouse's Kafka engine + materialized view, default settings.
    KafkaEngine,
    /// The same with the seed's freshness tuning, `kafka_max_block_size = 8192`.
    KafkaEngineTuned,
    /// Penstock with its default settings.
    Penstock,
    /// Penstock with the settings that gave the best freshness per CPU here.
    PenstockTuned,
    /// Penstock's defaults plus a computed column and a filter (the stages' cost).
    PenstockTransforms,
    /// Penstock's defaults plus dedup by event_id (the state's cost).
    PenstockDedup,
}

impl PatternKind {
    /// Every pattern, in the order they run.
    pub const ALL: [PatternKind; 6] = [
        PatternKind::KafkaEngine,
        PatternKind::KafkaEngineTuned,
        PatternKind::Penstock,
        PatternKind::PenstockTuned,
        PatternKind::PenstockTransforms,
        PatternKind::PenstockDedup,
    ];

    /// Whether ClickHouse's Kafka engine runs this pattern.
    pub fn is_kafka_engine(self) -> bool {
        matches!(self, PatternKind::KafkaEngine | PatternKind::KafkaEngineTuned)
    }

    /// `kafka-engine`, `penstock`, `penstock-tuned`.
    pub fn name(self) -> &'static str {
        match self {
            PatternKind::KafkaEngine => "kafka-engine",
            PatternKind::KafkaEngineTuned => "kafka-engine-tuned",
            PatternKind::Penstock => "penstock",
            PatternKind::PenstockTuned => "penstock-tuned",
            PatternKind::PenstockTransforms => "penstock-transforms",
            PatternKind::PenstockDedup => "penstock-dedup",
        }
    }

    /// Parses a name, or says which names exist.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
            format!("unknown pattern `{s}`; expected one of {}", names.join(", "))
        })
    }

    /// How the pattern is set up, for the report.
    pub fn describe(self) -> String {
        match self {
            PatternKind::KafkaEngine => kafka_engine::describe(None),
            PatternKind::KafkaEngineTuned => kafka_engine::describe(Some(kafka_engine::TUNED_BLOCK_SIZE)),
            PatternKind::Penstock => penstock::describe(&penstock::Settings::defaults()),
            PatternKind::PenstockTuned => penstock::describe(&penstock::Settings::tuned()),
            PatternKind::PenstockTransforms => penstock::describe(&penstock::Settings::with_transforms()),
            PatternKind::PenstockDedup => penstock::describe(&penstock::Settings::with_dedup()),
        }
    }
}

/// The `Enum8` of the seed's event types.
pub fn event_type_enum() -> String {
    let members: Vec<String> =
        EVENT_TYPES.iter().enumerate().map(|(i, name)| format!("'{name}' = {}", i + 1)).collect();
    format!("Enum8({})", members.join(", "))
}

/// The table every pattern writes: the seed's columns, ordered and partitioned as the
/// seed's table is.
pub fn create_table_sql(database: &str) -> String {
    format!(
        "CREATE TABLE `{database}`.transactions (\
         event_id UUID, user_id UInt64, amount Decimal(12, 2), region String, event_type {}, \
         event_ts DateTime('UTC'), event_time_text String, ingest_time DateTime('UTC'), \
         _partition Int32, _offset Int64, event_time DateTime('UTC') ALIAS event_ts) \
         ENGINE = MergeTree() PARTITION BY toYYYYMMDD(event_ts) ORDER BY (region, event_ts, event_id)",
        event_type_enum()
    )
}

/// The seed's queries, in ClickHouse 18.16's dialect (`now()` for `now64(3)`, which it
/// lacks), on `database.transactions`.
pub fn seed_queries(database: &str) -> [(&'static str, String); 3] {
    let t = format!("`{database}`.transactions");
    [
        (
            "Q1",
            format!(
                "SELECT region, count() AS cnt, sum(amount) AS total, avg(amount) AS avg_amount FROM {t} \
                 WHERE event_time >= now() - INTERVAL 1 HOUR GROUP BY region ORDER BY total DESC"
            ),
        ),
        (
            "Q2",
            format!(
                "SELECT toStartOfMinute(event_time) AS window_start, region, count() AS event_count, \
                 sum(amount) AS total_amount FROM {t} GROUP BY window_start, region \
                 ORDER BY window_start DESC, total_amount DESC LIMIT 120"
            ),
        ),
        (
            "Q3",
            format!(
                "SELECT max(event_time) AS newest_event_time, now() AS query_time, \
                 dateDiff('second', max(event_time), now()) AS freshness_lag_s, \
                 dateDiff('second', max(event_time), max(ingest_time)) AS pipeline_lag_s, count() AS total_rows FROM {t}"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in PatternKind::ALL {
            assert_eq!(PatternKind::parse(p.name()), Ok(p));
        }
        assert!(PatternKind::parse("flink").unwrap_err().contains(
            "kafka-engine, kafka-engine-tuned, penstock, penstock-tuned, penstock-transforms, penstock-dedup"
        ));
    }

    #[test]
    fn the_enum_numbers_event_types_from_one() {
        assert!(event_type_enum().starts_with("Enum8('purchase' = 1, 'refund' = 2,"));
        assert!(event_type_enum().ends_with("'login' = 6)"));
    }

    #[test]
    fn every_query_reads_the_pattern_table() {
        for (_, q) in seed_queries("bench_x") {
            assert!(q.contains("FROM `bench_x`.transactions"), "{q}");
        }
        assert!(create_table_sql("bench_x").contains("event_time DateTime('UTC') ALIAS event_ts"));
    }
}
