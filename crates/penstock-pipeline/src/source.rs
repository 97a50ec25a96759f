//! The source loop: one thread that polls the consumer, decodes each message straight
//! into its partition's open batch, seals batches, hands them to the sink through a
//! bounded queue, and commits the offsets the sink acknowledged.
//!
//! Backpressure: when the queue is full, sealed batches wait in a short local list and
//! every assigned partition is paused; polling continues (so group membership and
//! rebalances are served) but returns no messages until the queue drains.
//!
//! Lifecycle: `Consuming` until a stop is requested (signal, caught up, sink failure),
//! then `Draining`: seal everything, hand it over, wait for the sink, commit
//! synchronously, and return.

use crate::batch::SealedBatch;
use crate::batcher::{Batcher, Opening};
use crate::catch_up::CatchUp;
use crate::dead_letter::{DeadLetter, DeadLetterTable};
use crate::error::PipelineError;
use crate::exactly_once::recovery::ReplayPlan;
use crate::ownership::OwnershipEvent;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::stop::{Stop, StopReason};
use penstock_codec::{Block, DecodeError, JsonDecoder, MessageMeta, Timestamp};
use penstock_config::StartFrom;
use penstock_kafka::{Commit, GroupConsumer, Partition, RawMessage};
use penstock_stages::Stages;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{self, error::TrySendError};

/// Longest single poll, so stop requests and acknowledgements are seen promptly.
const MAX_POLL: Duration = Duration::from_millis(100);
/// Poll interval while paused by backpressure.
const PAUSED_POLL: Duration = Duration::from_millis(10);
/// Housekeeping period while messages flow: bounds how late an aged batch is sealed
/// and how stale a `now` column can be, at a cost paid once per tick, not per message.
const TICK: Duration = Duration::from_millis(2);
/// Sealed batches may wait in the source, before consumption pauses, up to this share
/// of `max_bytes`...
const PENDING_SHARE: usize = 4;
/// ...and this many batches.
const PENDING_BATCHES: usize = 16;
/// Messages between two clock reads while messages flow.
const CLOCK_EVERY: u32 = 16;
/// How long the drain at shutdown waits for the sink.
pub(crate) const DRAIN_WAIT: Duration = Duration::from_secs(3600);

/// Rate limit for per-message error logs: at most this many lines per window.
const LOG_BURST: u32 = 20;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Decoding state: what turns a message into a row of its partition's batch.
pub struct Intake {
    pub(crate) decoder: JsonDecoder,
    pub(crate) batcher: Batcher,
    pub(crate) shared: Arc<Shared>,
    /// Pending-ledger batches to rebuild before normal batching resumes (exactly-once
    /// recovery); almost always empty, so the per-message check is one length test.
    pub(crate) replays: Vec<(Partition, ReplayPlan)>,
    /// Where undecodable messages go.
    pub(crate) dead_letters: DeadLetterTable,
    /// With `unknown_fields: add`: adds columns for new message fields.
    pub(crate) evolver: Option<crate::evolve::Evolver>,
    /// The pipeline's transforms, run over each batch as it is sealed (see
    /// [`crate::staging`]).
    pub(crate) stages: Stages,
    /// Partitions whose delivered messages are being re-read to bring stage state
    /// forward, each with the offset where delivery resumes (see `docs/state.md`);
    /// almost always empty.
    pub(crate) catch_ups: Vec<(Partition, i64)>,
}

/// Everything the source loop owns.
pub struct SourceLoop {
    pub(crate) consumer: GroupConsumer,
    pub(crate) intake: Intake,
    pub(crate) shared: Arc<Shared>,
    pub(crate) tx: Option<mpsc::Sender<SealedBatch>>,
    pub(crate) recycled: std::sync::mpsc::Receiver<crate::batch::Buffers>,
    pub(crate) stop: Arc<Stop>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) catch_up: Option<CatchUp>,
    pub(crate) start: StartFrom,
    pub(crate) metadata_timeout: Duration,
}

