//! Where the stages run on each path, and how the rows they drop leave the batch.
//!
//! Kafka → ClickHouse: over each batch as it is sealed, on the source thread (so a
//! partition's batches pass the stages in offset order), before it is queued for the
//! sink; dropped rows leave the block, their origins and their range's row count
//! together. Kafka → Kafka and ClickHouse → Kafka: over each decoded block before its
//! rows are encoded; a dropped row is simply not sent (positions keep the original row
//! numbers, so recovery's arithmetic is unchanged).

use crate::batch::SealedBatch;
use crate::dead_letter::DeadLetterTable;
use crate::origins::RowOrigins;
use penstock_stages::{RowPositions, StageError, Stages, StreamRows};

impl RowPositions for RowOrigins {
    #[inline]
    fn position(&self, row: usize) -> (i64, Option<i64>) {
        let o = self.get(row);
        (o.offset, o.timestamp_ms)
    }
}

/// What the stages dropped from a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// By filters.
    pub(crate) filtered: u64,
    /// As duplicates.
    pub(crate) deduplicated: u64,
}

/// Runs the stages over a sealed batch, dead-letters the rows they could not compute
/// (kind `transform_failed`, with the message they came from) and removes every row
/// they dropped. Returns how many rows they dropped.
pub(crate) fn run_stages(
    stages: &mut Stages,
    dead_letters: &DeadLetterTable,
    batch: &mut SealedBatch,
) -> Result<Dropped, StageError> {
    if stages.is_empty() {
        return Ok(Dropped::default());
    }
    let streams: Vec<StreamRows<'_>> = batch
        .ranges
        .iter()
        .map(|r| StreamRows {
            topic: &r.partition.topic,
            partition: r.partition.partition,
            rows: r.rows,
            next_offset: r.next_offset,
        })
        .collect();
    let outcome = stages.run(&mut batch.buffers.block, batch.batch_time, &streams, &batch.buffers.origins)?;
    dead_letters.push_rows(batch, outcome.rejected, "transform_failed");
    if let Some(keep) = outcome.keep {
        batch.buffers.block.retain_rows(keep);
        batch.buffers.origins.retain_rows(keep);
        batch.ranges.recount(keep);
    }
    Ok(Dropped { filtered: outcome.dropped - outcome.deduplicated, deduplicated: outcome.deduplicated })
}

/// A replayed batch: removes the rows that already landed (they passed the stages
/// with the others, so stage state saw them, but are in the table). Returns how many.
pub(crate) fn drop_landed(batch: &mut SealedBatch) -> usize {
    if batch.landed.is_empty() {
        return 0;
    }
    let origins = &batch.buffers.origins;
    let keep: Vec<bool> =
        (0..origins.len()).map(|r| batch.landed.binary_search(&origins.get(r).offset).is_err()).collect();
    let dropped = keep.iter().filter(|k| !**k).count();
    if dropped > 0 {
        batch.buffers.block.retain_rows(&keep);
        batch.buffers.origins.retain_rows(&keep);
        batch.ranges.recount(&keep);
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchRanges, Buffers, SourceRange};
    use crate::dead_letter::KafkaTimestamp;
    use crate::origins::RowOrigins;
    use penstock_codec::{Block, Column, ColumnType, Timestamp};
    use penstock_kafka::Partition;
    use penstock_stages::{Stage, StageBatch};

    /// Test stage: keeps rows whose `n` is even; rejects 9.
    struct Even;
    impl Stage for Even {
        fn kind(&self) -> &'static str {
            "even"
        }
        fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
            let col = &b.block.columns()[0];
            for (r, k) in b.keep.iter_mut().enumerate() {
                let v = col.value_bytes(r)[0];
                if v == 9 {
                    b.rejected.push((r, "nine".into()));
                }
                *k &= v.is_multiple_of(2);
            }
            Ok(())
        }
    }

    fn table() -> DeadLetterTable {
        DeadLetterTable {
            database: "d".into(),
            table: "dl".into(),
            pipeline: "p".into(),
            kafka_timestamp: KafkaTimestamp::Millis,
        }
    }

    fn batch(values: &[u8]) -> SealedBatch {
        let mut block = Block::new(vec![Column::new("n", ColumnType::UInt8)]);
        let mut origins = RowOrigins::default();
        for (i, v) in values.iter().enumerate() {
            block.columns_mut()[0].push_fixed(&[*v]);
            block.commit_row();
            origins.push(1, 100 + i as i64, None, None, &[*v]);
        }
        let range = SourceRange {
            partition: Partition { topic: "t".into(), partition: 3 },
            epoch: 1,
            first_offset: 100,
            next_offset: 100 + values.len() as i64,
            rows: values.len(),
        };
        SealedBatch {
            ranges: BatchRanges::one(range),
            buffers: Buffers { block, origins, dead: table().new_block() },
            messages: values.len() as u64,
            undecodable: 0,
            payload_bytes: values.len() as u64,
            opened_at: std::time::Instant::now(),
            batch_time: Timestamp { secs: 0, nanos: 0 },
            replay: false,
            already_landed: 0,
            dead_landed: Vec::new(),
            landed: Vec::new(),
            catch_up: false,
        }
    }

    #[test]
    fn dropped_rows_leave_the_block_their_origins_and_their_range_count_but_not_the_range() {
        let mut stages = Stages::new(vec![Box::new(Even)]);
        let mut b = batch(&[1, 2, 3, 4, 9]);
        run_stages(&mut stages, &table(), &mut b).unwrap();
        assert_eq!(b.buffers.block.rows(), 2);
        assert_eq!(b.buffers.block.columns()[0].data(), &[2, 4]);
        let offsets: Vec<i64> = (0..b.buffers.origins.len()).map(|r| b.buffers.origins.get(r).offset).collect();
        assert_eq!(offsets, vec![101, 103], "each row keeps its own message");
        let r = b.ranges.single().unwrap();
        assert_eq!((r.first_offset, r.next_offset, r.rows), (100, 105, 2), "the range still covers every message");
        assert_eq!(stages.dropped(), &[2], "the rejected row is not counted as filtered");
        assert_eq!(b.buffers.dead.rows(), 1, "the row that could not be computed is a dead letter");
    }

    #[test]
    fn rows_that_already_landed_leave_a_replayed_batch_after_the_stages() {
        let mut b = batch(&[2, 4, 6, 8]);
        b.landed = vec![100, 102];
        assert_eq!(drop_landed(&mut b), 2);
        let offsets: Vec<i64> = (0..b.buffers.origins.len()).map(|r| b.buffers.origins.get(r).offset).collect();
        assert_eq!(offsets, vec![101, 103]);
        assert_eq!(b.buffers.block.columns()[0].data(), &[4, 8]);
        assert_eq!(b.ranges.single().unwrap().rows, 2);
    }

    #[test]
    fn without_stages_a_batch_is_untouched() {
        let mut b = batch(&[1, 2]);
        run_stages(&mut Stages::none(), &table(), &mut b).unwrap();
        assert_eq!((b.buffers.block.rows(), b.buffers.origins.len(), b.buffers.dead.rows()), (2, 2, 0));
    }
}
