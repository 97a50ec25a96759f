//! The pipeline file as written: every key, its meaning and its default.
//!
//! These types mirror the YAML one to one and reject unknown keys. Values that have a
//! syntax of their own (types, durations, sizes) are parsed while deserializing, so a
//! mistake is reported at its line and column. Rules that span several keys are
//! checked afterwards by [`crate::validate`].
//!
//! ```yaml
//! name: transactions
//! source:
//!   kafka:
//!     brokers: 127.0.0.1:9092
//!     topics: [transactions]
//!     group: penstock-transactions
//!     start: earliest
//! format: json
//! schema:
//!   event_id:   { type: UUID, required: true }
//!   user_id:    UInt64                      # shorthand: just the type
//!   event_time: "DateTime('UTC')"
//!   kafka_partition: { type: Int32, from: _partition }
//!   ingested_at: { type: DateTime, value: now }
//! sink:
//!   clickhouse:
//!     url: http://127.0.0.1:8123
//!     table: analytics.transactions
//!     batch: { max_rows: 200000, max_bytes: 64MiB, max_wait: 500ms }
//! ```

use crate::units::{ByteSize, HumanDuration};
use penstock_codec::ColumnType;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;

/// A whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Pipeline name: letters, digits, `_`, `-`, `.`; used in logs and as the default
    /// consumer group (`penstock-<name>`).
    pub name: Spanned<String>,
    /// Where messages come from.
    pub source: SourceFile,
    /// Message format. Only `json` (one JSON object per message) for now.
    #[serde(default)]
    pub format: Format,
    /// Limits applied to each message before it is parsed.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Destination columns, in order: `column: TYPE` or `column: { type: TYPE, ... }`.
    /// Required with a Kafka source; with a ClickHouse source the columns are the
    /// table's (or the query's), and `schema` is not given.
    #[serde(default)]
    pub schema: Option<Spanned<OrderedMap<Spanned<FieldFile>>>>,
    /// Where rows go.
    pub sink: SinkFile,
    /// Delivery guarantee: `exactly_once` (default) or `at_least_once`.
    #[serde(default)]
    pub delivery: DeliveryFile,
    /// Where messages that cannot become rows go (always somewhere: nothing is dropped).
    #[serde(default)]
    pub dead_letter: DeadLetterFile,
    /// Top-level message fields the schema does not list: `drop` them (default; a
    /// `value: rest` column can still keep them as JSON), or `add` a column for each
    /// (type inferred from its first non-null value, Nullable) while running.
    #[serde(default)]
    pub unknown_fields: UnknownFieldsFile,
    /// Freshness reporting: `{ event_time: COLUMN }` adds a histogram of insert
    /// acknowledgement time minus that DateTime/DateTime64 column, per row (the Kafka
    /// timestamp's is always reported).
    #[serde(default)]
    pub freshness: FreshnessFile,
    /// The HTTP API (metrics, health, status, dashboard) of `penstock run`;
    /// `--http`/`--http-token` override it.
    #[serde(default)]
    pub http: HttpFile,
    /// Stages between decode and sink, in order: `- filter: "<expression>"`,
    /// `- dedup: { key: event_id, window: 1h }`.
    #[serde(default)]
    pub transforms: Option<Spanned<Vec<Spanned<TransformFile>>>>,
    /// Where stateful stages (`dedup`) keep their state: `{ dir: PATH, memory: 64MiB }`.
    #[serde(default)]
    pub state: Option<Spanned<StateFile>>,
}

/// `state:`: local state of stateful stages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// Directory (created if missing); each stage keeps a store under
    /// `<dir>/<pipeline>/<stage>`. One process per directory.
    pub dir: Spanned<String>,
    /// Memory per stage, whatever its key count (default 64MiB): up to three quarters
    /// for the Bloom filters (2 bytes a key; past it they stop growing — more reads of
    /// the runs, never a missed key), a quarter for the writes waiting for the state's
    /// writer thread (past it, consumption waits). The rows of undelivered batches come
    /// on top (≈ 100 bytes a row in flight).
    #[serde(default = "default_state_memory")]
    pub memory: ByteSize,
    /// Produce every state change to the stage's changelog topic
    /// (`penstock-<pipeline>-<stage>-changelog`, created if missing, with snapshots of
    /// the state now and then) and restore from it — the latest snapshot and the writes
    /// after it — when a partition has no local state (default true).
    #[serde(default = "default_true")]
    pub changelog: bool,
}

