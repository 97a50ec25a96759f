//! Structure-aware: arbitrary JSON documents built from the schema's own keys and
//! awkward values (huge numbers, escapes, surrogates, deep nesting, duplicate keys),
//! rendered as text and decoded. Reaches the per-type conversions far more often
//! than random bytes do.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 26] = [
    "id", "u8", "i64", "u64", "f32", "f64", "amount", "big", "s", "ns", "d", "t", "t64", "e", "offset", "extra", "w",
    "wd", "ip", "fs", "lc", "arr", "map", "tup", "a", "b",
];

#[derive(Debug, Arbitrary)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Huge(u8, u64),
    Float(f64),
    Exp(i32, i16),
    Str(String),
    Escaped(Vec<Escape>),
    Date(u16, u8, u8, u8, u8, u8, u32, i8),
    Uuid(u128, bool),
    Array(Vec<Value>),
    Object(Vec<(u8, Value)>),
}

#[derive(Debug, Arbitrary)]
enum Escape {
    Plain(char),
    Unicode(u16),
    Named(u8),
}

#[derive(Debug, Arbitrary)]
struct Doc {
    fields: Vec<(u8, Value)>,
    trailing: Option<u8>,
    bom: bool,
}

fn render(v: &Value, out: &mut String, depth: usize) {
    use std::fmt::Write;
    if depth > 40 {
        out.push_str("null");
        return;
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => write!(out, "{i}").unwrap(),
        Value::Huge(digits, n) => {
            write!(out, "{n}").unwrap();
            for _ in 0..(*digits % 64) {
                out.push('9');
            }
        }
        Value::Float(f) => write!(out, "{f:?}").unwrap(),
        Value::Exp(m, e) => write!(out, "{m}.5e{e}").unwrap(),
        Value::Str(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Escaped(parts) => {
            out.push('"');
            for p in parts {
                match p {
                    Escape::Plain(c) if *c != '"' && *c != '\\' && (*c as u32) >= 0x20 => out.push(*c),
                    Escape::Plain(_) => out.push('x'),
                    Escape::Unicode(u) => write!(out, "\\u{u:04x}").unwrap(),
                    Escape::Named(n) => out.push_str(["\\n", "\\t", "\\/", "\\b", "\\f", "\\r", "\\\"", "\\\\"][*n as usize % 8]),
                }
            }
            out.push('"');
        }
        Value::Date(y, mo, d, h, mi, s, frac, tz) => {
            write!(out, "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{frac}", y % 10000, mo % 14, d % 33, h % 25, mi % 61, s % 61)
                .unwrap();
            match tz % 3 {
                0 => out.push_str("Z\""),
                1 => write!(out, "+{:02}:30\"", tz.unsigned_abs() % 15).unwrap(),
                _ => out.push('"'),
            }
        }
        Value::Uuid(u, upper) => {
            let h = format!("{u:032x}");
            let h = if *upper { h.to_uppercase() } else { h };
            write!(out, "\"{}-{}-{}-{}-{}\"", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]).unwrap();
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(fields) => render_object(fields, out, depth + 1),
    }
}

fn render_object(fields: &[(u8, Value)], out: &mut String, depth: usize) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(KEYS[*k as usize % KEYS.len()]);
        out.push_str("\":");
        render(v, out, depth);
    }
    out.push('}');
}

fuzz_target!(|doc: Doc| {
    let mut text = String::new();
    if doc.bom {
        text.push('\u{feff}');
    }
    render_object(&doc.fields, &mut text, 0);
    if let Some(t) = doc.trailing {
        text.push(t as char);
    }
    let mut decoder = common::decoder();
    let mut block = decoder.new_block();
    common::check(&mut decoder, &mut block, text.as_bytes());
    common::check(&mut decoder, &mut block, text.as_bytes());
});
