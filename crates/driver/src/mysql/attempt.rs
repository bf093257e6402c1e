//! One attempt at a migration on MySQL: its timeouts, its transaction (or, without one, its
//! `running` row and per-statement progress), the run lock checked within it, and its history
//! row written as it ends.
//!
//! A statement of a migration that runs statement by statement goes to the server in one
//! query string with its progress record (`<statement>; UPDATE … ; COMMIT`). The server stops
//! at the first statement that fails, so the record is written only if the statement
//! succeeded; and it runs the whole string even when the runner is killed meanwhile (MySQL
//! finishes a statement whose client is gone), so a DDL statement that completes after its
//! runner died is still recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use mysql::prelude::Queryable;

use safeshift_source::{Transactionality, classify_mysql};

use super::{MysqlDriver, MysqlFlavor, from_mysql, rows};
use crate::attempt::{Attempt, no_attempt};
use crate::error::{DriverError, ErrorKind};
use crate::history::{Failure, NewRecord, Timeouts};
use crate::history_sql::{Ending, literal};
use crate::{AttemptFrame, Dialect, Driver};

/// `lock_wait_timeout` and `innodb_lock_wait_timeout` when `lock_timeout` is zero (no limit):
/// a year, the largest value both accept on every version.
const NO_LIMIT_SECONDS: u64 = 31_536_000;

impl MysqlDriver {
    fn current_attempt(&self) -> Result<&Attempt, DriverError> {
        self.attempt.as_ref().ok_or_else(no_attempt)
    }

    pub(super) fn begin_attempt(
        &mut self,
        record: &NewRecord,
        timeouts: &Timeouts,
    ) -> Result<(), DriverError> {
        self.attempt = None;
        self.run(&timeout_statements(timeouts).join("; "))?;
        let attempt = |id, started_at| Attempt {
            record: record.clone(),
            timeouts: *timeouts,
            id,
            started_at,
            began: std::time::Instant::now(),
        };
        if record.transactional {
            let started = rows(
                &mut self.conn,
                "START TRANSACTION; SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')",
            )?;
            let started_at = started
                .first()
                .and_then(|row| row[0].clone())
                .map(|time| literal(Dialect::Mysql, &time))
                .unwrap_or_else(|| self.sql.now_expression().to_owned());
            if let Err(error) = self.lock_check() {
                let _ = self.run("ROLLBACK");
                let failed = self.sql.insert(
                    record,
                    &self.server.user,
                    &started_at,
                    Ending::Failed(&Failure {
                        sqlstate: None,
                        message: error.message.clone(),
                        statement: None,
                        line: None,
                        duration: Duration::ZERO,
                    }),
                );
                let _ = self.run(&failed);
                return Err(error);
            }
            self.attempt = Some(attempt(None, started_at));
        } else {
            let id = self.append_record(record)?;
            if let Err(error) = self.lock_check() {
                let _ = self.complete_interrupted(id, &error.message);
                return Err(error);
            }
            self.attempt = Some(attempt(Some(id), self.sql.now_expression().to_owned()));
        }
        Ok(())
    }

    pub(super) fn execute(&mut self, sql: &str) -> Result<(), DriverError> {
        self.with_statement_timeout(sql, sql)
            .map_err(|(_, error)| error)
    }

