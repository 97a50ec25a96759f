//! Safe SQL text: identifiers are always backquoted and escaped, literals always
//! single-quoted and escaped. Names come from pipeline files and topics: untrusted.

/// Quotes an identifier with backquotes, escaping `\` and `` ` ``.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        match c {
            '`' => out.push_str("\\`"),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('`');
    out
}

/// Quotes a string literal.
pub fn literal(value: &str) -> String {
    penstock_codec::types::quote(value)
}

/// `db`.`table`
pub fn table_ref(database: &str, table: &str) -> String {
    format!("{}.{}", ident(database), ident(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("a`b"), "`a\\`b`");
        assert_eq!(ident("x\\"), "`x\\\\`");
        assert_eq!(ident("; DROP TABLE t"), "`; DROP TABLE t`");
        assert_eq!(literal("it's"), "'it\\'s'");
        assert_eq!(table_ref("db", "t.x"), "`db`.`t.x`");
    }
}
