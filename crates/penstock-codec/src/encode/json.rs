//! Blocks → one JSON object per row, for the Kafka sink.
//!
//! Each column becomes a key of the object, in column order, with a value text that
//! Penstock's own JSON decoder (and ClickHouse's `JSONEachRow` input) reads back into
//! the same type:
//!
//! | type | JSON |
//! |---|---|
//! | Int/UInt 8–64, Float | number (`NaN`/`±Inf` → `null`: JSON has none) |
//! | Int/UInt 128/256 | string (beyond every JSON reader's exact integers) |
//! | Decimal | number text, exact, with the type's scale (`12.50`) |
//! | Bool | `true`/`false` |
//! | String, FixedString | string (invalid UTF-8 → U+FFFD) |
//! | Date, Date32 | `"YYYY-MM-DD"` |
//! | DateTime, DateTime64 | `"YYYY-MM-DD hh:mm:ss[.fff…]"` in UTC (the zone in the type is not applied) |
//! | UUID, IPv4, IPv6 | canonical text |
//! | Enum8/16 | the label |
//! | Nullable | `null` or the value |
//! | Array, Tuple (unnamed) | array; named Tuple → object |
//! | Map | object (non-string keys as their JSON text) |
//!
//! The encoder is built once per block layout; encoding a row appends to a caller's
//! buffer and allocates nothing for scalar columns.

use crate::column::Block;
use crate::datetime::civil_from_days;
use crate::types::ColumnType;

/// Why a block could not be encoded (a value the type cannot hold: a bug upstream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}`, row {row}: cannot encode as JSON: {reason}")]
pub struct JsonEncodeError {
    /// Column name.
    pub column: String,
    /// Row index in the block.
    pub row: usize,
    /// What was wrong.
    pub reason: String,
}

/// Encodes rows of blocks with one column layout.
#[derive(Debug, Clone)]
pub struct JsonRowEncoder {
    /// `"name":` per column, escaped once, with the separating comma for all but the first.
    keys: Vec<Vec<u8>>,
    types: Vec<ColumnType>,
}

impl JsonRowEncoder {
    /// An encoder for blocks with `block`'s columns.
    pub fn new(block: &Block) -> Self {
        let mut keys = Vec::new();
        let mut types = Vec::new();
        for (i, c) in block.columns().iter().enumerate() {
            let mut k = Vec::new();
            if i > 0 {
                k.push(b',');
            }
            write_json_string(&mut k, c.name().as_bytes());
            k.push(b':');
            keys.push(k);
            types.push(c.column_type().clone());
        }
        JsonRowEncoder { keys, types }
    }

    /// Appends row `row` of `block` as a JSON object to `out`.
    pub fn encode_row(&self, block: &Block, row: usize, out: &mut Vec<u8>) -> Result<(), JsonEncodeError> {
        out.push(b'{');
        for (i, key) in self.keys.iter().enumerate() {
            out.extend_from_slice(key);
            self.try_encode_value(block, i, row, out)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// Appends the JSON value of column `column`, row `row` (e.g. for a message key).
    /// A value the encoder cannot read (never written by Penstock's decoders) becomes
    /// `null`.
    pub fn encode_value(&self, block: &Block, column: usize, row: usize, out: &mut Vec<u8>) {
        let start = out.len();
        if self.try_encode_value(block, column, row, out).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"null");
        }
    }

