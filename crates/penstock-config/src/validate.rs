//! Cross-key rules, and the validated [`Pipeline`] the rest of Penstock consumes.
//!
//! Everything in a [`Pipeline`] is usable as is: the schema compiles into a decoder,
//! names are non-empty, limits are in range. Components take these types, never the
//! raw file model.

use crate::error::{ConfigError, Locator};
use crate::model::*;
use penstock_codec::{
    ColumnType, DecodeLimits, EpochUnit, FieldOptions, FieldSpec, JsonDecoder, JsonPath, OnError, ValueSource,
};
use std::fmt;
use std::time::Duration;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Pipeline name.
    pub name: String,
    /// Kafka source.
    pub source: KafkaSource,
    /// Destination columns and where their values come from.
    pub fields: Vec<FieldSpec>,
    /// Per-message limits.
    pub limits: DecodeLimits,
    /// A message that is a JSON array of objects becomes one row per element
    /// (`format: json_array`).
    pub arrays_as_rows: bool,
    /// Add a column for each top-level message field the schema does not list.
    pub add_unknown_fields: bool,
    /// The column whose time freshness is measured against (DateTime/DateTime64).
    pub event_time_column: Option<String>,
    /// HTTP API address from the file (`off` disables), when given.
    pub http_address: Option<String>,
    /// HTTP API bearer token from the file.
    pub http_token: Option<Secret>,
    /// ClickHouse sink.
    pub sink: ClickHouseSink,
    /// Delivery guarantee.
    pub delivery: Delivery,
    /// Computed columns and transforms, checked.
    pub stages: crate::stages::StageSpecs,
    /// Where stateful stages keep their state (given whenever one exists).
    pub state: Option<StateConfig>,
}

/// `state:`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// The state directory.
    pub dir: std::path::PathBuf,
    /// Memory per stage (filters and writes in flight), bytes.
    pub memory: u64,
    /// Changelog topics on.
    pub changelog: bool,
}

/// `state:` checked against the stages: required by a stateful stage.
fn state_settings(
    state: Option<serde_saphyr::Spanned<crate::model::StateFile>>,
    stages: &crate::stages::StageSpecs,
    loc: &Locator<'_>,
) -> Result<Option<StateConfig>, ConfigError> {
    let Some(s) = state else {
        if stages.has_state() {
            return Err(loc.plain_at(
                "state",
                "`dedup` keeps state on local disk: add `state: { dir: /var/lib/penstock }` (any directory this process may write; one process per directory)",
            ));
        }
        return Ok(None);
    };
    let dir = s.value.dir.value.trim();
    if dir.is_empty() {
        return Err(loc.spanned(&s.value.dir.referenced, "state.dir", "is empty"));
    }
    if s.value.memory.0 < (1 << 20) {
        return Err(loc.spanned(&s.referenced, "state.memory", "must be at least 1MiB"));
    }
    Ok(Some(StateConfig { dir: dir.into(), memory: s.value.memory.0, changelog: s.value.changelog }))
}

/// Delivery guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Exactly once (the default).
    ExactlyOnce,
    /// At least once.
    AtLeastOnce,
}

/// Validated Kafka source settings.
#[derive(Debug, Clone)]
pub struct KafkaSource {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topics.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Start position for a group without committed offsets.
    pub start: StartFrom,
    /// Extra librdkafka properties.
    pub properties: Vec<(String, String)>,
}

/// Start position for a group without committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Oldest retained message.
    Earliest,
    /// Newest.
    Latest,
}

/// A secret value: shown as `***` by `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Validated ClickHouse sink settings.
#[derive(Debug, Clone)]
pub struct ClickHouseSink {
    /// HTTP(S) base URL without trailing slash.
    pub url: String,
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// User.
    pub user: String,
    /// Password, if any.
    pub password: Option<Secret>,
    /// Insert format.
    pub format: InsertFormat,
    /// Body compression.
    pub compression: Compression,
    /// Batch limits.
    pub batch: BatchLimits,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// HTTP request time limit.
    pub timeout: Duration,
    /// Exactly-once ledger table (in `database`).
    pub ledger_table: String,
    /// Dead-letter table: database.
    pub dead_letter_database: String,
    /// Dead-letter table: name.
    pub dead_letter_table: String,
    /// How to create the table when it is missing (`None`: it must exist).
    pub create: Option<TableCreation>,
    /// Add columns the schema has and the table lacks.
    pub evolve_add: bool,
    /// Allow safe type widenings of existing columns.
    pub widen: bool,
}

