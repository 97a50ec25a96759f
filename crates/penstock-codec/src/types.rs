//! The ClickHouse column types Penstock can decode into and encode, with a parser for
//! ClickHouse's own type syntax.
//!
//! The same parser reads the types a user writes in a pipeline file and the types the
//! server reports in `system.columns`, so `penstock check` compares types structurally
//! (`Decimal(12,2)` equals `Decimal(12, 2)`), never as strings.

use std::fmt;

/// A ClickHouse column type that Penstock knows how to fill.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnType {
    /// Arbitrary bytes (JSON strings are stored as their UTF-8 contents).
    String,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    UInt8,
    /// Unsigned 16-bit integer.
    UInt16,
    /// Unsigned 32-bit integer.
    UInt32,
    /// Unsigned 64-bit integer.
    UInt64,
    /// Signed 128-bit integer.
    Int128,
    /// Unsigned 128-bit integer.
    UInt128,
    /// Signed 256-bit integer.
    Int256,
    /// Unsigned 256-bit integer.
    UInt256,
    /// `true`/`false`, stored as one byte 1/0.
    Bool,
    /// Exactly N bytes (shorter values are padded with zero bytes).
    FixedString(usize),
    /// IEEE-754 single precision.
    Float32,
    /// IEEE-754 double precision.
    Float64,
    /// Days since 1970-01-01 as UInt16.
    Date,
    /// Days since 1970-01-01 as Int32 (1900-01-01 .. 2299-12-31).
    Date32,
    /// An IPv4 address, stored as UInt32.
    Ipv4,
    /// An IPv6 address, 16 bytes in network order.
    Ipv6,
    /// Seconds since the epoch as UInt32, with an optional display time zone.
    DateTime {
        /// Time zone named in the type, e.g. `UTC`.
        tz: Option<String>,
    },
    /// Ticks of 10^-precision seconds since the epoch as Int64.
    DateTime64 {
        /// Digits after the second (0–9).
        precision: u8,
        /// Time zone named in the type.
        tz: Option<String>,
    },
    /// 128-bit UUID.
    Uuid,
    /// Fixed-point decimal stored as a scaled integer of 32, 64, 128 or 256 bits.
    Decimal {
        /// Total significant digits (1–76).
        precision: u8,
        /// Digits after the decimal point (0..=precision).
        scale: u8,
    },
    /// Enumeration stored as Int8.
    Enum8(Vec<(String, i16)>),
    /// Enumeration stored as Int16.
    Enum16(Vec<(String, i16)>),
    /// A nullable wrapper around a non-nullable type.
    Nullable(Box<ColumnType>),
    /// Dictionary-encoded storage of the inner type (values are the inner type's).
    LowCardinality(Box<ColumnType>),
    /// A variable-length list of the element type.
    Array(Box<ColumnType>),
    /// Key/value pairs (stored as `Array(Tuple(K, V))`).
    Map(Box<ColumnType>, Box<ColumnType>),
    /// A fixed sequence of typed elements, optionally named.
    Tuple(Vec<(Option<String>, ColumnType)>),
}

/// Why a type string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ClickHouse type `{input}`: {reason}")]
pub struct TypeParseError {
    /// The text that was parsed.
    pub input: String,
    /// What was wrong.
    pub reason: String,
}

