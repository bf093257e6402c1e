//! Lock-safe DDL: a statement whose lock blocks reads or writes first waits out the long
//! transactions that hold (or queue for) a conflicting lock on its tables, then queues under a
//! short `lock_timeout` and is retried with jittered backoff, within a cap on attempts and on the
//! total time spent queued. Sessions that arrive behind an attempt wait at most about one
//! `lock_timeout`, instead of as long as the longest transaction ahead of it.

use std::time::{Duration, Instant};

use safeshift_driver::{Driver, DriverError, ErrorKind, PostgresDriver};
use safeshift_lint::{LockMode, PgVersion, TableLock};

use crate::events::{Blocker, EventSink, OnlineEvent};
use crate::session::{Session, parse_number, quote_literal, setting_ms};
use crate::settings::LockSafety;
use safeshift_runner::{Interrupt, Progress};

/// SQLSTATE `lock_not_available`, which a wait that gives up reports like a `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The locks `sql` takes that block an application's reads or writes, by the linter's lock model.
pub fn traffic_blocking_locks(sql: &str, pg_version: PgVersion) -> Vec<TableLock> {
    safeshift_lint::statement_locks(sql, pg_version)
        .unwrap_or_default()
        .into_iter()
        .filter(|lock| lock.mode.blocks_traffic())
        .collect()
}

/// Sessions other than this one that hold a lock conflicting with `locks` for longer than
/// `older_than`, or queue for one.
pub fn find_blockers(
    session: &mut dyn Session,
    locks: &[TableLock],
    older_than: Duration,
) -> Result<Vec<Blocker>, DriverError> {
    if locks.is_empty() {
        return Ok(Vec::new());
    }
    let conditions: Vec<String> = locks
        .iter()
        .map(|lock| {
            let modes: Vec<String> = LockMode::ALL
                .iter()
                .filter(|other| lock.mode.conflicts_with(**other))
                .map(|other| quote_literal(other.pg_locks_name()))
                .collect();
            format!(
                "(l.relation = to_regclass({}) AND l.mode IN ({}))",
                quote_literal(&lock.table.sql()),
                modes.join(", ")
            )
        })
        .collect();
    // pg_stat_activity is read once per transaction unless the snapshot is cleared; a
    // transactional migration asks more than once in the same transaction.
    let sql = format!(
        "SELECT pg_stat_clear_snapshot(); \
         SELECT coalesce(l.pid, -1), l.relation::regclass::text, l.mode, l.granted, coalesce(a.state, 'prepared transaction'), \
                coalesce((extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint, 0), \
                coalesce(a.backend_type, ''), left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 160) \
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'relation' \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.pid IS DISTINCT FROM pg_backend_pid() \
           AND ({}) \
         ORDER BY 6 DESC",
        conditions.join(" OR ")
    );
    let mut blockers = Vec::new();
    // The first statement's one row (the snapshot reset) is not a lock.
    for row in session.rows(&sql)?.into_iter().filter(|row| row.len() == 8) {
        let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let blocker = Blocker {
            pid: parse_number(row[0].as_deref(), "pid")?,
            table: text(1),
            mode: text(2),
            granted: text(3) == "t",
            state: text(4),
            transaction_age: Duration::from_millis(parse_number(row[5].as_deref(), "age")?),
            backend_type: text(6),
            query: text(7),
        };
        if !blocker.granted || blocker.transaction_age >= older_than {
            blockers.push(blocker);
        }
    }
    Ok(blockers)
}

