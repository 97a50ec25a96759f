//! A batch's dead letters: rows ClickHouse rejected join the undecodable messages, and
//! all go to the dead-letter table — on a replay only those not already there.

use super::SinkTask;
use crate::batch::SealedBatch;
use crate::dead_letter::DeadLetterTable;
use crate::error::PipelineError;
use crate::failpoint;
use crate::stats::Stats;
use penstock_clickhouse::build_insert;

impl SinkTask {
    /// Adds the rows ClickHouse rejected to the batch's dead letters.
    pub(super) fn dead_letter_rejected(&self, batch: &mut SealedBatch, rejected: &[(usize, String)]) {
        self.dead_letters.push_rows(batch, rejected, "rejected_by_clickhouse");
    }

    /// Inserts the batch's dead letters — on a replay only those not already in the
    /// table. `Ok(false)` when revoked.
    pub(super) async fn insert_dead_letters(&self, batch: &SealedBatch) -> Result<bool, PipelineError> {
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
}
