//! The sink task: takes sealed batches in order, inserts them into ClickHouse with
//! capped exponential backoff, and acknowledges them so their offsets get committed.
//!
//! One insert at a time keeps each partition's batches in offset order, so committing
//! "everything before the batch's end" is always right. While an insert is retried
//! the queue fills and the source pauses consumption: memory stays bounded.

use crate::batch::SealedBatch;
use crate::error::PipelineError;
use crate::exactly_once::decision::{BatchState, LedgerEntry};
use crate::exactly_once::mode::{self, DedupMode};
use crate::failpoint;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::stop::Stop;
use penstock_clickhouse::{build_insert, ClickHouseClient, ClickHouseError, RetryHint};
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
    pub(crate) recycle: std::sync::mpsc::SyncSender<penstock_codec::Block>,
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
        while let Some(batch) = self.rx.recv().await {
            if !self.shared.is_current(&batch) {
                tracing::debug!(partition = ?batch.partition, "dropping a batch of a partition no longer owned");
                self.shared.abandon(&batch);
                continue;
            }
            match self.deliver(&batch).await {
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
            tracing::debug!(
                partition = ?batch.partition, first = batch.first_offset, next = batch.next_offset,
                rows = batch.block.rows(), skipped = batch.skipped, replay = batch.replay, accepted, "batch delivered"
            );
            let _ = self.recycle.try_send(batch.block);
        }
        Ok(())
    }

    /// Delivers one batch: with exactly-once, `pending` ledger entry → insert → `done`
    /// entry; otherwise just the insert. `Ok(false)` when the partition was revoked
    /// meanwhile (the batch is left to the next owner).
    async fn deliver(&self, batch: &SealedBatch) -> Result<bool, PipelineError> {
        let recovery = self.shared.recovery();
        let entry = |state| LedgerEntry {
            first: batch.first_offset,
            next: batch.next_offset,
            state,
            batch_time_ns: batch.batch_time.secs * 1_000_000_000 + i64::from(batch.batch_time.nanos),
            seq: self.shared.next_seq(&batch.partition),
        };
        if let Some(r) = recovery {
            // A replayed batch's pending entry is already in the ledger, identical.
            if !batch.block.is_empty() && !batch.replay {
                failpoint::hit("before_ledger_pending");
                let pending = entry(BatchState::Pending);
                if !self.retrying(batch, "ledger write", || r.ledger().write(&batch.partition, &pending)).await? {
                    return Ok(false);
                }
                failpoint::hit("after_ledger_pending");
            }
        }
        if !batch.block.is_empty() {
            let cfg = &self.config;
            let mut req = build_insert(&cfg.database, &cfg.table, &batch.block, cfg.format, cfg.compression);
            if recovery.is_some_and(|r| *r.mode() == DedupMode::Token) {
                let token = mode::dedup_token(
                    &self.pipeline,
                    &batch.partition.topic,
                    batch.partition.partition,
                    batch.first_offset,
                    batch.next_offset,
                );
                req.settings.push(("insert_deduplication_token".into(), token));
            }
            if !self.retrying(batch, "insert", || self.client.insert(&req)).await? {
                return Ok(false);
            }
            Stats::add(&self.stats.bytes_sent, req.body.len() as u64);
            Stats::add(&self.stats.rows_inserted, batch.block.rows() as u64);
            Stats::add(&self.stats.batches, 1);
            failpoint::hit("after_insert");
        }
        if let Some(r) = recovery {
            let done = entry(BatchState::Done);
            if !self.retrying(batch, "ledger write", || r.ledger().write(&batch.partition, &done)).await? {
                return Ok(false);
            }
            failpoint::hit("after_ledger_done");
        }
        Ok(true)
    }

    /// Runs `op` until it succeeds, retrying passing failures with capped exponential
    /// backoff. `Ok(false)` when the partition was revoked during retries.
    async fn retrying<F, Fut>(&self, batch: &SealedBatch, what: &str, op: F) -> Result<bool, PipelineError>
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
                    return Ok(true);
                }
                Err(e) => {
                    let hint = e.retry_hint();
                    if hint == RetryHint::Permanent || (hint == RetryHint::RetryLimited && attempt >= LIMITED_RETRIES) {
                        return Err(PipelineError::InsertFailed {
                            table: format!("{}.{}", cfg.database, cfg.table),
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
                    tracing::warn!(error = %e, attempt, retry_in = ?wait, "{what} failed; retrying (consumption is paused meanwhile)");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.hard_stopped() => return Err(PipelineError::Interrupted),
                    }
                    if !self.shared.is_current(batch) {
                        tracing::info!(partition = ?batch.partition, "partition was revoked during retries; dropping the batch");
                        return Ok(false);
                    }
                }
            }
        }
    }
}