/// A term of generated DDL: a column (quoted when rendered) or an expression the
/// pipeline's author wrote (used as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlTerm {
    /// A column of the table.
    Column(String),
    /// A SQL expression.
    Expr(String),
}

/// How Penstock creates a missing table (validated `create:` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCreation {
    /// Engine name, e.g. `ReplacingMergeTree`.
    pub engine: String,
    /// Engine arguments.
    pub engine_args: Vec<SqlTerm>,
    /// Sorting key.
    pub order_by: Vec<SqlTerm>,
    /// Partitioning expression.
    pub partition_by: Option<String>,
    /// Primary key (a prefix of the sorting key), when given.
    pub primary_key: Vec<SqlTerm>,
    /// TTL expression.
    pub ttl: Option<String>,
    /// Table settings (name, value as text).
    pub settings: Vec<(String, String)>,
    /// `ON CLUSTER` name.
    pub on_cluster: Option<String>,
    /// Column codecs (column, codec expression).
    pub codecs: Vec<(String, String)>,
}

/// Engine families Penstock creates (each also as `Replicated...`).
pub const ENGINES: [&str; 4] = ["MergeTree", "ReplacingMergeTree", "SummingMergeTree", "AggregatingMergeTree"];

/// Splits `Name(a, 'b,c', f(x))` into the name and its top-level arguments.
fn split_engine(text: &str) -> Result<(String, Vec<String>), String> {
    let text = text.trim();
    let Some(open) = text.find('(') else {
        return Ok((text.to_string(), Vec::new()));
    };
    if !text.ends_with(')') {
        return Err(format!("`{text}`: expected `Name(arguments)`"));
    }
    let name = text[..open].trim().to_string();
    let inner = &text[open + 1..text.len() - 1];
    let (mut args, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None::<char>, 0);
    let mut prev = ' ';
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q && prev != '\\' => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                args.push(inner[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    if !inner.trim().is_empty() {
        args.push(inner[start..].trim().to_string());
    }
    Ok((name, args))
}

/// Insert formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertFormat {
    /// Columnar Native.
    Native,
    /// RowBinary.
    RowBinary,
}

/// Body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// ClickHouse LZ4 blocks.
    Lz4,
    /// None.
    None,
}

/// When a batch is sealed and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Rows.
    pub max_rows: usize,
    /// Encoded bytes.
    pub max_bytes: usize,
    /// Age of the oldest row.
    pub max_wait: Duration,
}

/// Capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First wait.
    pub initial_backoff: Duration,
    /// Longest wait.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): doubling, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// librdkafka properties that Penstock sets itself because delivery depends on them.
const RESERVED_PROPERTIES: [&str; 5] =
    ["enable.auto.commit", "enable.auto.offset.store", "group.id", "bootstrap.servers", "auto.offset.reset"];

fn virtual_source(name: &str) -> Option<ValueSource> {
    Some(match name {
        "_topic" => ValueSource::Topic,
        "_partition" => ValueSource::Partition,
        "_offset" => ValueSource::Offset,
        "_timestamp" => ValueSource::Timestamp,
        "_key" => ValueSource::Key,
        _ => return None,
    })
}

/// A validated pipeline file: which ends it joins decides how it runs.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per process, built once
pub enum Job {
    /// Kafka → ClickHouse.
    Ingest(Pipeline),
    /// ClickHouse → Kafka.
    Publish(crate::publication::Publication),
    /// Kafka → Kafka.
    Relay(crate::relay::Relay),
}

impl Job {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        match self {
            Job::Ingest(p) => &p.name,
            Job::Publish(p) => &p.name,
            Job::Relay(r) => &r.name,
        }
    }
}

