//! Converting one JSON value into one ClickHouse value, written in its Native/RowBinary
//! encoding (the two agree for every non-composite type).
//!
//! Scalars go straight into a [`Column`]; arrays, maps and tuples are written in their
//! RowBinary encoding into a scratch buffer (`native` rearranges them into columns when
//! a block is sent). The same code serves both through the [`Out`] trait, so the hot
//! path — scalar columns — is what it was: one push per value.

use crate::column::{write_varint, Column};
use crate::datetime::{parse_date, parse_timestamp, Timestamp};
use crate::error::DecodeErrorKind;
use crate::json::{members, unescape_into, Kind, Span};
use crate::path::key_equals;
use crate::scalar::{parse_decimal, parse_int, parse_uuid, DecimalError};
use crate::types::{decimal_width, ColumnType};
use crate::wide::{parse_wide_decimal, parse_wide_int, WideError};

/// Where converted values go: a column buffer, or a RowBinary byte buffer.
pub(super) trait Out {
    /// A fixed-width value.
    fn fixed(&mut self, bytes: &[u8]);
    /// A string value (length-prefixed).
    fn string(&mut self, bytes: &[u8]);
    /// A value already in its RowBinary encoding (a composite).
    fn encoded(&mut self, bytes: &[u8]);
}

impl Out for Column {
    #[inline]
    fn fixed(&mut self, bytes: &[u8]) {
        self.push_fixed(bytes);
    }
    #[inline]
    fn string(&mut self, bytes: &[u8]) {
        self.push_str(bytes);
    }
    fn encoded(&mut self, bytes: &[u8]) {
        self.push_encoded(bytes, false);
    }
}