impl ColumnType {
    /// Parses ClickHouse type syntax, e.g. `Nullable(DateTime('UTC'))`.
    pub fn parse(input: &str) -> Result<Self, TypeParseError> {
        let mut p = Parser { s: input.as_bytes(), pos: 0, input };
        let t = p.parse_type()?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(p.err(format!("unexpected text after the type at byte {}", p.pos)));
        }
        Ok(t)
    }

    /// The width in bytes of one value in Native/RowBinary, or `None` for variable width.
    pub fn fixed_width(&self) -> Option<usize> {
        Some(match self {
            ColumnType::Int8 | ColumnType::UInt8 | ColumnType::Enum8(_) | ColumnType::Bool => 1,
            ColumnType::Int16 | ColumnType::UInt16 | ColumnType::Date | ColumnType::Enum16(_) => 2,
            ColumnType::Int32
            | ColumnType::UInt32
            | ColumnType::Float32
            | ColumnType::DateTime { .. }
            | ColumnType::Date32
            | ColumnType::Ipv4 => 4,
            ColumnType::Int64 | ColumnType::UInt64 | ColumnType::Float64 | ColumnType::DateTime64 { .. } => 8,
            ColumnType::Uuid | ColumnType::Ipv6 | ColumnType::Int128 | ColumnType::UInt128 => 16,
            ColumnType::Int256 | ColumnType::UInt256 => 32,
            ColumnType::FixedString(n) => *n,
            ColumnType::Decimal { precision, .. } => decimal_width(*precision),
            ColumnType::String
            | ColumnType::Nullable(_)
            | ColumnType::LowCardinality(_)
            | ColumnType::Array(_)
            | ColumnType::Map(..)
            | ColumnType::Tuple(_) => return None,
        })
    }

    /// The type whose values a column buffer holds: the type itself, or for
    /// `LowCardinality(T)` the type `T` (the dictionary is built when encoding).
    pub fn storage(&self) -> &ColumnType {
        match self {
            ColumnType::LowCardinality(inner) => inner,
            other => other,
        }
    }

    /// True for types whose values are stored in their RowBinary encoding and
    /// rearranged into columns only when a Native block is written (arrays, maps,
    /// tuples), and for `LowCardinality` (dictionary built then).
    pub fn needs_native_conversion(&self) -> bool {
        match self {
            ColumnType::LowCardinality(_) | ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Tuple(_) => true,
            ColumnType::Nullable(inner) => inner.needs_native_conversion(),
            _ => false,
        }
    }

    /// The type with every DateTime/DateTime64 time zone removed: what is stored does
    /// not depend on the zone (it only changes how text is read and shown).
    pub fn without_time_zones(&self) -> ColumnType {
        match self {
            ColumnType::DateTime { .. } => ColumnType::DateTime { tz: None },
            ColumnType::DateTime64 { precision, .. } => ColumnType::DateTime64 { precision: *precision, tz: None },
            ColumnType::Nullable(t) => ColumnType::Nullable(Box::new(t.without_time_zones())),
            ColumnType::LowCardinality(t) => ColumnType::LowCardinality(Box::new(t.without_time_zones())),
            ColumnType::Array(t) => ColumnType::Array(Box::new(t.without_time_zones())),
            ColumnType::Map(k, v) => {
                ColumnType::Map(Box::new(k.without_time_zones()), Box::new(v.without_time_zones()))
            }
            ColumnType::Tuple(items) => {
                ColumnType::Tuple(items.iter().map(|(n, t)| (n.clone(), t.without_time_zones())).collect())
            }
            other => other.clone(),
        }
    }

    /// True when both types store the same values: equal, or different only in a
    /// DateTime time zone (a metadata difference, not an incompatible type).
    pub fn stores_same_values(&self, other: &ColumnType) -> bool {
        self == other || self.without_time_zones() == other.without_time_zones()
    }

    /// True for `Nullable(..)` (also inside `LowCardinality`).
    pub fn is_nullable(&self) -> bool {
        matches!(self.storage(), ColumnType::Nullable(_))
    }

    /// The stored type without a `Nullable` wrapper (`LowCardinality` seen through).
    pub fn non_nullable(&self) -> &ColumnType {
        match self.storage() {
            ColumnType::Nullable(inner) => inner,
            other => other,
        }
    }

    /// True for the integer types.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            ColumnType::Int8
                | ColumnType::Int16
                | ColumnType::Int32
                | ColumnType::Int64
                | ColumnType::UInt8
                | ColumnType::UInt16
                | ColumnType::UInt32
                | ColumnType::UInt64
                | ColumnType::Int128
                | ColumnType::UInt128
                | ColumnType::Int256
                | ColumnType::UInt256
        )
    }
}

