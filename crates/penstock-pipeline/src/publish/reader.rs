//! Reading a ClickHouse source: the relation's columns, the next settled batch after a
//! position, the source's end, and the late-row detector.
//!
//! The late-row detector remembers the span this process has read contiguously —
//! `(first, upto]` with the number of rows read in it, at each batch — and, every
//! `late_check`, counts the part of the span that was read at least `late_check` ago
//! again. More rows than were read means rows were committed behind the cursor after
//! it passed — later than `settle` allowed: they are counted (`late_rows`, each once)
//! and reported with the advice to raise `settle`. A read that does not continue the
//! span (after a recovery) starts a new one.

use crate::error::PipelineError;
use crate::publish::stats::PublishStats;
use penstock_clickhouse::table_check::unescape_tsv;
use penstock_clickhouse::{ClickHouseClient, ClickHouseError, Cursor, RetryHint};
use penstock_codec::{decode_native, Block, ColumnType};
use penstock_config::ClickHouseSource;
use penstock_protocol::Position;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Batch marks remembered for the late-row detector (older ones are dropped; the span
/// start stays, so the count still covers them).
const LATE_MARKS: usize = 1024;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The server failed or could not be reached.
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    /// The rows came back in a shape the cursor cannot use (the source changed under
    /// the pipeline): retrying cannot help.
    #[error("the source's rows do not fit the cursor: {0}")]
    Rows(String),
}

impl ReadError {
    /// Whether and how to retry.
    pub fn retry_hint(&self) -> RetryHint {
        match self {
            ReadError::ClickHouse(e) => e.retry_hint(),
            ReadError::Rows(_) => RetryHint::Permanent,
        }
    }
}

/// A batch read from the source.
pub struct SourceBatch {
    /// The rows, every column of the relation.
    pub block: Block,
    /// Each row's position.
    pub positions: Vec<Position>,
}

/// The span read contiguously, for the late-row detector.
#[derive(Default)]
struct Span {
    /// Where it starts (exclusive; `None`: the beginning).
    first: Option<Position>,
    /// Per batch: its last position, rows read in the span up to it, when.
    marks: VecDeque<(Position, u64, Instant)>,
    /// Rows read in the span.
    rows: u64,
    /// Late rows already reported in the span.
    reported: u64,
}

/// The ClickHouse end of a publication.
pub struct Reader {
    client: ClickHouseClient,
    source: ClickHouseSource,
    cursor: Cursor,
    columns: Vec<(String, ColumnType)>,
    span: Span,
    next_late_check: Instant,
    stats: Arc<PublishStats>,
}

impl Reader {
    /// Connects, reads the relation's columns and builds the cursor (refusing missing or
    /// unorderable cursor columns).
    pub async fn open(source: &ClickHouseSource, stats: Arc<PublishStats>) -> Result<Reader, PipelineError> {
        let client = ClickHouseClient::for_source(source);
        client.ping().await.map_err(PipelineError::ClickHouseUnavailable)?;
        let columns = relation_columns(&client, source).await?;
        if source.block {
            let table = Cursor::from_sql(source);
            let create = client
                .query_with(&format!("SHOW CREATE TABLE {table} FORMAT TabSeparated"), &[])
                .await
                .map_err(|e| PipelineError::Source(format!("cannot read the definition of {table}: {e}")))?;
            penstock_clickhouse::cursor::check_block_table(&table, &create).map_err(PipelineError::Source)?;
        }
        let cursor = Cursor::new(source, &columns).map_err(|e| PipelineError::Source(e.to_string()))?;
        Ok(Reader {
            client,
            source: source.clone(),
            cursor,
            columns,
            span: Span::default(),
            next_late_check: Instant::now() + source.late_check.unwrap_or(Duration::from_secs(3600)),
            stats,
        })
    }

    /// URL settings of every source query: unqualified names in a `query` resolve in
    /// the source's database.
    fn settings(&self) -> [(&str, &str); 1] {
        [("database", self.source.database.as_str())]
    }

    /// The cursor.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// The relation's columns (name, type), as published.
    pub fn columns(&self) -> &[(String, ColumnType)] {
        &self.columns
    }

