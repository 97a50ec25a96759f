//! Stages: what runs between decode and sink, over blocks of columns.
//!
//! ```text
//! source ──► decode ──► stages ──► sink
//!            (Block)    (Block, fewer rows, computed columns filled)
//! ```
//!
//! A stage is pure over a batch: `(state, batch) → (state', batch')`. It sees the
//! batch's columns and the flags of the rows still in it, may clear flags (a filter, a
//! dedup) and may rewrite a column's values in place (a computed column), never the
//! block's shape — so the buffers a source decodes into are reused batch after batch.
//! Time inside a stage is the batch's recorded time or a column, never the wall clock,
//! so a batch rebuilt from its source ranges after a crash gives the same rows.
//!
//! The pipeline drops the rows whose flags were cleared (and everything it keeps in
//! step with them: row origins, positions) after the last stage; see [`Stages::run`].

pub mod compute;
pub mod dedup;
pub mod expr;
pub mod filter;

pub use compute::Compute;
pub use dedup::{Dedup, DedupSpec};
pub use filter::Filter;

use penstock_codec::{Block, Timestamp};

/// The rows of a batch that came from one source stream (a Kafka partition; the
/// ClickHouse source is one stream), in the batch's row order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRows<'a> {
    /// Source topic (or table, for the ClickHouse source).
    pub topic: &'a str,
    /// Source partition (0 for the ClickHouse source).
    pub partition: i32,
    /// Rows of the batch from this stream.
    pub rows: usize,
    /// One past the stream's last offset in the batch (what its delivery acknowledges).
    pub next_offset: i64,
}

/// Where each row of a batch came from: its message's offset and Kafka timestamp (ms).
pub trait RowPositions {
    /// Row `row`'s source offset and Kafka timestamp.
    fn position(&self, row: usize) -> (i64, Option<i64>);
}

/// Positions for sources without offsets (the ClickHouse source): the row number,
/// no timestamp. Stateful stages are refused on those paths when the file is loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowNumbers;

impl RowPositions for RowNumbers {
    fn position(&self, row: usize) -> (i64, Option<i64>) {
        (row as i64, None)
    }
}

/// Positions of a block decoded from one message: every row has its offset and
/// timestamp.
#[derive(Debug, Clone, Copy)]
pub struct OneMessage {
    /// The message's offset.
    pub offset: i64,
    /// Its Kafka timestamp (ms).
    pub timestamp_ms: Option<i64>,
}

impl RowPositions for OneMessage {
    fn position(&self, _row: usize) -> (i64, Option<i64>) {
        (self.offset, self.timestamp_ms)
    }
}

/// One source partition's stage state, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Keys written down.
    pub keys: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Entries decided but not written down yet (their batches undelivered).
    pub unwritten: u64,
    /// The offset the written-down state covers.
    pub covers: Option<i64>,
}

/// One batch as a stage sees it.
pub struct StageBatch<'a> {
    /// The batch's columns. A stage may rewrite one column's values (same row count);
    /// it never adds or removes columns.
    pub block: &'a mut Block,
    /// One flag per row: still in the batch. A stage drops a row by clearing its flag;
    /// later stages see the flags earlier ones left.
    pub keep: &'a mut [bool],
    /// The batch's `now`, recorded with the batch (replays see the same).
    pub batch_time: Timestamp,
    /// Which rows came from which stream, in order (per-partition state keys on this).
    pub streams: &'a [StreamRows<'a>],
    /// Each row's source offset and Kafka timestamp.
    pub positions: &'a dyn RowPositions,
    /// Rows the stage could not compute (a bad cast, a division by zero), with why: the
    /// stage clears their flags too, and the pipeline dead-letters them.
    pub rejected: &'a mut Vec<(usize, String)>,
}

/// A stage failed: not a bad row (those are the stage's to handle: NULL, default, or a
/// dropped row), but a broken invariant or its state's I/O. The pipeline stops.
#[derive(Debug, thiserror::Error)]
#[error("stage {index} ({kind}): {message}")]
pub struct StageError {
    /// Position in `transforms:` (0-based).
    pub index: usize,
    /// The stage's kind (`filter`, `dedup`, ...).
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

/// One operator between decode and sink.
pub trait Stage: Send {
    /// Its kind, as written in `transforms:` (`filter`, `dedup`, ...).
    fn kind(&self) -> &'static str;

