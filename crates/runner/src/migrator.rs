//! The `Migrator`: status, up, down, history, repair and resolve over one [`Driver`].

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use safeshift_driver::{
    Dialect, Direction, Driver, HistoryRecord, LockAttempt, LockRequest, NewRecord, RecordKind,
    Status,
};
use safeshift_source::{
    Migration, MigrationSet, SourceError, SourceErrors, Version, implicit_commit,
};

use crate::applied_statements;
use crate::apply::{run_step, sleep_unless_interrupted};
use crate::error::RunError;
use crate::events::{Event, Observer};
use crate::hooks::{NoHooks, StatementHooks};
use crate::interrupt::Interrupt;
use crate::plan::{
    DownTarget, Step, check_directives, checksum_mismatches, noop_description, plan_down, plan_up,
    repeatable_changed,
};
use crate::report::{
    CompletedMigration, DryRun, DryRunStatement, DryRunStep, EntryState, LastError,
    PartialProgress, RepairReport, ResolveReport, RunFailure, RunReport, StatusEntry, StatusReport,
};
use crate::resume::interrupted_attempt_message;
use crate::settings::Settings;
use crate::state::HistoryState;

/// The kind of the first statement of a migration's up section that commits implicitly, on
/// the one engine that has such statements (MySQL); a section that does not split is left to
/// the run to report.
fn implicit_commit_of(migration: &Migration, dialect: Dialect) -> Option<String> {
    if dialect != Dialect::Mysql {
        return None;
    }
    let statements = migration.up.statements(dialect).ok()?;
    implicit_commit(&statements).map(str::to_owned)
}

/// A migration applied without safeshift, to record as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedElsewhere {
    pub version: String,
    pub name: String,
    /// The file, relative to the migrations directory.
    pub file: String,
    /// The file's checksum now (what later runs compare with).
    pub checksum: Option<String>,
    pub transactional: bool,
    /// Why it is recorded: where it was applied, by what, when.
    pub note: String,
}

/// How `resolve` records a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Finished by hand: record it as applied.
    Applied,
    /// Undone by hand: record it as not applied.
    RolledBack,
}

/// Applies and rolls back the migrations of one directory.
pub struct Migrator {
    migrations: MigrationSet,
    settings: Settings,
    interrupt: Arc<Interrupt>,
    hooks: RefCell<Box<dyn StatementHooks>>,
}

impl Migrator {
    pub fn new(migrations: MigrationSet, settings: Settings) -> Migrator {
        Migrator {
            migrations,
            settings,
            interrupt: Arc::new(Interrupt::default()),
            hooks: RefCell::new(Box::new(NoHooks)),
        }
    }

