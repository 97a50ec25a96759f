//! Deterministic crash points for fault tests.
//!
//! `PENSTOCK_FAILPOINT=NAME` (or `NAME:N`, the N-th time) makes the process abort —
//! no destructors, no flush, no commit, like `kill -9` — when it reaches that point.
//! Points: `before_ledger_pending`, `after_ledger_pending`, `after_insert`,
//! `after_dead_letters`, `after_ledger_done`, `after_commit`; for the Kafka sink `publish_after_recovery`,
//! `publish_before_send`, `publish_after_send`, `publish_after_flush`; for stage state
//! `after_changelog_write` (before the local write), `after_state_write`,
//! `during_restore`. The check is one comparison per batch when unset.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn parse(value: &str) -> Option<(String, u64)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match value.split_once(':') {
        Some((name, n)) => Some((name.to_string(), n.parse().ok().filter(|n| *n > 0)?)),
        None => Some((value.to_string(), 1)),
    }
}

/// Aborts the process if the configured failpoint is `name` and this is its N-th hit.
pub fn hit(name: &str) {
    let Some((want, nth)) = CONFIG.get_or_init(|| std::env::var("PENSTOCK_FAILPOINT").ok().and_then(|v| parse(&v)))
    else {
        return;
    };
    if want != name {
        return;
    }
    let n = HITS.fetch_add(1, Ordering::Relaxed) + 1;
    if n == *nth {
        eprintln!("failpoint `{name}` reached (hit {n}): aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        assert_eq!(super::parse("after_insert"), Some(("after_insert".into(), 1)));
        assert_eq!(super::parse("after_insert:3"), Some(("after_insert".into(), 3)));
        assert_eq!(super::parse("x:0"), None);
        assert_eq!(super::parse(""), None);
    }
}
