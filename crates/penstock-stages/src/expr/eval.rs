//! Running a plan over a batch, one node at a time over whole columns: each node reads
//! its inputs' vectors and writes one output vector, in a loop per kernel — no value
//! tree per row, no allocation per row.
//!
//! A row whose value cannot be computed the way ClickHouse would throw (a bad cast
//! without `OrNull`, a division by zero in `intDiv`/`%`/decimals, a decimal overflow)
//! is recorded in [`RowErrors`] and gets the type's default; the stage drops it and the
//! pipeline dead-letters it. Errors from a branch of `if`/`multiIf`/`CASE` count only
//! for rows that take that branch (ClickHouse's short-circuit evaluation).

use super::plan::{Cmp, Domain, LikePart, Node, OnBad, StrFn, TimeFn};
use super::text;
use super::ty::{wrap, Arith, Base, Repr, Ty};
use super::vector::{Data, Strings, Vector};
use penstock_codec::datetime::civil_from_days;
use penstock_codec::Block;

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

/// `v` rounded to a multiple of `k`, halves away from zero.
fn round_away(v: i128, k: i128) -> i128 {
    let (q, r) = (v / k, v % k);
    let q = if r.abs() * 2 >= k { q + v.signum() } else { q };
    q * k
}

fn out(ty: &Ty, data: Data, nulls: Option<Vec<bool>>) -> Vector {
    let len = match &data {
        Data::Int(v) => v.len(),
        Data::Float(v) => v.len(),
        Data::Str(s) => s.len(),
        Data::Null => 0,
    };
    Vector { ty: ty.clone(), data, nulls: if ty.nullable { nulls } else { None }, constant: false, len }
}

/// The union of the inputs' null maps (NULL in → NULL out), or `None` when none is nullable.
fn nulls_of(inputs: &[&Vector], n: usize) -> Option<Vec<bool>> {
    if !inputs.iter().any(|v| v.nulls.is_some() || matches!(v.data, Data::Null)) {
        return None;
    }
    Some((0..n).map(|i| inputs.iter().any(|v| v.is_null(i))).collect())
}

