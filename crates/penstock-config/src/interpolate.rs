//! `${VAR}` and `${VAR:-default}` interpolation of pipeline files from the environment.
//!
//! Interpolation is textual and happens before YAML parsing, line by line, so line
//! numbers of later errors still match the file. `$$` stands for a literal `$`. A
//! value containing a newline is refused (it would change the document's structure),
//! and so is an unset variable without a default.

/// An interpolation failure, located in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column of the `$`.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Replaces every `${NAME}` / `${NAME:-default}` in `text` using `lookup`.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        let mut col = 1;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            col += rest[..i].chars().count();
            let after = &rest[i + 1..];
            let err = |message: String| InterpolationError { line: line_no + 1, column: col, message };
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                col += 2;
            } else if let Some(body) = after.strip_prefix('{') {
                let Some(end) = body.find('}') else {
                    return Err(err("`${` without a closing `}`".into()));
                };
                let expr = &body[..end];
                let (name, default) = match expr.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (expr, None),
                };
                let valid = !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(err(format!("`${{{expr}}}`: `{name}` is not a valid environment variable name")));
                }
                let value = match (lookup(name), default) {
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_string(),
                    (None, None) => {
                        return Err(err(format!(
                            "environment variable `{name}` is not set (use `${{{name}:-default}}` to give a default)"
                        )))
                    }
                };
                if value.contains('\n') {
                    return Err(err(format!("environment variable `{name}` contains a newline")));
                }
                out.push_str(&value);
                col += 3 + expr.chars().count();
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
                col += 1;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("127.0.0.1:9092".into()),
            "EMPTY" => Some(String::new()),
            "NL" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes() {
        assert_eq!(interpolate("b: ${HOST}\n", env).unwrap(), "b: 127.0.0.1:9092\n");
        assert_eq!(interpolate("d: ${NOPE:-default}", env).unwrap(), "d: default");
        assert_eq!(interpolate("d: ${EMPTY:-x}", env).unwrap(), "d: ");
        assert_eq!(interpolate("d: ${NOPE:-}", env).unwrap(), "d: ");
        assert_eq!(interpolate("p: $$HOME and $5", env).unwrap(), "p: $HOME and $5");
    }

    #[test]
    fn errors_are_located() {
        let e = interpolate("a: 1\nb: x ${NOPE}\n", env).unwrap_err();
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.message.contains("`NOPE` is not set"), "{}", e.message);
        let e = interpolate("b: ${HOST", env).unwrap_err();
        assert!(e.message.contains("closing"));
        let e = interpolate("b: ${1X}", env).unwrap_err();
        assert!(e.message.contains("not a valid"));
        let e = interpolate("b: ${NL}", env).unwrap_err();
        assert!(e.message.contains("newline"));
    }
}
