//! What every run into Kafka shares (ClickHouse → Kafka, Kafka → Kafka): the worker
//! thread with its span, signals and telemetry state around it; the loop of producer
//! sessions, each ended by an error followed by recovery; and how a session ends at a
//! stop.

use crate::error::PipelineError;
use crate::publish::outbox::SessionEnded;
use crate::publish::run::{backoff, PublishSummary, SETTLE_AFTER_SESSION};
use crate::publish::stats::PublishStats;
use crate::runner::RunOptions;
use crate::stop::{Stop, StopReason};
use penstock_kafka::WriterLease;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How one session ended.
pub(crate) enum Outcome {
    /// Stopped as asked (signal or caught up), everything acknowledged.
    Done,
    /// The session ended on an error: recover and continue.
    Recover(SessionEnded),
}

/// A producer session as the shutdown sees it.
pub(crate) trait Closing {
    /// Waits until everything sent is acknowledged, the session ends, or `timeout`.
    fn flush(&mut self, timeout: Duration) -> Result<(), SessionEnded>;
    /// Messages sent and not yet acknowledged.
    fn in_flight(&self) -> usize;
    /// Drops the producer.
    fn close(self);
}

/// Runs `work` on a blocking thread in the pipeline's span while signals are watched,
/// keeps the telemetry's state, and sums the run up (which began at `started`).
pub(crate) async fn drive(
    started: Instant,
    name: &str,
    opts: &RunOptions,
    stop: &Arc<Stop>,
    stats: &Arc<PublishStats>,
    work: impl FnOnce() -> Result<(), PipelineError> + Send + 'static,
) -> Result<PublishSummary, PipelineError> {
    if let Some(t) = &opts.telemetry {
        t.attach_publish(stats.clone());
        t.set_state(crate::telemetry::State::Running);
    }
    let signals = tokio::spawn(crate::runner::watch_signals(stop.clone(), opts.shutdown_grace));
    let span = tracing::info_span!("pipeline", name = %name);
    let worker = tokio::task::spawn_blocking(move || {
        let _in = span.enter();
        work()
    });
    let result = worker.await.map_err(|e| PipelineError::Internal(format!("pipeline thread: {e}")))?;
    signals.abort();
    if let Some(t) = &opts.telemetry {
        match &result {
            Err(e) => {
                t.set_error(&e.to_string());
                t.set_state(crate::telemetry::State::Failed);
            }
            Ok(()) => t.set_state(crate::telemetry::State::Stopped),
        }
    }
    result?;
    let summary = PublishSummary {
        stats: stats.snapshot(),
        reason: stop.reason().unwrap_or(StopReason::Signal),
        elapsed: started.elapsed(),
    };
    tracing::info!(?summary, "pipeline stopped");
    Ok(summary)
}

/// Runs sessions until one ends as asked; after each error, waits (backing off, and at
/// least [`SETTLE_AFTER_SESSION`]) before the next one recovers. A session starts only
/// while this process holds the writer lease.
pub(crate) fn sessions(
    stop: &Stop,
    stats: &PublishStats,
    lease: Option<&WriterLease>,
    mut session: impl FnMut() -> Result<Outcome, PipelineError>,
) -> Result<(), PipelineError> {
    let mut failures = 0u32;
    loop {
        if let Some(lease) = lease {
            if !lease.held() && !acquire(stop, lease) {
                return Ok(());
            }
        }
        match session()? {
            Outcome::Done => return Ok(()),
            Outcome::Recover(why) => {
                PublishStats::add(&stats.recoveries, 1);
                failures += 1;
                let wait = backoff(failures).max(SETTLE_AFTER_SESSION);
                tracing::warn!(error = %why, ?wait, "producer session ended; recovering from the output topic");
                std::thread::sleep(wait);
                if stop.is_hard() {
                    return Err(PipelineError::Interrupted);
                }
            }
        }
    }
}

/// Waits for the writer lease; false when a stop came first. Once it is held, waits
/// [`SETTLE_AFTER_SESSION`] more, so the requests a former writer had on the wire land
/// before recovery reads the tails.
fn acquire(stop: &Stop, lease: &WriterLease) -> bool {
    let started = Instant::now();
    let mut said = false;
    while !lease.wait(Duration::from_secs(1), || stop.is_requested()) {
        if stop.is_requested() {
            return false;
        }
        if !said && started.elapsed() > Duration::from_secs(3) {
            tracing::warn!(
                group = lease.group(),
                instance = lease.instance(),
                "waiting for the writer lease: another instance writes this pipeline (or has just stopped)"
            );
            said = true;
        }
    }
    tracing::info!(group = lease.group(), instance = lease.instance(), waited = ?started.elapsed(), "holding the writer lease");
    std::thread::sleep(SETTLE_AFTER_SESSION);
    true
}

/// Polls the lease (call every few hundred milliseconds at most); the session must end
/// when it returns false. Without a lease, always true.
pub(crate) fn still_writer(lease: Option<&WriterLease>) -> bool {
    lease.is_none_or(|l| {
        l.poll();
        l.held()
    })
}

/// Flushes at a stop (within the grace period); a session error at this point still
/// recovers at the next start.
pub(crate) fn finish(stop: &Stop, opts: &RunOptions, mut session: impl Closing) -> Result<Outcome, PipelineError> {
    let grace = if stop.is_hard() { Duration::ZERO } else { opts.shutdown_grace };
    let flushed = session.flush(grace);
    let pending = session.in_flight();
    session.close();
    match flushed {
        Ok(()) if pending == 0 => Ok(Outcome::Done),
        Ok(()) => Err(PipelineError::Interrupted),
        Err(e) if !stop.is_requested() => Ok(Outcome::Recover(e)),
        Err(e) => {
            tracing::warn!(error = %e, "stopped with a failed delivery: the next start recovers it");
            Err(PipelineError::Interrupted)
        }
    }
}

impl Closing for crate::publish::session::Session {
    fn flush(&mut self, timeout: Duration) -> Result<(), SessionEnded> {
        crate::publish::session::Session::flush(self, timeout)
    }
    fn in_flight(&self) -> usize {
        crate::publish::session::Session::in_flight(self)
    }
    fn close(self) {
        crate::publish::session::Session::close(self);
    }
}

impl Closing for crate::relay::session::RelaySession {
    fn flush(&mut self, timeout: Duration) -> Result<(), SessionEnded> {
        crate::relay::session::RelaySession::flush(self, timeout)
    }
    fn in_flight(&self) -> usize {
        crate::relay::session::RelaySession::in_flight(self)
    }
    fn close(self) {
        crate::relay::session::RelaySession::close(self);
    }
}