pub(crate) struct LoopState {
    pending: VecDeque<SealedBatch>,
    pub(crate) sealed: Vec<SealedBatch>,
    paused: bool,
    log_window: Instant,
    logged: u32,
    suppressed: u64,
    /// When housekeeping runs next.
    next_tick: Instant,
    /// Poll timeout computed at the last housekeeping.
    poll_timeout: Duration,
    /// Wall-clock time at the last housekeeping, for `now` columns (within one tick).
    wall: Timestamp,
    /// Messages delivered again by the consumer and dropped (already in a batch).
    redelivered: u64,
    /// Ownership changes applied by the intake that the loop has still to finish
    /// (backpressure, `--until-caught-up` targets).
    /// In the order they happened (a partition can be revoked and assigned again
    /// within one poll).
    ownership_since: Vec<OwnershipEvent>,
    /// When stage state was last reported.
    state_reported: Instant,
}

/// How often stage state sizes are reported.
const STATE_REPORT: Duration = Duration::from_secs(1);

impl SourceLoop {
    /// Runs until stopped; returns after the final commit.
    pub fn run(mut self) -> Result<(), PipelineError> {
        let mut st = LoopState {
            pending: VecDeque::new(),
            sealed: Vec::new(),
            paused: false,
            log_window: Instant::now(),
            logged: 0,
            suppressed: 0,
            next_tick: Instant::now(),
            poll_timeout: MAX_POLL,
            wall: wall_clock(),
            redelivered: 0,
            ownership_since: Vec::new(),
            state_reported: Instant::now(),
        };
        let mut idle = true;
        let mut now = Instant::now();
        let mut since_clock = 0u32;
        loop {
            // The clock is read once per CLOCK_EVERY messages while they flow (a stale
            // `now` by a few microseconds changes no decision); everything else waits
            // for the next tick.
            since_clock += 1;
            if idle || since_clock >= CLOCK_EVERY {
                now = Instant::now();
                since_clock = 0;
            }
            if idle || now >= st.next_tick {
                if self.housekeeping(now, &mut st)? {
                    break;
                }
                st.next_tick = now + TICK;
            }
            // While messages flow, poll without a timeout: librdkafka then skips its own
            // clock read; an empty queue makes the loop idle and the next poll waits.
            let timeout = if idle { st.poll_timeout } else { Duration::ZERO };
            let intake = &mut self.intake;
            idle = match self.consumer.poll(timeout, |msg| intake.handle_message(msg, now, &mut st)) {
                Ok(got) => got.is_none(),
                Err(e) => {
                    tracing::warn!(error = %e, "Kafka consumer error");
                    true
                }
            };
            if !st.sealed.is_empty() {
                self.move_sealed(&mut st)?;
            }
        }
        self.drain(st)
    }

    /// Periodic work: ownership changes, commits, backpressure, sealing aged batches,
    /// the caught-up check. Returns true when the loop must stop.
    fn housekeeping(&mut self, now: Instant, st: &mut LoopState) -> Result<bool, PipelineError> {
        if self.stop.is_requested() {
            return Ok(true);
        }
        if let Some(why) = self.shared.fatal() {
            self.stop.request(StopReason::Failure);
            return Err(PipelineError::Recovery(why));
        }
        if self.shared.has_events() {
            self.intake.apply_ownership(st);
        }
        if !st.ownership_since.is_empty() {
            self.handle_ownership(st)?;
        }
        self.commit_acks(Commit::Async)?;
        if self.intake.stages.has_state() && st.state_reported.elapsed() >= STATE_REPORT {
            self.report_state();
            st.state_reported = Instant::now();
        }
        while let Ok(buffers) = self.recycled.try_recv() {
            self.intake.batcher.recycle(buffers);
        }
        self.flush_pending(st);
        if self.catch_up.as_ref().is_some_and(CatchUp::done) && st.pending.is_empty() && self.intake.batcher.is_empty()
        {
            tracing::info!("caught up with the high watermarks seen at start");
            self.stop.request(StopReason::CaughtUp);
            return Ok(true);
        }
        // While the sink is behind (consumption paused), sealing by age would only cut
        // ever smaller batches and keep it behind; batches grow until it catches up.
        if st.pending.is_empty() {
            self.intake.batcher.seal_due(now, &mut st.sealed);
            self.move_sealed(st)?;
        }
        if st.redelivered > 0 {
            tracing::debug!(count = st.redelivered, "dropped messages delivered again by the consumer");
            st.redelivered = 0;
        }
        st.wall = wall_clock();
        st.poll_timeout = if st.paused {
            PAUSED_POLL
        } else {
            self.intake.batcher.next_deadline(now).map_or(MAX_POLL, |d| d.clamp(Duration::from_millis(1), MAX_POLL))
        };
        Ok(false)
    }
}