fn default_true() -> bool {
    true
}

fn default_state_memory() -> ByteSize {
    ByteSize(64 << 20)
}

/// One stage of `transforms:`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TransformFile {
    /// Keep the rows where this ClickHouse SQL expression is true.
    Filter(String),
    /// Drop a row whose key was seen within the window.
    Dedup(DedupFile),
}

/// `dedup:`: drop rows whose key was already seen within `window`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DedupFile {
    /// The key: a column, or a list of columns.
    pub key: DedupKeyFile,
    /// How far apart two occurrences of a key may be and still be duplicates.
    pub window: HumanDuration,
    /// What the window is measured on: `_timestamp` (the Kafka timestamp, default) or
    /// a DateTime/DateTime64 column.
    #[serde(default)]
    pub time: Option<String>,
    /// Route every message through an internal topic (`penstock-<name>-repartition`,
    /// created with as many partitions as the source topic with the most) to the
    /// partition of its dedup key, so duplicates sent to different source partitions
    /// (another message key) meet. A forwarder in the same process sends each message
    /// unchanged — payload, key, timestamp, plus a `penstock-origin` header with its
    /// source coordinates — exactly once; the pipeline then reads the internal topic,
    /// so `_topic`/`_partition`/`_offset` are the internal message's. Which copy of a
    /// key is kept is the first to reach its internal partition. Not with `format:
    /// json_array` (a message must be one row). Default: false (state per source
    /// partition: right when the dedup key decides the message key).
    #[serde(default)]
    pub repartition: bool,
    /// With `repartition: true`, how the forwarder keeps a second process from writing
    /// the internal topic at the same time: `group` (default) — the writer lease of a
    /// Kafka sink (`penstock-<name>-writer`: one forwarder writes, the others wait and
    /// take over); `none` — no lease, for a pipeline run by one process at a time on a
    /// broker that does not evict killed group members (Tansu keeps them, so a process
    /// restarted after `kill -9` would wait for the lease indefinitely).
    #[serde(default)]
    pub repartition_lease: Option<LeaseFile>,
}

/// A dedup key: one column or several.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum DedupKeyFile {
    /// One column.
    One(String),
    /// Several columns.
    Many(Vec<String>),
}

/// HTTP API settings.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// `host:port` (default `127.0.0.1:9464`: loopback unless configured), or `off`.
    #[serde(default)]
    pub address: Option<String>,
    /// Bearer token required by every route but `/healthz`; use `${VAR}`. Never logged.
    #[serde(default)]
    pub token: Option<String>,
}

/// Freshness settings.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FreshnessFile {
    /// The event-time column.
    #[serde(default)]
    pub event_time: Option<String>,
}

/// Policy for message fields the schema does not list.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFieldsFile {
    /// Ignore them.
    #[default]
    Drop,
    /// Add a column for each.
    Add,
}

/// The dead-letter table: every message that cannot be decoded, or whose row ClickHouse
/// rejects, lands there with its raw bytes, Kafka coordinates and the reason. Written
/// through the sink's connection, in the same delivery protocol as the data.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFile {
    /// `name` or `database.name`; default `<table>_dead_letter` in the sink's database.
    /// Created if missing.
    #[serde(default)]
    pub table: Option<Spanned<String>>,
    /// Kafka → Kafka: the dead-letter **topic** (default `<output topic>-dead-letter`,
    /// created like the output topic when missing). Each dead letter carries the raw
    /// message, its source coordinates and the reason in headers.
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
}

/// Delivery guarantees.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryFile {
    /// Each message's rows exactly once, across crashes, restarts and rebalances
    /// (a ledger table in ClickHouse records every batch before it is inserted).
    #[default]
    ExactlyOnce,
    /// Rows may be inserted twice after a crash; no ledger.
    AtLeastOnce,
}

