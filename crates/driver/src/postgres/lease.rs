//! The lease lock: a row in `{schema}.{table}_lock` with an expiry, renewed by a heartbeat on a
//! connection of its own. It needs no session state, so it works through PgBouncer's
//! transaction pooling; a killed runner's lease runs out and the next runner takes it over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::{Client, SimpleQueryMessage};
use postgres_protocol::escape::escape_identifier;

use crate::Dialect;
use crate::history::HistoryLocation;
use crate::history_sql::literal;
use crate::lock::{LockHolder, LockRequest};

/// The lease row's name: one lock per history table.
const LOCK_NAME: &str = "migrations";

fn lock_table(quoted_schema: &str, location: &HistoryLocation) -> String {
    format!(
        "{quoted_schema}.{}",
        escape_identifier(&format!("{}_lock", location.table))
    )
}

/// Creates the lock table if needed. Concurrent runners serialise on a transaction-scoped
/// advisory lock, which (unlike a session lock) works through a transaction pooler.
/// `create_schema` is the statement creating the schema, or empty when it exists.
pub(crate) fn bootstrap_sql(
    key: i64,
    create_schema: &str,
    quoted_schema: &str,
    location: &HistoryLocation,
) -> String {
    format!(
        "BEGIN; SELECT pg_advisory_xact_lock({key}); {create_schema} \
         CREATE TABLE IF NOT EXISTS {table} (name text PRIMARY KEY, run_id text NOT NULL, holder text NOT NULL, \
         acquired_at timestamptz NOT NULL, renewed_at timestamptz NOT NULL, expires_at timestamptz NOT NULL); COMMIT",
        table = lock_table(quoted_schema, location)
    )
}

/// The lock table's qualified, quoted name as a literal, for `to_regclass`.
pub(crate) fn lock_table_literal(quoted_schema: &str, location: &HistoryLocation) -> String {
    literal(Dialect::Postgres, &lock_table(quoted_schema, location))
}

/// Takes the lease if it is free, expired, or already ours; returns a row only on success.
pub(crate) fn acquire_sql(
    quoted_schema: &str,
    location: &HistoryLocation,
    request: &LockRequest,
) -> String {
    let lease_ms = request.lease.as_millis();
    format!(
        "INSERT INTO {table} AS l (name, run_id, holder, acquired_at, renewed_at, expires_at) \
         VALUES ({name}, {run_id}, {holder}, clock_timestamp(), clock_timestamp(), clock_timestamp() + interval '{lease_ms} milliseconds') \
         ON CONFLICT (name) DO UPDATE SET run_id = excluded.run_id, holder = excluded.holder, \
         acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at \
         WHERE l.expires_at < clock_timestamp() OR l.run_id = excluded.run_id RETURNING run_id",
        table = lock_table(quoted_schema, location),
        name = literal(Dialect::Postgres, LOCK_NAME),
        run_id = literal(Dialect::Postgres, &request.run_id),
        holder = literal(Dialect::Postgres, &request.holder),
    )
}

pub(crate) fn holder_sql(quoted_schema: &str, location: &HistoryLocation) -> String {
    format!(
        "SELECT holder, run_id, to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
         to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM {} WHERE name = {}",
        lock_table(quoted_schema, location),
        literal(Dialect::Postgres, LOCK_NAME)
    )
}

/// The holder of a lease that has not expired.
pub(crate) fn live_holder_sql(quoted_schema: &str, location: &HistoryLocation) -> String {
    format!(
        "{} AND expires_at > clock_timestamp()",
        holder_sql(quoted_schema, location)
    )
}

pub(crate) fn holder_from_row(row: &[Option<String>]) -> LockHolder {
    let time = |i: usize| {
        row.get(i)
            .cloned()
            .flatten()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.to_utc())
    };
    LockHolder {
        description: format!(
            "{} (run {})",
            row.first().cloned().flatten().unwrap_or_default(),
            row.get(1).cloned().flatten().unwrap_or_default()
        ),
        backend_pid: None,
        since: time(2),
        expires_at: time(3),
    }
}

/// A held lease and its heartbeat thread.
pub(crate) struct Lease {
    run_id: String,
    lease: Duration,
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Lease {
    pub fn start(
        mut heartbeat: Client,
        run_id: String,
        lease: Duration,
        quoted_schema: String,
        location: HistoryLocation,
    ) -> Lease {
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(Mutex::new(None));
        let renew = renew_sql_for(&quoted_schema, &location, &run_id, lease);
        let thread = {
            let stop = Arc::clone(&stop);
            let lost = Arc::clone(&lost);
            std::thread::Builder::new()
                .name("safeshift-lease".into())
                .spawn(move || {
                    let interval = (lease / 3).max(Duration::from_millis(100));
                    let mut last_renewal = Instant::now();
                    loop {
                        std::thread::park_timeout(interval);
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        match heartbeat.simple_query(&renew) {
                            Ok(messages)
                                if messages
                                    .iter()
                                    .any(|m| matches!(m, SimpleQueryMessage::Row(_))) =>
                            {
                                last_renewal = Instant::now();
                            }
                            Ok(_) => {
                                *lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(
                                    "the lease expired and another runner took it over".into(),
                                );
                                return;
                            }
                            Err(error) if last_renewal.elapsed() >= lease => {
                                *lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                                    "could not renew the lease for {}s: {error}",
                                    lease.as_secs()
                                ));
                                return;
                            }
                            // A blocked or failed renewal is retried; a migration transaction that
                            // holds the row renews it itself.
                            Err(_) => {}
                        }
                    }
                })
                .ok()
        };
        Lease {
            run_id,
            lease,
            stop,
            lost,
            thread,
        }
    }

    /// Why the lease was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Renewal as a statement that returns `run_lock_held` only while the lease is ours.
    pub fn renew_sql(&self, quoted_schema: &str, location: &HistoryLocation) -> String {
        renew_sql_for(quoted_schema, location, &self.run_id, self.lease)
    }

    pub fn release_sql(&self, quoted_schema: &str, location: &HistoryLocation) -> String {
        format!(
            "DELETE FROM {} WHERE name = {} AND run_id = {}",
            lock_table(quoted_schema, location),
            literal(Dialect::Postgres, LOCK_NAME),
            literal(Dialect::Postgres, &self.run_id)
        )
    }

    /// Stops the heartbeat and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
        }
    }
}

fn renew_sql_for(
    quoted_schema: &str,
    location: &HistoryLocation,
    run_id: &str,
    lease: Duration,
) -> String {
    format!(
        "UPDATE {} SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + interval '{} milliseconds' \
         WHERE name = {} AND run_id = {} RETURNING 1 AS run_lock_held",
        lock_table(quoted_schema, location),
        lease.as_millis(),
        literal(Dialect::Postgres, LOCK_NAME),
        literal(Dialect::Postgres, run_id)
    )
}
