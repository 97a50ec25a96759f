//! The sink task: takes sealed batches in order, inserts them into ClickHouse with
//! capped exponential backoff, and acknowledges them so their offsets get committed.
//!
//! One insert at a time keeps each partition's batches in offset order, so committing
//! "everything before the batch's end" is always right. While an insert is retried
//! the queue fills and the source pauses consumption: memory stays bounded.
//!
//! When ClickHouse rejects a batch because of the data in some rows (a value its
//! column cannot hold, a `throwIf` in a MATERIALIZED column...), the batch is split in
//! halves until the offending rows are isolated: they go to the dead-letter table
//! with the server's message, the rest is inserted. The split is deterministic, so a
//! replay after a crash sends the same sub-blocks (same tokens, same block hashes).

use crate::batch::SealedBatch;
use crate::dead_letter::{DeadLetter, DeadLetterTable};
use crate::error::PipelineError;
use crate::exactly_once::decision::{BatchState, LedgerEntry};
use crate::exactly_once::mode::{self, DedupMode};
use crate::failpoint;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::stop::Stop;
use penstock_clickhouse::{build_insert, ClickHouseClient, ClickHouseError, InsertRequest, RetryHint};
use penstock_codec::Block;
use penstock_config::ClickHouseSink;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Unknown server errors are retried this many times before being treated as permanent.
const LIMITED_RETRIES: u32 = 8;

/// What the sink task needs.
pub struct SinkTask {
    pub(crate) rx: mpsc::Receiver<SealedBatch>,
    pub(crate) pipeline: String,
    pub(crate) client: ClickHouseClient,
    pub(crate) config: ClickHouseSink,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) stop: Arc<Stop>,
    pub(crate) dead_letters: DeadLetterTable,
    /// The event-time column (index, and digits of its sub-second ticks; 0 for
    /// DateTime), for the freshness histogram.
    pub(crate) event_time: Option<(usize, u8)>,
    pub(crate) recycle: std::sync::mpsc::SyncSender<crate::batch::Buffers>,
}

/// How one retried ClickHouse request ended.
enum Attempt {
    /// Acknowledged.
    Done,
    /// The partition was revoked during retries: leave the batch to the next owner.
    Revoked,
    /// Refused because of the rows it carries (only where the caller allows it).
    Rejected(ClickHouseError),
}

impl SinkTask {
    /// Runs until the source closes the queue, an insert fails permanently, or a hard
    /// stop interrupts a retry.
    pub async fn run(mut self) -> Result<(), PipelineError> {
        let result = self.drain().await;
        self.shared.sink_stopped();
        if result.is_err() {
            self.stop.request(crate::stop::StopReason::Failure);
        }
        result
    }

    async fn drain(&mut self) -> Result<(), PipelineError> {
        while let Some(mut batch) = self.rx.recv().await {
            if !self.shared.is_current(&batch) {
                tracing::debug!(partition = ?batch.partition, "dropping a batch of a partition no longer owned");
                self.shared.abandon(&batch);
                continue;
            }
            match self.deliver(&mut batch).await {
                Ok(true) => {}
                Ok(false) => {
                    self.shared.abandon(&batch);
                    continue;
                }
                Err(e) => {
                    self.shared.abandon(&batch);
                    return Err(e);
                }
            }
            let accepted = self.shared.acknowledge(&batch);
            if accepted {
                self.observe_freshness(&batch);
            }
            tracing::debug!(
                partition = ?batch.partition, first = batch.first_offset, next = batch.next_offset,
                rows = batch.buffers.block.rows(), dead_letters = batch.buffers.dead.rows(), replay = batch.replay,
                accepted, "batch delivered"
            );
            let _ = self.recycle.try_send(batch.buffers);
        }
        Ok(())
    }