pub(crate) fn validate(f: PipelineFile, loc: &Locator<'_>) -> Result<Job, ConfigError> {
    let name = pipeline_name(&f, loc)?;
    let kafka_to_clickhouse = matches!(f.source, SourceFile::Kafka(_)) && matches!(f.sink, SinkFile::Clickhouse(_));
    if let (Some(s), false) = (&f.state, kafka_to_clickhouse) {
        return Err(loc.spanned(
            &s.referenced,
            "state",
            "stateful stages run on Kafka → ClickHouse pipelines; this one has none to keep",
        ));
    }
    let source = match f.source {
        SourceFile::Kafka(k) => k,
        SourceFile::Clickhouse(c) => {
            let rest = crate::publication::Rest {
                sink: f.sink,
                schema_given: f.schema.is_some(),
                delivery: f.delivery,
                http: f.http,
                transforms: f.transforms,
            };
            return crate::publication::validate(name, c, rest, loc).map(Job::Publish);
        }
    };
    let c = match f.sink {
        SinkFile::Clickhouse(c) => c,
        SinkFile::Kafka(k) => {
            let rest = crate::relay::Rest {
                schema: f.schema,
                format: f.format,
                limits: f.limits,
                delivery: f.delivery,
                dead_letter: f.dead_letter,
                unknown_fields: f.unknown_fields,
                freshness: f.freshness,
                http: f.http,
                transforms: f.transforms,
            };
            return crate::relay::validate(name, source, k, rest, loc).map(Job::Relay);
        }
    };
    if let Some(t) = &f.dead_letter.topic {
        return Err(loc.spanned(
            &t.referenced,
            "dead_letter.topic",
            "a ClickHouse sink dead-letters into a table (`dead_letter: { table: ... }`)",
        ));
    }
    let Some(schema) = f.schema else {
        return Err(loc.plain_at("schema", "a Kafka source needs a `schema:` (the columns each message becomes)"));
    };
    validate_ingest(
        name,
        source,
        schema,
        c,
        f.format,
        f.limits,
        f.delivery,
        f.dead_letter,
        f.unknown_fields,
        f.freshness,
        f.http,
        f.transforms,
        f.state,
        loc,
    )
    .map(Job::Ingest)
}

/// The pipeline name, checked.
pub(crate) fn pipeline_name(f: &PipelineFile, loc: &Locator<'_>) -> Result<String, ConfigError> {
    let name = f.name.value.trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(loc.spanned(
            &f.name.referenced,
            "name",
            format!("pipeline name `{name}` must be non-empty and use only letters, digits, `_`, `-`, `.`"),
        ));
    }
    Ok(name)
}

/// The Kafka source section, checked (shared by every pipeline reading Kafka).
pub(crate) fn kafka_source(
    name: &str,
    k: serde_saphyr::Spanned<KafkaFile>,
    loc: &Locator<'_>,
) -> Result<KafkaSource, ConfigError> {
    let kl = &k.referenced;
    let k = k.value;
    if k.brokers.trim().is_empty() {
        return Err(loc.spanned(kl, "source.kafka.brokers", "no brokers given"));
    }
    if k.topics.is_empty() {
        return Err(loc.spanned(kl, "source.kafka.topics", "at least one topic is needed"));
    }
    for (i, t) in k.topics.iter().enumerate() {
        if t.trim().is_empty() {
            return Err(loc.spanned(kl, &format!("source.kafka.topics[{i}]"), "topic name is empty"));
        }
        if k.topics[..i].contains(t) {
            return Err(loc.spanned(kl, &format!("source.kafka.topics[{i}]"), format!("topic `{t}` is listed twice")));
        }
    }
    for key in k.properties.keys() {
        if RESERVED_PROPERTIES.contains(&key.as_str()) {
            return Err(loc.spanned(
                kl,
                &format!("source.kafka.properties.{key}"),
                format!("`{key}` is managed by Penstock (use `brokers`, `group`, `start`; offsets are committed only after ClickHouse acknowledges)"),
            ));
        }
    }
    let source = KafkaSource {
        brokers: k.brokers.trim().to_string(),
        topics: k.topics,
        group: k.group.filter(|g| !g.trim().is_empty()).unwrap_or_else(|| format!("penstock-{name}")),
        start: match k.start {
            StartFile::Earliest => StartFrom::Earliest,
            StartFile::Latest => StartFrom::Latest,
        },
        properties: k.properties.into_iter().collect(),
    };

    Ok(source)
}

