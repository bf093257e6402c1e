//! One attempt at a migration on PostgreSQL: its transaction (or, without one, its `running`
//! row and per-statement progress), its timeouts, the run lock checked within it, and its history
//! row written as it ends; the prelude of a transactional attempt travels with its first statement.

use std::time::Duration;

use postgres::SimpleQueryMessage;

use super::errors::from_postgres;
use super::run_lock::fence_error;
use super::{PostgresDriver, column_value, first_id};
use crate::attempt::{Attempt, no_attempt};
use crate::error::{DriverError, ErrorKind};
use crate::history::{Failure, NewRecord, Timeouts};
use crate::history_sql::{Ending, literal};
use crate::{AttemptFrame, Dialect, Driver, Finishing};

/// `started_at` of a transactional attempt whose prelude is deferred: the transaction's start.
/// Meaningful only inside that transaction; a failure row (written after the rollback) computes
/// the start from the attempt's own clock instead.
const TRANSACTION_START: &str = "now()";

/// Which part of a joined query string an error belongs to.
enum Part {
    Prelude,
    Statement,
    Completion,
}

impl PostgresDriver {
    /// Sends the deferred prelude of a transactional attempt, if there is one. On an error the
    /// transaction stays open and aborted for `fail_attempt`.
    pub(super) fn flush_prelude(&mut self) -> Result<(), DriverError> {
        if let Some(error) = self.prelude_error.take() {
            return Err(error);
        }
        let Some(prelude) = self.pending_prelude.take() else {
            return Ok(());
        };
        self.client
            .batch_execute(&prelude)
            .map_err(|error| from_postgres(&error))
    }

    /// Sends `sql` as one query string with the deferred prelude (if any) before it and
    /// `completion` (if any) after it, and says which part an error belongs to. The server
    /// parses the whole string before it runs any of it, so each part must be complete by
    /// itself (see [`complete_statement`]); it stops at the first error, leaving the
    /// transaction aborted.
    fn send_joined(
        &mut self,
        sql: &str,
        completion: Option<&str>,
        completion_checks_the_lock: bool,
    ) -> Result<Vec<SimpleQueryMessage>, (Part, DriverError)> {
        if let Some(error) = self.prelude_error.take() {
            return Err((Part::Prelude, error));
        }
        let prelude = self.pending_prelude.take();
        let mut joined = String::with_capacity(
            prelude.as_ref().map_or(0, String::len)
                + sql.len()
                + completion.map_or(0, str::len)
                + 4,
        );
        if let Some(prelude) = &prelude {
            joined.push_str(prelude);
            joined.push('\n');
        }
        // Positions the server reports count characters from the start of the string.
        let statement_from = joined.chars().count() as u32;
        joined.push_str(sql);
        let statement_to = statement_from + sql.chars().count() as u32;
        if let Some(completion) = completion {
            // The newline ends a trailing `--` comment of the statement.
            joined.push_str("\n;\n");
            joined.push_str(completion);
        }
        match self.client.simple_query(&joined) {
            Ok(messages) => {
                if completion_checks_the_lock {
                    self.check_fence(&messages)
                        .map_err(|e| (Part::Completion, e))?;
                }
                Ok(messages)
            }
            Err(error) => {
                let in_history = error.as_db_error().is_some_and(|db| {
                    db.schema() == Some(self.location.schema.as_str())
                        && db.table() == Some(self.location.table.as_str())
                });
                let mut error = fence_error(from_postgres(&error));
                if error.kind == ErrorKind::LockLost {
                    return Err((Part::Prelude, error));
                }
                let part = match error.position {
                    Some(p) if p <= statement_from => Part::Prelude,
                    Some(p) if p > statement_to => Part::Completion,
                    _ if in_history && completion.is_some() => Part::Completion,
                    // Includes what the server raises at COMMIT (a deferred constraint): it
                    // names no statement, and the last one is where the transaction ended.
                    _ => Part::Statement,
                };
                error.position = match part {
                    Part::Statement => error.position.map(|p| p - statement_from),
                    Part::Prelude | Part::Completion => None,
                };
                Err((part, error))
            }
        }
    }

