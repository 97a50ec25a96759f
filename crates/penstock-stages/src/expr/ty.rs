//! The types expressions compute with, and ClickHouse's rules for the type of each
//! operation (`NumberTraits` in ClickHouse's source: `UInt8 + UInt8` is `UInt16`,
//! subtraction is signed, `/` is `Float64`, any float makes `Float64`).
//!
//! Every integer-like type (integers, `Bool`, dates, times, enums, decimals) is held as
//! `i128` while evaluating, floats as `f64`, strings as bytes; results are wrapped to
//! their type's width exactly as ClickHouse's fixed-width arithmetic wraps.

use penstock_codec::ColumnType;
use std::fmt;

/// A type without its nullability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// `Int8`…`Int64`, `UInt8`…`UInt64`.
    Int {
        /// Signed.
        signed: bool,
        /// 8, 16, 32 or 64.
        bits: u8,
    },
    /// `Float32` / `Float64`.
    Float(u8),
    /// `Decimal(P, S)` (P ≤ 38).
    Decimal {
        /// Digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `String` (also `FixedString`, `LowCardinality(String)` when read).
    String,
    /// `Date` (days since 1970-01-01; `Date32` reads as this).
    Date,
    /// `DateTime` (seconds, UTC).
    DateTime,
    /// `DateTime64(P)` (ticks of 10^-P s, UTC).
    DateTime64(u8),
    /// `Enum8` / `Enum16`: labels and values.
    Enum {
        /// 8 or 16.
        bits: u8,
        /// Label and value of each element.
        items: Vec<(String, i16)>,
    },
    /// `Bool`.
    Bool,
    /// The type of the `NULL` literal.
    Nothing,
}

/// A type: its base and whether it is `Nullable`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ty {
    /// The base type.
    pub base: Base,
    /// `Nullable(...)`.
    pub nullable: bool,
}

/// How a base type's values are held while evaluating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repr {
    /// `i128` (integers, Bool, dates, times, enums, decimals).
    Int,
    /// `f64`.
    Float,
    /// Bytes.
    Str,
    /// Nothing (all NULL).
    Null,
}

impl Ty {
    /// A non-nullable type.
    pub fn of(base: Base) -> Ty {
        Ty { base, nullable: false }
    }

    /// `UInt8`, the type of comparisons and logic.
    pub fn uint8() -> Ty {
        Ty::of(Base::Int { signed: false, bits: 8 })
    }

    /// The same base, nullable when `nullable`.
    pub fn with_null(mut self, nullable: bool) -> Ty {
        self.nullable |= nullable;
        self
    }

    /// How values are held.
    pub fn repr(&self) -> Repr {
        match self.base {
            Base::Float(_) => Repr::Float,
            Base::String => Repr::Str,
            Base::Nothing => Repr::Null,
            _ => Repr::Int,
        }
    }

    /// The expression type of a column of type `ty`, or why it cannot be used.
    pub fn from_column(ty: &ColumnType) -> Result<Ty, String> {
        let nullable = ty.is_nullable();
        let base = match ty.non_nullable() {
            ColumnType::Int8 => Base::Int { signed: true, bits: 8 },
            ColumnType::Int16 => Base::Int { signed: true, bits: 16 },
            ColumnType::Int32 => Base::Int { signed: true, bits: 32 },
            ColumnType::Int64 => Base::Int { signed: true, bits: 64 },
            ColumnType::UInt8 => Base::Int { signed: false, bits: 8 },
            ColumnType::UInt16 => Base::Int { signed: false, bits: 16 },
            ColumnType::UInt32 => Base::Int { signed: false, bits: 32 },
            ColumnType::UInt64 => Base::Int { signed: false, bits: 64 },
            ColumnType::Float32 => Base::Float(32),
            ColumnType::Float64 => Base::Float(64),
            ColumnType::Bool => Base::Bool,
            ColumnType::Decimal { precision, scale } if *precision <= 38 => {
                Base::Decimal { precision: *precision, scale: *scale }
            }
            ColumnType::String | ColumnType::FixedString(_) => Base::String,
            ColumnType::Date | ColumnType::Date32 => Base::Date,
            ColumnType::DateTime { tz } => {
                utc_only(tz.as_deref(), ty)?;
                Base::DateTime
            }
            ColumnType::DateTime64 { precision, tz } => {
                utc_only(tz.as_deref(), ty)?;
                Base::DateTime64(*precision)
            }
            ColumnType::Enum8(items) => Base::Enum { bits: 8, items: items.clone() },
            ColumnType::Enum16(items) => Base::Enum { bits: 16, items: items.clone() },
            other => return Err(format!("columns of type {other} cannot be used in expressions yet")),
        };
        Ok(Ty { base, nullable })
    }

