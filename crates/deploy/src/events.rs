//! The run-events log: what a run records besides its migrations (pre-flight, backup, hooks,
//! watchdog, health checks, rollback), and what a restore must not lose of it.

use safeshift_driver::{Driver, DriverError, EventKind, EventOutcome, EventRecord, NewEvent};
use safeshift_runner::Identity;

/// Who records: the run and the environment it runs in.
#[derive(Debug, Clone, Copy)]
pub struct Recorder<'a> {
    pub identity: &'a Identity,
    pub environment: Option<&'a str>,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub kind: EventKind,
    pub outcome: EventOutcome,
    /// One line for people; redacted before it is stored.
    pub summary: String,
    /// Details for machines; redacted before they are stored.
    pub detail: Option<serde_json::Value>,
    /// The backup the event concerns.
    pub backup: Option<&'a str>,
}

impl Recorder<'_> {
    /// Appends an event to the events log. A failure to record is for the caller to report as
    /// a warning, never a reason to stop what is being recorded.
    pub fn record(&self, db: &mut dyn Driver, entry: Entry<'_>) -> Result<(), DriverError> {
        let event = NewEvent {
            run_id: self.identity.run_id.clone(),
            kind: entry.kind,
            outcome: entry.outcome,
            environment: self.environment.map(str::to_owned),
            summary: safeshift_driver::redact(&entry.summary),
            detail: entry
                .detail
                .map(|d| safeshift_driver::redact(&d.to_string())),
            backup_ref: entry.backup.map(str::to_owned),
            installed_by: self.identity.installed_by.clone(),
            tool_version: self.identity.tool_version.clone(),
            at: None,
        };
        db.append_event(&event).map(drop)
    }
}

/// Appends again the events a restore took away: those newer than anything the restored log
/// holds, with their original times, so the log keeps what happened since the backup. Returns
/// how many.
pub fn carry_over(db: &mut dyn Driver, before: &[EventRecord]) -> usize {
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
