//! Values as ClickHouse writes them as text (`toString`), and text read as values (the
//! `to*` conversions from String).

use super::ty::Base;
use penstock_codec::datetime::{civil_from_days, parse_date, parse_timestamp};
use penstock_codec::scalar::{parse_decimal, parse_int};
use std::io::Write;

/// Appends `v` (a value of `base`, in its evaluation representation) as ClickHouse's
/// `toString` writes it.
pub fn write_int_like(base: &Base, v: i128, out: &mut Vec<u8>) {
    match base {
        Base::Bool => out.extend_from_slice(if v != 0 { b"true" } else { b"false" }),
        Base::Decimal { scale, .. } => write_decimal(v, *scale, out),
        Base::Date => write_date(v as i64, out),
        Base::DateTime => write_datetime(v as i64, out),
        Base::DateTime64(p) => {
            let unit = 10i128.pow(u32::from(*p));
            write_datetime(v.div_euclid(unit) as i64, out);
            if *p > 0 {
                let _ = write!(out, ".{:0width$}", v.rem_euclid(unit), width = usize::from(*p));
            }
        }
        Base::Enum { items, .. } => {
            if let Some((label, _)) = items.iter().find(|(_, x)| i128::from(*x) == v) {
                out.extend_from_slice(label.as_bytes());
            }
        }
        _ => {
            let _ = write!(out, "{v}");
        }
    }
}

/// A decimal's unscaled value as ClickHouse writes it: trailing zeros of the fraction
/// left out (`2.50` → `2.5`, `0.00` → `0`), as its `output_format_decimal_trailing_zeros`
/// default does.
pub fn write_decimal(v: i128, scale: u8, out: &mut Vec<u8>) {
    let unit = 10u128.pow(u32::from(scale));
    let abs = v.unsigned_abs();
    if v < 0 {
        out.push(b'-');
    }
    let _ = write!(out, "{}", abs / unit);
    let mut frac = abs % unit;
    let mut digits = usize::from(scale);
    while digits > 0 && frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    if digits > 0 {
        let _ = write!(out, ".{frac:0digits$}");
    }
}

/// Two decimal digits.
#[inline]
fn two(out: &mut Vec<u8>, v: i64) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn write_date(days: i64, out: &mut Vec<u8>) {
    let (y, m, d) = civil_from_days(days);
    if (0..10_000).contains(&y) {
        two(out, y / 100);
        two(out, y % 100);
    } else {
        let _ = write!(out, "{y:04}");
    }
    out.push(b'-');
    two(out, i64::from(m));
    out.push(b'-');
    two(out, i64::from(d));
}

fn write_datetime(secs: i64, out: &mut Vec<u8>) {
    write_date(secs.div_euclid(86_400), out);
    let s = secs.rem_euclid(86_400);
    out.push(b' ');
    two(out, s / 3600);
    out.push(b':');
    two(out, s / 60 % 60);
    out.push(b':');
    two(out, s % 60);
}

/// A float as ClickHouse writes it: the shortest digits that read back the same value,
/// in positional notation for decimal exponents from -6 to 20, else `<digits>e<exp>`;
/// `nan`, `inf`, `-inf`. `single` writes the shortest digits of the `Float32`.
pub fn write_float(v: f64, single: bool, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // Shortest round-trip digits and exponent, e.g. "1.25e-7".
    let sci = if single { format!("{:e}", v as f32) } else { format!("{v:e}") };
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp writes an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if neg {
        out.push(b'-');
    }
    if (-6..21).contains(&exp) {
        let point = exp + 1; // digits before the point
        if point <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-point) as usize));
            out.extend_from_slice(digits.as_bytes());
        } else if point as usize >= digits.len() {
            out.extend_from_slice(digits.as_bytes());
            out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
        } else {
            out.extend_from_slice(&digits.as_bytes()[..point as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[point as usize..]);
        }
    } else {
        out.extend_from_slice(&digits.as_bytes()[..1]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[1..]);
        }
        let _ = write!(out, "e{exp}");
    }
}

/// An integer from text (`-12`, `+7`); `None` when it is not one.
pub fn read_int(text: &[u8]) -> Option<i128> {
    parse_int(text)
}

/// A float from text (`1.5`, `-2e3`, `inf`, `nan`).
pub fn read_float(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        _ if s.is_empty() || s.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => None,
        _ => s.parse().ok(),
    }
}

/// A decimal of `scale` from text, or `None` (bad text, or more digits than `precision`).
pub fn read_decimal(text: &[u8], precision: u8, scale: u8) -> Option<i128> {
    parse_decimal(text, precision, scale).ok()
}

/// A date (`YYYY-MM-DD`, a timestamp's date, or `YYYYMMDD`) from text, as days.
pub fn read_date(text: &[u8]) -> Option<i64> {
    parse_date(text).or_else(|| {
        if text.len() != 8 || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let dashed = [&text[..4], b"-", &text[4..6], b"-", &text[6..]].concat();
        parse_date(&dashed)
    })
}

/// A time (`YYYY-MM-DD hh:mm:ss[.fff]`, ISO-8601, or a date) from text, as ticks of
/// 10^-precision s (UTC).
pub fn read_time(text: &[u8], precision: u8) -> Option<i128> {
    let t = parse_timestamp(text)
        .or_else(|| parse_date(text).map(|d| penstock_codec::Timestamp { secs: d * 86_400, nanos: 0 }))?;
    let unit = 10i128.pow(u32::from(precision));
    Some(i128::from(t.secs) * unit + i128::from(t.nanos) / 10i128.pow(9 - u32::from(precision)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut o = Vec::new();
        write_float(v, false, &mut o);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn floats_are_written_like_clickhouse() {
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(1e21), "1e21");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(123.456), "123.456");
        assert_eq!(f(f64::NAN), "nan");
    }

    #[test]
    fn decimals_dates_and_times() {
        let s = |b: Base, v: i128| {
            let mut o = Vec::new();
            write_int_like(&b, v, &mut o);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(s(Base::Decimal { precision: 9, scale: 2 }, -1205), "-12.05");
        assert_eq!(s(Base::Decimal { precision: 9, scale: 2 }, 250), "2.5");
        assert_eq!(s(Base::Decimal { precision: 9, scale: 2 }, 0), "0");
        assert_eq!(s(Base::Decimal { precision: 9, scale: 3 }, -5), "-0.005");
        assert_eq!(s(Base::Date, 1), "1970-01-02");
        assert_eq!(s(Base::DateTime, 86_399), "1970-01-01 23:59:59");
        assert_eq!(s(Base::DateTime64(3), 1_500), "1970-01-01 00:00:01.500");
        assert_eq!(read_time(b"1970-01-01 00:00:01.5", 3), Some(1_500));
        assert_eq!(read_float(b"1e3"), Some(1000.0));
        assert_eq!(read_float(b"abc"), None);
    }
}