/// The source section: exactly one kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // parsed once per file
pub enum SourceFile {
    /// Kafka topics through a consumer group.
    Kafka(Spanned<KafkaFile>),
    /// A ClickHouse table or query, read incrementally by a cursor (ClickHouse → Kafka).
    Clickhouse(Spanned<ClickHouseSourceFile>),
}

/// ClickHouse source settings: rows of a table (or a query) published in cursor order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseSourceFile {
    /// HTTP interface URL, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database (default `default`). May also be given as `table: db.table`.
    #[serde(default)]
    pub database: Option<String>,
    /// The table to publish, `name` or `database.name`. Give `table` or `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// A `SELECT` to publish instead of a whole table (no `FORMAT`, `ORDER BY` or
    /// `LIMIT`: Penstock wraps it, filters it by the cursor and orders it). It must
    /// return the cursor columns.
    #[serde(default)]
    pub query: Option<String>,
    /// User (default `default`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password; use `${VAR}` to take it from the environment. Never logged.
    #[serde(default)]
    pub password: Option<String>,
    /// How new rows are found: `{ columns: [c1, c2, ...], settle: 10s }` — a monotone
    /// column first (a DateTime/DateTime64/Date when `settle` is above zero) and
    /// columns that make the tuple unique after it. Only rows whose first column is at
    /// least `settle` older than the server's `now()` are read, so a row committed late
    /// (inside the settle window) is still published; a row that appears behind the
    /// cursor anyway is counted as late (`penstock_source_late_rows_total`). Or
    /// `block` (ClickHouse with persisted block numbers, plain MergeTree tables).
    pub cursor: CursorModeFile,
    /// Where the first run starts: `beginning` (default: every row) or `now` (rows
    /// newer than the start).
    #[serde(default)]
    pub start: SourceStartFile,
    /// How long to wait before asking again when there were no new rows (default 1s).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// Rows read per query (default 100000).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// How often a closed range is counted again to detect late rows (default 30s;
    /// `0s` turns the detector off).
    #[serde(default = "default_late_check")]
    pub late_check: HumanDuration,
    /// Time limit of one HTTP request (default 60s).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

/// `cursor: block` (modern servers, plain MergeTree) or `cursor: { columns, settle }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CursorModeFile {
    /// The table's persisted block numbers.
    Block(BlockCursorWord),
    /// Columns of the rows.
    Columns(CursorFile),
}

/// The word `block`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BlockCursorWord {
    /// `(_block_number, _block_offset)`: given out in commit order on a plain
    /// MergeTree with `enable_block_number_column` and `enable_block_offset_column`, so
    /// no row can appear behind the cursor and no settle delay is needed.
    Block,
}

/// The cursor of a ClickHouse source, by columns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorFile {
    /// Cursor columns, most significant first (at least one).
    pub columns: Vec<String>,
    /// Rows younger than this (by the first column, against the server's clock) are
    /// not read yet (default 10s).
    #[serde(default = "default_settle")]
    pub settle: HumanDuration,
}

/// Where a ClickHouse source starts on its first run.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceStartFile {
    /// Every row of the table.
    #[default]
    Beginning,
    /// Rows newer than the first run's start.
    Now,
}

const fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}

const fn default_batch_rows() -> usize {
    100_000
}

const fn default_late_check() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

const fn default_settle() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

/// Kafka source settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaFile {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics to consume (at least one).
    pub topics: Vec<String>,
    /// Consumer group id. Default: `penstock-<name>`.
    #[serde(default)]
    pub group: Option<String>,
    /// Where a group with no committed offset starts: `earliest` (default) or `latest`.
    #[serde(default)]
    pub start: StartFile,
    /// Extra librdkafka properties, e.g. `{ security.protocol: SASL_SSL }`. They
    /// override Penstock's defaults except the ones that keep delivery correct
    /// (`enable.auto.commit`, `enable.auto.offset.store`), which are refused.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Where to start when the group has no committed offset.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartFile {
    /// The oldest retained message.
    #[default]
    Earliest,
    /// Only messages produced after the group first joins.
    Latest,
}

/// Message formats.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per message.
    #[default]
    Json,
    /// A JSON object, or a JSON array of objects (one row per element), per message.
    JsonArray,
}

