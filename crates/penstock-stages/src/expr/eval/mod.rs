//! Running a plan over a batch, one node at a time over whole columns: each node reads
//! its inputs' vectors and writes one output vector, in a loop per kernel — no value
//! tree per row, no allocation per row.
//!
//! A row whose value cannot be computed the way ClickHouse would throw (a bad cast
//! without `OrNull`, a division by zero in `intDiv`/`%`/decimals, a decimal overflow)
//! is recorded in [`RowErrors`] and gets the type's default; the stage drops it and the
//! pipeline dead-letters it. Errors from a branch of `if`/`multiIf`/`CASE` count only
//! for rows that take that branch (ClickHouse's short-circuit evaluation).

mod arith;
mod compare;
mod convert;
mod strings;

use super::plan::{Cmp, Domain, LikePart, Node, OnBad, StrFn, TimeFn};
use super::text;
use super::ty::{wrap, Arith, Base, Repr, Ty};
use super::vector::{Data, Strings, Vector};
use arith::{arith, round_away};
use compare::{compare, like, ordered};
pub use convert::{convert, convert_rows};
use penstock_codec::datetime::civil_from_days;
use penstock_codec::Block;
use strings::string_fn;

/// Rows that could not be computed, with why (the first reason of each row).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RowErrors {
    /// (row, reason), rows in no particular order.
    pub rows: Vec<(usize, String)>,
}

impl RowErrors {
    fn add(&mut self, row: usize, why: impl Into<String>) {
        self.rows.push((row, why.into()));
    }
}

/// What a plan runs over.
pub struct Ctx<'a> {
    /// The batch's columns.
    pub block: &'a Block,
    /// The expression types of the block's columns.
    pub types: &'a [Ty],
    /// Rows.
    pub rows: usize,
    /// The batch time, seconds (for `now()`).
    pub now: i64,
}

