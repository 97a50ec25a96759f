//! The validated ClickHouse → Kafka pipeline ([`Publication`]): a ClickHouse table or
//! query read by a cursor, published to a Kafka topic.

use crate::error::{ConfigError, Locator};
use crate::model::*;
use crate::validate::Secret;
use serde_saphyr::Spanned;
use std::time::Duration;

/// A validated ClickHouse → Kafka pipeline.
#[derive(Debug, Clone)]
pub struct Publication {
    /// Pipeline name (also the `penstock-pipeline` header of every message).
    pub name: String,
    /// Where rows come from.
    pub source: ClickHouseSource,
    /// Where they go.
    pub sink: KafkaSink,
    /// HTTP API address from the file (`off` disables), when given.
    pub http_address: Option<String>,
    /// HTTP API bearer token from the file.
    pub http_token: Option<Secret>,
    /// `transforms:` filters, checked against the table's (or query's) columns when the
    /// source is opened, before anything is published.
    pub filters: Vec<String>,
}

/// What a ClickHouse source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// A table of `database`.
    Table(String),
    /// A `SELECT`, wrapped as a subquery.
    Query(String),
}

/// Where a ClickHouse source starts on its first run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStart {
    /// Every row.
    Beginning,
    /// Rows newer than the first run's start.
    Now,
}

/// Validated ClickHouse source settings.
#[derive(Debug, Clone)]
pub struct ClickHouseSource {
    /// HTTP(S) base URL without trailing slash.
    pub url: String,
    /// Database.
    pub database: String,
    /// Table or query.
    pub relation: Relation,
    /// User.
    pub user: String,
    /// Password, if any.
    pub password: Option<Secret>,
    /// Cursor columns, most significant first (`_block_number, _block_offset` with
    /// `block`).
    pub cursor: Vec<String>,
    /// `cursor: block`: the table's persisted block numbers are the cursor.
    pub block: bool,
    /// Rows younger than this (by the first cursor column, server clock) wait.
    pub settle: Duration,
    /// First-run start.
    pub start: SourceStart,
    /// Wait between queries that found nothing new.
    pub poll_interval: Duration,
    /// Rows per query.
    pub batch_rows: usize,
    /// Late-row detector period (`None`: off).
    pub late_check: Option<Duration>,
    /// HTTP request time limit.
    pub timeout: Duration,
}

/// Validated Kafka sink settings.
#[derive(Debug, Clone)]
pub struct KafkaSink {
    /// Bootstrap servers.
    pub brokers: String,
    /// Output topic.
    pub topic: String,
    /// Key columns (empty: no key).
    pub key: Vec<String>,
    /// Extra librdkafka producer properties.
    pub properties: Vec<(String, String)>,
    /// How to create the topic when missing.
    pub create: Option<TopicCreation>,
    /// Hold the writer lease (membership of the writer group) before writing.
    pub lease: bool,
}

/// How a missing topic is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCreation {
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// Topic configuration.
    pub config: Vec<(String, String)>,
}

/// Producer properties the Kafka sink owns (exactly-once depends on them).
pub const RESERVED_SINK_PROPERTIES: [&str; 9] = [
    "message.timeout.ms",
    "delivery.timeout.ms",
    "bootstrap.servers",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "acks",
    "partitioner",
    "transactional.id",
    "max.in.flight.requests.per.connection",
];

/// The sections of the file besides the source that a publication reads.
pub(crate) struct Rest {
    pub(crate) sink: SinkFile,
    pub(crate) schema_given: bool,
    pub(crate) delivery: DeliveryFile,
    pub(crate) http: HttpFile,
    pub(crate) transforms: Option<Spanned<Vec<Spanned<TransformFile>>>>,
}