impl Out for Vec<u8> {
    #[inline]
    fn fixed(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn string(&mut self, bytes: &[u8]) {
        write_varint(self, bytes.len() as u64);
        self.extend_from_slice(bytes);
    }
    fn encoded(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A value could not be converted; the decoder turns this into a `DecodeError`.
pub(super) struct Bad {
    pub(super) kind: DecodeErrorKind,
    pub(super) why: &'static str,
}

pub(super) fn bad(kind: DecodeErrorKind, why: &'static str) -> Bad {
    Bad { kind, why }
}

/// How to convert a JSON value for one (non-nullable, storage) type.
#[derive(Clone, Debug)]
pub(super) enum Leaf {
    Str,
    FixedStr(usize),
    Int {
        min: i128,
        max: i128,
        width: usize,
    },
    Wide {
        signed: bool,
        bits: u32,
    },
    Bool,
    F32,
    F64,
    Date,
    Date32,
    DateTime(EpochUnit),
    DateTime64(u8, EpochUnit),
    Uuid,
    Ipv4,
    Ipv6,
    Decimal {
        precision: u8,
        scale: u8,
        width: usize,
    },
    Enum {
        width: usize,
        items: Vec<(Box<[u8]>, i16)>,
    },
    /// Array, Map or Tuple: written as RowBinary into the decoder's nested buffer.
    Composite(Shape),
}

/// The structure of a composite value.
#[derive(Clone, Debug)]
pub(super) enum Shape {
    Leaf(Box<Leaf>),
    Nullable(Box<Shape>),
    Array(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    /// Elements with their names (for reading a named tuple from a JSON object).
    Tuple(Vec<(Option<Box<[u8]>>, Shape)>),
}

/// The unit of a number given for a time column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EpochUnit {
    /// Seconds since the epoch (the default).
    #[default]
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

impl EpochUnit {
    /// Decimal places that turn a number in this unit into nanoseconds.
    fn nanos_scale(self) -> u8 {
        match self {
            EpochUnit::Seconds => 9,
            EpochUnit::Millis => 6,
            EpochUnit::Micros => 3,
            EpochUnit::Nanos => 0,
        }
    }
}

impl Leaf {
    /// The same leaf reading numbers as `unit` (time columns only).
    pub(super) fn with_epoch_unit(self, unit: EpochUnit) -> Leaf {
        match self {
            Leaf::DateTime(_) => Leaf::DateTime(unit),
            Leaf::DateTime64(p, _) => Leaf::DateTime64(p, unit),
            other => other,
        }
    }

    pub(super) fn of(ty: &ColumnType) -> Leaf {
        let int = |min: i128, max: i128, width| Leaf::Int { min, max, width };
        match ty.non_nullable() {
            ColumnType::String => Leaf::Str,
            ColumnType::FixedString(n) => Leaf::FixedStr(*n),
            ColumnType::Int8 => int(i8::MIN.into(), i8::MAX.into(), 1),
            ColumnType::Int16 => int(i16::MIN.into(), i16::MAX.into(), 2),
            ColumnType::Int32 => int(i32::MIN.into(), i32::MAX.into(), 4),
            ColumnType::Int64 => int(i64::MIN.into(), i64::MAX.into(), 8),
            ColumnType::UInt8 => int(0, u8::MAX.into(), 1),
            ColumnType::UInt16 => int(0, u16::MAX.into(), 2),
            ColumnType::UInt32 => int(0, u32::MAX.into(), 4),
            ColumnType::UInt64 => int(0, u64::MAX.into(), 8),
            ColumnType::Int128 => Leaf::Wide { signed: true, bits: 128 },
            ColumnType::UInt128 => Leaf::Wide { signed: false, bits: 128 },
            ColumnType::Int256 => Leaf::Wide { signed: true, bits: 256 },
            ColumnType::UInt256 => Leaf::Wide { signed: false, bits: 256 },
            ColumnType::Bool => Leaf::Bool,
            ColumnType::Float32 => Leaf::F32,
            ColumnType::Float64 => Leaf::F64,
            ColumnType::Date => Leaf::Date,
            ColumnType::Date32 => Leaf::Date32,
            ColumnType::DateTime { .. } => Leaf::DateTime(EpochUnit::Seconds),
            ColumnType::DateTime64 { precision, .. } => Leaf::DateTime64(*precision, EpochUnit::Seconds),
            ColumnType::Uuid => Leaf::Uuid,
            ColumnType::Ipv4 => Leaf::Ipv4,
            ColumnType::Ipv6 => Leaf::Ipv6,
            ColumnType::Decimal { precision, scale } => {
                Leaf::Decimal { precision: *precision, scale: *scale, width: decimal_width(*precision) }
            }
            ColumnType::Enum8(items) | ColumnType::Enum16(items) => Leaf::Enum {
                width: if matches!(ty.non_nullable(), ColumnType::Enum8(_)) { 1 } else { 2 },
                items: items.iter().map(|(l, v)| (l.as_bytes().into(), *v)).collect(),
            },
            t @ (ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Tuple(_)) => Leaf::Composite(Shape::of(t)),
            ColumnType::Nullable(_) | ColumnType::LowCardinality(_) => {
                unreachable!("non_nullable() removed the wrappers")
            }
        }
    }
}

impl Shape {
    fn of(ty: &ColumnType) -> Shape {
        match ty.storage() {
            ColumnType::Nullable(inner) => Shape::Nullable(Box::new(Shape::of(inner))),
            ColumnType::Array(inner) => Shape::Array(Box::new(Shape::of(inner))),
            ColumnType::Map(k, v) => Shape::Map(Box::new(Shape::of(k)), Box::new(Shape::of(v))),
            ColumnType::Tuple(items) => Shape::Tuple(
                items.iter().map(|(name, t)| (name.as_ref().map(|n| n.as_bytes().into()), Shape::of(t))).collect(),
            ),
            other => Shape::Leaf(Box::new(Leaf::of(other))),
        }
    }
}

#[inline]
pub(super) fn write_int<O: Out>(leaf: &Leaf, col: &mut O, v: i128) -> Result<(), Bad> {
    match *leaf {
        Leaf::Int { min, max, width } => {
            if v < min || v > max {
                return Err(bad(DecodeErrorKind::OutOfRange, "integer out of range for the column type"));
            }
            col.fixed(&(v as u64).to_le_bytes()[..width]);
            Ok(())
        }
        Leaf::Wide { signed, bits } => {
            if !signed && v < 0 {
                return Err(bad(DecodeErrorKind::OutOfRange, "integer out of range for the column type"));
            }
            let mut bytes = [if v < 0 { 0xFF } else { 0 }; 32];
            bytes[..16].copy_from_slice(&v.to_le_bytes());
            col.fixed(&bytes[..bits as usize / 8]);
            Ok(())
        }
        _ => Err(bad(DecodeErrorKind::WrongType, "expected an integer column")),
    }
}

#[inline]
pub(super) fn write_time<O: Out>(leaf: &Leaf, col: &mut O, t: Timestamp) -> Result<(), Bad> {
    match *leaf {
        Leaf::DateTime(_) => {
            let secs = u32::try_from(t.secs)
                .map_err(|_| bad(DecodeErrorKind::OutOfRange, "timestamp outside DateTime range 1970..2106"))?;
            col.fixed(&secs.to_le_bytes());
        }
        Leaf::DateTime64(p, _) => {
            let ticks = t.ticks(p).ok_or(bad(DecodeErrorKind::OutOfRange, "timestamp outside DateTime64 range"))?;
            col.fixed(&ticks.to_le_bytes());
        }
        Leaf::Date => write_days(leaf, col, t.secs.div_euclid(86_400))?,
        Leaf::Date32 => write_days(leaf, col, t.secs.div_euclid(86_400))?,
        _ => return Err(bad(DecodeErrorKind::WrongType, "expected a time column")),
    }
    Ok(())
}

/// Days since 1970-01-01 of 1900-01-01 and 2299-12-31, Date32's range.
const DATE32_MIN: i64 = -25_567;
const DATE32_MAX: i64 = 120_529;

fn write_days<O: Out>(leaf: &Leaf, col: &mut O, days: i64) -> Result<(), Bad> {
    if matches!(leaf, Leaf::Date32) {
        if !(DATE32_MIN..=DATE32_MAX).contains(&days) {
            return Err(bad(DecodeErrorKind::OutOfRange, "date outside Date32 range 1900..2299"));
        }
        col.fixed(&(days as i32).to_le_bytes());
    } else {
        let days =
            u16::try_from(days).map_err(|_| bad(DecodeErrorKind::OutOfRange, "date outside Date range 1970..2149"))?;
        col.fixed(&days.to_le_bytes());
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

/// Converts the JSON value at `span` for `leaf` and writes it to `col`. `nested` is the
/// scratch buffer composite values are built in.
pub(super) fn write_json<O: Out>(
    leaf: &Leaf,
    col: &mut O,
    msg: &[u8],
    span: Span,
    scratch: &mut Vec<u8>,
    nested: &mut Vec<u8>,
) -> Result<(), Bad> {
    let raw = &msg[span.start as usize..span.end as usize];
    match leaf {
        Leaf::Str => {
            match span.kind {
                Kind::String { escaped: true } => {
                    scratch.clear();
                    unescape_into(raw, scratch).map_err(|why| bad(DecodeErrorKind::InvalidJson, why))?;
                    col.string(scratch);
                }
                // Strings, and the JSON text of numbers, booleans, objects and arrays.
                _ => col.string(raw),
            }
            Ok(())
        }
        Leaf::FixedStr(n) => {
            let text = match span.kind {
                Kind::String { .. } => scalar_text(msg, span, scratch)?,
                _ => return Err(bad(DecodeErrorKind::WrongType, "expected a string")),
            };
            if text.len() > *n {
                return Err(bad(DecodeErrorKind::OutOfRange, "string longer than the FixedString length"));
            }
            let mut padded = [0u8; 64];
            if *n <= padded.len() {
                padded[..text.len()].copy_from_slice(text);
                col.fixed(&padded[..*n]);
            } else {
                let mut long = text.to_vec();
                long.resize(*n, 0);
                col.fixed(&long);
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
        Leaf::Wide { signed, bits } => {
            let text = scalar_text(msg, span, scratch)?;
            let bytes = parse_wide_int(text, *signed, *bits).map_err(|e| match e {
                WideError::Syntax => bad(DecodeErrorKind::WrongType, "expected an integer"),
                WideError::Overflow => bad(DecodeErrorKind::OutOfRange, "integer out of range for the column type"),
            })?;
            col.fixed(&bytes[..*bits as usize / 8]);
            Ok(())
        }
        Leaf::Bool => {
            let v = match span.kind {
                Kind::True => 1u8,
                Kind::False => 0,
                Kind::Number | Kind::String { .. } => match scalar_text(msg, span, scratch)? {
                    b"1" | b"true" | b"True" | b"TRUE" => 1,
                    b"0" | b"false" | b"False" | b"FALSE" => 0,
                    _ => return Err(bad(DecodeErrorKind::InvalidValue, "expected true/false or 1/0")),
                },
                _ => return Err(bad(DecodeErrorKind::WrongType, "expected a boolean")),
            };
            col.fixed(&[v]);
            Ok(())
        }
        Leaf::F32 | Leaf::F64 => {
            let text = scalar_text(msg, span, scratch)?;
            let text = std::str::from_utf8(text).map_err(|_| bad(DecodeErrorKind::WrongType, "expected a number"))?;
            if matches!(leaf, Leaf::F32) {
                let v: f32 = text.parse().map_err(|_| bad(DecodeErrorKind::WrongType, "expected a number"))?;
                if !v.is_finite() {
                    return Err(bad(DecodeErrorKind::OutOfRange, "not a finite Float32"));
                }
                col.fixed(&v.to_le_bytes());
            } else {
                let v: f64 = text.parse().map_err(|_| bad(DecodeErrorKind::WrongType, "expected a number"))?;
                if !v.is_finite() {
                    return Err(bad(DecodeErrorKind::OutOfRange, "not a finite Float64"));
                }
                col.fixed(&v.to_le_bytes());
            }
            Ok(())
        }
        Leaf::Date | Leaf::Date32 => {
            let days = match span.kind {
                Kind::String { .. } => parse_date(scalar_text(msg, span, scratch)?)
                    .ok_or(bad(DecodeErrorKind::InvalidValue, "expected a date like 2026-11-21"))?,
                Kind::Number => parse_int(raw)
                    .and_then(|d| i64::try_from(d).ok())
                    .ok_or(bad(DecodeErrorKind::WrongType, "expected a whole number of days"))?,
                _ => return Err(bad(DecodeErrorKind::WrongType, "expected a date string or a day number")),
            };
            write_days(leaf, col, days)
        }
        Leaf::DateTime(unit) | Leaf::DateTime64(_, unit) => {
            let t = match span.kind {
                Kind::String { .. } => parse_timestamp(scalar_text(msg, span, scratch)?)
                    .ok_or(bad(DecodeErrorKind::InvalidValue, "expected an ISO-8601 timestamp"))?,
                Kind::Number => {
                    // Epoch time in the field's unit, possibly with a fraction: read
                    // exactly as nanoseconds.
                    let ns = parse_decimal(raw, 38, unit.nanos_scale())
                        .map_err(|_| bad(DecodeErrorKind::OutOfRange, "epoch time out of range"))?;
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
            col.fixed(&bytes);
            Ok(())
        }
        Leaf::Ipv4 => {
            let v = match span.kind {
                Kind::String { escaped: false } => std::str::from_utf8(raw)
                    .ok()
                    .and_then(|t| t.parse::<std::net::Ipv4Addr>().ok())
                    .map(u32::from)
                    .ok_or(bad(DecodeErrorKind::InvalidValue, "expected an IPv4 address like 192.0.2.1"))?,
                Kind::Number => parse_int(raw)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or(bad(DecodeErrorKind::OutOfRange, "IPv4 number out of range"))?,
                _ => return Err(bad(DecodeErrorKind::WrongType, "expected an IPv4 address string")),
            };
            col.fixed(&v.to_le_bytes());
            Ok(())
        }
        Leaf::Ipv6 => {
            let Kind::String { escaped: false } = span.kind else {
                return Err(bad(DecodeErrorKind::WrongType, "expected an IPv6 address string"));
            };
            let text = std::str::from_utf8(raw).map_err(|_| bad(DecodeErrorKind::InvalidValue, "not UTF-8"))?;
            let addr = match text.parse::<std::net::Ipv6Addr>() {
                Ok(a) => a,
                // An IPv4 address is stored IPv4-mapped, as ClickHouse does.
                Err(_) => text
                    .parse::<std::net::Ipv4Addr>()
                    .map(|v4| v4.to_ipv6_mapped())
                    .map_err(|_| bad(DecodeErrorKind::InvalidValue, "expected an IPv6 (or IPv4) address"))?,
            };
            col.fixed(&addr.octets());
            Ok(())
        }
        Leaf::Decimal { precision, scale, width } => {
            let text = scalar_text(msg, span, scratch)?;
            let err = |e| match e {
                DecimalError::Syntax => bad(DecodeErrorKind::WrongType, "expected a decimal number"),
                DecimalError::Overflow => bad(DecodeErrorKind::OutOfRange, "too many digits for the Decimal precision"),
            };
            if *width == 32 {
                col.fixed(&parse_wide_decimal(text, *precision, *scale).map_err(err)?);
            } else {
                let v = parse_decimal(text, *precision, *scale).map_err(err)?;
                col.fixed(&v.to_le_bytes()[..*width]);
            }
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
            col.fixed(&v.to_le_bytes()[..*width]);
            Ok(())
        }
        Leaf::Composite(shape) => {
            nested.clear();
            write_shape(shape, nested, msg, span, scratch)?;
            // The RowBinary bytes are the stored value; an encoded string would add a length.
            col.encoded(nested);
            Ok(())
        }
    }
}

/// Writes a composite value's RowBinary encoding.
fn write_shape(shape: &Shape, out: &mut Vec<u8>, msg: &[u8], span: Span, scratch: &mut Vec<u8>) -> Result<(), Bad> {
    match shape {
        Shape::Leaf(leaf) => {
            if span.kind == Kind::Null {
                write_default(shape, out);
                return Ok(());
            }
            // Nested composites are written in place (no extra scratch needed).
            match &**leaf {
                Leaf::Composite(inner) => write_shape(inner, out, msg, span, scratch),
                leaf => {
                    let mut unused = Vec::new();
                    write_json(leaf, out, msg, span, scratch, &mut unused)
                }
            }
        }
        Shape::Nullable(inner) => {
            if span.kind == Kind::Null {
                out.push(1);
                Ok(())
            } else {
                out.push(0);
                write_shape(inner, out, msg, span, scratch)
            }
        }
        Shape::Array(inner) => match span.kind {
            Kind::Array => {
                write_varint(out, members(msg, span).count() as u64);
                for (_, element) in members(msg, span) {
                    write_shape(inner, out, msg, element, scratch)?;
                }
                Ok(())
            }
            Kind::Null => {
                out.push(0);
                Ok(())
            }
            _ => Err(bad(DecodeErrorKind::WrongType, "expected an array")),
        },
        Shape::Map(k, v) => match span.kind {
            Kind::Object => {
                write_varint(out, members(msg, span).count() as u64);
                for (key, value) in members(msg, span) {
                    write_shape(k, out, msg, key.expect("object members have keys"), scratch)?;
                    write_shape(v, out, msg, value, scratch)?;
                }
                Ok(())
            }
            Kind::Null => {
                out.push(0);
                Ok(())
            }
            _ => Err(bad(DecodeErrorKind::WrongType, "expected an object")),
        },
        Shape::Tuple(items) => match span.kind {
            Kind::Array => {
                let mut given = members(msg, span);
                for (_, item) in items {
                    match given.next() {
                        Some((_, value)) => write_shape(item, out, msg, value, scratch)?,
                        None => write_default(item, out),
                    }
                }
                if given.next().is_some() {
                    return Err(bad(DecodeErrorKind::InvalidValue, "more elements than the Tuple has"));
                }
                Ok(())
            }
            Kind::Object => {
                for (name, item) in items {
                    let Some(name) = name else {
                        return Err(bad(DecodeErrorKind::WrongType, "an unnamed Tuple needs a JSON array"));
                    };
                    let value =
                        members(msg, span).filter(|(k, _)| k.is_some_and(|k| key_equals(msg, k, name, scratch))).last();
                    match value {
                        Some((_, v)) => write_shape(item, out, msg, v, scratch)?,
                        None => write_default(item, out),
                    }
                }
                Ok(())
            }
            _ => Err(bad(DecodeErrorKind::WrongType, "expected an array or an object for a Tuple")),
        },
    }
}

/// Writes the RowBinary encoding of a shape's default value (what ClickHouse stores
/// for a missing element): zeros, empty strings and collections, NULL.
fn write_default(shape: &Shape, out: &mut Vec<u8>) {
    match shape {
        Shape::Nullable(_) => out.push(1),
        Shape::Array(_) | Shape::Map(..) => out.push(0),
        Shape::Tuple(items) => items.iter().for_each(|(_, s)| write_default(s, out)),
        Shape::Leaf(leaf) => match &**leaf {
            Leaf::Str => out.push(0),
            Leaf::Composite(inner) => write_default(inner, out),
            leaf => out.resize(out.len() + leaf_width(leaf), 0),
        },
    }
}

fn leaf_width(leaf: &Leaf) -> usize {
    match leaf {
        Leaf::Str | Leaf::Composite(_) => 0,
        Leaf::FixedStr(n) => *n,
        Leaf::Int { width, .. } | Leaf::Decimal { width, .. } | Leaf::Enum { width, .. } => *width,
        Leaf::Wide { bits, .. } => *bits as usize / 8,
        Leaf::Bool => 1,
        Leaf::Date => 2,
        Leaf::F32 | Leaf::Date32 | Leaf::DateTime(_) | Leaf::Ipv4 => 4,
        Leaf::F64 | Leaf::DateTime64(..) => 8,
        Leaf::Uuid | Leaf::Ipv6 => 16,
    }
}
