//! Conversions (`to*`, `CAST`, and the conversions `if`/`coalesce` branches need):
//! what ClickHouse does with each value, and what counts as a bad one.

use super::arith::decimal_scale;
use super::*;

/// True when |v| < 10^precision: a value with at most `precision` digits.
pub(super) fn within_precision(v: i128, precision: u8) -> bool {
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

pub(super) fn cannot_parse(text: &[u8], to: &Base) -> String {
    format!("cannot parse '{}' as {to}", String::from_utf8_lossy(text))
}

/// Row `i` of `x` as a value of the integer-like `target`.
pub(super) fn to_int_like(x: &Vector, i: usize, target: &Base) -> Result<i128, String> {
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
pub(super) fn float_to_int(f: f64, signed: bool, bits: u8) -> i128 {
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

pub(super) fn decimal_text(v: i128, scale: u8) -> String {
    let mut o = Vec::new();
    text::write_decimal(v, scale, &mut o);
    String::from_utf8(o).unwrap_or_default()
}