/// Storage width of a Decimal with `precision` digits.
pub(crate) fn decimal_width(precision: u8) -> usize {
    match precision {
        0..=9 => 4,
        10..=18 => 8,
        19..=38 => 16,
        _ => 32,
    }
}

impl fmt::Display for ColumnType {
    /// Writes the canonical ClickHouse spelling, as used in a Native block header.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::String => f.write_str("String"),
            ColumnType::Int8 => f.write_str("Int8"),
            ColumnType::Int16 => f.write_str("Int16"),
            ColumnType::Int32 => f.write_str("Int32"),
            ColumnType::Int64 => f.write_str("Int64"),
            ColumnType::UInt8 => f.write_str("UInt8"),
            ColumnType::UInt16 => f.write_str("UInt16"),
            ColumnType::UInt32 => f.write_str("UInt32"),
            ColumnType::UInt64 => f.write_str("UInt64"),
            ColumnType::Int128 => f.write_str("Int128"),
            ColumnType::UInt128 => f.write_str("UInt128"),
            ColumnType::Int256 => f.write_str("Int256"),
            ColumnType::UInt256 => f.write_str("UInt256"),
            ColumnType::Bool => f.write_str("Bool"),
            ColumnType::FixedString(n) => write!(f, "FixedString({n})"),
            ColumnType::Date32 => f.write_str("Date32"),
            ColumnType::Ipv4 => f.write_str("IPv4"),
            ColumnType::Ipv6 => f.write_str("IPv6"),
            ColumnType::Float32 => f.write_str("Float32"),
            ColumnType::Float64 => f.write_str("Float64"),
            ColumnType::Date => f.write_str("Date"),
            ColumnType::DateTime { tz: None } => f.write_str("DateTime"),
            ColumnType::DateTime { tz: Some(tz) } => write!(f, "DateTime({})", quote(tz)),
            ColumnType::DateTime64 { precision, tz: None } => write!(f, "DateTime64({precision})"),
            ColumnType::DateTime64 { precision, tz: Some(tz) } => {
                write!(f, "DateTime64({precision}, {})", quote(tz))
            }
            ColumnType::Uuid => f.write_str("UUID"),
            ColumnType::Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            ColumnType::Enum8(items) => write_enum(f, "Enum8", items),
            ColumnType::Enum16(items) => write_enum(f, "Enum16", items),
            ColumnType::Nullable(inner) => write!(f, "Nullable({inner})"),
            ColumnType::LowCardinality(inner) => write!(f, "LowCardinality({inner})"),
            ColumnType::Array(inner) => write!(f, "Array({inner})"),
            ColumnType::Map(k, v) => write!(f, "Map({k}, {v})"),
            ColumnType::Tuple(items) => {
                f.write_str("Tuple(")?;
                for (i, (name, ty)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match name {
                        Some(n) => write!(f, "{n} {ty}")?,
                        None => write!(f, "{ty}")?,
                    }
                }
                f.write_str(")")
            }
        }
    }
}

fn write_enum(f: &mut fmt::Formatter<'_>, name: &str, items: &[(String, i16)]) -> fmt::Result {
    write!(f, "{name}(")?;
    for (i, (label, value)) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{} = {value}", quote(label))?;
    }
    f.write_str(")")
}

