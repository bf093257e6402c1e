//! Production runs: what `up` does around the migrations when an environment asks for care —
//! pre-flight checks, a verified backup, the plan and a typed confirmation, hooks, a watchdog
//! while migrating, health checks and a rollback — and the pieces `preflight`, `plan`,
//! `activity` and `backup` share. This module orchestrates library calls (runner, lint, backup,
//! watch) and renders their results; the work itself lives in those libraries.

pub mod confirm;
pub mod plan;
pub mod preflight;
pub mod render;
pub mod up;
pub mod watch;

use safeshift_driver::{Driver, EventKind, EventOutcome, NewEvent};

use crate::context::Context;
use crate::output::{YELLOW, err, styled};

/// Appends an event to the run-events log. A failure to record is a warning, never a reason to
/// stop what is being recorded.
pub fn record_event(
    db: &mut dyn Driver,
    context: &Context,
    kind: EventKind,
    outcome: EventOutcome,
    summary: impl Into<String>,
    detail: Option<serde_json::Value>,
    backup_ref: Option<&str>,
) {
    let event = NewEvent {
        run_id: context.identity.run_id.clone(),
        kind,
        outcome,
        environment: context.project.environment.as_ref().map(|e| e.name.clone()),
        summary: safeshift_driver::redact(&summary.into()),
        detail: detail.map(|d| safeshift_driver::redact(&d.to_string())),
        backup_ref: backup_ref.map(str::to_owned),
        installed_by: context.identity.installed_by.clone(),
        tool_version: context.identity.tool_version.clone(),
        at: None,
    };
    if let Err(error) = db.append_event(&event) {
        err(format!(
            "{} could not record the {kind} event in the events log: {error}",
            styled(YELLOW, "warning:")
        ));
    }
}

/// Makes sure the events log exists before a dump, so the backup holds it and a restore of the
/// backup replaces it (instead of failing on a table the backup does not know).
pub fn prepare_for_backup(db: &mut dyn Driver) {
    if let Err(error) = db.ensure_events() {
        err(format!(
            "{} could not create the events log before the backup: {error}",
            styled(YELLOW, "warning:")
        ));
    }
}

/// Appends again the events a restore took away: those newer than anything the restored log
/// holds, with their original times, so the log keeps what happened since the backup.
pub fn carry_over_events(db: &mut dyn Driver, before: &[safeshift_driver::EventRecord]) -> usize {
    let restored_max = db
        .read_events()
        .map(|events| events.iter().map(|e| e.id).max().unwrap_or(0))
        .unwrap_or(0);
    let mut carried = 0;
    for event in before.iter().filter(|e| e.id > restored_max) {
        let again = NewEvent {
            run_id: event.run_id.clone(),
            kind: event.kind,
            outcome: event.outcome,
            environment: event.environment.clone(),
            summary: event.summary.clone(),
            detail: event.detail.clone(),
            backup_ref: event.backup_ref.clone(),
            installed_by: event.installed_by.clone(),
            tool_version: event.tool_version.clone(),
            at: Some(event.at),
        };
        if db.append_event(&again).is_ok() {
            carried += 1;
        }
    }
    carried
}
