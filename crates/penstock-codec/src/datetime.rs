//! Timestamp and date parsing without allocation or a time-zone database.
//!
//! Accepted text forms (all read as UTC unless they carry a zone):
//! `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.f…]]`, the same with a space instead of `T`,
//! followed optionally by `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `+hh`. Fractions of any
//! length are accepted; digits beyond nanoseconds are truncated.

/// A point in time: whole seconds since the Unix epoch plus nanoseconds (0..1e9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Timestamp {
    /// Ticks of 10^-precision seconds, as stored by `DateTime64(precision)`.
    pub fn ticks(self, precision: u8) -> Option<i64> {
        let scale = 10i64.pow(u32::from(precision));
        let frac = i64::from(self.nanos) / 10i64.pow(9 - u32::from(precision));
        self.secs.checked_mul(scale)?.checked_add(frac)
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Howard Hinnant's algorithm, shifted so March is the first month of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `t` as `YYYY-MM-DDThh:mm:ss.mmmZ` into `out`.
pub fn write_iso_millis(out: &mut String, t: Timestamp) {
    use std::fmt::Write;
    let days = t.secs.div_euclid(86_400);
    let sod = t.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        t.nanos / 1_000_000
    );
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

#[inline]
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// Parses `YYYY-MM-DD` at the start of `s`, returning days since the epoch.
fn parse_date_prefix(s: &[u8]) -> Option<i64> {
    let year = digits(s, 0, 4)?;
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(s, 5, 2)?;
    let day = digits(s, 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    Some(days_from_civil(i64::from(year), month, day))
}

/// Parses a date (`YYYY-MM-DD`) or a full timestamp and returns the UTC day number.
pub fn parse_date(s: &[u8]) -> Option<i64> {
    if s.len() == 10 {
        return parse_date_prefix(s);
    }
    parse_timestamp(s).map(|t| t.secs.div_euclid(86_400))
}

/// Parses an ISO-8601 / `YYYY-MM-DD hh:mm:ss` timestamp. Returns `None` when the text
/// is not one of the accepted forms or names an impossible date or time.
pub fn parse_timestamp(s: &[u8]) -> Option<Timestamp> {
    let days = parse_date_prefix(s)?;
    if s.len() == 10 {
        return Some(Timestamp { secs: days * 86_400, nanos: 0 });
    }
    if !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(s, 11, 2)?;
    if s.get(13) != Some(&b':') {
        return None;
    }
    let minute = digits(s, 14, 2)?;
    let mut pos = 16;
    let mut second = 0;
    let mut nanos = 0u32;
    if s.get(pos) == Some(&b':') {
        second = digits(s, pos + 1, 2)?;
        pos += 3;
        if matches!(s.get(pos), Some(b'.' | b',')) {
            pos += 1;
            let start = pos;
            let mut scale = 100_000_000u32;
            while let Some(&b) = s.get(pos) {
                if !b.is_ascii_digit() {
                    break;
                }
                nanos += u32::from(b - b'0') * scale;
                scale /= 10;
                pos += 1;
            }
            if pos == start {
                return None;
            }
        }
    }
    // A leap second (:60) is folded into the next second, as ClickHouse does.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match &s[pos..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest.len() {
                2 => (digits(rest, 0, 2)?, 0),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    Some(Timestamp { secs, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Option<(i64, u32)> {
        parse_timestamp(s.as_bytes()).map(|t| (t.secs, t.nanos))
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2026, 11, 21), 20_778);
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 11_016, 20_778, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let mut s = String::new();
        write_iso_millis(&mut s, Timestamp { secs: 1_779_723_355, nanos: 92_000_000 });
        assert_eq!(s, "2026-05-25T15:35:55.092Z");
        assert_eq!(parse_timestamp(s.as_bytes()), Some(Timestamp { secs: 1_779_723_355, nanos: 92_000_000 }));
    }

    #[test]
    fn forms() {
        assert_eq!(ts("2026-05-25T15:35:55.092Z"), Some((1_779_723_355, 92_000_000)));
        assert_eq!(ts("2026-05-25 15:35:55"), Some((1_779_723_355, 0)));
        assert_eq!(ts("2026-05-25T15:35:55"), Some((1_779_723_355, 0)));
        assert_eq!(ts("2026-05-25T17:35:55+02:00"), Some((1_779_723_355, 0)));
        assert_eq!(ts("2026-05-25T13:35:55-0200"), Some((1_779_723_355, 0)));
        assert_eq!(ts("2026-05-25T17:35:55+02"), Some((1_779_723_355, 0)));
        assert_eq!(ts("2026-05-25T15:35Z"), Some((1_779_723_300, 0)));
        assert_eq!(ts("2026-05-25T15:35:55.123456789123Z"), Some((1_779_723_355, 123_456_789)));
        assert_eq!(ts("2026-05-25"), Some((1_779_667_200, 0)));
        assert_eq!(ts("1969-12-31T23:59:59Z"), Some((-1, 0)));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "2026-05-25T24:00:00Z",
            "2026-05-25T15:35:55.Z",
            "2026-05-25T15:35:55+2",
            "2026-05-25T15:35:55 UTC",
            "2026/05/25 15:35:55",
            "26-05-25",
            "2026-05-25X15:35:55",
        ] {
            assert_eq!(ts(bad), None, "{bad}");
        }
        assert_eq!(ts("2024-02-29"), Some((1_709_164_800, 0)));
    }

    #[test]
    fn dates_and_ticks() {
        assert_eq!(parse_date(b"1970-01-02"), Some(1));
        assert_eq!(parse_date(b"2026-11-21T23:59:59-01:00"), Some(20_779));
        let t = parse_timestamp(b"2026-05-25T15:35:55.092Z").unwrap();
        assert_eq!(t.ticks(3), Some(1_779_723_355_092));
        assert_eq!(t.ticks(0), Some(1_779_723_355));
    }
}