    /// The next settled rows after `after` (from the start when `None`), at most
    /// `batch_rows`; `None` when there are none yet.
    pub async fn next_batch(&mut self, after: Option<&Position>) -> Result<Option<SourceBatch>, ReadError> {
        let sql = self.cursor.next_batch_sql(&self.source, after, self.source.batch_rows);
        let bytes = self.client.query_bytes(&sql, &self.settings()).await?;
        let block = match decode_native(&bytes) {
            Ok(Some(b)) if b.rows() > 0 => b,
            Ok(_) => return Ok(None),
            Err(e) => return Err(ReadError::Rows(e.to_string())),
        };
        let indexes = self.cursor.indexes_in(&block).map_err(|e| bad_rows(e.to_string()))?;
        let mut positions = Vec::with_capacity(block.rows());
        for row in 0..block.rows() {
            positions.push(self.cursor.position_of(&block, &indexes, row).map_err(|e| bad_rows(e.to_string()))?);
        }
        if self.source.late_check.is_some() {
            let continues = self.span.marks.back().map(|(p, ..)| Some(p)) == Some(after);
            if !continues {
                self.span = Span { first: after.cloned(), ..Span::default() };
            }
            self.span.rows += block.rows() as u64;
            if self.span.marks.len() == LATE_MARKS {
                self.span.marks.pop_front();
            }
            let upto = positions.last().cloned().expect("a batch has rows");
            self.span.marks.push_back((upto, self.span.rows, Instant::now()));
        }
        PublishStats::add(&self.stats.rows_read, block.rows() as u64);
        Ok(Some(SourceBatch { block, positions }))
    }

    /// The newest settled row's position (`None`: the source is empty).
    pub async fn end(&self) -> Result<Option<Position>, ReadError> {
        let bytes = self.client.query_bytes(&self.cursor.end_sql(&self.source), &self.settings()).await?;
        let Some(block) = decode_native(&bytes).map_err(|e| bad_rows(e.to_string()))? else { return Ok(None) };
        if block.rows() == 0 {
            return Ok(None);
        }
        let indexes = self.cursor.indexes_in(&block).map_err(|e| bad_rows(e.to_string()))?;
        self.cursor.position_of(&block, &indexes, 0).map(Some).map_err(|e| bad_rows(e.to_string()))
    }

    /// Rows in `(after, end]` (the lag in rows).
    pub async fn count_between(&self, after: Option<&Position>, end: &Position) -> Result<u64, ClickHouseError> {
        let text =
            self.client.query_with(&self.cursor.count_range_sql(&self.source, after, end), &self.settings()).await?;
        Ok(text.trim().parse().unwrap_or(0))
    }

    /// Runs the late-row detector when it is due.
    pub async fn check_late_rows(&mut self) {
        let Some(period) = self.source.late_check else { return };
        let now = Instant::now();
        if now < self.next_late_check {
            return;
        }
        self.next_late_check = now + period;
        let Some((upto, rows, _)) = self.span.marks.iter().rev().find(|(_, _, at)| now.duration_since(*at) >= period)
        else {
            return;
        };
        let (upto, rows) = (upto.clone(), *rows);
        match self.count_between(self.span.first.as_ref(), &upto).await {
            Ok(n) if n > rows + self.span.reported => {
                let late = n - rows - self.span.reported;
                self.span.reported += late;
                PublishStats::add(&self.stats.late_rows, late);
                tracing::warn!(
                    late,
                    after = %self.span.first.as_ref().map_or_else(|| "the beginning".into(), Position::to_header),
                    upto = %upto,
                    settle = ?self.source.settle,
                    "rows appeared behind the cursor after it passed them (committed later than `settle` allows): \
                     they were not published; raise `settle`"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "late-row check skipped"),
        }
    }
}

fn bad_rows(message: String) -> ReadError {
    ReadError::Rows(message)
}

/// The relation's columns as the server describes them (tables and queries alike).
async fn relation_columns(
    client: &ClickHouseClient,
    source: &ClickHouseSource,
) -> Result<Vec<(String, ColumnType)>, PipelineError> {
    let sql = format!("DESCRIBE TABLE {} FORMAT TSV", Cursor::from_sql(source));
    let text = client
        .query_with(&sql, &[("database", source.database.as_str())])
        .await
        .map_err(|e| PipelineError::Source(format!("cannot read the source {}: {e}", Cursor::from_sql(source))))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut parts = line.split('\t');
        let (Some(name), Some(ty)) = (parts.next(), parts.next()) else { continue };
        let (name, ty) = (unescape_tsv(name), unescape_tsv(ty));
        let ty = ColumnType::parse(&ty).map_err(|e| {
            PipelineError::Source(format!("source column `{name}`: {e} (select it converted, with `query`)"))
        })?;
        out.push((name, ty));
    }
    if out.is_empty() {
        return Err(PipelineError::Source(format!("the source {} has no columns", Cursor::from_sql(source))));
    }
    Ok(out)
}