/// Evaluates `node` over every row of the batch.
pub fn eval(node: &Node, cx: &Ctx<'_>, errs: &mut RowErrors) -> Vector {
    let n = cx.rows;
    match node {
        Node::Column(i, ty) => Vector::from_column(&cx.block.columns()[*i], ty, n),
        Node::Const(v) => Vector { len: n, constant: true, ..v.clone() },
        Node::Now => {
            Vector { ty: node.ty(), data: Data::Int(vec![i128::from(cx.now)]), nulls: None, constant: true, len: n }
        }
        Node::Arith(op, a, b, ty) => {
            let (x, y) = (eval(a, cx, errs), eval(b, cx, errs));
            arith(*op, &x, &y, ty, n, errs)
        }
        Node::Negate(a, ty) => {
            let x = eval(a, cx, errs);
            let data = match (&ty.repr(), &ty.base) {
                (Repr::Float, _) => Data::Float((0..n).map(|i| -x.float(i)).collect()),
                (_, Base::Int { signed, bits }) => Data::Int((0..n).map(|i| wrap(-x.int(i), *signed, *bits)).collect()),
                _ => Data::Int((0..n).map(|i| -x.int(i)).collect()),
            };
            out(ty, data, nulls_of(&[&x], n))
        }
        Node::Compare(c, a, b, d) => {
            let (x, y) = (eval(a, cx, errs), eval(b, cx, errs));
            let ty = node.ty();
            if matches!(x.data, Data::Null) || matches!(y.data, Data::Null) {
                return Vector::nulls_of(ty, n);
            }
            // Fast path: integers against a constant (the common filter shape).
            let v: Vec<i128> = match (x.ints(), y.constant, *d) {
                (Some(xs), true, Domain::Int { left, right }) if !y.is_null(0) => {
                    let k = y.int(0).saturating_mul(right);
                    xs.iter().map(|a| i128::from(ordered(*c, a.saturating_mul(left).cmp(&k)))).collect()
                }
                _ => (0..n).map(|i| i128::from(compare(*c, *d, &x, i, &y, i))).collect(),
            };
            out(&ty, Data::Int(v), nulls_of(&[&x, &y], n))
        }
        Node::And(items) | Node::Or(items) => {
            let and = matches!(node, Node::And(_));
            let vs: Vec<Vector> = items.iter().map(|x| eval(x, cx, errs)).collect();
            // Fast path: no NULLs, every operand a column of integers.
            let all: Option<Vec<&[i128]>> =
                vs.iter().map(|v| if v.nulls.is_none() { v.ints() } else { None }).collect();
            if let Some(all) = all {
                let v = (0..n)
                    .map(|i| {
                        i128::from(if and { all.iter().all(|c| c[i] != 0) } else { all.iter().any(|c| c[i] != 0) })
                    })
                    .collect();
                return out(&node.ty(), Data::Int(v), None);
            }
            let mut nulls = vec![false; n];
            let v = (0..n)
                .map(|i| {
                    let decided = vs.iter().any(|v| !v.is_null(i) && v.truthy(i) != and);
                    if decided {
                        i128::from(!and)
                    } else if vs.iter().any(|v| v.is_null(i)) {
                        nulls[i] = true;
                        0
                    } else {
                        i128::from(and)
                    }
                })
                .collect();
            let ty = node.ty();
            let nulls = ty.nullable.then_some(nulls);
            out(&ty, Data::Int(v), nulls)
        }
        Node::Not(a) => {
            let x = eval(a, cx, errs);
            let v = (0..n).map(|i| i128::from(!x.truthy(i))).collect();
            out(&node.ty(), Data::Int(v), nulls_of(&[&x], n))
        }
        Node::IsNull(a, not) => {
            let x = eval(a, cx, errs);
            out(&node.ty(), Data::Int((0..n).map(|i| i128::from(x.is_null(i) != *not)).collect()), None)
        }
        Node::In(a, items, d, negated) => {
            let x = eval(a, cx, errs);
            let set: Vec<Vector> = items.iter().map(|c| eval(c, cx, errs)).collect();
            let v = match (x.ints(), *d) {
                (Some(xs), Domain::Int { left, right }) => {
                    let keys: Vec<i128> =
                        set.iter().filter(|s| !s.is_null(0)).map(|s| s.int(0).saturating_mul(right)).collect();
                    xs.iter().map(|a| i128::from(keys.contains(&a.saturating_mul(left)) != *negated)).collect()
                }
                _ => (0..n)
                    .map(|i| {
                        let found = set.iter().any(|s| !s.is_null(0) && compare(Cmp::Eq, *d, &x, i, s, 0));
                        i128::from(found != *negated)
                    })
                    .collect(),
            };
            out(&node.ty(), Data::Int(v), nulls_of(&[&x], n))
        }
        Node::Like(a, parts, negated, ci) => {
            let x = eval(a, cx, errs);
            let mut lower = Vec::new();
            let v = (0..n)
                .map(|i| {
                    let s = x.bytes(i);
                    let s = if *ci {
                        lower.clear();
                        lower.extend(s.iter().map(u8::to_ascii_lowercase));
                        lower.as_slice()
                    } else {
                        s
                    };
                    i128::from(like(s, parts) != *negated)
                })
                .collect();
            out(&node.ty(), Data::Int(v), nulls_of(&[&x], n))
        }
        Node::If(pairs, other, ty) => {
            // Which branch each row takes: the first true condition, else the last.
            let mut choice = vec![pairs.len(); n];
            for (k, (c, _)) in pairs.iter().enumerate().rev() {
                let cv = eval(c, cx, errs);
                for (i, ch) in choice.iter_mut().enumerate() {
                    if cv.truthy(i) {
                        *ch = k;
                    }
                }
            }
            let mut branches = Vec::with_capacity(pairs.len() + 1);
            for (k, b) in pairs.iter().map(|(_, t)| t).chain(std::iter::once(&**other)).enumerate() {
                let mut own = RowErrors::default();
                branches.push(eval(b, cx, &mut own));
                errs.rows.extend(own.rows.into_iter().filter(|(r, _)| choice[*r] == k));
            }
            pick(ty, n, |i| (&branches[choice[i]], i))
        }
        Node::Coalesce(args, ty) => {
            let vs: Vec<Vector> = args.iter().map(|a| eval(a, cx, errs)).collect();
            let last = vs.len() - 1;
            pick(ty, n, |i| (&vs[vs.iter().position(|v| !v.is_null(i)).unwrap_or(last)], i))
        }
        Node::Convert(a, ty, bad) => {
            let x = eval(a, cx, errs);
            convert_rows(&x, ty, *bad, Some(errs))
        }
        Node::Str(f, args, ty) => {
            let vs: Vec<Vector> = args.iter().map(|a| eval(a, cx, errs)).collect();
            string_fn(*f, &vs, ty, n)
        }
        Node::Time(f, a, ty) => {
            let x = eval(a, cx, errs);
            let secs = |i: usize| match x.ty.base {
                Base::Date => x.int(i) as i64 * 86_400,
                Base::DateTime64(p) => x.int(i).div_euclid(10i128.pow(u32::from(p))) as i64,
                _ => x.int(i) as i64,
            };
            let v = (0..n)
                .map(|i| {
                    let s = secs(i);
                    i128::from(match f {
                        TimeFn::StartOfMinute => s - s.rem_euclid(60),
                        TimeFn::StartOfHour => s - s.rem_euclid(3600),
                        // A Date past DateTime's range saturates, as ClickHouse does.
                        TimeFn::StartOfDay => (s - s.rem_euclid(86_400)).min(i64::from(u32::MAX)),
                        TimeFn::StartOfInterval(len) => {
                            if *len < 3600 || 86_400 % len == 0 {
                                s - s.rem_euclid(*len)
                            } else {
                                let day = s - s.rem_euclid(86_400);
                                day + (s - day) / len * len
                            }
                        }
                        TimeFn::YyyyMmDd => {
                            let (y, m, d) = civil_from_days(s.div_euclid(86_400));
                            y * 10_000 + i64::from(m) * 100 + i64::from(d)
                        }
                    })
                })
                .collect();
            out(ty, Data::Int(v), nulls_of(&[&x], n))
        }
        Node::Round(a, digits, ty) => {
            let x = eval(a, cx, errs);
            let d = *digits;
            let data = match &ty.base {
                Base::Float(bits) => Data::Float(
                    (0..n)
                        .map(|i| {
                            let v = x.float(i);
                            let r = if d >= 0 {
                                let m = 10f64.powi(d);
                                (v * m).round_ties_even() / m
                            } else {
                                let m = 10f64.powi(-d);
                                (v / m).round_ties_even() * m
                            };
                            if *bits == 32 {
                                f64::from(r as f32)
                            } else {
                                r
                            }
                        })
                        .collect(),
                ),
                Base::Decimal { scale, .. } => {
                    let cut = i32::from(*scale) - d;
                    Data::Int(
                        (0..n)
                            .map(|i| if cut <= 0 { x.int(i) } else { round_away(x.int(i), 10i128.pow(cut as u32)) })
                            .collect(),
                    )
                }
                _ => {
                    let (signed, bits) = ty.int_shape().unwrap_or((true, 64));
                    Data::Int(
                        (0..n)
                            .map(|i| {
                                if d >= 0 {
                                    return x.int(i);
                                }
                                // As ClickHouse: (x ± k/2) / k * k in the type's width.
                                let k = 10i128.pow((-d) as u32);
                                let v = x.int(i);
                                let shifted = wrap(if v >= 0 { v + k / 2 } else { v - k / 2 }, signed, bits);
                                wrap(shifted / k * k, signed, bits)
                            })
                            .collect(),
                    )
                }
            };
            out(ty, data, nulls_of(&[&x], n))
        }
    }
}

