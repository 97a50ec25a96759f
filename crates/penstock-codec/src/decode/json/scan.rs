//! A validating JSON scanner that records where each wanted value is, without building
//! a tree and without allocating.
//!
//! A message is scanned once: every byte is checked against the JSON grammar (RFC 8259,
//! plus a nesting-depth limit), and for each top-level key that the schema wants, the
//! span of its value is written into a caller-owned slot array. Values are converted
//! later, column by column, straight into column buffers (see `decoder`).
//!
//! Duplicate keys: the last occurrence wins (as in most JSON parsers and ClickHouse).

/// What kind of JSON value a span holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string; the span is its contents without quotes. `escaped` if it has `\`.
    String {
        /// Whether the contents contain escape sequences.
        escaped: bool,
    },
    /// A number; the span is its text.
    Number,
    /// `true`.
    True,
    /// `false`.
    False,
    /// `null`.
    Null,
    /// An object; the span is its whole text including braces.
    Object,
    /// An array; the span is its whole text including brackets.
    Array,
}

/// Location and kind of one value inside the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Start byte (inclusive).
    pub start: u32,
    /// End byte (exclusive).
    pub end: u32,
    /// Value kind.
    pub kind: Kind,
}

/// A JSON syntax error with the byte position where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the message.
    pub at: usize,
    /// What was expected or found.
    pub what: &'static str,
}

/// Maps top-level keys to slot indexes. Built once per schema.
#[derive(Debug, Clone)]
pub struct KeyIndex {
    keys: Vec<Box<[u8]>>,
}

impl KeyIndex {
    /// An index over `keys`; the slot of a key is its position in the list.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(keys: I) -> Self {
        KeyIndex { keys: keys.into_iter().map(|k| k.as_ref().as_bytes().into()).collect() }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is wanted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Slot of `key` (unescaped), if the schema wants it.
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        self.find(key, 0)
    }

    /// Slot of `key`, trying `hint` first (producers usually repeat the same key order).
    #[inline]
    fn find(&self, key: &[u8], hint: usize) -> Option<usize> {
        if let Some(k) = self.keys.get(hint) {
            if **k == *key {
                return Some(hint);
            }
        }
        self.keys.iter().position(|k| **k == *key)
    }
}

/// Byte classes inside a string: 0 = plain, 1 = quote, 2 = backslash, 3 = control.
static STRING_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 3;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 2;
    t
};

#[derive(Debug)]
struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
    max_depth: usize,
}

type Result<T> = std::result::Result<T, SyntaxError>;