    pub fn migrations(&self) -> &MigrationSet {
        &self.migrations
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Requesting this (from a signal handler or a watchdog, together with the driver's
    /// canceller) stops the run at the next statement boundary, recording the interrupted
    /// attempt with the reason given.
    pub fn interrupt(&self) -> Arc<Interrupt> {
        Arc::clone(&self.interrupt)
    }

    /// Names the backup taken before this run, recorded in every attempt's history row.
    pub fn set_backup_ref(&mut self, backup: Option<String>) {
        self.settings.backup_ref = backup;
    }

    /// Installs hooks called around every statement (see [`StatementHooks`]).
    pub fn set_hooks(&mut self, hooks: Box<dyn StatementHooks>) {
        self.hooks = RefCell::new(hooks);
    }

    /// Every problem of every migration file, in both directions, for the database's dialect
    /// (see [`MigrationSet::check`]). Everything that runs migrations calls it first, before it
    /// takes the lock or creates the history: a directory with a broken file runs nothing.
    pub fn check_files(&self, dialect: Dialect) -> Result<(), RunError> {
        self.migrations.check(dialect).map_err(RunError::Source)
    }

    /// The files that could not be read at all: what records made from the files (repair,
    /// resolve, adoption) cannot be trusted without.
    fn require_readable_files(&self) -> Result<(), RunError> {
        if self.migrations.problems.is_empty() {
            Ok(())
        } else {
            Err(RunError::Source(SourceErrors(
                self.migrations.problems.clone(),
            )))
        }
    }

    /// Where every migration stands. Takes no lock and writes nothing. Files with problems are
    /// listed too, flagged with what is wrong.
    pub fn status(&self, db: &mut dyn Driver) -> Result<StatusReport, RunError> {
        let dialect = db.dialect();
        let history_exists = db.history_exists()?;
        let records = db.read_history()?;
        let state = HistoryState::from_records(&records);
        let newest_applied = state.newest_applied().cloned();
        let problems = match self.migrations.check(db.dialect()) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.0,
        };
        let warnings = self.status_warnings(&state);
        let entries: Vec<StatusEntry> = self
            .status_versions(&state, &problems)
            .into_iter()
            .map(|version| {
                let file_problems: Vec<&SourceError> = problems
                    .iter()
                    .filter(|p| p.version.as_ref() == Some(version))
                    .collect();
                self.status_entry(
                    version,
                    &state,
                    &file_problems,
                    dialect,
                    newest_applied.as_ref(),
                )
            })
            .collect();
        let pending = entries
            .iter()
            .filter(|e| e.file.is_some() && e.state.runs_on_up())
            .count();
        let problems = problems.into_iter().map(file_problem_report).collect();
        Ok(StatusReport {
            format: self.migrations.detection.clone(),
            database: db.redacted_url().to_owned(),
            engine: db.engine().as_str(),
            server_version: db.server().version.clone(),
            history: db.history_location(),
            history_exists,
            run_in_progress: db.lock_holder(self.settings.lock.mode)?,
            entries,
            pending,
            problems,
            warnings,
        })
    }

    /// The source's warnings, then one per history row whose version cannot be read (so a row
    /// edited by hand is not silently ignored).
    fn status_warnings(&self, state: &HistoryState) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .migrations
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.path.display(), w.message))
            .collect();
        for record in &state.unreadable {
            warnings.push(format!(
                "history row {} has a version safeshift cannot read (`{}`); it is ignored",
                record.id, record.version
            ));
        }
        warnings
    }

    /// Every version status lists, in order, once: the files, the versions only the history
    /// knows (files deleted since), and the versions of files too broken to load.
    fn status_versions<'a>(
        &'a self,
        state: &'a HistoryState,
        problems: &'a [SourceError],
    ) -> Vec<&'a Version> {
        let mut versions: Vec<&Version> = self
            .migrations
            .migrations
            .iter()
            .map(|m| &m.version)
            .collect();
        versions.extend(
            state
                .versions
                .keys()
                .filter(|v| self.migrations.get(v).is_none()),
        );
        versions.extend(problems.iter().filter_map(|p| p.version.as_ref()));
        versions.sort();
        versions.dedup();
        versions
    }

    /// One version's line of the status report, from its file (if any), its history and the
    /// problems found in its file.
    fn status_entry(
        &self,
        version: &Version,
        state: &HistoryState,
        file_problems: &[&SourceError],
        dialect: Dialect,
        newest_applied: Option<&Version>,
    ) -> StatusEntry {
        let migration = self.migrations.get(version);
        let recorded = state.get(version);
        let applied = recorded.is_some_and(|r| r.applied);
        let partial = recorded.and_then(|r| r.partial.as_ref());
        let current_checksum = migration.map(|m| m.up.checksum.to_string());
        let recorded_checksum = recorded.and_then(|r| r.checksum.clone());
        let state_of = entry_state(
            version,
            migration,
            state,
            file_problems,
            &current_checksum,
            &recorded_checksum,
        );
        let applied_record = recorded.and_then(|r| r.applied_record.as_ref());
        StatusEntry {
            version: version.to_string(),
            repeatable: version.is_repeatable(),
            name: migration.map_or_else(
                || {
                    recorded.map(|r| r.name.clone()).unwrap_or_else(|| {
                        file_problems
                            .first()
                            .map(|p| name_in_file_name(&p.path))
                            .unwrap_or_default()
                    })
                },
                |m| m.name.clone(),
            ),
            file: migration
                .map(|m| m.file().display().to_string())
                .or_else(|| {
                    file_problems.first().map(|p| {
                        p.path
                            .strip_prefix(&self.migrations.directory)
                            .unwrap_or(&p.path)
                            .display()
                            .to_string()
                    })
                }),
            state: state_of,
            problems: file_problems.iter().map(|p| p.to_string()).collect(),
            applied_at: applied_record.and_then(|r| r.finished_at.or(Some(r.started_at))),
            applied_by: applied_record.map(|r| r.installed_by.clone()),
            duration_ms: applied_record.and_then(|r| r.duration_ms),
            checksum: current_checksum,
            recorded_checksum,
            has_down: migration.is_some_and(|m| m.down_section().is_ok()),
            transactional: migration
                .map(|m| m.up.options.transaction && implicit_commit_of(m, dialect).is_none()),
            implicit_commit: migration
                .filter(|m| m.up.options.transaction)
                .and_then(|m| implicit_commit_of(m, dialect)),
            partial: partial.map(|p| PartialProgress {
                direction: p.direction,
                applied: p.applied,
                total: p.total,
            }),
            last_error: recorded
                .and_then(|r| r.last_failure.as_ref())
                .map(last_error_of),
            out_of_order: !applied
                && migration.is_some()
                && newest_applied.is_some_and(|newest| version < newest),
        }
    }

    /// Every history row, oldest first. Takes no lock.
    pub fn history(&self, db: &mut dyn Driver) -> Result<Vec<HistoryRecord>, RunError> {
        Ok(db.read_history()?)
    }

    /// What `up` would run, without taking the lock or changing anything.
    pub fn dry_run_up(
        &self,
        db: &mut dyn Driver,
        target: Option<&Version>,
    ) -> Result<DryRun, RunError> {
        self.check_files(db.dialect())?;
        let state = HistoryState::from_records(&db.read_history()?);
        let texts = applied_statements::read(db, &state);
        let steps = plan_up(
            &self.migrations,
            &state,
            &texts,
            target,
            self.settings.allow_out_of_order,
            db.dialect(),
            &self.settings.timeouts,
        )?;
        check_directives(&steps, self.hooks.borrow().as_ref())?;
        Ok(self.dry_run(db, Direction::Up, &steps))
    }

    /// What `down` would run, without taking the lock or changing anything.
    pub fn dry_run_down(
        &self,
        db: &mut dyn Driver,
        target: &DownTarget,
    ) -> Result<DryRun, RunError> {
        self.check_files(db.dialect())?;
        let state = HistoryState::from_records(&db.read_history()?);
        let texts = applied_statements::read(db, &state);
        let steps = plan_down(
            &self.migrations,
            &state,
            &texts,
            target,
            db.dialect(),
            &self.settings.timeouts,
            self.settings.strict_rollbacks,
        )?;
        check_directives(&steps, self.hooks.borrow().as_ref())?;
        Ok(self.dry_run(db, Direction::Down, &steps))
    }

    fn dry_run(&self, db: &dyn Driver, direction: Direction, steps: &[Step<'_>]) -> DryRun {
        DryRun {
            direction,
            history: db.history_location(),
            steps: steps
                .iter()
                .map(|step| DryRunStep {
                    version: step.migration.version.to_string(),
                    name: step.migration.name.clone(),
                    file: step.section.path.display().to_string(),
                    transactional: step.transactional,
                    implicit_commit: implicit_commit(&step.statements)
                        .filter(|_| step.section.options.transaction)
                        .map(str::to_owned),
                    resume_from: step.resume_from,
                    frame: db.attempt_frame(step.transactional, &step.timeouts),
                    statements: step
                        .statements
                        .iter()
                        .skip(step.resume_from)
                        .map(|s| DryRunStatement {
                            line: s.line,
                            sql: s.sql.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Creates the history table (under the run lock). Returns whether it was created.
    pub fn init_history(
        &self,
        db: &mut dyn Driver,
        observer: &mut dyn Observer,
    ) -> Result<bool, RunError> {
        let existed = db.history_exists()?;
        self.with_lock(db, observer, |_, _, _, _| Ok(()))?;
        Ok(!existed)
    }

    /// Applies pending migrations, in order, up to `target` (inclusive).
    pub fn up(
        &self,
        db: &mut dyn Driver,
        target: Option<&Version>,
        observer: &mut dyn Observer,
    ) -> Result<RunReport, RunFailure> {
        self.run(db, observer, |migrator, db, state| {
            let texts = applied_statements::read(db, state);
            plan_up(
                &migrator.migrations,
                state,
                &texts,
                target,
                migrator.settings.allow_out_of_order,
                db.dialect(),
                &migrator.settings.timeouts,
            )
        })
    }

    /// Rolls back applied migrations, newest first.
    pub fn down(
        &self,
        db: &mut dyn Driver,
        target: &DownTarget,
        observer: &mut dyn Observer,
    ) -> Result<RunReport, RunFailure> {
        self.run(db, observer, |migrator, db, state| {
            let texts = applied_statements::read(db, state);
            plan_down(
                &migrator.migrations,
                state,
                &texts,
                target,
                db.dialect(),
                &migrator.settings.timeouts,
                migrator.settings.strict_rollbacks,
            )
        })
    }

    fn run<'a>(
        &'a self,
        db: &mut dyn Driver,
        observer: &mut dyn Observer,
        plan: impl FnOnce(
            &'a Migrator,
            &mut dyn Driver,
            &HistoryState,
        ) -> Result<Vec<Step<'a>>, RunError>,
    ) -> Result<RunReport, RunFailure> {
        let started = Instant::now();
        let mut report = RunReport {
            run_id: self.settings.identity.run_id.clone(),
            ..RunReport::default()
        };
        self.check_files(db.dialect())?;
        let outcome = self.with_lock(db, observer, |db, state, waited, observer| {
            report.lock_waited_ms = waited.as_millis() as u64;
            let steps = plan(self, db, state)?;
            check_directives(&steps, self.hooks.borrow().as_ref())?;
            for step in &steps {
                if self.interrupt.is_requested() {
                    return Err(RunError::Interrupted {
                        version: Some(step.migration.version.to_string()),
                        recorded: true,
                        reason: self.interrupt.reason(),
                    });
                }
                if let Some(reason) = db.lock_lost() {
                    return Err(RunError::LockLost(reason));
                }
                if step.noop {
                    report
                        .migrations
                        .push(self.record_noop_rollback(db, step, observer)?);
                    continue;
                }
                let mut hooks = self.hooks.borrow_mut();
                let completed = run_step(
                    db,
                    step,
                    &self.settings,
                    &self.interrupt,
                    hooks.as_mut(),
                    observer,
                )
                .inspect_err(|error| self.keep_applied_statements(db, step, error))?;
                report.migrations.push(completed);
            }
            Ok(())
        });
        report.duration_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(()) => Ok(report),
            Err(error) => Err(RunFailure {
                completed: report,
                error,
            }),
        }
    }

    /// After a migration without a transaction stopped part-way, keeps the texts of the
    /// statements that stay applied, for the resume to compare the file with.
    fn keep_applied_statements(&self, db: &mut dyn Driver, step: &Step<'_>, error: &RunError) {
        if let RunError::MigrationFailed {
            transactional: false,
            recorded: true,
            applied_statements,
            ..
        } = error
        {
            applied_statements::record(
                db,
                &self.settings,
                step.migration.version.as_str(),
                step.direction,
                &step.section.relative_path.display().to_string(),
                &step.statements,
                *applied_statements,
            );
        }
    }

    /// Records a rollback whose down section holds no statements: nothing runs, and the
    /// history row says so.
    fn record_noop_rollback(
        &self,
        db: &mut dyn Driver,
        step: &Step<'_>,
        observer: &mut dyn Observer,
    ) -> Result<CompletedMigration, RunError> {
        let migration = step.migration;
        let what = noop_description(migration);
        let mut record = self.audit_record(
            RecordKind::Migrate,
            migration.version.as_str(),
            migration.name.clone(),
            migration.file().display().to_string(),
            Direction::Down,
            Some(migration.up.checksum.to_string()),
            step.section.options.transaction,
            format!("no-op rollback: {what} has no statements; nothing ran"),
        );
        record.statements_total = Some(0);
        db.append_record(&record)?;
        observer.event(Event::Warning(format!(
            "{}: {what} has no statements; recorded as rolled back without running anything",
            migration.version
        )));
        observer.event(Event::MigrationFinished {
            version: migration.version.as_str(),
            name: &migration.name,
            direction: Direction::Down,
            duration: Duration::ZERO,
            statements: 0,
        });
        Ok(CompletedMigration {
            version: migration.version.to_string(),
            name: migration.name.clone(),
            file: migration.file().display().to_string(),
            direction: Direction::Down,
            transactional: step.section.options.transaction,
            statements: 0,
            resumed_from: 0,
            attempts: 0,
            duration_ms: 0,
        })
    }

    /// Accepts changed files of applied migrations (all, or the given versions), writing an
    /// audit row for each.
    pub fn repair(
        &self,
        db: &mut dyn Driver,
        versions: &[Version],
        reason: Option<&str>,
        observer: &mut dyn Observer,
    ) -> Result<RepairReport, RunError> {
        self.require_readable_files()?;
        self.with_lock(db, observer, |db, state, _, _| {
            let mut mismatches = checksum_mismatches(&self.migrations, state);
            if !versions.is_empty() {
                for version in versions {
                    if !mismatches
                        .iter()
                        .any(|m| Version::parse(&m.version).as_ref() == Some(version))
                    {
                        let why = if state.is_applied(version) {
                            "its file is unchanged"
                        } else {
                            "it is not applied"
                        };
                        return Err(RunError::Usage(format!("{version} needs no repair: {why}")));
                    }
                }
                mismatches
                    .retain(|m| Version::parse(&m.version).is_some_and(|v| versions.contains(&v)));
            }
            for mismatch in &mismatches {
                let migration =
                    Version::parse(&mismatch.version).and_then(|v| self.migrations.get(&v));
                let mut note = format!(
                    "accepted a changed file: {} -> {}",
                    mismatch.recorded, mismatch.current
                );
                if let Some(reason) = reason {
                    note.push_str(&format!("; reason: {reason}"));
                }
                db.append_record(
                    &self.audit_record(
                        RecordKind::Repair,
                        &mismatch.version,
                        migration.map(|m| m.name.clone()).unwrap_or_default(),
                        migration
                            .map(|m| m.file().display().to_string())
                            .unwrap_or_default(),
                        Direction::Up,
                        Some(mismatch.current.clone()),
                        migration.is_none_or(|m| m.up.options.transaction),
                        note,
                    ),
                )?;
            }
            Ok(RepairReport {
                repaired: mismatches,
            })
        })
    }

    /// Records that a version was applied or rolled back by hand, with an audit row.
    pub fn resolve(
        &self,
        db: &mut dyn Driver,
        version: &Version,
        resolution: Resolution,
        reason: Option<&str>,
        observer: &mut dyn Observer,
    ) -> Result<ResolveReport, RunError> {
        self.require_readable_files()?;
        self.with_lock(db, observer, |db, state, _, _| {
            let migration = self.migrations.get(version);
            let recorded = state.get(version);
            if migration.is_none() && recorded.is_none() {
                return Err(RunError::Usage(format!(
                    "{version}: no migration file and no history has that version"
                )));
            }
            let applied = recorded.is_some_and(|r| r.applied);
            let unsettled =
                recorded.is_some_and(|r| r.partial.is_some() || r.last_failure.is_some());
            match resolution {
                Resolution::Applied if applied && !unsettled => {
                    return Err(RunError::Usage(format!(
                        "{version} is already applied; nothing to resolve"
                    )));
                }
                Resolution::RolledBack if !applied && !unsettled => {
                    return Err(RunError::Usage(format!(
                        "{version} is not applied; nothing to resolve"
                    )));
                }
                _ => {}
            }
            let (direction, verb) = match resolution {
                Resolution::Applied => (Direction::Up, "marked applied by hand"),
                Resolution::RolledBack => (Direction::Down, "marked rolled back by hand"),
            };
            let mut note = verb.to_owned();
            if let Some(reason) = reason {
                note.push_str(&format!("; reason: {reason}"));
            }
            let record = self.audit_record(
                RecordKind::Resolve,
                version.as_str(),
                migration.map_or_else(
                    || recorded.map(|r| r.name.clone()).unwrap_or_default(),
                    |m| m.name.clone(),
                ),
                migration.map_or_else(
                    || recorded.map(|r| r.file.clone()).unwrap_or_default(),
                    |m| m.file().display().to_string(),
                ),
                direction,
                migration
                    .map(|m| m.up.checksum.to_string())
                    .or_else(|| recorded.and_then(|r| r.checksum.clone())),
                migration.is_none_or(|m| m.up.options.transaction),
                note,
            );
            let id = db.append_record(&record)?;
            let written = db
                .read_history()?
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| RunError::Usage("the resolve row could not be read back".into()))?;
            Ok(ResolveReport { record: written })
        })
    }

    /// Under the run lock, asks `choose` which migrations to record as applied without running
    /// them (adopted from another tool's history, or a baseline of the live schema), given the
    /// history as it stands, and writes an audit row for each (kind `resolve`, with its note).
    /// Returns the rows written.
    pub fn record_applied(
        &self,
        db: &mut dyn Driver,
        observer: &mut dyn Observer,
        choose: impl FnOnce(&mut dyn Driver, &HistoryState) -> Result<Vec<AppliedElsewhere>, RunError>,
    ) -> Result<Vec<HistoryRecord>, RunError> {
        self.require_readable_files()?;
        self.with_lock(db, observer, |db, state, _, _| {
            let chosen = choose(db, state)?;
            let mut ids = Vec::with_capacity(chosen.len());
            for applied in chosen {
                ids.push(db.append_record(&self.audit_record(
                    RecordKind::Resolve,
                    &applied.version,
                    applied.name,
                    applied.file,
                    Direction::Up,
                    applied.checksum,
                    applied.transactional,
                    applied.note,
                ))?);
            }
            Ok(db
                .read_history()?
                .into_iter()
                .filter(|record| ids.contains(&record.id))
                .collect())
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn audit_record(
        &self,
        kind: RecordKind,
        version: &str,
        name: String,
        file: String,
        direction: Direction,
        checksum: Option<String>,
        transactional: bool,
        note: String,
    ) -> NewRecord {
        NewRecord {
            run_id: self.settings.identity.run_id.clone(),
            kind,
            version: version.to_owned(),
            name,
            file,
            direction,
            status: Status::Succeeded,
            checksum,
            transactional,
            statements_total: None,
            statements_applied: 0,
            applied_checksum: None,
            attempt: 1,
            installed_by: self.settings.identity.installed_by.clone(),
            tool_version: self.settings.identity.tool_version.clone(),
            note: Some(note),
            backup_ref: None,
        }
    }

    /// Takes the run lock (waiting for it), creates the history if needed, marks attempts left
    /// running by dead runners as interrupted, runs `work` with the history state, and releases
    /// the lock whatever happens.
    fn with_lock<T>(
        &self,
        db: &mut dyn Driver,
        observer: &mut dyn Observer,
        work: impl FnOnce(
            &mut dyn Driver,
            &HistoryState,
            Duration,
            &mut dyn Observer,
        ) -> Result<T, RunError>,
    ) -> Result<T, RunError> {
        let waited = self.acquire_lock(db, observer)?;
        let result = (|| {
            db.ensure_history()?;
            let mut records = db.read_history()?;
            let mut settled = false;
            for record in records.iter().filter(|r| {
                r.status == Status::Running && r.run_id != self.settings.identity.run_id
            }) {
                let message = if record.transactional {
                    "interrupted: the runner stopped (killed, or its connection lost) before finishing; \
                     the transaction was rolled back, so nothing of this attempt was applied"
                        .to_owned()
                } else {
                    let next = Version::parse(&record.version)
                        .and_then(|version| self.migrations.get(&version))
                        .and_then(|migration| migration.section(record.direction))
                        .and_then(|section| section.executable_statements(db.dialect()).ok())
                        .and_then(|statements| {
                            let index = usize::try_from(record.statements_applied).ok()?;
                            statements.into_iter().nth(index)
                        });
                    interrupted_attempt_message(record, next.as_ref())
                };
                db.complete_interrupted(record.id, &message)?;
                observer.event(Event::SettledInterrupted { record });
                settled = true;
            }
            if settled {
                records = db.read_history()?;
            }
            let state = HistoryState::from_records(&records);
            for record in &state.unreadable {
                observer.event(Event::Warning(format!(
                    "history row {} has a version safeshift cannot read (`{}`); it is ignored",
                    record.id, record.version
                )));
            }
            work(db, &state, waited, observer)
        })();
        let released = db.unlock();
        match (result, released) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(error)) => Err(RunError::Database(error)),
            (Err(error), _) => Err(error),
        }
    }

    fn acquire_lock(
        &self,
        db: &mut dyn Driver,
        observer: &mut dyn Observer,
    ) -> Result<Duration, RunError> {
        let settings = &self.settings.lock;
        let request = LockRequest {
            mode: settings.mode,
            run_id: self.settings.identity.run_id.clone(),
            holder: self.settings.identity.holder.clone(),
            lease: settings.lease,
        };
        let started = Instant::now();
        loop {
            match db.try_lock(&request)? {
                LockAttempt::Acquired => {
                    let waited = started.elapsed();
                    observer.event(Event::LockAcquired { waited });
                    return Ok(waited);
                }
                LockAttempt::Busy(holder) => {
                    let waited = started.elapsed();
                    if waited >= settings.wait {
                        return Err(RunError::LockTimeout { waited, holder });
                    }
                    observer.event(Event::WaitingForLock {
                        holder: holder.as_ref(),
                        waited,
                    });
                    let pause = settings
                        .poll
                        .min(settings.wait.saturating_sub(waited))
                        .max(Duration::from_millis(10));
                    if !sleep_unless_interrupted(pause, &self.interrupt) {
                        return Err(RunError::Interrupted {
                            version: None,
                            recorded: true,
                            reason: self.interrupt.reason(),
                        });
                    }
                }
            }
        }
    }
}

/// The description in a migration-like file name (`add_users` in `0004_add_users.up.sql`), for
/// a file that could not be read as a migration.
fn name_in_file_name(path: &std::path::Path) -> String {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file_name.split('.').next().unwrap_or_default();
    stem.split_once('_')
        .map(|(_, name)| name.to_owned())
        .unwrap_or_default()
}

/// Which state status shows for a version. The order of the checks is the precedence: a
/// broken file hides everything else unless the version is applied with its file present, and
/// a run in progress or stopped part-way outranks what the checksums say.
fn entry_state(
    version: &Version,
    migration: Option<&Migration>,
    state: &HistoryState,
    file_problems: &[&SourceError],
    current_checksum: &Option<String>,
    recorded_checksum: &Option<String>,
) -> EntryState {
    let recorded = state.get(version);
    let applied = recorded.is_some_and(|r| r.applied);
    let running = state
        .running
        .iter()
        .any(|r| Version::parse(&r.version).as_ref() == Some(version));
    if !file_problems.is_empty() && (!applied || migration.is_none()) {
        EntryState::Invalid
    } else if running {
        EntryState::Running
    } else if let Some(partial) = recorded.and_then(|r| r.partial.as_ref()) {
        match partial.direction {
            Direction::Up => EntryState::Partial,
            Direction::Down => EntryState::PartiallyRolledBack,
        }
    } else if migration.is_some_and(|m| repeatable_changed(m, state)) {
        EntryState::Reapply
    } else if applied {
        match (current_checksum, recorded_checksum) {
            (None, _) => EntryState::FileMissing,
            (Some(current), Some(recorded)) if current != recorded => EntryState::Changed,
            _ => EntryState::Applied,
        }
    } else if recorded.is_some_and(|r| r.last_failure.is_some()) {
        EntryState::Failed
    } else {
        EntryState::Pending
    }
}

/// The error of a version's newest failed attempt, as status reports it.
fn last_error_of(failure: &HistoryRecord) -> LastError {
    LastError {
        at: failure.finished_at.unwrap_or(failure.started_at),
        sqlstate: failure.error_sqlstate.clone(),
        message: failure.error_message.clone(),
        statement: failure.error_statement.clone(),
        line: failure.error_line,
    }
}

/// A problem with a migration file, as the status report carries it.
fn file_problem_report(problem: SourceError) -> crate::report::FileProblem {
    crate::report::FileProblem {
        version: problem.version.as_ref().map(|v| v.to_string()),
        location: problem.location(),
        message: problem.message,
        help: problem.help,
    }
}
