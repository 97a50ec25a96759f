//! Decoding JSON messages straight into column buffers, against a declared schema.
//!
//! [`JsonDecoder`] is built once per pipeline from [`FieldSpec`]s (validated here: a
//! virtual column must have a type it can fill). [`JsonDecoder::decode`] scans one
//! message and appends exactly one row to a [`Block`], or appends nothing and returns a
//! [`DecodeError`] naming the field and what was wrong. It allocates nothing per
//! message once its scratch buffers have grown.

mod convert;

use crate::column::{Block, Column};
use crate::datetime::Timestamp;
use crate::error::{DecodeError, DecodeErrorKind, SchemaError};
use crate::json::{scan_object, KeyIndex, Kind, Span};
use crate::types::ColumnType;
use convert::{write_int, write_json, write_time, Leaf};

/// Where a column's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// A top-level key of the JSON object.
    Json(String),
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

#[derive(Clone, Copy, Debug)]
enum Src {
    Slot(usize),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Now,
}

#[derive(Clone, Debug)]
struct Compiled {
    spec: FieldSpec,
    leaf: Leaf,
    src: Src,
    nullable: bool,
}

/// Decodes JSON object messages into rows of a [`Block`].
#[derive(Clone, Debug)]
pub struct JsonDecoder {
    fields: Vec<Compiled>,
    index: KeyIndex,
    slots: Vec<Option<Span>>,
    scratch: Vec<u8>,
    /// RowBinary of the array/map/tuple value being converted.
    nested: Vec<u8>,
    limits: DecodeLimits,
}

impl JsonDecoder {
    /// Compiles a schema. Fails when a field's source cannot fill its type, or when
    /// `on_error: null` is set on a non-Nullable column.
    pub fn new(fields: Vec<FieldSpec>, limits: DecodeLimits) -> Result<Self, SchemaError> {
        let mut keys: Vec<String> = Vec::new();
        let mut compiled = Vec::with_capacity(fields.len());
        for spec in fields {
            let leaf = Leaf::of(&spec.ty);
            let nullable = spec.ty.is_nullable();
            let schema_err = |reason: String| SchemaError { column: spec.column.clone(), reason };
            if spec.on_error == OnError::Null && !nullable {
                return Err(schema_err(format!(
                    "`on_error: null` needs a Nullable column, but the type is {}",
                    spec.ty
                )));
            }
            let ok = matches!(
                (&spec.source, &leaf),
                (ValueSource::Json(_), _)
                    | (ValueSource::Topic | ValueSource::Key, Leaf::Str)
                    | (ValueSource::Partition | ValueSource::Offset, Leaf::Int { .. } | Leaf::Wide { .. })
                    | (
                        ValueSource::Timestamp,
                        Leaf::DateTime | Leaf::DateTime64(_) | Leaf::Int { .. } | Leaf::Wide { .. }
                    )
                    | (ValueSource::Now, Leaf::DateTime | Leaf::DateTime64(_))
            );
            if !ok {
                let wants = match spec.source {
                    ValueSource::Topic | ValueSource::Key => "String",
                    ValueSource::Partition | ValueSource::Offset => "an integer type",
                    ValueSource::Timestamp => "DateTime, DateTime64 or an integer type (milliseconds)",
                    _ => "DateTime or DateTime64",
                };
                return Err(schema_err(format!(
                    "the {:?} value needs a column of {wants}, not {}",
                    spec.source, spec.ty
                )));
            }
            let src = match &spec.source {
                ValueSource::Json(key) => {
                    if let Some(i) = keys.iter().position(|k| k == key) {
                        Src::Slot(i)
                    } else {
                        keys.push(key.clone());
                        Src::Slot(keys.len() - 1)
                    }
                }
                ValueSource::Topic => Src::Topic,
                ValueSource::Partition => Src::Partition,
                ValueSource::Offset => Src::Offset,
                ValueSource::Timestamp => Src::Timestamp,
                ValueSource::Key => Src::Key,
                ValueSource::Now => Src::Now,
            };
            compiled.push(Compiled { spec, leaf, src, nullable });
        }
        let slots = vec![None; keys.len()];
        Ok(JsonDecoder {
            fields: compiled,
            index: KeyIndex::new(&keys),
            slots,
            scratch: Vec::new(),
            nested: Vec::new(),
            limits,
        })
    }

    /// An empty block with one column per field, in schema order.
    pub fn new_block(&self) -> Block {
        Block::new(self.fields.iter().map(|f| Column::new(f.spec.column.clone(), f.spec.ty.clone())).collect())
    }