    fn set_session_timeouts(&mut self, timeouts: &Timeouts) -> Result<(), DriverError> {
        self.run(&format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis()
        ))
    }

    fn reset_session_timeouts(&mut self) -> Result<(), DriverError> {
        if self.session_state {
            self.run("RESET lock_timeout; RESET statement_timeout")?;
        }
        Ok(())
    }

    /// Opens a transaction with the attempt's timeouts, reads the server's clock as
    /// `attempt_started`, and checks the run lock, in one round trip.
    fn transaction_prelude(&self, timeouts: &Timeouts) -> String {
        // `set_config(…, true)` is `SET LOCAL`; one SELECT sets the timeouts, reads the clock
        // and checks the advisory lock, so the server parses two statements instead of five.
        let mut select = format!(
            "BEGIN; SELECT set_config('lock_timeout', '{}', true), set_config('statement_timeout', '{}', true), ",
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis()
        );
        if !self.session_state && self.server.version_number >= 140000 {
            select.push_str("set_config('client_connection_check_interval', '1000', true), ");
        }
        select.push_str(
            "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS attempt_started",
        );
        if let Some(held) = self.advisory_fence_expression() {
            select.push_str(", ");
            select.push_str(&held);
        }
        select.push(';');
        if let Some(lease) = &self.lease {
            select.push(' ');
            select.push_str(&lease.renew_sql(&self.quoted_schema, &self.location));
        }
        select
    }

    /// The opening of a transactional attempt that goes in one query string with its first
    /// statement: `BEGIN` and the attempt's timeouts, short and readable, since it leads the
    /// statement's text in `pg_stat_activity`. The run lock is checked at the end, before the
    /// history row and the COMMIT ([`PostgresDriver::completion`]): the transaction
    /// commits only if the lock is held, and rolls back whole otherwise.
    /// Used with the advisory lock only (a direct connection, which already has
    /// `client_connection_check_interval` for the session); the lease renews itself at the start.
    fn deferred_prelude(&self, timeouts: &Timeouts) -> String {
        format!(
            "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {};",
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis()
        )
    }

    /// The end of a transactional attempt: the history row (timed by the server) and the
    /// COMMIT, after the run lock check (which fails the transaction when the lock is not held)
    /// if the attempt was opened by [`PostgresDriver::deferred_prelude`], which checks nothing.
    fn completion(&self, attempt: &Attempt, applied: i64, applied_checksum: &str) -> String {
        let insert = self.sql.insert(
            &attempt.record,
            &self.server.user,
            &attempt.started_at,
            Ending::SucceededTimedByServer {
                applied,
                applied_checksum,
            },
        );
        match self
            .raising_fence_expression()
            .filter(|_| attempt.started_at == TRANSACTION_START)
        {
            Some(fence) => format!("SELECT {fence}; {insert}; COMMIT"),
            None => format!("{insert}; COMMIT"),
        }
    }

    fn current_attempt(&self) -> Result<&Attempt, DriverError> {
        self.attempt.as_ref().ok_or_else(no_attempt)
    }

    pub(super) fn begin_attempt(
        &mut self,
        record: &NewRecord,
        timeouts: &Timeouts,
    ) -> Result<(), DriverError> {
        self.attempt = None;
        self.pending_prelude = None;
        self.prelude_error = None;
        if record.transactional && self.lease.is_none() && self.lock_checked_up_front {
            // Nothing is sent yet: the transaction opens with the first statement.
            self.pending_prelude = Some(self.deferred_prelude(timeouts));
            self.attempt = Some(Attempt {
                record: record.clone(),
                timeouts: *timeouts,
                id: None,
                started_at: TRANSACTION_START.to_owned(),
                began: std::time::Instant::now(),
            });
        } else if record.transactional {
            // With the lease, and for the first transactional attempt with the advisory lock:
            // one round trip opens the transaction with its timeouts, takes the start time from
            // the server, and checks the run lock before any statement runs.
            let messages = match self
                .client
                .simple_query(&self.transaction_prelude(timeouts))
            {
                Ok(messages) => messages,
                Err(error) => {
                    let _ = self.client.batch_execute("ROLLBACK");
                    return Err(from_postgres(&error));
                }
            };
            let started_at = column_value(&messages, "attempt_started")
                .map(|time| literal(Dialect::Postgres, &time))
                .unwrap_or_else(|| self.sql.now_expression().to_owned());
            if let Err(error) = self.check_fence(&messages) {
                let _ = self.run("ROLLBACK");
                let failed = self.sql.insert(
                    record,
                    &self.server.user.clone(),
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
            self.lock_checked_up_front = true;
            self.attempt = Some(Attempt {
                record: record.clone(),
                timeouts: *timeouts,
                id: None,
                started_at,
                began: std::time::Instant::now(),
            });
        } else {
            let now = self.sql.now_expression();
            let insert =
                self.sql
                    .insert(record, &self.server.user.clone(), now, Ending::AsRecorded);
            let id = first_id(
                &self
                    .client
                    .simple_query(&insert)
                    .map_err(|e| from_postgres(&e))?,
            )?;
            if let Some(fence) = self.fence_sql() {
                let messages = self
                    .client
                    .simple_query(&fence)
                    .map_err(|e| from_postgres(&e))?;
                if let Err(error) = self.check_fence(&messages) {
                    let _ = self.complete_interrupted(id, &error.message);
                    return Err(error);
                }
            }
            if self.session_state {
                self.set_session_timeouts(timeouts)?;
            }
            self.attempt = Some(Attempt {
                record: record.clone(),
                timeouts: *timeouts,
                id: Some(id),
                started_at: now.to_owned(),
                began: std::time::Instant::now(),
            });
        }
        Ok(())
    }

    pub(super) fn execute(&mut self, sql: &str) -> Result<(), DriverError> {
        if self.pending_prelude.is_some() && complete_statement(sql) {
            // The attempt's first statement opens its transaction.
            return self
                .send_joined(sql, None, false)
                .map(drop)
                .map_err(|(_, e)| e);
        }
        self.run(sql)
    }

    pub(super) fn execute_recorded(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError> {
        let attempt = self.current_attempt()?;
        let (prelude, progress) = (
            self.transaction_prelude(&attempt.timeouts),
            self.sql
                .progress(attempt.running_id()?, applied, applied_checksum),
        );
        let messages = match self.client.simple_query(&prelude) {
            Ok(messages) => messages,
            Err(error) => {
                let _ = self.client.batch_execute("ROLLBACK");
                return Err(from_postgres(&error));
            }
        };
        let result = self
            .check_fence(&messages)
            .and_then(|()| self.run(sql))
            .and_then(|()| self.run(&format!("{progress}; COMMIT")));
        if result.is_err() {
            let _ = self.client.batch_execute("ROLLBACK");
        }
        result
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
        match attempt.id {
            None => {
                let completion = self.completion(&attempt, applied, applied_checksum);
                let completed = self.run(&completion).map_err(fence_error);
                if completed.is_err() {
                    // Still open (or already rolled back by the failed COMMIT): `fail_attempt`
                    // rolls it back and records the failure.
                    self.attempt = Some(attempt);
                }
                completed
            }
            Some(id) => {
                let update = self.sql.succeeded(id, applied, applied_checksum, duration);
                self.run(&update)?;
                self.reset_session_timeouts()
            }
        }
    }

    pub(super) fn execute_and_finish(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), Finishing> {
        let attempt = self.current_attempt().map_err(Finishing::Statement)?;
        // Joined only when the attempt is transactional and the statement complete by itself:
        // a statement the grammar rejects (an unclosed parenthesis, say) is sent alone, for its
        // own error and position.
        if attempt.id.is_some() || !complete_statement(sql) {
            return crate::execute_then_finish(self, sql, applied, applied_checksum, duration);
        }
        let checks_the_lock = attempt.started_at == TRANSACTION_START;
        let completion = self.completion(attempt, applied, applied_checksum);
        match self.send_joined(sql, Some(&completion), checks_the_lock) {
            Ok(_) => {
                self.attempt = None;
                Ok(())
            }
            Err((Part::Completion, error)) => Err(Finishing::Completion(error)),
            Err((Part::Prelude | Part::Statement, error)) => Err(Finishing::Statement(error)),
        }
    }

    pub(super) fn fail_attempt(&mut self, failure: &Failure) -> Result<(), DriverError> {
        let attempt = self.attempt.take().ok_or_else(no_attempt)?;
        // A prelude never sent opened nothing.
        let never_opened = self.pending_prelude.take().is_some();
        self.prelude_error = None;
        if !never_opened {
            // Ends the migration's transaction, or one the migration opened itself; outside a
            // transaction it only draws a warning.
            self.run("ROLLBACK")?;
        }
        match attempt.id {
            None => {
                let started_at = if attempt.started_at == TRANSACTION_START {
                    format!(
                        "clock_timestamp() - interval '{} milliseconds'",
                        attempt.began.elapsed().as_millis()
                    )
                } else {
                    attempt.started_at.clone()
                };
                let insert = self.sql.insert(
                    &attempt.record,
                    &self.server.user.clone(),
                    &started_at,
                    Ending::Failed(failure),
                );
                self.run(&insert)
            }
            Some(id) => {
                let update = self.sql.failed(id, failure);
                self.run(&update)?;
                self.reset_session_timeouts()
            }
        }
    }

    /// The server process still running this exact statement for another client (a killed
    /// runner's statement that has not noticed yet), if any. Statements that cannot run in a
    /// transaction are checked before they are run again.
    pub fn statement_in_progress(&mut self, sql: &str) -> Result<Option<i64>, DriverError> {
        // pg_stat_activity keeps the first track_activity_query_size bytes (1 kB by default).
        let rows = self.rows(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND state <> 'idle' AND left(query, 1000) = left({}, 1000) LIMIT 1",
            literal(Dialect::Postgres, sql)
        ))?;
        Ok(rows
            .first()
            .and_then(|row| row[0].as_deref())
            .and_then(|pid| pid.parse().ok()))
    }

    pub(super) fn attempt_frame(&self, transactional: bool, timeouts: &Timeouts) -> AttemptFrame {
        let (lock, statement) = (
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis(),
        );
        if transactional {
            let mut before = vec![
                "BEGIN".to_owned(),
                format!("SET LOCAL lock_timeout = {lock}"),
                format!("SET LOCAL statement_timeout = {statement}"),
            ];
            if !self.session_state && self.server.version_number >= 140000 {
                before.push("SET LOCAL client_connection_check_interval = 1000".to_owned());
            }
            AttemptFrame {
                before,
                after: vec!["COMMIT".to_owned()],
            }
        } else if self.session_state {
            AttemptFrame {
                before: vec![
                    format!("SET lock_timeout = {lock}"),
                    format!("SET statement_timeout = {statement}"),
                ],
                after: vec![
                    "RESET lock_timeout".to_owned(),
                    "RESET statement_timeout".to_owned(),
                ],
            }
        } else {
            AttemptFrame::default()
        }
    }
}

/// Whether `sql` is one complete statement for PostgreSQL's grammar (the raw parser only, a
/// few microseconds), so that it can share a query string with other statements.
fn complete_statement(sql: &str) -> bool {
    pg_query::split_with_parser(sql).is_ok_and(|statements| statements.len() == 1)
}
