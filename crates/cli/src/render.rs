//! Human-readable rendering of the runner's reports and events.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use safeshift_driver::{Direction, HistoryRecord, Status};
use safeshift_runner::{DryRun, EntryState, Event, Observer, RunReport, StatusReport};

use crate::output::{BOLD, CYAN, DIM, GREEN, RED, YELLOW, err, millis, out, styled, table};

fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn state_cell(state: EntryState) -> String {
    let style = match state {
        EntryState::Applied => GREEN,
        EntryState::Pending | EntryState::Reapply => YELLOW,
        EntryState::Changed
        | EntryState::FileMissing
        | EntryState::Failed
        | EntryState::Partial
        | EntryState::PartiallyRolledBack => RED,
        EntryState::Running => CYAN,
    };
    styled(style, state.as_str())
}

/// `safeshift status`.
pub fn status(report: &StatusReport, migrations_dir: &str) {
    out(format!(
        "{} {} · {} {} · history {}{}",
        styled(BOLD, "Database"),
        report.database,
        report.engine,
        report.server_version,
        report.history,
        if report.history_exists {
            ""
        } else {
            " (not created yet)"
        }
    ));
    out(format!(
        "{} {migrations_dir} · format {} ({})",
        styled(BOLD, "Migrations"),
        report.format.format,
        report.format.reason
    ));
    if let Some(holder) = &report.run_in_progress {
        let since = holder
            .since
            .as_ref()
            .map(|at| format!(" (connected since {} UTC)", time(at)))
            .unwrap_or_default();
        out(format!(
            "{} a run is in progress: the run lock is held by {}{since}; pending migrations may be applying now",
            styled(CYAN, "Running"),
            holder.description
        ));
    }
    out("");
    if report.entries.is_empty() {
        out(format!(
            "No migrations yet. Create one with `safeshift new <description>` in {migrations_dir}."
        ));
        return;
    }
    let mut rows = vec![
        ["VERSION", "NAME", "STATE", "APPLIED (UTC)", "BY", "TOOK"]
            .iter()
            .map(|h| styled(DIM, h))
            .collect::<Vec<_>>(),
    ];
    for entry in &report.entries {
        let mut state = state_cell(entry.state);
        if let Some(partial) = &entry.partial {
            state.push_str(&format!(
                " {}/{}",
                partial.applied,
                partial.total.map_or_else(|| "?".into(), |t| t.to_string())
            ));
        }
        if entry.out_of_order {
            state.push_str(&styled(YELLOW, " (out of order)"));
        }
        rows.push(vec![
            entry.version.clone(),
            entry.name.clone(),
            state,
            entry.applied_at.as_ref().map(time).unwrap_or_default(),
            entry.applied_by.clone().unwrap_or_default(),
            entry
                .duration_ms
                .map(|ms| millis(ms as u64))
                .unwrap_or_default(),
        ]);
    }
    for line in table(&rows) {
        out(line);
    }
    let notes: Vec<String> = report
        .entries
        .iter()
        .filter_map(|entry| {
            let note = match entry.state {
                EntryState::Changed => format!(
                    "{} changed since it was applied ({} recorded, {} now): restore it, or accept with `safeshift repair {}`",
                    entry.file.as_deref().unwrap_or(&entry.version),
                    short(entry.recorded_checksum.as_deref()),
                    short(entry.checksum.as_deref()),
                    entry.version
                ),
                EntryState::FileMissing => format!("{} is applied but its file is gone", entry.version),
                EntryState::Partial | EntryState::PartiallyRolledBack | EntryState::Failed => {
                    let error = entry.last_error.as_ref();
                    let what = match entry.state {
                        EntryState::Partial => "stopped part-way; `safeshift up` resumes at the failed statement",
                        EntryState::PartiallyRolledBack => "its rollback stopped part-way; `safeshift down` resumes it",
                        _ => "its last attempt failed and applied nothing",
                    };
                    let cause = error
                        .and_then(|e| e.message.clone())
                        .map(|m| format!(" ({}{m}{})", error.and_then(|e| e.sqlstate.clone()).map(|c| format!("{c} ")).unwrap_or_default(),
                            error.and_then(|e| e.line).map(|l| format!(", line {l}")).unwrap_or_default()))
                        .unwrap_or_default();
                    format!("{} {what}{cause}", entry.version)
                }
                EntryState::Running => format!("{} has an attempt marked running: in progress now, or its runner died (the next `up` settles it)", entry.version),
                _ if entry.out_of_order => format!("{} is older than the newest applied version; `up` refuses it without --allow-out-of-order", entry.version),
                _ => return None,
            };
            Some(note)
        })
        .collect();
    if !notes.is_empty() {
        out("");
        for note in notes {
            out(format!("{} {note}", styled(YELLOW, "!")));
        }
    }
    for warning in &report.warnings {
        out(format!("{} {warning}", styled(YELLOW, "warning:")));
    }
    out("");
    let applied = report
        .entries
        .iter()
        .filter(|e| e.state.is_applied())
        .count();
    let summary = format!(
        "{} migration(s): {applied} applied, {} pending.",
        report.entries.len(),
        report.pending
    );
    if report.pending > 0 {
        out(format!("{summary} Run `safeshift up` to apply."));
    } else {
        out(summary);
    }
}

