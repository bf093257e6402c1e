//! Resuming at a statement that runs outside a transaction, where an earlier attempt stopped
//! (killed, its connection lost, or failed part-way). Such a statement commits on its own, so
//! the earlier attempt's execution may still be running on the server, may have finished there
//! after its runner died (its progress never recorded), may have stopped half-way, or may have
//! left something behind. This finds out which before the statement runs again, and says so:
//! no statement is applied twice, and none is recorded as applied unless its effect is there.

use std::time::{Duration, Instant};

use safeshift_driver::{
    Driver, DriverError, ErrorKind, EventKind, EventOutcome, HistoryRecord, InterruptedOutcome,
    NewEvent,
};
use safeshift_source::{Statement, Transactionality};

use crate::apply::sleep_unless_interrupted;
use crate::error::REFUSED;
use crate::events::{Event, Observer};
use crate::interrupt::Interrupt;
use crate::settings::Settings;

/// How often a statement left running by an interrupted run is looked for while waiting.
const STILL_RUNNING_POLL: Duration = Duration::from_millis(200);

/// What to do with the statement.
pub(crate) enum Resumption {
    /// Run it as written.
    Run,
    /// Its effect is present: record it as applied without running it.
    AlreadyApplied,
    /// Run this statement instead (it completes what was cut off half-way).
    RunInstead(String),
}

/// The statement being resumed, for messages and the events log.
pub(crate) struct Resuming<'a> {
    pub version: &'a str,
    /// 1-based.
    pub number: usize,
    /// An earlier attempt stopped at this very statement.
    pub stopped_here: bool,
    pub settings: &'a Settings,
    pub interrupt: &'a Interrupt,
}

/// Before a statement that cannot run in a transaction: waits for an execution of it left
/// running by an interrupted run (refusing past the run lock's patience), then, if an earlier
/// attempt stopped here, reads what it left and acts on it.
pub(crate) fn prepare(
    db: &mut dyn Driver,
    statement: &Statement,
    resuming: &Resuming<'_>,
    observer: &mut dyn Observer,
) -> Result<Resumption, DriverError> {
    wait_while_still_running(db, statement, resuming, observer)?;
    if !resuming.stopped_here {
        return Ok(Resumption::Run);
    }
    match db.interrupted_outcome(&statement.sql)? {
        InterruptedOutcome::InEffect { evidence } => {
            observer.event(Event::StatementInEffect {
                version: resuming.version,
                number: resuming.number,
                evidence: &evidence,
            });
            record_event(
                db,
                resuming,
                format!(
                    "{} statement {} recorded as applied without running it again: {evidence}",
                    resuming.version, resuming.number
                ),
                observer,
            );
            Ok(Resumption::AlreadyApplied)
        }
        InterruptedOutcome::HalfDone { evidence, finish } => {
            observer.event(Event::StatementHalfDone {
                version: resuming.version,
                number: resuming.number,
                evidence: &evidence,
                finish: &finish,
            });
            record_event(
                db,
                resuming,
                format!(
                    "{} statement {} was cut off half-way ({evidence}); finished it with `{finish}`",
                    resuming.version, resuming.number
                ),
                observer,
            );
            Ok(Resumption::RunInstead(finish))
        }
        InterruptedOutcome::Leftovers(leftovers) => {
            for leftover in &leftovers {
                db.execute(&leftover.drop)?;
                observer.event(Event::LeftoverDropped {
                    version: resuming.version,
                    number: resuming.number,
                    leftover: &leftover.description,
                });
                record_event(
                    db,
                    resuming,
                    format!(
                        "{} statement {}: dropped {} before running it again",
                        resuming.version, resuming.number, leftover.description
                    ),
                    observer,
                );
            }
            Ok(Resumption::Run)
        }
        InterruptedOutcome::RunAgain { note } => {
            if let Some(note) = note {
                observer.event(Event::StatementRepeated {
                    version: resuming.version,
                    number: resuming.number,
                    note: &note,
                });
            }
            Ok(Resumption::Run)
        }
        InterruptedOutcome::Conflict { message, hint } => {
            Err(DriverError::new(ErrorKind::Statement, message)
                .with_sqlstate(REFUSED)
                .with_hint(hint))
        }
    }
}