pub(crate) fn validate(
    name: String,
    c: Spanned<ClickHouseSourceFile>,
    f: Rest,
    loc: &Locator<'_>,
) -> Result<Publication, ConfigError> {
    let cl = &c.referenced;
    let c = c.value;
    let at = |path: &str, m: String| loc.spanned(cl, &format!("source.clickhouse.{path}"), m);
    let url = c.url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
        return Err(at("url", format!("`{url}` is not an http:// or https:// URL")));
    }
    let (database, relation) = match (&c.table, &c.query) {
        (Some(_), Some(_)) => return Err(at("table", "give either `table` or `query`, not both".into())),
        (None, None) => return Err(at("table", "give the `table` to publish (or a `query`)".into())),
        (None, Some(q)) => {
            let q = q.trim().trim_end_matches(';').trim().to_string();
            if !q.to_ascii_lowercase().starts_with("select") && !q.to_ascii_lowercase().starts_with("with") {
                return Err(at("query", "must be a SELECT".into()));
            }
            (c.database.clone().unwrap_or_else(|| "default".into()), Relation::Query(q))
        }
        (Some(t), None) => match (&c.database, t.split_once('.')) {
            (Some(db), _) => (db.clone(), Relation::Table(t.clone())),
            (None, Some((db, t))) => (db.to_string(), Relation::Table(t.to_string())),
            (None, None) => ("default".to_string(), Relation::Table(t.clone())),
        },
    };
    if database.is_empty() || matches!(&relation, Relation::Table(t) if t.is_empty()) {
        return Err(at("table", "database and table names must not be empty".into()));
    }
    let (cursor, settle, block) = match &c.cursor {
        CursorModeFile::Block(BlockCursorWord::Block) => {
            if matches!(relation, Relation::Query(_)) {
                return Err(at(
                    "cursor",
                    "`cursor: block` reads a table's block numbers; a `query` needs `cursor: { columns, settle }`"
                        .into(),
                ));
            }
            (vec!["_block_number".to_string(), "_block_offset".to_string()], Duration::ZERO, true)
        }
        CursorModeFile::Columns(cf) => {
            if cf.columns.is_empty() || cf.columns.iter().any(|col| col.trim().is_empty()) {
                return Err(at(
                    "cursor.columns",
                    "list the cursor columns: a monotone column first, then tie-breakers".into(),
                ));
            }
            for (i, col) in cf.columns.iter().enumerate() {
                if cf.columns[..i].contains(col) {
                    return Err(at(&format!("cursor.columns[{i}]"), format!("`{col}` is listed twice")));
                }
            }
            (cf.columns.iter().map(|s| s.trim().to_string()).collect(), cf.settle.0, false)
        }
    };
    if c.batch_rows == 0 {
        return Err(at("batch_rows", "must be at least 1".into()));
    }
    if c.poll_interval.0 < Duration::from_millis(10) {
        return Err(at("poll_interval", "must be at least 10ms".into()));
    }
    if c.timeout.0 < Duration::from_millis(100) {
        return Err(at("timeout", "must be at least 100ms".into()));
    }
    let source = ClickHouseSource {
        url,
        database,
        relation,
        user: c.user.filter(|u| !u.is_empty()).unwrap_or_else(|| "default".into()),
        password: c.password.filter(|p| !p.is_empty()).map(Secret::new),
        cursor,
        settle,
        block,
        start: match c.start {
            SourceStartFile::Beginning => SourceStart::Beginning,
            SourceStartFile::Now => SourceStart::Now,
        },
        poll_interval: c.poll_interval.0,
        batch_rows: c.batch_rows,
        late_check: Some(c.late_check.0).filter(|d| !d.is_zero()),
        timeout: c.timeout.0,
    };

    let k = match f.sink {
        SinkFile::Kafka(k) => k,
        SinkFile::Clickhouse(s) => {
            return Err(loc.spanned(
                &s.referenced,
                "sink.clickhouse",
                "a ClickHouse source publishes to a Kafka sink (`sink: { kafka: ... }`)",
            ))
        }
    };
    let sink = kafka_sink(k, loc)?;
    if f.schema_given {
        return Err(loc.plain_at(
            "schema",
            "a ClickHouse source publishes the table's own columns; remove `schema` (select columns with `query`)",
        ));
    }
    if f.delivery == DeliveryFile::AtLeastOnce {
        return Err(loc.plain_at(
            "delivery",
            "the Kafka sink is always exactly-once (recovery reads the output topic; nothing to turn off)",
        ));
    }
    let mut filters = Vec::new();
    for (i, t) in f.transforms.map(|t| t.value).unwrap_or_default().into_iter().enumerate() {
        match t.value {
            TransformFile::Filter(text) => filters.push(text),
            TransformFile::Dedup(_) => {
                return Err(loc.spanned(
                    &t.referenced,
                    &format!("transforms[{i}].dedup"),
                    "dedup keeps state per source partition and runs on Kafka → ClickHouse pipelines; a ClickHouse source cannot run it (deduplicate in the query)",
                ))
            }
        }
    }
    Ok(Publication {
        name,
        source,
        sink,
        http_address: f.http.address.filter(|a| !a.trim().is_empty()),
        http_token: f.http.token.filter(|t| !t.is_empty()).map(Secret::new),
        filters,
    })
}

/// The Kafka sink section, checked (shared by every pipeline writing Kafka).
pub(crate) fn kafka_sink(k: Spanned<KafkaSinkFile>, loc: &Locator<'_>) -> Result<KafkaSink, ConfigError> {
    let kl = &k.referenced;
    let k = k.value;
    let at = |path: &str, m: String| loc.spanned(kl, &format!("sink.kafka.{path}"), m);
    if k.brokers.trim().is_empty() {
        return Err(at("brokers", "no brokers given".into()));
    }
    if k.topic.trim().is_empty() {
        return Err(at("topic", "topic name is empty".into()));
    }
    let key = match k.key {
        KeyColumnsFile::None => Vec::new(),
        KeyColumnsFile::One(c) => vec![c],
        KeyColumnsFile::Many(cs) => cs,
    };
    if key.iter().any(|c| c.trim().is_empty()) {
        return Err(at("key", "a key column name is empty".into()));
    }
    for key in k.properties.keys() {
        if RESERVED_SINK_PROPERTIES.contains(&key.as_str()) {
            return Err(at(
                &format!("properties.{key}"),
                format!("`{key}` is managed by Penstock (exactly-once depends on it)"),
            ));
        }
    }
    let create = match k.create {
        None => None,
        Some(t) => {
            if t.partitions < 1 || t.replication_factor < 1 {
                return Err(at("create", "partitions and replication_factor must be at least 1".into()));
            }
            Some(TopicCreation {
                partitions: t.partitions,
                replication_factor: t.replication_factor,
                config: t.config.into_iter().collect(),
            })
        }
    };
    let OutputFormatFile::Json = k.format;
    let sink = KafkaSink {
        lease: k.lease == LeaseFile::Group,
        brokers: k.brokers.trim().to_string(),
        topic: k.topic.trim().to_string(),
        key,
        properties: k.properties.into_iter().collect(),
        create,
    };
    Ok(sink)
}