pub(super) fn out(ty: &Ty, data: Data, nulls: Option<Vec<bool>>) -> Vector {
    let len = match &data {
        Data::Int(v) => v.len(),
        Data::Float(v) => v.len(),
        Data::Str(s) => s.len(),
        Data::Null => 0,
    };
    Vector { ty: ty.clone(), data, nulls: if ty.nullable { nulls } else { None }, constant: false, len }
}

/// The union of the inputs' null maps (NULL in → NULL out), or `None` when none is nullable.
pub(super) fn nulls_of(inputs: &[&Vector], n: usize) -> Option<Vec<bool>> {
    if !inputs.iter().any(|v| v.nulls.is_some() || matches!(v.data, Data::Null)) {
        return None;
    }
    Some((0..n).map(|i| inputs.iter().any(|v| v.is_null(i))).collect())
}

/// Row by row, the value of the vector `from(i)` names (all of `ty`'s base).
pub(super) fn pick<'v>(ty: &Ty, n: usize, from: impl Fn(usize) -> (&'v Vector, usize)) -> Vector {
    let mut nulls = vec![false; n];
    let data = match ty.repr() {
        Repr::Float => Data::Float(
            (0..n)
                .map(|i| {
                    let (v, r) = from(i);
                    nulls[i] = v.is_null(r);
                    v.float(r)
                })
                .collect(),
        ),
        Repr::Str => {
            let mut s = Strings::with_capacity(n);
            for (i, null) in nulls.iter_mut().enumerate() {
                let (v, r) = from(i);
                *null = v.is_null(r);
                s.push(v.bytes(r));
            }
            Data::Str(s)
        }
        Repr::Int => Data::Int(
            (0..n)
                .map(|i| {
                    let (v, r) = from(i);
                    nulls[i] = v.is_null(r);
                    v.int(r)
                })
                .collect(),
        ),
        Repr::Null => return Vector::nulls_of(ty.clone(), n),
    };
    out(ty, data, Some(nulls))
}