    /// True for integers and Bool (not dates or enums).
    pub fn is_integer(&self) -> bool {
        matches!(self.base, Base::Int { .. } | Base::Bool)
    }

    /// True for the number types: integers, Bool, floats, decimals.
    pub fn is_number(&self) -> bool {
        matches!(self.base, Base::Int { .. } | Base::Bool | Base::Float(_) | Base::Decimal { .. })
    }

    /// True for Date, DateTime, DateTime64.
    pub fn is_time(&self) -> bool {
        matches!(self.base, Base::Date | Base::DateTime | Base::DateTime64(_))
    }

    /// (signed, bits) of an integer type (Bool is UInt8).
    pub fn int_shape(&self) -> Option<(bool, u8)> {
        match self.base {
            Base::Int { signed, bits } => Some((signed, bits)),
            Base::Bool => Some((false, 8)),
            _ => None,
        }
    }
}

fn utc_only(tz: Option<&str>, ty: &ColumnType) -> Result<(), String> {
    match tz {
        None | Some("UTC") | Some("Etc/UTC") => Ok(()),
        Some(_) => Err(format!("{ty}: expressions compute times in UTC only")),
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Int { signed: true, bits } => write!(f, "Int{bits}"),
            Base::Int { signed: false, bits } => write!(f, "UInt{bits}"),
            Base::Float(bits) => write!(f, "Float{bits}"),
            Base::Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            Base::String => f.write_str("String"),
            Base::Date => f.write_str("Date"),
            Base::DateTime => f.write_str("DateTime"),
            Base::DateTime64(p) => write!(f, "DateTime64({p})"),
            Base::Enum { bits, items } => {
                write!(f, "Enum{bits}(")?;
                for (i, (l, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "'{l}' = {v}")?;
                }
                f.write_str(")")
            }
            Base::Bool => f.write_str("Bool"),
            Base::Nothing => f.write_str("Nothing"),
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nullable {
            write!(f, "Nullable({})", self.base)
        } else {
            write!(f, "{}", self.base)
        }
    }
}

/// ClickHouse's `nextSize`: the width that holds a sum or product of two values.
fn next_bits(bits: u8) -> u8 {
    if bits < 64 {
        bits * 2
    } else {
        64
    }
}

/// The decimal precision class of a precision (Decimal32/64/128).
pub fn precision_class(p: u8) -> u8 {
    match p {
        0..=9 => 9,
        10..=18 => 18,
        _ => 38,
    }
}

/// Digits an integer type needs as a decimal (ClickHouse's `DecimalUtils` for
/// integer operands: Int8/UInt8 → 3, 16 → 5, 32 → 10, 64 → 19/20).
fn int_digits(bits: u8, signed: bool) -> u8 {
    match (bits, signed) {
        (8, _) => 3,
        (16, _) => 5,
        (32, _) => 10,
        (_, true) => 19,
        (_, false) => 20,
    }
}

/// The operator of a binary arithmetic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Multiply,
    /// `/`
    Divide,
    /// `%`
    Modulo,
    /// `intDiv`
    IntDiv,
}