/// Per-message limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest message accepted (default 1MiB); larger ones are rejected unparsed.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: ByteSize,
    /// Deepest object/array nesting accepted (default 64).
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
}

impl Default for LimitsFile {
    fn default() -> Self {
        LimitsFile { max_message_bytes: default_max_message(), max_depth: default_max_depth() }
    }
}

const fn default_max_message() -> ByteSize {
    ByteSize(1 << 20)
}

const fn default_max_depth() -> usize {
    64
}

/// One destination column.
#[derive(Debug)]
pub struct FieldFile {
    /// ClickHouse type, e.g. `UInt64`, `Nullable(String)`, `DateTime('UTC')`.
    pub ty: TypeFile,
    /// Where the value comes from: a top-level JSON key (default: the column name), a
    /// JSON path into the message (`a.b[0].c`; `['a.b']` for a key containing dots), or
    /// Kafka metadata `_topic`, `_partition`, `_offset`, `_timestamp`, `_key`.
    /// A column named like a metadata field takes that metadata unless `from` says
    /// otherwise.
    pub from: Option<String>,
    /// A computed value instead of a message field: `now` (decode time), or `rest`
    /// (the message's fields no other column uses, as a JSON object).
    pub value: Option<ComputedFile>,
    /// Reject the message when the value is missing or null (default false: missing
    /// values become NULL for Nullable columns, the type's default otherwise).
    pub required: bool,
    /// What to do with a value that cannot be converted: `reject` the message
    /// (default), store `null` (Nullable columns only), or store the type's `default`.
    pub on_error: OnErrorFile,
    /// The value stored when the field is missing or null (any YAML value: `n/a`, `0`,
    /// `[]`...), instead of NULL or the type's default. Also used by `on_error: default`.
    pub default: Option<YamlValue>,
    /// Store the field's JSON text verbatim (String columns): objects, arrays, numbers.
    pub raw_json: bool,
    /// Unit of numbers given for DateTime/DateTime64 columns: `s` (default), `ms`, `us`, `ns`.
    pub unit: Option<EpochUnitFile>,
    /// Compression codec for the column when Penstock creates it, e.g. `Delta, ZSTD(1)`.
    pub codec: Option<String>,
    /// A ClickHouse SQL expression over the columns before this one (a computed
    /// column), e.g. `toUInt64(round(amount * 100))`.
    pub expr: Option<String>,
}

/// Units of epoch numbers.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnitFile {
    /// Seconds.
    #[serde(rename = "s")]
    Seconds,
    /// Milliseconds.
    #[serde(rename = "ms")]
    Millis,
    /// Microseconds.
    #[serde(rename = "us")]
    Micros,
    /// Nanoseconds.
    #[serde(rename = "ns")]
    Nanos,
}

/// A YAML value given as a field default, turned into JSON for the decoder.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum YamlValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A larger whole number.
    UInt(u64),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Str(String),
    /// A list.
    Seq(Vec<YamlValue>),
    /// A mapping.
    Map(BTreeMap<String, YamlValue>),
}

impl YamlValue {
    /// The value as JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            YamlValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            YamlValue::Int(i) => write!(out, "{i}").expect("write to String"),
            YamlValue::UInt(u) => write!(out, "{u}").expect("write to String"),
            YamlValue::Float(f) => write!(out, "{f:?}").expect("write to String"),
            YamlValue::Str(s) => json_string(s, out),
            YamlValue::Seq(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            YamlValue::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).expect("write to String"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Computed column values.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ComputedFile {
    /// The time the message was decoded.
    Now,
    /// Every top-level field the schema does not use, as a JSON object (String column).
    Rest,
}

/// Bad-value policy.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnErrorFile {
    /// Reject the whole message.
    #[default]
    Reject,
    /// Store NULL.
    Null,
    /// Store the type's default value.
    Default,
}

/// A ClickHouse type, parsed (and checked) while the file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFile(pub ColumnType);

impl<'de> Deserialize<'de> for TypeFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ColumnType::parse(&s).map(TypeFile).map_err(|e| de::Error::custom(e.to_string()))
    }
}

