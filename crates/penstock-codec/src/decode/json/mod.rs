//! Decoding JSON messages straight into column buffers, against a declared schema.
//!
//! [`JsonDecoder`] is built once per pipeline from [`FieldSpec`]s (validated here: a
//! virtual column must have a type it can fill). [`JsonDecoder::decode`] scans one
//! message and appends exactly one row to a [`Block`], or appends nothing and returns a
//! [`DecodeError`] naming the field and what was wrong. It allocates nothing per
//! message once its scratch buffers have grown.

pub mod path;
pub mod scan;
mod value;

use crate::column::{Block, Column};
use crate::datetime::Timestamp;
use crate::decode::write::{write_int, write_time, Leaf, Out};
use crate::decode::{DecodeLimits, FieldOptions, FieldSpec, MessageMeta, OnError, ValueSource};
use crate::error::{DecodeError, DecodeErrorKind, SchemaError};
use crate::types::ColumnType;
use path::{JsonPath, PathStep};
use scan::{scan_object, KeyIndex, Kind, Span};
use value::write_json;

#[derive(Clone, Copy, Debug)]
enum Src {
    Slot(usize),
    Rest,
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Now,
    Computed,
}

#[derive(Clone, Debug)]
struct Compiled {
    spec: FieldSpec,
    leaf: Leaf,
    src: Src,
    nullable: bool,
    /// Steps below the top-level key (JSON paths).
    steps: Vec<PathStep>,
    /// The encoded custom default value.
    default: Option<Vec<u8>>,
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
    /// A message that is a JSON array of objects becomes one row per element.
    arrays_as_rows: bool,
}

