//! Running one migration section: the attempt loop with retries, per-statement progress for
//! non-transactional sections, and the INVALID-index check around `CREATE INDEX CONCURRENTLY`.

use std::time::{Duration, Instant};

use safeshift_driver::{
    Driver, DriverError, ErrorKind, Failure, Finishing, NewRecord, PostgresDriver, RecordKind,
    Status,
};
use safeshift_source::{Checksum, ConcurrentIndex, Statement, Transactionality};

use crate::error::{FailedStatement, REFUSED, RunError};
use crate::events::{Event, Observer};
use crate::hooks::{Progress, StatementContext, StatementHooks};
use crate::interrupt::{Interrupt, InterruptReason};
use crate::plan::Step;
use crate::report::CompletedMigration;
use crate::resume::{self, Resuming, Resumption};
use crate::settings::Settings;

/// Runs a step to completion, retrying lock timeouts and deadlocks as the policy allows.
pub(crate) fn run_step(
    db: &mut dyn Driver,
    step: &Step<'_>,
    settings: &Settings,
    interrupt: &Interrupt,
    hooks: &mut dyn StatementHooks,
    observer: &mut dyn Observer,
) -> Result<CompletedMigration, RunError> {
    let mut run = StepRun::new(step, settings, interrupt);
    if !run.transactional && !db.timeouts_outside_transactions() {
        observer.event(Event::Warning(format!(
            "{} runs without a transaction through a connection that may be pooled (lease lock): \
             lock_timeout and statement_timeout cannot be set for its statements; use a direct connection for it",
            run.version
        )));
    }
    loop {
        let start_index = if run.transactional {
            0
        } else {
            run.resume_from
        };
        let started = Instant::now();
        run.begin(db, start_index, observer)?;
        let (ran, failure) = run.statements(db, start_index, started, hooks, observer);
        let elapsed = started.elapsed();
        let (index, error) = match run.complete(db, ran, failure, elapsed, observer) {
            Ok(completed) => return Ok(completed),
            Err(failure) => failure,
        };
        run.settle_failure(db, index, error, ran.applied, elapsed, observer)?;
    }
}

/// One step's attempts: what stays the same between them, and what an attempt leaves for the
/// next.
struct StepRun<'s> {
    step: &'s Step<'s>,
    settings: &'s Settings,
    interrupt: &'s Interrupt,
    transactional: bool,
    version: &'s str,
    file: String,
    /// The checksum of the first `n` statements, for every `n`.
    prefixes: Vec<Checksum>,
    /// The attempt in progress, 1-based.
    attempt: u32,
    /// The statement the next attempt of a non-transactional section starts at.
    resume_from: usize,
    /// The next attempt starts at the statement an earlier one stopped at (so an INVALID index
    /// that statement builds is that attempt's leftover).
    resuming_failed_statement: bool,
    /// How long the failed attempts have run in total (see `RetryPolicy::max_stall`).
    stalled: Duration,
}

/// How an attempt's statements went.
#[derive(Clone, Copy)]
struct Ran {
    /// Statements applied, counting those of earlier attempts of a non-transactional section.
    applied: usize,
    /// The last statement was sent together with the attempt's completion.
    finished: bool,
}

/// A failed statement (its index, when a statement failed rather than the bookkeeping) and its
/// error.
type StatementFailure = (Option<usize>, DriverError);

impl<'s> StepRun<'s> {
    fn new(step: &'s Step<'s>, settings: &'s Settings, interrupt: &'s Interrupt) -> Self {
        StepRun {
            step,
            settings,
            interrupt,
            transactional: step.section.options.transaction,
            version: step.migration.version.as_str(),
            file: step.section.relative_path.display().to_string(),
            prefixes: Checksum::of_statement_prefixes(
                step.statements.iter().map(|s| s.sql.as_str()),
            ),
            attempt: 1,
            resume_from: step.resume_from,
            resuming_failed_statement: step.resuming_failed_statement,
            stalled: Duration::ZERO,
        }
    }

