//! Decoding JSON messages straight into column buffers, against a declared schema.
//!
//! [`JsonDecoder`] is built once per pipeline from [`FieldSpec`]s (validated here: a
//! virtual column must have a type it can fill). [`JsonDecoder::decode`] scans one
//! message and appends exactly one row to a [`Block`], or appends nothing and returns a
//! [`DecodeError`] naming the field and what was wrong. It allocates nothing per
//! message once its scratch buffers have grown.

use crate::column::{Block, Column};
use crate::datetime::{parse_date, parse_timestamp, Timestamp};
use crate::error::{DecodeError, DecodeErrorKind, SchemaError};
use crate::json::{scan_object, unescape_into, KeyIndex, Kind, Span};
use crate::scalar::{parse_decimal, parse_int, parse_uuid, DecimalError};
use crate::types::{decimal_width, ColumnType};

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

#[derive(Clone, Debug)]
enum Leaf {
    Str,
    Int { min: i128, max: i128, width: usize },
    F32,
    F64,
    Date,
    DateTime,
    DateTime64(u8),
    Uuid,
    Decimal { precision: u8, scale: u8, width: usize },
    Enum { width: usize, items: Vec<(Box<[u8]>, i16)> },
}

impl Leaf {
    fn of(ty: &ColumnType) -> Leaf {
        let int = |min: i128, max: i128, width| Leaf::Int { min, max, width };
        match ty.non_nullable() {
            ColumnType::String => Leaf::Str,
            ColumnType::Int8 => int(i8::MIN.into(), i8::MAX.into(), 1),
            ColumnType::Int16 => int(i16::MIN.into(), i16::MAX.into(), 2),
            ColumnType::Int32 => int(i32::MIN.into(), i32::MAX.into(), 4),
            ColumnType::Int64 => int(i64::MIN.into(), i64::MAX.into(), 8),
            ColumnType::UInt8 => int(0, u8::MAX.into(), 1),
            ColumnType::UInt16 => int(0, u16::MAX.into(), 2),
            ColumnType::UInt32 => int(0, u32::MAX.into(), 4),
            ColumnType::UInt64 => int(0, u64::MAX.into(), 8),
            ColumnType::Float32 => Leaf::F32,
            ColumnType::Float64 => Leaf::F64,
            ColumnType::Date => Leaf::Date,
            ColumnType::DateTime { .. } => Leaf::DateTime,
            ColumnType::DateTime64 { precision, .. } => Leaf::DateTime64(*precision),
            ColumnType::Uuid => Leaf::Uuid,
            ColumnType::Decimal { precision, scale } => {
                Leaf::Decimal { precision: *precision, scale: *scale, width: decimal_width(*precision) }
            }
            ColumnType::Enum8(items) | ColumnType::Enum16(items) => Leaf::Enum {
                width: if matches!(ty.non_nullable(), ColumnType::Enum8(_)) { 1 } else { 2 },
                items: items.iter().map(|(l, v)| (l.as_bytes().into(), *v)).collect(),
            },
            ColumnType::Nullable(_) => unreachable!("non_nullable() removed the wrapper"),
        }
    }
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

/// A value could not be converted; the decoder turns this into a [`DecodeError`].
struct Bad {
    kind: DecodeErrorKind,
    why: &'static str,
}

fn bad(kind: DecodeErrorKind, why: &'static str) -> Bad {
    Bad { kind, why }
}

/// Decodes JSON object messages into rows of a [`Block`].
#[derive(Clone, Debug)]
pub struct JsonDecoder {
    fields: Vec<Compiled>,
    index: KeyIndex,
    slots: Vec<Option<Span>>,
    scratch: Vec<u8>,
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
                    | (ValueSource::Partition | ValueSource::Offset, Leaf::Int { .. })
                    | (ValueSource::Timestamp, Leaf::DateTime | Leaf::DateTime64(_) | Leaf::Int { .. })
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
        Ok(JsonDecoder { fields: compiled, index: KeyIndex::new(&keys), slots, scratch: Vec::new(), limits })
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
                Some(span) => write_json(&f.leaf, col, msg, span, &mut self.scratch),
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
                    Leaf::Int { .. } => write_int(&f.leaf, col, i128::from(ms)),
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

#[inline]
fn write_int(leaf: &Leaf, col: &mut Column, v: i128) -> Result<(), Bad> {
    let Leaf::Int { min, max, width } = *leaf else {
        return Err(bad(DecodeErrorKind::WrongType, "expected an integer column"));
    };
    if v < min || v > max {
        return Err(bad(DecodeErrorKind::OutOfRange, "integer out of range for the column type"));
    }
    col.push_fixed(&(v as u64).to_le_bytes()[..width]);
    Ok(())
}

#[inline]
fn write_time(leaf: &Leaf, col: &mut Column, t: Timestamp) -> Result<(), Bad> {
    match *leaf {
        Leaf::DateTime => {
            let secs = u32::try_from(t.secs)
                .map_err(|_| bad(DecodeErrorKind::OutOfRange, "timestamp outside DateTime range 1970..2106"))?;
            col.push_fixed(&secs.to_le_bytes());
        }
        Leaf::DateTime64(p) => {
            let ticks = t.ticks(p).ok_or(bad(DecodeErrorKind::OutOfRange, "timestamp outside DateTime64 range"))?;
            col.push_fixed(&ticks.to_le_bytes());
        }
        Leaf::Date => {
            let days = u16::try_from(t.secs.div_euclid(86_400))
                .map_err(|_| bad(DecodeErrorKind::OutOfRange, "date outside Date range 1970..2149"))?;
            col.push_fixed(&days.to_le_bytes());
        }
        _ => return Err(bad(DecodeErrorKind::WrongType, "expected a time column")),
    }
    Ok(())
}

/// Text of a string or number span (strings with escapes are unescaped into `scratch`).
#[inline]
fn scalar_text<'m>(msg: &'m [u8], span: Span, scratch: &'m mut Vec<u8>) -> Result<&'m [u8], Bad> {
    let raw = &msg[span.start as usize..span.end as usize];
    match span.kind {
        Kind::Number | Kind::String { escaped: false } => Ok(raw),
        Kind::String { escaped: true } => {
            scratch.clear();
            unescape_into(raw, scratch).map_err(|why| bad(DecodeErrorKind::InvalidJson, why))?;
            Ok(scratch.as_slice())
        }
        _ => Err(bad(DecodeErrorKind::WrongType, "expected a number or a string")),
    }
}

fn write_json(leaf: &Leaf, col: &mut Column, msg: &[u8], span: Span, scratch: &mut Vec<u8>) -> Result<(), Bad> {
    let raw = &msg[span.start as usize..span.end as usize];
    match leaf {
        Leaf::Str => {
            match span.kind {
                Kind::String { escaped: true } => {
                    scratch.clear();
                    unescape_into(raw, scratch).map_err(|why| bad(DecodeErrorKind::InvalidJson, why))?;
                    col.push_str(scratch);
                }
                // Strings, and the JSON text of numbers, booleans, objects and arrays.
                _ => col.push_str(raw),
            }
            Ok(())
        }
        Leaf::Int { .. } => {
            let v = match span.kind {
                Kind::True => 1,
                Kind::False => 0,
                _ => {
                    let text = scalar_text(msg, span, scratch)?;
                    parse_int(text).ok_or(bad(DecodeErrorKind::WrongType, "expected an integer"))?
                }
            };
            write_int(leaf, col, v)
        }
        Leaf::F32 | Leaf::F64 => {
            let text = scalar_text(msg, span, scratch)?;
            let text = std::str::from_utf8(text).map_err(|_| bad(DecodeErrorKind::WrongType, "expected a number"))?;
            if matches!(leaf, Leaf::F32) {
                let v: f32 = text.parse().map_err(|_| bad(DecodeErrorKind::WrongType, "expected a number"))?;
                if !v.is_finite() {
                    return Err(bad(DecodeErrorKind::OutOfRange, "not a finite Float32"));
                }
                col.push_fixed(&v.to_le_bytes());
            } else {
                let v: f64 = text.parse().map_err(|_| bad(DecodeErrorKind::WrongType, "expected a number"))?;
                if !v.is_finite() {
                    return Err(bad(DecodeErrorKind::OutOfRange, "not a finite Float64"));
                }
                col.push_fixed(&v.to_le_bytes());
            }
            Ok(())
        }
        Leaf::Date => {
            let days = match span.kind {
                Kind::String { .. } => parse_date(scalar_text(msg, span, scratch)?)
                    .ok_or(bad(DecodeErrorKind::InvalidValue, "expected a date like 2026-11-21"))?,
                Kind::Number => parse_int(raw)
                    .and_then(|d| i64::try_from(d).ok())
                    .ok_or(bad(DecodeErrorKind::WrongType, "expected a whole number of days"))?,
                _ => return Err(bad(DecodeErrorKind::WrongType, "expected a date string or a day number")),
            };
            let days = u16::try_from(days)
                .map_err(|_| bad(DecodeErrorKind::OutOfRange, "date outside Date range 1970..2149"))?;
            col.push_fixed(&days.to_le_bytes());
            Ok(())
        }
        Leaf::DateTime | Leaf::DateTime64(_) => {
            let t = match span.kind {
                Kind::String { .. } => parse_timestamp(scalar_text(msg, span, scratch)?)
                    .ok_or(bad(DecodeErrorKind::InvalidValue, "expected an ISO-8601 timestamp"))?,
                Kind::Number => {
                    // Epoch seconds, possibly with a fraction: read exactly as nanoseconds.
                    let ns = parse_decimal(raw, 38, 9)
                        .map_err(|_| bad(DecodeErrorKind::OutOfRange, "epoch seconds out of range"))?;
                    let secs = i64::try_from(ns.div_euclid(1_000_000_000))
                        .map_err(|_| bad(DecodeErrorKind::OutOfRange, "epoch seconds out of range"))?;
                    Timestamp { secs, nanos: ns.rem_euclid(1_000_000_000) as u32 }
                }
                _ => return Err(bad(DecodeErrorKind::WrongType, "expected a timestamp string or epoch seconds")),
            };
            write_time(leaf, col, t)
        }
        Leaf::Uuid => {
            let Kind::String { escaped: false } = span.kind else {
                return Err(bad(DecodeErrorKind::WrongType, "expected a UUID string"));
            };
            let bytes = parse_uuid(raw).ok_or(bad(DecodeErrorKind::InvalidValue, "expected a UUID"))?;
            col.push_fixed(&bytes);
            Ok(())
        }
        Leaf::Decimal { precision, scale, width } => {
            let text = scalar_text(msg, span, scratch)?;
            let v = parse_decimal(text, *precision, *scale).map_err(|e| match e {
                DecimalError::Syntax => bad(DecodeErrorKind::WrongType, "expected a decimal number"),
                DecimalError::Overflow => bad(DecodeErrorKind::OutOfRange, "too many digits for the Decimal precision"),
            })?;
            col.push_fixed(&v.to_le_bytes()[..*width]);
            Ok(())
        }
        Leaf::Enum { width, items } => {
            let v = match span.kind {
                Kind::String { .. } => {
                    let text = scalar_text(msg, span, scratch)?;
                    items
                        .iter()
                        .find(|(l, _)| **l == *text)
                        .map(|(_, v)| *v)
                        .ok_or(bad(DecodeErrorKind::InvalidValue, "not one of the Enum's labels"))?
                }
                Kind::Number => {
                    let n = parse_int(raw).ok_or(bad(DecodeErrorKind::WrongType, "expected an Enum label or value"))?;
                    items
                        .iter()
                        .find(|(_, v)| i128::from(*v) == n)
                        .map(|(_, v)| *v)
                        .ok_or(bad(DecodeErrorKind::InvalidValue, "not one of the Enum's values"))?
                }
                _ => return Err(bad(DecodeErrorKind::WrongType, "expected an Enum label")),
            };
            col.push_fixed(&v.to_le_bytes()[..*width]);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