fn short(checksum: Option<&str>) -> String {
    checksum
        .map(|c| c.trim_start_matches("sha256:").chars().take(12).collect())
        .unwrap_or_else(|| "?".into())
}

/// `safeshift history`.
pub fn history(records: &[HistoryRecord]) {
    if records.is_empty() {
        out("The history is empty.");
        return;
    }
    let mut rows = vec![
        [
            "ID",
            "RUN",
            "VERSION",
            "DIR",
            "KIND",
            "STATUS",
            "STMTS",
            "STARTED (UTC)",
            "TOOK",
            "BY",
            "NOTE",
        ]
        .iter()
        .map(|h| styled(DIM, h))
        .collect::<Vec<_>>(),
    ];
    for record in records {
        let status = match record.status {
            Status::Succeeded => styled(GREEN, "succeeded"),
            Status::Failed => styled(RED, "failed"),
            Status::Running => styled(CYAN, "running"),
        };
        let note = match (&record.error_message, &record.note) {
            (Some(error), _) => {
                let code = record
                    .error_sqlstate
                    .as_deref()
                    .map(|c| format!("{c} "))
                    .unwrap_or_default();
                let line = record
                    .error_line
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                truncate(&format!("{code}{error}{line}"), 90)
            }
            (None, Some(note)) => truncate(note, 90),
            _ => String::new(),
        };
        let attempt = if record.attempt > 1 {
            format!(" #{}", record.attempt)
        } else {
            String::new()
        };
        rows.push(vec![
            record.id.to_string(),
            record.run_id.chars().take(8).collect(),
            record.version.clone(),
            record.direction.to_string(),
            format!("{}{attempt}", record.kind.as_str()),
            status,
            record
                .statements_total
                .map(|total| format!("{}/{total}", record.statements_applied))
                .unwrap_or_default(),
            time(&record.started_at),
            record
                .duration_ms
                .map(|ms| millis(ms as u64))
                .unwrap_or_default(),
            record.installed_by.clone(),
            note,
        ]);
    }
    for line in table(&rows) {
        out(line);
    }
}

fn truncate(text: &str, max: usize) -> String {
    let single_line = text.replace('\n', " ");
    if single_line.chars().count() <= max {
        single_line
    } else {
        format!("{}…", single_line.chars().take(max - 1).collect::<String>())
    }
}