    fn try_encode_value(&self, block: &Block, i: usize, row: usize, out: &mut Vec<u8>) -> Result<(), JsonEncodeError> {
        let col = &block.columns()[i];
        if col.is_null(row) {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        let mut value = col.value_bytes(row);
        let ty = match self.types[i].storage() {
            ColumnType::Nullable(inner) => &**inner,
            t => t,
        };
        write_value(ty, &mut value, out).map_err(|reason| JsonEncodeError {
            column: col.name().to_string(),
            row,
            reason,
        })
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if input.len() < n {
        return Err(format!("value needs {n} bytes, {} left", input.len()));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn varint(input: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = take(input, 1)?[0];
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("overlong length".into())
}

fn fixed<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], String> {
    Ok(take(input, N)?.try_into().expect("length checked"))
}

/// Writes one value of `ty` read from its RowBinary/Native encoding at `input`.
fn write_value(ty: &ColumnType, input: &mut &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut ibuf = itoa::Buffer::new();
    match ty {
        ColumnType::String => {
            let n = varint(input)? as usize;
            write_json_string(out, take(input, n)?);
        }
        ColumnType::FixedString(n) => write_json_string(out, take(input, *n)?),
        ColumnType::Int8 => out.extend_from_slice(ibuf.format(i8::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::Int16 => out.extend_from_slice(ibuf.format(i16::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::Int32 => out.extend_from_slice(ibuf.format(i32::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::Int64 => out.extend_from_slice(ibuf.format(i64::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::UInt8 => out.extend_from_slice(ibuf.format(u8::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::UInt16 => out.extend_from_slice(ibuf.format(u16::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::UInt32 => out.extend_from_slice(ibuf.format(u32::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::UInt64 => out.extend_from_slice(ibuf.format(u64::from_le_bytes(fixed(input)?)).as_bytes()),
        ColumnType::Int128 => quoted(out, ibuf.format(i128::from_le_bytes(fixed(input)?))),
        ColumnType::UInt128 => quoted(out, ibuf.format(u128::from_le_bytes(fixed(input)?))),
        ColumnType::Int256 | ColumnType::UInt256 => {
            let bytes: [u8; 32] = fixed(input)?;
            let digits = wide_to_decimal(bytes, matches!(ty, ColumnType::Int256));
            quoted(out, &digits);
        }
        ColumnType::Bool => out.extend_from_slice(if take(input, 1)?[0] != 0 { b"true" } else { b"false" }),
        ColumnType::Float32 => float(out, f64::from(f32::from_le_bytes(fixed(input)?)), true),
        ColumnType::Float64 => float(out, f64::from_le_bytes(fixed(input)?), false),
        ColumnType::Date => date(out, i64::from(u16::from_le_bytes(fixed(input)?))),
        ColumnType::Date32 => date(out, i64::from(i32::from_le_bytes(fixed(input)?))),
        ColumnType::DateTime { .. } => date_time(out, i64::from(u32::from_le_bytes(fixed(input)?)), 0, 0),
        ColumnType::DateTime64 { precision, .. } => {
            let ticks = i64::from_le_bytes(fixed(input)?);
            let scale = 10i64.pow(u32::from(*precision));
            date_time(out, ticks.div_euclid(scale), ticks.rem_euclid(scale), *precision);
        }
        ColumnType::Uuid => {
            let b: [u8; 16] = fixed(input)?;
            let hi = u64::from_le_bytes(b[..8].try_into().expect("8"));
            let lo = u64::from_le_bytes(b[8..].try_into().expect("8"));
            write_uuid(out, (u128::from(hi) << 64) | u128::from(lo));
        }
        ColumnType::Ipv4 => quoted(out, &std::net::Ipv4Addr::from(u32::from_le_bytes(fixed(input)?)).to_string()),
        ColumnType::Ipv6 => quoted(out, &std::net::Ipv6Addr::from(fixed::<16>(input)?).to_string()),
        ColumnType::Decimal { precision, scale } => {
            let width = ty.fixed_width().expect("decimals are fixed");
            let raw = take(input, width)?;
            let _ = precision;
            let v = match width {
                4 => i128::from(i32::from_le_bytes(raw.try_into().expect("4"))),
                8 => i128::from(i64::from_le_bytes(raw.try_into().expect("8"))),
                16 => i128::from_le_bytes(raw.try_into().expect("16")),
                _ => {
                    let text = wide_to_decimal(raw.try_into().expect("32"), true);
                    let (negative, digits) = match text.strip_prefix('-') {
                        Some(d) => (true, d),
                        None => (false, text.as_str()),
                    };
                    write_decimal(out, negative, digits, usize::from(*scale));
                    return Ok(());
                }
            };
            let mut b = itoa::Buffer::new();
            write_decimal(out, v < 0, b.format(v.unsigned_abs()), usize::from(*scale));
        }
        ColumnType::Enum8(items) | ColumnType::Enum16(items) => {
            let v = if matches!(ty, ColumnType::Enum8(_)) {
                i16::from(i8::from_le_bytes(fixed(input)?))
            } else {
                i16::from_le_bytes(fixed(input)?)
            };
            match items.iter().find(|(_, n)| *n == v) {
                Some((label, _)) => write_json_string(out, label.as_bytes()),
                None => out.extend_from_slice(ibuf.format(v).as_bytes()),
            }
        }
        ColumnType::Nullable(inner) => {
            if take(input, 1)?[0] != 0 {
                out.extend_from_slice(b"null");
            } else {
                write_value(inner, input, out)?;
            }
        }
        ColumnType::LowCardinality(inner) => write_value(inner, input, out)?,
        ColumnType::Array(inner) => {
            let n = varint(input)?;
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                write_value(inner, input, out)?;
            }
            out.push(b']');
        }
        ColumnType::Map(k, v) => {
            let n = varint(input)?;
            out.push(b'{');
            let mut key = Vec::new();
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                key.clear();
                write_value(k, input, &mut key)?;
                if key.first() == Some(&b'"') {
                    out.extend_from_slice(&key);
                } else {
                    write_json_string(out, &key);
                }
                out.push(b':');
                write_value(v, input, out)?;
            }
            out.push(b'}');
        }
        ColumnType::Tuple(items) => {
            let named = items.iter().all(|(n, _)| n.is_some()) && !items.is_empty();
            out.push(if named { b'{' } else { b'[' });
            for (i, (name, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if let (true, Some(name)) = (named, name) {
                    write_json_string(out, name.as_bytes());
                    out.push(b':');
                }
                write_value(item, input, out)?;
            }
            out.push(if named { b'}' } else { b']' });
        }
    }
    Ok(())
}

fn quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

fn float(out: &mut Vec<u8>, v: f64, single: bool) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let mut b = ryu::Buffer::new();
    // Float32 values print with f32's shortest digits, as ClickHouse prints them.
    let text = if single { b.format(v as f32) } else { b.format(v) };
    out.extend_from_slice(text.strip_suffix(".0").unwrap_or(text).as_bytes());
}

fn date(out: &mut Vec<u8>, days: i64) {
    out.push(b'"');
    write_ymd(out, days);
    out.push(b'"');
}

/// `YYYY-MM-DD` of a day number.
fn write_ymd(out: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    push_padded(out, y, 4);
    out.push(b'-');
    push_padded(out, i64::from(m), 2);
    out.push(b'-');
    push_padded(out, i64::from(d), 2);
}

fn date_time(out: &mut Vec<u8>, secs: i64, frac: i64, precision: u8) {
    let sod = secs.rem_euclid(86_400);
    out.push(b'"');
    write_ymd(out, secs.div_euclid(86_400));
    out.push(b' ');
    push_padded(out, sod / 3600, 2);
    out.push(b':');
    push_padded(out, sod / 60 % 60, 2);
    out.push(b':');
    push_padded(out, sod % 60, 2);
    if precision > 0 {
        out.push(b'.');
        push_padded(out, frac, usize::from(precision));
    }
    out.push(b'"');
}

fn push_padded(out: &mut Vec<u8>, v: i64, width: usize) {
    let mut b = itoa::Buffer::new();
    let s = b.format(v);
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

/// Writes the canonical `8-4-4-4-12` text of a UUID, quoted.
fn write_uuid(out: &mut Vec<u8>, v: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        out.push(HEX[((v >> (124 - 4 * i)) & 0xf) as usize]);
    }
    out.push(b'"');
}

/// Writes `digits` (no sign) as a decimal with `scale` digits after the point.
fn write_decimal(out: &mut Vec<u8>, negative: bool, digits: &str, scale: usize) {
    if negative && digits.bytes().any(|d| d != b'0') {
        out.push(b'-');
    }
    if scale == 0 {
        out.extend_from_slice(digits.as_bytes());
        return;
    }
    let d = digits.as_bytes();
    if d.len() <= scale {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - d.len(), b'0');
        out.extend_from_slice(d);
    } else {
        let (int, frac) = d.split_at(d.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    }
}

/// The decimal text of a 256-bit little-endian integer (two's complement when `signed`).
fn wide_to_decimal(bytes: [u8; 32], signed: bool) -> String {
    let mut limbs = [0u64; 4];
    for (i, l) in limbs.iter_mut().enumerate() {
        *l = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8"));
    }
    let negative = signed && limbs[3] >> 63 == 1;
    if negative {
        // Two's complement: invert and add one.
        let mut carry = true;
        for l in &mut limbs {
            let (v, c) = (!*l).overflowing_add(u64::from(carry));
            *l = v;
            carry = c;
        }
    }
    let mut digits = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u128;
        for l in limbs.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*l);
            *l = (cur / 10) as u64;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    if negative {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

/// Appends `s` as a JSON string; bytes that are not UTF-8 become U+FFFD.
pub fn write_json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut start = 0;
        for (i, &b) in valid.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            out.extend_from_slice(&valid[start..i]);
            if esc.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            } else {
                out.extend_from_slice(esc);
            }
            start = i + 1;
        }
        out.extend_from_slice(&valid[start..]);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::Column;
    use crate::decode::json::JsonDecoder;
    use crate::decode::{DecodeLimits, FieldSpec, MessageMeta};

    fn round_trip(types: &[(&str, &str)], json: &str) -> String {
        let fields: Vec<FieldSpec> =
            types.iter().map(|(c, t)| FieldSpec::from_key(*c, ColumnType::parse(t).unwrap())).collect();
        let mut dec = JsonDecoder::new(fields, DecodeLimits::default()).unwrap();
        let mut block = dec.new_block();
        let meta = MessageMeta::outside_kafka();
        dec.decode(json.as_bytes(), &meta, &mut block).unwrap();
        let mut out = Vec::new();
        JsonRowEncoder::new(&block).encode_row(&block, 0, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn scalars_render_as_clickhouse_users_expect() {
        let types = [
            ("id", "UUID"),
            ("n", "Int64"),
            ("u", "UInt8"),
            ("amount", "Decimal(12, 2)"),
            ("neg", "Decimal(9, 3)"),
            ("f", "Float64"),
            ("g", "Float32"),
            ("s", "String"),
            ("e", "Enum8('a' = 1, 'b' = 2)"),
            ("t", "DateTime('UTC')"),
            ("t3", "DateTime64(3, 'UTC')"),
            ("d", "Date"),
            ("big", "Int128"),
            ("huge", "Int256"),
            ("ok", "Bool"),
            ("ip", "IPv4"),
            ("x", "Nullable(String)"),
        ];
        let json = r#"{"id":"3c7d1004-4dce-48d2-9e13-8f3288aac743","n":-5,"u":200,"amount":"12.5","neg":-0.004,
            "f":0.1,"g":1.5,"s":"q\"\n\u0001é","e":"b","t":"2026-12-01T10:11:12Z","t3":"2026-12-01 10:11:12.345",
            "d":"2026-02-28","big":"-170141183460469231731687303715884105728",
            "huge":"-57896044618658097711785492504343953926634992332820282019728792003956564819968",
            "ok":true,"ip":"192.0.2.1","x":null}"#;
        assert_eq!(
            round_trip(&types, json),
            concat!(
                r#"{"id":"3c7d1004-4dce-48d2-9e13-8f3288aac743","n":-5,"u":200,"amount":12.50,"neg":-0.004,"#,
                r#""f":0.1,"g":1.5,"s":"q\"\n\u0001é","e":"b","t":"2026-12-01 10:11:12","t3":"2026-12-01 10:11:12.345","#,
                r#""d":"2026-02-28","big":"-170141183460469231731687303715884105728","#,
                r#""huge":"-57896044618658097711785492504343953926634992332820282019728792003956564819968","#,
                r#""ok":true,"ip":"192.0.2.1","x":null}"#
            )
        );
    }

    #[test]
    fn composites() {
        let types = [
            ("a", "Array(Nullable(Int32))"),
            ("m", "Map(String, UInt8)"),
            ("t", "Tuple(x UInt8, y String)"),
            ("p", "Tuple(UInt8, String)"),
            ("lc", "LowCardinality(String)"),
        ];
        let json = r#"{"a":[1,null,3],"m":{"k":1,"l":2},"t":{"x":1,"y":"z"},"p":[2,"w"],"lc":"v"}"#;
        assert_eq!(
            round_trip(&types, json),
            r#"{"a":[1,null,3],"m":{"k":1,"l":2},"t":{"x":1,"y":"z"},"p":[2,"w"],"lc":"v"}"#
        );
    }

    #[test]
    fn invalid_utf8_and_non_finite() {
        let mut out = Vec::new();
        write_json_string(&mut out, b"a\xffb");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\u{fffd}b\"");
        let mut b = Block::new(vec![Column::new("f", ColumnType::Float64)]);
        b.columns_mut()[0].push_fixed(&f64::NAN.to_le_bytes());
        b.commit_row();
        let mut out = Vec::new();
        JsonRowEncoder::new(&b).encode_row(&b, 0, &mut out).unwrap();
        assert_eq!(out, br#"{"f":null}"#);
    }

    #[test]
    fn wide_integers_print_exactly() {
        let mut max = [0xffu8; 32];
        assert_eq!(wide_to_decimal(max, true), "-1");
        max[31] = 0x7f;
        assert_eq!(
            wide_to_decimal(max, true),
            "57896044618658097711785492504343953926634992332820282019728792003956564819967"
        );
        assert_eq!(wide_to_decimal([0; 32], false), "0");
    }
}