impl JsonDecoder {
    /// Compiles a schema. Fails when a field's source cannot fill its type, or when
    /// `on_error: null` is set on a non-Nullable column.
    pub fn new(fields: Vec<FieldSpec>, limits: DecodeLimits) -> Result<Self, SchemaError> {
        let mut keys: Vec<String> = Vec::new();
        let mut compiled = Vec::with_capacity(fields.len());
        for spec in fields {
            let leaf = Leaf::of(&spec.ty).with_epoch_unit(spec.options.epoch_unit);
            let nullable = spec.ty.is_nullable();
            let schema_err = |reason: String| SchemaError { column: spec.column.clone(), reason };
            if (spec.options.raw_json || spec.source == ValueSource::Rest) && !matches!(leaf, Leaf::Str) {
                return Err(schema_err(format!("a raw JSON value needs a String column, not {}", spec.ty)));
            }
            if spec.on_error == OnError::Null && !nullable {
                return Err(schema_err(format!(
                    "`on_error: null` needs a Nullable column, but the type is {}",
                    spec.ty
                )));
            }
            let ok = matches!(
                (&spec.source, &leaf),
                (ValueSource::Json(_) | ValueSource::Path(_) | ValueSource::Rest, _)
                    | (ValueSource::Topic | ValueSource::Key, Leaf::Str)
                    | (ValueSource::Partition | ValueSource::Offset, Leaf::Int { .. } | Leaf::Wide { .. })
                    | (
                        ValueSource::Timestamp,
                        Leaf::DateTime(_) | Leaf::DateTime64(..) | Leaf::Int { .. } | Leaf::Wide { .. }
                    )
                    | (ValueSource::Now, Leaf::DateTime(_) | Leaf::DateTime64(..))
                    | (ValueSource::Computed, _)
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
            let mut slot_of = |key: &String| match keys.iter().position(|k| k == key) {
                Some(i) => Src::Slot(i),
                None => {
                    keys.push(key.clone());
                    Src::Slot(keys.len() - 1)
                }
            };
            let mut steps = Vec::new();
            let src = match &spec.source {
                ValueSource::Json(key) => slot_of(key),
                ValueSource::Path(path) => {
                    steps.clone_from(&path.steps);
                    slot_of(&path.key)
                }
                ValueSource::Rest => Src::Rest,
                ValueSource::Topic => Src::Topic,
                ValueSource::Partition => Src::Partition,
                ValueSource::Offset => Src::Offset,
                ValueSource::Timestamp => Src::Timestamp,
                ValueSource::Key => Src::Key,
                ValueSource::Now => Src::Now,
                ValueSource::Computed => Src::Computed,
            };
            let default = match &spec.options.default {
                None => None,
                Some(text) => Some(encode_default(&spec, &leaf, text).map_err(schema_err)?),
            };
            compiled.push(Compiled { spec, leaf, src, nullable, steps, default });
        }
        let slots = vec![None; keys.len()];
        Ok(JsonDecoder {
            fields: compiled,
            index: KeyIndex::new(&keys),
            slots,
            scratch: Vec::new(),
            nested: Vec::new(),
            limits,
            arrays_as_rows: false,
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

    /// Makes a message that is a JSON array of objects decode into one row per element
    /// (see [`decode_rows`](Self::decode_rows)).
    pub fn with_arrays_as_rows(mut self, on: bool) -> Self {
        self.arrays_as_rows = on;
        self
    }

    /// Decodes one message into rows of `block`: one for a JSON object, or — with
    /// [`with_arrays_as_rows`](Self::with_arrays_as_rows) — one per element of a JSON
    /// array of objects. All or nothing: when any element fails, no row of the message
    /// stays and the error names the element. Returns the number of rows added.
    pub fn decode_rows(&mut self, msg: &[u8], meta: &MessageMeta<'_>, block: &mut Block) -> Result<usize, DecodeError> {
        if !self.arrays_as_rows {
            return self.decode(msg, meta, block).map(|()| 1);
        }
        let body = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
        let first = body.iter().find(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'));
        if first != Some(&b'[') || msg.len() > self.limits.max_message_bytes {
            return self.decode(msg, meta, block).map(|()| 1);
        }
        if let Err(e) = std::str::from_utf8(body) {
            let why = format!("message is not valid UTF-8 at byte {}", e.valid_up_to());
            return Err(DecodeError::new(DecodeErrorKind::NotUtf8, None, why));
        }
        let span = scan::scan_value(body, self.limits.max_depth).map_err(|e| {
            let kind =
                if e.what.starts_with("nesting") { DecodeErrorKind::TooDeep } else { DecodeErrorKind::InvalidJson };
            DecodeError::new(kind, None, format!("invalid JSON at byte {}: {}", e.at, e.what))
        })?;
        let before = block.rows();
        for (i, (_, element)) in scan::members(body, span).enumerate() {
            let element_text = &body[element.start as usize..element.end as usize];
            let result = if element.kind == Kind::Object {
                self.decode(element_text, meta, block)
            } else {
                Err(DecodeError::new(DecodeErrorKind::InvalidJson, None, "not a JSON object".into()))
            };
            if let Err(mut e) = result {
                block.truncate(before);
                e.message = format!("array element {i}: {}", e.message);
                return Err(e);
            }
        }
        Ok(block.rows() - before)
    }

    /// Top-level fields of `msg` the schema does not know, each with a column spec
    /// inferred from its value (Nullable, since earlier rows lack it): integers Int64,
    /// other numbers Float64, booleans UInt8, strings String, objects and arrays their
    /// JSON text. Null values tell nothing and are skipped. Empty for anything but a
    /// JSON object. Costs a second scan of the message: only for `unknown_fields: add`.
    pub fn unknown_fields(&mut self, msg: &[u8]) -> Vec<FieldSpec> {
        let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
        let Ok(span) = scan::scan_value(msg, self.limits.max_depth) else { return Vec::new() };
        if span.kind != Kind::Object {
            return Vec::new();
        }
        let mut out: Vec<FieldSpec> = Vec::new();
        for (key, value) in scan::members(msg, span) {
            let Some(key) = key else { continue };
            let raw = &msg[key.start as usize..key.end as usize];
            let name = match key.kind {
                Kind::String { escaped: true } => {
                    self.scratch.clear();
                    if scan::unescape_into(raw, &mut self.scratch).is_err() {
                        continue;
                    }
                    String::from_utf8_lossy(&self.scratch).into_owned()
                }
                _ => String::from_utf8_lossy(raw).into_owned(),
            };
            if self.index.position(name.as_bytes()).is_some() || out.iter().any(|f| f.column == name) {
                continue;
            }
            let text = &msg[value.start as usize..value.end as usize];
            let (ty, raw_json) = match value.kind {
                Kind::Null => continue,
                Kind::True | Kind::False => (ColumnType::UInt8, false),
                Kind::Number if !text.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) => (ColumnType::Int64, false),
                Kind::Number => (ColumnType::Float64, false),
                Kind::String { .. } => (ColumnType::String, false),
                Kind::Object | Kind::Array => (ColumnType::String, true),
            };
            out.push(FieldSpec {
                on_error: OnError::Null,
                options: FieldOptions { raw_json, ..Default::default() },
                ..FieldSpec::from_key(name, ColumnType::Nullable(Box::new(ty)))
            });
        }
        out
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
            Src::Slot(slot) => {
                let span = match self.slots[slot] {
                    Some(span) if !f.steps.is_empty() => JsonPath::resolve(&f.steps, msg, span, &mut self.scratch),
                    other => other,
                };
                match span {
                    None | Some(Span { kind: Kind::Null, .. }) => return missing(f, col, span.is_some()),
                    Some(span) if f.spec.options.raw_json => {
                        col.push_str(&msg[value_start(span)..value_end(span)]);
                        Ok(())
                    }
                    Some(span) => write_json(&f.leaf, col, msg, span, &mut self.scratch, &mut self.nested),
                }
            }
            Src::Rest => {
                rest_of(msg, &self.index, &mut self.scratch, &mut self.nested);
                col.push_str(&self.nested);
                Ok(())
            }
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
            Src::Computed => {
                col.push_default();
                Ok(())
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(b) => match f.spec.on_error {
                OnError::Null => {
                    col.push_null();
                    Ok(())
                }
                OnError::Default => {
                    match &f.default {
                        Some(d) => col.push_encoded(d, false),
                        None => col.push_default(),
                    }
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
    if let Some(d) = &f.default {
        col.push_encoded(d, false);
    } else if f.nullable {
        col.push_null();
    } else {
        col.push_default();
    }
    Ok(())
}

/// Encodes a field's `default` (JSON text) once, when the schema is compiled.
fn encode_default(spec: &FieldSpec, leaf: &Leaf, text: &str) -> Result<Vec<u8>, String> {
    let msg = format!("{{\"v\":{text}}}");
    let mut slots = [None];
    scan_object(msg.as_bytes(), &KeyIndex::new(["v"]), &mut slots, &mut Vec::new(), 64)
        .map_err(|e| format!("`default: {text}` is not a JSON value: {}", e.what))?;
    let span = slots[0].ok_or("`default` is empty")?;
    if span.kind == Kind::Null {
        return Err("`default: null` is what a Nullable column stores anyway; leave `default` out".into());
    }
    let mut out = Vec::new();
    if spec.options.raw_json {
        Out::string(&mut out, &msg.as_bytes()[value_start(span)..value_end(span)]);
        return Ok(out);
    }
    write_json(leaf, &mut out, msg.as_bytes(), span, &mut Vec::new(), &mut Vec::new())
        .map_err(|b| format!("`default: {text}` does not fit {}: {}", spec.ty, b.why))?;
    Ok(out)
}

/// Where a value's JSON text starts and ends (strings with their quotes).
fn value_start(s: Span) -> usize {
    match s.kind {
        Kind::String { .. } => s.start as usize - 1,
        _ => s.start as usize,
    }
}

fn value_end(s: Span) -> usize {
    match s.kind {
        Kind::String { .. } => s.end as usize + 1,
        _ => s.end as usize,
    }
}

/// Writes into `out` a JSON object of the message's top-level members whose keys the
/// schema does not use (an empty object when there are none).
fn rest_of(msg: &[u8], index: &KeyIndex, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    out.clear();
    out.push(b'{');
    let start = msg.iter().position(|b| *b == b'{').unwrap_or(0);
    let end = msg.iter().rposition(|b| *b == b'}').map_or(msg.len(), |e| e + 1);
    let whole = Span { start: start as u32, end: end as u32, kind: Kind::Object };
    for (key, value) in scan::members(msg, whole) {
        let Some(key) = key else { continue };
        let raw = &msg[key.start as usize..key.end as usize];
        let known = match key.kind {
            Kind::String { escaped: true } => {
                scratch.clear();
                scan::unescape_into(raw, scratch).is_ok() && index.position(scratch).is_some()
            }
            _ => index.position(raw).is_some(),
        };
        if known {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(&msg[value_start(key)..value_end(key)]);
        out.push(b':');
        out.extend_from_slice(&msg[value_start(value)..value_end(value)]);
    }
    out.push(b'}');
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
