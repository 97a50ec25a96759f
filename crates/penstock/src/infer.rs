//! `penstock schema infer`: a schema from a sample of messages.
//!
//! Every message of the sample is walked (with the codec's validating scanner, no tree),
//! and each field — nested objects flattened into paths like `user.id` — collects what
//! was seen: how often present or null, the JSON kinds, integer range, decimal digits,
//! and for strings whether all are UUIDs, timestamps or dates and how many distinct
//! values there are. The choice per field is a pure function of those observations,
//! made for the target server's version, and comes with a sentence saying why.

use penstock_codec::datetime::{parse_date, parse_timestamp};
use penstock_codec::decode::json::scan::{members, scan_value, unescape_into, Kind, Span};
use penstock_codec::scalar::parse_uuid;
use penstock_codec::ColumnType;
use std::collections::{BTreeSet, HashMap};

/// Objects nested deeper than this are kept as JSON text.
const MAX_FLATTEN_DEPTH: usize = 3;
/// Distinct string values remembered per field (beyond: "many").
const DISTINCT_LIMIT: usize = 1000;

/// What was seen of one field.
#[derive(Debug, Default, Clone)]
struct Seen {
    present: usize,
    nulls: usize,
    bools: usize,
    ints: usize,
    floats: usize,
    strings: usize,
    objects: usize,
    arrays: usize,
    min: Option<i128>,
    max: Option<i128>,
    int_digits: usize,
    frac_digits: usize,
    uuids: usize,
    timestamps: usize,
    timestamps_with_fraction: usize,
    dates: usize,
    distinct: BTreeSet<Vec<u8>>,
    too_many_distinct: bool,
    /// Element observations, for arrays.
    elements: Option<Box<Seen>>,
}

/// One inferred column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferredField {
    /// Column name.
    pub column: String,
    /// JSON path in the message (a top-level key, or `a.b` for nested fields).
    pub path: String,
    /// Chosen type.
    pub ty: ColumnType,
    /// Present and non-null in every sampled message.
    pub required: bool,
    /// Store the value's JSON text (mixed shapes, deep objects).
    pub raw_json: bool,
    /// Why this type.
    pub why: String,
}

/// The result of inference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// Columns, in first-seen order.
    pub fields: Vec<InferredField>,
    /// Messages read.
    pub messages: usize,
    /// Messages that were not JSON objects (left out).
    pub not_objects: usize,
}

/// What the target server offers (types newer than it are avoided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// (major, minor) of the server version; (0, 0) when unknown (portable choices).
    pub version: (u32, u32),
}

impl Target {
    fn has(&self, since: (u32, u32)) -> bool {
        self.version >= since
    }
}

/// Infers columns from `messages` for a server `target`.
pub fn infer(messages: &[Vec<u8>], target: Target) -> Inferred {
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut not_objects = 0;
    let mut scratch = Vec::new();
    for msg in messages {
        let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
        match scan_value(msg, 64) {
            Ok(span) if span.kind == Kind::Object => {
                walk_object(msg, span, "", 0, &mut order, &mut seen, &mut scratch);
            }
            _ => not_objects += 1,
        }
    }
    let total = messages.len() - not_objects;
    let fields = order
        .iter()
        .map(|path| {
            let s = &seen[path];
            let (ty, raw_json, why) = choose(s, total, target);
            let required = s.present == total && s.nulls == 0 && total > 0;
            InferredField { column: path.replace('.', "_"), path: path.clone(), ty, required, raw_json, why }
        })
        .collect();
    Inferred { fields, messages: messages.len(), not_objects }
}

fn key_text(msg: &[u8], key: Span, scratch: &mut Vec<u8>) -> String {
    let raw = &msg[key.start as usize..key.end as usize];
    match key.kind {
        Kind::String { escaped: true } => {
            scratch.clear();
            if unescape_into(raw, scratch).is_err() {
                return String::from_utf8_lossy(raw).into_owned();
            }
            String::from_utf8_lossy(scratch).into_owned()
        }
        _ => String::from_utf8_lossy(raw).into_owned(),
    }
}

