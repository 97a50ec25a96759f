//! Recovery of a newly assigned partition, run inside the rebalance callback (on the
//! source thread) before librdkafka starts fetching: read the ledger, decide, and for a
//! replay find the offsets that already landed.

use super::decision::{decide, Decision, LedgerEntry};
use super::ledger::{landed_offsets, Ledger};
use super::mode::DedupMode;
use crate::dead_letter::DeadLetterTable;
use crate::retry::Next;
use penstock_clickhouse::{ClickHouseClient, ClickHouseError};
use penstock_codec::Timestamp;
use penstock_kafka::Partition;

/// Attempts at reading the ledger before giving up on a partition.
const ATTEMPTS: u32 = 12;

/// How to rebuild a pending batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPlan {
    /// First offset of the range.
    pub first: i64,
    /// One past the last.
    pub next: i64,
    /// The batch time recorded in the ledger (for `now` columns).
    pub batch_time: Timestamp,
    /// Offsets whose rows already landed (sorted), left out of the replay.
    pub landed: Vec<i64>,
    /// Offsets already in the dead-letter table (sorted): their dead letters are not
    /// inserted again.
    pub dead_landed: Vec<i64>,
}

/// The outcome of recovering one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Where to start fetching (None: the committed offset or `start`).
    pub start: Option<i64>,
    /// The batch to rebuild first, if any.
    pub replay: Option<ReplayPlan>,
    /// The newest ledger sequence number seen (new entries must be larger).
    pub seq: u64,
}

/// Everything recovery needs.
#[derive(Debug)]
pub struct Recovery {
    pub(crate) ledger: Ledger,
    pub(crate) client: ClickHouseClient,
    pub(crate) database: String,
    pub(crate) table: String,
    pub(crate) mode: DedupMode,
    pub(crate) dead_letters: DeadLetterTable,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The sink's retry policy (bounded here: recovery runs inside a rebalance).
    pub(crate) retry: crate::retry::RetryPolicy,
}

impl Recovery {
    /// The dedup mode in use.
    pub fn mode(&self) -> &DedupMode {
        &self.mode
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Plans the recovery of `p`. Blocks (it runs inside librdkafka's rebalance
    /// callback); transient ClickHouse errors are retried with backoff.
    pub fn recover(&self, p: &Partition, committed: Option<i64>) -> Result<Recovered, ClickHouseError> {
        let entry: Option<LedgerEntry> = self.retrying(|| self.ledger.last(p))?;
        let seq = entry.map_or(0, |e| e.seq);
        let out = match decide(entry, committed) {
            Decision::Resume(start) => Recovered { start, replay: None, seq },
            Decision::Replay { first, next, batch_time_ns } => {
                let landed = self.retrying(|| {
                    landed_offsets(&self.client, &self.database, &self.table, &self.mode, p, first, next)
                })?;
                let dead_landed = self.retrying(|| self.dead_letters.landed(&self.client, p, first, next))?;
                tracing::info!(
                    topic = %p.topic, partition = p.partition, first, next, already_landed = landed.len(),
                    already_dead_lettered = dead_landed.len(),
                    "replaying a batch whose insert may not have completed"
                );
                let batch_time = Timestamp {
                    secs: batch_time_ns.div_euclid(1_000_000_000),
                    nanos: batch_time_ns.rem_euclid(1_000_000_000) as u32,
                };
                Recovered {
                    start: Some(first),
                    replay: Some(ReplayPlan { first, next, batch_time, landed, dead_landed }),
                    seq,
                }
            }
        };
        Ok(out)
    }

    fn retrying<T, F, Fut>(&self, op: F) -> Result<T, ClickHouseError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClickHouseError>>,
    {
        let mut attempt = 0;
        loop {
            match self.runtime.block_on(op()) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Next::Retry(wait) = self.retry.at_most(ATTEMPTS).after(attempt, e.retry_hint()) else {
                        return Err(e);
                    };
                    tracing::warn!(error = %e, retry_in = ?wait, "reading the exactly-once ledger failed; retrying");
                    std::thread::sleep(wait);
                    attempt += 1;
                }
            }
        }
    }
}
