//! The validated Kafka → Kafka pipeline ([`Relay`]): messages of Kafka topics decoded
//! with the schema (types checked), re-encoded as JSON and written to a Kafka topic;
//! messages that cannot be decoded go to a dead-letter topic. Exactly once by the
//! Kafka sink's protocol, over one stream per source partition.

use crate::error::{ConfigError, Locator};
use crate::model::*;
use crate::publication::KafkaSink;
use crate::validate::{KafkaSource, Secret};
use penstock_codec::{DecodeLimits, FieldSpec};
use serde_saphyr::Spanned;

/// A validated Kafka → Kafka pipeline.
#[derive(Debug, Clone)]
pub struct Relay {
    /// Pipeline name (also the `penstock-pipeline` header of every message).
    pub name: String,
    /// Where messages come from (the group only receives informational commits).
    pub source: KafkaSource,
    /// The columns each message becomes, and where their values come from.
    pub fields: Vec<FieldSpec>,
    /// Per-message limits.
    pub limits: DecodeLimits,
    /// A message that is a JSON array of objects becomes one row per element.
    pub arrays_as_rows: bool,
    /// Where rows go.
    pub sink: KafkaSink,
    /// The dead-letter topic.
    pub dead_letter_topic: String,
    /// HTTP API address from the file (`off` disables), when given.
    pub http_address: Option<String>,
    /// HTTP API bearer token from the file.
    pub http_token: Option<Secret>,
    /// Computed columns and transforms, checked.
    pub stages: crate::stages::StageSpecs,
    /// Forward each message unchanged (payload, key, timestamp) to the partition of
    /// its key columns instead of re-encoding its rows; nothing is dead-lettered (a
    /// message whose key cannot be read keeps its source partition's number). Set for
    /// the forwarder of `dedup: { repartition: true }`, never by a file.
    pub forward: bool,
}

/// The sections of the file besides the source and sink that a relay reads.
pub(crate) struct Rest {
    pub(crate) schema: Option<Spanned<OrderedMap<Spanned<FieldFile>>>>,
    pub(crate) format: Format,
    pub(crate) limits: LimitsFile,
    pub(crate) delivery: DeliveryFile,
    pub(crate) dead_letter: DeadLetterFile,
    pub(crate) unknown_fields: UnknownFieldsFile,
    pub(crate) freshness: FreshnessFile,
    pub(crate) http: HttpFile,
    pub(crate) transforms: Option<Spanned<Vec<Spanned<TransformFile>>>>,
}

pub(crate) fn validate(
    name: String,
    k: Spanned<KafkaFile>,
    sink: Spanned<KafkaSinkFile>,
    f: Rest,
    loc: &Locator<'_>,
) -> Result<Relay, ConfigError> {
    let source = crate::validate::kafka_source(&name, k, loc)?;
    let Some(schema) = f.schema else {
        return Err(loc.plain_at("schema", "a Kafka source needs a `schema:` (the columns each message becomes)"));
    };
    let decoded = crate::validate::decoded_fields(&schema, f.limits, loc)?;
    let stages = decoded.stages(f.transforms.as_ref(), loc, false)?;
    let crate::validate::Decoded { fields, limits, .. } = decoded;
    let sink_at = sink.referenced;
    let sink = crate::publication::kafka_sink(sink, loc)?;
    for k in &sink.key {
        if !fields.iter().any(|fd| &fd.column == k) {
            return Err(loc.spanned(
                &sink_at,
                "sink.kafka.key",
                format!(
                    "key column `{k}` is not in the schema (it has: {})",
                    fields.iter().map(|fd| fd.column.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    if source.topics.contains(&sink.topic) {
        return Err(loc.spanned(&sink_at, "sink.kafka.topic", "the output topic must not be one of the source topics"));
    }
    if let Some(t) = &f.dead_letter.table {
        return Err(loc.spanned(
            &t.referenced,
            "dead_letter.table",
            "a Kafka sink dead-letters into a topic (`dead_letter: { topic: ... }`)",
        ));
    }
    let dead_letter_topic = match &f.dead_letter.topic {
        None => format!("{}-dead-letter", sink.topic),
        Some(t) => {
            let name = t.value.trim().to_string();
            let at = |m: &str| loc.spanned(&t.referenced, "dead_letter.topic", m);
            if name.is_empty() {
                return Err(at("topic name is empty"));
            }
            if name == sink.topic || source.topics.contains(&name) {
                return Err(at("must differ from the output topic and from the source topics"));
            }
            name
        }
    };
    if f.delivery == DeliveryFile::AtLeastOnce {
        return Err(loc.plain_at(
            "delivery",
            "the Kafka sink is always exactly-once (recovery reads the output topic; nothing to turn off)",
        ));
    }
    if f.unknown_fields == UnknownFieldsFile::Add {
        return Err(loc.plain_at(
            "unknown_fields",
            "`add` grows a ClickHouse table; a Kafka sink writes the schema's columns (keep them with `value: rest`)",
        ));
    }
    if f.freshness.event_time.is_some() {
        return Err(loc.plain_at("freshness.event_time", "freshness is measured at ClickHouse sinks only"));
    }
    Ok(Relay {
        name,
        source,
        fields,
        limits,
        arrays_as_rows: f.format == Format::JsonArray,
        sink,
        dead_letter_topic,
        http_address: f.http.address.filter(|a| !a.trim().is_empty()),
        http_token: f.http.token.filter(|t| !t.is_empty()).map(Secret::new),
        stages,
        forward: false,
    })
}
