//! `dedup: { key, window, time }` over blocks: each kept row's key is looked up in its
//! source partition's state; a key seen within the window drops the row. Rows without
//! a time (a NULL time column, a message without a timestamp) are rejected (dead
//! letters), never guessed.

use super::key::key_of;
use super::{DedupTime, KeyStore, PartitionDedup, Row, StateSize, Verdict};
use crate::{PartitionState, Stage, StageBatch};

/// A checked `dedup:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSpec {
    /// Key columns (block indices) and their names.
    pub keys: Vec<(usize, String)>,
    /// What the window is measured on.
    pub time: DedupTime,
    /// The window, in ms.
    pub window_ms: i64,
    /// Rows reach the stage through an internal topic keyed by the dedup key
    /// (`repartition: true`; the pipeline routes them, the stage is the same).
    pub repartition: bool,
    /// The forwarder of `repartition: true` holds the writer lease (default) or writes
    /// without one (`repartition_lease: none`).
    pub repartition_lease: bool,
}

/// The dedup stage.
pub struct Dedup {
    spec: DedupSpec,
    /// Its label (`dedup`, `dedup-2`, ...), as its store and metrics name it.
    label: String,
    key_columns: Vec<usize>,
    store: Box<dyn KeyStore>,
    /// Open partitions (few: a linear search beats hashing a topic name per batch).
    parts: Vec<((String, i32), PartitionDedup)>,
    /// A stream's rows to decide, their block rows, and the verdicts (reused).
    rows: Vec<Row>,
    row_index: Vec<usize>,
    verdicts: Vec<Verdict>,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup").field("spec", &self.spec).field("parts", &self.parts.len()).finish()
    }
}

impl Dedup {
    /// The stage labelled `label`, its state in `store`.
    pub fn new(spec: DedupSpec, label: &str, store: Box<dyn KeyStore>) -> Self {
        let key_columns = spec.keys.iter().map(|(i, _)| *i).collect();
        Dedup {
            spec,
            label: label.to_string(),
            key_columns,
            store,
            parts: Vec::new(),
            rows: Vec::new(),
            row_index: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    fn part(&mut self, topic: &str, partition: i32) -> Result<usize, String> {
        if let Some(i) = self.parts.iter().position(|((t, p), _)| *p == partition && t == topic) {
            return Ok(i);
        }
        let keys = self.store.open(topic, partition)?;
        self.parts.push(((topic.to_string(), partition), PartitionDedup::new(keys, self.spec.window_ms)));
        Ok(self.parts.len() - 1)
    }
}

impl Stage for Dedup {
    fn kind(&self) -> &'static str {
        "dedup"
    }

    fn deduplicates(&self) -> bool {
        true
    }

    fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
        let mut first = 0;
        for s in b.streams {
            let i = self.part(s.topic, s.partition)?;
            self.rows.clear();
            self.row_index.clear();
            for row in first..first + s.rows {
                if !b.keep[row] {
                    continue;
                }
                let (offset, kafka_ms) = b.positions.position(row);
                let Some(time) = self.spec.time.of(b.block, row, kafka_ms) else {
                    b.rejected.push((row, "dedup: the row has no time to measure the window on".into()));
                    continue;
                };
                self.rows.push(Row { key: key_of(b.block, &self.key_columns, row), offset, time });
                self.row_index.push(row);
            }
            let part = &mut self.parts[i].1;
            part.rows(&self.rows, &mut self.verdicts)?;
            for (row, v) in self.row_index.iter().zip(&self.verdicts) {
                if *v == Verdict::Duplicate {
                    b.keep[*row] = false;
                }
            }
            part.seal(s.next_offset);
            first += s.rows;
        }
        Ok(())
    }

    fn delivered(&mut self, topic: &str, partition: i32, next_offset: i64) -> Result<(), String> {
        let i = self.part(topic, partition)?;
        self.parts[i].1.delivered(next_offset).map(|_| ())
    }

    fn flush(&mut self) -> Result<(), String> {
        self.parts.iter_mut().try_for_each(|(_, p)| p.flush())
    }

    fn revoked(&mut self, topic: &str, partition: i32) {
        self.parts.retain(|((t, p), _)| !(*p == partition && t == topic));
    }

    fn state(&self, out: &mut Vec<(String, PartitionState)>) {
        for ((topic, partition), p) in &self.parts {
            let StateSize { keys, bytes } = p.size();
            out.push((
                self.label.clone(),
                PartitionState {
                    topic: topic.clone(),
                    partition: *partition,
                    keys,
                    bytes,
                    unwritten: p.unwritten() as u64,
                    covers: p.covers().map(|c| c.next_offset),
                },
            ));
        }
    }
}
