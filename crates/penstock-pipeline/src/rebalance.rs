//! librdkafka's rebalance callbacks, as the pipeline answers them: recover each assigned
//! partition from the exactly-once ledger (where it starts, which batch to rebuild), and
//! on revocation wait (bounded) for the partition's in-flight batches, then hand their
//! acknowledged offsets over to be committed before the partition moves on.

use crate::shared::Shared;
use penstock_kafka::{Partition, RebalanceHook};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a revocation waits for in-flight inserts before abandoning them.
const REVOKE_WAIT: Duration = Duration::from_secs(30);

impl RebalanceHook for Shared {
    fn assigning(&self, partitions: &[Partition], committed: &[Option<i64>]) -> Vec<Option<i64>> {
        let starts = self.recover_delivery(partitions, committed);
        if self.state.is_empty() {
            return starts;
        }
        partitions
            .iter()
            .zip(committed)
            .zip(starts)
            .map(|((p, c), start)| self.prepare_state(p, start.or(*c), start))
            .collect()
    }

    fn assigned(&self, partitions: &[Partition]) {
        let mut g = self.lock();
        for p in partitions {
            g.assign(p);
        }
        drop(g);
        self.events_pending.store(true, Ordering::Release);
    }

    fn revoking(&self, partitions: &[Partition]) -> Vec<(Partition, i64)> {
        if !self.wait_until(REVOKE_WAIT, |o| !o.busy(partitions)) {
            tracing::warn!(
                "in-flight batches of revoked partitions did not finish in {REVOKE_WAIT:?}; abandoning them"
            );
        }
        let mut g = self.lock();
        let commits = partitions.iter().filter_map(|p| g.revoke(p).map(|o| (p.clone(), o))).collect();
        drop(g);
        self.events_pending.store(true, Ordering::Release);
        commits
    }

    fn committed(&self, result: Result<(), String>, offsets: &[(Partition, i64)]) {
        if let Err(e) = result {
            tracing::warn!(error = %e, ?offsets, "offset commit failed; the offsets are committed again with the next batch");
        } else {
            tracing::debug!(?offsets, "offsets committed");
        }
    }
}

impl Shared {
    /// Stage state of a newly assigned partition whose delivery resumes at `delivered`
    /// (`start`: the offset recovery chose, if it chose): each store is prepared
    /// (restored from its changelog when it has no local state); when the oldest
    /// covers less than was delivered (a store with no state covers nothing: offset
    /// 0), consumption starts there and `[covers, delivered)` is re-read for the
    /// stages only. Returns where the partition starts.
    fn prepare_state(&self, p: &Partition, delivered: Option<i64>, start: Option<i64>) -> Option<i64> {
        let mut from: Option<i64> = None;
        for (name, store) in &self.state {
            match store.prepare(&p.topic, p.partition, delivered) {
                Ok(Some(c)) => from = Some(from.map_or(c, |f| f.min(c))),
                // No state anywhere (never written, or lost with no changelog to restore
                // from, or lost before its first write reached the changelog): it
                // covers nothing, so everything delivered is re-read from the start.
                // (Starting at `delivered` with an empty state let a duplicate of a row
                // delivered before the crash pass as new.)
                Ok(None) => from = Some(0),
                Err(e) => {
                    let why =
                        format!("cannot prepare the state of stage `{name}` for {}/{}: {e}", p.topic, p.partition);
                    tracing::error!("{why}");
                    self.lock().fatal.get_or_insert(why);
                    return start;
                }
            }
        }
        match (from, delivered) {
            (Some(from), Some(to)) if from < to => {
                tracing::info!(topic = %p.topic, partition = p.partition, from, to, "re-reading delivered messages to bring stage state forward");
                let _ = self.lock().catch_ups.insert(p.clone(), (from, to));
                Some(from)
            }
            _ => {
                let _ = self.lock().catch_ups.remove(p);
                start
            }
        }
    }

    /// Where each newly assigned partition resumes delivery: the exactly-once ledger's
    /// answer (and the batch to rebuild), or the committed offset.
    fn recover_delivery(&self, partitions: &[Partition], committed: &[Option<i64>]) -> Vec<Option<i64>> {
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
}
