//! State shared by the source thread, the sink task and librdkafka's rebalance
//! callbacks — touched once per batch, never per message.
//!
//! Each owned partition has an *epoch* that changes whenever it is assigned or
//! revoked. A batch carries the epoch it was read under; the sink inserts and
//! acknowledges it only if the epoch is still current, so nothing read before a
//! revocation is committed after it. On revocation the hook waits (bounded) for the
//! partition's in-flight batches, then hands their acknowledged offsets to librdkafka
//! to commit before the partition moves to its next owner.

use crate::batch::SealedBatch;
use crate::exactly_once::recovery::{Recovery, ReplayPlan};
use penstock_kafka::{Partition, RebalanceHook};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a revocation waits for in-flight inserts before abandoning them.
const REVOKE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct PartState {
    epoch: u64,
    owned: bool,
    in_flight: u32,
    /// Next offset after the last inserted batch, not yet committed.
    acked: Option<i64>,
    /// Next offset after the last delivered batch under the current ownership (kept,
    /// for lag reporting).
    delivered: Option<i64>,
    /// Where the current ownership started (recovery's choice or the committed offset).
    base: Option<i64>,
    /// Kafka timestamp (ms) of the newest delivered row, for lag in seconds.
    delivered_ms: Option<i64>,
    /// Newest exactly-once ledger sequence number used or seen for the partition.
    seq: u64,
    /// The offset the last assignment started at, when recovery chose it (the ledger
    /// can be ahead of Kafka's committed offset after a crash before the commit).
    start: Option<i64>,
}

/// A change of ownership, for the source loop to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipEvent {
    /// Assigned under a new epoch.
    Assigned(Partition, u64),
    /// Revoked.
    Revoked(Partition),
}

#[derive(Debug, Default)]
struct Inner {
    parts: HashMap<Partition, PartState>,
    events: Vec<OwnershipEvent>,
    next_epoch: u64,
    sink_stopped: bool,
    /// Batches to rebuild, by partition, decided at assignment.
    replays: HashMap<Partition, ReplayPlan>,
    /// Set when recovery failed: nothing may be inserted or committed any more.
    fatal: Option<String>,
}

/// Shared delivery state; see the module docs.
#[derive(Debug, Default)]
pub struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    acks_pending: AtomicBool,
    events_pending: AtomicBool,
    recovery: Option<Recovery>,
}

impl Shared {
    /// Shared state; with `recovery`, partitions are recovered from the exactly-once
    /// ledger when assigned.
    pub fn new(recovery: Option<Recovery>) -> Self {
        Shared { recovery, ..Default::default() }
    }

    /// The exactly-once recovery, when delivery is exactly once.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Where recovery made a newly assigned partition start, if it chose.
    pub fn start_of(&self, p: &Partition) -> Option<i64> {
        self.lock().parts.get(p).and_then(|s| s.start)
    }

    /// The batch to rebuild for a newly assigned partition, if any.
    pub fn take_replay(&self, p: &Partition) -> Option<ReplayPlan> {
        self.lock().replays.remove(p)
    }

    /// Why the pipeline can no longer deliver, if recovery failed.
    pub fn fatal(&self) -> Option<String> {
        self.lock().fatal.clone()
    }

    /// A ledger sequence number for a new entry of `p`: above every one used or seen.
    pub fn next_seq(&self, p: &Partition) -> u64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut g = self.lock();
        let s = g.parts.entry(p.clone()).or_default();
        s.seq = now.max(s.seq + 1);
        s.seq
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when ownership events wait to be taken (cheap check for every loop turn).
    pub fn has_events(&self) -> bool {
        self.events_pending.load(Ordering::Acquire)
    }

    /// Takes pending ownership events.
    pub fn take_events(&self) -> Vec<OwnershipEvent> {
        self.events_pending.store(false, Ordering::Release);
        std::mem::take(&mut self.lock().events)
    }

    /// The partition's current epoch (0 when unknown).
    pub fn epoch_of(&self, p: &Partition) -> u64 {
        self.lock().parts.get(p).map_or(0, |s| s.epoch)
    }

    /// Registers a batch handed to the sink.
    pub fn begin(&self, batch: &SealedBatch) {
        if let Some(p) = self.lock().parts.get_mut(&batch.partition) {
            p.in_flight += 1;
        }
    }

    /// True when the batch's partition is still owned under the batch's epoch.
    pub fn is_current(&self, batch: &SealedBatch) -> bool {
        let g = self.lock();
        g.fatal.is_none() && g.parts.get(&batch.partition).is_some_and(|p| p.owned && p.epoch == batch.epoch)
    }

    /// The batch was inserted (or had nothing to insert): its range may be committed,
    /// unless ownership changed meanwhile. Returns whether it was accepted.
    pub fn acknowledge(&self, batch: &SealedBatch) -> bool {
        let mut g = self.lock();
        let accepted = match g.parts.get_mut(&batch.partition) {
            Some(p) => {
                p.in_flight = p.in_flight.saturating_sub(1);
                let current = p.owned && p.epoch == batch.epoch;
                if current {
                    p.acked = Some(p.acked.map_or(batch.next_offset, |a| a.max(batch.next_offset)));
                    p.delivered = Some(p.delivered.map_or(batch.next_offset, |a| a.max(batch.next_offset)));
                    let origins = &batch.buffers.origins;
                    if let Some(ms) = origins.len().checked_sub(1).and_then(|last| origins.get(last).timestamp_ms) {
                        p.delivered_ms = Some(p.delivered_ms.map_or(ms, |m| m.max(ms)));
                    }
                }
                current
            }
            None => false,
        };
        drop(g);
        if accepted {
            self.acks_pending.store(true, Ordering::Release);
        }
        self.changed.notify_all();
        accepted
    }

