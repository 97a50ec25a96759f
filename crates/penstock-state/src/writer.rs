//! The store's writer thread: the one owner of its partitions' runs. The source thread
//! hands it deliveries' writes and goes on deciding; the writer applies them off the
//! source thread — changelog first (flushed), then the local runs (synced), then a new
//! [`View`] for lookups — so neither the broker's acknowledgement nor a merge of large
//! runs ever stalls polling.
//!
//! **Coalescing.** A partition's writes wait until they hold [`WRITE_ENTRIES`] entries
//! or the oldest has waited [`WRITE_INTERVAL`] (or a flush asks), then go out as one
//! write: one changelog record set, one run per bucket, one manifest — instead of one
//! per delivery (every 500 ms per partition by default). Fewer, larger runs mean fewer
//! merge levels and fsyncs; the price is that the written state lags delivery by up
//! to that long (the protocol allows any lag: a crash re-reads that much more), and
//! that the partition's overlay holds those entries until then.
//!
//! **Bounds.** Writes handed over and not applied are bounded for the whole store by a
//! quarter of `state.memory` ([`queue_limit`]; an entry waiting costs ≈ 200 bytes: its
//! copy in the queue and its place in the overlay): past it, the source thread waits in
//! `PartitionKeys::write` (backpressure, as a full sink queue pauses consumption). The
//! filters take up to the other three quarters. (A share that grew while the filters
//! were small was tried: memory the queue took early was not given back when the
//! filters grew — 10 M keys peaked at 138 MiB with `state.memory` 64 MiB, against 87.)
//!
//! **Failures.** A write that cannot be applied (the changelog refuses it, the disk
//! is full) is recorded in the partition's slot; the source thread's next refresh
//! returns it, and the pipeline stops — its state covers what was applied before, and
//! the next start catches up from there.

use crate::changelog::Changelog;
use crate::restore::{restore, Restore};
use crate::runs::manifest::Chain;
use crate::runs::{FilterBudget, PartitionRuns};
use crate::view::View;
use crate::StateError;
use penstock_stages::dedup::StateWrite;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries a partition's writes gather before they are applied (≈ 2.5 MiB of entries;
/// a run of 64 Ki entries per bucket).
pub const WRITE_ENTRIES: usize = 1 << 16;
/// The longest a handed write waits to be applied.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(2);
/// What an entry handed over and not applied costs: its copy in the writer's queue
/// (40 bytes, up to twice that as the queue's vector grows) and its place in the
/// partition's overlay (48 bytes and 16–32 of index, up to twice that until applied
/// entries are forgotten).
const QUEUED_ENTRY_BYTES: u64 = 200;

/// How many entries handed over and not applied the store holds before `write` waits:
/// a quarter of `memory` (`state.memory`), at least 16 Ki.
pub fn queue_limit(memory: u64) -> usize {
    ((memory / 4 / QUEUED_ENTRY_BYTES) as usize).max(1 << 14)
}

/// Jobs the channel to the writer holds (each write is one delivery).
const JOBS: usize = 256;
/// The least a partition's changelog writes add up to before a snapshot follows them.
pub const SNAPSHOT_MIN_BYTES: u64 = 16 << 20;

/// A source partition: topic and number.
pub type PartId = (String, i32);

/// What a partition's source side and the writer share.
#[derive(Debug, Default)]
pub struct Slot {
    /// The newest view (the writer replaces it after each write it applies).
    pub view: Mutex<Arc<View>>,
    /// Why a write failed, once one did.
    pub failed: Mutex<Option<String>>,
}

impl Slot {
    fn publish(&self, view: View) {
        if let Ok(mut g) = self.view.lock() {
            *g = Arc::new(view);
        }
    }

    fn fail(&self, why: &str) {
        if let Ok(mut g) = self.failed.lock() {
            g.get_or_insert_with(|| why.to_string());
        }
    }
}

/// A reply channel.
pub type Reply<T> = SyncSender<T>;

