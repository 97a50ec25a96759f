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

fn err(e: &Expr, message: impl Into<String>) -> ExprError {
    let at = e.span().start;
    ExprError::at(at.line, at.column, message.into())
}

/// A constant of one row.
fn constant(ty: Ty, data: Data, null: bool) -> Node {
    Node::Const(Vector { ty, nulls: null.then(|| vec![true]), data, constant: true, len: 1 })
}

fn int_const(v: i128, base: Base) -> Node {
    constant(Ty::of(base), Data::Int(vec![v]), false)
}

fn str_const(s: &[u8]) -> Node {
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
fn const_str(n: &Node) -> Option<&[u8]> {
    match n {
        Node::Const(v) if matches!(v.data, Data::Str(_)) && !v.is_null(0) => Some(v.bytes(0)),
        _ => None,
    }
}

fn const_int(n: &Node) -> Option<i128> {
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

    fn function(&self, e: &Expr, f: &Function) -> Result<Node, ExprError> {
        let name = f.name.to_string();
        let lower = name.to_ascii_lowercase();
        // toStartOfInterval takes an INTERVAL, not an expression.
        if lower == "tostartofinterval" {
            return self.start_of_interval(e, f);
        }
        let mut args = self.args(e, f)?;
        let n = args.len();
        let want = |k: usize| -> Result<(), ExprError> {
            if n == k {
                Ok(())
            } else {
                Err(err(e, format!("{name} takes {k} argument(s), not {n}")))
            }
        };
        let conversion = |target: Base| -> Option<(Ty, OnBad)> {
            let rest = name.strip_prefix("to")?;
            let bad = if rest.ends_with("OrNull") {
                OnBad::Null
            } else if rest.ends_with("OrZero") {
                OnBad::Zero
            } else {
                OnBad::Fail
            };
            Some((Ty::of(target), bad))
        };
        let int_target = |s: &str| -> Option<Base> {
            let s = s.trim_end_matches("OrNull").trim_end_matches("OrZero");
            Some(match s {
                "toInt8" => Base::Int { signed: true, bits: 8 },
                "toInt16" => Base::Int { signed: true, bits: 16 },
                "toInt32" => Base::Int { signed: true, bits: 32 },
                "toInt64" => Base::Int { signed: true, bits: 64 },
                "toUInt8" => Base::Int { signed: false, bits: 8 },
                "toUInt16" => Base::Int { signed: false, bits: 16 },
                "toUInt32" => Base::Int { signed: false, bits: 32 },
                "toUInt64" => Base::Int { signed: false, bits: 64 },
                "toFloat32" => Base::Float(32),
                "toFloat64" => Base::Float(64),
                "toDate" => Base::Date,
                "toDateTime" => Base::DateTime,
                _ => return None,
            })
        };
        if let Some(base) = int_target(&name) {
            want(1)?;
            let (ty, bad) = conversion(base).expect("a to* name");
            return self.convert(e, args.remove(0), ty, bad);
        }
        if let Some(rest) = name.strip_prefix("toDecimal") {
            let class = rest.trim_end_matches("OrNull").trim_end_matches("OrZero");
            let precision = match class {
                "32" => 9,
                "64" => 18,
                "128" => 38,
                _ => return Err(self.unknown(e, &name)),
            };
            want(2)?;
            let scale = const_int(&args[1])
                .and_then(|s| u8::try_from(s).ok())
                .filter(|s| *s <= precision)
                .ok_or_else(|| err(e, format!("{name}: the scale must be a constant from 0 to {precision}")))?;
            let (ty, bad) = conversion(Base::Decimal { precision, scale }).expect("a to* name");
            return self.convert(e, args.remove(0), ty, bad);
        }
        match lower.as_str() {
            "and" | "or" => {
                if n < 2 {
                    return Err(err(e, format!("{name} takes at least 2 arguments")));
                }
                let nodes = self.check_logical(e, args)?;
                Ok(if lower == "and" { Node::And(nodes) } else { Node::Or(nodes) })
            }
            "not" => {
                want(1)?;
                Ok(Node::Not(Box::new(self.check_logical(e, args)?.remove(0))))
            }
            "if" => {
                want(3)?;
                let other = args.pop().expect("3 args");
                let then = args.pop().expect("3 args");
                let cond = self.check_logical(e, vec![args.pop().expect("3 args")])?.remove(0);
                self.branches(e, vec![(cond, then)], other)
            }
            "multiif" => {
                if n < 3 || n % 2 == 0 {
                    return Err(err(e, "multiIf takes cond1, then1, ..., else (an odd number, at least 3)"));
                }
                let other = args.pop().expect("odd count");
                let mut pairs = Vec::new();
                let mut it = args.into_iter();
                while let (Some(c), Some(t)) = (it.next(), it.next()) {
                    pairs.push((self.check_logical(e, vec![c])?.remove(0), t));
                }
                self.branches(e, pairs, other)
            }
            "coalesce" | "ifnull" => {
                if lower == "ifnull" {
                    want(2)?;
                } else if n == 0 {
                    return Err(err(e, "coalesce takes at least 1 argument"));
                }
                let mut ty = args[0].ty();
                for a in &args[1..] {
                    ty = supertype(&ty, &a.ty()).map_err(|m| err(e, m))?;
                }
                // NULL only when every argument can be.
                ty.nullable = args.iter().all(|a| a.ty().nullable);
                let target = Ty { base: ty.base.clone(), nullable: true };
                let args = args.into_iter().map(|a| self.same(e, a, &target)).collect::<Result<_, _>>()?;
                Ok(Node::Coalesce(args, ty))
            }
            "isnull" | "isnotnull" => {
                want(1)?;
                Ok(Node::IsNull(Box::new(args.remove(0)), lower == "isnotnull"))
            }
            "lower" => self.string_fn(e, StrFn::Lower, args),
            "upper" => self.string_fn(e, StrFn::Upper, args),
            "trim" | "trimboth" => self.string_fn(e, StrFn::Trim, args),
            "trimleft" => self.string_fn(e, StrFn::TrimLeft, args),
            "trimright" => self.string_fn(e, StrFn::TrimRight, args),
            "concat" => self.string_fn(e, StrFn::Concat, args),
            "substring" | "substr" => self.string_fn(e, StrFn::Substring, args),
            "length" => self.string_fn(e, StrFn::Length, args),
            "replaceall" => self.string_fn(e, StrFn::ReplaceAll, args),
            "tostring" => {
                want(1)?;
                self.convert(e, args.remove(0), Ty::of(Base::String), OnBad::Fail)
            }
            "tostartofminute" | "tostartofhour" | "tostartofday" | "toyyyymmdd" => {
                want(1)?;
                let f = match lower.as_str() {
                    "tostartofminute" => TimeFn::StartOfMinute,
                    "tostartofhour" => TimeFn::StartOfHour,
                    "tostartofday" => TimeFn::StartOfDay,
                    _ => TimeFn::YyyyMmDd,
                };
                self.time_fn(e, f, args.remove(0))
            }
            "round" => {
                if n == 0 || n > 2 {
                    return Err(err(e, "round takes 1 or 2 arguments"));
                }
                let digits = if n == 2 {
                    const_int(&args[1])
                        .and_then(|d| i32::try_from(d).ok())
                        .ok_or_else(|| err(e, "round: the number of digits must be a constant integer"))?
                } else {
                    0
                };
                let x = args.remove(0);
                let ty = x.ty();
                if !ty.is_number() {
                    return Err(err(e, format!("round needs a number, not {ty}")));
                }
                Ok(Node::Round(Box::new(x), digits, ty))
            }
            "intdiv" => {
                want(2)?;
                let b = args.pop().expect("2 args");
                let a = args.pop().expect("2 args");
                if !a.ty().is_integer() || !b.ty().is_integer() {
                    return Err(err(e, "intDiv needs integers"));
                }
                self.arith(e, Arith::IntDiv, a, b)
            }
            "now" => {
                want(0)?;
                Ok(Node::Now)
            }
            _ => Err(self.unknown(e, &name)),
        }
    }

    fn unknown(&self, e: &Expr, name: &str) -> ExprError {
        err(e, format!("unknown function {name}; the functions Penstock computes are: {}", FUNCTIONS.join(", ")))
    }

    fn check_logical(&self, e: &Expr, args: Vec<Node>) -> Result<Vec<Node>, ExprError> {
        for a in &args {
            let t = a.ty();
            if !(t.is_integer() || matches!(t.base, Base::Nothing | Base::Float(_))) {
                return Err(err(e, format!("a condition must be a number (UInt8), not {t}")));
            }
        }
        Ok(args)
    }

    /// `if`/`multiIf`/`CASE`: every branch converted to the branches' supertype.
    fn branches(&self, e: &Expr, pairs: Vec<(Node, Node)>, other: Node) -> Result<Node, ExprError> {
        let mut ty = other.ty();
        for (_, t) in &pairs {
            ty = supertype(&ty, &t.ty()).map_err(|m| err(e, m))?;
        }
        let pairs =
            pairs.into_iter().map(|(c, t)| Ok((c, self.same(e, t, &ty)?))).collect::<Result<Vec<_>, ExprError>>()?;
        let other = self.same(e, other, &ty)?;
        Ok(Node::If(pairs, Box::new(other), ty))
    }

    /// `n` converted to `ty` when its base differs (a lossless widening, by supertype).
    fn same(&self, e: &Expr, n: Node, ty: &Ty) -> Result<Node, ExprError> {
        if n.ty().base == ty.base || matches!(n.ty().base, Base::Nothing) {
            Ok(n)
        } else {
            let nullable = n.ty().nullable;
            self.convert(e, n, Ty { base: ty.base.clone(), nullable }, OnBad::Fail)
        }
    }

    /// A conversion to `target` (its nullability: the argument's, or NULL on bad input
    /// for `OrNull`).
    fn convert(&self, e: &Expr, a: Node, target: Ty, bad: OnBad) -> Result<Node, ExprError> {
        let from = a.ty();
        let ok = match (&from.base, &target.base) {
            (Base::Nothing, _) => true,
            (_, Base::String) => true,
            (Base::String, _) => true,
            (f, Base::Int { .. } | Base::Float(_) | Base::Decimal { .. } | Base::Bool) => {
                matches!(
                    f,
                    Base::Int { .. }
                        | Base::Bool
                        | Base::Float(_)
                        | Base::Decimal { .. }
                        | Base::Date
                        | Base::DateTime
                        | Base::Enum { .. }
                )
            }
            (f, Base::Date | Base::DateTime | Base::DateTime64(_)) => {
                matches!(f, Base::Int { .. } | Base::Date | Base::DateTime | Base::DateTime64(_))
            }
            _ => false,
        };
        if !ok {
            return Err(err(e, format!("cannot convert {} to {}", from.base, target.base)));
        }
        let nullable = from.nullable || bad == OnBad::Null;
        Ok(Node::Convert(Box::new(a), Ty { base: target.base, nullable }, bad))
    }

    fn string_fn(&self, e: &Expr, f: StrFn, args: Vec<Node>) -> Result<Node, ExprError> {
        let n = args.len();
        let arity_ok = match f {
            StrFn::Concat => n >= 2,
            StrFn::Substring => n == 2 || n == 3,
            StrFn::ReplaceAll => n == 3,
            _ => n == 1,
        };
        if !arity_ok {
            return Err(err(e, format!("wrong number of arguments ({n}) for {f:?}")));
        }
        let nullable = args.iter().any(|a| a.ty().nullable);
        for (i, a) in args.iter().enumerate() {
            let t = a.ty();
            let want_string = match f {
                StrFn::Substring => i == 0,
                StrFn::Concat => false,
                _ => true,
            };
            if matches!(t.base, Base::Nothing) {
                continue;
            }
            if want_string && t.base != Base::String {
                return Err(err(e, format!("argument {} must be a String, not {t}", i + 1)));
            }
            if f == StrFn::Substring && i > 0 && !t.is_integer() {
                return Err(err(e, format!("argument {} of substring must be an integer, not {t}", i + 1)));
            }
        }
        // concat of non-strings: ClickHouse converts them to text.
        let args = if f == StrFn::Concat {
            args.into_iter()
                .map(|a| {
                    if a.ty().base == Base::String {
                        Ok(a)
                    } else {
                        self.convert(e, a, Ty::of(Base::String), OnBad::Fail)
                    }
                })
                .collect::<Result<_, _>>()?
        } else {
            args
        };
        let base = if f == StrFn::Length { Base::Int { signed: false, bits: 64 } } else { Base::String };
        Ok(Node::Str(f, args, Ty { base, nullable }))
    }

    fn time_fn(&self, e: &Expr, f: TimeFn, a: Node) -> Result<Node, ExprError> {
        let t = a.ty();
        if !t.is_time() {
            return Err(err(e, format!("{f:?} needs a Date or DateTime, not {t}")));
        }
        let base = match f {
            TimeFn::YyyyMmDd => Base::Int { signed: false, bits: 32 },
            _ => Base::DateTime,
        };
        if f != TimeFn::YyyyMmDd && matches!(t.base, Base::Date) && f != TimeFn::StartOfDay {
            return Err(err(e, format!("{f:?} needs a DateTime, not Date")));
        }
        Ok(Node::Time(f, Box::new(a), Ty { base, nullable: t.nullable }))
    }

    fn start_of_interval(&self, e: &Expr, f: &Function) -> Result<Node, ExprError> {
        let FunctionArguments::List(list) = &f.args else {
            return Err(err(e, "toStartOfInterval(time, INTERVAL n unit)"));
        };
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(t)), FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Interval(iv)))] =
            list.args.as_slice()
        else {
            return Err(err(
                e,
                "toStartOfInterval takes a time and an INTERVAL, e.g. toStartOfInterval(t, INTERVAL 5 MINUTE)",
            ));
        };
        let n = match self.node(&iv.value)? {
            ref c if const_int(c).is_some() => const_int(c).expect("checked"),
            _ => return Err(err(e, "the INTERVAL length must be a constant integer")),
        };
        let unit = match iv.leading_field {
            Some(DateTimeField::Second) => 1,
            Some(DateTimeField::Minute) => 60,
            Some(DateTimeField::Hour) => 3600,
            _ => return Err(err(e, "toStartOfInterval: Penstock computes SECOND, MINUTE and HOUR intervals")),
        };
        if n <= 0 {
            return Err(err(e, "the INTERVAL length must be positive"));
        }
        let a = self.node(t)?;
        if !matches!(a.ty().base, Base::DateTime) {
            return Err(err(e, format!("toStartOfInterval needs a DateTime, not {}", a.ty())));
        }
        let nullable = a.ty().nullable;
        Ok(Node::Time(TimeFn::StartOfInterval(n as i64 * unit), Box::new(a), Ty { base: Base::DateTime, nullable }))
    }
}