/// The Kafka metadata of a message, as the decoder's virtual columns see it.
#[inline]
pub(crate) fn meta_of<'m>(msg: &RawMessage<'m>, now: Timestamp) -> MessageMeta<'m> {
    MessageMeta {
        topic: msg.topic,
        partition: msg.partition,
        offset: msg.offset,
        timestamp_ms: msg.timestamp_ms,
        key: msg.key,
        now,
    }
}

/// The open batch of `topic`/`partition` for a message (opening one as `opening`
/// says, under the partition's current epoch); `None` for a message delivered again.
#[inline]
fn open_batch<'b>(
    batcher: &'b mut Batcher,
    shared: &Shared,
    topic: &str,
    partition: i32,
    opening: Opening,
) -> Option<&'b mut crate::batch::OpenBatch> {
    batcher.batch_for(topic, partition, opening, || shared.epoch_of(&Partition { topic: topic.to_string(), partition }))
}

/// Decodes one message into `batch`: its rows with their origin, or — when it cannot
/// be decoded — a dead letter (the error is returned for logging).
#[inline]
fn take_message(
    decoder: &mut JsonDecoder,
    dead_letters: &DeadLetterTable,
    batch: &mut crate::batch::OpenBatch,
    meta: &MessageMeta<'_>,
    payload: &[u8],
) -> Result<(), DecodeError> {
    match decoder.decode_rows(payload, meta, &mut batch.buffers.block) {
        Ok(rows) => {
            batch.buffers.origins.push(rows, meta.offset, meta.timestamp_ms, meta.key, payload);
            Ok(())
        }
        Err(e) => {
            batch.undecodable += 1;
            dead_letter(dead_letters, &mut batch.buffers.dead, meta, payload, &e);
            Err(e)
        }
    }
}

/// Adds an undecodable message to its batch's dead letters.
fn dead_letter(table: &DeadLetterTable, dead: &mut Block, meta: &MessageMeta<'_>, raw: &[u8], e: &DecodeError) {
    let message = match &e.column {
        Some(c) => format!("column `{c}`: {}", e.message),
        None => e.message.clone(),
    };
    let letter = DeadLetter {
        topic: meta.topic,
        partition: meta.partition,
        offset: meta.offset,
        timestamp_ms: meta.timestamp_ms,
        key: meta.key,
        raw,
        kind: e.kind.as_str(),
        message: &message,
        at: meta.now,
    };
    table.push(dead, &letter);
}

/// The wall clock as the decoder's `now` columns see it.
pub(crate) fn wall_clock() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp { secs: d.as_secs() as i64, nanos: d.subsec_nanos() }
}

