//! Holding a target rate: each producer thread sends its `i`-th event no earlier than
//! `start + i / rate`, so short stalls are caught up and the long-run rate is exact.
//!
//! Sleeping per event would cost more than producing at 50,000 events/s, so a thread
//! only sleeps once it is at least [`SLEEP_AHEAD`] early: events leave in bursts of at
//! most that length, which no consumer can tell from an even stream.

use std::time::{Duration, Instant};

/// The smallest lead worth a sleep.
pub(crate) const SLEEP_AHEAD: Duration = Duration::from_micros(500);

/// The schedule of one producer thread.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    /// Nanoseconds between two events of this thread; 0 = unpaced.
    interval_ns: f64,
}

impl Pacer {
    /// A schedule of `rate` events per second starting at `start` (`rate` 0: no limit).
    pub fn new(start: Instant, rate: f64) -> Self {
        let interval_ns = if rate > 0.0 { 1e9 / rate } else { 0.0 };
        Pacer { start, interval_ns }
    }

    /// When event `i` (0-based) is due.
    pub fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_nanos((i as f64 * self.interval_ns) as u64)
    }

    /// How long to sleep before sending event `i` at `now`: `None` while it is due, or
    /// early by less than [`SLEEP_AHEAD`].
    pub fn wait_before(&self, i: u64, now: Instant) -> Option<Duration> {
        if self.interval_ns == 0.0 {
            return None;
        }
        let lead = self.due(i).checked_duration_since(now)?;
        (lead >= SLEEP_AHEAD).then_some(lead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_due_at_even_intervals() {
        let t0 = Instant::now();
        let p = Pacer::new(t0, 25_000.0);
        assert_eq!(p.due(0), t0);
        assert_eq!(p.due(25_000) - t0, Duration::from_secs(1));
        assert_eq!(p.due(1) - t0, Duration::from_micros(40));
    }

    #[test]
    fn sleeps_only_when_far_enough_ahead() {
        let t0 = Instant::now();
        let p = Pacer::new(t0, 1_000.0); // one event per ms
        assert_eq!(p.wait_before(0, t0), None, "due now");
        assert_eq!(p.wait_before(10, t0), Some(Duration::from_millis(10)));
        assert_eq!(p.wait_before(10, t0 + Duration::from_micros(9_600)), None, "early by 0.4 ms: send");
        assert_eq!(p.wait_before(3, t0 + Duration::from_secs(1)), None, "late: catch up without sleeping");
    }

    #[test]
    fn unpaced_never_sleeps() {
        let t0 = Instant::now();
        let p = Pacer::new(t0, 0.0);
        assert_eq!(p.wait_before(1_000_000, t0), None);
    }
}
