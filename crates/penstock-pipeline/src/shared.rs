//! State shared by the source thread, the sink task and librdkafka's rebalance
//! callbacks — touched once per batch, never per message: the pure [`Ownership`]
//! behind one lock, with a condition variable for the waits (a revocation waiting for
//! its partitions' in-flight batches, shutdown waiting for all) and two flags the
//! source loop checks cheaply on every turn. The rules are in [`crate::ownership`];
//! librdkafka's side is [`crate::rebalance`].

use crate::batch::SealedBatch;
use crate::exactly_once::recovery::{Recovery, ReplayPlan};
use crate::ownership::{Delivered, Ownership, OwnershipEvent};
use penstock_kafka::Partition;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shared delivery state; see the module docs.
#[derive(Debug, Default)]
pub struct Shared {
    inner: Mutex<Ownership>,
    changed: Condvar,
    acks_pending: AtomicBool,
    pub(crate) events_pending: AtomicBool,
    pub(crate) recovery: Option<Recovery>,
    /// The stores of stateful stages, by label: prepared (restored) for each partition
    /// as it is assigned, before its messages are read.
    pub(crate) state: Vec<(String, penstock_state::StateStore)>,
}

impl Shared {
    /// Shared state; with `recovery`, partitions are recovered from the exactly-once
    /// ledger when assigned.
    pub fn new(recovery: Option<Recovery>) -> Self {
        Shared { recovery, ..Default::default() }
    }

    /// With stateful stages' stores.
    pub fn with_state(mut self, state: Vec<(String, penstock_state::StateStore)>) -> Self {
        self.state = state;
        self
    }

    /// Where stage state must be brought forward from for a newly assigned partition:
    /// `(from, to)` — re-read `[from, to)` for the stages only.
    pub fn take_catch_up(&self, p: &Partition) -> Option<(i64, i64)> {
        self.lock().catch_ups.remove(p)
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
        self.lock().next_seq(p, now)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Ownership> {
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
        let mut g = self.lock();
        batch.ranges.iter().for_each(|r| g.begin(&r.partition));
    }

    /// True when every partition of the batch is still owned under the epoch its range
    /// was read in.
    pub fn is_current(&self, batch: &SealedBatch) -> bool {
        let g = self.lock();
        batch.ranges.iter().all(|r| g.is_current(&r.partition, r.epoch))
    }

    /// The batch was inserted (or had nothing to insert): its range may be committed,
    /// unless ownership changed meanwhile. Returns whether it was accepted.
    pub fn acknowledge(&self, batch: &SealedBatch) -> bool {
        let origins = &batch.buffers.origins;
        let mut end = 0;
        let mut accepted = true;
        let mut g = self.lock();
        for r in batch.ranges.iter() {
            end += r.rows;
            // The Kafka timestamp of the range's last row, for lag in seconds.
            let last_timestamp_ms =
                (r.rows > 0 && end <= origins.len()).then(|| origins.get(end - 1).timestamp_ms).flatten();
            let d = Delivered { epoch: r.epoch, next_offset: r.next_offset, last_timestamp_ms };
            accepted &= g.acknowledge(&r.partition, d);
        }
        drop(g);
        if accepted {
            self.acks_pending.store(true, Ordering::Release);
        }
        self.changed.notify_all();
        accepted
    }

    /// The batch will not be inserted (stale epoch, or shutdown).
    pub fn abandon(&self, batch: &SealedBatch) {
        let mut g = self.lock();
        batch.ranges.iter().for_each(|r| g.abandon(&r.partition));
        drop(g);
        self.changed.notify_all();
    }

    /// The partitions owned now, each with the offset delivery has reached under this
    /// ownership (or where it started), for lag reporting.
    /// Also the Kafka timestamp (ms) of the newest delivered row, when known.
    pub fn owned(&self) -> Vec<(Partition, Option<i64>, Option<i64>)> {
        self.lock().owned()
    }

    /// Offsets acknowledged since the last call, to commit.
    pub fn take_acks(&self) -> Vec<(Partition, i64)> {
        if !self.acks_pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        self.lock().take_acks()
    }

    /// The sink has stopped (finished or failed): nobody will acknowledge any more.
    pub fn sink_stopped(&self) {
        self.lock().sink_stopped = true;
        self.changed.notify_all();
    }

    /// Waits until no batch is in flight, the sink stopped, or `timeout` passes.
    /// Returns true when nothing is in flight.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |o| !o.any_busy())
    }

    /// Waits until `done` holds, the sink stopped, or `timeout` passes; returns
    /// whether `done` holds.
    pub(crate) fn wait_until(&self, timeout: Duration, done: impl Fn(&Ownership) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if done(&g) {
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
