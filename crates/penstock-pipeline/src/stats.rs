//! Run counters, updated once per batch (never per message).

use std::sync::atomic::{AtomicU64, Ordering};

/// Totals of a run.
#[derive(Debug)]
pub struct Stats {
    /// Messages read from Kafka.
    pub messages: AtomicU64,
    /// Messages that could not be decoded (each dead-lettered).
    pub undecodable: AtomicU64,
    /// Rows written to the dead-letter table (undecodable messages and rows ClickHouse
    /// rejected), not counting dead letters a replay found already there.
    pub dead_lettered: AtomicU64,
    /// Rows ClickHouse acknowledged.
    pub rows_inserted: AtomicU64,
    /// Rows the transforms dropped (filters), not counting rows they rejected.
    pub rows_filtered: AtomicU64,
    /// Rows dedup stages dropped as duplicates.
    pub rows_deduplicated: AtomicU64,
    /// Messages delivered before a restart and read again only to bring stage state
    /// forward (not counted in `messages`).
    pub caught_up: AtomicU64,
    /// Stage state per partition and the restores taken, refreshed by the source
    /// about once a second.
    pub state: std::sync::Mutex<StateReport>,
    /// Insert bodies sent (bytes, after compression).
    pub bytes_sent: AtomicU64,
    /// Batches inserted.
    pub batches: AtomicU64,
    /// Insert attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Offset commits issued.
    pub commits: AtomicU64,
    /// Insert latency, seconds.
    pub insert_seconds: crate::telemetry::Histogram,
    /// Rows per insert.
    pub batch_rows: crate::telemetry::Histogram,
    /// Per row: acknowledgement time minus Kafka timestamp, seconds.
    pub freshness_kafka: crate::telemetry::Histogram,
    /// Per row: acknowledgement time minus the event-time column, seconds.
    pub freshness_event: crate::telemetry::Histogram,
    /// Message payload bytes consumed.
    pub bytes_consumed: AtomicU64,
    /// Errors by kind: each dead letter's `error_kind`, and `insert_retry`.
    pub errors: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            messages: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            rows_inserted: AtomicU64::new(0),
            rows_filtered: AtomicU64::new(0),
            rows_deduplicated: AtomicU64::new(0),
            caught_up: AtomicU64::new(0),
            state: Default::default(),
            bytes_sent: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            insert_seconds: crate::telemetry::Histogram::new(crate::telemetry::LATENCY_BOUNDS),
            batch_rows: crate::telemetry::Histogram::new(crate::telemetry::ROWS_BOUNDS),
            freshness_kafka: crate::telemetry::Histogram::new(crate::telemetry::FRESHNESS_BOUNDS),
            freshness_event: crate::telemetry::Histogram::new(crate::telemetry::FRESHNESS_BOUNDS),
            bytes_consumed: AtomicU64::new(0),
            errors: Default::default(),
        }
    }
}

impl Stats {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            messages: g(&self.messages),
            undecodable: g(&self.undecodable),
            dead_lettered: g(&self.dead_lettered),
            rows_inserted: g(&self.rows_inserted),
            rows_filtered: g(&self.rows_filtered),
            rows_deduplicated: g(&self.rows_deduplicated),
            caught_up: g(&self.caught_up),
            bytes_sent: g(&self.bytes_sent),
            batches: g(&self.batches),
            retries: g(&self.retries),
            commits: g(&self.commits),
        }
    }

    /// Counts `n` errors of `kind` (once per batch, never per message).
    pub fn add_errors(&self, kind: &str, n: u64) {
        let mut g = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *g.entry(kind.to_string()).or_default() += n;
    }

    pub(crate) fn add(a: &AtomicU64, n: u64) {
        let _ = a.fetch_add(n, Ordering::Relaxed);
    }

    /// The stage state last reported.
    pub fn state(&self) -> StateReport {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Stage state, as metrics and status show it.
#[derive(Debug, Clone, Default)]
pub struct StateReport {
    /// `(stage label, partition state)` for every open partition of a stateful stage.
    pub partitions: Vec<(String, penstock_stages::PartitionState)>,
    /// Restores from changelogs, by stage label.
    pub restores: Vec<(String, penstock_state::Restore)>,
}

/// Counter values at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages read.
    pub messages: u64,
    /// Messages that could not be decoded.
    pub undecodable: u64,
    /// Rows written to the dead-letter table.
    pub dead_lettered: u64,
    /// Rows inserted.
    pub rows_inserted: u64,
    /// Rows the transforms dropped.
    pub rows_filtered: u64,
    /// Rows dropped as duplicates.
    pub rows_deduplicated: u64,
    /// Messages re-read for stage state only.
    pub caught_up: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Batches inserted.
    pub batches: u64,
    /// Retries.
    pub retries: u64,
    /// Commits.
    pub commits: u64,
}