    /// Starts an attempt at `start_index`, with its history row.
    fn begin(
        &self,
        db: &mut dyn Driver,
        start_index: usize,
        observer: &mut dyn Observer,
    ) -> Result<(), RunError> {
        let migration = self.step.migration;
        let total = self.step.statements.len();
        let record = NewRecord {
            run_id: self.settings.identity.run_id.clone(),
            kind: RecordKind::Migrate,
            version: self.version.to_owned(),
            name: migration.name.clone(),
            file: self.file.clone(),
            direction: self.step.direction,
            status: Status::Running,
            checksum: Some(migration.up.checksum.to_string()),
            transactional: self.transactional,
            statements_total: Some(total as i64),
            statements_applied: start_index as i64,
            applied_checksum: Some(self.prefixes[start_index].to_string()),
            attempt: i64::from(self.attempt),
            installed_by: self.settings.identity.installed_by.clone(),
            tool_version: self.settings.identity.tool_version.clone(),
            note: None,
            backup_ref: self.settings.backup_ref.clone(),
        };
        observer.event(Event::MigrationStarted {
            version: self.version,
            name: &migration.name,
            direction: self.step.direction,
            transactional: self.transactional,
            statements: total,
            resume_from: start_index,
            attempt: self.attempt,
        });
        db.begin_attempt(&record, &self.step.timeouts)
            .map_err(|error| match error.kind {
                ErrorKind::LockLost => RunError::LockLost(error.message),
                _ => RunError::Database(error),
            })
    }

    /// Runs the attempt's statements from `start_index`, stopping at the first failure.
    fn statements(
        &self,
        db: &mut dyn Driver,
        start_index: usize,
        started: Instant,
        hooks: &mut dyn StatementHooks,
        observer: &mut dyn Observer,
    ) -> (Ran, Option<StatementFailure>) {
        let total = self.step.statements.len();
        let mut ran = Ran {
            applied: start_index,
            finished: false,
        };
        // A migration without a transaction may open its own with BEGIN … COMMIT.
        let mut in_user_transaction = false;
        for (index, statement) in self.step.statements.iter().enumerate().skip(start_index) {
            if self.interrupt.is_requested() {
                return (ran, Some((Some(index), interrupted())));
            }
            let applied_after = index + 1;
            // Without a migration transaction, a statement that can run in a transaction gets
            // one of its own, committed with its progress record: applied if and only if
            // recorded, even when the runner dies in between.
            let own_transaction = !self.transactional
                && !in_user_transaction
                && statement.transactionality == Transactionality::Any;
            let context = StatementContext {
                run_id: &self.settings.identity.run_id,
                version: self.version,
                file: &self.step.section.path,
                direction: self.step.direction,
                transactional: self.transactional,
                number: index + 1,
                total,
                attempt: self.attempt,
                timeouts: &self.step.timeouts,
                interrupt: self.interrupt,
                resuming: self.resuming_failed_statement && index == start_index,
                record: own_transaction.then(|| Progress {
                    applied: applied_after as i64,
                    checksum: self.prefixes[applied_after].as_str(),
                }),
            };
            let recorded = match self.statement(
                db,
                statement,
                &context,
                own_transaction,
                started,
                hooks,
                observer,
            ) {
                Ok(Executed::Finished) => {
                    ran.finished = true;
                    false
                }
                Ok(Executed::Recorded(recorded)) => recorded,
                Ok(Executed::InEffect) => {
                    ran.applied = applied_after;
                    continue;
                }
                Err(failure) => return (ran, Some(failure)),
            };
            ran.applied = applied_after;
            if !self.transactional {
                if let Transactionality::TransactionControl { what } = &statement.transactionality {
                    in_user_transaction = what == "BEGIN";
                }
                if let Err(failure) =
                    self.after_statement(db, ran.applied, recorded, started, observer)
                {
                    return (ran, Some(failure));
                }
            }
        }
        (ran, None)
    }