/// Waits (up to `limit`; zero for no limit) until no long transaction holds or queues for a
/// lock conflicting with `locks`. With `may_wait` false (this transaction already holds locks
/// others may need), blockers are a lock timeout at once, so the runner rolls back and waits
/// without holding anything.
#[allow(clippy::too_many_arguments)]
pub(crate) fn wait_for_blockers(
    session: &mut dyn Session,
    statement: &str,
    locks: &[TableLock],
    safety: &LockSafety,
    limit: Duration,
    may_wait: bool,
    interrupt: &Interrupt,
    sink: &EventSink,
) -> Result<(), DriverError> {
    let started = Instant::now();
    let mut last_report: Option<Instant> = None;
    loop {
        let blockers = find_blockers(session, locks, safety.lock_timeout)?;
        if blockers.is_empty() {
            return Ok(());
        }
        if !may_wait {
            return Err(DriverError::new(
                ErrorKind::LockTimeout,
                format!(
                    "{} on {} before `{statement}`; rolling back so that the wait holds none of this migration's locks",
                    describe(&blockers),
                    blockers[0].table
                ),
            )
            .with_sqlstate(LOCK_NOT_AVAILABLE));
        }
        if !limit.is_zero() && started.elapsed() >= limit {
            let pids: Vec<String> = blockers.iter().map(|b| b.pid.to_string()).collect();
            return Err(DriverError::new(
                ErrorKind::LockTimeout,
                format!(
                    "lock timeout: waited {:.1}s for {} on {} to end before `{statement}`, without queueing behind it",
                    started.elapsed().as_secs_f64(),
                    describe(&blockers),
                    blockers[0].table
                ),
            )
            .with_sqlstate(LOCK_NOT_AVAILABLE)
            .with_hint(format!(
                "queueing behind it would block every query on the table; end it (SELECT pg_terminate_backend(pid) for pid {}), or give the statement longer with --lock-timeout or [online] wait_for_transactions",
                pids.join(", ")
            )));
        }
        if last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
            last_report = Some(Instant::now());
            sink(&OnlineEvent::WaitingForTransactions {
                statement: statement.to_owned(),
                blockers,
                waited: started.elapsed(),
            });
        }
        if !sleep_unless_interrupted(Duration::from_millis(100), interrupt) {
            return Err(interrupted("while waiting for long transactions to end"));
        }
    }
}

fn describe(blockers: &[Blocker]) -> String {
    let first = &blockers[0];
    let what = if first.granted {
        format!(
            "pid {} ({}, transaction open {}s) holds {}",
            first.pid,
            first.state,
            first.transaction_age.as_secs(),
            first.mode
        )
    } else {
        format!("pid {} queues for {}", first.pid, first.mode)
    };
    match blockers.len() {
        1 => what,
        n => format!("{what} (and {} more session(s))", n - 1),
    }
}

/// How a statement's attempts are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Outside any transaction: each attempt is its own transaction.
    OwnTransaction,
    /// Outside a transaction, for a statement that cannot run in one (`VACUUM FULL`): the
    /// session's setting is changed around it.
    Session,
    /// Inside the migration's transaction, holding nothing others need yet: each attempt runs
    /// under a savepoint, rolled back to after a lock timeout.
    Savepoint,
    /// Inside the migration's transaction after it took locks: one attempt; a lock timeout
    /// fails the migration's attempt, which the runner retries from the start.
    SingleTry,
}

/// The timeouts a statement runs under outside its attempts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Restore {
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Runs `sql` lock-safely, waiting at most `wait_limit` for long transactions before each
/// attempt. Returns the number of attempts it took.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    session: &mut PostgresDriver,
    sql: &str,
    locks: &[TableLock],
    frame: Frame,
    record: Option<Progress<'_>>,
    restore: Restore,
    safety: &LockSafety,
    wait_limit: Duration,
    interrupt: &Interrupt,
    sink: &EventSink,
) -> Result<u32, DriverError> {
    let label = short_sql(sql);
    let may_wait = frame != Frame::SingleTry;
    let mut stalled = Duration::ZERO;
    let mut attempt = 1;
    loop {
        wait_for_blockers(
            session, &label, locks, safety, wait_limit, may_wait, interrupt, sink,
        )?;
        let started = Instant::now();
        let error = match try_once(session, sql, frame, record, restore, safety.lock_timeout) {
            Ok(()) => return Ok(attempt),
            Err(error) => error,
        };
        if !error.is_retryable() || frame == Frame::SingleTry || interrupt.is_requested() {
            return Err(error);
        }
        stalled += started.elapsed();
        if attempt >= safety.attempts || stalled >= safety.max_stall {
            let mut error = error;
            error.message = format!(
                "{} (gave up after {attempt} attempt(s) of lock_timeout {}ms, {}ms queued in all)",
                error.message,
                safety.lock_timeout.as_millis(),
                stalled.as_millis()
            );
            return Err(error.with_hint(
                "something keeps the table busy; look with `safeshift activity`, or raise [online] attempts / max_stall",
            ));
        }
        let delay = safety.delay(attempt);
        sink(&OnlineEvent::LockRetry {
            statement: label.clone(),
            attempt: attempt + 1,
            delay,
            error: error.summary(),
        });
        if !sleep_unless_interrupted(delay, interrupt) {
            return Err(interrupted("between lock attempts"));
        }
        attempt += 1;
    }
}

