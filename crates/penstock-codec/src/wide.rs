//! 256-bit integers for `Int128`/`UInt128`/`Int256`/`UInt256` and `Decimal(P > 38, S)`:
//! exact parsing of decimal text into the little-endian two's-complement bytes
//! ClickHouse stores. Only what parsing needs (multiply-add by small numbers,
//! compare, negate) — no general big-number arithmetic.

use crate::scalar::DecimalError;
use std::cmp::Ordering;

/// An unsigned 256-bit magnitude, 64-bit limbs, least significant first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct U256([u64; 4]);

impl U256 {
    pub(crate) const ZERO: U256 = U256([0; 4]);

    /// `self * m + a`, or `None` on overflow of 256 bits.
    pub(crate) fn mul_add(self, m: u64, a: u64) -> Option<U256> {
        let mut out = [0u64; 4];
        let mut carry = u128::from(a);
        for (o, limb) in out.iter_mut().zip(self.0) {
            let v = u128::from(limb) * u128::from(m) + carry;
            *o = v as u64;
            carry = v >> 64;
        }
        (carry == 0).then_some(U256(out))
    }

    /// 10^n, or `None` beyond 256 bits.
    pub(crate) fn pow10(n: u32) -> Option<U256> {
        (0..n).try_fold(U256([1, 0, 0, 0]), |v, _| v.mul_add(10, 0))
    }

    /// 2^bits (bits < 256).
    fn pow2(bits: u32) -> U256 {
        let mut out = [0u64; 4];
        out[(bits / 64) as usize] = 1 << (bits % 64);
        U256(out)
    }

