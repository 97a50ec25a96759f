//! Inserting a batch's rows. When ClickHouse rejects a batch because of the data in some
//! rows, the batch is split in halves until the offending rows are isolated; the rest is
//! inserted. The split is deterministic, so a replay after a crash sends the same
//! sub-blocks (same tokens, same block hashes).

use super::{Attempt, SinkTask};
use crate::batch::SealedBatch;
use crate::error::PipelineError;
use crate::exactly_once::mode::{self, DedupMode};
use penstock_clickhouse::build_insert;
use penstock_codec::Block;

impl SinkTask {
    /// Inserts the batch's rows, isolating rows ClickHouse rejects by halving. Returns
    /// the rejected rows with the server's message, or `None` when revoked.
    pub(super) async fn insert_rows(&self, batch: &SealedBatch) -> Result<Option<Vec<(usize, String)>>, PipelineError> {
        let cfg = &self.config;
        let block = &batch.buffers.block;
        // `deliver` let only single-range batches through: the token is the range's.
        let source = batch.ranges.lead();
        let token = self.shared.recovery().filter(|r| *r.mode() == DedupMode::Token).map(|_| {
            mode::dedup_token(
                &self.pipeline,
                &source.partition.topic,
                source.partition.partition,
                source.first_offset,
                source.next_offset,
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
                            ranges = %batch.ranges, error = %e,
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
}
