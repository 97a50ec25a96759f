//! Who owns which partition, under which epoch, and what may be committed: the pure
//! state behind [`crate::shared::Shared`], with no lock, no Kafka and no clock, so every
//! rule is a unit test.
//!
//! Each partition has an *epoch* that changes whenever it is assigned or revoked. A
//! batch carries the epoch it was read under; it is acknowledged (its range becomes
//! committable) only if that epoch is still current, so nothing read before a
//! revocation is committed after it, and nothing read under an old assignment is
//! committed under a new one.

use crate::exactly_once::recovery::ReplayPlan;
use penstock_kafka::Partition;
use std::collections::HashMap;

/// What one partition's ownership holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PartState {
    pub(crate) epoch: u64,
    pub(crate) owned: bool,
    pub(crate) in_flight: u32,
    /// Next offset after the last inserted batch, not yet committed.
    pub(crate) acked: Option<i64>,
    /// Next offset after the last delivered batch under the current ownership (kept,
    /// for lag reporting).
    pub(crate) delivered: Option<i64>,
    /// Where the current ownership started (recovery's choice or the committed offset).
    pub(crate) base: Option<i64>,
    /// Kafka timestamp (ms) of the newest delivered row, for lag in seconds.
    pub(crate) delivered_ms: Option<i64>,
    /// Newest exactly-once ledger sequence number used or seen for the partition.
    pub(crate) seq: u64,
    /// The offset the last assignment started at, when recovery chose it (the ledger
    /// can be ahead of Kafka's committed offset after a crash before the commit).
    pub(crate) start: Option<i64>,
}

/// A change of ownership, for the source loop to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipEvent {
    /// Assigned under a new epoch.
    Assigned(Partition, u64),
    /// Revoked.
    Revoked(Partition),
}

/// What a batch says about itself when it is acknowledged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivered {
    /// The epoch it was read under.
    pub(crate) epoch: u64,
    /// One past its last offset.
    pub(crate) next_offset: i64,
    /// Kafka timestamp (ms) of its last row, when known.
    pub(crate) last_timestamp_ms: Option<i64>,
}

/// Ownership of every partition this process has seen.
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    pub(crate) parts: HashMap<Partition, PartState>,
    pub(crate) events: Vec<OwnershipEvent>,
    next_epoch: u64,
    pub(crate) sink_stopped: bool,
    /// Batches to rebuild, by partition, decided at assignment.
    pub(crate) replays: HashMap<Partition, ReplayPlan>,
    /// Ranges to re-read for stage state only, by partition, decided at assignment.
    pub(crate) catch_ups: HashMap<Partition, (i64, i64)>,
    /// Set when recovery failed: nothing may be inserted or committed any more.
    pub(crate) fatal: Option<String>,
}

impl Ownership {
    /// `p` is assigned: a new epoch, nothing acknowledged yet; in-flight counts, the
    /// start chosen by recovery and ledger sequence numbers are kept.
    pub(crate) fn assign(&mut self, p: &Partition) -> u64 {
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        let s = self.parts.entry(p.clone()).or_default();
        *s = PartState {
            epoch,
            owned: true,
            in_flight: s.in_flight,
            base: s.base,
            seq: s.seq,
            start: s.start,
            ..PartState::default()
        };
        self.events.push(OwnershipEvent::Assigned(p.clone(), epoch));
        epoch
    }

    /// `p` is revoked: a new epoch (so its in-flight batches become stale) and the
    /// offset to commit before it moves on, if any was acknowledged.
    pub(crate) fn revoke(&mut self, p: &Partition) -> Option<i64> {
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        let commit = self.parts.get_mut(p).and_then(|s| {
            s.owned = false;
            s.epoch = epoch;
            s.acked.take()
        });
        self.events.push(OwnershipEvent::Revoked(p.clone()));
        commit
    }

    /// True when any of `partitions` has a batch in flight.
    pub(crate) fn busy(&self, partitions: &[Partition]) -> bool {
        partitions.iter().any(|p| self.parts.get(p).is_some_and(|s| s.in_flight > 0))
    }

    /// True when any partition has a batch in flight.
    pub(crate) fn any_busy(&self) -> bool {
        self.parts.values().any(|p| p.in_flight > 0)
    }

    /// A batch of `p` was handed to the sink.
    pub(crate) fn begin(&mut self, p: &Partition) {
        if let Some(s) = self.parts.get_mut(p) {
            s.in_flight += 1;
        }
    }

    /// True when `p` is still owned under `epoch` and nothing is fatal.
    pub(crate) fn is_current(&self, p: &Partition, epoch: u64) -> bool {
        self.fatal.is_none() && self.parts.get(p).is_some_and(|s| s.owned && s.epoch == epoch)
    }

