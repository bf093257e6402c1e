//! The lease lock on MySQL: a row in `{history}_lock` with an expiry, renewed by a heartbeat on
//! a connection of its own. It needs no session state, so it works through a proxy that
//! multiplexes connections; a killed runner's lease runs out and the next runner takes it over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mysql::Conn;

use super::{quote_identifier, rows};
use crate::Dialect;
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::literal;
use crate::lock::{LockHolder, LockRequest};

/// The lease row's name: one lock per history table.
const LOCK_NAME: &str = "migrations";

/// The lease table's name beside the history table.
pub(super) fn lock_table(history_table: &str) -> String {
    format!("{history_table}_lock")
}

fn quoted_lock_table(history_table: &str) -> String {
    quote_identifier(&lock_table(history_table))
}

pub(super) fn create_sql(history_table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (name varchar(64) PRIMARY KEY, run_id text NOT NULL, holder text NOT NULL, \
         acquired_at datetime(6) NOT NULL, renewed_at datetime(6) NOT NULL, expires_at datetime(6) NOT NULL) \
         ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        quoted_lock_table(history_table)
    )
}

/// Takes the lease if it is free, expired, or already this run's; returns whether it did.
/// A running migration's transaction holds the lease row locked (see
/// `MysqlDriver::lock_check`); waiting for it a second and reporting "busy" keeps this runner
/// polling and able to say who holds the lock.
pub(super) fn acquire(
    conn: &mut Conn,
    history_table: &str,
    request: &LockRequest,
) -> Result<bool, DriverError> {
    rows(
        conn,
        "SET @safeshift_row_lock_wait = @@innodb_lock_wait_timeout; SET SESSION innodb_lock_wait_timeout = 1",
    )?;
    let acquired = match take(conn, history_table, request) {
        Err(error) if error.kind == ErrorKind::LockTimeout => Ok(false),
        other => other,
    };
    rows(
        conn,
        "SET SESSION innodb_lock_wait_timeout = @safeshift_row_lock_wait",
    )?;
    acquired
}

/// One try at the lease: the row is created on first use; two runners creating it at once are
/// told apart by the primary key.
fn take(conn: &mut Conn, history_table: &str, request: &LockRequest) -> Result<bool, DriverError> {
    let table = quoted_lock_table(history_table);
    let lease_us = request.lease.as_micros();
    let (name, run_id, holder) = (
        literal(Dialect::Mysql, LOCK_NAME),
        literal(Dialect::Mysql, &request.run_id),
        literal(Dialect::Mysql, &request.holder),
    );
    rows(
        conn,
        &format!(
            "UPDATE {table} SET run_id = {run_id}, holder = {holder}, acquired_at = UTC_TIMESTAMP(6), \
             renewed_at = UTC_TIMESTAMP(6), expires_at = UTC_TIMESTAMP(6) + INTERVAL {lease_us} MICROSECOND \
             WHERE name = {name} AND (expires_at < UTC_TIMESTAMP(6) OR run_id = {run_id})"
        ),
    )?;
    if conn.affected_rows() == 1 {
        return Ok(true);
    }
    rows(
        conn,
        &format!(
            "INSERT IGNORE INTO {table} (name, run_id, holder, acquired_at, renewed_at, expires_at) VALUES \
             ({name}, {run_id}, {holder}, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL {lease_us} MICROSECOND)"
        ),
    )?;
    Ok(conn.affected_rows() == 1)
}

pub(super) fn holder_sql(history_table: &str) -> String {
    format!(
        "SELECT holder, run_id, DATE_FORMAT(acquired_at, '%Y-%m-%dT%H:%i:%s.%fZ'), \
         DATE_FORMAT(expires_at, '%Y-%m-%dT%H:%i:%s.%fZ') FROM {} WHERE name = {}",
        quoted_lock_table(history_table),
        literal(Dialect::Mysql, LOCK_NAME)
    )
}

/// The holder of a lease that has not expired.
pub(super) fn live_holder_sql(history_table: &str) -> String {
    format!(
        "{} AND expires_at > UTC_TIMESTAMP(6)",
        holder_sql(history_table)
    )
}

pub(super) fn holder_from_row(row: &[Option<String>]) -> LockHolder {
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
pub(super) struct Lease {
    run_id: String,
    lease: Duration,
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Lease {
    pub fn start(
        mut heartbeat: Conn,
        run_id: String,
        lease: Duration,
        history_table: String,
    ) -> Lease {
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(Mutex::new(None));
        let renew = renew_sql_for(&history_table, &run_id, lease);
        // A migration's transaction holds the lease row (renewed) until it ends; the heartbeat
        // waits for it rather than giving up after the server's default 50 s.
        let _ = rows(
            &mut heartbeat,
            "SET SESSION innodb_lock_wait_timeout = 31536000",
        );
        let thread = {
            let (stop, lost) = (Arc::clone(&stop), Arc::clone(&lost));
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
                        match rows(&mut heartbeat, &renew) {
                            Ok(_) if heartbeat.affected_rows() == 1 => {
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
                            // A renewal blocked by a migration transaction holding the row (which
                            // renews it itself) or a failed one is tried again.
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

    /// Renewal as an `UPDATE` that matches one row only while the lease is this run's.
    pub fn renew_sql(&self, history_table: &str) -> String {
        renew_sql_for(history_table, &self.run_id, self.lease)
    }

    pub fn release_sql(&self, history_table: &str) -> String {
        format!(
            "DELETE FROM {} WHERE name = {} AND run_id = {}",
            quoted_lock_table(history_table),
            literal(Dialect::Mysql, LOCK_NAME),
            literal(Dialect::Mysql, &self.run_id)
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

fn renew_sql_for(history_table: &str, run_id: &str, lease: Duration) -> String {
    format!(
        "UPDATE {} SET renewed_at = UTC_TIMESTAMP(6), expires_at = UTC_TIMESTAMP(6) + INTERVAL {} MICROSECOND \
         WHERE name = {} AND run_id = {}",
        quoted_lock_table(history_table),
        lease.as_micros(),
        literal(Dialect::Mysql, LOCK_NAME),
        literal(Dialect::Mysql, run_id)
    )
}