impl Arith {
    /// ClickHouse's function name.
    pub fn name(self) -> &'static str {
        match self {
            Arith::Plus => "plus",
            Arith::Minus => "minus",
            Arith::Multiply => "multiply",
            Arith::Divide => "divide",
            Arith::Modulo => "modulo",
            Arith::IntDiv => "intDiv",
        }
    }
}

/// The result type of `a op b` (nullability aside), or why the types do not go together.
pub fn arith_result(op: Arith, a: &Ty, b: &Ty) -> Result<Base, String> {
    let illegal = || format!("illegal types {} and {} of arguments of function {}", a.base, b.base, op.name());
    if matches!(a.base, Base::Nothing) || matches!(b.base, Base::Nothing) {
        return Ok(Base::Nothing);
    }
    if !a.is_number() || !b.is_number() {
        return Err(illegal());
    }
    let float = matches!(a.base, Base::Float(_)) || matches!(b.base, Base::Float(_));
    if let (Base::Decimal { .. }, _) | (_, Base::Decimal { .. }) = (&a.base, &b.base) {
        if float {
            return match op {
                Arith::Modulo | Arith::IntDiv => Err(illegal()),
                _ => Ok(Base::Float(64)),
            };
        }
        return decimal_arith(op, a, b).ok_or_else(illegal);
    }
    let (sa, ba) = a.int_shape().unwrap_or((true, 64));
    let (sb, bb) = b.int_shape().unwrap_or((true, 64));
    Ok(match op {
        Arith::Divide => Base::Float(64),
        _ if float => Base::Float(64),
        Arith::Plus | Arith::Multiply => Base::Int { signed: sa || sb, bits: next_bits(ba.max(bb)) },
        Arith::Minus => Base::Int { signed: true, bits: next_bits(ba.max(bb)) },
        Arith::IntDiv => Base::Int { signed: sa || sb, bits: ba },
        Arith::Modulo => Base::Int { signed: sa, bits: if sa { next_bits(bb) } else { bb } },
    })
}

/// Decimal (precision, scale) of an operand (integers as Decimal(digits, 0)).
fn as_decimal(t: &Ty) -> Option<(u8, u8)> {
    match t.base {
        Base::Decimal { precision, scale } => Some((precision, scale)),
        _ => t.int_shape().map(|(s, b)| (int_digits(b, s), 0)),
    }
}

fn decimal_arith(op: Arith, a: &Ty, b: &Ty) -> Option<Base> {
    let (pa, sa) = as_decimal(a)?;
    let (pb, sb) = as_decimal(b)?;
    let a_dec = matches!(a.base, Base::Decimal { .. });
    let b_dec = matches!(b.base, Base::Decimal { .. });
    // With an integer operand the result keeps the decimal's precision; two decimals
    // give the wider one's precision class.
    let class = match (a_dec, b_dec) {
        (true, true) => precision_class(pa).max(precision_class(pb)),
        (true, false) => pa,
        _ => pb,
    };
    let scale = match op {
        Arith::Plus | Arith::Minus => sa.max(sb),
        Arith::Multiply => sa + sb,
        Arith::Divide => {
            if a_dec {
                sa
            } else {
                sb
            }
        }
        Arith::Modulo | Arith::IntDiv => return None,
    };
    (scale <= class).then_some(Base::Decimal { precision: class, scale })
}

