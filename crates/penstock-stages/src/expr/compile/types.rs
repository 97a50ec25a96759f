//! How two operand types compare, LIKE patterns, and CAST type names.

use super::*;

/// How values of `a` and `b` compare, or why they cannot.
pub(super) fn domain(a: &Ty, b: &Ty) -> Result<Domain, String> {
    use Base::*;
    let no = || format!("cannot compare {} with {}", a.base, b.base);
    let same = Domain::Int { left: 1, right: 1 };
    let pow = |k: u8| 10i128.pow(u32::from(k));
    // A time as (is days, ticks precision).
    let time = |t: &Base| match t {
        Date => Some((true, 0u8)),
        DateTime => Some((false, 0u8)),
        DateTime64(p) => Some((false, *p)),
        _ => None,
    };
    Ok(match (&a.base, &b.base) {
        (Nothing, _) | (_, Nothing) => same,
        (String, String) => Domain::Bytes,
        (String, _) | (_, String) => return Err(no()),
        (Float(_), _) | (_, Float(_)) if a.is_number() && b.is_number() => Domain::Float,
        (Decimal { scale: x, .. }, Decimal { scale: y, .. }) => {
            let s = (*x).max(*y);
            Domain::Int { left: pow(s - x), right: pow(s - y) }
        }
        (Decimal { scale, .. }, _) if b.is_integer() => Domain::Int { left: 1, right: pow(*scale) },
        (_, Decimal { scale, .. }) if a.is_integer() => Domain::Int { left: pow(*scale), right: 1 },
        (Enum { .. }, Enum { .. }) if a.base == b.base => same,
        (Enum { .. }, _) if b.is_integer() => same,
        (_, Enum { .. }) if a.is_integer() => same,
        _ if a.is_integer() && b.is_integer() => same,
        _ => match (time(&a.base), time(&b.base)) {
            (Some((da, pa)), Some((db, pb))) => {
                let p = pa.max(pb);
                let mul = |days: bool, q: u8| if days { 86_400 * pow(p) } else { pow(p - q) };
                if da && db {
                    same
                } else {
                    Domain::Int { left: mul(da, pa), right: mul(db, pb) }
                }
            }
            _ => return Err(no()),
        },
    })
}

pub(super) fn like_pattern(p: &[u8]) -> Vec<LikePart> {
    let mut parts = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => {
                lit.push(p[i + 1]);
                i += 1;
            }
            b'%' | b'_' => {
                if !lit.is_empty() {
                    parts.push(LikePart::Literal(std::mem::take(&mut lit)));
                }
                parts.push(if p[i] == b'%' { LikePart::Any } else { LikePart::One });
            }
            b => lit.push(b),
        }
        i += 1;
    }
    if !lit.is_empty() {
        parts.push(LikePart::Literal(lit));
    }
    parts
}

/// The target of `CAST(x AS T)`: ClickHouse's type names in any letter case, and the
/// SQL aliases ClickHouse accepts (`INT`, `BIGINT`, `DOUBLE`, `TEXT`, `VARCHAR`...).
pub(super) fn cast_type(t: &DataType) -> Option<Ty> {
    const NAMES: &[(&str, &str)] = &[
        ("NULLABLE", "Nullable"),
        ("LOWCARDINALITY", "LowCardinality"),
        ("DATETIME64", "DateTime64"),
        ("DATETIME", "DateTime"),
        ("DATE32", "Date32"),
        ("DATE", "Date"),
        ("DECIMAL", "Decimal"),
        ("UINT8", "UInt8"),
        ("UINT16", "UInt16"),
        ("UINT32", "UInt32"),
        ("UINT64", "UInt64"),
        ("INT8", "Int8"),
        ("INT16", "Int16"),
        ("INT32", "Int32"),
        ("INT64", "Int64"),
        ("FLOAT32", "Float32"),
        ("FLOAT64", "Float64"),
        ("STRING", "String"),
        ("BOOL", "Bool"),
        ("TINYINT", "Int8"),
        ("SMALLINT", "Int16"),
        ("BIGINT", "Int64"),
        ("INTEGER", "Int32"),
        ("INT", "Int32"),
        ("DOUBLE", "Float64"),
        ("FLOAT", "Float32"),
        ("TEXT", "String"),
        ("VARCHAR", "String"),
        ("BOOLEAN", "Bool"),
    ];
    let text = t.to_string();
    let mut out = String::new();
    let mut rest = text.as_str();
    'scan: while !rest.is_empty() {
        let upper = rest.to_ascii_uppercase();
        for (from, to) in NAMES {
            let after = upper.as_bytes().get(from.len()).copied();
            if upper.starts_with(from) && !after.is_some_and(|c| c.is_ascii_alphanumeric()) {
                out.push_str(to);
                rest = &rest[from.len()..];
                continue 'scan;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let parsed = penstock_codec::ColumnType::parse(&out).ok()?;
    let _ = ExactNumberInfo::None;
    Ty::from_column(&parsed).ok()
}