/// Quotes a string as a ClickHouse single-quoted literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    input: &'a str,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> TypeParseError {
        TypeParseError { input: self.input.to_string(), reason: reason.into() }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), TypeParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(format!("expected `{}` at byte {}", c as char, self.pos)))
        }
    }

    fn ident(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_') {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    fn number(&mut self) -> Result<i64, TypeParseError> {
        self.skip_ws();
        let start = self.pos;
        if self.s.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        self.input[start..self.pos].parse().map_err(|_| self.err(format!("expected a number at byte {start}")))
    }

    fn string_literal(&mut self) -> Result<String, TypeParseError> {
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b'\'') {
            return Err(self.err(format!("expected a quoted string at byte {}", self.pos)));
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.err("unterminated string literal")),
                Some(b'\'') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let Some(&next) = self.s.get(self.pos + 1) else {
                        return Err(self.err("unterminated escape in string literal"));
                    };
                    out.push(next);
                    self.pos += 2;
                }
                Some(&b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.err("string literal is not UTF-8"))
    }

    fn small(&mut self, what: &str, max: i64) -> Result<u8, TypeParseError> {
        let n = self.number()?;
        if !(0..=max).contains(&n) {
            return Err(self.err(format!("{what} must be between 0 and {max}, got {n}")));
        }
        Ok(n as u8)
    }

    fn parse_type(&mut self) -> Result<ColumnType, TypeParseError> {
        let name = self.ident().to_string();
        let t = match name.as_str() {
            "String" => ColumnType::String,
            "Int8" => ColumnType::Int8,
            "Int16" => ColumnType::Int16,
            "Int32" => ColumnType::Int32,
            "Int64" => ColumnType::Int64,
            "UInt8" => ColumnType::UInt8,
            "UInt16" => ColumnType::UInt16,
            "UInt32" => ColumnType::UInt32,
            "UInt64" => ColumnType::UInt64,
            "Int128" => ColumnType::Int128,
            "UInt128" => ColumnType::UInt128,
            "Int256" => ColumnType::Int256,
            "UInt256" => ColumnType::UInt256,
            "Bool" | "Boolean" => ColumnType::Bool,
            "Date32" => ColumnType::Date32,
            "IPv4" => ColumnType::Ipv4,
            "IPv6" => ColumnType::Ipv6,
            "FixedString" => {
                self.expect(b'(')?;
                let n = self.number()?;
                self.expect(b')')?;
                if !(1..=1 << 20).contains(&n) {
                    return Err(self.err(format!("FixedString length must be between 1 and 1048576, got {n}")));
                }
                ColumnType::FixedString(n as usize)
            }
            "Float32" => ColumnType::Float32,
            "Float64" => ColumnType::Float64,
            "Date" => ColumnType::Date,
            "UUID" => ColumnType::Uuid,
            "DateTime" => {
                let tz = if self.eat(b'(') {
                    let tz = self.string_literal()?;
                    self.expect(b')')?;
                    Some(tz)
                } else {
                    None
                };
                ColumnType::DateTime { tz }
            }
            "DateTime64" => {
                self.expect(b'(')?;
                let precision = self.small("DateTime64 precision", 9)?;
                let tz = if self.eat(b',') { Some(self.string_literal()?) } else { None };
                self.expect(b')')?;
                ColumnType::DateTime64 { precision, tz }
            }
            "Decimal" => {
                self.expect(b'(')?;
                let precision = self.small("Decimal precision", 76)?;
                self.expect(b',')?;
                let scale = self.small("Decimal scale", 38)?;
                self.expect(b')')?;
                decimal(precision, scale).map_err(|r| self.err(r))?
            }
            "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => {
                let precision = match name.as_str() {
                    "Decimal32" => 9,
                    "Decimal64" => 18,
                    "Decimal128" => 38,
                    _ => 76,
                };
                self.expect(b'(')?;
                let scale = self.small("Decimal scale", i64::from(precision))?;
                self.expect(b')')?;
                decimal(precision, scale).map_err(|r| self.err(r))?
            }
            "Enum8" | "Enum16" => {
                let (lo, hi) = if name == "Enum8" { (-128, 127) } else { (-32768, 32767) };
                self.expect(b'(')?;
                let mut items: Vec<(String, i16)> = Vec::new();
                loop {
                    let label = self.string_literal()?;
                    self.expect(b'=')?;
                    let v = self.number()?;
                    if !(lo..=hi).contains(&v) {
                        return Err(self.err(format!("{name} value {v} for '{label}' is out of range {lo}..={hi}")));
                    }
                    if items.iter().any(|(l, x)| *l == label || i64::from(*x) == v) {
                        return Err(self.err(format!("{name} has a duplicate label or value at '{label}'")));
                    }
                    items.push((label, v as i16));
                    if !self.eat(b',') {
                        break;
                    }
                }
                self.expect(b')')?;
                // Canonical order, as servers report it: by value.
                items.sort_by_key(|(_, v)| *v);
                if name == "Enum8" {
                    ColumnType::Enum8(items)
                } else {
                    ColumnType::Enum16(items)
                }
            }
            "Nullable" => {
                self.expect(b'(')?;
                let inner = self.parse_type()?;
                self.expect(b')')?;
                if inner.is_nullable() {
                    return Err(self.err("Nullable cannot be nested"));
                }
                if matches!(inner, ColumnType::Array(_) | ColumnType::Map(..) | ColumnType::Tuple(_)) {
                    return Err(self.err(format!("{inner} cannot be inside Nullable")));
                }
                ColumnType::Nullable(Box::new(inner))
            }
            "LowCardinality" => {
                self.expect(b'(')?;
                let inner = self.parse_type()?;
                self.expect(b')')?;
                let ok = match inner.non_nullable() {
                    ColumnType::String | ColumnType::FixedString(_) | ColumnType::Date | ColumnType::Date32 => true,
                    ColumnType::DateTime { .. } => true,
                    t => t.is_integer() || matches!(t, ColumnType::Float32 | ColumnType::Float64),
                };
                if !ok || matches!(inner, ColumnType::LowCardinality(_)) {
                    return Err(self.err(format!("LowCardinality({inner}) is not a valid type")));
                }
                ColumnType::LowCardinality(Box::new(inner))
            }
            "Array" => {
                self.expect(b'(')?;
                let inner = self.parse_type()?;
                self.expect(b')')?;
                ColumnType::Array(Box::new(inner))
            }
            "Map" => {
                self.expect(b'(')?;
                let k = self.parse_type()?;
                self.expect(b',')?;
                let v = self.parse_type()?;
                self.expect(b')')?;
                let key_ok = matches!(k.storage(), ColumnType::String | ColumnType::FixedString(_))
                    || k.is_integer()
                    || matches!(k, ColumnType::Date | ColumnType::DateTime { .. } | ColumnType::Uuid);
                if !key_ok {
                    return Err(self.err(format!("{k} cannot be a Map key")));
                }
                ColumnType::Map(Box::new(k), Box::new(v))
            }
            "Tuple" => {
                self.expect(b'(')?;
                let mut items = Vec::new();
                loop {
                    // `name Type` or just `Type`: a name is an identifier followed by a type.
                    let save = self.pos;
                    let first = self.ident().to_string();
                    self.skip_ws();
                    let named = !first.is_empty()
                        && self.s.get(self.pos).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_');
                    if !named {
                        self.pos = save;
                    }
                    let ty = self.parse_type()?;
                    items.push((named.then_some(first), ty));
                    if !self.eat(b',') {
                        break;
                    }
                }
                self.expect(b')')?;
                ColumnType::Tuple(items)
            }
            "" => return Err(self.err(format!("expected a type name at byte {}", self.pos))),
            other => {
                return Err(self.err(format!(
                    "type `{other}` is not supported (supported: String, FixedString, Int8-256, UInt8-256, \
                     Float32/64, Bool, Decimal(P, S) up to 76 digits, Date, Date32, DateTime, DateTime64, UUID, \
                     IPv4, IPv6, Enum8/16, Nullable, LowCardinality, Array, Map, Tuple)"
                )))
            }
        };
        Ok(t)
    }
}