    /// Runs one statement with its checks around it.
    #[allow(clippy::too_many_arguments)]
    fn statement(
        &self,
        db: &mut dyn Driver,
        statement: &Statement,
        context: &StatementContext<'_>,
        own_transaction: bool,
        started: Instant,
        hooks: &mut dyn StatementHooks,
        observer: &mut dyn Observer,
    ) -> Result<Executed, StatementFailure> {
        let index = context.number - 1;
        let at = |error: DriverError| (Some(index), error);
        hooks.before_statement(db, statement, context).map_err(at)?;
        let outside = matches!(
            statement.transactionality,
            Transactionality::OutsideTransaction { .. }
        );
        let finishing;
        let mut statement = statement;
        if !self.transactional && outside {
            let resuming = Resuming {
                version: self.version,
                number: context.number,
                stopped_here: context.resuming,
                settings: self.settings,
                interrupt: self.interrupt,
            };
            match resume::prepare(db, statement, &resuming, observer).map_err(at)? {
                Resumption::Run => {}
                Resumption::RunInstead(sql) => {
                    finishing = Statement {
                        sql,
                        ..statement.clone()
                    };
                    statement = &finishing;
                }
                Resumption::AlreadyApplied => {
                    let applied = context.number;
                    db.record_progress(applied as i64, self.prefixes[applied].as_str())
                        .map_err(|error| (None, error))?;
                    return Ok(Executed::InEffect);
                }
            }
        }
        let concurrent_index = statement.concurrent_index();
        if let Some(target) = &concurrent_index {
            let leftover_is_ours = context.resuming;
            clear_invalid_index(db, target, leftover_is_ours, self.version, observer)
                .map_err(at)?;
        }
        let applied_after = context.number;
        let checksum = self.prefixes[applied_after].as_str();
        let executed = match hooks.run_statement(db, statement, context) {
            Some(result) => result.map(|()| Executed::Recorded(false)),
            // The last statement of a migration's transaction goes with its history row and the
            // COMMIT.
            None if self.transactional && applied_after == context.total => {
                match db.execute_and_finish(
                    &statement.sql,
                    applied_after as i64,
                    checksum,
                    started.elapsed(),
                ) {
                    Ok(()) => Ok(Executed::Finished),
                    Err(Finishing::Statement(error)) => Err(error),
                    Err(Finishing::Completion(error)) => return Err((None, error)),
                }
            }
            None if own_transaction => db
                .execute_recorded(&statement.sql, applied_after as i64, checksum)
                .map(|()| Executed::Recorded(true)),
            None => db
                .execute(&statement.sql)
                .map(|()| Executed::Recorded(false)),
        };
        let executed = executed.map_err(at)?;
        if let Some(target) = &concurrent_index {
            require_valid_index(db, target).map_err(at)?;
        }
        Ok(executed)
    }

    /// After a statement of a non-transactional section: its progress record (unless it was
    /// committed with the statement) and the run lock.
    fn after_statement(
        &self,
        db: &mut dyn Driver,
        applied: usize,
        recorded: bool,
        started: Instant,
        observer: &mut dyn Observer,
    ) -> Result<(), StatementFailure> {
        if !recorded {
            db.record_progress(applied as i64, self.prefixes[applied].as_str())
                .map_err(|error| (None, error))?;
        }
        observer.event(Event::StatementApplied {
            version: self.version,
            number: applied,
            total: self.step.statements.len(),
            elapsed: started.elapsed(),
        });
        match db.lock_lost() {
            Some(reason) => Err((None, DriverError::new(ErrorKind::LockLost, reason))),
            None => Ok(()),
        }
    }