    /// The 32 little-endian bytes of `self`, or of `-self` in two's complement.
    pub(crate) fn to_le_bytes(self, negative: bool) -> [u8; 32] {
        let mut limbs = self.0;
        if negative {
            let mut carry = 1u64;
            for l in &mut limbs {
                let (v, c) = (!*l).overflowing_add(carry);
                *l = v;
                carry = u64::from(c);
            }
        }
        let mut out = [0u8; 32];
        for (chunk, l) in out.chunks_exact_mut(8).zip(limbs) {
            chunk.copy_from_slice(&l.to_le_bytes());
        }
        out
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

fn sign(s: &[u8]) -> (bool, &[u8]) {
    match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// Why a wide integer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WideError {
    /// Not an integer.
    Syntax,
    /// Outside the type's range.
    Overflow,
}

/// Parses `-?[0-9]+` into a `bits`-wide integer (128 or 256), signed or unsigned, as
/// little-endian two's-complement bytes (the first `bits / 8` bytes are the value).
pub(crate) fn parse_wide_int(s: &[u8], signed: bool, bits: u32) -> Result<[u8; 32], WideError> {
    let (neg, digits) = sign(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(WideError::Syntax);
    }
    let mut v = U256::ZERO;
    for &d in digits {
        v = v.mul_add(10, u64::from(d - b'0')).ok_or(WideError::Overflow)?;
    }
    let fits = match (signed, neg) {
        (false, true) => v == U256::ZERO,
        (false, false) => bits == 256 || v < U256::pow2(bits),
        (true, false) => v < U256::pow2(bits - 1),
        (true, true) => v <= U256::pow2(bits - 1),
    };
    if !fits {
        return Err(WideError::Overflow);
    }
    Ok(v.to_le_bytes(neg && v != U256::ZERO))
}

/// [`crate::scalar::parse_decimal`] for precisions up to 76: the value scaled by
/// 10^`scale`, as 32 little-endian two's-complement bytes.
pub(crate) fn parse_wide_decimal(s: &[u8], precision: u8, scale: u8) -> Result<[u8; 32], DecimalError> {
    let (neg, rest) = sign(s);
    let (mantissa, exp) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => {
            let e = crate::scalar::parse_int(&rest[i + 1..]).ok_or(DecimalError::Syntax)?;
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
    let limit = U256::pow10(u32::from(precision)).ok_or(DecimalError::Overflow)?;
    let shift = i64::from(scale) + i64::from(exp) - frac_part.len() as i64;
    let total = int_part.len() + frac_part.len();
    let keep = if shift < 0 { total.saturating_sub((-shift) as usize) } else { total };
    let mut v = U256::ZERO;
    for (i, &b) in int_part.iter().chain(frac_part).enumerate() {
        if !b.is_ascii_digit() {
            return Err(DecimalError::Syntax);
        }
        if i < keep {
            v = v.mul_add(10, u64::from(b - b'0')).ok_or(DecimalError::Overflow)?;
            if v >= limit && shift <= 0 {
                return Err(DecimalError::Overflow);
            }
        }
    }
    for _ in 0..shift.max(0) {
        v = v.mul_add(10, 0).ok_or(DecimalError::Overflow)?;
        if v >= limit {
            return Err(DecimalError::Overflow);
        }
    }
    if v >= limit {
        return Err(DecimalError::Overflow);
    }
    Ok(v.to_le_bytes(neg && v != U256::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le128(v: i128) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    #[test]
    fn wide_integers_at_their_limits() {
        let i128_max = i128::MAX.to_string();
        let i128_min = i128::MIN.to_string();
        assert_eq!(parse_wide_int(i128_max.as_bytes(), true, 128).unwrap()[..16], le128(i128::MAX)[..]);
        assert_eq!(parse_wide_int(i128_min.as_bytes(), true, 128).unwrap()[..16], le128(i128::MIN)[..]);
        assert_eq!(parse_wide_int(b"170141183460469231731687303715884105728", true, 128), Err(WideError::Overflow));
        let u128_max = u128::MAX.to_string();
        assert_eq!(parse_wide_int(u128_max.as_bytes(), false, 128).unwrap()[..16], u128::MAX.to_le_bytes()[..]);
        assert_eq!(parse_wide_int(b"340282366920938463463374607431768211456", false, 128), Err(WideError::Overflow));
        assert_eq!(parse_wide_int(b"-1", false, 128), Err(WideError::Overflow));
        assert_eq!(parse_wide_int(b"-0", false, 256).unwrap(), [0; 32]);
        // 2^255 - 1 and -2^255 are Int256's limits.
        let max = b"57896044618658097711785492504343953926634992332820282019728792003956564819967";
        let min = b"-57896044618658097711785492504343953926634992332820282019728792003956564819968";
        let mut want = [0xFFu8; 32];
        want[31] = 0x7F;
        assert_eq!(parse_wide_int(max, true, 256).unwrap(), want);
        let mut want = [0u8; 32];
        want[31] = 0x80;
        assert_eq!(parse_wide_int(min, true, 256).unwrap(), want);
        assert_eq!(
            parse_wide_int(b"57896044618658097711785492504343953926634992332820282019728792003956564819968", true, 256),
            Err(WideError::Overflow)
        );
        let umax = b"115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(parse_wide_int(umax, false, 256).unwrap(), [0xFF; 32]);
        assert_eq!(
            parse_wide_int(
                b"115792089237316195423570985008687907853269984665640564039457584007913129639936",
                false,
                256
            ),
            Err(WideError::Overflow)
        );
        assert_eq!(parse_wide_int(b"-5", true, 256).unwrap()[..16], le128(-5)[..]);
        assert_eq!(parse_wide_int(b"1.5", true, 256), Err(WideError::Syntax));
        assert_eq!(parse_wide_int(b"", true, 256), Err(WideError::Syntax));
    }

    #[test]
    fn wide_decimals_agree_with_narrow_ones() {
        for (text, p, s) in [("12.345", 40, 2), ("-0.5", 50, 3), ("1e3", 60, 4), ("-123456789.987654321", 76, 9)] {
            let narrow = crate::scalar::parse_decimal(text.as_bytes(), 38, s).unwrap();
            let wide = parse_wide_decimal(text.as_bytes(), p, s).unwrap();
            assert_eq!(wide[..16], le128(narrow)[..], "{text}");
            let fill = if narrow < 0 { 0xFF } else { 0 };
            assert!(wide[16..].iter().all(|&b| b == fill), "{text}");
        }
        let big = format!("{}.5", "9".repeat(70));
        assert!(parse_wide_decimal(big.as_bytes(), 76, 6).is_ok());
        assert_eq!(parse_wide_decimal(big.as_bytes(), 76, 7), Err(DecimalError::Overflow));
        assert_eq!(parse_wide_decimal(b"x", 76, 2), Err(DecimalError::Syntax));
    }
}