    /// Delivers one batch: with exactly-once, `pending` ledger entry → rows → dead
    /// letters → `done` entry; otherwise rows and dead letters. `Ok(false)` when the
    /// partition was revoked meanwhile (the batch is left to the next owner).
    async fn deliver(&self, batch: &mut SealedBatch) -> Result<bool, PipelineError> {
        let recovery = self.shared.recovery();
        let (first, next, time) = (batch.first_offset, batch.next_offset, batch.batch_time);
        let entry = |state, seq| LedgerEntry {
            first,
            next,
            state,
            batch_time_ns: time.secs * 1_000_000_000 + i64::from(time.nanos),
            seq,
        };
        let has_output = !batch.buffers.block.is_empty() || !batch.buffers.dead.is_empty();
        if let Some(r) = recovery {
            // A replayed batch's pending entry is already in the ledger, identical.
            if has_output && !batch.replay {
                failpoint::hit("before_ledger_pending");
                let pending = entry(BatchState::Pending, self.shared.next_seq(&batch.partition));
                let write = || r.ledger().write(&batch.partition, &pending);
                if !self.retrying(batch, "ledger write", &self.ledger_name(), false, write).await?.done() {
                    return Ok(false);
                }
                failpoint::hit("after_ledger_pending");
            }
        }
        if !batch.buffers.block.is_empty() {
            let Some(rejected) = self.insert_rows(batch).await? else { return Ok(false) };
            failpoint::hit("after_insert");
            self.dead_letter_rejected(batch, &rejected);
        }
        if !batch.buffers.dead.is_empty() && !self.insert_dead_letters(batch).await? {
            return Ok(false);
        }
        if let Some(r) = recovery {
            let done = entry(BatchState::Done, self.shared.next_seq(&batch.partition));
            let write = || r.ledger().write(&batch.partition, &done);
            if !self.retrying(batch, "ledger write", &self.ledger_name(), false, write).await?.done() {
                return Ok(false);
            }
            failpoint::hit("after_ledger_done");
        }
        Ok(true)
    }

    /// Inserts the batch's rows, isolating rows ClickHouse rejects by halving. Returns
    /// the rejected rows with the server's message, or `None` when revoked.
    async fn insert_rows(&self, batch: &SealedBatch) -> Result<Option<Vec<(usize, String)>>, PipelineError> {
        let cfg = &self.config;
        let block = &batch.buffers.block;
        let token = self.shared.recovery().filter(|r| *r.mode() == DedupMode::Token).map(|_| {
            mode::dedup_token(
                &self.pipeline,
                &batch.partition.topic,
                batch.partition.partition,
                batch.first_offset,
                batch.next_offset,
            )
        });
        let whole = 0..block.rows();
        let mut rejected = Vec::new();
        let mut todo = vec![whole.clone()];
        while let Some(range) = todo.pop() {
            let part;
            let rows: &Block = if range == whole {
                block
            } else {
                part = block.select(range.clone());
                &part
            };
            let mut req = build_insert(&cfg.database, &cfg.table, rows, cfg.format, cfg.compression);
            if let Some(t) = &token {
                let t = if range == whole { t.clone() } else { format!("{t}/rows/{}-{}", range.start, range.end) };
                req.settings.push(("insert_deduplication_token".into(), t));
            }
            let table = format!("{}.{}", cfg.database, cfg.table);
            let sent = std::time::Instant::now();
            match self.retrying(batch, "insert", &table, true, || self.client.insert(&req)).await? {
                Attempt::Done => {
                    self.stats.insert_seconds.observe(sent.elapsed().as_secs_f64());
                    self.stats.batch_rows.observe(req.rows as f64);
                    self.count_insert(&req);
                }
                Attempt::Revoked => return Ok(None),
                Attempt::Rejected(e) if range.len() == 1 => rejected.push((range.start, e.to_string())),
                Attempt::Rejected(e) => {
                    if range == whole {
                        tracing::warn!(
                            topic = %batch.partition.topic, partition = batch.partition.partition,
                            first = batch.first_offset, next = batch.next_offset, error = %e,
                            "ClickHouse rejected rows of a batch; isolating them for the dead-letter table"
                        );
                    }
                    let mid = range.start + range.len() / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
            }
        }
        Ok(Some(rejected))
    }

    /// Freshness of the batch's rows at acknowledgement: now minus each row's Kafka
    /// timestamp, and minus its event time when the pipeline names the column.
    fn observe_freshness(&self, batch: &SealedBatch) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let origins = &batch.buffers.origins;
        self.stats.freshness_kafka.observe_many(
            (0..origins.len()).filter_map(|i| origins.get(i).timestamp_ms).map(|ms| now - ms as f64 / 1000.0),
        );
        if let Some((index, precision)) = self.event_time {
            let col = &batch.buffers.block.columns()[index];
            let rows = batch.buffers.block.rows();
            self.stats.freshness_event.observe_many((0..rows).filter(|r| !col.is_null(*r)).map(|r| {
                let v = col.value_bytes(r);
                let secs = match v.len() {
                    4 => f64::from(u32::from_le_bytes(v.try_into().expect("4 bytes"))),
                    _ => i64::from_le_bytes(v.try_into().expect("8 bytes")) as f64 / 10f64.powi(i32::from(precision)),
                };
                now - secs
            }));
        }
    }

    fn ledger_name(&self) -> String {
        format!("{}.{}", self.config.database, self.config.ledger_table)
    }

