//! The sink task: takes sealed batches in order, inserts them into ClickHouse with
//! capped exponential backoff (the [`crate::retry`] policy), and acknowledges them so
//! their offsets get committed.
//!
//! - this file: the task loop and the delivery protocol of one batch (ledger entry,
//!   rows, dead letters, ledger entry), and the retry loop every request goes through;
//! - [`isolate`]: inserting the rows, halving a rejected batch to find the bad rows;
//! - [`dead_letters`]: rejected rows turned into dead letters, and their insert.
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

mod dead_letters;
mod isolate;

use crate::batch::SealedBatch;
use crate::dead_letter::DeadLetterTable;
use crate::error::PipelineError;
use crate::exactly_once::decision::{BatchState, LedgerEntry};
use crate::failpoint;
use crate::retry::{Next, RetryPolicy};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::stop::Stop;
use penstock_clickhouse::{ClickHouseClient, ClickHouseError, InsertRequest};
use penstock_config::ClickHouseSink;
use std::sync::Arc;
use tokio::sync::mpsc;

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
pub(crate) enum Attempt {
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
                tracing::debug!(ranges = %batch.ranges, "dropping a batch of a partition no longer owned");
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
                ranges = %batch.ranges,
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
        // The ledger records one range per partition (see `batch`).
        let Some(range) = batch.ranges.single() else {
            return Err(PipelineError::Recovery(format!(
                "a batch over several source ranges ({}) reached the ClickHouse sink, whose ledger records one",
                batch.ranges
            )));
        };
        let (partition, first, next, time) =
            (range.partition.clone(), range.first_offset, range.next_offset, batch.batch_time);
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
                let pending = entry(BatchState::Pending, self.shared.next_seq(&partition));
                let write = || r.ledger().write(&partition, &pending);
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
            let done = entry(BatchState::Done, self.shared.next_seq(&partition));
            let write = || r.ledger().write(&partition, &done);
            if !self.retrying(batch, "ledger write", &self.ledger_name(), false, write).await?.done() {
                return Ok(false);
            }
            failpoint::hit("after_ledger_done");
        }
        Ok(true)
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

    pub(crate) fn count_insert(&self, req: &InsertRequest) {
        Stats::add(&self.stats.bytes_sent, req.body.len() as u64);
        Stats::add(&self.stats.rows_inserted, req.rows as u64);
        Stats::add(&self.stats.batches, 1);
    }

    /// Runs `op` until it succeeds, retrying passing failures with capped exponential
    /// backoff. With `may_reject`, an error caused by the rows sent is returned as
    /// [`Attempt::Rejected`] instead of failing the pipeline.
    pub(crate) async fn retrying<F, Fut>(
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
        let policy = RetryPolicy::new(self.config.retry);
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
                    let Next::Retry(wait) = policy.after(attempt, e.retry_hint()) else {
                        return Err(PipelineError::InsertFailed {
                            table: table.to_string(),
                            ranges: batch.ranges.to_string(),
                            source: e,
                        });
                    };
                    attempt += 1;
                    Stats::add(&self.stats.retries, 1);
                    self.stats.add_errors("insert_retry", 1);
                    tracing::warn!(error = %e, attempt, retry_in = ?wait, "{what} failed; retrying (consumption is paused meanwhile)");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.hard_stopped() => return Err(PipelineError::Interrupted),
                    }
                    if !self.shared.is_current(batch) {
                        tracing::info!(ranges = %batch.ranges, "partition was revoked during retries; dropping the batch");
                        return Ok(Attempt::Revoked);
                    }
                }
            }
        }
    }
}

impl Attempt {
    /// True when acknowledged (`Rejected` cannot happen where this is used).
    pub(crate) fn done(&self) -> bool {
        matches!(self, Attempt::Done)
    }
}
