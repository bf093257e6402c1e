//! What the online operations report while they work. Nothing here prints: the caller installs
//! an [`EventSink`] and renders the events (the CLI draws progress bars).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// Receives events; called from the thread doing the work, and from a monitor thread while a
/// long statement runs (index builds), so it must be `Send + Sync`.
pub type EventSink = Arc<dyn Fn(&OnlineEvent) + Send + Sync>;

/// A sink that drops everything.
pub fn quiet() -> EventSink {
    Arc::new(|_| {})
}

/// A session that holds, or queues for, a lock that conflicts with the one a statement needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocker {
    pub pid: i64,
    /// The table it locks.
    pub table: String,
    /// `pg_locks.mode`, e.g. `AccessShareLock`.
    pub mode: String,
    /// Whether it holds the lock (or waits for it).
    pub granted: bool,
    /// `active`, `idle in transaction`, …
    pub state: String,
    /// How long its transaction has been open.
    #[serde(serialize_with = "milliseconds")]
    pub transaction_age: Duration,
    pub backend_type: String,
    /// The start of its current (or last) query.
    pub query: String,
}

/// Where a backfill stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillProgress {
    pub name: String,
    pub table: String,
    /// Rows visited (in key order) so far, this run and the runs before it.
    pub rows_scanned: u64,
    /// Rows the UPDATE changed so far.
    pub rows_updated: u64,
    /// Rows to visit in all (the table's estimate when the backfill started).
    pub rows_total: u64,
    /// Recent speed, rows visited per second.
    pub rows_per_second: f64,
    #[serde(serialize_with = "optional_milliseconds")]
    pub eta: Option<Duration>,
    pub batches: u64,
    pub batch_size: u64,
    #[serde(serialize_with = "milliseconds")]
    pub last_batch: Duration,
}

/// How a backfill went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillSummary {
    pub name: String,
    pub table: String,
    /// The key columns it paged on.
    pub key: Vec<String>,
    pub rows_scanned: u64,
    pub rows_updated: u64,
    /// Rows scanned by earlier runs this one resumed from.
    pub resumed_from_rows: u64,
    pub batches: u64,
    /// Batches of this run that failed and were retried.
    pub batch_retries: u64,
    #[serde(serialize_with = "milliseconds")]
    pub duration: Duration,
    /// Rows visited per second over this run.
    pub rows_per_second: f64,
    /// Time spent paused by a throttle.
    #[serde(serialize_with = "milliseconds")]
    pub throttled: Duration,
    /// Why it paused, each reason once.
    pub throttle_reasons: Vec<String>,
    pub final_batch_size: u64,
    /// Nothing was left to do (an earlier run had finished it).
    pub already_finished: bool,
}

/// Where a concurrent index build stands (`pg_stat_progress_create_index`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexProgress {
    pub index: String,
    pub phase: String,
    /// Work done and total in the phase's unit (blocks or tuples); total 0 when unknown.
    pub done: u64,
    pub total: u64,
    #[serde(serialize_with = "milliseconds")]
    pub elapsed: Duration,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum OnlineEvent {
    /// Long transactions hold or wait for conflicting locks: waiting for them to end before
    /// queueing for the statement's own lock.
    WaitingForTransactions {
        statement: String,
        blockers: Vec<Blocker>,
        #[serde(serialize_with = "milliseconds")]
        waited: Duration,
    },
    /// An attempt to take a lock ran out of its `lock_timeout`; trying again after `delay`.
    LockRetry {
        statement: String,
        attempt: u32,
        #[serde(serialize_with = "milliseconds")]
        delay: Duration,
        error: String,
    },
    BackfillStarted {
        name: String,
        table: String,
        key: Vec<String>,
        rows_total: u64,
        /// Rows already visited by an earlier, interrupted run.
        resumed_from_rows: Option<u64>,
    },
    BackfillProgress(BackfillProgress),
    /// The backfill paused; `reason` says which throttle.
    BackfillThrottled {
        name: String,
        reason: String,
    },
    /// The throttle cleared after `paused`.
    BackfillUnthrottled {
        name: String,
        #[serde(serialize_with = "milliseconds")]
        paused: Duration,
    },
    /// A batch failed in a way worth retrying; it is tried again with `batch_size` rows.
    BackfillBatchRetry {
        name: String,
        error: String,
        batch_size: u64,
    },
    BackfillFinished(BackfillSummary),
    IndexProgress(IndexProgress),
    /// A concurrent index build failed in a way worth retrying; its INVALID index is dropped
    /// and it is built again.
    IndexRetry {
        index: String,
        attempt: u32,
        error: String,
    },
    /// A concurrent index build finished.
    IndexBuilt {
        index: String,
        #[serde(serialize_with = "milliseconds")]
        duration: Duration,
    },
    /// An online schema change (pt-online-schema-change) started on `table`.
    SchemaChangeStarted {
        table: String,
        tool: String,
    },
    /// How far the online schema change has copied the table.
    SchemaChangeProgress {
        table: String,
        percent: f64,
        /// The tool's estimate (`00:12`).
        remaining: String,
    },
    /// The online schema change paused: the replicas lag, or the server is loaded.
    SchemaChangeThrottled {
        table: String,
        reason: String,
    },
    /// The online schema change swapped the tables.
    SchemaChangeFinished {
        table: String,
        #[serde(serialize_with = "milliseconds")]
        duration: Duration,
    },
    /// A concurrent index build failed for good; the INVALID index it left was dropped.
    IndexCleanedUp {
        index: String,
    },
}

fn milliseconds<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

fn optional_milliseconds<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_u64(duration.as_millis() as u64),
        None => serializer.serialize_none(),
    }
}