    fn count_insert(&self, req: &InsertRequest) {
        Stats::add(&self.stats.bytes_sent, req.body.len() as u64);
        Stats::add(&self.stats.rows_inserted, req.rows as u64);
        Stats::add(&self.stats.batches, 1);
    }

    /// Adds the rows ClickHouse rejected to the batch's dead letters.
    fn dead_letter_rejected(&self, batch: &mut SealedBatch, rejected: &[(usize, String)]) {
        let buffers = &mut batch.buffers;
        for (row, message) in rejected {
            let o = buffers.origins.get(*row);
            let letter = DeadLetter {
                topic: &batch.partition.topic,
                partition: batch.partition.partition,
                offset: o.offset,
                timestamp_ms: o.timestamp_ms,
                key: o.key,
                raw: o.payload,
                kind: "rejected_by_clickhouse",
                message,
                at: batch.batch_time,
            };
            self.dead_letters.push(&mut buffers.dead, &letter);
        }
    }

    /// Inserts the batch's dead letters — on a replay only those not already in the
    /// table. `Ok(false)` when revoked.
    async fn insert_dead_letters(&self, batch: &SealedBatch) -> Result<bool, PipelineError> {
        let cfg = &self.config;
        let dl = &self.dead_letters;
        let rest =
            if batch.replay { DeadLetterTable::without_landed(&batch.buffers.dead, &batch.dead_landed) } else { None };
        let block = rest.as_ref().unwrap_or(&batch.buffers.dead);
        if block.is_empty() {
            return Ok(true);
        }
        let req = build_insert(&dl.database, &dl.table, block, cfg.format, cfg.compression);
        let table = format!("{}.{}", dl.database, dl.table);
        if !self.retrying(batch, "dead-letter insert", &table, false, || self.client.insert(&req)).await?.done() {
            return Ok(false);
        }
        Stats::add(&self.stats.dead_lettered, block.rows() as u64);
        let mut kinds: std::collections::BTreeMap<&[u8], u64> = Default::default();
        let kind_column = &block.columns()[7];
        for r in 0..block.rows() {
            *kinds.entry(kind_column.value_bytes(r).get(1..).unwrap_or_default()).or_default() += 1;
        }
        for (kind, n) in kinds {
            self.stats.add_errors(&String::from_utf8_lossy(kind), n);
        }
        failpoint::hit("after_dead_letters");
        Ok(true)
    }

    /// Runs `op` until it succeeds, retrying passing failures with capped exponential
    /// backoff. With `may_reject`, an error caused by the rows sent is returned as
    /// [`Attempt::Rejected`] instead of failing the pipeline.
    async fn retrying<F, Fut>(
        &self,
        batch: &SealedBatch,
        what: &str,
        table: &str, // `database.table`, for the error
        may_reject: bool,
        op: F,
    ) -> Result<Attempt, PipelineError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), ClickHouseError>>,
    {
        let cfg = &self.config;
        let mut attempt = 0u32;
        loop {
            match op().await {
                Ok(()) => {
                    if attempt > 0 {
                        tracing::info!(attempts = attempt + 1, "{what} succeeded after retries");
                    }
                    return Ok(Attempt::Done);
                }
                Err(e) if may_reject && e.is_about_rows() => return Ok(Attempt::Rejected(e)),
                Err(e) => {
                    let hint = e.retry_hint();
                    if hint == RetryHint::Permanent || (hint == RetryHint::RetryLimited && attempt >= LIMITED_RETRIES) {
                        return Err(PipelineError::InsertFailed {
                            table: table.to_string(),
                            topic: batch.partition.topic.clone(),
                            partition: batch.partition.partition,
                            first_offset: batch.first_offset,
                            next_offset: batch.next_offset,
                            source: e,
                        });
                    }
                    let wait = cfg.retry.backoff(attempt);
                    attempt += 1;
                    Stats::add(&self.stats.retries, 1);
                    self.stats.add_errors("insert_retry", 1);
                    tracing::warn!(error = %e, attempt, retry_in = ?wait, "{what} failed; retrying (consumption is paused meanwhile)");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.hard_stopped() => return Err(PipelineError::Interrupted),
                    }
                    if !self.shared.is_current(batch) {
                        tracing::info!(partition = ?batch.partition, "partition was revoked during retries; dropping the batch");
                        return Ok(Attempt::Revoked);
                    }
                }
            }
        }
    }
}

impl Attempt {
    /// True when acknowledged (`Rejected` cannot happen where this is used).
    fn done(&self) -> bool {
        matches!(self, Attempt::Done)
    }
}