    /// The batch will not be inserted (stale epoch, or shutdown).
    pub fn abandon(&self, batch: &SealedBatch) {
        if let Some(p) = self.lock().parts.get_mut(&batch.partition) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
        self.changed.notify_all();
    }

    /// The partitions owned now, each with the offset delivery has reached under this
    /// ownership (or where it started), for lag reporting.
    /// Also the Kafka timestamp (ms) of the newest delivered row, when known.
    pub fn owned(&self) -> Vec<(Partition, Option<i64>, Option<i64>)> {
        let g = self.lock();
        let mut out: Vec<(Partition, Option<i64>, Option<i64>)> = g
            .parts
            .iter()
            .filter(|(_, s)| s.owned)
            .map(|(p, s)| (p.clone(), s.delivered.or(s.base), s.delivered_ms))
            .collect();
        out.sort_by(|a, b| (&a.0.topic, a.0.partition).cmp(&(&b.0.topic, b.0.partition)));
        out
    }

    /// Offsets acknowledged since the last call, to commit.
    pub fn take_acks(&self) -> Vec<(Partition, i64)> {
        if !self.acks_pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        let mut g = self.lock();
        g.parts
            .iter_mut()
            .filter(|(_, s)| s.owned)
            .filter_map(|(p, s)| s.acked.take().map(|o| (p.clone(), o)))
            .collect()
    }

    /// The sink has stopped (finished or failed): nobody will acknowledge any more.
    pub fn sink_stopped(&self) {
        self.lock().sink_stopped = true;
        self.changed.notify_all();
    }

    /// Waits until no batch is in flight, the sink stopped, or `timeout` passes.
    /// Returns true when nothing is in flight.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            let busy = g.parts.values().any(|p| p.in_flight > 0);
            if !busy {
                return true;
            }
            let now = Instant::now();
            if g.sink_stopped || now >= deadline {
                return false;
            }
            g = self.changed.wait_timeout(g, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl RebalanceHook for Shared {
    fn assigning(&self, partitions: &[Partition], committed: &[Option<i64>]) -> Vec<Option<i64>> {
        let Some(recovery) = &self.recovery else {
            let mut g = self.lock();
            for (p, c) in partitions.iter().zip(committed) {
                g.parts.entry(p.clone()).or_default().base = *c;
            }
            return vec![None; partitions.len()];
        };
        let mut starts = Vec::with_capacity(partitions.len());
        for (p, c) in partitions.iter().zip(committed) {
            match recovery.recover(p, *c) {
                Ok(r) => {
                    let mut g = self.lock();
                    let s = g.parts.entry(p.clone()).or_default();
                    s.seq = s.seq.max(r.seq);
                    s.start = r.start;
                    s.base = r.start.or(*c);
                    match r.replay {
                        Some(plan) => drop(g.replays.insert(p.clone(), plan)),
                        None => drop(g.replays.remove(p)),
                    }
                    starts.push(r.start);
                }
                Err(e) => {
                    let why = format!("cannot recover {}/{} from the exactly-once ledger: {e}", p.topic, p.partition);
                    tracing::error!("{why}");
                    self.lock().fatal.get_or_insert(why);
                    starts.push(None);
                }
            }
        }
        starts
    }

    fn assigned(&self, partitions: &[Partition]) {
        let mut g = self.lock();
        for p in partitions {
            g.next_epoch += 1;
            let epoch = g.next_epoch;
            let s = g.parts.entry(p.clone()).or_default();
            *s = PartState {
                epoch,
                owned: true,
                in_flight: s.in_flight,
                acked: None,
                delivered: None,
                base: s.base,
                delivered_ms: None,
                seq: s.seq,
                start: s.start,
            };
            g.events.push(OwnershipEvent::Assigned(p.clone(), epoch));
        }
        self.events_pending.store(true, Ordering::Release);
    }

    fn revoking(&self, partitions: &[Partition]) -> Vec<(Partition, i64)> {
        let deadline = Instant::now() + REVOKE_WAIT;
        let mut g = self.lock();
        loop {
            let busy = partitions.iter().any(|p| g.parts.get(p).is_some_and(|s| s.in_flight > 0));
            let now = Instant::now();
            if !busy || g.sink_stopped || now >= deadline {
                if busy {
                    tracing::warn!(
                        "in-flight batches of revoked partitions did not finish in {REVOKE_WAIT:?}; abandoning them"
                    );
                }
                break;
            }
            g = self.changed.wait_timeout(g, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        let mut commits = Vec::new();
        for p in partitions {
            g.next_epoch += 1;
            let epoch = g.next_epoch;
            if let Some(s) = g.parts.get_mut(p) {
                if let Some(o) = s.acked.take() {
                    commits.push((p.clone(), o));
                }
                s.owned = false;
                s.epoch = epoch;
            }
            g.events.push(OwnershipEvent::Revoked(p.clone()));
        }
        self.events_pending.store(true, Ordering::Release);
        commits
    }

    fn committed(&self, result: rdkafka_result::KafkaResult<()>, offsets: &[(Partition, i64)]) {
        if let Err(e) = result {
            tracing::warn!(error = %e, ?offsets, "offset commit failed; the offsets are committed again with the next batch");
        } else {
            tracing::debug!(?offsets, "offsets committed");
        }
    }
}

mod rdkafka_result {
    pub(crate) use penstock_kafka::rdkafka::error::KafkaResult;
}
