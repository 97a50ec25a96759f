//! `--until-caught-up`: has every owned partition reached the high watermark it had
//! when this process first got it? Pure bookkeeping fed by the source loop.

use penstock_kafka::Partition;
use std::collections::{HashMap, HashSet};

/// Targets and positions per partition.
#[derive(Debug, Default)]
pub struct CatchUp {
    targets: HashMap<Partition, i64>,
    positions: HashMap<Partition, i64>,
    owned: HashSet<Partition>,
}

impl CatchUp {
    /// A partition was assigned; `position` is where consumption starts, `high` its
    /// high watermark now. The first target recorded for a partition is kept.
    pub fn assigned(&mut self, p: Partition, position: i64, high: i64) {
        let _ = self.targets.entry(p.clone()).or_insert(high);
        let pos = self.positions.entry(p.clone()).or_insert(position);
        *pos = (*pos).max(position);
        let _ = self.owned.insert(p);
    }

    /// A partition was revoked.
    pub fn revoked(&mut self, p: &Partition) {
        let _ = self.owned.remove(p);
    }

    /// Everything before `next_offset` of `p` is delivered.
    pub fn delivered(&mut self, p: &Partition, next_offset: i64) {
        if let Some(pos) = self.positions.get_mut(p) {
            *pos = (*pos).max(next_offset);
        }
    }

    /// True when at least one partition is owned and all owned ones reached their target.
    pub fn done(&self) -> bool {
        !self.owned.is_empty()
            && self
                .owned
                .iter()
                .all(|p| self.positions.get(p).copied().unwrap_or(0) >= self.targets.get(p).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        Partition { topic: "t".into(), partition: n }
    }

    #[test]
    fn waits_for_every_owned_partition() {
        let mut c = CatchUp::default();
        assert!(!c.done(), "nothing owned yet");
        c.assigned(p(0), 0, 10);
        c.assigned(p(1), 5, 5);
        assert!(!c.done());
        c.delivered(&p(0), 9);
        assert!(!c.done());
        c.delivered(&p(0), 10);
        assert!(c.done());
    }

    #[test]
    fn first_target_is_kept_and_revoked_partitions_do_not_count() {
        let mut c = CatchUp::default();
        c.assigned(p(0), 0, 10);
        c.assigned(p(1), 0, 10);
        c.revoked(&p(1));
        c.assigned(p(0), 3, 20);
        c.delivered(&p(0), 10);
        assert!(c.done());
    }
}
