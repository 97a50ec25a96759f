//! Conversions of JSON scalar text into the integers ClickHouse stores: plain integers,
//! exact decimals (no float round trip) and UUIDs.

/// Parses a decimal integer (`-?[0-9]+`) into an i128, or `None` on any other text or
/// overflow of i128.
#[inline]
pub fn parse_int(s: &[u8]) -> Option<i128> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 39 {
        return None;
    }
    let mut v: i128 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Why a decimal could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a number.
    Syntax,
    /// More integer digits than the precision allows.
    Overflow,
}

/// Parses a decimal number (`-?digits[.digits][e±digits]`) exactly into an integer
/// scaled by 10^`scale`, truncating extra fractional digits toward zero (as ClickHouse
/// does), and checks that it fits in `precision` digits.
pub fn parse_decimal(s: &[u8], precision: u8, scale: u8) -> Result<i128, DecimalError> {
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => {
            let e = parse_int(&rest[i + 1..]).ok_or(DecimalError::Syntax)?;
            (&rest[..i], i32::try_from(e).map_err(|_| DecimalError::Overflow)?)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&b| b == b'.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(DecimalError::Syntax);
    }
    // The value is digits(int_part ++ frac_part) * 10^(exp - frac_len); we want it times
    // 10^scale, i.e. shift = scale + exp - frac_len decimal places.
    let shift = i64::from(scale) + i64::from(exp) - frac_part.len() as i64;
    let limit = 10i128.pow(u32::from(precision));
    let all = int_part.iter().chain(frac_part.iter());
    let total = int_part.len() + frac_part.len();
    // Digits dropped by a negative shift are truncated.
    let keep = if shift < 0 { total.saturating_sub((-shift) as usize) } else { total };
    let mut v: i128 = 0;
    for (i, &b) in all.enumerate() {
        if !b.is_ascii_digit() {
            return Err(DecimalError::Syntax);
        }
        if i < keep {
            v = v.checked_mul(10).and_then(|v| v.checked_add(i128::from(b - b'0'))).ok_or(DecimalError::Overflow)?;
            if v >= limit && shift <= 0 {
                return Err(DecimalError::Overflow);
            }
        }
    }
    if shift > 0 {
        for _ in 0..shift {
            v = v.checked_mul(10).ok_or(DecimalError::Overflow)?;
            if v >= limit {
                return Err(DecimalError::Overflow);
            }
        }
    }
    if v >= limit {
        return Err(DecimalError::Overflow);
    }
    Ok(if neg { -v } else { v })
}

/// Hex digit values; 0x80 marks a byte that is not a hex digit.
static HEX: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Parses a UUID (`8-4-4-4-12` hex, or 32 hex digits, optionally in braces) into the 16
/// bytes ClickHouse stores: the high 64 bits little-endian, then the low 64 bits
/// little-endian.
pub fn parse_uuid(s: &[u8]) -> Option<[u8; 16]> {
    let s = match s {
        [b'{', inner @ .., b'}'] => inner,
        _ => s,
    };
    let (mut value, mut bad) = (0u128, 0u8);
    let mut digit = |b: u8| {
        let v = HEX[b as usize];
        bad |= v;
        value = (value << 4) | u128::from(v & 0xF);
    };
    match s.len() {
        36 => {
            if s[8] != b'-' || s[13] != b'-' || s[18] != b'-' || s[23] != b'-' {
                return None;
            }
            for (i, &b) in s.iter().enumerate() {
                if !matches!(i, 8 | 13 | 18 | 23) {
                    digit(b);
                }
            }
        }
        32 => s.iter().for_each(|&b| digit(b)),
        _ => return None,
    }
    if bad & 0x80 != 0 {
        return None;
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&((value >> 64) as u64).to_le_bytes());
    out[8..].copy_from_slice(&(value as u64).to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-42"), Some(-42));
        assert_eq!(parse_int(b"18446744073709551615"), Some(u64::MAX as i128));
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"1.5"), None);
        assert_eq!(parse_int(b"1e3"), None);
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal(b"5299.10", 12, 2), Ok(529_910));
        assert_eq!(parse_decimal(b"0.01", 12, 2), Ok(1));
        assert_eq!(parse_decimal(b"-0.019", 12, 2), Ok(-1));
        assert_eq!(parse_decimal(b"12", 4, 2), Ok(1200));
        assert_eq!(parse_decimal(b"1.5e2", 12, 2), Ok(15_000));
        assert_eq!(parse_decimal(b"15e-1", 12, 2), Ok(150));
        assert_eq!(parse_decimal(b"99.99", 4, 2), Ok(9999));
        assert_eq!(parse_decimal(b"100", 4, 2), Err(DecimalError::Overflow));
        assert_eq!(parse_decimal(b"1e40", 38, 0), Err(DecimalError::Overflow));
        assert_eq!(parse_decimal(b"0.30000000000000004", 12, 2), Ok(30));
        assert_eq!(parse_decimal(b"abc", 12, 2), Err(DecimalError::Syntax));
        assert_eq!(parse_decimal(b".", 12, 2), Err(DecimalError::Syntax));
    }

    #[test]
    fn uuids() {
        let u = parse_uuid(b"3c7d1004-4dce-48d2-9e13-8f3288aac743").unwrap();
        assert_eq!(u[..8], 0x3c7d10044dce48d2u64.to_le_bytes());
        assert_eq!(u[8..], 0x9e138f3288aac743u64.to_le_bytes());
        assert_eq!(parse_uuid(b"3c7d10044dce48d29e138f3288aac743"), Some(u));
        assert_eq!(parse_uuid(b"{3c7d1004-4dce-48d2-9e13-8f3288aac743}"), Some(u));
        assert_eq!(parse_uuid(b"3c7d1004-4dce-48d2-9e13-8f3288aac74"), None);
        assert_eq!(parse_uuid(b"3c7d1004-4dce-48d2-9e13-8f3288aac74g"), None);
        assert_eq!(parse_uuid(b"3c7d10044-dce-48d2-9e13-8f3288aac743"), None);
    }

    proptest! {
        #[test]
        fn decimal_matches_integer_arithmetic(units in -999_999_999_999i64..=999_999_999_999, scale in 0u8..6) {
            let div = 10i64.pow(u32::from(scale));
            let text = if scale == 0 {
                units.to_string()
            } else {
                format!("{}{}.{:0w$}", if units < 0 { "-" } else { "" }, units.abs() / div, units.abs() % div, w = scale as usize)
            };
            prop_assert_eq!(parse_decimal(text.as_bytes(), 18, scale), Ok(i128::from(units)));
        }

        #[test]
        fn ints_round_trip(v in any::<i64>()) {
            prop_assert_eq!(parse_int(v.to_string().as_bytes()), Some(i128::from(v)));
        }
    }
}