    /// Completes a successful attempt (unless its last statement already did), or hands back why
    /// it failed.
    fn complete(
        &self,
        db: &mut dyn Driver,
        ran: Ran,
        failure: Option<StatementFailure>,
        elapsed: Duration,
        observer: &mut dyn Observer,
    ) -> Result<CompletedMigration, StatementFailure> {
        if let Some(failure) = failure {
            return Err(failure);
        }
        if !ran.finished {
            // The commit itself may fail (a deferred constraint, a lost connection).
            db.finish_attempt(
                ran.applied as i64,
                self.prefixes[ran.applied].as_str(),
                elapsed,
            )
            .map_err(|error| (None, error))?;
        }
        let migration = self.step.migration;
        let total = self.step.statements.len();
        observer.event(Event::MigrationFinished {
            version: self.version,
            name: &migration.name,
            direction: self.step.direction,
            duration: elapsed,
            statements: total,
        });
        Ok(CompletedMigration {
            version: self.version.to_owned(),
            name: migration.name.clone(),
            file: self.file.clone(),
            direction: self.step.direction,
            transactional: self.transactional,
            statements: total,
            resumed_from: self.step.resume_from,
            attempts: self.attempt,
            duration_ms: elapsed.as_millis() as u64,
        })
    }

    /// Records a failed attempt and decides what follows: `Ok` to try again (after the backoff),
    /// or the error that ends the run.
    fn settle_failure(
        &mut self,
        db: &mut dyn Driver,
        index: Option<usize>,
        error: DriverError,
        applied: usize,
        elapsed: Duration,
        observer: &mut dyn Observer,
    ) -> Result<(), RunError> {
        let statement = index.map(|i| &self.step.statements[i]);
        let interrupt = self.interrupt;
        let interrupted_by_user = interrupt.is_requested() && error.kind == ErrorKind::Canceled;
        let recorded = error.kind != ErrorKind::ConnectionLost
            && db
                .fail_attempt(&failure_record(
                    &error,
                    statement,
                    interrupted_by_user.then(|| interrupt.reason()).as_ref(),
                    elapsed,
                ))
                .is_ok();
        if interrupted_by_user {
            return Err(RunError::Interrupted {
                version: Some(self.version.to_owned()),
                recorded,
                reason: interrupt.reason(),
            });
        }
        if error.kind == ErrorKind::LockLost {
            return Err(RunError::LockLost(error.message));
        }
        self.stalled += elapsed;
        if error.is_retryable()
            && recorded
            && self.settings.retry.allows_retry(self.attempt, self.stalled)
        {
            let delay = self.settings.retry.delay(self.attempt);
            self.attempt += 1;
            observer.event(Event::Retrying {
                version: self.version,
                attempt: self.attempt,
                error: &error,
                delay,
            });
            if !sleep_unless_interrupted(delay, interrupt) {
                return Err(RunError::Interrupted {
                    version: Some(self.version.to_owned()),
                    recorded: true,
                    reason: interrupt.reason(),
                });
            }
            if !self.transactional {
                self.resume_from = applied;
                // The retried statement may have left an INVALID index behind.
                self.resuming_failed_statement = true;
            }
            return Ok(());
        }
        let total = self.step.statements.len();
        Err(RunError::MigrationFailed {
            version: self.version.to_owned(),
            file: statement
                .and_then(|s| s.file.clone())
                .unwrap_or_else(|| self.step.section.path.clone()),
            direction: self.step.direction,
            statement: statement.map(|s| FailedStatement {
                number: s.index + 1,
                total,
                line: s.line,
                column: s.column,
                error_line: error_line(s, error.position),
                sql: s.sql.clone(),
            }),
            error,
            attempts: self.attempt,
            recorded,
            applied_statements: if self.transactional { 0 } else { applied },
            transactional: self.transactional,
        })
    }
}

/// How a statement ran.
enum Executed {
    /// It was the last of a transactional attempt and completed the attempt with it.
    Finished,
    /// It ran; `true` when its progress record was committed with it.
    Recorded(bool),
    /// An interrupted attempt's execution of it had taken effect: recorded as applied without
    /// running it again.
    InEffect,
}

