//! Arithmetic kernels: integers wrapping at their width, decimals checked against
//! their storage, floats as IEEE does.

use super::*;

pub(super) fn arith(op: Arith, x: &Vector, y: &Vector, ty: &Ty, n: usize, errs: &mut RowErrors) -> Vector {
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

/// `v` rounded to a multiple of `k`, halves away from zero.
pub(super) fn round_away(v: i128, k: i128) -> i128 {
    let (q, r) = (v / k, v % k);
    let q = if r.abs() * 2 >= k { q + v.signum() } else { q };
    q * k
}

pub(super) fn decimal_scale(t: &Ty) -> u8 {
    match t.base {
        Base::Decimal { scale, .. } => scale,
        _ => 0,
    }
}

/// True when an unscaled decimal fits its precision class's storage (Decimal32's
/// Int32, Decimal64's Int64): where ClickHouse reports an overflow.
pub(super) fn fits_decimal(v: i128, precision: u8) -> bool {
    match precision {
        0..=9 => i32::try_from(v).is_ok(),
        10..=18 => i64::try_from(v).is_ok(),
        _ => true,
    }
}
