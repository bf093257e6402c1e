//! The run lock: only one runner changes a database at a time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How the run lock is held on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunLockMode {
    /// A session advisory lock, polled with `pg_try_advisory_lock` on the migration connection.
    /// Released by the server the moment the connection ends, so a killed runner never leaves
    /// it behind. Needs a direct (or session-pooled) connection.
    Advisory,
    /// A lease row with an expiry, renewed by a heartbeat. Works through PgBouncer's transaction
    /// pooling, where session state (advisory locks, `SET`) does not survive between
    /// transactions; a killed runner's lease simply expires.
    Lease,
}

impl RunLockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunLockMode::Advisory => "advisory",
            RunLockMode::Lease => "lease",
        }
    }
}

/// Who wants the lock, and on what terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    pub mode: RunLockMode,
    /// The run asking, stored with a lease and shown to waiting runners.
    pub run_id: String,
    /// `user@host pid N`, shown to waiting runners.
    pub holder: String,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
}

/// Who holds the lock, as far as the database can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    /// A description: the holder's application name or lease holder text.
    pub description: String,
    /// The server process holding an advisory lock.
    pub backend_pid: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    /// When a lease expires unless renewed.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The outcome of one try to take the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    Acquired,
    /// Someone else holds it (when the database can tell who).
    Busy(Option<LockHolder>),
}
