//! Counters of a run into Kafka (ClickHouse → Kafka, Kafka → Kafka), shared with the
//! HTTP API.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Live counters (relaxed atomics: each is written by one thread).
#[derive(Debug, Default)]
pub struct PublishStats {
    /// Rows read from ClickHouse.
    pub rows_read: AtomicU64,
    /// Messages the broker acknowledged.
    pub messages_produced: AtomicU64,
    /// Rows read again after a recovery and found already in their partition.
    pub messages_skipped: AtomicU64,
    /// Producer sessions ended by an error and recovered.
    pub recoveries: AtomicU64,
    /// Rows that appeared behind the cursor (late commits beyond `settle`).
    pub late_rows: AtomicU64,
    /// Cursor queries that failed and were retried.
    pub read_retries: AtomicU64,
    /// Rows between the cursor and the newest settled row, at the last check.
    pub lag_rows: AtomicU64,
    /// Seconds between the cursor's first column and the newest settled row's.
    pub lag_seconds: AtomicI64,
    /// The cursor's first column at the last batch, as a number (epoch seconds for
    /// DateTime columns; 0 for String cursors).
    pub cursor_first: AtomicI64,
    /// Kafka → Kafka: messages sent to the dead-letter topic.
    pub dead_letters: AtomicU64,
    /// Rows the transforms dropped (filters).
    pub rows_filtered: AtomicU64,
    /// Sum of produce latencies (send → acknowledgement), microseconds.
    pub produce_latency_us: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishSnapshot {
    /// Rows read from ClickHouse.
    pub rows_read: u64,
    /// Messages acknowledged.
    pub messages_produced: u64,
    /// Rows skipped as already delivered.
    pub messages_skipped: u64,
    /// Recoveries.
    pub recoveries: u64,
    /// Late rows.
    pub late_rows: u64,
    /// Retried reads.
    pub read_retries: u64,
    /// Dead letters sent.
    pub dead_letters: u64,
    /// Rows the transforms dropped.
    pub rows_filtered: u64,
}

impl PublishStats {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A copy.
    pub fn snapshot(&self) -> PublishSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PublishSnapshot {
            rows_read: g(&self.rows_read),
            messages_produced: g(&self.messages_produced),
            messages_skipped: g(&self.messages_skipped),
            recoveries: g(&self.recoveries),
            late_rows: g(&self.late_rows),
            read_retries: g(&self.read_retries),
            dead_letters: g(&self.dead_letters),
            rows_filtered: g(&self.rows_filtered),
        }
    }
}
