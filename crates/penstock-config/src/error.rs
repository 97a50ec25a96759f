//! Configuration errors: every one names the file, the line and column, the key path,
//! and what is wrong, and shows the offending line.

use std::fmt;

/// A pipeline file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as given by the user.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// Dotted key path, e.g. `schema.user_id.type` (empty for the whole file).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The source line concerned, for display.
    pub source_line: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": `{}`: {}", self.path, self.message)?;
        }
        if let (Some(text), Some(col)) = (&self.source_line, self.column) {
            let pad = " ".repeat(col.saturating_sub(1) as usize);
            write!(f, "\n    {text}\n    {pad}^")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Builds errors for one file.
#[derive(Debug, Clone)]
pub(crate) struct Locator<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
}

impl Locator<'_> {
    pub(crate) fn at(
        &self,
        line: Option<u64>,
        column: Option<u64>,
        path: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let source_line = line.and_then(|l| self.text.lines().nth(l.checked_sub(1)? as usize)).map(str::to_string);
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            path: path.to_string(),
            message: message.into(),
            source_line,
        }
    }

    /// An error about a key whose position is not known.
    pub(crate) fn plain_at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        self.at(None, None, path, message)
    }

    pub(crate) fn spanned(&self, loc: &serde_saphyr::Location, path: &str, message: impl Into<String>) -> ConfigError {
        let known = loc.line() > 0;
        self.at(known.then(|| loc.line()), known.then(|| loc.column()), path, message)
    }
}