impl Intake {
    /// `unknown_fields: add`: adds columns for the unknown fields of `payload`, if any
    /// (see [`crate::evolve`]) — never while a pending batch is being replayed.
    pub(crate) fn adopt_unknown_fields(&mut self, payload: &[u8], st: &mut LoopState) {
        let Some(ev) = &mut self.evolver else { return };
        if !self.replays.is_empty() {
            return;
        }
        let new = ev.new_fields(&mut self.decoder, payload);
        if new.is_empty() {
            return;
        }
        self.batcher.seal_all(&mut st.sealed);
        if let Some(decoder) = ev.add(new) {
            self.decoder = decoder;
            let dead = self.batcher.template().dead.empty_like();
            self.batcher.set_template(crate::batch::Buffers {
                block: self.decoder.new_block(),
                origins: crate::origins::RowOrigins::default(),
                dead,
            });
        }
    }
}

impl Intake {
    fn handle_message(&mut self, msg: RawMessage<'_>, now: Instant, st: &mut LoopState) {
        let RawMessage { topic, partition, offset, payload, .. } = msg;
        // A partition assigned during this poll: its recovery (replay, catch-up) is
        // set up before its first message is batched.
        if self.shared.has_events() {
            self.apply_ownership(st);
        }
        if !self.catch_ups.is_empty() && self.catch_up_message(&msg, now, st) {
            return;
        }
        if !self.replays.is_empty() && self.replay_message(&msg, now, st) {
            return;
        }
        if self.evolver.is_some() {
            self.adopt_unknown_fields(payload, st);
        }
        let limits = self.batcher.limits();
        let opening = Opening { message: offset, offset, at: now, batch_time: st.wall };
        let Some(batch) = open_batch(&mut self.batcher, &self.shared, topic, partition, opening) else {
            st.redelivered += 1;
            return;
        };
        let meta = meta_of(&msg, batch.batch_time);
        if let Err(e) = take_message(&mut self.decoder, &self.dead_letters, batch, &meta, payload) {
            if st.log_window.elapsed() >= LOG_WINDOW {
                if st.suppressed > 0 {
                    tracing::warn!(
                        suppressed = st.suppressed,
                        "more undecodable messages were dead-lettered without a log line"
                    );
                }
                st.log_window = Instant::now();
                st.logged = 0;
                st.suppressed = 0;
            }
            if st.logged < LOG_BURST {
                st.logged += 1;
                tracing::warn!(topic, partition, offset, error = %e, "dead-lettering a message that cannot be decoded");
            } else {
                st.suppressed += 1;
            }
        }
        batch.next_offset = offset + 1;
        batch.messages += 1;
        batch.payload_bytes += payload.len() as u64;
        if batch.is_full(&limits) {
            if let Some(b) = self.batcher.seal(topic, partition) {
                st.sealed.push(b);
            }
        }
    }
}

impl Intake {
    /// Routes a message of a partition whose stage state is being brought forward.
    /// Returns true when the message was re-read for the stages only; false once the
    /// partition reached the offset where delivery resumes (then it is batched as
    /// usual, or replayed).
    fn catch_up_message(&mut self, msg: &RawMessage<'_>, now: Instant, st: &mut LoopState) -> bool {
        let (topic, partition, offset) = (msg.topic, msg.partition, msg.offset);
        let Some(i) = self.catch_ups.iter().position(|(p, _)| p.partition == partition && p.topic == topic) else {
            return false;
        };
        let end = self.catch_ups[i].1;
        if offset >= end {
            // Reached (or passed, over a gap): what follows is delivered as usual.
            let _ = self.catch_ups.swap_remove(i);
            if let Some(b) = self.batcher.seal(topic, partition) {
                st.sealed.push(b);
            }
            return false;
        }
        let limits = self.batcher.limits();
        let opening = Opening { message: offset, offset, at: now, batch_time: st.wall };
        let Some(batch) = open_batch(&mut self.batcher, &self.shared, topic, partition, opening) else {
            return true; // a re-delivery
        };
        batch.catch_up = true;
        let meta = meta_of(msg, batch.batch_time);
        let _ = take_message(&mut self.decoder, &self.dead_letters, batch, &meta, msg.payload);
        batch.next_offset = offset + 1;
        batch.messages += 1;
        batch.payload_bytes += msg.payload.len() as u64;
        if offset + 1 >= end || batch.is_full(&limits) {
            if offset + 1 >= end {
                let _ = self.catch_ups.swap_remove(i);
            }
            if let Some(b) = self.batcher.seal(topic, partition) {
                st.sealed.push(b);
            }
        }
        true
    }

