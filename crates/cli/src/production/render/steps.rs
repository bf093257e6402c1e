//! The steps of a guarded run, on stderr as they happen.

use safeshift_deploy::{NoWatchdog, Step};

use crate::output::{BOLD, YELLOW, err, styled};
use crate::production::render;

/// Prints one step of a run.
pub fn step(step: &Step<'_>) {
    let say = |line: String| err(line);
    match step {
        Step::SizesUnavailable => err(format!(
            "{} could not read the table sizes in time (a lock is queued on one of them); risks are graded without sizes",
            styled(YELLOW, "warning:")
        )),
        Step::Preflight(report) => render::preflight(report, &say),
        Step::BackupStarted { dir } => err(format!(
            "{} taking a backup into {}",
            styled(BOLD, "Backup:"),
            dir.display()
        )),
        Step::BackupChecked { verification } => render::verification(verification, &say),
        Step::BackupTaken { reference } => err(format!("  backup {reference} taken and verified")),
        Step::Hook(outcome) => {
            err(format!(
                "{} {} hook `{}`: {} ({} ms)",
                styled(BOLD, "Hook:"),
                outcome.phase,
                outcome.command.join(" "),
                if outcome.ok {
                    "ok".to_owned()
                } else {
                    outcome.problem.clone().unwrap_or_default()
                },
                outcome.duration_ms
            ));
            for line in outcome.output.lines() {
                err(format!("    {line}"));
            }
        }
        Step::NoWatchdog(NoWatchdog::Pooled) => err(format!(
            "{} no watchdog: the migration connection has no fixed server process (lease lock through a pooler)",
            styled(YELLOW, "note:")
        )),
        Step::NoWatchdog(NoWatchdog::Failed(error)) => err(format!(
            "{} no watchdog: {error}",
            styled(YELLOW, "warning:")
        )),
        Step::HealthChecksStarted { applied } => err(format!(
            "{} after {applied} migration(s)",
            styled(BOLD, "Health checks")
        )),
        Step::Health(outcome) => render::health(outcome, &say),
        Step::RollbackStarted { migrations } => err(format!(
            "{} rolling back the {migrations} migration(s) this run applied, newest first",
            styled(BOLD, "Rollback:")
        )),
        Step::RollbackEnded { summary } => err(*summary),
        Step::EventsLogUnavailable { error } => err(format!(
            "{} could not create the events log before the backup: {error}",
            styled(YELLOW, "warning:")
        )),
        Step::EventNotRecorded { kind, error } => err(format!(
            "{} could not record the {kind} event in the events log: {error}",
            styled(YELLOW, "warning:")
        )),
    }
}
