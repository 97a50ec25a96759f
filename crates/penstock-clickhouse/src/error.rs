//! ClickHouse errors and the one place that decides whether to retry them.

use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = ClickHouseError> = std::result::Result<T, E>;

/// A failed request to ClickHouse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClickHouseError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach ClickHouse at {url}: {source}")]
    Transport {
        /// Base URL.
        url: String,
        /// Underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The request did not finish in time.
    #[error("ClickHouse at {url} did not answer within {timeout:?}")]
    Timeout {
        /// Base URL.
        url: String,
        /// Time limit.
        timeout: Duration,
    },
    /// The server answered with an exception.
    #[error("ClickHouse error{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Server {
        /// HTTP status.
        status: u16,
        /// ClickHouse exception code, when present.
        code: Option<u32>,
        /// Exception text.
        message: String,
    },
}

/// What to do about a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// A passing condition (server down, overloaded, timeout): retry with backoff, as
    /// long as it takes.
    Retry,
    /// Unknown cause: retry a bounded number of times, then treat as permanent.
    RetryLimited,
    /// The request itself is wrong (missing table, type mismatch, bad credentials):
    /// retrying cannot help.
    Permanent,
}

/// Exception codes that mean the request can never succeed as sent.
const PERMANENT_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    8,   // THERE_IS_NO_COLUMN
    10,  // NOT_FOUND_COLUMN_IN_BLOCK
    16,  // NO_SUCH_COLUMN_IN_TABLE
    20,  // NUMBER_OF_COLUMNS_DOESNT_MATCH
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA
    36,  // BAD_ARGUMENTS
    38,  // CANNOT_PARSE_DATE
    40,  // CHECKSUM_DOESNT_MATCH (the same bytes would fail again)
    41,  // CANNOT_PARSE_DATETIME
    43,  // ILLEGAL_TYPE_OF_ARGUMENT
    44,  // ILLEGAL_COLUMN
    47,  // UNKNOWN_IDENTIFIER
    48,  // NOT_IMPLEMENTED
    50,  // UNKNOWN_TYPE
    53,  // TYPE_MISMATCH
    57,  // TABLE_ALREADY_EXISTS
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    73,  // UNKNOWN_FORMAT
    81,  // UNKNOWN_DATABASE
    115, // UNKNOWN_SETTING
    117, // INCORRECT_DATA
    164, // READONLY
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    194, // REQUIRED_PASSWORD
    271, // CANNOT_DECOMPRESS
    349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    432, // UNKNOWN_CODEC
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
];

/// Exception codes of conditions that pass by themselves.
/// Permanent errors caused by the values in the rows sent (not by the table, the
/// query or the connection): inserting the other rows alone would succeed.
const ROW_DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a throwIf in a DEFAULT/MATERIALIZED column)
    469, // VIOLATED_CONSTRAINT
];

const TRANSIENT_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE (connection cut mid-request)
    159, // TIMEOUT_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY (replica lost its keeper session)
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

impl ClickHouseError {
    /// Whether and how to retry this failure.
    pub fn retry_hint(&self) -> RetryHint {
        match self {
            ClickHouseError::Transport { .. } | ClickHouseError::Timeout { .. } => RetryHint::Retry,
            ClickHouseError::Server { code: Some(code), .. } => {
                if PERMANENT_CODES.contains(code) {
                    RetryHint::Permanent
                } else if TRANSIENT_CODES.contains(code) {
                    RetryHint::Retry
                } else {
                    RetryHint::RetryLimited
                }
            }
            ClickHouseError::Server { status, code: None, .. } => match status {
                401 | 403 | 404 => RetryHint::Permanent,
                500.. => RetryHint::Retry,
                _ => RetryHint::RetryLimited,
            },
        }
    }

    /// True when the server refused an insert because of values in the rows sent (a
    /// constraint, a `throwIf`, a value it cannot parse): the rows can be isolated and
    /// dead-lettered, the others inserted.
    pub fn is_about_rows(&self) -> bool {
        matches!(self, ClickHouseError::Server { code: Some(c), .. } if ROW_DATA_CODES.contains(c))
    }

    /// The exception code, when the server sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ClickHouseError::Server { code, .. } => *code,
            _ => None,
        }
    }
}

/// Extracts the exception code and a one-line message from an error body, which reads
/// `Code: 60, e.displayText() = DB::Exception: ...` (old servers) or
/// `Code: 60. DB::Exception: ... (UNKNOWN_TABLE) (version ...)` (modern ones).
pub(crate) fn parse_exception(status: u16, body: &str) -> ClickHouseError {
    let body = body.trim();
    let code = body.strip_prefix("Code: ").and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    let message = body
        .split_once("DB::Exception: ")
        .map_or(body, |(_, m)| m)
        .split(", e.what() = ")
        .next()
        .unwrap_or(body)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let message = if message.is_empty() { format!("HTTP status {status}") } else { message };
    ClickHouseError::Server { status, code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_old_and_new_exceptions() {
        let e = parse_exception(
            404,
            "Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist., e.what() = DB::Exception\n",
        );
        assert_eq!(e.code(), Some(60));
        assert_eq!(e.to_string(), "ClickHouse error 60: Table default.nope doesn't exist.");
        assert_eq!(e.retry_hint(), RetryHint::Permanent);
        let e = parse_exception(
            500,
            "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS) (version 24.3.1.1)\n",
        );
        assert_eq!(e.code(), Some(252));
        assert_eq!(e.retry_hint(), RetryHint::Retry);
        let e = parse_exception(500, "Code: 4242. DB::Exception: something new");
        assert_eq!(e.retry_hint(), RetryHint::RetryLimited);
        let e = parse_exception(502, "Bad gateway");
        assert_eq!((e.code(), e.retry_hint()), (None, RetryHint::Retry));
        let e = parse_exception(401, "");
        assert_eq!(e.to_string(), "ClickHouse error: HTTP status 401");
        assert_eq!(e.retry_hint(), RetryHint::Permanent);
    }

    #[test]
    fn only_errors_caused_by_row_values_isolate_rows() {
        let server = |code| ClickHouseError::Server { status: 500, code: Some(code), message: String::new() };
        assert!(server(395).is_about_rows(), "throwIf in a MATERIALIZED column");
        assert!(server(27).is_about_rows() && server(469).is_about_rows());
        for table_or_query in [60, 16, 516, 62, 241, 3] {
            assert!(!server(table_or_query).is_about_rows(), "{table_or_query} is not about the rows");
        }
        let transport = ClickHouseError::Timeout { url: "u".into(), timeout: Duration::from_secs(1) };
        assert!(!transport.is_about_rows());
    }
}
