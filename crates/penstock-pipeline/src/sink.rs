//! The sink task: takes sealed batches in order, inserts them into ClickHouse with
//! capped exponential backoff, and acknowledges them so their offsets get committed.
//!
//! One insert at a time keeps each partition's batches in offset order, so committing
//! "everything before the batch's end" is always right. While an insert is retried
//! the queue fills and the source pauses consumption: memory stays bounded.

use crate::batch::SealedBatch;
use crate::error::PipelineError;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::stop::Stop;
use penstock_clickhouse::{build_insert, ClickHouseClient, RetryHint};
use penstock_config::ClickHouseSink;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Unknown server errors are retried this many times before being treated as permanent.
const LIMITED_RETRIES: u32 = 8;

/// What the sink task needs.
pub struct SinkTask {
    pub(crate) rx: mpsc::Receiver<SealedBatch>,
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
            if !batch.block.is_empty() {
                match self.insert(&batch).await {
                    Ok(true) => {
                        Stats::add(&self.stats.rows_inserted, batch.block.rows() as u64);
                        Stats::add(&self.stats.batches, 1);
                    }
                    Ok(false) => {
                        self.shared.abandon(&batch);
                        continue;
                    }
                    Err(e) => {
                        self.shared.abandon(&batch);
                        return Err(e);
                    }
                }
            }
            let accepted = self.shared.acknowledge(&batch);
            tracing::debug!(
                partition = ?batch.partition, first = batch.first_offset, next = batch.next_offset,
                rows = batch.block.rows(), skipped = batch.skipped, accepted, "batch delivered"
            );
            let _ = self.recycle.try_send(batch.block);
        }
        Ok(())
    }

    /// Inserts a batch; `Ok(false)` when the partition was revoked during retries.
    async fn insert(&self, batch: &SealedBatch) -> Result<bool, PipelineError> {
        let cfg = &self.config;
        let req = build_insert(&cfg.database, &cfg.table, &batch.block, cfg.format, cfg.compression);
        let mut attempt = 0u32;
        loop {
            match self.client.insert(&req).await {
                Ok(()) => {
                    Stats::add(&self.stats.bytes_sent, req.body.len() as u64);
                    if attempt > 0 {
                        tracing::info!(attempts = attempt + 1, "insert succeeded after retries");
                    }
                    return Ok(true);
                }
                Err(e) => {
                    let hint = e.retry_hint();
                    let give_up =
                        hint == RetryHint::Permanent || (hint == RetryHint::RetryLimited && attempt >= LIMITED_RETRIES);
                    if give_up {
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
                    tracing::warn!(error = %e, attempt, retry_in = ?wait, "insert failed; retrying (consumption is paused meanwhile)");
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
