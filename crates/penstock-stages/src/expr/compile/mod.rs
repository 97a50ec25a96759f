//! From SQL text to a checked plan: parse with sqlparser's ClickHouse dialect, resolve
//! every column against the batch's columns, type every node by ClickHouse's rules,
//! and refuse what Penstock cannot compute the way ClickHouse would — each refusal
//! naming the place in the text (line and column) and what is wrong.

use super::plan::{Cmp, Domain, LikePart, Node, OnBad, StrFn, TimeFn};
use super::ty::{arith_result, supertype, Arith, Base, Ty};
use super::vector::{Data, Strings, Vector};
use super::{text, ExprError};
use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, DateTimeField, ExactNumberInfo, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, InTarget, Spanned, UnaryOperator, Value,
};
use types::{cast_type, domain, like_pattern};
mod functions;
mod types;

use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

/// Every function an expression may call (ClickHouse's names).
pub const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "if",
    "multiIf",
    "coalesce",
    "ifNull",
    "isNull",
    "isNotNull",
    "lower",
    "upper",
    "trim",
    "trimBoth",
    "trimLeft",
    "trimRight",
    "concat",
    "substring",
    "length",
    "replaceAll",
    "toString",
    "toInt8",
    "toInt16",
    "toInt32",
    "toInt64",
    "toUInt8",
    "toUInt16",
    "toUInt32",
    "toUInt64",
    "toFloat32",
    "toFloat64",
    "toDecimal32",
    "toDecimal64",
    "toDecimal128",
    "toDate",
    "toDateTime",
    "toStartOfMinute",
    "toStartOfHour",
    "toStartOfDay",
    "toStartOfInterval",
    "toYYYYMMDD",
    "round",
    "intDiv",
    "now",
];

/// The columns an expression can name, in block order, each with its expression type
/// (or why its type cannot be used).
pub type Columns<'a> = &'a [(String, Result<Ty, String>)];

/// Parses and checks `text` against `columns`.
pub fn compile(text: &str, columns: Columns<'_>) -> Result<Node, ExprError> {
    let dialect = ClickHouseDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(|e| ExprError::parse(e.to_string()))?;
    let expr = parser.parse_expr().map_err(|e| ExprError::parse(e.to_string()))?;
    let rest = parser.peek_token();
    if rest.token != sqlparser::tokenizer::Token::EOF {
        return Err(ExprError::at(
            rest.span.start.line,
            rest.span.start.column,
            format!("unexpected `{}` after the expression", rest.token),
        ));
    }
    Checker { columns }.node(&expr)
}

struct Checker<'a> {
    columns: Columns<'a>,
}

pub(super) fn err(e: &Expr, message: impl Into<String>) -> ExprError {
    let at = e.span().start;
    ExprError::at(at.line, at.column, message.into())
}

/// A constant of one row.
pub(super) fn constant(ty: Ty, data: Data, null: bool) -> Node {
    Node::Const(Vector { ty, nulls: null.then(|| vec![true]), data, constant: true, len: 1 })
}

pub(super) fn int_const(v: i128, base: Base) -> Node {
    constant(Ty::of(base), Data::Int(vec![v]), false)
}

pub(super) fn str_const(s: &[u8]) -> Node {
    let mut st = Strings::with_capacity(1);
    st.push(s);
    constant(Ty::of(Base::String), Data::Str(st), false)
}

/// The smallest type of an integer literal, as ClickHouse types it.
fn literal_int_type(v: i128) -> Option<Base> {
    let (signed, bits) = if v >= 0 {
        match v {
            0..=0xFF => (false, 8),
            0x100..=0xFFFF => (false, 16),
            0x1_0000..=0xFFFF_FFFF => (false, 32),
            _ if v <= i128::from(u64::MAX) => (false, 64),
            _ => return None,
        }
    } else {
        match v {
            -0x80..=-1 => (true, 8),
            -0x8000..=-0x81 => (true, 16),
            -0x8000_0000..=-0x8001 => (true, 32),
            _ if v >= i128::from(i64::MIN) => (true, 64),
            _ => return None,
        }
    };
    Some(Base::Int { signed, bits })
}