impl<'a> Scanner<'a> {
    #[inline]
    fn err<T>(&self, what: &'static str) -> Result<T> {
        Err(SyntaxError { at: self.pos, what })
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&b) = self.s.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// At an opening quote; returns the contents span and whether it has escapes.
    #[inline]
    fn string(&mut self) -> Result<(usize, usize, bool)> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.skip_plain();
            let Some(&b) = self.s.get(self.pos) else {
                return self.err("unterminated string");
            };
            match STRING_CLASS[b as usize] {
                0 => self.pos += 1,
                1 => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                2 => {
                    escaped = true;
                    match self.s.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
                        Some(b'u') => {
                            let hex = self.s.get(self.pos + 2..self.pos + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return self.err("invalid \\u escape");
                            }
                            self.pos += 6;
                        }
                        _ => return self.err("invalid escape sequence"),
                    }
                }
                _ => return self.err("control character in string"),
            }
        }
    }

    /// Skips plain string bytes eight at a time: stops at the first `"`, `\\` or
    /// control byte of a word (exactly: the lowest flagged byte is never a false hit),
    /// or where fewer than eight bytes remain.
    #[inline]
    fn skip_plain(&mut self) {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        while let Some(chunk) = self.s.get(self.pos..self.pos + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let quote = w ^ (LO * u64::from(b'"'));
            let slash = w ^ (LO * u64::from(b'\\'));
            let flagged = (quote.wrapping_sub(LO) & !quote)
                | (slash.wrapping_sub(LO) & !slash)
                | (w.wrapping_sub(LO * 0x20) & !w);
            let flagged = flagged & HI;
            if flagged != 0 {
                self.pos += (flagged.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
    }

    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    #[inline]
    fn number(&mut self) -> Result<()> {
        if self.s.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.s.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.err("invalid number: no digits after the decimal point");
            }
        }
        if matches!(self.s.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.s.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number: no digits in the exponent");
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    /// Scans any value at the current position (whitespace already skipped).
    fn value(&mut self, depth: usize) -> Result<Span> {
        let start = self.pos;
        let kind = match self.s.get(self.pos) {
            Some(b'"') => {
                let (s, e, escaped) = self.string()?;
                return Ok(Span { start: s as u32, end: e as u32, kind: Kind::String { escaped } });
            }
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Kind::Number
            }
            Some(b't') => {
                self.literal(b"true")?;
                Kind::True
            }
            Some(b'f') => {
                self.literal(b"false")?;
                Kind::False
            }
            Some(b'n') => {
                self.literal(b"null")?;
                Kind::Null
            }
            Some(b'{') => {
                self.container(depth + 1, b'}')?;
                Kind::Object
            }
            Some(b'[') => {
                self.container(depth + 1, b']')?;
                Kind::Array
            }
            None => return self.err("unexpected end of input, expected a value"),
            Some(_) => return self.err("expected a value"),
        };
        Ok(Span { start: start as u32, end: self.pos as u32, kind })
    }

    /// Skips a nested object or array, validating it.
    fn container(&mut self, depth: usize, close: u8) -> Result<()> {
        if depth > self.max_depth {
            return self.err("nesting deeper than the configured limit");
        }
        self.pos += 1;
        self.skip_ws();
        if self.s.get(self.pos) == Some(&close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if close == b'}' {
                if self.s.get(self.pos) != Some(&b'"') {
                    return self.err("expected a string key");
                }
                self.string()?;
                self.skip_ws();
                if self.s.get(self.pos) != Some(&b':') {
                    return self.err("expected `:` after key");
                }
                self.pos += 1;
                self.skip_ws();
            }
            self.value(depth)?;
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err(if close == b'}' { "expected `,` or `}`" } else { "expected `,` or `]`" }),
            }
        }
    }
}

/// Scans one JSON value (any kind) that must fill the whole message apart from
/// whitespace, validating it; returns its span.
pub fn scan_value(msg: &[u8], max_depth: usize) -> std::result::Result<Span, SyntaxError> {
    let mut sc = Scanner { s: msg, pos: 0, max_depth };
    sc.skip_ws();
    let v = sc.value(0)?;
    sc.skip_ws();
    if sc.pos != msg.len() {
        return sc.err("unexpected text after the value");
    }
    Ok(v)
}

/// The members of an array or object span produced by [`scan_object`] (so already
/// validated): `(Some(key), value)` for an object, `(None, element)` for an array.
/// Keys are string spans (contents without quotes). Used to convert nested values
/// (arrays, maps, tuples, JSON paths) without building a tree.
pub fn members(msg: &[u8], span: Span) -> Members<'_> {
    let close = if span.kind == Kind::Object { b'}' } else { b']' };
    let sc = Scanner { s: &msg[..span.end as usize], pos: span.start as usize + 1, max_depth: usize::MAX };
    let done = !matches!(span.kind, Kind::Object | Kind::Array);
    Members { sc, close, done }
}

/// Iterator returned by [`members`].
#[derive(Debug)]
pub struct Members<'a> {
    sc: Scanner<'a>,
    close: u8,
    done: bool,
}

impl Iterator for Members<'_> {
    type Item = (Option<Span>, Span);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let sc = &mut self.sc;
        sc.skip_ws();
        if matches!(sc.s.get(sc.pos), Some(&c) if c == self.close) || sc.pos >= sc.s.len() {
            self.done = true;
            return None;
        }
        let key = if self.close == b'}' {
            let (start, end, escaped) = sc.string().ok()?;
            sc.skip_ws();
            sc.pos += 1; // `:`
            sc.skip_ws();
            Some(Span { start: start as u32, end: end as u32, kind: Kind::String { escaped } })
        } else {
            None
        };
        let value = sc.value(0).ok()?;
        sc.skip_ws();
        if sc.s.get(sc.pos) == Some(&b',') {
            sc.pos += 1;
        }
        Some((key, value))
    }
}

