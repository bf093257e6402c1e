//! Choosing the next batch's size from how long the last one took, so that batches last about
//! the target duration whatever the rows cost: proportional, but never more than doubling or
//! halving at once, and halved after a batch that failed.

use std::time::Duration;

/// Adapts the batch size toward a target batch duration.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    size: u64,
    min: u64,
    max: u64,
    target: Duration,
}

impl BatchSizer {
    pub fn new(initial: u64, min: u64, max: u64, target: Duration) -> BatchSizer {
        let min = min.max(1);
        let max = max.max(min);
        BatchSizer {
            size: initial.clamp(min, max),
            min,
            max,
            target,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// After a batch of `rows` rows that took `took`.
    pub fn record(&mut self, rows: u64, took: Duration) {
        // A short final batch says little about the cost per row.
        if rows < self.size / 2 || took.is_zero() {
            return;
        }
        let per_row = took.as_secs_f64() / rows as f64;
        let ideal = self.target.as_secs_f64() / per_row.max(1e-9);
        let next = ideal.clamp(self.size as f64 / 2.0, self.size as f64 * 2.0);
        self.size = (next.round() as u64).clamp(self.min, self.max);
    }

    /// After a batch that failed (a lock timeout, a statement timeout, a deadlock).
    pub fn failed(&mut self) {
        self.size = (self.size / 2).clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizer() -> BatchSizer {
        BatchSizer::new(1_000, 100, 50_000, Duration::from_millis(100))
    }

    #[test]
    fn grows_at_most_twofold_toward_the_target() {
        let mut sizer = sizer();
        sizer.record(1_000, Duration::from_millis(10));
        assert_eq!(sizer.size(), 2_000);
        sizer.record(2_000, Duration::from_millis(50));
        assert_eq!(sizer.size(), 4_000);
        sizer.record(4_000, Duration::from_millis(80));
        assert_eq!(sizer.size(), 5_000);
    }

    #[test]
    fn shrinks_at_most_by_half_and_respects_the_bounds() {
        let mut sizer = sizer();
        sizer.record(1_000, Duration::from_secs(10));
        assert_eq!(sizer.size(), 500);
        sizer.failed();
        sizer.failed();
        sizer.failed();
        assert_eq!(sizer.size(), 100);
        let mut big = BatchSizer::new(40_000, 100, 50_000, Duration::from_millis(100));
        big.record(40_000, Duration::from_millis(1));
        assert_eq!(big.size(), 50_000);
    }

    #[test]
    fn ignores_a_short_last_batch() {
        let mut sizer = sizer();
        sizer.record(12, Duration::from_millis(1));
        assert_eq!(sizer.size(), 1_000);
    }
}
