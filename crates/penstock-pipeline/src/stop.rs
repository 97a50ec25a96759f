//! Stopping a run: a graceful request (flush, commit, exit) and a hard stop (give up on
//! pending inserts; they are re-read next time).

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Why the run is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--until-caught-up` reached its targets.
    CaughtUp,
    /// A component failed.
    Failure,
}

/// Shared stop flags.
#[derive(Debug)]
pub struct Stop {
    requested: AtomicBool,
    reason: std::sync::Mutex<Option<StopReason>>,
    hard: watch::Sender<bool>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop { requested: AtomicBool::new(false), reason: std::sync::Mutex::new(None), hard: watch::channel(false).0 }
    }
}

impl Stop {
    /// Asks for a graceful stop (the first reason given is kept).
    pub fn request(&self, reason: StopReason) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.requested.store(true, Ordering::Release);
    }

    /// True once a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// The first reason given.
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops retrying now.
    pub fn hard_stop(&self) {
        self.request(StopReason::Signal);
        let _ = self.hard.send(true);
    }

    /// True after a hard stop.
    pub fn is_hard(&self) -> bool {
        *self.hard.borrow()
    }

    /// Resolves when a hard stop happens.
    pub async fn hard_stopped(&self) {
        let mut rx = self.hard.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}