/// What the writer is asked to do.
pub enum Job {
    /// Open a partition (or find it open): its slot.
    Open(PartId, Reply<Result<Arc<Slot>, String>>),
    /// Apply this write after those handed before.
    Write(PartId, StateWrite),
    /// Apply everything handed over (for one partition, or all), then reply.
    Flush(Option<PartId>, Reply<Result<(), String>>),
    /// The partition's source side is gone (revoked): apply what it handed over and
    /// close it.
    Close(PartId),
    /// Make the partition's state ready at assignment: apply what is queued, restore
    /// from the changelog when it has no local state (nothing beyond `delivered`),
    /// reply with the offset it covers.
    Prepare(PartId, Option<i64>, Reply<Result<Option<i64>, StateError>>),
    /// Apply everything and end.
    Stop,
}

/// The source side's handle on the writer.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    /// Jobs to the writer.
    pub tx: SyncSender<Job>,
    /// Entries handed over and not applied yet.
    pub queued: Arc<AtomicUsize>,
    /// True once the writer has ended.
    pub ended: Arc<AtomicBool>,
    /// Entries queued before `write` waits.
    pub limit: usize,
}

impl WriterHandle {
    /// Sends `job`; an error when the writer has ended.
    pub fn send(&self, job: Job) -> Result<(), String> {
        self.tx.send(job).map_err(|_| "the state writer has stopped".to_string())
    }

