//! Why a pipeline did not start or stopped early.

use penstock_clickhouse::{ClickHouseError, Mismatch};
use penstock_kafka::KafkaEdgeError;

/// A pipeline failure; each variant's message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// ClickHouse could not be reached before starting.
    #[error("cannot start: {0}")]
    ClickHouseUnavailable(#[source] ClickHouseError),
    /// The destination table does not fit the schema.
    #[error("cannot start: table {database}.{table} does not match the pipeline schema:\n  - {}", .mismatches.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    TableMismatch {
        /// Database.
        database: String,
        /// Table.
        table: String,
        /// Every mismatch.
        mismatches: Vec<Mismatch>,
    },
    /// Kafka could not be used.
    #[error("cannot start: {0}")]
    Kafka(#[from] KafkaEdgeError),
    /// The decoder could not be built.
    #[error("cannot start: schema: {0}")]
    Schema(#[from] penstock_codec::SchemaError),
    /// An insert failed for a reason retrying cannot fix; nothing after the last
    /// acknowledged batch was committed.
    #[error("insert into {table} failed permanently (offsets {ranges} not committed): {source}")]
    InsertFailed {
        /// Destination.
        table: String,
        /// The batch's source ranges, as `topic/partition [first, next)`.
        ranges: String,
        /// The server's error.
        #[source]
        source: ClickHouseError,
    },
    /// Stopped by a second signal or the shutdown grace period while work was pending;
    /// uncommitted messages will be read again on the next start.
    #[error("stopped before pending batches were delivered; they will be read again on the next start")]
    Interrupted,
    /// Exactly-once delivery is impossible with this server and table, as configured.
    #[error("cannot start: {0}")]
    ExactlyOnceUnavailable(String),
    /// The schema uses a type the server does not have.
    #[error("cannot start: {0}")]
    TableUnsupported(String),
    /// The dead-letter table exists but its columns do not fit.
    #[error("cannot start: {0}")]
    DeadLetterTable(String),
    /// The exactly-once ledger could not be read or written; nothing more is inserted
    /// or committed, and the next start recovers from the ledger.
    #[error("{0}")]
    Recovery(String),
    /// A transform failed (a broken invariant or its state's I/O, not a bad row); the
    /// batch was not delivered and is read again on the next start.
    #[error("transform failed: {0}")]
    Stage(#[from] penstock_stages::StageError),
    /// A transform could not compute a row read from ClickHouse; that direction has no
    /// dead-letter destination, so the pipeline stops rather than skip the row.
    #[error("transform failed on {0}; nothing after it was published (fix the expression, e.g. with an OrNull conversion, and restart)")]
    RowRejected(String),
    /// The ClickHouse source cannot be read as configured (missing table, cursor
    /// column, failing query).
    #[error("cannot start: {0}")]
    Source(String),
    /// The Kafka sink cannot be used as configured (topic missing or not creatable, key
    /// columns missing, producer refused).
    #[error("cannot start: {0}")]
    Sink(String),
    /// Stage state cannot be opened (directory not writable, store broken, changelog
    /// topic not creatable).
    #[error("cannot start: {0}")]
    State(String),
    /// A pipeline thread panicked (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}