/// A runner killed while running this statement leaves it running on the server until the
/// server notices (through a connection pooler it may not notice at all). Running it again
/// meanwhile would apply it twice, or trip over its half-built index: wait for it to end.
fn wait_while_still_running(
    db: &mut dyn Driver,
    statement: &Statement,
    resuming: &Resuming<'_>,
    observer: &mut dyn Observer,
) -> Result<(), DriverError> {
    let patience = resuming.settings.lock.wait;
    let started = Instant::now();
    let mut announced = None;
    while let Some(pid) = db.statement_in_progress(&statement.sql)? {
        let waited = started.elapsed();
        if waited >= patience {
            return Err(DriverError::new(
                ErrorKind::Statement,
                format!(
                    "this statement is still running on the server in process {pid}, left by an interrupted run \
                     (waited {}s for it to end)",
                    waited.as_secs()
                ),
            )
            .with_sqlstate(REFUSED)
            .with_hint(format!(
                "wait for it to finish, or cancel it with `SELECT pg_cancel_backend({pid});`, then run `safeshift up` again"
            )));
        }
        if announced != Some(pid) {
            announced = Some(pid);
            observer.event(Event::WaitingForStatement {
                version: resuming.version,
                number: resuming.number,
                pid,
                patience,
            });
        }
        if !sleep_unless_interrupted(STILL_RUNNING_POLL, resuming.interrupt) {
            return Err(DriverError::new(
                ErrorKind::Canceled,
                "interrupted while waiting for the statement left running by an interrupted run",
            ));
        }
    }
    Ok(())
}

/// Appends what was found to the run-events log, so `history --events` tells it too. The
/// history's own progress record is the truth either way; a log that cannot be written is a
/// warning.
fn record_event(
    db: &mut dyn Driver,
    resuming: &Resuming<'_>,
    summary: String,
    observer: &mut dyn Observer,
) {
    let identity = &resuming.settings.identity;
    let event = NewEvent {
        run_id: identity.run_id.clone(),
        kind: EventKind::Reconcile,
        outcome: EventOutcome::Succeeded,
        environment: None,
        summary,
        detail: None,
        backup_ref: resuming.settings.backup_ref.clone(),
        installed_by: identity.installed_by.clone(),
        tool_version: identity.tool_version.clone(),
        at: None,
    };
    if let Err(error) = db.append_event(&event) {
        observer.event(Event::Warning(format!(
            "could not record in the events log that {}: {}",
            event.summary, error.message
        )));
    }
}

/// The history's message for a non-transactional attempt whose runner stopped without finishing
/// it, given the statement it stopped at (when the file still has it). It claims only what is
/// known: the recorded statements stay applied, and the next run resumes at the first one not
/// recorded, which, if it runs outside a transaction, may have finished on the server anyway.
pub(crate) fn interrupted_attempt_message(
    record: &HistoryRecord,
    next: Option<&Statement>,
) -> String {
    let applied = record.statements_applied;
    let total = record
        .statements_total
        .map_or_else(|| "?".to_owned(), |total| total.to_string());
    let stopped = format!(
        "interrupted: the runner stopped after {applied} of {total} statement(s) were recorded as applied (those stay applied)"
    );
    match next.map(|statement| &statement.transactionality) {
        Some(Transactionality::OutsideTransaction { what, .. }) => format!(
            "{stopped}; statement {} ({what}) runs outside a transaction and may have finished on the server: \
             the next run checks what it left before resuming there",
            applied + 1
        ),
        _ => format!(
            "{stopped}; the next run resumes at statement {}",
            applied + 1
        ),
    }
}