impl<'de> Deserialize<'de> for FieldFile {
    /// Accepts the full map form or the shorthand `column: TYPE`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ClickHouse type or a map with `type`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldFile, E> {
                let ty = ColumnType::parse(v).map_err(|e| E::custom(e.to_string()))?;
                Ok(FieldFile {
                    ty: TypeFile(ty),
                    from: None,
                    value: None,
                    required: false,
                    on_error: OnErrorFile::Reject,
                    default: None,
                    raw_json: false,
                    unit: None,
                    codec: None,
                    expr: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldFile, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Full {
                    #[serde(rename = "type")]
                    ty: TypeFile,
                    #[serde(default)]
                    from: Option<String>,
                    #[serde(default)]
                    value: Option<ComputedFile>,
                    #[serde(default)]
                    required: bool,
                    #[serde(default)]
                    on_error: OnErrorFile,
                    #[serde(default)]
                    default: Option<YamlValue>,
                    #[serde(default)]
                    raw_json: bool,
                    #[serde(default)]
                    unit: Option<EpochUnitFile>,
                    #[serde(default)]
                    codec: Option<String>,
                    #[serde(default)]
                    expr: Option<String>,
                }
                let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(FieldFile {
                    ty: f.ty,
                    from: f.from,
                    value: f.value,
                    required: f.required,
                    on_error: f.on_error,
                    default: f.default,
                    raw_json: f.raw_json,
                    unit: f.unit,
                    codec: f.codec,
                    expr: f.expr,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The sink section: exactly one kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // parsed once per file
pub enum SinkFile {
    /// A ClickHouse table over HTTP(S).
    Clickhouse(Spanned<ClickHouseFile>),
    /// A Kafka topic, written exactly once without Kafka transactions.
    Kafka(Spanned<KafkaSinkFile>),
}

/// Kafka sink settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkFile {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Output topic.
    pub topic: String,
    /// Columns whose values make the message key (`event_id` or `[a, b]`): one column's
    /// value text, or a JSON array of several. The partition is the Java client's
    /// murmur2 of the key. Without a key, messages have none and the partition is the
    /// murmur2 of the row's source position (deterministic, spread evenly).
    #[serde(default)]
    pub key: KeyColumnsFile,
    /// Message format: `json` (one object per row, every column under its name).
    #[serde(default)]
    pub format: OutputFormatFile,
    /// Extra librdkafka producer properties (`linger.ms`, `compression.type`,
    /// `security.protocol`...). The ones exactly-once depends on are refused.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Create the topic when it is missing.
    #[serde(default)]
    pub create: Option<TopicCreateFile>,
    /// One writer per pipeline: `group` (default) — the member of the consumer group
    /// `penstock-<name>-writer` assigned the output topic's partition 0 writes, the
    /// others wait and take over when it stops or is evicted; `none` — nothing keeps a
    /// second process out (for brokers whose groups cannot be relied on after kills).
    #[serde(default)]
    pub lease: LeaseFile,
}

/// The writer lease of a Kafka sink.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LeaseFile {
    /// Membership of the writer group.
    #[default]
    Group,
    /// No lease.
    None,
}

/// Message key columns: one name or a list.
#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
pub enum KeyColumnsFile {
    /// No key.
    #[default]
    None,
    /// One column.
    One(String),
    /// Several columns.
    Many(Vec<String>),
}

/// Output message formats.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormatFile {
    /// One JSON object per row.
    #[default]
    Json,
}

/// How a missing output topic is created.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicCreateFile {
    /// Partitions (default 1).
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor (default 1).
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// Topic configuration, e.g. `{ retention.ms: "604800000" }`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

const fn default_partitions() -> i32 {
    1
}

const fn default_replication() -> i32 {
    1
}

/// ClickHouse sink settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseFile {
    /// HTTP interface URL, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database (default `default`). May also be given as `table: db.table`.
    #[serde(default)]
    pub database: Option<String>,
    /// Destination table, `name` or `database.name`.
    pub table: String,
    /// User (default `default`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password; use `${VAR}` to take it from the environment. Never logged.
    #[serde(default)]
    pub password: Option<String>,
    /// Insert format: `native` (default) or `row_binary`.
    #[serde(default)]
    pub format: InsertFormatFile,
    /// Body compression: `lz4` (ClickHouse block compression, default) or `none`.
    #[serde(default)]
    pub compression: CompressionFile,
    /// When a batch is sent.
    #[serde(default)]
    pub batch: BatchFile,
    /// Retries of failed inserts.
    #[serde(default)]
    pub retry: RetryFile,
    /// Time limit of one HTTP request (default 60s).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Exactly-once ledger table, in the sink's database (default `penstock_ledger`);
    /// created if missing and shared by every pipeline writing to that database.
    #[serde(default)]
    pub ledger_table: Option<String>,
    /// Create the database and table from the schema when they are missing, and how
    /// (`create: {}` for a MergeTree ordered by nothing in particular).
    #[serde(default)]
    pub create: Option<CreateFile>,
    /// When the schema has columns the table lacks: `add` them (ALTER TABLE ... ADD
    /// COLUMN; the default with `create`) or `fail` (the default without).
    #[serde(default)]
    pub evolve: Option<EvolveFile>,
    /// Allow changing a column's type when the change keeps every stored value (a
    /// wider integer, Float32 to Float64, T to Nullable(T)...). Default false: any type
    /// change is refused with an explanation.
    #[serde(default)]
    pub widen: bool,
}

/// How Penstock creates the destination table.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateFile {
    /// `MergeTree` (default), `ReplacingMergeTree(version)`, `SummingMergeTree`,
    /// `AggregatingMergeTree`, or a `Replicated...` variant with its arguments.
    #[serde(default)]
    pub engine: Option<String>,
    /// Sorting key: column names (quoted for you) or expressions.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Partitioning expression, e.g. `toYYYYMM(event_time)`.
    #[serde(default)]
    pub partition_by: Option<String>,
    /// Primary key, a prefix of `order_by` (default: all of it).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// TTL expression, e.g. `event_time + INTERVAL 90 DAY`.
    #[serde(default)]
    pub ttl: Option<String>,
    /// Table settings, e.g. `{ index_granularity: 8192 }`.
    #[serde(default)]
    pub settings: BTreeMap<String, YamlValue>,
    /// Run the DDL `ON CLUSTER` this cluster.
    #[serde(default)]
    pub on_cluster: Option<String>,
}