/// Row by row, the value of the vector `from(i)` names (all of `ty`'s base).
fn pick<'v>(ty: &Ty, n: usize, from: impl Fn(usize) -> (&'v Vector, usize)) -> Vector {
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

#[inline]
fn ordered(c: Cmp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering;
    match c {
        Cmp::Eq => o == Ordering::Equal,
        Cmp::Ne => o != Ordering::Equal,
        Cmp::Lt => o == Ordering::Less,
        Cmp::Le => o != Ordering::Greater,
        Cmp::Gt => o == Ordering::Greater,
        Cmp::Ge => o != Ordering::Less,
    }
}

#[inline]
fn compare(c: Cmp, d: Domain, x: &Vector, i: usize, y: &Vector, j: usize) -> bool {
    use std::cmp::Ordering;
    let ord = match d {
        Domain::Bytes => Some(x.bytes(i).cmp(y.bytes(j))),
        Domain::Float => x.float(i).partial_cmp(&y.float(j)),
        Domain::Int { left, right } => Some(x.int(i).saturating_mul(left).cmp(&y.int(j).saturating_mul(right))),
    };
    match ord {
        None => c == Cmp::Ne, // NaN
        Some(o) => match c {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Ne => o != Ordering::Equal,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
        },
    }
}

fn arith(op: Arith, x: &Vector, y: &Vector, ty: &Ty, n: usize, errs: &mut RowErrors) -> Vector {
    if matches!(ty.base, Base::Nothing) {
        return Vector::nulls_of(ty.clone(), n);
    }
    let nulls = nulls_of(&[x, y], n);
    let live = |i: usize| nulls.as_ref().is_none_or(|m| !m[i]);
    let data = match &ty.base {
        Base::Float(_) => Data::Float(
            (0..n)
                .map(|i| {
                    let (a, b) = (x.float(i), y.float(i));
                    match op {
                        Arith::Plus => a + b,
                        Arith::Minus => a - b,
                        Arith::Multiply => a * b,
                        Arith::Divide => a / b,
                        Arith::Modulo => a % b,
                        Arith::IntDiv => (a / b).trunc(),
                    }
                })
                .collect(),
        ),
        Base::Decimal { precision, scale }
            if op == Arith::Multiply && nulls.is_none() && x.ints().is_some() && y.constant =>
        {
            // Fast path: a decimal column times a constant.
            let k = y.int(0);
            let xs = x.ints().expect("checked");
            Data::Int(
                xs.iter()
                    .enumerate()
                    .map(|(i, a)| match a.checked_mul(k).filter(|v| fits_decimal(*v, *precision)) {
                        Some(v) => v,
                        None => {
                            errs.add(i, "decimal math overflow in multiply");
                            0
                        }
                    })
                    .collect(),
            )
        }
        Base::Decimal { precision, scale } => {
            let sx = decimal_scale(&x.ty);
            let sy = decimal_scale(&y.ty);
            let p = |k: u8| 10i128.pow(u32::from(k));
            Data::Int(
                (0..n)
                    .map(|i| {
                        let (a, b) = (x.int(i), y.int(i));
                        let r = match op {
                            Arith::Plus => a
                                .checked_mul(p(scale - sx))
                                .zip(b.checked_mul(p(scale - sy)))
                                .and_then(|(a, b)| a.checked_add(b)),
                            Arith::Minus => a
                                .checked_mul(p(scale - sx))
                                .zip(b.checked_mul(p(scale - sy)))
                                .and_then(|(a, b)| a.checked_sub(b)),
                            Arith::Multiply => a.checked_mul(b),
                            Arith::Divide => {
                                if b == 0 {
                                    if live(i) {
                                        errs.add(i, "division by zero");
                                    }
                                    return 0;
                                }
                                a.checked_mul(p(scale + sy - sx)).map(|a| a / b)
                            }
                            Arith::Modulo | Arith::IntDiv => None,
                        };
                        match r.filter(|v| fits_decimal(*v, *precision)) {
                            Some(v) => v,
                            None => {
                                if live(i) {
                                    errs.add(i, format!("decimal math overflow in {}", op.name()));
                                }
                                0
                            }
                        }
                    })
                    .collect(),
            )
        }
        Base::Int { signed, bits } => Data::Int(
            (0..n)
                .map(|i| {
                    let (a, b) = (x.int(i), y.int(i));
                    let r = match op {
                        Arith::Plus => a.wrapping_add(b),
                        Arith::Minus => a.wrapping_sub(b),
                        Arith::Multiply => a.wrapping_mul(b),
                        Arith::Modulo | Arith::IntDiv => {
                            if b == 0 {
                                if live(i) {
                                    errs.add(i, format!("division by zero in {}", op.name()));
                                }
                                return 0;
                            }
                            if op == Arith::Modulo {
                                a % b
                            } else {
                                a / b
                            }
                        }
                        Arith::Divide => unreachable!("division is Float64"),
                    };
                    wrap(r, *signed, *bits)
                })
                .collect(),
        ),
        _ => Data::Null,
    };
    out(ty, data, nulls)
}

fn decimal_scale(t: &Ty) -> u8 {
    match t.base {
        Base::Decimal { scale, .. } => scale,
        _ => 0,
    }
}

/// True when an unscaled decimal fits its precision class's storage (Decimal32's
/// Int32, Decimal64's Int64): where ClickHouse reports an overflow.
fn fits_decimal(v: i128, precision: u8) -> bool {
    match precision {
        0..=9 => i32::try_from(v).is_ok(),
        10..=18 => i64::try_from(v).is_ok(),
        _ => true,
    }
}

/// True when |v| < 10^precision: a value with at most `precision` digits.
fn within_precision(v: i128, precision: u8) -> bool {
    v.unsigned_abs() < 10u128.pow(u32::from(precision))
}

/// Converts every row of `x` to `ty` (see [`convert_rows`]), bad values as `bad` says
/// (failures give NULL when no error list is given).
pub fn convert(x: &Vector, ty: &Ty, bad: OnBad) -> Vector {
    let target = Ty { base: ty.base.clone(), nullable: true };
    convert_rows(x, &target, if bad == OnBad::Fail { OnBad::Null } else { bad }, None)
}

/// Converts every row of `x` to `ty`: `toT`, `toTOrNull`, `toTOrZero`, `CAST`.
pub fn convert_rows(x: &Vector, ty: &Ty, bad: OnBad, mut errs: Option<&mut RowErrors>) -> Vector {
    let n = x.len;
    if matches!(x.data, Data::Null) {
        return Vector::nulls_of(ty.clone(), n);
    }
    let mut nulls: Vec<bool> = (0..n).map(|i| x.is_null(i)).collect();
    // ClickHouse 26.9: text that does not parse, from a Nullable(String), is NULL.
    let bad = if bad == OnBad::Fail && x.ty.nullable && matches!(x.data, Data::Str(_)) && ty.nullable {
        OnBad::Null
    } else {
        bad
    };
    let mut fail = |i: usize, nulls: &mut Vec<bool>, why: String| match bad {
        OnBad::Null => nulls[i] = true,
        OnBad::Zero => {}
        OnBad::Fail => {
            if let Some(e) = errs.as_deref_mut() {
                e.add(i, why);
            }
        }
    };
    let from = &x.ty.base;
    let data = match &ty.base {
        Base::String => {
            let mut s = Strings::with_capacity(n);
            for i in 0..n {
                s.push_with(|b| match (&x.data, from) {
                    (Data::Str(_), _) => b.extend_from_slice(x.bytes(i)),
                    (Data::Float(_), Base::Float(bits)) => text::write_float(x.float(i), *bits == 32, b),
                    _ => text::write_int_like(from, x.int(i), b),
                });
            }
            Data::Str(s)
        }
        Base::Float(bits) => Data::Float(
            (0..n)
                .map(|i| {
                    let v = match &x.data {
                        Data::Str(_) => match text::read_float(x.bytes(i)) {
                            Some(v) => v,
                            None => {
                                fail(i, &mut nulls, cannot_parse(x.bytes(i), &ty.base));
                                0.0
                            }
                        },
                        _ => x.float(i),
                    };
                    if *bits == 32 {
                        f64::from(v as f32)
                    } else {
                        v
                    }
                })
                .collect(),
        ),
        // Fast paths: integers and decimals into an integer type.
        Base::Int { signed, bits } if x.ints().is_some() && matches!(from, Base::Int { .. } | Base::Bool) => {
            Data::Int(x.ints().expect("checked").iter().map(|v| wrap(*v, *signed, *bits)).collect())
        }
        Base::Int { signed, bits } if x.ints().is_some() && matches!(from, Base::Decimal { .. }) => {
            let unit = 10i128.pow(u32::from(decimal_scale(&x.ty)));
            let xs = x.ints().expect("checked");
            let mut v = Vec::with_capacity(n);
            for (i, d) in xs.iter().enumerate() {
                let t = d / unit;
                if wrap(t, *signed, *bits) != t && !nulls[i] {
                    fail(
                        i,
                        &mut nulls,
                        format!("decimal {} is out of range for {}", decimal_text(*d, decimal_scale(&x.ty)), ty.base),
                    );
                    v.push(0);
                } else {
                    v.push(t);
                }
            }
            Data::Int(v)
        }
        target => {
            let v = (0..n)
                .map(|i| {
                    if nulls[i] {
                        return 0;
                    }
                    match to_int_like(x, i, target) {
                        Ok(v) => v,
                        Err(why) => {
                            fail(i, &mut nulls, why);
                            0
                        }
                    }
                })
                .collect();
            Data::Int(v)
        }
    };
    let nulls = ty.nullable.then_some(nulls);
    out(ty, data, nulls)
}

fn cannot_parse(text: &[u8], to: &Base) -> String {
    format!("cannot parse '{}' as {to}", String::from_utf8_lossy(text))
}

/// Row `i` of `x` as a value of the integer-like `target`.
fn to_int_like(x: &Vector, i: usize, target: &Base) -> Result<i128, String> {
    let from = &x.ty.base;
    let pow = |k: u8| 10i128.pow(u32::from(k));
    if let Data::Str(_) = x.data {
        let s = x.bytes(i);
        let parsed = match target {
            // As ClickHouse: too many digits wrap; a sign on an unsigned type is refused.
            Base::Int { signed, bits } => {
                if !signed && s.first() == Some(&b'-') {
                    None
                } else {
                    text::read_int(s).map(|v| wrap(v, *signed, *bits))
                }
            }
            Base::Bool => match s {
                b"true" | b"1" => Some(1),
                b"false" | b"0" => Some(0),
                _ => None,
            },
            Base::Decimal { precision, scale } => text::read_decimal(s, *precision, *scale),
            Base::Date => text::read_date(s).map(i128::from),
            Base::DateTime => text::read_time(s, 0),
            Base::DateTime64(p) => text::read_time(s, *p),
            Base::Enum { items, .. } => items.iter().find(|(l, _)| l.as_bytes() == s).map(|(_, v)| i128::from(*v)),
            _ => None,
        };
        return parsed.ok_or_else(|| cannot_parse(s, target));
    }
    if let Data::Float(_) = x.data {
        let f = x.float(i);
        if !f.is_finite() {
            return Err(format!("cannot convert {f} to {target}"));
        }
        return match target {
            Base::Int { signed, bits } => Ok(float_to_int(f, *signed, *bits)),
            Base::Bool => Ok(i128::from(f != 0.0)),
            Base::Decimal { precision, scale } => {
                let v = (f * 10f64.powi(i32::from(*scale))).trunc();
                if v.abs() >= 10f64.powi(i32::from(*precision)) {
                    return Err(format!("{f} is out of range for {target}"));
                }
                Ok(v as i128)
            }
            _ => Err(format!("cannot convert a float to {target}")),
        };
    }
    let v = x.int(i);
    match (from, target) {
        (Base::Decimal { scale, .. }, Base::Int { signed, bits }) => {
            let t = v / pow(*scale);
            if wrap(t, *signed, *bits) != t {
                return Err(format!("decimal {} is out of range for {target}", decimal_text(v, *scale)));
            }
            Ok(t)
        }
        (Base::Decimal { scale, .. }, Base::Bool) => Ok(i128::from(v / pow(*scale) != 0)),
        (_, Base::Int { signed, bits }) => Ok(wrap(v, *signed, *bits)),
        (_, Base::Bool) => Ok(i128::from(v != 0)),
        (Base::Decimal { scale: s, .. }, Base::Decimal { precision, scale }) => {
            let r = if scale >= s { v.checked_mul(pow(scale - s)) } else { Some(v / pow(s - scale)) };
            r.filter(|r| within_precision(*r, *precision))
                .ok_or_else(|| format!("decimal {} is out of range for {target}", decimal_text(v, *s)))
        }
        (_, Base::Decimal { precision, scale }) => v
            .checked_mul(pow(*scale))
            .filter(|r| within_precision(*r, *precision))
            .ok_or_else(|| format!("{v} is out of range for {target}")),
        (Base::DateTime, Base::Date) => Ok(v.div_euclid(86_400)),
        (Base::DateTime64(p), Base::Date) => Ok(v.div_euclid(pow(*p) * 86_400)),
        (Base::Date, Base::Date) => Ok(v),
        // A number below 65536 is a day number, else a Unix time (as UInt32).
        (_, Base::Date) => Ok(if v < 65_536 { v } else { v.min(i128::from(u32::MAX)).div_euclid(86_400) }),
        (Base::Date, Base::DateTime) => Ok(wrap(v * 86_400, false, 32)),
        (Base::DateTime64(p), Base::DateTime) => Ok(v.div_euclid(pow(*p))),
        (_, Base::DateTime) => Ok(wrap(v, false, 32)),
        (Base::Date, Base::DateTime64(p)) => Ok(v * 86_400 * pow(*p)),
        (Base::DateTime64(q), Base::DateTime64(p)) => {
            Ok(if p >= q { v * pow(p - q) } else { v.div_euclid(pow(q - p)) })
        }
        (_, Base::DateTime64(p)) => Ok(v * pow(*p)),
        _ => Err(format!("cannot convert {from} to {target}")),
    }
}

/// A float truncated to an integer type the way ClickHouse's conversion does on x86-64:
/// through a 32-bit conversion for narrow types, a 64-bit one for UInt32 and Int64,
/// out-of-range values becoming the conversion's "indefinite" minimum, then wrapped.
fn float_to_int(f: f64, signed: bool, bits: u8) -> i128 {
    let t = f.trunc();
    let via32 =
        || if (-2_147_483_648.0..2_147_483_648.0).contains(&t) { i128::from(t as i32) } else { i128::from(i32::MIN) };
    let via64 = || {
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
            i128::from(t as i64)
        } else {
            i128::from(i64::MIN)
        }
    };
    match (signed, bits) {
        (false, 64) => {
            if (0.0..18_446_744_073_709_551_616.0).contains(&t) {
                i128::from(t as u64)
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&t) {
                wrap(i128::from(t as i64), false, 64)
            } else {
                1i128 << 63
            }
        }
        (true, 64) | (false, 32) => wrap(via64(), signed, bits),
        _ => wrap(via32(), signed, bits),
    }
}