/// Scans one JSON object message, filling `slots[i]` with the value of key `i` of
/// `index` (or `None` when absent). Any key whose text has escapes is unescaped into
/// `scratch` before matching.
pub fn scan_object(
    msg: &[u8],
    index: &KeyIndex,
    slots: &mut [Option<Span>],
    scratch: &mut Vec<u8>,
    max_depth: usize,
) -> std::result::Result<(), SyntaxError> {
    slots.iter_mut().for_each(|s| *s = None);
    let mut sc = Scanner { s: msg, pos: 0, max_depth };
    sc.skip_ws();
    match sc.s.get(sc.pos) {
        Some(b'{') => {}
        None => return sc.err("empty message"),
        Some(_) => return sc.err("message is not a JSON object"),
    }
    if max_depth == 0 {
        return sc.err("nesting deeper than the configured limit");
    }
    sc.pos += 1;
    sc.skip_ws();
    let mut hint = 0;
    if sc.s.get(sc.pos) == Some(&b'}') {
        sc.pos += 1;
    } else {
        loop {
            if sc.s.get(sc.pos) != Some(&b'"') {
                return sc.err("expected a string key");
            }
            let (ks, ke, kesc) = sc.string()?;
            sc.skip_ws();
            if sc.s.get(sc.pos) != Some(&b':') {
                return sc.err("expected `:` after key");
            }
            sc.pos += 1;
            sc.skip_ws();
            let v = sc.value(1)?;
            let slot = if kesc {
                scratch.clear();
                unescape_into(&msg[ks..ke], scratch).map_err(|what| SyntaxError { at: ks, what })?;
                index.find(scratch, hint)
            } else {
                index.find(&msg[ks..ke], hint)
            };
            if let Some(i) = slot {
                slots[i] = Some(v);
                hint = i + 1;
            }
            sc.skip_ws();
            match sc.s.get(sc.pos) {
                Some(b',') => {
                    sc.pos += 1;
                    sc.skip_ws();
                }
                Some(b'}') => {
                    sc.pos += 1;
                    break;
                }
                _ => return sc.err("expected `,` or `}`"),
            }
        }
    }
    sc.skip_ws();
    if sc.pos != msg.len() {
        return sc.err("unexpected data after the JSON object");
    }
    Ok(())
}

fn hex4(s: &[u8]) -> u32 {
    s.iter().fold(0, |acc, &b| acc * 16 + (b as char).to_digit(16).unwrap_or(0))
}

