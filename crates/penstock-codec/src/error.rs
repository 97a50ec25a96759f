//! Errors of the codec crate: why a message could not become a row, and why a schema
//! could not be compiled.

use std::fmt;

/// The class of a decode failure, stable enough to count and to store in a dead-letter
/// table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Larger than the configured message limit.
    TooLarge,
    /// Nested deeper than the configured limit.
    TooDeep,
    /// Not valid UTF-8.
    NotUtf8,
    /// Not valid JSON, or not a JSON object.
    InvalidJson,
    /// A required field is absent.
    MissingField,
    /// A required field is `null`.
    NullValue,
    /// The JSON type cannot be converted to the column type.
    WrongType,
    /// The value does not fit the column type.
    OutOfRange,
    /// The value has the right JSON type but is not a valid value (bad date, UUID...).
    InvalidValue,
}

impl DecodeErrorKind {
    /// A short snake_case name, for logs, metrics and dead-letter rows.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::TooLarge => "too_large",
            DecodeErrorKind::TooDeep => "too_deep",
            DecodeErrorKind::NotUtf8 => "not_utf8",
            DecodeErrorKind::InvalidJson => "invalid_json",
            DecodeErrorKind::MissingField => "missing_field",
            DecodeErrorKind::NullValue => "null_value",
            DecodeErrorKind::WrongType => "wrong_type",
            DecodeErrorKind::OutOfRange => "out_of_range",
            DecodeErrorKind::InvalidValue => "invalid_value",
        }
    }
}

/// Why one message could not be decoded into a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Failure class.
    pub kind: DecodeErrorKind,
    /// The destination column concerned, when the failure is about one field.
    pub column: Option<String>,
    /// Human-readable detail: what was found and what was expected.
    pub message: String,
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, column: Option<String>, message: String) -> Self {
        DecodeError { kind, column, message }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{}: column `{c}`: {}", self.kind.as_str(), self.message),
            None => write!(f, "{}: {}", self.kind.as_str(), self.message),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A schema that cannot be compiled into a decoder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}`: {reason}")]
pub struct SchemaError {
    /// The column concerned.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}