/// The schema section compiled into decoder fields, with the per-message limits.
pub(crate) fn decoded_fields(
    schema: &serde_saphyr::Spanned<OrderedMap<serde_saphyr::Spanned<FieldFile>>>,
    limits_file: LimitsFile,
    loc: &Locator<'_>,
) -> Result<Decoded, ConfigError> {
    let limits = DecodeLimits {
        max_message_bytes: usize::try_from(limits_file.max_message_bytes.0).unwrap_or(usize::MAX),
        max_depth: limits_file.max_depth,
    };
    if limits.max_depth == 0 || limits.max_message_bytes < 16 {
        return Err(loc.at(None, None, "limits", "max_depth must be at least 1 and max_message_bytes at least 16"));
    }

    let schema_loc = &schema.referenced;
    if schema.value.0.is_empty() {
        return Err(loc.spanned(schema_loc, "schema", "the schema has no columns"));
    }
    let mut fields = Vec::with_capacity(schema.value.0.len());
    let mut computed = Vec::new();
    for (column, spanned) in &schema.value.0 {
        let path = format!("schema.{column}");
        let at = |msg: String| loc.spanned(&spanned.referenced, &path, msg);
        let fd = &spanned.value;
        if column.trim().is_empty() {
            return Err(at("column name is empty".into()));
        }
        if fd.expr.is_some() {
            if fd.from.is_some() || fd.value.is_some() {
                return Err(at("give one of `from`, `value` and `expr`".into()));
            }
            if fd.required
                || fd.default.is_some()
                || fd.raw_json
                || fd.unit.is_some()
                || fd.on_error != OnErrorFile::Reject
            {
                return Err(at(
                    "`required`, `default`, `raw_json`, `unit` and `on_error` describe message fields, not computed columns".into(),
                ));
            }
        }
        let source = match (&fd.from, fd.value) {
            _ if fd.expr.is_some() => ValueSource::Computed,
            (Some(_), Some(_)) => return Err(at("give either `from` or `value`, not both".into())),
            (None, Some(ComputedFile::Now)) => ValueSource::Now,
            (None, Some(ComputedFile::Rest)) => ValueSource::Rest,
            (Some(from), None) if from.contains(['.', '[']) => {
                let p = JsonPath::parse(from).map_err(at)?;
                if p.steps.is_empty() {
                    ValueSource::Json(p.key)
                } else {
                    ValueSource::Path(p)
                }
            }
            (Some(from), None) => virtual_source(from).unwrap_or_else(|| ValueSource::Json(from.clone())),
            (None, None) => virtual_source(column).unwrap_or_else(|| ValueSource::Json(column.clone())),
        };
        if let ValueSource::Json(key) = &source {
            if key.is_empty() {
                return Err(at("`from` is empty".into()));
            }
        }
        let is_time = matches!(fd.ty.0.non_nullable(), ColumnType::DateTime { .. } | ColumnType::DateTime64 { .. });
        if fd.unit.is_some() && !is_time {
            return Err(at(format!("`unit` applies to DateTime and DateTime64 columns, not {}", fd.ty.0)));
        }
        let options = FieldOptions {
            default: fd.default.as_ref().map(YamlValue::to_json),
            raw_json: fd.raw_json,
            epoch_unit: match fd.unit {
                None | Some(EpochUnitFile::Seconds) => EpochUnit::Seconds,
                Some(EpochUnitFile::Millis) => EpochUnit::Millis,
                Some(EpochUnitFile::Micros) => EpochUnit::Micros,
                Some(EpochUnitFile::Nanos) => EpochUnit::Nanos,
            },
        };
        let spec = FieldSpec {
            column: column.clone(),
            ty: fd.ty.0.clone(),
            source,
            required: fd.required,
            on_error: match fd.on_error {
                OnErrorFile::Reject => OnError::Reject,
                OnErrorFile::Null => OnError::Null,
                OnErrorFile::Default => OnError::Default,
            },
            options,
        };
        // Compile each field alone so the error points at it.
        JsonDecoder::new(vec![spec.clone()], limits).map_err(|e| at(e.reason))?;
        fields.push(spec);
        if let Some(text) = &fd.expr {
            let index = fields.len() - 1;
            let e = crate::stages::computed(&fields, index, text).map_err(at)?;
            computed.push((index, column.clone(), e));
        }
    }

    Ok(Decoded { fields, limits, computed })
}

/// A schema, checked: the columns a decoder fills, its limits, and the computed columns.
pub(crate) struct Decoded {
    pub(crate) fields: Vec<FieldSpec>,
    pub(crate) limits: DecodeLimits,
    pub(crate) computed: Vec<(usize, String, penstock_stages::expr::Expr)>,
}