/// Appends the unescaped contents of a JSON string (already validated by the scanner,
/// without quotes) to `out`. Fails on unpaired UTF-16 surrogates.
pub fn unescape_into(s: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), &'static str> {
    let mut i = 0;
    while i < s.len() {
        let Some(off) = memchr::memchr(b'\\', &s[i..]) else {
            out.extend_from_slice(&s[i..]);
            break;
        };
        out.extend_from_slice(&s[i..i + off]);
        i += off;
        let esc = s.get(i + 1).copied().ok_or("truncated escape")?;
        i += 2;
        let c = match esc {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = hex4(s.get(i..i + 4).ok_or("truncated \\u escape")?);
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if s.get(i..i + 2) != Some(b"\\u") {
                        return Err("unpaired UTF-16 surrogate in \\u escape");
                    }
                    let lo = hex4(s.get(i + 2..i + 6).ok_or("truncated \\u escape")?);
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err("unpaired UTF-16 surrogate in \\u escape");
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return Err("unpaired UTF-16 surrogate in \\u escape");
                } else {
                    hi
                };
                let ch = char::from_u32(code).ok_or("invalid \\u escape")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return Err("invalid escape sequence"),
        };
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(msg: &str, keys: &[&str]) -> std::result::Result<Vec<Option<(String, Kind)>>, SyntaxError> {
        let idx = KeyIndex::new(keys);
        let mut slots = vec![None; keys.len()];
        let mut scratch = Vec::new();
        scan_object(msg.as_bytes(), &idx, &mut slots, &mut scratch, 16)?;
        Ok(slots.into_iter().map(|s| s.map(|s| (msg[s.start as usize..s.end as usize].to_string(), s.kind))).collect())
    }

    #[test]
    fn finds_wanted_values() {
        let r = scan(
            r#" {"a": 1, "skip": {"x": [1, 2, {"y": null}]}, "b": "h\"i", "c": true, "d": null, "e": [1] } "#,
            &["b", "a", "c", "d", "e", "missing"],
        )
        .unwrap();
        assert_eq!(r[0], Some((r#"h\"i"#.into(), Kind::String { escaped: true })));
        assert_eq!(r[1], Some(("1".into(), Kind::Number)));
        assert_eq!(r[2], Some(("true".into(), Kind::True)));
        assert_eq!(r[3], Some(("null".into(), Kind::Null)));
        assert_eq!(r[4], Some(("[1]".into(), Kind::Array)));
        assert_eq!(r[5], None);
    }

    #[test]
    fn last_duplicate_wins_and_escaped_keys_match() {
        let r = scan(r#"{"a":1,"\u0061":2}"#, &["a"]).unwrap();
        assert_eq!(r[0], Some(("2".into(), Kind::Number)));
    }

    #[test]
    fn syntax_errors_have_positions() {
        for (msg, at) in [
            ("", 0),
            ("[1]", 0),
            ("{\"a\" 1}", 5),
            ("{\"a\":01}", 6),
            ("{\"a\":1,}", 7),
            ("{\"a\":\"x}", 8),
            ("{\"a\":tru}", 5),
            ("{\"a\":1} x", 8),
            ("{\"a\":1.}", 7),
            ("{\"a\":\"\t\"}", 6),
            ("{\"a\":\"\\x\"}", 6),
            ("{\"a\":-}", 6),
        ] {
            let e = scan(msg, &["a"]).unwrap_err();
            assert_eq!(e.at, at, "{msg:?}: {e:?}");
        }
    }

    #[test]
    fn depth_limit() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(20), "]".repeat(20));
        let idx = KeyIndex::new(["a"]);
        let mut slots = vec![None];
        let e = scan_object(deep.as_bytes(), &idx, &mut slots, &mut Vec::new(), 16).unwrap_err();
        assert_eq!(e.what, "nesting deeper than the configured limit");
        assert!(scan_object(deep.as_bytes(), &idx, &mut slots, &mut Vec::new(), 21).is_ok());
    }

    #[test]
    fn word_at_a_time_scan_agrees_with_bytewise() {
        // Every position of a special byte inside long and short strings.
        for len in 0..40 {
            for special in ["\\\"", "\\n", "\x01", "\x7f\u{e9}"] {
                for at in 0..=len {
                    let mut body: String = "a".repeat(len);
                    body.insert_str(at, special);
                    let msg = format!("{{\"k\":\"{body}\"}}");
                    let r = scan(&msg, &["k"]);
                    if special == "\x01" {
                        assert_eq!(r.unwrap_err().what, "control character in string");
                    } else {
                        let got = r.unwrap()[0].clone().unwrap();
                        assert_eq!(got.0, body, "{msg:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn unescapes() {
        let mut out = Vec::new();
        unescape_into(br#"a\n\u00e9\ud83d\ude00\/"#, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\n\u{e9}\u{1F600}/");
        assert!(unescape_into(br"\ud83d", &mut Vec::new()).is_err());
        assert!(unescape_into(br"\ude00", &mut Vec::new()).is_err());
    }

    #[test]
    fn members_of_nested_values() {
        let msg = br#"{"a": [1, "x\"y", [2, 3], {"k": null}], "m": {"p": 1, "q\u0041": [true]}, "e": [], "o": {}}"#;
        let index = KeyIndex::new(["a", "m", "e", "o"]);
        let mut slots = vec![None; 4];
        scan_object(msg, &index, &mut slots, &mut Vec::new(), 8).unwrap();
        let text = |s: Span| std::str::from_utf8(&msg[s.start as usize..s.end as usize]).unwrap().to_string();
        let a: Vec<(Option<String>, String)> =
            members(msg, slots[0].unwrap()).map(|(k, v)| (k.map(text), text(v))).collect();
        assert_eq!(
            a,
            [(None, "1".into()), (None, r#"x\"y"#.into()), (None, "[2, 3]".into()), (None, r#"{"k": null}"#.into())]
        );
        let m: Vec<(Option<String>, String)> =
            members(msg, slots[1].unwrap()).map(|(k, v)| (k.map(text), text(v))).collect();
        assert_eq!(m, [(Some("p".into()), "1".into()), (Some("q\\u0041".into()), "[true]".into())]);
        assert_eq!(members(msg, slots[2].unwrap()).count(), 0);
        assert_eq!(members(msg, slots[3].unwrap()).count(), 0);
    }
}
