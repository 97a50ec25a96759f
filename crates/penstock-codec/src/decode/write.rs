//! Format-neutral column writers: a value of any wire format, converted for one
//! ClickHouse column type and written in its Native/RowBinary encoding (the two agree
//! for every non-composite type).
//!
//! A decoder (JSON today; Avro, Protobuf and CSV are other decoders over the same
//! writers) looks at what its format gives — text, a number's decimal text, a boolean,
//! an integer, a point in time — and calls the matching `write_*` function with the
//! column's [`Leaf`]. The type rules (ranges, units, Enum labels, Date32's span, IPv4
//! numbers, Decimal digits) live here once, so every format converts the same way.
//!
//! Scalars go straight into a [`Column`]; arrays, maps and tuples are written in their
//! RowBinary encoding into a scratch buffer through the same [`Out`] trait, so the hot
//! path — scalar columns — is one push per value.

use crate::column::{write_varint, Column};
use crate::datetime::{parse_date, parse_timestamp, Timestamp};
use crate::error::DecodeErrorKind;
use crate::scalar::{parse_decimal, parse_int, parse_uuid, DecimalError};
use crate::types::{decimal_width, ColumnType};
use crate::wide::{parse_wide_decimal, parse_wide_int, WideError};

/// Where converted values go: a column buffer, or a RowBinary byte buffer.
pub(crate) trait Out {
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
pub(crate) struct Bad {
    pub(crate) kind: DecodeErrorKind,
    pub(crate) why: &'static str,
}

pub(crate) fn bad(kind: DecodeErrorKind, why: &'static str) -> Bad {
    Bad { kind, why }
}

/// How to write a value of one (non-nullable, storage) type: the plan built once per
/// column, whatever the format the value comes in.
#[derive(Clone, Debug)]
pub(crate) enum Leaf {
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
pub(crate) enum Shape {
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
    pub(crate) fn nanos_scale(self) -> u8 {
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
    pub(crate) fn with_epoch_unit(self, unit: EpochUnit) -> Leaf {
        match self {
            Leaf::DateTime(_) => Leaf::DateTime(unit),
            Leaf::DateTime64(p, _) => Leaf::DateTime64(p, unit),
            other => other,
        }
    }

    pub(crate) fn of(ty: &ColumnType) -> Leaf {
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
    pub(crate) fn of(ty: &ColumnType) -> Shape {
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
pub(crate) fn write_int<O: Out>(leaf: &Leaf, col: &mut O, v: i128) -> Result<(), Bad> {
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
pub(crate) fn write_time<O: Out>(leaf: &Leaf, col: &mut O, t: Timestamp) -> Result<(), Bad> {
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

pub(crate) fn write_days<O: Out>(leaf: &Leaf, col: &mut O, days: i64) -> Result<(), Bad> {
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

/// Writes the RowBinary encoding of a shape's default value (what ClickHouse stores
/// for a missing element): zeros, empty strings and collections, NULL.
pub(crate) fn write_default(shape: &Shape, out: &mut Vec<u8>) {
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

/// Writes a value given as text (a JSON string, a CSV cell): parsed for the column's
/// type — ISO dates and timestamps, UUIDs, addresses, Enum labels, decimal digits.
pub(crate) fn write_text<O: Out>(leaf: &Leaf, col: &mut O, text: &[u8]) -> Result<(), Bad> {
    match leaf {
        Leaf::Str => {
            col.string(text);
            Ok(())
        }
        Leaf::FixedStr(n) => write_fixed_string(*n, col, text),
        Leaf::Int { .. } | Leaf::Wide { .. } | Leaf::F32 | Leaf::F64 | Leaf::Decimal { .. } => {
            write_number(leaf, col, text)
        }
        Leaf::Bool => match text {
            b"1" | b"true" | b"True" | b"TRUE" => write_bool(leaf, col, true),
            b"0" | b"false" | b"False" | b"FALSE" => write_bool(leaf, col, false),
            _ => Err(bad(DecodeErrorKind::InvalidValue, "expected true/false or 1/0")),
        },
        Leaf::Date | Leaf::Date32 => {
            let days = parse_date(text).ok_or(bad(DecodeErrorKind::InvalidValue, "expected a date like 2026-11-21"))?;
            write_days(leaf, col, days)
        }
        Leaf::DateTime(_) | Leaf::DateTime64(..) => {
            let t =
                parse_timestamp(text).ok_or(bad(DecodeErrorKind::InvalidValue, "expected an ISO-8601 timestamp"))?;
            write_time(leaf, col, t)
        }
        Leaf::Uuid => {
            let bytes = parse_uuid(text).ok_or(bad(DecodeErrorKind::InvalidValue, "expected a UUID"))?;
            col.fixed(&bytes);
            Ok(())
        }
        Leaf::Ipv4 => {
            let v = std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<std::net::Ipv4Addr>().ok())
                .map(u32::from)
                .ok_or(bad(DecodeErrorKind::InvalidValue, "expected an IPv4 address like 192.0.2.1"))?;
            col.fixed(&v.to_le_bytes());
            Ok(())
        }
        Leaf::Ipv6 => {
            let text = std::str::from_utf8(text).map_err(|_| bad(DecodeErrorKind::InvalidValue, "not UTF-8"))?;
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
        Leaf::Enum { width, items } => {
            let v = items
                .iter()
                .find(|(l, _)| **l == *text)
                .map(|(_, v)| *v)
                .ok_or(bad(DecodeErrorKind::InvalidValue, "not one of the Enum's labels"))?;
            col.fixed(&v.to_le_bytes()[..*width]);
            Ok(())
        }
        Leaf::Composite(_) => Err(expected(leaf)),
    }
}

/// Writes a number given as its decimal text (a JSON number; an Avro or Protobuf number
/// printed exactly): integers range-checked, time columns read as epoch time in the
/// column's unit (fractions kept to the nanosecond), Dates as day numbers, Enums by
/// value, IPv4 as its 32-bit number.
pub(crate) fn write_number<O: Out>(leaf: &Leaf, col: &mut O, text: &[u8]) -> Result<(), Bad> {
    match leaf {
        Leaf::Str => {
            col.string(text);
            Ok(())
        }
        Leaf::Int { .. } => {
            let v = parse_int(text).ok_or(bad(DecodeErrorKind::WrongType, "expected an integer"))?;
            write_int(leaf, col, v)
        }
        Leaf::Wide { signed, bits } => {
            let bytes = parse_wide_int(text, *signed, *bits).map_err(|e| match e {
                WideError::Syntax => bad(DecodeErrorKind::WrongType, "expected an integer"),
                WideError::Overflow => bad(DecodeErrorKind::OutOfRange, "integer out of range for the column type"),
            })?;
            col.fixed(&bytes[..*bits as usize / 8]);
            Ok(())
        }
        Leaf::Bool => match text {
            b"1" => write_bool(leaf, col, true),
            b"0" => write_bool(leaf, col, false),
            _ => Err(bad(DecodeErrorKind::InvalidValue, "expected true/false or 1/0")),
        },
        Leaf::F32 | Leaf::F64 => {
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
            let days = parse_int(text)
                .and_then(|d| i64::try_from(d).ok())
                .ok_or(bad(DecodeErrorKind::WrongType, "expected a whole number of days"))?;
            write_days(leaf, col, days)
        }
        Leaf::DateTime(unit) | Leaf::DateTime64(_, unit) => {
            // Epoch time in the field's unit, possibly with a fraction: read exactly as
            // nanoseconds.
            let ns = parse_decimal(text, 38, unit.nanos_scale())
                .map_err(|_| bad(DecodeErrorKind::OutOfRange, "epoch time out of range"))?;
            let secs = i64::try_from(ns.div_euclid(1_000_000_000))
                .map_err(|_| bad(DecodeErrorKind::OutOfRange, "epoch seconds out of range"))?;
            write_time(leaf, col, Timestamp { secs, nanos: ns.rem_euclid(1_000_000_000) as u32 })
        }
        Leaf::Ipv4 => {
            let v = parse_int(text)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(bad(DecodeErrorKind::OutOfRange, "IPv4 number out of range"))?;
            col.fixed(&v.to_le_bytes());
            Ok(())
        }
        Leaf::Decimal { precision, scale, width } => {
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
            let n = parse_int(text).ok_or(bad(DecodeErrorKind::WrongType, "expected an Enum label or value"))?;
            let v = items
                .iter()
                .find(|(_, v)| i128::from(*v) == n)
                .map(|(_, v)| *v)
                .ok_or(bad(DecodeErrorKind::InvalidValue, "not one of the Enum's values"))?;
            col.fixed(&v.to_le_bytes()[..*width]);
            Ok(())
        }
        Leaf::FixedStr(_) | Leaf::Uuid | Leaf::Ipv6 | Leaf::Composite(_) => Err(expected(leaf)),
    }
}

/// Writes a boolean: a Bool, an integer 1/0, or the words `true`/`false` in a String.
pub(crate) fn write_bool<O: Out>(leaf: &Leaf, col: &mut O, v: bool) -> Result<(), Bad> {
    match leaf {
        Leaf::Bool => {
            col.fixed(&[u8::from(v)]);
            Ok(())
        }
        Leaf::Int { .. } => write_int(leaf, col, i128::from(v)),
        Leaf::Str => {
            col.string(if v { b"true" } else { b"false" });
            Ok(())
        }
        _ => Err(expected(leaf)),
    }
}

/// The error for a value of a kind the column's type cannot take at all (an object
/// for an integer, a number for a UUID), naming what the column takes.
pub(crate) fn expected(leaf: &Leaf) -> Bad {
    let why = match leaf {
        Leaf::Str | Leaf::FixedStr(_) => "expected a string",
        Leaf::Int { .. } | Leaf::Wide { .. } | Leaf::F32 | Leaf::F64 | Leaf::Decimal { .. } => {
            "expected a number or a string"
        }
        Leaf::Bool => "expected a boolean",
        Leaf::Date | Leaf::Date32 => "expected a date string or a day number",
        Leaf::DateTime(_) | Leaf::DateTime64(..) => "expected a timestamp string or epoch seconds",
        Leaf::Uuid => "expected a UUID string",
        Leaf::Ipv4 => "expected an IPv4 address string",
        Leaf::Ipv6 => "expected an IPv6 address string",
        Leaf::Enum { .. } => "expected an Enum label",
        Leaf::Composite(_) => "expected an array, a map or a tuple",
    };
    bad(DecodeErrorKind::WrongType, why)
}

/// FixedString(n): the bytes, zero-padded to `n`; longer text is out of range.
fn write_fixed_string<O: Out>(n: usize, col: &mut O, text: &[u8]) -> Result<(), Bad> {
    if text.len() > n {
        return Err(bad(DecodeErrorKind::OutOfRange, "string longer than the FixedString length"));
    }
    let mut padded = [0u8; 64];
    if n <= padded.len() {
        padded[..text.len()].copy_from_slice(text);
        col.fixed(&padded[..n]);
    } else {
        let mut long = text.to_vec();
        long.resize(n, 0);
        col.fixed(&long);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(ty: &str) -> Leaf {
        Leaf::of(&ColumnType::parse(ty).unwrap())
    }

    /// The bytes written, or the error's reason.
    fn out(r: Result<(), Bad>, bytes: Vec<u8>) -> Result<Vec<u8>, &'static str> {
        r.map(|()| bytes).map_err(|b| b.why)
    }

    fn text(ty: &str, v: &str) -> Result<Vec<u8>, &'static str> {
        let mut b = Vec::new();
        out(write_text(&leaf(ty), &mut b, v.as_bytes()), b)
    }

    fn number(ty: &str, v: &str) -> Result<Vec<u8>, &'static str> {
        let mut b = Vec::new();
        out(write_number(&leaf(ty), &mut b, v.as_bytes()), b)
    }

    fn boolean(ty: &str, v: bool) -> Result<Vec<u8>, &'static str> {
        let mut b = Vec::new();
        out(write_bool(&leaf(ty), &mut b, v), b)
    }

    #[test]
    fn text_is_parsed_for_the_column_type() {
        assert_eq!(text("UInt16", "513"), Ok(vec![1, 2]));
        assert_eq!(text("UInt8", "256"), Err("integer out of range for the column type"));
        assert_eq!(text("Bool", "TRUE"), Ok(vec![1]));
        assert_eq!(text("Date", "1970-01-03"), Ok(vec![2, 0]));
        assert_eq!(text("DateTime('UTC')", "1970-01-01T00:00:10Z"), Ok(vec![10, 0, 0, 0]));
        assert_eq!(text("IPv4", "0.0.1.2"), Ok(vec![2, 1, 0, 0]));
        assert_eq!(text("Enum8('a' = 1, 'b' = 2)", "b"), Ok(vec![2]));
        assert_eq!(text("Enum8('a' = 1, 'b' = 2)", "2"), Err("not one of the Enum's labels"));
        assert_eq!(text("FixedString(3)", "ab"), Ok(vec![b'a', b'b', 0]));
        assert_eq!(text("FixedString(1)", "ab"), Err("string longer than the FixedString length"));
        assert_eq!(text("Decimal(5,2)", "1.5"), Ok(150i32.to_le_bytes().to_vec()));
        assert_eq!(text("String", "x"), Ok(vec![1, b'x']));
        assert_eq!(text("Array(UInt8)", "[1]"), Err("expected an array, a map or a tuple"));
    }

    #[test]
    fn numbers_are_epoch_times_day_numbers_and_enum_values() {
        assert_eq!(number("DateTime('UTC')", "10.9"), Ok(vec![10, 0, 0, 0]));
        assert_eq!(number("DateTime64(3, 'UTC')", "1.5"), Ok(1_500i64.to_le_bytes().to_vec()));
        assert_eq!(number("Date", "2"), Ok(vec![2, 0]));
        assert_eq!(number("Date", "70000"), Err("date outside Date range 1970..2149"));
        assert_eq!(number("Enum8('a' = 1, 'b' = 2)", "1"), Ok(vec![1]));
        assert_eq!(number("IPv4", "258"), Ok(vec![2, 1, 0, 0]));
        assert_eq!(number("Float32", "1e39"), Err("not a finite Float32"));
        assert_eq!(number("UUID", "1"), Err("expected a UUID string"));
        assert_eq!(number("String", "1.50"), Ok(vec![4, b'1', b'.', b'5', b'0']));
    }

    #[test]
    fn booleans_fill_bools_integers_and_strings_only() {
        assert_eq!(boolean("Bool", true), Ok(vec![1]));
        assert_eq!(boolean("Int8", false), Ok(vec![0]));
        assert_eq!(boolean("String", true), Ok(vec![4, b't', b'r', b'u', b'e']));
        assert_eq!(boolean("Float64", true), Err("expected a number or a string"));
        assert_eq!(boolean("Date", true), Err("expected a date string or a day number"));
    }

    #[test]
    fn integers_and_times_given_natively() {
        let mut b = Vec::new();
        assert!(write_int(&leaf("Int128"), &mut b, -1).is_ok());
        assert_eq!(b, vec![0xFF; 16]);
        let mut b = Vec::new();
        assert!(write_int(&leaf("UInt256"), &mut b, -1).is_err());
        let mut b = Vec::new();
        let t = Timestamp { secs: 86_400 * 3 + 5, nanos: 0 };
        assert!(write_time(&leaf("Date32"), &mut b, t).is_ok());
        assert_eq!(b, 3i32.to_le_bytes().to_vec());
    }
}
