//! Source positions: where a row sits in its source's order, totally ordered, and the
//! header text that carries a position with every message a Kafka sink writes.
//!
//! A ClickHouse cursor position is the tuple of its cursor columns' values
//! (`(ingest_time, _partition, _offset)`, or `(_block_number, _block_offset)`); tuples
//! compare lexicographically, as ClickHouse compares them. Values are integers (every
//! integer, date and time type, by its stored number) or text (String columns, compared
//! bytewise, as ClickHouse compares strings).
//!
//! Header text is a JSON array — `[1764583872,3,1234]`, `["eu-west",17]` — readable by
//! anyone inspecting the topic, and parsed back exactly.

use std::fmt;

/// One value of a position.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PositionValue {
    /// Any integer, date or time column, by its stored number.
    Int(i128),
    /// A string column.
    Text(String),
}

/// A row's place in its source's total order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(pub Vec<PositionValue>);

/// Why a position header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position header `{text}`: {reason}")]
pub struct PositionParseError {
    /// The header text (lossy UTF-8).
    pub text: String,
    /// What was wrong.
    pub reason: String,
}

impl Position {
    /// The header text of this position.
    pub fn to_header(&self) -> String {
        self.to_string()
    }

    /// Writes the header text into `out` (cleared first), allocation-free once `out`
    /// has grown: the Kafka sink stamps every message with it.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(b'[');
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match v {
                PositionValue::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
                PositionValue::Text(s) => {
                    out.push(b'"');
                    for c in s.chars() {
                        match c {
                            '"' => out.extend_from_slice(b"\\\""),
                            '\\' => out.extend_from_slice(b"\\\\"),
                            c if (c as u32) < 0x20 => {
                                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                            }
                            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                        }
                    }
                    out.push(b'"');
                }
            }
        }
        out.push(b']');
    }

    /// Parses header text written by [`Position::to_header`].
    pub fn parse(bytes: &[u8]) -> Result<Position, PositionParseError> {
        let err = |reason: &str| PositionParseError {
            text: String::from_utf8_lossy(bytes).into_owned(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| err("not UTF-8"))?;
        let inner = text
            .trim()
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| err("expected a JSON array"))?;
        let mut values = Vec::new();
        let mut rest = inner.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('"') {
                let (s, used) = parse_string(after).ok_or_else(|| err("unterminated or malformed string"))?;
                values.push(PositionValue::Text(s));
                rest = &after[used..];
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                let n = rest[..end].trim().parse::<i128>().map_err(|_| err("expected an integer or a string"))?;
                values.push(PositionValue::Int(n));
                rest = &rest[end..];
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(err("expected `,` between values")),
            }
        }
        Ok(Position(values))
    }
}

/// Reads a JSON string body after its opening quote; returns it and the bytes used
/// (closing quote included).
fn parse_string(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => match chars.next()?.1 {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_header(&mut out);
        f.write_str(std::str::from_utf8(&out).expect("built from UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = PositionValue> {
        prop_oneof![
            any::<i64>().prop_map(|n| PositionValue::Int(i128::from(n))),
            any::<i128>().prop_map(PositionValue::Int),
            ".{0,12}".prop_map(PositionValue::Text),
        ]
    }

    proptest! {
        #[test]
        fn header_round_trips(values in prop::collection::vec(value(), 0..5)) {
            let p = Position(values);
            prop_assert_eq!(Position::parse(p.to_header().as_bytes()).unwrap(), p.clone());
            let mut buf = b"stale".to_vec();
            p.write_header(&mut buf);
            prop_assert_eq!(buf, p.to_header().into_bytes());
        }
    }

    #[test]
    fn orders_like_tuples() {
        use PositionValue::*;
        let p = |v: Vec<PositionValue>| Position(v);
        assert!(p(vec![Int(1), Int(9)]) < p(vec![Int(2), Int(0)]));
        assert!(p(vec![Int(2), Int(0)]) < p(vec![Int(2), Int(1)]));
        assert!(p(vec![Text("a".into()), Int(5)]) < p(vec![Text("b".into()), Int(0)]));
        assert_eq!(p(vec![Int(1764583872), Int(3), Int(1234)]).to_header(), "[1764583872,3,1234]");
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        for bad in [&b"1,2"[..], b"[1,,2]", b"[\"a]", b"[1.5]", b"\xff"] {
            assert!(Position::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Position::parse(b"[]").unwrap(), Position(vec![]));
    }
}