/// How values of `a` and `b` compare, or why they cannot.
fn domain(a: &Ty, b: &Ty) -> Result<Domain, String> {
    use Base::*;
    let no = || format!("cannot compare {} with {}", a.base, b.base);
    let same = Domain::Int { left: 1, right: 1 };
    let pow = |k: u8| 10i128.pow(u32::from(k));
    // A time as (is days, ticks precision).
    let time = |t: &Base| match t {
        Date => Some((true, 0u8)),
        DateTime => Some((false, 0u8)),
        DateTime64(p) => Some((false, *p)),
        _ => None,
    };
    Ok(match (&a.base, &b.base) {
        (Nothing, _) | (_, Nothing) => same,
        (String, String) => Domain::Bytes,
        (String, _) | (_, String) => return Err(no()),
        (Float(_), _) | (_, Float(_)) if a.is_number() && b.is_number() => Domain::Float,
        (Decimal { scale: x, .. }, Decimal { scale: y, .. }) => {
            let s = (*x).max(*y);
            Domain::Int { left: pow(s - x), right: pow(s - y) }
        }
        (Decimal { scale, .. }, _) if b.is_integer() => Domain::Int { left: 1, right: pow(*scale) },
        (_, Decimal { scale, .. }) if a.is_integer() => Domain::Int { left: pow(*scale), right: 1 },
        (Enum { .. }, Enum { .. }) if a.base == b.base => same,
        (Enum { .. }, _) if b.is_integer() => same,
        (_, Enum { .. }) if a.is_integer() => same,
        _ if a.is_integer() && b.is_integer() => same,
        _ => match (time(&a.base), time(&b.base)) {
            (Some((da, pa)), Some((db, pb))) => {
                let p = pa.max(pb);
                let mul = |days: bool, q: u8| if days { 86_400 * pow(p) } else { pow(p - q) };
                if da && db {
                    same
                } else {
                    Domain::Int { left: mul(da, pa), right: mul(db, pb) }
                }
            }
            _ => return Err(no()),
        },
    })
}

