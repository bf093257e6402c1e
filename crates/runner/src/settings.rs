//! How a run behaves: timeouts, retries, the run lock, and who is running it.

use std::time::Duration;

use safeshift_driver::{RunLockMode, Timeouts};

/// Settings for a [`crate::Migrator`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Default timeouts; a section's own `lock_timeout:` / `statement_timeout:` options win.
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub lock: LockSettings,
    /// Apply pending migrations older than the newest applied one.
    pub allow_out_of_order: bool,
    pub identity: Identity,
    /// The backup taken before this run, recorded in every attempt's history row.
    pub backup_ref: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            lock: LockSettings::default(),
            allow_out_of_order: false,
            identity: Identity::current(),
            backup_ref: None,
        }
    }
}

/// Retrying a migration that failed on a lock timeout or a deadlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one, with ±25 % jitter.
    pub backoff: Duration,
    /// The longest delay between two attempts.
    pub max_backoff: Duration,
    /// Stop retrying once the failed attempts of one migration have together run this long:
    /// a cap on the total stall other sessions may suffer queued behind its lock requests.
    /// `None`: only `retries` limits.
    pub max_stall: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_stall: None,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jitter = 0.75 + fastrand::f64() * 0.5;
        base.mul_f64(jitter)
    }

    /// Whether another attempt may follow attempt number `attempt` (1-based) when the failed
    /// attempts so far have run for `stalled` in total.
    pub fn allows_retry(&self, attempt: u32, stalled: Duration) -> bool {
        attempt <= self.retries && self.max_stall.is_none_or(|cap| stalled < cap)
    }
}

/// The run lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSettings {
    pub mode: RunLockMode,
    /// How long to wait for another runner to finish before giving up.
    pub wait: Duration,
    /// How often to try again while waiting.
    pub poll: Duration,
    /// How long a lease lasts without renewal (lease mode).
    pub lease: Duration,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            mode: RunLockMode::Advisory,
            wait: Duration::from_secs(60),
            poll: Duration::from_millis(250),
            lease: Duration::from_secs(30),
        }
    }
}

/// Who runs safeshift, recorded in every history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// One id per invocation, shared by every row it writes.
    pub run_id: String,
    /// `user@host`.
    pub installed_by: String,
    /// `user@host pid N`, shown to runners waiting for the lock.
    pub holder: String,
    pub tool_version: String,
}

impl Identity {
    /// The current process's identity, with a fresh run id.
    pub fn current() -> Identity {
        let user = whoami::username().unwrap_or_else(|_| "unknown".into());
        let host = whoami::hostname().unwrap_or_else(|_| "unknown-host".into());
        let installed_by = format!("{user}@{host}");
        Identity {
            run_id: uuid::Uuid::new_v4().to_string(),
            holder: format!("{installed_by} pid {}", std::process::id()),
            installed_by,
            tool_version: format!("safeshift {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// A short form of the run id for messages.
    pub fn short_run_id(&self) -> &str {
        &self.run_id[..self.run_id.len().min(8)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            retries: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
            max_stall: None,
        };
        for _ in 0..50 {
            let first = policy.delay(1);
            assert!(
                first >= Duration::from_millis(750) && first <= Duration::from_millis(1250),
                "{first:?}"
            );
            let second = policy.delay(2);
            assert!(
                second >= Duration::from_millis(1500) && second <= Duration::from_millis(2500),
                "{second:?}"
            );
            let capped = policy.delay(9);
            assert!(capped <= Duration::from_millis(3750), "{capped:?}");
        }
    }

    #[test]
    fn retries_stop_at_the_attempt_cap_or_the_stall_cap() {
        let mut policy = RetryPolicy {
            retries: 3,
            ..RetryPolicy::default()
        };
        assert!(policy.allows_retry(3, Duration::from_secs(3600)));
        assert!(!policy.allows_retry(4, Duration::ZERO));
        policy.max_stall = Some(Duration::from_secs(2));
        assert!(policy.allows_retry(1, Duration::from_millis(1999)));
        assert!(!policy.allows_retry(1, Duration::from_secs(2)));
    }
}