    /// The field specs, in column order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().map(|f| &f.spec)
    }

    /// Decodes one message into one new row of `block`. On error nothing is appended.
    pub fn decode(&mut self, msg: &[u8], meta: &MessageMeta<'_>, block: &mut Block) -> Result<(), DecodeError> {
        if msg.len() > self.limits.max_message_bytes {
            return Err(DecodeError::new(
                DecodeErrorKind::TooLarge,
                None,
                format!("message is {} bytes, the limit is {}", msg.len(), self.limits.max_message_bytes),
            ));
        }
        // A UTF-8 byte order mark (some Windows producers write one) is not part of the
        // JSON text: skip it rather than reject the message.
        let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
        if let Err(e) = std::str::from_utf8(msg) {
            return Err(DecodeError::new(
                DecodeErrorKind::NotUtf8,
                None,
                format!("message is not valid UTF-8 at byte {}", e.valid_up_to()),
            ));
        }
        if let Err(e) = scan_object(msg, &self.index, &mut self.slots, &mut self.scratch, self.limits.max_depth) {
            let kind =
                if e.what.starts_with("nesting") { DecodeErrorKind::TooDeep } else { DecodeErrorKind::InvalidJson };
            return Err(DecodeError::new(kind, None, format!("invalid JSON at byte {}: {}", e.at, e.what)));
        }
        for i in 0..self.fields.len() {
            if let Err(e) = self.fill(i, msg, meta, block) {
                block.rollback();
                return Err(e);
            }
        }
        block.commit_row();
        Ok(())
    }

    fn fill(&mut self, i: usize, msg: &[u8], meta: &MessageMeta<'_>, block: &mut Block) -> Result<(), DecodeError> {
        let f = &self.fields[i];
        let col = &mut block.columns_mut()[i];
        let result = match f.src {
            Src::Slot(slot) => match self.slots[slot] {
                None | Some(Span { kind: Kind::Null, .. }) => {
                    return missing(f, col, self.slots[slot].is_some());
                }
                Some(span) => write_json(&f.leaf, col, msg, span, &mut self.scratch, &mut self.nested),
            },
            Src::Topic => {
                col.push_str(meta.topic.as_bytes());
                Ok(())
            }
            Src::Partition => write_int(&f.leaf, col, i128::from(meta.partition)),
            Src::Offset => write_int(&f.leaf, col, i128::from(meta.offset)),
            Src::Key => match meta.key {
                Some(k) => {
                    col.push_str(k);
                    Ok(())
                }
                None => return missing(f, col, false),
            },
            Src::Timestamp => match meta.timestamp_ms {
                Some(ms) => match f.leaf {
                    Leaf::Int { .. } | Leaf::Wide { .. } => write_int(&f.leaf, col, i128::from(ms)),
                    _ => write_time(
                        &f.leaf,
                        col,
                        Timestamp { secs: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as u32 },
                    ),
                },
                None => return missing(f, col, false),
            },
            Src::Now => write_time(&f.leaf, col, meta.now),
        };
        match result {
            Ok(()) => Ok(()),
            Err(b) => match f.spec.on_error {
                OnError::Null => {
                    col.push_null();
                    Ok(())
                }
                OnError::Default => {
                    col.push_default();
                    Ok(())
                }
                OnError::Reject => {
                    let value = match f.src {
                        Src::Slot(slot) => self.slots[slot].map(|s| snippet(msg, s)).unwrap_or_default(),
                        _ => String::new(),
                    };
                    Err(DecodeError::new(
                        b.kind,
                        Some(f.spec.column.clone()),
                        format!("{} (column type {}, value {value})", b.why, f.spec.ty),
                    ))
                }
            },
        }
    }
}

/// Fills a missing (or null) value: NULL when nullable, else the default, unless required.
fn missing(f: &Compiled, col: &mut Column, was_null: bool) -> Result<(), DecodeError> {
    if f.spec.required {
        let (kind, why) = if was_null {
            (DecodeErrorKind::NullValue, "required field is null")
        } else {
            (DecodeErrorKind::MissingField, "required field is missing")
        };
        return Err(DecodeError::new(kind, Some(f.spec.column.clone()), why.to_string()));
    }
    if f.nullable {
        col.push_null();
    } else {
        col.push_default();
    }
    Ok(())
}

fn snippet(msg: &[u8], s: Span) -> String {
    let (start, end) = match s.kind {
        Kind::String { .. } => (s.start as usize - 1, s.end as usize + 1),
        _ => (s.start as usize, s.end as usize),
    };
    let text = String::from_utf8_lossy(&msg[start..end.min(msg.len())]);
    if text.chars().count() > 64 {
        format!("{}…", text.chars().take(64).collect::<String>())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests;