    /// A batch of `p` was inserted (or had nothing to insert); true when its range may
    /// be committed (the epoch is still current).
    pub(crate) fn acknowledge(&mut self, p: &Partition, d: Delivered) -> bool {
        let Some(s) = self.parts.get_mut(p) else { return false };
        s.in_flight = s.in_flight.saturating_sub(1);
        let current = s.owned && s.epoch == d.epoch;
        if current {
            s.acked = Some(s.acked.map_or(d.next_offset, |a| a.max(d.next_offset)));
            s.delivered = Some(s.delivered.map_or(d.next_offset, |a| a.max(d.next_offset)));
            if let Some(ms) = d.last_timestamp_ms {
                s.delivered_ms = Some(s.delivered_ms.map_or(ms, |m| m.max(ms)));
            }
        }
        current
    }

    /// A batch of `p` will not be inserted (stale epoch, or shutdown).
    pub(crate) fn abandon(&mut self, p: &Partition) {
        if let Some(s) = self.parts.get_mut(p) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }

    /// Owned partitions with the offset delivery reached (or where it started) and the
    /// newest delivered Kafka timestamp, sorted.
    pub(crate) fn owned(&self) -> Vec<(Partition, Option<i64>, Option<i64>)> {
        let mut out: Vec<_> = self
            .parts
            .iter()
            .filter(|(_, s)| s.owned)
            .map(|(p, s)| (p.clone(), s.delivered.or(s.base), s.delivered_ms))
            .collect();
        out.sort_by(|a, b| (&a.0.topic, a.0.partition).cmp(&(&b.0.topic, b.0.partition)));
        out
    }

    /// Acknowledged offsets of owned partitions not yet taken, to commit.
    pub(crate) fn take_acks(&mut self) -> Vec<(Partition, i64)> {
        self.parts
            .iter_mut()
            .filter(|(_, s)| s.owned)
            .filter_map(|(p, s)| s.acked.take().map(|o| (p.clone(), o)))
            .collect()
    }

    /// A ledger sequence number for a new entry of `p`: above every one used or seen,
    /// and at least `now` (nanoseconds), so a restarted process stays above too.
    pub(crate) fn next_seq(&mut self, p: &Partition, now: u64) -> u64 {
        let s = self.parts.entry(p.clone()).or_default();
        s.seq = now.max(s.seq + 1);
        s.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        Partition { topic: "t".into(), partition: n }
    }

    fn delivered(epoch: u64, next_offset: i64) -> Delivered {
        Delivered { epoch, next_offset, last_timestamp_ms: Some(next_offset * 10) }
    }

    #[test]
    fn a_batch_of_the_current_epoch_becomes_committable_once() {
        let mut o = Ownership::default();
        let e = o.assign(&p(0));
        o.begin(&p(0));
        assert!(o.is_current(&p(0), e) && o.busy(&[p(0)]));
        assert!(o.acknowledge(&p(0), delivered(e, 100)));
        assert!(!o.busy(&[p(0)]));
        assert_eq!(o.take_acks(), vec![(p(0), 100)]);
        assert_eq!(o.take_acks(), vec![], "taken once");
        assert_eq!(o.owned(), vec![(p(0), Some(100), Some(1000))]);
    }

    #[test]
    fn a_batch_read_before_a_revocation_is_never_committed() {
        let mut o = Ownership::default();
        let e = o.assign(&p(0));
        o.begin(&p(0));
        assert_eq!(o.revoke(&p(0)), None);
        assert!(!o.is_current(&p(0), e));
        assert!(!o.acknowledge(&p(0), delivered(e, 50)), "stale after the revocation");
        // Reassigned: the old epoch's batch stays stale under the new ownership too.
        let e2 = o.assign(&p(0));
        assert!(e2 > e);
        assert!(!o.acknowledge(&p(0), delivered(e, 60)));
        assert_eq!(o.take_acks(), vec![]);
        assert_eq!(
            o.events,
            vec![OwnershipEvent::Assigned(p(0), e), OwnershipEvent::Revoked(p(0)), OwnershipEvent::Assigned(p(0), e2)]
        );
    }

    #[test]
    fn a_revocation_hands_over_the_acknowledged_offset() {
        let mut o = Ownership::default();
        let e = o.assign(&p(1));
        for next in [10, 30, 20] {
            o.begin(&p(1));
            o.acknowledge(&p(1), delivered(e, next));
        }
        assert_eq!(o.revoke(&p(1)), Some(30), "the highest acknowledged offset");
        assert_eq!(o.owned(), vec![], "no longer owned");
    }

    #[test]
    fn a_reassignment_keeps_in_flight_counts_and_ledger_sequence() {
        let mut o = Ownership::default();
        o.assign(&p(0));
        o.begin(&p(0));
        let s1 = o.next_seq(&p(0), 5);
        assert_eq!(s1, 5);
        assert_eq!(o.next_seq(&p(0), 1), 6, "above every one used, even if the clock went back");
        o.revoke(&p(0));
        o.assign(&p(0));
        assert!(o.any_busy(), "the batch in flight still counts");
        o.abandon(&p(0));
        assert!(!o.any_busy());
        assert_eq!(o.next_seq(&p(0), 0), 7);
    }

    #[test]
    fn nothing_is_current_after_a_fatal_error() {
        let mut o = Ownership::default();
        let e = o.assign(&p(0));
        o.fatal = Some("ledger unreadable".into());
        assert!(!o.is_current(&p(0), e));
    }
}