    pub(super) fn execute_recorded(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError> {
        let progress = self.sql.progress(
            self.current_attempt()?.running_id()?,
            applied,
            applied_checksum,
        );
        let commits_implicitly = matches!(
            classify_mysql(sql),
            Transactionality::CommitsImplicitly { .. }
        );
        if commits_implicitly && self.flavor == MysqlFlavor::Mariadb {
            self.lock_check()?;
            // One compound statement: the server runs its body to the end whatever happens to
            // the client, and stops at the first statement that fails. A statement a compound
            // statement cannot hold (creating a stored program) goes the other way.
            let compound = format!("BEGIN NOT ATOMIC {sql}\n;\n{progress};\nEND");
            match self.with_statement_timeout(sql, &compound) {
                Err((_, error)) if not_in_a_compound_statement(&error) => {}
                other => return other.map_err(|(_, error)| error),
            }
        }
        self.run("START TRANSACTION")?;
        if let Err(error) = self.lock_check() {
            let _ = self.run("ROLLBACK");
            return Err(error);
        }
        // The newline ends a trailing `--` comment of the statement. The server stops at the
        // first statement that fails; but a client killed during a statement that commits
        // implicitly (on MySQL, which has no compound statements outside stored programs)
        // leaves it applied and its record unwritten: the next run finds it still running, or
        // fails on running it again, and says so.
        let text = format!("{sql}\n;\n{progress};\nCOMMIT");
        match self.with_statement_timeout(sql, &text) {
            Ok(()) => Ok(()),
            Err((part, error)) => {
                // A statement that commits implicitly has committed what it did; a statement
                // run in the transaction is rolled back with its record.
                let _ = self.run("ROLLBACK");
                Err(match part {
                    Part::Statement => error,
                    Part::Completion => DriverError::new(
                        error.kind,
                        format!(
                            "the statement ran, but its progress record failed: {}",
                            error.message
                        ),
                    )
                    .with_hint(
                        "if the statement commits implicitly (DDL), it stays applied: check it, then \
                         record the migration with `safeshift resolve <version> --applied` once finished by hand",
                    ),
                })
            }
        }
    }

    pub(super) fn record_progress(
        &mut self,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError> {
        let id = self.current_attempt()?.running_id()?;
        let sql = self.sql.progress(id, applied, applied_checksum);
        self.run(&sql)
    }

    pub(super) fn finish_attempt(
        &mut self,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), DriverError> {
        let attempt = self.attempt.take().ok_or_else(no_attempt)?;
        let completed = match attempt.id {
            None => {
                let insert = self.sql.insert(
                    &attempt.record,
                    &self.server.user,
                    &attempt.started_at,
                    Ending::Succeeded {
                        applied,
                        applied_checksum,
                        duration,
                    },
                );
                self.lock_check()
                    .and_then(|()| self.run(&format!("{insert}; COMMIT")))
            }
            Some(id) => {
                let update = self.sql.succeeded(id, applied, applied_checksum, duration);
                self.run(&update)
            }
        };
        if completed.is_err() {
            // `fail_attempt` rolls it back and records the failure.
            self.attempt = Some(attempt);
        }
        completed
    }

    pub(super) fn fail_attempt(&mut self, failure: &Failure) -> Result<(), DriverError> {
        let attempt = self.attempt.take().ok_or_else(no_attempt)?;
        // Ends the migration's transaction, or one the migration opened itself.
        self.run("ROLLBACK")?;
        match attempt.id {
            None => {
                let insert = self.sql.insert(
                    &attempt.record,
                    &self.server.user,
                    &attempt.started_at,
                    Ending::Failed(failure),
                );
                self.run(&insert)
            }
            Some(id) => {
                let update = self.sql.failed(id, failure);
                self.run(&update)
            }
        }
    }

    pub(super) fn attempt_frame(&self, transactional: bool, timeouts: &Timeouts) -> AttemptFrame {
        let mut before = timeout_statements(timeouts);
        let mut after = Vec::new();
        if transactional {
            before.push("START TRANSACTION".to_owned());
            after.push("COMMIT".to_owned());
        }
        AttemptFrame { before, after }
    }

    /// Sends `text`, the statement `sql` with whatever goes with it, with the attempt's
    /// `statement_timeout` enforced: MySQL limits only SELECTs by itself, so a watcher thread
    /// sends `KILL QUERY` when the time is up. An error says which part failed.
    fn with_statement_timeout(&mut self, sql: &str, text: &str) -> Result<(), (Part, DriverError)> {
        let timeout = self
            .attempt
            .as_ref()
            .map(|attempt| attempt.timeouts.statement_timeout)
            .unwrap_or_default();
        if timeout.is_zero() {
            return send(&mut self.conn, text, sql);
        }
        let cancel = self.canceller();
        let expired = Arc::new(AtomicBool::new(false));
        let (finished, finished_signal) = mpsc::channel::<()>();
        let watcher = {
            let expired = Arc::clone(&expired);
            std::thread::spawn(move || {
                if finished_signal.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                    expired.store(true, Ordering::SeqCst);
                    cancel();
                }
            })
        };
        let result = send(&mut self.conn, text, sql);
        drop(finished);
        // A KILL QUERY sent as the statement ended must land before the next statement starts.
        let _ = watcher.join();
        result.map_err(|(part, mut error)| {
            if expired.load(Ordering::SeqCst) && error.kind == ErrorKind::Canceled {
                error.message = format!(
                    "statement_timeout ({} ms) expired: {}",
                    timeout.as_millis(),
                    error.message
                );
            }
            (part, error)
        })
    }
}

/// MariaDB refuses this statement inside a compound statement (`ER_SP_BADSTATEMENT`,
/// `ER_SP_NO_RECURSIVE_CREATE`): nothing ran.
fn not_in_a_compound_statement(error: &DriverError) -> bool {
    matches!(error.sqlstate.as_deref(), Some("MySQL 1314" | "MySQL 1303"))
}

/// Which part of a query string an error belongs to.
enum Part {
    Statement,
    Completion,
}

/// Sends `text` (the statement `sql`, maybe followed by its completion) and drains every
/// result set; an error in the first set is the statement's.
fn send(conn: &mut mysql::Conn, text: &str, sql: &str) -> Result<(), (Part, DriverError)> {
    let mut result = conn
        .query_iter(text)
        .map_err(|error| (Part::Statement, from_mysql(&error, Some(sql))))?;
    let mut set_index = 0;
    while let Some(set) = result.iter() {
        for row in set {
            if let Err(error) = row {
                let part = if set_index == 0 {
                    Part::Statement
                } else {
                    Part::Completion
                };
                let error = from_mysql(&error, (set_index == 0).then_some(sql));
                return Err((part, error));
            }
        }
        set_index += 1;
    }
    Ok(())
}

/// The session settings that give a statement `lock_timeout`: `lock_wait_timeout` for
/// metadata locks (DDL waiting behind a long transaction) and `innodb_lock_wait_timeout` for
/// row locks, both in whole seconds (rounded up, at least 1).
fn timeout_statements(timeouts: &Timeouts) -> Vec<String> {
    let seconds = if timeouts.lock_timeout.is_zero() {
        NO_LIMIT_SECONDS
    } else {
        timeouts.lock_timeout.as_millis().div_ceil(1000).max(1) as u64
    };
    vec![
        format!("SET SESSION lock_wait_timeout = {seconds}"),
        format!("SET SESSION innodb_lock_wait_timeout = {seconds}"),
    ]
}