fn walk_object(
    msg: &[u8],
    span: Span,
    prefix: &str,
    depth: usize,
    order: &mut Vec<String>,
    seen: &mut HashMap<String, Seen>,
    scratch: &mut Vec<u8>,
) {
    for (key, value) in members(msg, span) {
        let Some(key) = key else { continue };
        let name = key_text(msg, key, scratch);
        let path = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
        // Objects become paths, unless the field was seen as a plain value before (then
        // the object is one more shape of that field, kept as JSON text).
        let flatten = value.kind == Kind::Object
            && depth + 1 < MAX_FLATTEN_DEPTH
            && members(msg, value).next().is_some()
            && !seen.contains_key(&path);
        if flatten {
            walk_object(msg, value, &path, depth + 1, order, seen, scratch);
            continue;
        }
        if !seen.contains_key(&path) {
            order.push(path.clone());
        }
        observe(seen.entry(path).or_default(), msg, value, scratch);
    }
}

fn digits(text: &[u8]) -> (usize, usize) {
    let text = text.strip_prefix(b"-").unwrap_or(text);
    let mantissa = text.split(|b| *b == b'e' || *b == b'E').next().unwrap_or(text);
    match mantissa.iter().position(|b| *b == b'.') {
        Some(dot) => (dot, mantissa.len() - dot - 1),
        None => (mantissa.len(), 0),
    }
}

fn observe(s: &mut Seen, msg: &[u8], value: Span, scratch: &mut Vec<u8>) {
    s.present += 1;
    let raw = &msg[value.start as usize..value.end as usize];
    match value.kind {
        Kind::Null => s.nulls += 1,
        Kind::True | Kind::False => s.bools += 1,
        Kind::Number => {
            let is_int = !raw.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
            let (int_digits, frac_digits) = digits(raw);
            s.int_digits = s.int_digits.max(int_digits);
            match penstock_codec::scalar::parse_int(raw).filter(|_| is_int) {
                Some(v) => {
                    s.ints += 1;
                    s.min = Some(s.min.map_or(v, |m| m.min(v)));
                    s.max = Some(s.max.map_or(v, |m| m.max(v)));
                }
                None => {
                    s.floats += 1;
                    s.frac_digits = s.frac_digits.max(frac_digits);
                }
            }
        }
        Kind::String { .. } => {
            s.strings += 1;
            let text: &[u8] = match value.kind {
                Kind::String { escaped: true } => {
                    scratch.clear();
                    let _ = unescape_into(raw, scratch);
                    scratch
                }
                _ => raw,
            };
            if parse_uuid(text).is_some() {
                s.uuids += 1;
            } else if text.len() >= 19 && parse_timestamp(text).is_some() {
                s.timestamps += 1;
                if text.len() > 19 && text[19] == b'.' {
                    s.timestamps_with_fraction += 1;
                }
            } else if text.len() == 10 && parse_date(text).is_some() {
                s.dates += 1;
            }
            if !s.too_many_distinct {
                s.distinct.insert(text.to_vec());
                if s.distinct.len() > DISTINCT_LIMIT {
                    s.too_many_distinct = true;
                    s.distinct.clear();
                }
            }
        }
        Kind::Object => s.objects += 1,
        Kind::Array => {
            s.arrays += 1;
            let elements = s.elements.get_or_insert_with(Default::default);
            for (_, element) in members(msg, value) {
                observe(elements, msg, element, scratch);
            }
        }
    }
}

/// The smallest integer type that holds twice the range seen.
fn integer_type(min: i128, max: i128) -> ColumnType {
    let (lo, hi) = (min.min(0).saturating_mul(2), max.saturating_mul(2));
    if lo >= 0 {
        match hi {
            ..=0xFF => ColumnType::UInt8,
            0x100..=0xFFFF => ColumnType::UInt16,
            0x1_0000..=0xFFFF_FFFF => ColumnType::UInt32,
            _ => ColumnType::UInt64,
        }
    } else if lo >= i128::from(i16::MIN) && hi <= i128::from(i16::MAX) {
        ColumnType::Int16
    } else if lo >= i128::from(i32::MIN) && hi <= i128::from(i32::MAX) {
        ColumnType::Int32
    } else {
        ColumnType::Int64
    }
}

fn nullable(t: ColumnType) -> ColumnType {
    match t {
        ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Tuple(_) | ColumnType::Nullable(_) => t,
        ColumnType::LowCardinality(inner) => ColumnType::LowCardinality(Box::new(nullable(*inner))),
        t => ColumnType::Nullable(Box::new(t)),
    }
}

