//! One retry policy for every ClickHouse request — the sink's inserts and ledger
//! writes, recovery's ledger reads, a ClickHouse source's reads — so a passing outage
//! is ridden out the same way everywhere: capped exponential backoff (from the sink's
//! `retry:` settings where there are some); errors the server classifies as permanent end at once; unknown
//! server codes get a limited number of attempts.

use penstock_clickhouse::RetryHint;
use std::time::Duration;

/// Unknown server errors are retried this many times before being treated as permanent.
pub const LIMITED_RETRIES: u32 = 8;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Stop: the error is the answer.
    GiveUp,
}

/// The policy.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    backoff: penstock_config::RetryPolicy,
    /// Attempts in all, whatever the error (`None`: unbounded, until stopped).
    max_attempts: Option<u32>,
}

impl RetryPolicy {
    /// Backoff from the sink's `retry:` settings, unbounded for transient errors.
    pub fn new(backoff: penstock_config::RetryPolicy) -> Self {
        RetryPolicy { backoff, max_attempts: None }
    }

    /// Backoff from `initial` doubling up to `max` (for sources without `retry:`).
    pub const fn fixed(initial: Duration, max: Duration) -> Self {
        RetryPolicy {
            backoff: penstock_config::RetryPolicy { initial_backoff: initial, max_backoff: max },
            max_attempts: None,
        }
    }

    /// The same, giving up after `n` attempts in all (a caller that must answer in
    /// bounded time, such as a rebalance callback).
    pub fn at_most(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }

    /// After attempt number `attempt` (0-based) failed with `hint`.
    pub fn after(&self, attempt: u32, hint: RetryHint) -> Next {
        let out_of_attempts = self.max_attempts.is_some_and(|n| attempt + 1 >= n);
        match hint {
            RetryHint::Permanent => Next::GiveUp,
            RetryHint::RetryLimited if attempt >= LIMITED_RETRIES => Next::GiveUp,
            _ if out_of_attempts => Next::GiveUp,
            _ => Next::Retry(self.backoff.backoff(attempt)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(penstock_config::RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        })
    }

    #[test]
    fn transient_errors_back_off_exponentially_up_to_the_cap() {
        let p = policy();
        let waits: Vec<Next> = (0..6).map(|a| p.after(a, RetryHint::Retry)).collect();
        let ms = |n| Next::Retry(Duration::from_millis(n));
        assert_eq!(waits, vec![ms(100), ms(200), ms(400), ms(800), ms(1600), ms(2000)]);
        assert_eq!(p.after(1000, RetryHint::Retry), ms(2000), "unbounded");
    }

    #[test]
    fn permanent_errors_stop_at_once_and_unknown_ones_after_a_few() {
        let p = policy();
        assert_eq!(p.after(0, RetryHint::Permanent), Next::GiveUp);
        assert!(matches!(p.after(LIMITED_RETRIES - 1, RetryHint::RetryLimited), Next::Retry(_)));
        assert_eq!(p.after(LIMITED_RETRIES, RetryHint::RetryLimited), Next::GiveUp);
    }

    #[test]
    fn a_bounded_caller_gives_up_after_its_attempts() {
        let p = policy().at_most(3);
        assert!(matches!(p.after(1, RetryHint::Retry), Next::Retry(_)));
        assert_eq!(p.after(2, RetryHint::Retry), Next::GiveUp);
    }
}