    /// Applies ownership changes to what the intake holds (recovery plans, open
    /// batches, stage state); the loop finishes the rest in its housekeeping.
    fn apply_ownership(&mut self, st: &mut LoopState) {
        // One event at a time, in order: a revocation followed by a new assignment of
        // the same partition must leave the new assignment's plans in place.
        for e in self.shared.take_events() {
            match &e {
                OwnershipEvent::Assigned(p, _) => {
                    self.replays.retain(|(q, _)| q != p);
                    self.catch_ups.retain(|(q, _)| q != p);
                    if let Some(plan) = self.shared.take_replay(p) {
                        self.replays.push((p.clone(), plan));
                    }
                    if let Some((_, to)) = self.shared.take_catch_up(p) {
                        self.catch_ups.push((p.clone(), to));
                    }
                }
                OwnershipEvent::Revoked(p) => {
                    self.replays.retain(|(q, _)| q != p);
                    self.catch_ups.retain(|(q, _)| q != p);
                    self.batcher.discard(std::slice::from_ref(p));
                    st.pending.retain(|b| !b.ranges.iter().any(|r| r.partition == *p));
                    st.sealed.retain(|b| !b.ranges.iter().any(|r| r.partition == *p));
                    self.stages.revoked(&p.topic, p.partition);
                }
            }
            st.ownership_since.push(e);
        }
    }
}

impl Intake {
    /// Routes a message of a partition being recovered. Returns true when the message
    /// was consumed by the replay (or lies before it); false to batch it normally.
    fn replay_message(&mut self, msg: &RawMessage<'_>, now: Instant, st: &mut LoopState) -> bool {
        let (topic, partition, offset) = (msg.topic, msg.partition, msg.offset);
        let Some(i) = self.replays.iter().position(|(p, _)| p.partition == partition && p.topic == topic) else {
            return false;
        };
        let (first, next) = (self.replays[i].1.first, self.replays[i].1.next);
        if offset < first {
            return true; // before the pending range: delivered already
        }
        if offset >= next {
            // The range ended with a gap (compaction, retention): close it.
            let (p, _) = self.replays.swap_remove(i);
            if let Some(b) = self.batcher.seal(&p.topic, p.partition) {
                st.sealed.push(b);
            }
            return false;
        }
        let plan = &self.replays[i].1;
        let opening = Opening { message: offset, offset: first, at: now, batch_time: plan.batch_time };
        let Some(batch) = open_batch(&mut self.batcher, &self.shared, topic, partition, opening) else {
            return true; // a re-delivery
        };
        if batch.replay_end.is_none() {
            batch.dead_landed.clone_from(&plan.dead_landed);
            batch.landed.clone_from(&plan.landed);
        }
        batch.replay_end = Some(next);
        // Rows that already landed are decoded too: they pass the stages with the
        // others (stage state must see them), and leave the batch after the stages.
        if plan.landed.binary_search(&offset).is_ok() {
            batch.already_landed += 1;
        }
        let meta = meta_of(msg, plan.batch_time);
        let _ = take_message(&mut self.decoder, &self.dead_letters, batch, &meta, msg.payload);
        batch.next_offset = offset + 1;
        batch.messages += 1;
        batch.payload_bytes += msg.payload.len() as u64;
        if offset + 1 >= next {
            self.replays.swap_remove(i);
            if let Some(b) = self.batcher.seal(topic, partition) {
                st.sealed.push(b);
            }
        }
        true
    }
}

