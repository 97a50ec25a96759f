//! One JSON value into one column: the JSON decoder's side of the format-neutral
//! writers in [`crate::decode::write`]. A JSON string is given as text, a number as its
//! decimal text, `true`/`false` as a boolean; a String column takes the JSON text of
//! anything else; arrays, objects and nested values fill composites.

use crate::column::write_varint;
use crate::decode::json::path::key_equals;
use crate::decode::json::scan::{members, unescape_into, Kind, Span};
use crate::decode::write::{bad, expected, write_bool, write_default, write_number, write_text, Bad, Leaf, Out, Shape};
use crate::error::DecodeErrorKind;

/// Text of a string or number span (strings with escapes are unescaped into `scratch`).
#[inline]
fn scalar_text<'m>(msg: &'m [u8], span: Span, scratch: &'m mut Vec<u8>) -> Result<&'m [u8], Bad> {
    let raw = &msg[span.start as usize..span.end as usize];
    match span.kind {
        Kind::Number | Kind::String { escaped: false } => Ok(raw),
        Kind::String { escaped: true } => {
            scratch.clear();
            unescape_into(raw, scratch).map_err(|why| bad(DecodeErrorKind::InvalidJson, why))?;
            Ok(scratch.as_slice())
        }
        _ => Err(bad(DecodeErrorKind::WrongType, "expected a number or a string")),
    }
}

/// Converts the JSON value at `span` for `leaf` and writes it to `col`. `nested` is the
/// scratch buffer composite values are built in.
pub(super) fn write_json<O: Out>(
    leaf: &Leaf,
    col: &mut O,
    msg: &[u8],
    span: Span,
    scratch: &mut Vec<u8>,
    nested: &mut Vec<u8>,
) -> Result<(), Bad> {
    let raw = &msg[span.start as usize..span.end as usize];
    match (leaf, span.kind) {
        (Leaf::Composite(shape), _) => {
            nested.clear();
            write_shape(shape, nested, msg, span, scratch)?;
            // The RowBinary bytes are the stored value; an encoded string would add a length.
            col.encoded(nested);
            Ok(())
        }
        (Leaf::Str, Kind::String { escaped: true }) => {
            scratch.clear();
            unescape_into(raw, scratch).map_err(|why| bad(DecodeErrorKind::InvalidJson, why))?;
            col.string(scratch);
            Ok(())
        }
        // Strings, and the JSON text of numbers, booleans, objects and arrays.
        (Leaf::Str, _) => {
            col.string(raw);
            Ok(())
        }
        (_, Kind::String { .. }) => write_text(leaf, col, scalar_text(msg, span, scratch)?),
        (_, Kind::Number) => write_number(leaf, col, raw),
        (_, Kind::True) => write_bool(leaf, col, true),
        (_, Kind::False) => write_bool(leaf, col, false),
        _ => Err(expected(leaf)),
    }
}

/// Writes a composite value's RowBinary encoding.
fn write_shape(shape: &Shape, out: &mut Vec<u8>, msg: &[u8], span: Span, scratch: &mut Vec<u8>) -> Result<(), Bad> {
    match shape {
        Shape::Leaf(leaf) => {
            if span.kind == Kind::Null {
                write_default(shape, out);
                return Ok(());
            }
            // Nested composites are written in place (no extra scratch needed).
            match &**leaf {
                Leaf::Composite(inner) => write_shape(inner, out, msg, span, scratch),
                leaf => {
                    let mut unused = Vec::new();
                    write_json(leaf, out, msg, span, scratch, &mut unused)
                }
            }
        }
        Shape::Nullable(inner) => {
            if span.kind == Kind::Null {
                out.push(1);
                Ok(())
            } else {
                out.push(0);
                write_shape(inner, out, msg, span, scratch)
            }
        }
        Shape::Array(inner) => match span.kind {
            Kind::Array => {
                write_varint(out, members(msg, span).count() as u64);
                for (_, element) in members(msg, span) {
                    write_shape(inner, out, msg, element, scratch)?;
                }
                Ok(())
            }
            Kind::Null => {
                out.push(0);
                Ok(())
            }
            _ => Err(bad(DecodeErrorKind::WrongType, "expected an array")),
        },
        Shape::Map(k, v) => match span.kind {
            Kind::Object => {
                write_varint(out, members(msg, span).count() as u64);
                for (key, value) in members(msg, span) {
                    write_shape(k, out, msg, key.expect("object members have keys"), scratch)?;
                    write_shape(v, out, msg, value, scratch)?;
                }
                Ok(())
            }
            Kind::Null => {
                out.push(0);
                Ok(())
            }
            _ => Err(bad(DecodeErrorKind::WrongType, "expected an object")),
        },
        Shape::Tuple(items) => match span.kind {
            Kind::Array => {
                let mut given = members(msg, span);
                for (_, item) in items {
                    match given.next() {
                        Some((_, value)) => write_shape(item, out, msg, value, scratch)?,
                        None => write_default(item, out),
                    }
                }
                if given.next().is_some() {
                    return Err(bad(DecodeErrorKind::InvalidValue, "more elements than the Tuple has"));
                }
                Ok(())
            }
            Kind::Object => {
                for (name, item) in items {
                    let Some(name) = name else {
                        return Err(bad(DecodeErrorKind::WrongType, "an unnamed Tuple needs a JSON array"));
                    };
                    let value =
                        members(msg, span).filter(|(k, _)| k.is_some_and(|k| key_equals(msg, k, name, scratch))).last();
                    match value {
                        Some((_, v)) => write_shape(item, out, msg, v, scratch)?,
                        None => write_default(item, out),
                    }
                }
                Ok(())
            }
            _ => Err(bad(DecodeErrorKind::WrongType, "expected an array or an object for a Tuple")),
        },
    }
}