fn try_once(
    session: &mut PostgresDriver,
    sql: &str,
    frame: Frame,
    record: Option<Progress<'_>>,
    restore: Restore,
    lock_timeout: Duration,
) -> Result<(), DriverError> {
    let short = setting_ms(lock_timeout);
    if let (Frame::OwnTransaction, Some(record)) = (frame, record) {
        // The runner's own transaction for the statement: the run lock checked first, and the
        // progress record committed with the statement (the driver rolls back on failure).
        let before = format!("SET LOCAL lock_timeout = {short};\n");
        return session
            .execute_recorded(&format!("{before}{sql}\n"), record.applied, record.checksum)
            .map_err(|mut error| {
                let prefix = before.chars().count() as u32;
                error.position = error
                    .position
                    .and_then(|p| p.checked_sub(prefix))
                    .filter(|p| *p > 0);
                error
            });
    }
    // A newline before the `;` keeps a trailing `--` comment from swallowing what follows.
    let (before, after, on_error) = match frame {
        Frame::OwnTransaction => (
            format!(
                "BEGIN; SET LOCAL lock_timeout = {short}; SET LOCAL statement_timeout = {};\n",
                setting_ms(restore.statement_timeout)
            ),
            "\n; COMMIT".to_owned(),
            Some("ROLLBACK"),
        ),
        Frame::Savepoint => (
            format!("SAVEPOINT safeshift_lock_safe; SET LOCAL lock_timeout = {short};\n"),
            format!(
                "\n; SET LOCAL lock_timeout = {}; RELEASE SAVEPOINT safeshift_lock_safe",
                setting_ms(restore.lock_timeout)
            ),
            Some(
                "ROLLBACK TO SAVEPOINT safeshift_lock_safe; RELEASE SAVEPOINT safeshift_lock_safe",
            ),
        ),
        Frame::SingleTry => (
            format!("SET LOCAL lock_timeout = {short};\n"),
            format!(
                "\n; SET LOCAL lock_timeout = {}",
                setting_ms(restore.lock_timeout)
            ),
            None,
        ),
        Frame::Session => {
            session.run(&format!("SET lock_timeout = {short}"))?;
            let result = session.run(sql);
            let reset = session.run(&format!(
                "SET lock_timeout = {}",
                setting_ms(restore.lock_timeout)
            ));
            return result.and(reset);
        }
    };
    match session.run(&format!("{before}{sql}{after}")) {
        Ok(()) => Ok(()),
        Err(mut error) => {
            let prefix = before.chars().count() as u32;
            error.position = error
                .position
                .and_then(|p| p.checked_sub(prefix))
                .filter(|p| *p > 0);
            // A retryable failure rolls back so the next attempt starts clean; any other is the
            // migration's failure, and the runner rolls back.
            if let Some(cleanup) = on_error
                && (error.is_retryable() || frame == Frame::OwnTransaction)
                && error.kind != ErrorKind::ConnectionLost
            {
                session.run(cleanup)?;
            }
            Err(error)
        }
    }
}

/// The statement on one line, shortened for messages.
pub(crate) fn short_sql(sql: &str) -> String {
    let single: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if single.chars().count() > 80 {
        format!("{}…", single.chars().take(79).collect::<String>())
    } else {
        single
    }
}

pub(crate) fn interrupted(when: &str) -> DriverError {
    DriverError::new(ErrorKind::Canceled, format!("interrupted {when}"))
}

/// Sleeps, waking early if interrupted; false if interrupted.
pub(crate) fn sleep_unless_interrupted(duration: Duration, interrupt: &Interrupt) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if interrupt.is_requested() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_locks_that_block_traffic_count() {
        let locks = traffic_blocking_locks(
            "ALTER TABLE accounts ADD COLUMN note text",
            PgVersion::DEFAULT,
        );
        assert_eq!(locks.len(), 1);
        assert_eq!(locks[0].mode, LockMode::AccessExclusive);
        assert!(
            traffic_blocking_locks(
                "CREATE INDEX CONCURRENTLY i ON accounts (note)",
                PgVersion::DEFAULT
            )
            .is_empty()
        );
        assert!(
            traffic_blocking_locks(
                "ALTER TABLE accounts VALIDATE CONSTRAINT c",
                PgVersion::DEFAULT
            )
            .is_empty()
        );
        assert!(traffic_blocking_locks("UPDATE accounts SET a = 1", PgVersion::DEFAULT).is_empty());
        let foreign_key = traffic_blocking_locks(
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (account) REFERENCES accounts (id) NOT VALID",
            PgVersion::DEFAULT,
        );
        assert_eq!(foreign_key.len(), 2);
    }

    #[test]
    fn shortens_statements_for_messages() {
        assert_eq!(
            short_sql("ALTER TABLE t\n   ADD COLUMN c int"),
            "ALTER TABLE t ADD COLUMN c int"
        );
        assert_eq!(short_sql(&"x".repeat(100)).chars().count(), 80);
    }
}
