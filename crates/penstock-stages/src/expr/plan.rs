//! The typed plan of an expression: what [`super::compile`] builds from the parsed SQL
//! after checking every name and type, and what [`super::eval`] runs over a batch.

use super::ty::{Arith, Ty};
use super::vector::Vector;

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `!=`, `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// How two values are compared, decided when the expression is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// As integers, each multiplied first (decimals of other scales, days against
    /// seconds, seconds against ticks).
    Int {
        /// Left operand's multiplier.
        left: i128,
        /// Right operand's multiplier.
        right: i128,
    },
    /// As floats.
    Float,
    /// As bytes.
    Bytes,
}

/// What a conversion does when a value does not convert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBad {
    /// The row fails (it is dead-lettered).
    Fail,
    /// NULL (`...OrNull`).
    Null,
    /// Zero / the type's default (`...OrZero`).
    Zero,
}

/// String functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrFn {
    /// `lower` (ASCII letters).
    Lower,
    /// `upper` (ASCII letters).
    Upper,
    /// `trim`/`trimBoth`: spaces at both ends.
    Trim,
    /// `trimLeft`.
    TrimLeft,
    /// `trimRight`.
    TrimRight,
    /// `concat(a, b, ...)`.
    Concat,
    /// `substring(s, offset[, length])`, in bytes, 1-based.
    Substring,
    /// `length(s)`: bytes.
    Length,
    /// `replaceAll(s, from, to)`.
    ReplaceAll,
}

/// Time functions (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFn {
    /// `toStartOfMinute`.
    StartOfMinute,
    /// `toStartOfHour`.
    StartOfHour,
    /// `toStartOfDay`.
    StartOfDay,
    /// `toYYYYMMDD`.
    YyyyMmDd,
    /// `toStartOfInterval(t, INTERVAL n unit)` for seconds, minutes, hours: the length
    /// in seconds.
    StartOfInterval(i64),
}

/// A pattern of `LIKE`: literal runs, `_` (one character), `%` (any run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LikePart {
    /// Bytes that must match.
    Literal(Vec<u8>),
    /// `_`.
    One,
    /// `%`.
    Any,
}

/// One node of the plan. Every node knows its type.
#[derive(Clone, Debug)]
pub enum Node {
    /// A column of the batch (by index).
    Column(usize, Ty),
    /// A constant.
    Const(Vector),
    /// `now()`: the batch time.
    Now,
    /// Arithmetic.
    Arith(Arith, Box<Node>, Box<Node>, Ty),
    /// Unary minus.
    Negate(Box<Node>, Ty),
    /// A comparison (UInt8).
    Compare(Cmp, Box<Node>, Box<Node>, Domain),
    /// `a AND b AND ...`.
    And(Vec<Node>),
    /// `a OR b OR ...`.
    Or(Vec<Node>),
    /// `NOT a`.
    Not(Box<Node>),
    /// `a IS [NOT] NULL` / `isNull` / `isNotNull` (true = `IS NOT NULL`).
    IsNull(Box<Node>, bool),
    /// `a [NOT] IN (constants)`: the constants in the comparison domain.
    In(Box<Node>, Vec<Node>, Domain, bool),
    /// `a [NOT] [I]LIKE 'pattern'`: (negated, case-insensitive).
    Like(Box<Node>, Vec<LikePart>, bool, bool),
    /// `if(c, a, b)` / `multiIf(c1, a1, ..., else)`: branches already of the result type.
    If(Vec<(Node, Node)>, Box<Node>, Ty),
    /// `coalesce(a, b, ...)` / `ifNull(a, b)`.
    Coalesce(Vec<Node>, Ty),
    /// A conversion (`toInt32`, `toString`, `CAST`, ...) to the type given.
    Convert(Box<Node>, Ty, OnBad),
    /// A string function.
    Str(StrFn, Vec<Node>, Ty),
    /// A time function.
    Time(TimeFn, Box<Node>, Ty),
    /// `round(x, n)`.
    Round(Box<Node>, i32, Ty),
}

impl Node {
    /// The node's type.
    pub fn ty(&self) -> Ty {
        match self {
            Node::Column(_, t)
            | Node::Arith(.., t)
            | Node::Negate(_, t)
            | Node::If(.., t)
            | Node::Coalesce(_, t)
            | Node::Convert(_, t, _)
            | Node::Str(_, _, t)
            | Node::Time(_, _, t)
            | Node::Round(_, _, t) => t.clone(),
            Node::Const(v) => v.ty.clone(),
            Node::Now => Ty::of(super::ty::Base::DateTime),
            Node::Compare(_, a, b, _) => Ty::uint8().with_null(a.ty().nullable || b.ty().nullable),
            // Logic over a Bool gives Bool (ClickHouse 22+), else UInt8.
            Node::And(items) | Node::Or(items) => {
                let bool = items.iter().any(|n| n.ty().base == super::ty::Base::Bool);
                let base = if bool { Ty::of(super::ty::Base::Bool) } else { Ty::uint8() };
                base.with_null(items.iter().any(|n| n.ty().nullable))
            }
            Node::Not(a) => {
                let t = a.ty();
                let base = if t.base == super::ty::Base::Bool { Ty::of(super::ty::Base::Bool) } else { Ty::uint8() };
                base.with_null(t.nullable)
            }
            Node::IsNull(..) => Ty::uint8(),
            Node::In(a, ..) => Ty::uint8().with_null(a.ty().nullable),
            Node::Like(a, ..) => Ty::uint8().with_null(a.ty().nullable),
        }
    }
}