fn decimal(precision: u8, scale: u8) -> Result<ColumnType, String> {
    if precision == 0 {
        return Err("Decimal precision must be at least 1".into());
    }
    if scale > precision {
        return Err(format!("Decimal scale {scale} exceeds precision {precision}"));
    }
    Ok(ColumnType::Decimal { precision, scale })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        for (input, canonical) in [
            ("String", "String"),
            ("Nullable(UInt64)", "Nullable(UInt64)"),
            ("DateTime('UTC')", "DateTime('UTC')"),
            ("DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')"),
            ("Decimal(12,2)", "Decimal(12, 2)"),
            ("Decimal64(4)", "Decimal(18, 4)"),
            ("Enum8('purchase'=1,'refund'=2)", "Enum8('purchase' = 1, 'refund' = 2)"),
            (" Nullable( DateTime ) ", "Nullable(DateTime)"),
            ("Enum8('b' = 2, 'a' = -1)", "Enum8('a' = -1, 'b' = 2)"),
            ("LowCardinality(Nullable(String))", "LowCardinality(Nullable(String))"),
            ("Array(Array(Nullable(UInt8)))", "Array(Array(Nullable(UInt8)))"),
            ("Map(String,Array(Tuple(a Int8,String)))", "Map(String, Array(Tuple(a Int8, String)))"),
            ("Decimal256(20)", "Decimal(76, 20)"),
            ("FixedString(16)", "FixedString(16)"),
            ("Bool", "Bool"),
            ("IPv6", "IPv6"),
        ] {
            let t = ColumnType::parse(input).unwrap();
            assert_eq!(t.to_string(), canonical, "{input}");
            assert_eq!(ColumnType::parse(canonical).unwrap(), t);
        }
    }

    #[test]
    fn server_spelling_equals_user_spelling() {
        assert_eq!(ColumnType::parse("Decimal(12, 2)").unwrap(), ColumnType::parse("Decimal(12,2)").unwrap());
    }

    #[test]
    fn rejects_bad_types_with_reason() {
        let e = ColumnType::parse("UInt65").unwrap_err();
        assert!(e.reason.contains("`UInt65` is not supported"), "{e}");
        let e = ColumnType::parse("Nullable(Nullable(String))").unwrap_err();
        assert!(e.reason.contains("nested"), "{e}");
        let e = ColumnType::parse("Decimal(4, 6)").unwrap_err();
        assert!(e.reason.contains("exceeds precision"), "{e}");
        let e = ColumnType::parse("Enum8('a' = 300)").unwrap_err();
        assert!(e.reason.contains("out of range"), "{e}");
        assert!(ColumnType::parse("String)").is_err());
        assert!(ColumnType::parse("Nullable(Array(UInt8))").unwrap_err().reason.contains("inside Nullable"));
        assert!(ColumnType::parse("LowCardinality(UUID)").unwrap_err().reason.contains("not a valid type"));
        assert!(ColumnType::parse("Map(Float64, String)").unwrap_err().reason.contains("Map key"));
        assert!(ColumnType::parse("FixedString(0)").is_err());
        assert!(ColumnType::parse("DateTime('UTC").is_err());
    }

    #[test]
    fn widths() {
        assert_eq!(ColumnType::parse("Decimal(9,2)").unwrap().fixed_width(), Some(4));
        assert_eq!(ColumnType::parse("Decimal(12,2)").unwrap().fixed_width(), Some(8));
        assert_eq!(ColumnType::parse("Decimal(38,2)").unwrap().fixed_width(), Some(16));
        assert_eq!(ColumnType::Uuid.fixed_width(), Some(16));
        assert_eq!(ColumnType::parse("Decimal(76,2)").unwrap().fixed_width(), Some(32));
        assert_eq!(ColumnType::parse("UInt256").unwrap().fixed_width(), Some(32));
        assert_eq!(ColumnType::parse("FixedString(3)").unwrap().fixed_width(), Some(3));
        assert_eq!(ColumnType::parse("Array(UInt8)").unwrap().fixed_width(), None);
        assert_eq!(ColumnType::String.fixed_width(), None);
    }

    #[test]
    fn quotes_literals() {
        assert_eq!(quote("it's"), "'it\\'s'");
        assert_eq!(quote("a\\b"), "'a\\\\b'");
    }
}