impl SourceLoop {
    fn move_sealed(&mut self, st: &mut LoopState) -> Result<(), PipelineError> {
        self.count_sealed(st)?;
        if !st.pending.is_empty() {
            self.flush_pending(st);
        }
        Ok(())
    }

    /// Runs the stages over sealed batches, counts them as consumed and queues them
    /// for the sink (the one place that does, for the normal path and the drain alike).
    fn count_sealed(&mut self, st: &mut LoopState) -> Result<(), PipelineError> {
        for mut b in st.sealed.drain(..) {
            match crate::staging::run_stages(&mut self.intake.stages, &self.intake.dead_letters, &mut b) {
                Ok(d) if b.catch_up => {
                    let _ = d; // verdicts of delivered rows: thrown away
                }
                Ok(d) => {
                    Stats::add(&self.stats.rows_filtered, d.filtered);
                    Stats::add(&self.stats.rows_deduplicated, d.deduplicated);
                }
                Err(e) => {
                    self.stop.request(StopReason::Failure);
                    return Err(e.into());
                }
            }
            crate::staging::drop_landed(&mut b);
            if b.catch_up {
                // Delivered before the restart: its state is written down at once, the
                // rows go nowhere.
                for r in b.ranges.iter() {
                    if let Err(e) =
                        self.intake.stages.delivered(&r.partition.topic, r.partition.partition, r.next_offset)
                    {
                        self.stop.request(StopReason::Failure);
                        return Err(e.into());
                    }
                }
                Stats::add(&self.stats.caught_up, b.messages);
                self.intake.batcher.recycle(b.buffers);
                continue;
            }
            Stats::add(&self.stats.messages, b.messages);
            Stats::add(&self.stats.undecodable, b.undecodable);
            Stats::add(&self.stats.bytes_consumed, b.payload_bytes);
            st.pending.push_back(b);
        }
        Ok(())
    }