impl Decoded {
    /// The stages of a pipeline with this schema and `transforms:`.
    pub(crate) fn stages(
        &self,
        transforms: Option<&serde_saphyr::Spanned<Vec<serde_saphyr::Spanned<TransformFile>>>>,
        loc: &Locator<'_>,
        stateful: bool,
    ) -> Result<crate::stages::StageSpecs, ConfigError> {
        let columns: Vec<(String, ColumnType)> = self.fields.iter().map(|f| (f.column.clone(), f.ty.clone())).collect();
        let transforms = crate::stages::transforms(transforms, &columns, loc, stateful)?;
        Ok(crate::stages::StageSpecs { computed: self.computed.clone(), transforms })
    }
}

#[allow(clippy::too_many_arguments)] // the sections of one file, taken apart once
fn validate_ingest(
    name: String,
    k: serde_saphyr::Spanned<KafkaFile>,
    schema: serde_saphyr::Spanned<OrderedMap<serde_saphyr::Spanned<FieldFile>>>,
    c: serde_saphyr::Spanned<ClickHouseFile>,
    format: Format,
    limits_file: LimitsFile,
    delivery_file: DeliveryFile,
    dead_letter: DeadLetterFile,
    unknown_fields: UnknownFieldsFile,
    freshness: FreshnessFile,
    http: HttpFile,
    transforms: Option<serde_saphyr::Spanned<Vec<serde_saphyr::Spanned<TransformFile>>>>,
    state: Option<serde_saphyr::Spanned<crate::model::StateFile>>,
    loc: &Locator<'_>,
) -> Result<Pipeline, ConfigError> {
    let source = kafka_source(&name, k, loc)?;
    let decoded = decoded_fields(&schema, limits_file, loc)?;
    let stages = decoded.stages(transforms.as_ref(), loc, true)?;
    let state = state_settings(state, &stages, loc)?;
    let Decoded { fields, limits, .. } = decoded;
    let cl = &c.referenced;
    let c = c.value;
    let url = c.url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
        return Err(loc.spanned(cl, "sink.clickhouse.url", format!("`{url}` is not an http:// or https:// URL")));
    }
    let (database, table) = match (&c.database, c.table.split_once('.')) {
        (Some(db), _) => (db.clone(), c.table.clone()),
        (None, Some((db, t))) => (db.to_string(), t.to_string()),
        (None, None) => ("default".to_string(), c.table.clone()),
    };
    if database.is_empty() || table.is_empty() {
        return Err(loc.spanned(cl, "sink.clickhouse.table", "database and table names must not be empty"));
    }
    let batch = BatchLimits {
        max_rows: c.batch.max_rows,
        max_bytes: usize::try_from(c.batch.max_bytes.0).unwrap_or(usize::MAX),
        max_wait: c.batch.max_wait.0,
    };
    if batch.max_rows == 0 {
        return Err(loc.spanned(cl, "sink.clickhouse.batch.max_rows", "must be at least 1"));
    }
    if batch.max_bytes < 1024 {
        return Err(loc.spanned(cl, "sink.clickhouse.batch.max_bytes", "must be at least 1KiB"));
    }
    if batch.max_wait < Duration::from_millis(1) {
        return Err(loc.spanned(cl, "sink.clickhouse.batch.max_wait", "must be at least 1ms"));
    }
    let retry = RetryPolicy { initial_backoff: c.retry.initial_backoff.0, max_backoff: c.retry.max_backoff.0 };
    if retry.initial_backoff.is_zero() || retry.initial_backoff > retry.max_backoff {
        return Err(loc.spanned(
            cl,
            "sink.clickhouse.retry",
            "initial_backoff must be above zero and not above max_backoff",
        ));
    }
    if c.timeout.0 < Duration::from_millis(100) {
        return Err(loc.spanned(cl, "sink.clickhouse.timeout", "must be at least 100ms"));
    }
    let (dead_letter_database, dead_letter_table) = match &dead_letter.table {
        None => (database.clone(), format!("{table}_dead_letter")),
        Some(t) => {
            let at = |m: &str| loc.spanned(&t.referenced, "dead_letter.table", m);
            let (db, name) = match t.value.trim().split_once('.') {
                Some((db, name)) => (db.to_string(), name.to_string()),
                None => (database.clone(), t.value.trim().to_string()),
            };
            if db.is_empty() || name.is_empty() {
                return Err(at("database and table names must not be empty"));
            }
            if (db.as_str(), name.as_str()) == (database.as_str(), table.as_str()) {
                return Err(at("must differ from the sink's table (dead letters have their own columns)"));
            }
            (db, name)
        }
    };
    let columns: Vec<&str> = fields.iter().map(|f| f.column.as_str()).collect();
    let term = |t: &str| {
        let bare = t.trim().trim_matches('`');
        if columns.contains(&bare) {
            SqlTerm::Column(bare.to_string())
        } else {
            SqlTerm::Expr(t.trim().to_string())
        }
    };
    let create = match &c.create {
        None => None,
        Some(cf) => {
            let at = |m: String| loc.spanned(cl, "sink.clickhouse.create", m);
            let (engine, args) = split_engine(cf.engine.as_deref().unwrap_or("MergeTree")).map_err(at)?;
            let family = engine.strip_prefix("Replicated").unwrap_or(&engine);
            if !ENGINES.contains(&family) {
                return Err(at(format!(
                    "engine `{engine}` is not one Penstock creates (use {} or a Replicated variant)",
                    ENGINES.join(", ")
                )));
            }
            let order_by: Vec<SqlTerm> = cf.order_by.iter().map(|t| term(t)).collect();
            let primary_key: Vec<SqlTerm> = cf.primary_key.iter().map(|t| term(t)).collect();
            if !primary_key.is_empty() && !order_by.starts_with(&primary_key) {
                return Err(at("`primary_key` must be a prefix of `order_by`".into()));
            }
            let codecs = schema
                .value
                .0
                .iter()
                .filter_map(|(col, fd)| fd.value.codec.as_ref().map(|codec| (col.clone(), codec.clone())))
                .collect();
            Some(TableCreation {
                engine,
                engine_args: args.iter().map(|a| term(a)).collect(),
                order_by,
                partition_by: cf.partition_by.clone().filter(|p| !p.trim().is_empty()),
                primary_key,
                ttl: cf.ttl.clone().filter(|t| !t.trim().is_empty()),
                settings: cf
                    .settings
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            YamlValue::Str(s) => s.clone(),
                            other => other.to_json(),
                        };
                        (k.clone(), text)
                    })
                    .collect(),
                on_cluster: cf.on_cluster.clone().filter(|c| !c.trim().is_empty()),
                codecs,
            })
        }
    };
    let evolve_add = match c.evolve {
        Some(EvolveFile::Add) => true,
        Some(EvolveFile::Fail) => false,
        None => create.is_some(),
    };
    let sink = ClickHouseSink {
        url,
        database,
        table,
        user: c.user.filter(|u| !u.is_empty()).unwrap_or_else(|| "default".into()),
        password: c.password.filter(|p| !p.is_empty()).map(Secret::new),
        format: match c.format {
            InsertFormatFile::Native => InsertFormat::Native,
            InsertFormatFile::RowBinary => InsertFormat::RowBinary,
        },
        compression: match c.compression {
            CompressionFile::Lz4 => Compression::Lz4,
            CompressionFile::None => Compression::None,
        },
        batch,
        retry,
        timeout: c.timeout.0,
        ledger_table: c.ledger_table.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "penstock_ledger".into()),
        dead_letter_database,
        dead_letter_table,
        create,
        evolve_add,
        widen: c.widen,
    };
    let delivery = match delivery_file {
        DeliveryFile::ExactlyOnce => Delivery::ExactlyOnce,
        DeliveryFile::AtLeastOnce => Delivery::AtLeastOnce,
    };
    let arrays_as_rows = format == Format::JsonArray;
    if arrays_as_rows && stages.repartition().is_some() {
        return Err(loc.plain_at(
            "format",
            "`repartition: true` routes each message by its dedup key, so a message must be one row: \
             `format: json_array` cannot be repartitioned (use `format: json`)",
        ));
    }
    let add_unknown_fields = unknown_fields == UnknownFieldsFile::Add;
    let event_time_column = match freshness.event_time {
        None => None,
        Some(c) => {
            let is_time = fields.iter().any(|fd| {
                fd.column == c
                    && matches!(fd.ty.non_nullable(), ColumnType::DateTime { .. } | ColumnType::DateTime64 { .. })
            });
            if !is_time {
                return Err(loc.plain_at(
                    "freshness.event_time",
                    format!("`{c}` is not a DateTime or DateTime64 column of the schema"),
                ));
            }
            Some(c)
        }
    };
    Ok(Pipeline {
        name,
        source,
        fields,
        limits,
        arrays_as_rows,
        add_unknown_fields,
        event_time_column,
        http_address: http.address.filter(|a| !a.trim().is_empty()),
        http_token: http.token.filter(|t| !t.is_empty()).map(Secret::new),
        sink,
        delivery,
        stages,
        state,
    })
}