/// The string of a constant node, if it is one.
pub(super) fn const_str(n: &Node) -> Option<&[u8]> {
    match n {
        Node::Const(v) if matches!(v.data, Data::Str(_)) && !v.is_null(0) => Some(v.bytes(0)),
        _ => None,
    }
}

pub(super) fn const_int(n: &Node) -> Option<i128> {
    match n {
        Node::Const(v) if matches!(v.data, Data::Int(_)) && !v.is_null(0) && v.ty.is_integer() => Some(v.int(0)),
        _ => None,
    }
}

impl Checker<'_> {
    fn node(&self, e: &Expr) -> Result<Node, ExprError> {
        match e {
            Expr::Identifier(id) => self.column(e, &id.value),
            Expr::CompoundIdentifier(parts) => {
                let name: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
                self.column(e, &name.join("."))
            }
            Expr::Nested(inner) => self.node(inner),
            Expr::Value(v) => self.literal(e, &v.value, false),
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => {
                if let Expr::Value(v) = &**expr {
                    return self.literal(e, &v.value, true);
                }
                let a = self.node(expr)?;
                let ty = a.ty();
                let base = arith_result(Arith::Minus, &Ty::uint8(), &ty).map_err(|m| err(e, m))?;
                // ClickHouse: a signed type stays; an unsigned one becomes the next
                // signed width (UInt8 → Int16, UInt64 → Int64); floats and decimals stay.
                let base = match (&ty.base, base) {
                    (Base::Float(b), _) => Base::Float(*b),
                    (Base::Decimal { .. }, _) => ty.base.clone(),
                    (Base::Int { signed: true, bits }, _) => Base::Int { signed: true, bits: *bits },
                    (Base::Int { signed: false, bits }, _) => Base::Int { signed: true, bits: (*bits * 2).min(64) },
                    (_, b) => b,
                };
                Ok(Node::Negate(Box::new(a), Ty { base, nullable: ty.nullable }))
            }
            Expr::UnaryOp { op: UnaryOperator::Plus, expr } => self.node(expr),
            Expr::UnaryOp { op: UnaryOperator::Not, expr } => Ok(Node::Not(Box::new(self.logical(expr)?))),
            Expr::IsNull(a) => Ok(Node::IsNull(Box::new(self.node(a)?), false)),
            Expr::IsNotNull(a) => Ok(Node::IsNull(Box::new(self.node(a)?), true)),
            Expr::BinaryOp { left, op, right } => self.binary(e, left, op, right),
            Expr::Between { expr, negated, low, high } => {
                let ge = self.compare(e, Cmp::Ge, self.node(expr)?, self.node(low)?)?;
                let le = self.compare(e, Cmp::Le, self.node(expr)?, self.node(high)?)?;
                let both = Node::And(vec![ge, le]);
                Ok(if *negated { Node::Not(Box::new(both)) } else { both })
            }
            Expr::In { expr, target: InTarget::List(list), negated, .. } => self.in_list(e, expr, list, *negated),
            Expr::Like { negated, expr, pattern, escape_char: None, any: false } => {
                self.like(e, expr, pattern, *negated, false)
            }
            Expr::ILike { negated, expr, pattern, escape_char: None, any: false } => {
                self.like(e, expr, pattern, *negated, true)
            }
            Expr::Function(f) => self.function(e, f),
            Expr::Cast { kind: CastKind::Cast | CastKind::DoubleColon, expr, data_type, .. } => {
                let target =
                    cast_type(data_type).ok_or_else(|| err(e, format!("CAST to {data_type} is not supported")))?;
                let a = self.node(expr)?;
                self.convert(e, a, target, OnBad::Fail)
            }
            Expr::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.node(expr)?];
                if let Some(f) = substring_from {
                    args.push(self.node(f)?);
                }
                if let Some(f) = substring_for {
                    args.push(self.node(f)?);
                }
                self.string_fn(e, StrFn::Substring, args)
            }
            Expr::Trim { expr, trim_where: None, trim_what: None, trim_characters: None } => {
                let a = self.node(expr)?;
                self.string_fn(e, StrFn::Trim, vec![a])
            }
            Expr::Case { operand: None, conditions, else_result, .. } => {
                let mut pairs = Vec::new();
                for c in conditions {
                    pairs.push((self.logical(&c.condition)?, self.node(&c.result)?));
                }
                let other = match else_result {
                    Some(x) => self.node(x)?,
                    None => constant(Ty { base: Base::Nothing, nullable: true }, Data::Null, true),
                };
                self.branches(e, pairs, other)
            }
            _ => Err(err(e, format!("`{e}` is not supported in Penstock expressions"))),
        }
    }

    fn column(&self, e: &Expr, name: &str) -> Result<Node, ExprError> {
        match self.columns.iter().position(|(n, _)| n == name) {
            Some(i) => match &self.columns[i].1 {
                Ok(ty) => Ok(Node::Column(i, ty.clone())),
                Err(why) => Err(err(e, format!("column `{name}`: {why}"))),
            },
            None => {
                let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
                Err(err(e, format!("unknown column `{name}`; the columns it can use are: {}", names.join(", "))))
            }
        }
    }

    fn literal(&self, e: &Expr, v: &Value, negative: bool) -> Result<Node, ExprError> {
        match v {
            Value::Number(text, _) => {
                let text = if negative { format!("-{text}") } else { text.clone() };
                if let Some(i) = text::read_int(text.as_bytes()) {
                    let base = literal_int_type(i).ok_or_else(|| err(e, format!("integer {text} is too large")))?;
                    Ok(int_const(i, base))
                } else {
                    let f = text::read_float(text.as_bytes()).ok_or_else(|| err(e, format!("bad number {text}")))?;
                    Ok(constant(Ty::of(Base::Float(64)), Data::Float(vec![f]), false))
                }
            }
            Value::SingleQuotedString(s) if !negative => Ok(str_const(s.as_bytes())),
            Value::Boolean(b) if !negative => Ok(int_const(i128::from(*b), Base::Bool)),
            Value::Null if !negative => Ok(constant(Ty { base: Base::Nothing, nullable: true }, Data::Null, true)),
            other => Err(err(e, format!("literal {other} is not supported"))),
        }
    }

    /// A condition: anything whose truth is its value being non-zero.
    fn logical(&self, e: &Expr) -> Result<Node, ExprError> {
        let n = self.node(e)?;
        let ty = n.ty();
        if ty.is_integer() || matches!(ty.base, Base::Nothing | Base::Float(_)) {
            Ok(n)
        } else {
            Err(err(e, format!("a condition must be a number (UInt8), not {ty}")))
        }
    }

    fn binary(&self, e: &Expr, l: &Expr, op: &BinaryOperator, r: &Expr) -> Result<Node, ExprError> {
        let arith = match op {
            BinaryOperator::Plus => Some(Arith::Plus),
            BinaryOperator::Minus => Some(Arith::Minus),
            BinaryOperator::Multiply => Some(Arith::Multiply),
            BinaryOperator::Divide => Some(Arith::Divide),
            BinaryOperator::Modulo => Some(Arith::Modulo),
            _ => None,
        };
        if let Some(op) = arith {
            return self.arith(e, op, self.node(l)?, self.node(r)?);
        }
        let cmp = match op {
            BinaryOperator::Eq => Some(Cmp::Eq),
            BinaryOperator::NotEq => Some(Cmp::Ne),
            BinaryOperator::Lt => Some(Cmp::Lt),
            BinaryOperator::LtEq => Some(Cmp::Le),
            BinaryOperator::Gt => Some(Cmp::Gt),
            BinaryOperator::GtEq => Some(Cmp::Ge),
            _ => None,
        };
        if let Some(c) = cmp {
            return self.compare(e, c, self.node(l)?, self.node(r)?);
        }
        match op {
            BinaryOperator::And => Ok(Node::And(vec![self.logical(l)?, self.logical(r)?])),
            BinaryOperator::Or => Ok(Node::Or(vec![self.logical(l)?, self.logical(r)?])),
            other => Err(err(e, format!("operator {other} is not supported"))),
        }
    }

    fn arith(&self, e: &Expr, op: Arith, a: Node, b: Node) -> Result<Node, ExprError> {
        let (ta, tb) = (a.ty(), b.ty());
        let base = arith_result(op, &ta, &tb).map_err(|m| err(e, m))?;
        Ok(Node::Arith(op, Box::new(a), Box::new(b), Ty { base, nullable: ta.nullable || tb.nullable }))
    }

    /// A comparison; a string constant compared with a time, number or enum is read as
    /// a value of that type first (ClickHouse does the same).
    fn compare(&self, e: &Expr, c: Cmp, a: Node, b: Node) -> Result<Node, ExprError> {
        let a = self.coerce_literal(e, a, &b)?;
        let b = self.coerce_literal(e, b, &a)?;
        let domain = domain(&a.ty(), &b.ty()).map_err(|m| err(e, m))?;
        Ok(Node::Compare(c, Box::new(a), Box::new(b), domain))
    }

    /// `lit` read as a value of `other`'s type when `lit` is a string constant and
    /// `other` is not a string.
    fn coerce_literal(&self, e: &Expr, lit: Node, other: &Node) -> Result<Node, ExprError> {
        let target = other.ty();
        let Some(s) = const_str(&lit) else { return Ok(lit) };
        if matches!(target.base, Base::String | Base::Nothing) {
            return Ok(lit);
        }
        if let Base::Enum { items, .. } = &target.base {
            let label = String::from_utf8_lossy(s);
            let v = items
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, v)| *v)
                .ok_or_else(|| err(e, format!("'{label}' is not an element of {}", target.base)))?;
            return Ok(constant(Ty::of(target.base.clone()), Data::Int(vec![i128::from(v)]), false));
        }
        let v = Vector {
            ty: Ty::of(Base::String),
            data: Data::Str({
                let mut st = Strings::with_capacity(1);
                st.push(s);
                st
            }),
            nulls: None,
            constant: true,
            len: 1,
        };
        let converted = super::eval::convert(&v, &Ty::of(target.base.clone()), OnBad::Null);
        if converted.is_null(0) {
            return Err(err(e, format!("'{}' cannot be read as {}", String::from_utf8_lossy(s), target.base)));
        }
        Ok(Node::Const(Vector { ty: Ty::of(target.base), nulls: None, constant: true, ..converted }))
    }

    fn in_list(&self, e: &Expr, x: &Expr, list: &[Expr], negated: bool) -> Result<Node, ExprError> {
        let a = self.node(x)?;
        let mut items = Vec::new();
        let mut dom = None;
        for item in list {
            let n = self.node(item)?;
            if !matches!(n, Node::Const(_)) {
                return Err(err(item, "IN takes a list of constants"));
            }
            let n = self.coerce_literal(item, n, &a)?;
            let d = domain(&a.ty(), &n.ty()).map_err(|m| err(item, m))?;
            if dom.is_some_and(|p| p != d) {
                return Err(err(item, "the constants of an IN list must have one type"));
            }
            dom = Some(d);
            items.push(n);
        }
        let d = dom.ok_or_else(|| err(e, "an empty IN list"))?;
        Ok(Node::In(Box::new(a), items, d, negated))
    }

    fn like(&self, e: &Expr, x: &Expr, pattern: &Expr, negated: bool, ci: bool) -> Result<Node, ExprError> {
        let a = self.node(x)?;
        if a.ty().base != Base::String {
            return Err(err(x, format!("LIKE needs a String, not {}", a.ty())));
        }
        let p = self.node(pattern)?;
        let Some(text) = const_str(&p) else { return Err(err(pattern, "the LIKE pattern must be a constant string")) };
        let text = if ci { text.to_ascii_lowercase() } else { text.to_vec() };
        let _ = e;
        Ok(Node::Like(Box::new(a), like_pattern(&text), negated, ci))
    }

    fn args(&self, e: &Expr, f: &Function) -> Result<Vec<Node>, ExprError> {
        let list = match &f.args {
            FunctionArguments::None => return Ok(Vec::new()),
            FunctionArguments::List(l) => l,
            FunctionArguments::Subquery(_) => return Err(err(e, "subqueries are not supported")),
        };
        list.args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => self.node(x),
                _ => Err(err(e, format!("argument `{a}` is not supported"))),
            })
            .collect()
    }
}