    /// Hands pending batches to the sink; pauses or resumes consumption accordingly.
    fn flush_pending(&mut self, st: &mut LoopState) {
        while let Some(b) = st.pending.pop_front() {
            let Some(tx) = &self.tx else { break };
            self.shared.begin(&b);
            match tx.try_send(b) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) | Err(TrySendError::Closed(b)) => {
                    self.shared.abandon(&b);
                    st.pending.push_front(b);
                    break;
                }
            }
        }
        // A wave of batches sealed together (every partition's at the same max_wait)
        // may wait here briefly without pausing: librdkafka's pause drops what it
        // prefetched for the partitions, and resuming fetches it again (on Tansu's memory
        // storage, from inside a stored batch, which loses the rest of that batch).
        let waiting: usize = st.pending.iter().map(|b| b.buffers.byte_len()).sum();
        let want_pause =
            waiting > self.intake.batcher.limits().max_bytes / PENDING_SHARE || st.pending.len() > PENDING_BATCHES;
        if want_pause != st.paused {
            match self.consumer.set_paused(want_pause) {
                Ok(()) => {
                    st.paused = want_pause;
                    tracing::debug!(paused = want_pause, "backpressure");
                }
                Err(e) => tracing::warn!(error = %e, "could not pause/resume partitions"),
            }
        }
    }

    /// Finishes ownership changes the intake applied: backpressure and
    /// `--until-caught-up` bookkeeping.
    fn handle_ownership(&mut self, st: &mut LoopState) -> Result<(), PipelineError> {
        let mut assigned: Vec<Partition> = Vec::new();
        for e in std::mem::take(&mut st.ownership_since) {
            match e {
                OwnershipEvent::Assigned(p, _) => assigned.push(p),
                OwnershipEvent::Revoked(p) => {
                    assigned.retain(|q| *q != p);
                    if let Some(c) = &mut self.catch_up {
                        c.revoked(&p);
                    }
                }
            }
        }
        if !assigned.is_empty() {
            if st.paused {
                // Newly assigned partitions start unpaused; keep backpressure whole.
                st.paused = false;
                self.flush_pending(st);
            }
            if self.catch_up.is_some() {
                self.record_targets(&assigned)?;
            }
        }
        Ok(())
    }

    /// For `--until-caught-up`: where each new partition starts and where it must get to.
    fn record_targets(&mut self, assigned: &[Partition]) -> Result<(), PipelineError> {
        let committed = self.consumer.committed(assigned, self.metadata_timeout)?;
        for (p, committed) in assigned.iter().zip(committed) {
            // Where consumption really starts: recovery's choice (exactly-once), else the
            // committed offset, else the `start` policy.
            let start = self.shared.start_of(p).or(committed);
            let (low, high) = self.consumer.watermarks(p, self.metadata_timeout)?;
            let position = start.unwrap_or(match self.start {
                StartFrom::Earliest => low,
                StartFrom::Latest => high,
            });
            tracing::info!(topic = %p.topic, partition = p.partition, position, high, "catch-up target");
            if let Some(c) = &mut self.catch_up {
                c.assigned(p.clone(), position, high);
            }
        }
        Ok(())
    }

    /// Commits what the sink acknowledged — after stateful stages wrote down what
    /// those rows did to their state (so the state never covers more than was
    /// delivered, and a crash between the two only lengthens the next catch-up).
    fn commit_acks(&mut self, mode: Commit) -> Result<(), PipelineError> {
        let acks = self.shared.take_acks();
        if acks.is_empty() {
            return Ok(());
        }
        if self.intake.stages.has_state() {
            for (p, o) in &acks {
                if let Err(e) = self.intake.stages.delivered(&p.topic, p.partition, *o) {
                    self.stop.request(StopReason::Failure);
                    return Err(e.into());
                }
            }
        }
        if let Some(c) = &mut self.catch_up {
            acks.iter().for_each(|(p, o)| c.delivered(p, *o));
        }
        match self.consumer.commit(&acks, mode) {
            Ok(()) => {
                Stats::add(&self.stats.commits, 1);
                crate::failpoint::hit("after_commit");
            }
            Err(e) => tracing::warn!(error = %e, "offset commit failed; it is retried with the next acknowledgement"),
        }
        Ok(())
    }

    /// Publishes stage state sizes (and restores) for metrics and status.
    fn report_state(&self) {
        let partitions = self.intake.stages.state();
        let restores = self
            .shared
            .state
            .iter()
            .flat_map(|(n, store)| store.restores().into_iter().map(move |r| (n.clone(), r)))
            .collect();
        *self.stats.state.lock().unwrap_or_else(|e| e.into_inner()) =
            crate::stats::StateReport { partitions, restores };
    }

    /// Draining: flush what is open (unless the stop is a failure), wait for the sink,
    /// commit synchronously.
    fn drain(mut self, mut st: LoopState) -> Result<(), PipelineError> {
        let flush = self.stop.reason() != Some(StopReason::Failure);
        if flush {
            self.intake.batcher.seal_all(&mut st.sealed);
            self.count_sealed(&mut st)?;
            if let Some(tx) = &self.tx {
                while let Some(b) = st.pending.pop_front() {
                    self.shared.begin(&b);
                    if let Err(e) = tx.blocking_send(b) {
                        self.shared.abandon(&e.0);
                        break;
                    }
                }
            }
        }
        drop(self.tx.take());
        let idle = self.shared.wait_idle(DRAIN_WAIT);
        self.commit_acks(Commit::Sync)?;
        if self.intake.stages.has_state() {
            // What was delivered is written down now (the state's writer coalesces
            // writes for a while), so the next start has nothing to catch up.
            self.intake.stages.flush()?;
            self.report_state();
        }
        if !idle && flush {
            tracing::warn!("shutdown: some batches were not delivered; they will be read again on the next start");
        }
        Ok(())
    }
}
