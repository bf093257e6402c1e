//! Running one migration section: the attempt loop with retries, per-statement progress for
//! non-transactional sections, and the INVALID-index check around `CREATE INDEX CONCURRENTLY`.

use std::time::{Duration, Instant};

use safeshift_driver::{
    Driver, DriverError, ErrorKind, Failure, Finishing, NewRecord, RecordKind, Status,
};
use safeshift_source::{Checksum, ConcurrentIndex, Statement, Transactionality};

use crate::error::{FailedStatement, REFUSED, RunError};
use crate::events::{Event, Observer};
use crate::hooks::{Progress, StatementContext, StatementHooks};
use crate::interrupt::Interrupt;
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
    let transactional = step.section.options.transaction;
    let total = step.statements.len();
    let prefixes = Checksum::of_statement_prefixes(step.statements.iter().map(|s| s.sql.as_str()));
    let migration = step.migration;
    let version = migration.version.as_str();
    let file = step.section.relative_path.display().to_string();
    let mut resume_from = step.resume_from;
    let mut resuming_failed_statement = step.resuming_failed_statement;
    let mut attempt: u32 = 1;
    // How long the failed attempts have run in total (see `RetryPolicy::max_stall`).
    let mut stalled = Duration::ZERO;
    let first_resume = step.resume_from;
    if !transactional && !db.timeouts_outside_transactions() {
        observer.event(Event::Warning(format!(
            "{version} runs without a transaction through a connection that may be pooled (lease lock): \
             lock_timeout and statement_timeout cannot be set for its statements; use a direct connection for it"
        )));
    }
    loop {
        let start_index = if transactional { 0 } else { resume_from };
        let record = NewRecord {
            run_id: settings.identity.run_id.clone(),
            kind: RecordKind::Migrate,
            version: version.to_owned(),
            name: migration.name.clone(),
            file: file.clone(),
            direction: step.direction,
            status: Status::Running,
            checksum: Some(migration.up.checksum.to_string()),
            transactional,
            statements_total: Some(total as i64),
            statements_applied: start_index as i64,
            applied_checksum: Some(prefixes[start_index].to_string()),
            attempt: i64::from(attempt),
            installed_by: settings.identity.installed_by.clone(),
            tool_version: settings.identity.tool_version.clone(),
            note: None,
            backup_ref: settings.backup_ref.clone(),
        };
        observer.event(Event::MigrationStarted {
            version,
            name: &migration.name,
            direction: step.direction,
            transactional,
            statements: total,
            resume_from: start_index,
            attempt,
        });
        let started = Instant::now();
        db.begin_attempt(&record, &step.timeouts)
            .map_err(|error| match error.kind {
                ErrorKind::LockLost => RunError::LockLost(error.message),
                _ => RunError::Database(error),
            })?;

        let mut applied = start_index;
        // A migration without a transaction may open its own with BEGIN … COMMIT.
        let mut in_user_transaction = false;
        let mut failure: Option<(Option<usize>, DriverError)> = None;
        // Whether the last statement was sent together with the attempt's completion.
        let mut finished = false;
        for (index, statement) in step.statements.iter().enumerate().skip(start_index) {
            if interrupt.is_requested() {
                failure = Some((Some(index), interrupted()));
                break;
            }
            let applied_after = index + 1;
            // Without a migration transaction, a statement that can run in a transaction gets
            // one of its own, committed with its progress record: applied if and only if
            // recorded, even when the runner dies in between.
            let own_transaction = !transactional
                && !in_user_transaction
                && statement.transactionality == Transactionality::Any;
            let context = StatementContext {
                run_id: &settings.identity.run_id,
                version,
                file: &step.section.path,
                direction: step.direction,
                transactional,
                number: index + 1,
                total,
                attempt,
                timeouts: &step.timeouts,
                interrupt,
                resuming: resuming_failed_statement && index == start_index,
                record: own_transaction.then(|| Progress {
                    applied: applied_after as i64,
                    checksum: prefixes[applied_after].as_str(),
                }),
            };
            if let Err(error) = hooks.before_statement(db, statement, &context) {
                failure = Some((Some(index), error));
                break;
            }
            let outside = matches!(
                statement.transactionality,
                Transactionality::OutsideTransaction { .. }
            );
            let finishing;
            let mut statement = statement;
            if !transactional && outside {
                let resuming = Resuming {
                    version,
                    number: index + 1,
                    stopped_here: resuming_failed_statement && index == start_index,
                    settings,
                    interrupt,
                };
                match resume::prepare(db, statement, &resuming, observer) {
                    Ok(Resumption::Run) => {}
                    Ok(Resumption::RunInstead(sql)) => {
                        finishing = Statement {
                            sql,
                            ..statement.clone()
                        };
                        statement = &finishing;
                    }
                    Ok(Resumption::AlreadyApplied) => {
                        applied = applied_after;
                        if let Err(error) =
                            db.record_progress(applied as i64, prefixes[applied].as_str())
                        {
                            failure = Some((None, error));
                            break;
                        }
                        continue;
                    }
                    Err(error) => {
                        failure = Some((Some(index), error));
                        break;
                    }
                }
            }
            let concurrent_index = statement.concurrent_index();
            if let Some(target) = &concurrent_index {
                let leftover_is_ours = resuming_failed_statement && index == start_index;
                if let Err(error) =
                    clear_invalid_index(db, target, leftover_is_ours, version, observer)
                {
                    failure = Some((Some(index), error));
                    break;
                }
            }
            let (executed, recorded) = match hooks.run_statement(db, statement, &context) {
                Some(result) => (result, false),
                // The last statement of a migration's transaction goes with its history row
                // and the COMMIT.
                None if transactional && applied_after == total => match db.execute_and_finish(
                    &statement.sql,
                    applied_after as i64,
                    prefixes[applied_after].as_str(),
                    started.elapsed(),
                ) {
                    Ok(()) => {
                        finished = true;
                        (Ok(()), false)
                    }
                    Err(Finishing::Statement(error)) => (Err(error), false),
                    Err(Finishing::Completion(error)) => {
                        failure = Some((None, error));
                        break;
                    }
                },
                None if own_transaction => (
                    db.execute_recorded(
                        &statement.sql,
                        applied_after as i64,
                        prefixes[applied_after].as_str(),
                    ),
                    true,
                ),
                None => (db.execute(&statement.sql), false),
            };
            if let Err(error) = executed {
                failure = Some((Some(index), error));
                break;
            }
            if let Some(target) = &concurrent_index
                && let Err(error) = require_valid_index(db, target)
            {
                failure = Some((Some(index), error));
                break;
            }
            applied = applied_after;
            if !transactional {
                if let Transactionality::TransactionControl { what } = &statement.transactionality {
                    in_user_transaction = what == "BEGIN";
                }
                if !recorded
                    && let Err(error) =
                        db.record_progress(applied as i64, prefixes[applied].as_str())
                {
                    failure = Some((None, error));
                    break;
                }
                observer.event(Event::StatementApplied {
                    version,
                    number: applied,
                    total,
                    elapsed: started.elapsed(),
                });
                if let Some(reason) = db.lock_lost() {
                    failure = Some((None, DriverError::new(ErrorKind::LockLost, reason)));
                    break;
                }
            }
        }
        let elapsed = started.elapsed();
        let (index, error) = match failure {
            None => {
                let completed = if finished {
                    Ok(())
                } else {
                    db.finish_attempt(applied as i64, prefixes[applied].as_str(), elapsed)
                };
                match completed {
                    Ok(()) => {
                        observer.event(Event::MigrationFinished {
                            version,
                            name: &migration.name,
                            direction: step.direction,
                            duration: elapsed,
                            statements: total,
                        });
                        return Ok(CompletedMigration {
                            version: version.to_owned(),
                            name: migration.name.clone(),
                            file,
                            direction: step.direction,
                            transactional,
                            statements: total,
                            resumed_from: first_resume,
                            attempts: attempt,
                            duration_ms: elapsed.as_millis() as u64,
                        });
                    }
                    // The commit itself failed (a deferred constraint, a lost connection).
                    Err(error) => (None, error),
                }
            }
            Some(failure) => failure,
        };

        let statement = index.map(|i| &step.statements[i]);
        let interrupted_by_user = interrupt.is_requested() && error.kind == ErrorKind::Canceled;
        let recorded = error.kind != ErrorKind::ConnectionLost
            && db
                .fail_attempt(&failure_record(
                    &error,
                    statement,
                    interrupted_by_user.then(|| interrupt.reason()).as_deref(),
                    elapsed,
                ))
                .is_ok();
        if interrupted_by_user {
            return Err(RunError::Interrupted {
                version: Some(version.to_owned()),
                recorded,
                reason: interrupt.reason(),
            });
        }
        if error.kind == ErrorKind::LockLost {
            return Err(RunError::LockLost(error.message));
        }
        let applied_statements = if transactional { 0 } else { applied };
        stalled += elapsed;
        if error.is_retryable() && recorded && settings.retry.allows_retry(attempt, stalled) {
            let delay = settings.retry.delay(attempt);
            attempt += 1;
            observer.event(Event::Retrying {
                version,
                attempt,
                error: &error,
                delay,
            });
            if !sleep_unless_interrupted(delay, interrupt) {
                return Err(RunError::Interrupted {
                    version: Some(version.to_owned()),
                    recorded: true,
                    reason: interrupt.reason(),
                });
            }
            if !transactional {
                resume_from = applied;
                // The retried statement may have left an INVALID index behind.
                resuming_failed_statement = true;
            }
            continue;
        }
        return Err(RunError::MigrationFailed {
            version: version.to_owned(),
            file: step.section.path.clone(),
            direction: step.direction,
            statement: statement.map(|s| FailedStatement {
                number: s.index + 1,
                total,
                line: s.line,
                column: s.column,
                error_line: error_line(s, error.position),
                sql: s.sql.clone(),
            }),
            error,
            attempts: attempt,
            recorded,
            applied_statements,
            transactional,
        });
    }
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
    interrupted_because: Option<&str>,
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
    if !db.index_is_invalid(target.schema.as_deref(), &target.name)? {
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
    if db.index_is_invalid(target.schema.as_deref(), &target.name)? {
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