fn like_pattern(p: &[u8]) -> Vec<LikePart> {
    let mut parts = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => {
                lit.push(p[i + 1]);
                i += 1;
            }
            b'%' | b'_' => {
                if !lit.is_empty() {
                    parts.push(LikePart::Literal(std::mem::take(&mut lit)));
                }
                parts.push(if p[i] == b'%' { LikePart::Any } else { LikePart::One });
            }
            b => lit.push(b),
        }
        i += 1;
    }
    if !lit.is_empty() {
        parts.push(LikePart::Literal(lit));
    }
    parts
}

/// The target of `CAST(x AS T)`: ClickHouse's type names in any letter case, and the
/// SQL aliases ClickHouse accepts (`INT`, `BIGINT`, `DOUBLE`, `TEXT`, `VARCHAR`...).
fn cast_type(t: &DataType) -> Option<Ty> {
    const NAMES: &[(&str, &str)] = &[
        ("NULLABLE", "Nullable"),
        ("LOWCARDINALITY", "LowCardinality"),
        ("DATETIME64", "DateTime64"),
        ("DATETIME", "DateTime"),
        ("DATE32", "Date32"),
        ("DATE", "Date"),
        ("DECIMAL", "Decimal"),
        ("UINT8", "UInt8"),
        ("UINT16", "UInt16"),
        ("UINT32", "UInt32"),
        ("UINT64", "UInt64"),
        ("INT8", "Int8"),
        ("INT16", "Int16"),
        ("INT32", "Int32"),
        ("INT64", "Int64"),
        ("FLOAT32", "Float32"),
        ("FLOAT64", "Float64"),
        ("STRING", "String"),
        ("BOOL", "Bool"),
        ("TINYINT", "Int8"),
        ("SMALLINT", "Int16"),
        ("BIGINT", "Int64"),
        ("INTEGER", "Int32"),
        ("INT", "Int32"),
        ("DOUBLE", "Float64"),
        ("FLOAT", "Float32"),
        ("TEXT", "String"),
        ("VARCHAR", "String"),
        ("BOOLEAN", "Bool"),
    ];
    let text = t.to_string();
    let mut out = String::new();
    let mut rest = text.as_str();
    'scan: while !rest.is_empty() {
        let upper = rest.to_ascii_uppercase();
        for (from, to) in NAMES {
            let after = upper.as_bytes().get(from.len()).copied();
            if upper.starts_with(from) && !after.is_some_and(|c| c.is_ascii_alphanumeric()) {
                out.push_str(to);
                rest = &rest[from.len()..];
                continue 'scan;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let parsed = penstock_codec::ColumnType::parse(&out).ok()?;
    let _ = ExactNumberInfo::None;
    Ty::from_column(&parsed).ok()
}
