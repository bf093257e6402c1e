//! How the online operations behave: the lock-safety policy for DDL, a backfill's batching and
//! throttling, and how often a failed concurrent index build is tried again.

use std::time::Duration;

/// How a statement that takes a lock blocking reads or writes is run: under a short
/// `lock_timeout`, after waiting out long transactions on its tables, retried with jittered
/// backoff within a cap on attempts and on total stall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSafety {
    /// How long one attempt may queue for its lock. Sessions that arrive behind it wait at most
    /// about this long, so it is also the worst latency the attempt adds to the application.
    pub lock_timeout: Duration,
    /// Attempts per statement, the first included.
    pub attempts: u32,
    /// The most time all attempts of one statement may spend queued for their lock together.
    pub max_stall: Duration,
    /// The delay before the second attempt; doubled for each further one, with ±25 % jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long to wait for transactions that hold (or queue for) a conflicting lock on the table
    /// and have been open longer than `lock_timeout`, before queueing behind them; past this the
    /// statement fails as a lock timeout that names them (and the runner may retry it). `None`:
    /// the statement's own `lock_timeout` (the runner's, or its migration's), so a statement waits
    /// as long as before, only outside the lock queue.
    pub wait_for_transactions: Option<Duration>,
}

impl Default for LockSafety {
    fn default() -> Self {
        LockSafety {
            lock_timeout: Duration::from_millis(100),
            attempts: 30,
            max_stall: Duration::from_secs(10),
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            wait_for_transactions: None,
        }
    }
}

impl LockSafety {
    /// The delay before attempt `attempt + 1` (after `attempt` failures, 1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        base.mul_f64(0.75 + fastrand::f64() * 0.5)
    }
}

/// A user-supplied throttle: pause the backfill while it says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A query whose first value is true or a positive number while the backfill must pause.
    Sql(String),
    /// A URL that answers anything but 2xx (or does not answer) while the backfill must pause.
    Http(String),
}

impl Probe {
    /// `http://…` and `https://…` are URLs; anything else is SQL.
    pub fn parse(text: &str) -> Probe {
        let trimmed = text.trim();
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            Probe::Http(trimmed.to_owned())
        } else {
            Probe::Sql(trimmed.to_owned())
        }
    }
}

/// How a backfill batches and throttles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillOptions {
    /// Rows in the first batch.
    pub batch: u64,
    pub min_batch: u64,
    pub max_batch: u64,
    /// The batch duration the batch size is adapted to. Each batch holds row locks this long, so
    /// it bounds what a writer to one of its rows waits.
    pub target: Duration,
    /// Sleep between batches (lets vacuum and replicas keep up); 0 for none.
    pub pause: Duration,
    /// Pause while a standby replays more than this far behind; `None` ignores replication.
    pub max_replication_lag: Option<Duration>,
    /// Pause while more than this many sessions wait for a lock on the table.
    pub max_lock_waiters: u32,
    pub probe: Option<Probe>,
    /// How often the probe is asked (it may be an HTTP call).
    pub probe_interval: Duration,
    /// How long a batch may wait for a row lock an application transaction holds.
    pub lock_timeout: Duration,
    /// A batch that runs longer is cancelled and retried smaller.
    pub statement_timeout: Duration,
    /// Consecutive failed batches (lock timeouts, deadlocks, timeouts) before giving up.
    pub batch_retries: u32,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            batch: 1_000,
            min_batch: 100,
            max_batch: 50_000,
            target: Duration::from_millis(100),
            pause: Duration::ZERO,
            max_replication_lag: Some(Duration::from_secs(10)),
            max_lock_waiters: 0,
            probe: None,
            probe_interval: Duration::from_secs(1),
            lock_timeout: Duration::from_millis(100),
            statement_timeout: Duration::from_secs(30),
            batch_retries: 20,
        }
    }
}

/// Everything the online operations need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineSettings {
    pub lock_safety: LockSafety,
    pub backfill: BackfillOptions,
    /// Retries of a `CREATE INDEX CONCURRENTLY` that failed in a way worth retrying (deadlock,
    /// lock timeout), each after dropping the INVALID index it left.
    pub index_retries: u32,
    /// The schema that holds the backfill checkpoints (the history schema).
    pub checkpoint_schema: String,
}

impl Default for OnlineSettings {
    fn default() -> Self {
        OnlineSettings {
            lock_safety: LockSafety::default(),
            backfill: BackfillOptions::default(),
            index_retries: 3,
            checkpoint_schema: "safeshift".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let safety = LockSafety::default();
        for _ in 0..50 {
            let first = safety.delay(1);
            assert!(first >= Duration::from_millis(150) && first <= Duration::from_millis(250));
            let third = safety.delay(3);
            assert!(third >= Duration::from_millis(600) && third <= Duration::from_millis(1000));
            assert!(safety.delay(20) <= Duration::from_millis(6250));
        }
    }

    #[test]
    fn probes_are_urls_or_sql() {
        assert_eq!(
            Probe::parse(" https://app/health "),
            Probe::Http("https://app/health".into())
        );
        assert_eq!(
            Probe::parse("SELECT load > 0.8 FROM metrics"),
            Probe::Sql("SELECT load > 0.8 FROM metrics".into())
        );
    }
}
