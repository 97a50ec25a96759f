//! Percentiles of a set of samples by the nearest-rank method: the p-th percentile is
//! the smallest sample with at least p % of the samples at or below it — always a value
//! that was observed, never an interpolation between two.

/// Summary of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending); `None`
/// when there are no samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50/p95/p99/max of `samples` (any order; NaNs are ignored); `None` when empty.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    Some(Summary {
        count: sorted.len(),
        p50: percentile(&sorted, 50.0)?,
        p95: percentile(&sorted, 95.0)?,
        p99: percentile(&sorted, 99.0)?,
        max: *sorted.last()?,
    })
}

/// The median of `samples` (any order); `None` when empty.
pub fn median(samples: &[f64]) -> Option<f64> {
    summarize(samples).map(|s| s.p50)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_a_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!((s.count, s.p50, s.p95, s.p99, s.max), (100, 50.0, 95.0, 99.0, 100.0));
    }

    #[test]
    fn small_sets_pick_observed_values() {
        // 5 samples: p50 is the 3rd, p95 and p99 the 5th (rank = ceil(0.95 * 5) = 5).
        let s = summarize(&[900.0, 100.0, 300.0, 200.0, 400.0]).unwrap();
        assert_eq!((s.p50, s.p95, s.p99, s.max), (300.0, 900.0, 900.0, 900.0));
        let one = summarize(&[7.0]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        // 200 samples: p99 is the 198th smallest, so one outlier of two is still seen.
        let mut v = vec![10.0; 198];
        v.extend([5_000.0, 9_000.0]);
        assert_eq!(summarize(&v).unwrap().p99, 10.0);
        v.push(7_000.0);
        assert_eq!(summarize(&v).unwrap().p99, 5_000.0, "201 samples: rank 199, the smallest outlier");
    }

    #[test]
    fn empty_and_nan() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN]), None);
        assert_eq!(median(&[f64::NAN, 3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0], 0.0), Some(1.0));
    }
}
