//! Decoding: message bytes into rows of a [`Block`](crate::Block), against a declared
//! schema.
//!
//! - this module: what every decoder fills — the [`FieldSpec`]s of a schema (column,
//!   type, where the value comes from, policy for bad values), limits, and the Kafka
//!   metadata of the message being decoded;
//! - [`write`]: format-neutral column writers (one value of any format → one column's
//!   encoding), shared by every decoder so types convert the same way whatever the format;
//! - [`json`]: the JSON decoder (one object per message, or an array of objects);
//! - [`native`]: ClickHouse Native responses → blocks (the ClickHouse source).

pub mod json;
pub mod native;
pub(crate) mod write;

use crate::datetime::Timestamp;
use crate::types::ColumnType;
use json::path::JsonPath;
pub use write::EpochUnit;

/// Where a column's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// A top-level key of the JSON object.
    Json(String),
    /// A value nested inside the message, e.g. `a.b[0].c`.
    Path(JsonPath),
    /// Every top-level field the schema does not use, as a JSON object (a "rest"
    /// column, so nothing the producer sent is lost).
    Rest,
    /// Kafka topic name (`_topic`).
    Topic,
    /// Kafka partition (`_partition`).
    Partition,
    /// Kafka offset (`_offset`).
    Offset,
    /// Kafka message timestamp (`_timestamp`), milliseconds since the epoch.
    Timestamp,
    /// Kafka message key (`_key`).
    Key,
    /// The time the message was decoded (`now`).
    Now,
    /// Computed after decoding, from other columns (`expr:`): the decoder writes the
    /// type's default and the computed-columns stage fills the column.
    Computed,
}

/// What to do when a present value cannot be converted to the column type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnError {
    /// Reject the whole message (the default).
    #[default]
    Reject,
    /// Store NULL (the column must be Nullable).
    Null,
    /// Store the type's default value.
    Default,
}

/// One column of the destination and how to fill it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// Destination column name.
    pub column: String,
    /// Destination column type.
    pub ty: ColumnType,
    /// Where the value comes from.
    pub source: ValueSource,
    /// Reject messages where the value is missing or null.
    pub required: bool,
    /// Policy for values that cannot be converted.
    pub on_error: OnError,
    /// Less common settings.
    pub options: FieldOptions,
}

impl FieldSpec {
    /// A column filled from the message's top-level key of the same name: optional,
    /// rejecting values that do not convert, no other option set.
    pub fn from_key(column: impl Into<String>, ty: ColumnType) -> FieldSpec {
        let column = column.into();
        FieldSpec {
            source: ValueSource::Json(column.clone()),
            column,
            ty,
            required: false,
            on_error: OnError::Reject,
            options: FieldOptions::default(),
        }
    }
}

/// Less common per-field settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldOptions {
    /// The value stored when the field is missing or null, as JSON text (e.g. `"n/a"`,
    /// `0`, `[]`); when unset, NULL for Nullable columns, else the type's default.
    pub default: Option<String>,
    /// Store the value's JSON text verbatim (a String column), whatever its type.
    pub raw_json: bool,
    /// The unit of numbers given for DateTime/DateTime64 columns.
    pub epoch_unit: EpochUnit,
}

/// Limits applied to every message before it is parsed.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Deepest nesting of objects/arrays accepted.
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_message_bytes: 1 << 20, max_depth: 64 }
    }
}

/// Kafka metadata of the message being decoded (the virtual columns).
#[derive(Clone, Copy, Debug)]
pub struct MessageMeta<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Broker/producer timestamp in ms, when the message has one.
    pub timestamp_ms: Option<i64>,
    /// Message key.
    pub key: Option<&'a [u8]>,
    /// Wall-clock time for `now` columns.
    pub now: Timestamp,
}

impl MessageMeta<'static> {
    /// A message outside Kafka (a file, a test, a benchmark): topic `""`, partition and
    /// offset 0, no timestamp or key, `now` at the epoch.
    pub fn outside_kafka() -> Self {
        MessageMeta {
            topic: "",
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: None,
            now: Timestamp { secs: 0, nanos: 0 },
        }
    }
}