/// `--dry-run`: the SQL that would run, as a script.
pub fn dry_run(plan: &DryRun, database: &str) {
    let verb = match plan.direction {
        Direction::Up => "apply",
        Direction::Down => "roll back",
    };
    if plan.steps.is_empty() {
        out(format!("-- Nothing to {verb}: {database} is up to date."));
        return;
    }
    out(format!(
        "-- safeshift would {verb} {} migration(s) on {database}.",
        plan.steps.len()
    ));
    out(format!(
        "-- Each attempt is recorded in {}: a transactional migration's row is completed inside the migration's transaction.",
        plan.history
    ));
    for step in &plan.steps {
        out("");
        let mode = if step.transactional {
            "in one transaction".to_owned()
        } else {
            "without a transaction: each statement commits on its own".to_owned()
        };
        out(format!(
            "-- {} {} ({}) {mode}",
            step.version, step.name, step.file
        ));
        if step.resume_from > 0 {
            out(format!(
                "-- resuming: the first {} statement(s) were applied by an earlier attempt",
                step.resume_from
            ));
        }
        for statement in &step.frame.before {
            out(format!("{statement};"));
        }
        for statement in &step.statements {
            out(format!("-- line {}", statement.line));
            out(format!("{};", statement.sql));
        }
        for statement in &step.frame.after {
            out(format!("{statement};"));
        }
    }
}

/// Prints run events as they happen.
pub struct Progress {
    quiet: bool,
    to_stderr: bool,
    lock_wait_limit: Duration,
    last_wait_message: Option<Instant>,
}

impl Progress {
    pub fn new(quiet: bool, to_stderr: bool, lock_wait_limit: Duration) -> Progress {
        Progress {
            quiet,
            to_stderr,
            lock_wait_limit,
            last_wait_message: None,
        }
    }

    fn say(&self, line: String) {
        if self.to_stderr {
            err(line);
        } else {
            out(line);
        }
    }
}