    /// Processes one batch; an `Err` is a message for [`StageError`].
    fn apply(&mut self, batch: &mut StageBatch<'_>) -> Result<(), String>;

    /// True when the rows it drops are duplicates (counted apart from filtered rows).
    fn deduplicates(&self) -> bool {
        false
    }

    /// Everything of `topic`/`partition` before `next_offset` was delivered by the
    /// sink: a stateful stage writes down what those rows did to its state.
    fn delivered(&mut self, _topic: &str, _partition: i32, _next_offset: i64) -> Result<(), String> {
        Ok(())
    }

    /// Waits until a stateful stage's state holds every delivery handed to it (at a
    /// graceful stop, so the next start has nothing to catch up).
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// The partition was revoked: a stateful stage forgets what it holds in memory
    /// for it (its written-down state is read again if it comes back).
    fn revoked(&mut self, _topic: &str, _partition: i32) {}

    /// A stateful stage's state per partition, with the stage's label.
    fn state(&self, _out: &mut Vec<(String, PartitionState)>) {}
}

/// The ordered stages of a pipeline (`transforms:`), run over every batch.
pub struct Stages {
    stages: Vec<Box<dyn Stage>>,
    /// Rows each stage dropped so far, by stage.
    dropped: Vec<u64>,
    /// Row flags, reused from batch to batch.
    keep: Vec<bool>,
    /// The batch's rejected rows, reused from batch to batch.
    rejected: Vec<(usize, String)>,
}

/// What the stages left of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'s> {
    /// The row flags when some row was dropped (the caller removes those rows from the
    /// block and whatever it keeps in step with them), `None` when every row stayed.
    pub keep: Option<&'s [bool]>,
    /// Rows no stage could compute, with why (their flags are cleared): dead letters.
    pub rejected: &'s [(usize, String)],
    /// Rows the stages dropped in this batch (filtered, deduplicated; not the rejected).
    pub dropped: u64,
    /// Of those, rows dropped as duplicates.
    pub deduplicated: u64,
}

impl std::fmt::Debug for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stages").field("kinds", &self.kinds()).field("dropped", &self.dropped).finish()
    }
}

impl Stages {
    /// A pipeline without transforms: [`Stages::run`] costs one length test.
    pub fn none() -> Self {
        Stages::new(Vec::new())
    }

    /// These stages, in order.
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Self {
        let dropped = vec![0; stages.len()];
        Stages { stages, dropped, keep: Vec::new(), rejected: Vec::new() }
    }