fn decimal_text(v: i128, scale: u8) -> String {
    let mut o = Vec::new();
    text::write_decimal(v, scale, &mut o);
    String::from_utf8(o).unwrap_or_default()
}

fn string_fn(f: StrFn, vs: &[Vector], ty: &Ty, n: usize) -> Vector {
    let refs: Vec<&Vector> = vs.iter().collect();
    let nulls = nulls_of(&refs, n);
    if f == StrFn::Length {
        return out(ty, Data::Int((0..n).map(|i| vs[0].bytes(i).len() as i128).collect()), nulls);
    }
    let mut s = Strings::with_capacity(n);
    for i in 0..n {
        let a = vs[0].bytes(i);
        s.push_with(|o| match f {
            StrFn::Lower => o.extend(a.iter().map(u8::to_ascii_lowercase)),
            StrFn::Upper => o.extend(a.iter().map(u8::to_ascii_uppercase)),
            StrFn::Trim | StrFn::TrimLeft | StrFn::TrimRight => {
                let mut t = a;
                if f != StrFn::TrimRight {
                    while let [b' ', rest @ ..] = t {
                        t = rest;
                    }
                }
                if f != StrFn::TrimLeft {
                    while let [rest @ .., b' '] = t {
                        t = rest;
                    }
                }
                o.extend_from_slice(t);
            }
            StrFn::Concat => vs.iter().for_each(|v| o.extend_from_slice(v.bytes(i))),
            StrFn::Substring => {
                let len = a.len() as i128;
                let offset = vs[1].int(i);
                let start = match offset {
                    0 => len,
                    o if o > 0 => o - 1,
                    o => len + o,
                };
                let end = match vs.get(2).map(|v| v.int(i)) {
                    None => len,
                    Some(l) if l >= 0 => start.saturating_add(l),
                    Some(l) => len + l,
                };
                let (start, end) = (start.clamp(0, len) as usize, end.clamp(0, len) as usize);
                if start < end {
                    o.extend_from_slice(&a[start..end]);
                }
            }
            StrFn::ReplaceAll => {
                let (from, to) = (vs[1].bytes(i), vs[2].bytes(i));
                if from.is_empty() {
                    o.extend_from_slice(a);
                } else {
                    let mut rest = a;
                    while let Some(p) = rest.windows(from.len()).position(|w| w == from) {
                        o.extend_from_slice(&rest[..p]);
                        o.extend_from_slice(to);
                        rest = &rest[p + from.len()..];
                    }
                    o.extend_from_slice(rest);
                }
            }
            StrFn::Length => unreachable!("handled above"),
        });
    }
    out(ty, Data::Str(s), nulls)
}

/// `s` matches a LIKE pattern (`_` is one UTF-8 character).
#[inline]
fn like(s: &[u8], parts: &[LikePart]) -> bool {
    // The usual shapes without recursion: 'x%', '%x', '%x%', 'x'.
    match parts {
        [LikePart::Literal(l), LikePart::Any] => return s.starts_with(l),
        [LikePart::Any, LikePart::Literal(l)] => return s.ends_with(l),
        [LikePart::Any, LikePart::Literal(l), LikePart::Any] => {
            return l.is_empty() || s.windows(l.len()).any(|w| w == l.as_slice())
        }
        [LikePart::Literal(l)] => return s == l.as_slice(),
        _ => {}
    }
    like_general(s, parts)
}

fn like_general(s: &[u8], parts: &[LikePart]) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((LikePart::Literal(l), rest)) => s.starts_with(l) && like_general(&s[l.len()..], rest),
        Some((LikePart::One, rest)) => match s.first() {
            None => false,
            Some(b) => {
                let w = utf8_width(*b).min(s.len());
                like_general(&s[w..], rest)
            }
        },
        Some((LikePart::Any, rest)) => {
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).any(|k| like_general(&s[k..], rest))
        }
    }
}

fn utf8_width(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}