/// The least type both `a` and `b` convert to without loss (the type of `if`,
/// `multiIf`, `coalesce`), or why there is none.
pub fn supertype(a: &Ty, b: &Ty) -> Result<Ty, String> {
    let nullable = a.nullable || b.nullable;
    let none = || format!("there is no supertype for types {} and {}", a.base, b.base);
    let base = match (&a.base, &b.base) {
        (Base::Nothing, other) | (other, Base::Nothing) => {
            return Ok(Ty { base: other.clone(), nullable: true });
        }
        (x, y) if x == y => x.clone(),
        (Base::Date, Base::DateTime) | (Base::DateTime, Base::Date) => Base::DateTime,
        (Base::Float(x), Base::Float(y)) => Base::Float((*x).max(*y)),
        (Base::Float(f), _) | (_, Base::Float(f)) => {
            let other = if matches!(a.base, Base::Float(_)) { b } else { a };
            match other.int_shape() {
                Some((_, bits)) if bits <= 16 => Base::Float((*f).max(32)),
                Some((_, bits)) if bits <= 32 => Base::Float(64),
                _ => return Err(none()),
            }
        }
        _ if a.int_shape().is_some() && b.int_shape().is_some() => {
            let (sa, ba) = a.int_shape().expect("integer");
            let (sb, bb) = b.int_shape().expect("integer");
            if sa == sb {
                Base::Int { signed: sa, bits: ba.max(bb) }
            } else {
                // A signed type wide enough for the unsigned one.
                let (ub, sbits) = if sa { (bb, ba) } else { (ba, bb) };
                let bits = sbits.max(next_bits(ub));
                if ub >= 64 {
                    return Err(none());
                }
                Base::Int { signed: true, bits }
            }
        }
        (Base::Decimal { precision: p1, scale: s1 }, Base::Decimal { precision: p2, scale: s2 }) => {
            let scale = (*s1).max(*s2);
            let digits = (p1 - s1).max(p2 - s2) + scale;
            Base::Decimal { precision: precision_class(digits.min(38)), scale }
        }
        _ => return Err(none()),
    };
    Ok(Ty { base, nullable })
}

/// Wraps an integer to a width, as fixed-width arithmetic does.
#[inline]
pub fn wrap(v: i128, signed: bool, bits: u8) -> i128 {
    match (signed, bits) {
        (true, 8) => i128::from(v as i8),
        (true, 16) => i128::from(v as i16),
        (true, 32) => i128::from(v as i32),
        (true, _) => i128::from(v as i64),
        (false, 8) => i128::from(v as u8),
        (false, 16) => i128::from(v as u16),
        (false, 32) => i128::from(v as u32),
        (false, _) => i128::from(v as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Ty {
        Ty::from_column(&ColumnType::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn arithmetic_types_follow_clickhouse() {
        let r = |op, a, b| arith_result(op, &t(a), &t(b)).unwrap().to_string();
        assert_eq!(r(Arith::Plus, "UInt8", "UInt8"), "UInt16");
        assert_eq!(r(Arith::Plus, "UInt32", "Int8"), "Int64");
        assert_eq!(r(Arith::Plus, "UInt64", "UInt64"), "UInt64");
        assert_eq!(r(Arith::Minus, "UInt8", "UInt8"), "Int16");
        assert_eq!(r(Arith::Multiply, "Float32", "Float32"), "Float64");
        assert_eq!(r(Arith::Divide, "UInt8", "UInt8"), "Float64");
        assert_eq!(r(Arith::Modulo, "Int32", "UInt8"), "Int16");
        assert_eq!(r(Arith::Multiply, "Decimal(12, 2)", "UInt8"), "Decimal(12, 2)");
        assert_eq!(r(Arith::Multiply, "Decimal(12, 2)", "Decimal(12, 2)"), "Decimal(18, 4)");
        assert_eq!(r(Arith::Plus, "Decimal(12, 2)", "Decimal(5, 3)"), "Decimal(18, 3)");
        assert!(arith_result(Arith::Plus, &t("String"), &t("UInt8")).is_err());
    }

    #[test]
    fn supertypes() {
        let s = |a, b| supertype(&t(a), &t(b)).map(|t| t.to_string());
        assert_eq!(s("UInt8", "Int8").unwrap(), "Int16");
        assert_eq!(s("UInt32", "UInt8").unwrap(), "UInt32");
        assert_eq!(s("Nullable(String)", "String").unwrap(), "Nullable(String)");
        assert_eq!(s("Date", "DateTime").unwrap(), "DateTime");
        assert!(s("UInt64", "Int8").is_err());
        assert!(s("String", "UInt8").is_err());
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap(300, false, 8), 44);
        assert_eq!(wrap(200, true, 8), -56);
        assert_eq!(wrap(-1, false, 64), i128::from(u64::MAX));
    }
}