    /// True when there is no stage.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stages' kinds, in order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.kind()).collect()
    }

    /// Rows each stage has dropped since start, in stage order.
    pub fn dropped(&self) -> &[u64] {
        &self.dropped
    }

    /// Runs every stage over `block`: what is left of it (see [`Outcome`]). Rows a
    /// stage rejected are not counted as dropped by it.
    pub fn run(
        &mut self,
        block: &mut Block,
        batch_time: Timestamp,
        streams: &[StreamRows<'_>],
        positions: &dyn RowPositions,
    ) -> Result<Outcome<'_>, StageError> {
        self.rejected.clear();
        if self.stages.is_empty() || block.is_empty() {
            return Ok(Outcome { keep: None, rejected: &[], dropped: 0, deduplicated: 0 });
        }
        self.keep.clear();
        self.keep.resize(block.rows(), true);
        let mut kept = block.rows();
        let (mut dropped, mut deduplicated) = (0, 0);
        for (index, stage) in self.stages.iter_mut().enumerate() {
            let before = self.rejected.len();
            let mut batch = StageBatch {
                block,
                keep: &mut self.keep,
                batch_time,
                streams,
                positions,
                rejected: &mut self.rejected,
            };
            stage.apply(&mut batch).map_err(|message| StageError { index, kind: stage.kind(), message })?;
            if block.rows() != self.keep.len() {
                return Err(StageError {
                    index,
                    kind: stage.kind(),
                    message: format!("changed the row count from {} to {}", self.keep.len(), block.rows()),
                });
            }
            for (row, _) in &self.rejected[before..] {
                self.keep[*row] = false;
            }
            let now = self.keep.iter().filter(|k| **k).count();
            let by_stage = (kept - now - (self.rejected.len() - before)) as u64;
            self.dropped[index] += by_stage;
            dropped += by_stage;
            if stage.deduplicates() {
                deduplicated += by_stage;
            }
            kept = now;
        }
        let keep = (kept < block.rows()).then_some(self.keep.as_slice());
        Ok(Outcome { keep, rejected: &self.rejected, dropped, deduplicated })
    }

    /// True when some stage keeps state (its writes follow deliveries).
    pub fn has_state(&self) -> bool {
        self.stages.iter().any(|s| s.deduplicates())
    }

    /// Everything of `topic`/`partition` before `next_offset` was delivered: stateful
    /// stages write down what those rows did.
    pub fn delivered(&mut self, topic: &str, partition: i32, next_offset: i64) -> Result<(), StageError> {
        for (index, stage) in self.stages.iter_mut().enumerate() {
            stage.delivered(topic, partition, next_offset).map_err(|message| StageError {
                index,
                kind: stage.kind(),
                message,
            })?;
        }
        Ok(())
    }

    /// Waits until every stateful stage's state holds the deliveries handed to it.
    pub fn flush(&mut self) -> Result<(), StageError> {
        for (index, stage) in self.stages.iter_mut().enumerate() {
            stage.flush().map_err(|message| StageError { index, kind: stage.kind(), message })?;
        }
        Ok(())
    }

    /// The partition was revoked: stateful stages forget what they hold for it.
    pub fn revoked(&mut self, topic: &str, partition: i32) {
        self.stages.iter_mut().for_each(|s| s.revoked(topic, partition));
    }

    /// Every stateful stage's state per partition, with the stage's label.
    pub fn state(&self) -> Vec<(String, PartitionState)> {
        let mut out = Vec::new();
        self.stages.iter().for_each(|s| s.state(&mut out));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_codec::{Column, ColumnType};

    /// Test stage: drops rows whose UInt32 column 0 is odd.
    struct DropOdd;
    impl Stage for DropOdd {
        fn kind(&self) -> &'static str {
            "drop_odd"
        }
        fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
            let col = &b.block.columns()[0];
            for (row, keep) in b.keep.iter_mut().enumerate() {
                let v = u32::from_le_bytes(col.value_bytes(row).try_into().unwrap());
                *keep &= v % 2 == 0;
            }
            Ok(())
        }
    }

    /// Test stage: rewrites column 1 as column 0 times ten (a computed column).
    struct TimesTen;
    impl Stage for TimesTen {
        fn kind(&self) -> &'static str {
            "times_ten"
        }
        fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
            let rows = b.block.rows();
            let values: Vec<u32> = (0..rows)
                .map(|r| u32::from_le_bytes(b.block.columns()[0].value_bytes(r).try_into().unwrap()) * 10)
                .collect();
            let out = &mut b.block.columns_mut()[1];
            out.clear();
            values.iter().for_each(|v| out.push_fixed(&v.to_le_bytes()));
            Ok(())
        }
    }

    /// Test stage: sees which rows came from which stream, keeps only partition 1's.
    struct OnlyPartitionOne;
    impl Stage for OnlyPartitionOne {
        fn kind(&self) -> &'static str {
            "only_one"
        }
        fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
            let mut row = 0;
            for s in b.streams {
                b.keep[row..row + s.rows].iter_mut().for_each(|k| *k &= s.partition == 1);
                row += s.rows;
            }
            Ok(())
        }
    }

    struct Broken;
    impl Stage for Broken {
        fn kind(&self) -> &'static str {
            "broken"
        }
        fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
            b.block.truncate(1);
            Ok(())
        }
    }

    fn block(values: &[u32]) -> Block {
        let mut b = Block::new(vec![Column::new("n", ColumnType::UInt32), Column::new("n10", ColumnType::UInt32)]);
        for v in values {
            let c = b.columns_mut();
            c[0].push_fixed(&v.to_le_bytes());
            c[1].push_default();
            b.commit_row();
        }
        b
    }

    const T: Timestamp = Timestamp { secs: 0, nanos: 0 };

    #[test]
    fn no_stage_keeps_everything_untouched() {
        let mut b = block(&[1, 2]);
        assert!(Stages::none().run(&mut b, T, &[], &RowNumbers).unwrap().keep.is_none());
    }

    #[test]
    fn stages_run_in_order_and_count_what_each_dropped() {
        let mut stages = Stages::new(vec![Box::new(TimesTen), Box::new(DropOdd), Box::new(OnlyPartitionOne)]);
        let mut b = block(&[1, 2, 3, 4, 6]);
        let streams = [
            StreamRows { topic: "t", partition: 0, rows: 2, next_offset: 2 },
            StreamRows { topic: "t", partition: 1, rows: 3, next_offset: 3 },
        ];
        let keep = stages.run(&mut b, T, &streams, &RowNumbers).unwrap().keep.unwrap().to_vec();
        assert_eq!(keep, vec![false, false, false, true, true]);
        assert_eq!(stages.dropped(), &[0, 2, 1]);
        b.retain_rows(&keep);
        let n10: Vec<u32> =
            (0..b.rows()).map(|r| u32::from_le_bytes(b.columns()[1].value_bytes(r).try_into().unwrap())).collect();
        assert_eq!(n10, vec![40, 60], "the computed column follows its rows");
        // Flags are reset per batch; counts add up.
        let mut b = block(&[2]);
        let one = [StreamRows { topic: "t", partition: 1, rows: 1, next_offset: 1 }];
        assert!(stages.run(&mut b, T, &one, &RowNumbers).unwrap().keep.is_none());
        assert_eq!(stages.dropped(), &[0, 2, 1]);
    }

    #[test]
    fn a_stage_that_changes_the_row_count_is_an_error_naming_it() {
        let mut stages = Stages::new(vec![Box::new(TimesTen), Box::new(Broken)]);
        let err = stages.run(&mut block(&[1, 2]), T, &[], &RowNumbers).unwrap_err();
        assert_eq!(err.to_string(), "stage 1 (broken): changed the row count from 2 to 1");
    }
}