fn interrupted() -> DriverError {
    DriverError::new(
        ErrorKind::Canceled,
        "interrupted before the statement started",
    )
}

fn failure_record(
    error: &DriverError,
    statement: Option<&Statement>,
    interrupted_because: Option<&InterruptReason>,
    elapsed: Duration,
) -> Failure {
    let mut message = match interrupted_because {
        Some(reason) => format!("interrupted ({reason}): {}", error.message),
        None => error.message.clone(),
    };
    if let Some(detail) = &error.detail {
        message.push_str(&format!(" (detail: {detail})"));
    }
    Failure {
        sqlstate: error.sqlstate.clone(),
        message,
        statement: statement.map(|s| s.sql.clone()),
        line: statement.map(|s| i64::from(error_line(s, error.position))),
        duration: elapsed,
    }
}

/// The file line of a server-reported error position (1-based characters into the statement),
/// or the statement's first line.
fn error_line(statement: &Statement, position: Option<u32>) -> u32 {
    match position {
        Some(position) => {
            let before: String = statement
                .sql
                .chars()
                .take(position.saturating_sub(1) as usize)
                .collect();
            statement.line + before.matches('\n').count() as u32
        }
        None => statement.line,
    }
}

fn quoted_index(target: &ConcurrentIndex) -> String {
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    match &target.schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(&target.name)),
        None => quote(&target.name),
    }
}

/// Before `CREATE INDEX CONCURRENTLY`: an INVALID index of that name is a failed build's
/// leftover. If it is this statement's own (an earlier attempt stopped here), drop it and build
/// again; otherwise refuse, since `IF NOT EXISTS` would silently keep a useless index.
fn clear_invalid_index(
    db: &mut dyn Driver,
    target: &ConcurrentIndex,
    leftover_is_ours: bool,
    version: &str,
    observer: &mut dyn Observer,
) -> Result<(), DriverError> {
    if !index_is_invalid(db, target)? {
        return Ok(());
    }
    let quoted = quoted_index(target);
    if leftover_is_ours {
        db.execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {quoted}"))?;
        observer.event(Event::InvalidIndexDropped {
            version,
            index: &target.name,
        });
        return Ok(());
    }
    Err(DriverError::new(
        ErrorKind::Statement,
        format!(
            "index {quoted} exists and is INVALID (left by a failed CREATE INDEX CONCURRENTLY)"
        ),
    )
    .with_sqlstate(REFUSED)
    .with_hint(format!(
        "drop it with `DROP INDEX CONCURRENTLY {quoted};` and run `safeshift up` again"
    )))
}

/// After `CREATE INDEX CONCURRENTLY`: the index must be valid.
fn require_valid_index(db: &mut dyn Driver, target: &ConcurrentIndex) -> Result<(), DriverError> {
    if index_is_invalid(db, target)? {
        let quoted = quoted_index(target);
        return Err(DriverError::new(
            ErrorKind::Statement,
            format!("index {quoted} is INVALID after the statement ran"),
        )
        .with_hint(format!(
            "drop it with `DROP INDEX CONCURRENTLY {quoted};` and run `safeshift up` again"
        )));
    }
    Ok(())
}

/// Whether the index a `CREATE INDEX CONCURRENTLY` builds exists and is INVALID; only
/// PostgreSQL leaves such indexes.
fn index_is_invalid(db: &mut dyn Driver, target: &ConcurrentIndex) -> Result<bool, DriverError> {
    match PostgresDriver::of_mut(db) {
        Some(postgres) => postgres.index_is_invalid(target.schema.as_deref(), &target.name),
        None => Ok(false),
    }
}

/// Sleeps, waking early if interrupted; returns false if interrupted.
pub(crate) fn sleep_unless_interrupted(duration: Duration, interrupt: &Interrupt) -> bool {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if interrupt.is_requested() {
            return false;
        }
        std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(50)));
    }
    !interrupt.is_requested()
}