impl Observer for Progress {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Warning(message) => err(format!("{} {message}", styled(YELLOW, "warning:"))),
            Event::SettledInterrupted { record } => err(format!(
                "{} an attempt of {} ({}, run {}, started {} UTC by {}) never finished; recorded it as interrupted",
                styled(YELLOW, "note:"),
                record.version,
                record.direction,
                record.run_id.chars().take(8).collect::<String>(),
                time(&record.started_at),
                record.installed_by
            )),
            // What a resumed run found of an interrupted statement is said even when quiet:
            // it explains why a statement was skipped or replaced.
            Event::StatementInEffect {
                number, evidence, ..
            } => self.say(format!(
                "    statement {number} is already in effect: {evidence}; recorded it as applied without running it again"
            )),
            Event::StatementHalfDone {
                number,
                evidence,
                finish,
                ..
            } => self.say(format!(
                "    statement {number} was cut off half-way: {evidence}; finishing it with {finish}"
            )),
            Event::LeftoverDropped {
                number, leftover, ..
            } => self.say(format!(
                "    dropped {leftover}; running statement {number} again"
            )),
            Event::WaitingForStatement {
                version,
                number,
                pid,
                patience,
            } => self.say(format!(
                "    statement {number} of {version} is still running on the server in process {pid}, left by an \
                 interrupted run; waiting for it to end (up to {}s)",
                patience.as_secs()
            )),
            _ if self.quiet => {}
            Event::StatementRepeated { number, note, .. } => {
                self.say(format!("    statement {number} runs again: {note}"));
            }
            Event::WaitingForLock { holder, waited } => {
                let due = self
                    .last_wait_message
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(5));
                if due {
                    self.last_wait_message = Some(Instant::now());
                    let holder =
                        holder.map_or_else(|| "another run".to_owned(), |h| h.description.clone());
                    self.say(format!(
                        "waiting for the run lock, held by {holder} ({}s of {}s)",
                        waited.as_secs(),
                        self.lock_wait_limit.as_secs()
                    ));
                }
            }
            Event::LockAcquired { waited } => {
                if waited >= Duration::from_millis(500) {
                    self.say(format!(
                        "acquired the run lock after {}",
                        millis(waited.as_millis() as u64)
                    ));
                }
            }
            Event::MigrationStarted {
                version,
                name,
                direction,
                transactional,
                statements,
                resume_from,
                attempt,
            } => {
                if !transactional || resume_from > 0 || attempt > 1 {
                    let mut details = vec![format!("{statements} statement(s)")];
                    if !transactional {
                        details.push("without a transaction".into());
                    }
                    if resume_from > 0 {
                        details.push(format!("resuming at statement {}", resume_from + 1));
                    }
                    if attempt > 1 {
                        details.push(format!("attempt {attempt}"));
                    }
                    self.say(format!(
                        "{} {version} {name} ({direction}; {})",
                        styled(CYAN, "→"),
                        details.join(", ")
                    ));
                }
            }
            Event::StatementApplied {
                number,
                total,
                elapsed,
                ..
            } => {
                self.say(format!(
                    "    statement {number}/{total} done ({})",
                    millis(elapsed.as_millis() as u64)
                ));
            }
            Event::InvalidIndexDropped { index, .. } => {
                self.say(format!("    dropped the INVALID index {index} left by the failed attempt; building it again"));
            }
            Event::Retrying {
                version,
                attempt,
                error,
                delay,
            } => {
                self.say(format!(
                    "{} {version}: {}; retrying (attempt {attempt}) in {}",
                    styled(YELLOW, "retry"),
                    error.summary(),
                    millis(delay.as_millis() as u64)
                ));
            }
            Event::MigrationFinished {
                version,
                name,
                direction,
                duration,
                statements,
            } => {
                let verb = match direction {
                    Direction::Up => styled(GREEN, "applied"),
                    Direction::Down => styled(GREEN, "rolled back"),
                };
                self.say(format!(
                    "{verb} {version} {name} {}",
                    styled(
                        DIM,
                        format!(
                            "({statements} statement(s), {})",
                            millis(duration.as_millis() as u64)
                        )
                    )
                ));
            }
        }
    }
}

/// The last line of `up` or `down`.
pub fn run_summary(report: &RunReport, direction: Direction, database: &str) {
    let count = report.migrations.len();
    let line = match (direction, count) {
        (Direction::Up, 0) => format!("Nothing to apply: {database} is up to date."),
        (Direction::Down, 0) => format!("Nothing to roll back on {database}."),
        (Direction::Up, n) => format!(
            "Applied {n} migration(s) in {}.",
            millis(report.duration_ms)
        ),
        (Direction::Down, n) => format!(
            "Rolled back {n} migration(s) in {}.",
            millis(report.duration_ms)
        ),
    };
    out(line);
}

/// `safeshift history --events`.
pub fn events(events: &[safeshift_driver::EventRecord]) {
    if events.is_empty() {
        out("No run events recorded.");
        return;
    }
    let mut rows = vec![
        [
            "ID", "RUN", "AT (UTC)", "ENV", "KIND", "OUTCOME", "BY", "SUMMARY",
        ]
        .iter()
        .map(|h| styled(DIM, h))
        .collect::<Vec<_>>(),
    ];
    for event in events {
        let outcome = match event.outcome {
            safeshift_driver::EventOutcome::Succeeded => styled(GREEN, "succeeded"),
            safeshift_driver::EventOutcome::Warning => styled(YELLOW, "warning"),
            safeshift_driver::EventOutcome::Failed => styled(RED, "failed"),
        };
        rows.push(vec![
            event.id.to_string(),
            event.run_id.chars().take(8).collect(),
            time(&event.at),
            event.environment.clone().unwrap_or_default(),
            event.kind.to_string(),
            outcome,
            event.installed_by.clone(),
            truncate(&event.summary, 100),
        ]);
    }
    for line in table(&rows) {
        out(line);
    }
}