/// Schema evolution policy.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvolveFile {
    /// Add missing columns.
    Add,
    /// Refuse to start.
    Fail,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}

/// Insert formats.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InsertFormatFile {
    /// Columnar Native.
    #[default]
    Native,
    /// Row-major RowBinary.
    RowBinary,
}

/// Body compression.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CompressionFile {
    /// ClickHouse LZ4 blocks (`decompress=1`).
    #[default]
    Lz4,
    /// Plain body.
    None,
}

/// Batch limits: a batch is sent when any is reached.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchFile {
    /// Rows per batch (default 200000).
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Encoded bytes per batch (default 64MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Longest time the first row of a batch waits (default 500ms).
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

impl Default for BatchFile {
    fn default() -> Self {
        BatchFile { max_rows: default_max_rows(), max_bytes: default_max_bytes(), max_wait: default_max_wait() }
    }
}

const fn default_max_rows() -> usize {
    200_000
}

const fn default_max_bytes() -> ByteSize {
    ByteSize(64 << 20)
}

fn default_max_wait() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(500))
}

/// Retry backoff for inserts that fail for a passing reason (server down, overloaded).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFile {
    /// First wait (default 100ms); doubles after each failure.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Longest wait (default 10s). Retries go on until the insert succeeds or the
    /// error is permanent; consumption is paused meanwhile.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
}

impl Default for RetryFile {
    fn default() -> Self {
        RetryFile { initial_backoff: default_initial_backoff(), max_backoff: default_max_backoff() }
    }
}

fn default_initial_backoff() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(100))
}

fn default_max_backoff() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

/// A map that keeps the file's key order and refuses duplicate keys.
#[derive(Debug)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap<V>, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    let value = map.next_value()?;
                    out.push((key, value));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}
