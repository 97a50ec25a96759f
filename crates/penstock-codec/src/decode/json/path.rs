//! JSON paths for fields nested inside a message: `a.b[0].c`, and `['a.b']` for keys
//! that contain dots or brackets. The first key is found during the message scan like
//! any top-level key; the remaining steps are followed inside its (already validated)
//! value, without building a tree.

use crate::decode::json::scan::{members, unescape_into, Kind, Span};
use std::fmt;

/// One step below the top-level key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// An object member.
    Key(String),
    /// An array element (0-based).
    Index(usize),
}

/// A top-level key and the steps below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath {
    /// The top-level key.
    pub key: String,
    /// Steps inside its value.
    pub steps: Vec<PathStep>,
}

impl JsonPath {
    /// Parses `a.b[0].c` / `['a.b'].c`. A plain name without `.` or `[` is a top-level key.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let b = text.as_bytes();
        let mut pos = 0;
        let mut parts: Vec<PathStep> = Vec::new();
        let err = |pos: usize, what: &str| format!("invalid JSON path `{text}` at character {pos}: {what}");
        while pos < b.len() {
            match b[pos] {
                b'[' => {
                    pos += 1;
                    match b.get(pos) {
                        Some(&q @ (b'\'' | b'"')) => {
                            let end = text[pos + 1..].find(q as char).ok_or_else(|| err(pos, "unclosed quote"))?;
                            parts.push(PathStep::Key(text[pos + 1..pos + 1 + end].to_string()));
                            pos += end + 2;
                        }
                        _ => {
                            let end = text[pos..].find(']').ok_or_else(|| err(pos, "missing `]`"))?;
                            let n = text[pos..pos + end].trim().parse().map_err(|_| err(pos, "expected an index"))?;
                            parts.push(PathStep::Index(n));
                            pos += end;
                        }
                    }
                    if b.get(pos) != Some(&b']') {
                        return Err(err(pos, "expected `]`"));
                    }
                    pos += 1;
                    if b.get(pos) == Some(&b'.') {
                        pos += 1;
                        if pos == b.len() {
                            return Err(err(pos, "empty key after `.`"));
                        }
                    }
                }
                _ => {
                    let end = text[pos..].find(['.', '[']).map_or(b.len(), |e| pos + e);
                    if end == pos {
                        return Err(err(pos, "empty key"));
                    }
                    parts.push(PathStep::Key(text[pos..end].to_string()));
                    pos = end;
                    if b.get(pos) == Some(&b'.') {
                        pos += 1;
                        if pos == b.len() {
                            return Err(err(pos, "empty key after `.`"));
                        }
                    }
                }
            }
        }
        let mut steps = parts.into_iter();
        match steps.next() {
            Some(PathStep::Key(key)) => Ok(JsonPath { key, steps: steps.collect() }),
            Some(PathStep::Index(_)) => Err(err(0, "a path starts with a key")),
            None => Err(err(0, "empty path")),
        }
    }

    /// Follows `steps` from the value at `span`: the span of the value found, or `None`
    /// when a step does not exist (a missing field).
    pub fn resolve(steps: &[PathStep], msg: &[u8], mut span: Span, scratch: &mut Vec<u8>) -> Option<Span> {
        for step in steps {
            span = match step {
                PathStep::Key(name) if span.kind == Kind::Object => members(msg, span)
                    .filter(|(k, _)| k.is_some_and(|k| key_equals(msg, k, name.as_bytes(), scratch)))
                    .last()
                    .map(|(_, v)| v)?,
                PathStep::Index(i) if span.kind == Kind::Array => members(msg, span).nth(*i).map(|(_, v)| v)?,
                _ => return None,
            };
        }
        Some(span)
    }
}

/// True when a key span (string contents) spells `name`.
pub(crate) fn key_equals(msg: &[u8], key: Span, name: &[u8], scratch: &mut Vec<u8>) -> bool {
    let raw = &msg[key.start as usize..key.end as usize];
    match key.kind {
        Kind::String { escaped: true } => {
            scratch.clear();
            unescape_into(raw, scratch).is_ok() && scratch.as_slice() == name
        }
        _ => raw == name,
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |k: &str| !k.is_empty() && !k.contains(['.', '[', ']', '\'']);
        if plain(&self.key) {
            f.write_str(&self.key)?;
        } else {
            write!(f, "['{}']", self.key)?;
        }
        for s in &self.steps {
            match s {
                PathStep::Key(k) if plain(k) => write!(f, ".{k}")?,
                PathStep::Key(k) => write!(f, "['{k}']")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json::scan::{scan_object, KeyIndex};

    #[test]
    fn parses_and_prints_paths() {
        let p = JsonPath::parse("a.b[0].c").unwrap();
        assert_eq!(p.key, "a");
        assert_eq!(p.steps, [PathStep::Key("b".into()), PathStep::Index(0), PathStep::Key("c".into())]);
        assert_eq!(p.to_string(), "a.b[0].c");
        let p = JsonPath::parse("['a.b'][2]['x y']").unwrap();
        assert_eq!(p.key, "a.b");
        assert_eq!(p.steps, [PathStep::Index(2), PathStep::Key("x y".into())]);
        assert_eq!(p.to_string(), "['a.b'][2].x y");
        assert_eq!(JsonPath::parse("plain").unwrap().steps, []);
        for bad in ["", "a.", "a..b", "[0]", "a[x]", "a['b", "a[1"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_inside_a_scanned_message() {
        let msg = br#"{"a": {"b": [{"c": 1}, {"c": 2, "c": 3}], "d\u002ee": "x"}}"#;
        let mut slots = vec![None];
        scan_object(msg, &KeyIndex::new(["a"]), &mut slots, &mut Vec::new(), 8).unwrap();
        let a = slots[0].unwrap();
        let text = |p: &str| {
            let path = JsonPath::parse(p).unwrap();
            JsonPath::resolve(&path.steps, msg, a, &mut Vec::new())
                .map(|s| String::from_utf8(msg[s.start as usize..s.end as usize].to_vec()).unwrap())
        };
        assert_eq!(text("a.b[0].c").as_deref(), Some("1"));
        assert_eq!(text("a.b[1].c").as_deref(), Some("3"), "last duplicate wins");
        assert_eq!(text("a['d.e']").as_deref(), Some("x"), "escaped key");
        assert_eq!(text("a.b[2].c"), None);
        assert_eq!(text("a.b.c"), None, "a key step on an array");
        assert_eq!(text("a.b[0].c.d"), None, "a step below a number");
    }
}