/// The type for one field, whether to keep raw JSON, and why.
fn choose(s: &Seen, total: usize, target: Target) -> (ColumnType, bool, String) {
    let values = s.present - s.nulls;
    let missing = total.saturating_sub(s.present) + s.nulls;
    let kinds = [s.bools, s.ints + s.floats, s.strings, s.objects, s.arrays].iter().filter(|k| **k > 0).count();
    let (ty, raw_json, mut why) = if values == 0 {
        (ColumnType::String, false, "only nulls seen: String until values arrive".to_string())
    } else if kinds > 1 {
        let what = [
            (s.bools, "booleans"),
            (s.ints + s.floats, "numbers"),
            (s.strings, "strings"),
            (s.objects, "objects"),
            (s.arrays, "arrays"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect::<Vec<_>>()
        .join(", ");
        (ColumnType::String, true, format!("mixed shapes ({what}): String keeps each value's JSON text"))
    } else if s.bools > 0 {
        if target.has((21, 12)) {
            (ColumnType::Bool, false, format!("{} booleans", s.bools))
        } else {
            (ColumnType::UInt8, false, format!("{} booleans: UInt8 (1/0), this server has no Bool", s.bools))
        }
    } else if s.ints > 0 && s.floats == 0 {
        let (min, max) = (s.min.unwrap_or(0), s.max.unwrap_or(0));
        let t = integer_type(min, max);
        let why = format!("integers {min}..{max}: {t} holds twice that range");
        (t, false, why)
    } else if s.ints + s.floats > 0 {
        if s.frac_digits <= 4 && s.int_digits <= 18 {
            let scale = s.frac_digits.max(1);
            let precision = (s.int_digits + scale + 3).clamp(9, 38);
            let t = ColumnType::Decimal { precision: precision as u8, scale: scale as u8 };
            let why = format!(
                "numbers with up to {} fraction digits and {} integer digits: {t}, exact (no float rounding)",
                s.frac_digits, s.int_digits
            );
            (t, false, why)
        } else {
            (ColumnType::Float64, false, format!("numbers with up to {} fraction digits: Float64", s.frac_digits))
        }
    } else if s.strings > 0 {
        if s.uuids == s.strings {
            (ColumnType::Uuid, false, format!("{} UUIDs", s.uuids))
        } else if s.timestamps == s.strings {
            let utc = Some("UTC".to_string());
            if s.timestamps_with_fraction > 0 && target.has((20, 1)) {
                (
                    ColumnType::DateTime64 { precision: 3, tz: utc },
                    false,
                    "timestamps with fractions of a second".into(),
                )
            } else if s.timestamps_with_fraction > 0 {
                (
                    ColumnType::DateTime { tz: utc },
                    false,
                    "timestamps with fractions of a second: DateTime (seconds) — this server has no DateTime64".into(),
                )
            } else {
                (ColumnType::DateTime { tz: utc }, false, "timestamps".into())
            }
        } else if s.dates == s.strings {
            (ColumnType::Date, false, "dates".into())
        } else if !s.too_many_distinct && s.distinct.len() <= 256 && s.distinct.len() * 10 <= s.strings.max(1) {
            let n = s.distinct.len();
            if target.has((19, 1)) {
                let t = ColumnType::LowCardinality(Box::new(ColumnType::String));
                (t, false, format!("strings with {n} distinct values in {} messages: LowCardinality", s.strings))
            } else {
                (
                    ColumnType::String,
                    false,
                    format!(
                        "strings with {n} distinct values: LowCardinality(String) on ClickHouse 19.1+; String here"
                    ),
                )
            }
        } else {
            let distinct =
                if s.too_many_distinct { format!("over {DISTINCT_LIMIT}") } else { s.distinct.len().to_string() };
            (ColumnType::String, false, format!("strings ({distinct} distinct)"))
        }
    } else if s.arrays > 0 {
        match s.elements.as_deref() {
            Some(e) if e.objects == 0 && e.arrays == 0 && e.present > e.nulls => {
                let (inner, raw, _) = choose(e, e.present, target);
                if raw {
                    (ColumnType::String, true, "arrays of mixed elements: JSON text".into())
                } else {
                    let inner = if e.nulls > 0 { nullable(inner) } else { inner };
                    let t = ColumnType::Array(Box::new(inner));
                    let why = format!("arrays of {} elements in all: {t}", e.present);
                    (t, false, why)
                }
            }
            Some(e) if e.present == 0 => {
                (ColumnType::Array(Box::new(ColumnType::String)), false, "only empty arrays: Array(String)".into())
            }
            _ => (ColumnType::String, true, "arrays of objects or arrays: JSON text".into()),
        }
    } else {
        (ColumnType::String, true, "objects nested deeper than 3 levels or with varying keys: JSON text".into())
    };
    let ty = if missing > 0 && !matches!(ty, ColumnType::Array(_)) {
        why.push_str(&format!("; missing or null in {missing} of {total} messages, so Nullable"));
        nullable(ty)
    } else {
        ty
    };
    (ty, raw_json, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(msgs: &[&str], version: (u32, u32)) -> Inferred {
        let msgs: Vec<Vec<u8>> = msgs.iter().map(|m| m.as_bytes().to_vec()).collect();
        infer(&msgs, Target { version })
    }

    fn ty(i: &Inferred, column: &str) -> String {
        i.fields.iter().find(|f| f.column == column).unwrap_or_else(|| panic!("no {column}: {i:?}")).ty.to_string()
    }

    #[test]
    fn types_from_values() {
        let msgs: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    r#"{{"id":"3c7d1004-4dce-48d2-9e13-8f3288aa{i:04}","n":{i},"neg":-{i},"amount":{i}.5{},"f":1.123456{i},"region":"r{}","t":"2026-11-21T05:10:{:02}.123Z","d":"2026-11-{:02}","ok":true,"tags":["a","b"],"user":{{"id":{i},"name":"u{i}"}},"maybe":{}}}"#,
                    i % 10,
                    i % 3,
                    i % 60,
                    i % 28 + 1,
                    if i % 2 == 0 { "null".to_string() } else { i.to_string() }
                )
            })
            .collect();
        let refs: Vec<&str> = msgs.iter().map(String::as_str).collect();
        let modern = run(&refs, (26, 9));
        assert_eq!(ty(&modern, "id"), "UUID");
        assert_eq!(ty(&modern, "n"), "UInt8");
        assert_eq!(ty(&modern, "neg"), "Int16");
        assert_eq!(ty(&modern, "amount"), "Decimal(9, 2)");
        assert_eq!(ty(&modern, "f"), "Float64");
        assert_eq!(ty(&modern, "region"), "LowCardinality(String)");
        assert_eq!(ty(&modern, "t"), "DateTime64(3, 'UTC')");
        assert_eq!(ty(&modern, "d"), "Date");
        assert_eq!(ty(&modern, "ok"), "Bool");
        assert_eq!(ty(&modern, "tags"), "Array(LowCardinality(String))");
        assert_eq!(ty(&modern, "user_id"), "UInt8");
        assert_eq!(modern.fields.iter().find(|f| f.column == "user_id").unwrap().path, "user.id");
        assert_eq!(ty(&modern, "maybe"), "Nullable(UInt8)");
        assert!(modern.fields.iter().find(|f| f.column == "id").unwrap().required);
        assert!(!modern.fields.iter().find(|f| f.column == "maybe").unwrap().required);
        // The same sample for ClickHouse 18.16: no Bool, DateTime64 or LowCardinality.
        let old = run(&refs, (18, 16));
        assert_eq!(ty(&old, "ok"), "UInt8");
        assert_eq!(ty(&old, "t"), "DateTime('UTC')");
        assert_eq!(ty(&old, "region"), "String");
        assert!(old.fields.iter().find(|f| f.column == "region").unwrap().why.contains("LowCardinality"));
    }

    #[test]
    fn mixed_shapes_are_explained() {
        let i = run(&[r#"{"v":1,"w":[1,"x"]}"#, r#"{"v":"one","w":[]}"#, "[1]", r#"{"v":{"a":1}}"#], (26, 9));
        assert_eq!(i.not_objects, 1);
        let v = i.fields.iter().find(|f| f.column == "v").unwrap();
        assert!(v.raw_json && v.ty == ColumnType::String, "{v:?}");
        assert!(v.why.contains("mixed shapes") && v.why.contains("1 numbers, 1 strings"), "{}", v.why);
        let w = i.fields.iter().find(|f| f.column == "w").unwrap();
        assert!(w.raw_json, "{w:?}");
    }
}