    /// Sends a job made with a reply channel and waits for the reply.
    pub fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(job(tx))?;
        rx.recv().map_err(|_| "the state writer has stopped".to_string())
    }

    /// Hands a write over, waiting while the store's queue is full.
    pub fn write(&self, part: PartId, write: StateWrite, slot: &Slot) -> Result<(), String> {
        let n = write.entries.len();
        while self.queued.load(Ordering::Acquire) > self.limit {
            if let Some(why) = slot.failed.lock().ok().and_then(|g| g.clone()) {
                return Err(why);
            }
            if self.ended.load(Ordering::Acquire) {
                return Err("the state writer has stopped".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = self.queued.fetch_add(n, Ordering::AcqRel);
        self.send(Job::Write(part, write))
    }
}

/// A partition the writer holds.
struct Held {
    runs: PartitionRuns,
    slot: Arc<Slot>,
    /// Writes handed over, not applied.
    queue: Vec<StateWrite>,
    entries: usize,
    /// When the oldest of them was handed over.
    since: Option<Instant>,
}

/// The writer thread's state.
pub struct Writer {
    /// `<state.dir>/<pipeline>/<stage>`.
    pub dir: PathBuf,
    /// The changelog, when on.
    pub changelog: Option<Changelog>,
    /// The filters' memory.
    pub budget: Arc<FilterBudget>,
    /// Restores taken (shared with the store, for status and metrics).
    pub restores: Arc<Mutex<Vec<Restore>>>,
    parts: HashMap<PartId, Held>,
    queued: Arc<AtomicUsize>,
    /// Entries queued before the source thread waits.
    limit: usize,
    snapshot_min_bytes: u64,
}

impl Writer {
    /// A writer of the store in `dir`.
    pub fn new(
        dir: PathBuf,
        changelog: Option<Changelog>,
        budget: Arc<FilterBudget>,
        restores: Arc<Mutex<Vec<Restore>>>,
        snapshot_min_bytes: u64,
    ) -> Self {
        let queued = Arc::new(AtomicUsize::new(0));
        Writer {
            dir,
            changelog,
            budget,
            restores,
            parts: HashMap::new(),
            queued,
            limit: usize::MAX,
            snapshot_min_bytes,
        }
    }

    /// Starts the thread; returns the handle to give the source side.
    pub fn spawn(mut self, limit: usize) -> std::io::Result<(WriterHandle, std::thread::JoinHandle<()>)> {
        self.limit = limit;
        let (tx, rx) = std::sync::mpsc::sync_channel(JOBS);
        let ended = Arc::new(AtomicBool::new(false));
        let handle = WriterHandle { tx, queued: self.queued.clone(), ended: ended.clone(), limit };
        let thread = std::thread::Builder::new().name("penstock-state".into()).spawn(move || {
            self.run(&rx);
            ended.store(true, Ordering::Release);
        })?;
        Ok((handle, thread))
    }

    fn part_dir(&self, part: &PartId) -> PathBuf {
        self.dir.join(format!("{}#{}", part.0, part.1))
    }

    fn run(&mut self, rx: &Receiver<Job>) {
        loop {
            let wait =
                self.next_due().map_or(Duration::from_secs(3600), |due| due.saturating_duration_since(Instant::now()));
            match rx.recv_timeout(wait) {
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.apply(|_| true);
                    return;
                }
                Ok(job) => self.handle(job),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Take in whatever else waits before writing, so writes of several
            // partitions (and several deliveries of one) go out together.
            while let Ok(job) = rx.try_recv() {
                if matches!(job, Job::Stop) {
                    self.apply(|_| true);
                    return;
                }
                self.handle(job);
            }
            let now = Instant::now();
            // Three quarters of the queue's bound held: everything goes out, or the source thread
            // (waiting at the bound) and the writer (waiting for a partition's writes to
            // add up) would wait for each other until the interval passed.
            let full = self.queued.load(Ordering::Acquire) >= self.limit / 4 * 3;
            self.apply(|h| {
                full || h.entries >= WRITE_ENTRIES || h.since.is_some_and(|s| now.duration_since(s) >= WRITE_INTERVAL)
            });
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.parts.values().filter_map(|h| h.since).min().map(|s| s + WRITE_INTERVAL)
    }

    fn open(&mut self, part: &PartId) -> Result<&mut Held, String> {
        if !self.parts.contains_key(part) {
            let dir = self.part_dir(part);
            let runs = PartitionRuns::open(&dir, self.budget.clone()).map_err(|e| format!("{}: {e}", dir.display()))?;
            let slot = Arc::new(Slot::default());
            slot.publish(runs.view());
            let held = Held { runs, slot, queue: Vec::new(), entries: 0, since: None };
            let _ = self.parts.insert(part.clone(), held);
        }
        Ok(self.parts.get_mut(part).expect("inserted above"))
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Open(part, reply) => {
                let _ = reply.send(self.open(&part).map(|h| h.slot.clone()));
            }
            Job::Write(part, write) => match self.open(&part) {
                Ok(h) => {
                    h.entries += write.entries.len();
                    h.since.get_or_insert_with(Instant::now);
                    h.queue.push(write);
                }
                Err(e) => {
                    let _ = self.queued.fetch_sub(write.entries.len(), Ordering::AcqRel);
                    tracing::error!(error = %e, "state write refused");
                }
            },
            Job::Flush(part, reply) => {
                self.apply(|h| part.as_ref().is_none_or(|p| h.key == p));
                let failed = |h: &Held| h.slot.failed.lock().ok().and_then(|g| g.clone());
                let why = match &part {
                    Some(p) => self.parts.get(p).and_then(failed),
                    None => self.parts.values().find_map(failed),
                };
                let _ = reply.send(why.map_or(Ok(()), Err));
            }
            Job::Close(part) => {
                self.apply(|h| *h.key == part);
                let _ = self.parts.remove(&part);
            }
            Job::Prepare(part, delivered, reply) => {
                self.apply(|h| *h.key == part);
                let _ = reply.send(self.prepare(&part, delivered));
            }
            Job::Stop => {}
        }
    }

    fn prepare(&mut self, part: &PartId, delivered: Option<i64>) -> Result<Option<i64>, StateError> {
        let dir = self.part_dir(part);
        let store_err = |e: String| StateError::Store(e);
        let changelog = self.changelog.take();
        let result = (|| {
            let held = self.open(part).map_err(store_err)?;
            if let Some(c) = held.runs.covers() {
                return Ok(Some(c.next_offset));
            }
            let Some(changelog) = &changelog else { return Ok(None) };
            let r = restore(&mut held.runs, changelog, &part.0, part.1, delivered)?;
            if r.writes > 0 {
                // This process continues the chain with a snapshot of its own at its
                // next write (it knows nothing of the keys the last writer used).
                let chain = Chain { slot: 0, writes: 0, bytes: u64::MAX / 2, snapshot: 0, base: r.from_offset };
                held.runs.set_chain(chain, true).map_err(|e| store_err(e.to_string()))?;
            }
            held.slot.publish(held.runs.view());
            let covers = r.covers;
            if let Ok(mut g) = self.restores.lock() {
                g.push(r);
            }
            Ok(covers)
        })();
        self.changelog = changelog;
        result.map_err(|e| match e {
            StateError::Store(m) => StateError::Store(format!("{}: {m}", dir.display())),
            other => other,
        })
    }

    /// Applies the queued writes of every partition `due` picks: each partition's
    /// writes as one, to the changelog first (one flush for all), then locally.
    fn apply(&mut self, due: impl Fn(&HeldRef<'_>) -> bool) {
        let mut ready: Vec<(PartId, Option<i64>, StateWrite)> = Vec::new();
        for (key, h) in self.parts.iter_mut() {
            if h.queue.is_empty() || !due(&HeldRef { key, entries: h.entries, since: h.since }) {
                continue;
            }
            let from = h.runs.covers().map(|c| c.next_offset);
            ready.push((key.clone(), from, coalesce(std::mem::take(&mut h.queue))));
            h.entries = 0;
            h.since = None;
        }
        if ready.is_empty() {
            return;
        }
        let mut failed: Option<String> = None;
        let mut sent_bytes = vec![0u64; ready.len()];
        if let Some(c) = &self.changelog {
            let before = c.failures();
            let sent = ready.iter().zip(sent_bytes.iter_mut()).try_for_each(|((p, from, w), bytes)| {
                let chain = self.parts.get(p).map(|h| h.runs.chain()).unwrap_or_default();
                *bytes = c.send(&p.0, p.1, *from, w, chain)?;
                Ok(())
            });
            if let Err(e) = sent.and_then(|()| c.flush(before)) {
                failed = Some(e.to_string());
            }
        }
        let mut snapshots = Vec::new();
        for ((part, _, write), bytes) in ready.into_iter().zip(sent_bytes) {
            let n = write.entries.len();
            let Some(h) = self.parts.get_mut(&part) else { continue };
            let result = match &failed {
                Some(why) => Err(why.clone()),
                None => {
                    let chain = h.runs.chain();
                    let chain = Chain { writes: chain.writes + 1, bytes: chain.bytes.saturating_add(bytes), ..chain };
                    h.runs
                        .set_chain(chain, false)
                        .and_then(|()| h.runs.write(&write))
                        .map_err(|e| format!("state of {}/{}: {e}", part.0, part.1))
                }
            };
            match result {
                Ok(()) => {
                    penstock_protocol::failpoint::hit("after_state_write");
                    h.slot.publish(h.runs.view());
                    if self.changelog.is_some() && snapshot_due(&h.runs, self.snapshot_min_bytes) {
                        snapshots.push(part);
                    }
                }
                Err(why) => {
                    tracing::error!(topic = %part.0, partition = part.1, error = %why, "state write failed");
                    h.slot.fail(&why);
                }
            }
            let _ = self.queued.fetch_sub(n, Ordering::AcqRel);
        }
        for part in snapshots {
            self.snapshot(&part);
        }
    }

    /// Publishes a snapshot of `part`'s state to the changelog, then records in its
    /// manifest that the chain starts again from it. A failure leaves the chain as it
    /// was (the next write tries again) and stops nothing: the writes themselves are in
    /// the changelog.
    fn snapshot(&mut self, part: &PartId) {
        let (Some(c), Some(h)) = (&self.changelog, self.parts.get_mut(part)) else { return };
        let Some(covers) = h.runs.covers() else { return };
        let started = Instant::now();
        let chain = h.runs.chain();
        let slot = 1 - chain.slot.min(1);
        let expire_below = h.runs.lowest_bucket().unwrap_or(i64::MIN);
        let before = c.failures();
        let runs = &h.runs;
        let sent = c
            .send_snapshot(&part.0, part.1, slot, chain.base, covers, expire_below, |f| runs.for_each_entry(f))
            .and_then(|sent| c.flush(before).map(|()| sent));
        match sent {
            Ok((bytes, tag)) => {
                penstock_protocol::failpoint::hit("after_snapshot");
                let base = c.offset_of(tag);
                // A marker after it — an empty write that changes nothing, carrying
                // where the snapshot starts — so the newest record points to it even
                // when no write follows for a while (a crash before the marker leaves
                // the newest record pointing to the snapshot before: correct, a longer
                // read).
                let mut chain = Chain { slot, writes: 0, bytes: 0, snapshot: bytes, base };
                let marker = StateWrite { entries: Vec::new(), covers, expire_below };
                let before = c.failures();
                let marked = c
                    .send(&part.0, part.1, Some(covers.next_offset), &marker, chain)
                    .and_then(|sent| c.flush(before).map(|()| sent));
                if let Ok(sent) = marked {
                    chain.writes = 1;
                    chain.bytes = sent;
                }
                match h.runs.set_chain(chain, true) {
                    Ok(()) => tracing::info!(
                        topic = %part.0,
                        partition = part.1,
                        covers = covers.next_offset,
                        at = base,
                        bytes,
                        took_ms = started.elapsed().as_millis() as u64,
                        "state snapshot written to the changelog"
                    ),
                    Err(e) => h.slot.fail(&format!("state of {}/{}: {e}", part.0, part.1)),
                }
            }
            Err(e) => {
                tracing::warn!(topic = %part.0, partition = part.1, error = %e, "state snapshot failed; tried again later")
            }
        }
    }
}

/// True when a partition's changelog writes since its last snapshot outweigh that
/// snapshot (so a restore, which reads the latest snapshot and the writes after it,
/// reads at most twice the snapshot, which is at most the state), and `least`.
fn snapshot_due(runs: &PartitionRuns, least: u64) -> bool {
    let chain = runs.chain();
    chain.bytes >= chain.snapshot.max(least)
}

/// What `apply`'s choice sees of a partition.
pub struct HeldRef<'a> {
    key: &'a PartId,
    entries: usize,
    since: Option<Instant>,
}

/// Several writes of one partition, in order, as one: their entries in order (a later
/// entry of a bucket and key replaces an earlier one, as it would have), the last
/// covers, the last expiry.
fn coalesce(mut writes: Vec<StateWrite>) -> StateWrite {
    let mut first = writes.remove(0);
    for w in writes {
        first.entries.extend(w.entries);
        first.covers = w.covers;
        first.expire_below = first.expire_below.max(w.expire_below);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_stages::dedup::{Covers, Entry, KeyHash};

    #[test]
    fn coalesced_writes_keep_their_order_and_the_last_covers() {
        let w = |o: i64| StateWrite {
            entries: vec![(0, KeyHash([o as u8; 16]), Entry { offset: o, time: 0 })],
            covers: Covers { next_offset: o + 1, watermark: o },
            expire_below: o / 2,
        };
        let c = coalesce(vec![w(1), w(2), w(5)]);
        assert_eq!(c.entries.iter().map(|e| e.2.offset).collect::<Vec<_>>(), vec![1, 2, 5]);
        assert_eq!(c.covers, Covers { next_offset: 6, watermark: 5 });
        assert_eq!(c.expire_below, 2);
    }
}
