//! Deciding what a run will do, and refusing, before anything is applied, what it must not do:
//! changed files, out-of-order versions, missing down sections, statements that cannot run in
//! the migration's transaction mode, resumes whose applied statements changed.

use safeshift_driver::{Dialect, Direction, Timeouts};
use safeshift_source::{
    Checksum, Migration, MigrationSet, MissingDown, Section, SourceError, SourceErrors, Statement,
    Version,
};

use crate::applied_statements::{AppliedTexts, changed_since_applied};
use crate::error::{ChecksumMismatch, REFUSED, RunError};
use crate::hooks::StatementHooks;
use crate::state::{HistoryState, Partial};

/// One migration to run in one direction.
#[derive(Debug, Clone)]
pub(crate) struct Step<'a> {
    pub migration: &'a Migration,
    pub direction: Direction,
    pub section: &'a Section,
    pub statements: Vec<Statement>,
    /// Whether the step runs in one transaction: its section asks for one and none of its
    /// statements commits implicitly (MySQL DDL). Otherwise it runs statement by statement.
    pub transactional: bool,
    /// Statements already applied by an earlier attempt.
    pub resume_from: usize,
    /// The earlier attempt stopped at `resume_from` (so an INVALID index that statement builds
    /// is that attempt's leftover).
    pub resuming_failed_statement: bool,
    pub timeouts: Timeouts,
    /// A rollback whose down section holds no statements: an explicit no-op, recorded as rolled
    /// back without running anything.
    pub noop: bool,
}

/// Which migrations `down` rolls back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownTarget {
    /// The newest `n` applied migrations.
    Steps(usize),
    /// Every applied migration newer than this version (`0` for all).
    To(Version),
    /// Exactly these applied migrations (say, those a failed run applied), newest first.
    Versions(Vec<Version>),
}

/// Applied migrations whose file changed.
pub(crate) fn checksum_mismatches(
    set: &MigrationSet,
    state: &HistoryState,
) -> Vec<ChecksumMismatch> {
    state
        .versions
        .iter()
        // A changed repeatable migration is not a mismatch: `up` applies it again.
        .filter(|(version, v)| v.applied && !version.is_repeatable())
        .filter_map(|(version, recorded)| {
            let migration = set.get(version)?;
            let stored = recorded.checksum.as_deref()?;
            (stored != migration.up.checksum.as_str()).then(|| ChecksumMismatch {
                version: version.to_string(),
                file: migration.up.path.clone(),
                recorded: stored.to_owned(),
                current: migration.up.checksum.to_string(),
            })
        })
        .collect()
}

/// The migrations `up` applies, in order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_up<'a>(
    set: &'a MigrationSet,
    state: &HistoryState,
    applied_texts: &AppliedTexts,
    target: Option<&Version>,
    allow_out_of_order: bool,
    dialect: Dialect,
    defaults: &Timeouts,
) -> Result<Vec<Step<'a>>, RunError> {
    if let Some(target) = target
        && set.get(target).is_none()
    {
        return Err(RunError::Usage(format!(
            "--to {target}: no migration has that version"
        )));
    }
    let mismatches = checksum_mismatches(set, state);
    if !mismatches.is_empty() {
        return Err(RunError::ChecksumMismatch(mismatches));
    }
    if let Some((version, recorded)) = state.versions.iter().find(|(_, v)| {
        v.partial
            .as_ref()
            .is_some_and(|p| p.direction == Direction::Down)
    }) {
        let partial = recorded
            .partial
            .as_ref()
            .map(|p| p.applied)
            .unwrap_or_default();
        return Err(RunError::Blocked {
            version: version.to_string(),
            message: format!(
                "migration {version} was partially rolled back ({partial} down statement(s) applied)"
            ),
            help: format!(
                "finish the rollback with `safeshift down --to <the version before {version}>`, or record the state by hand with `safeshift resolve {version} --applied` or `--rolled-back`"
            ),
        });
    }
    let pending: Vec<&Migration> = set
        .migrations
        .iter()
        .filter(|m| !state.is_applied(&m.version) || repeatable_changed(m, state))
        .filter(|m| target.is_none_or(|t| m.version <= *t))
        .collect();
    if !allow_out_of_order && let Some(newest) = state.newest_applied() {
        let older: Vec<String> = pending
            .iter()
            .filter(|m| m.version < *newest)
            .map(|m| m.version.to_string())
            .collect();
        if !older.is_empty() {
            return Err(RunError::OutOfOrder {
                versions: older,
                newest_applied: newest.to_string(),
            });
        }
    }
    let mut errors = Vec::new();
    let mut steps = Vec::new();
    for migration in pending {
        let partial = state
            .get(&migration.version)
            .and_then(|v| v.partial.as_ref())
            .filter(|p| p.direction == Direction::Up);
        match step(
            migration,
            Direction::Up,
            &migration.up,
            partial,
            state,
            applied_texts,
            dialect,
            defaults,
        ) {
            Ok(step) => steps.push(step),
            Err(StepError::Source(error)) => errors.push(error),
            Err(StepError::Run(error)) => return Err(error),
        }
    }
    if !errors.is_empty() {
        return Err(RunError::Source(SourceErrors(errors)));
    }
    Ok(steps)
}

/// Whether a repeatable migration was applied with another checksum than its file's now.
pub(crate) fn repeatable_changed(migration: &Migration, state: &HistoryState) -> bool {
    migration.version.is_repeatable()
        && state.get(&migration.version).is_some_and(|v| {
            v.applied && v.checksum.as_deref() != Some(migration.up.checksum.as_str())
        })
}

/// The migrations `down` rolls back, newest first.
pub(crate) fn plan_down<'a>(
    set: &'a MigrationSet,
    state: &HistoryState,
    applied_texts: &AppliedTexts,
    target: &DownTarget,
    dialect: Dialect,
    defaults: &Timeouts,
    strict: bool,
) -> Result<Vec<Step<'a>>, RunError> {
    let chosen = versions_to_roll_back(set, state, target)?;
    refuse_unrunnable_rollbacks(set, state, &chosen, strict)?;
    let mut errors = Vec::new();
    let mut steps = Vec::new();
    for version in chosen {
        let Some(migration) = set.get(version) else {
            continue;
        };
        let Some(section) = migration.down.as_ref() else {
            continue;
        };
        if section.is_empty() {
            steps.push(Step {
                migration,
                direction: Direction::Down,
                section,
                statements: Vec::new(),
                resume_from: 0,
                resuming_failed_statement: false,
                timeouts: *defaults,
                // Nothing runs: no implicit commit to speak of.
                transactional: true,
                noop: true,
            });
            continue;
        }
        let partial = state
            .get(version)
            .and_then(|v| v.partial.as_ref())
            .filter(|p| p.direction == Direction::Down);
        match step(
            migration,
            Direction::Down,
            section,
            partial,
            state,
            applied_texts,
            dialect,
            defaults,
        ) {
            Ok(step) => steps.push(step),
            Err(StepError::Source(error)) => errors.push(error),
            Err(StepError::Run(error)) => return Err(error),
        }
    }
    if !errors.is_empty() {
        return Err(RunError::Source(SourceErrors(errors)));
    }
    Ok(steps)
}

/// The applied versions `target` picks, newest first (the order they roll back in). A target
/// naming a version nobody knows, or one that is not applied, is a usage error.
fn versions_to_roll_back<'s>(
    set: &MigrationSet,
    state: &'s HistoryState,
    target: &DownTarget,
) -> Result<Vec<&'s Version>, RunError> {
    let applied = state.applied_newest_first().map(|(version, _)| version);
    match target {
        DownTarget::Steps(count) => Ok(applied.take(*count).collect()),
        DownTarget::To(to) => {
            let known = to.as_str().trim_start_matches('0').is_empty()
                || set.get(to).is_some()
                || state.get(to).is_some();
            if !known {
                return Err(RunError::Usage(format!(
                    "--to {to}: no migration has that version (use --to 0 to roll back everything)"
                )));
            }
            Ok(applied.filter(|v| *v > to).collect())
        }
        DownTarget::Versions(versions) => {
            if let Some(missing) = versions.iter().find(|v| !state.is_applied(v)) {
                return Err(RunError::Usage(format!(
                    "{missing} is not applied; it cannot be rolled back"
                )));
            }
            Ok(applied.filter(|v| versions.contains(v)).collect())
        }
    }
}

/// Refuses before anything runs when any chosen version cannot be rolled back (file gone, no
/// down section, or an empty one under --strict) or its file changed since it was applied, so
/// a rollback never stops half-way for a reason known up front. Every such version is named.
fn refuse_unrunnable_rollbacks(
    set: &MigrationSet,
    state: &HistoryState,
    chosen: &[&Version],
    strict: bool,
) -> Result<(), RunError> {
    let mut missing = Vec::new();
    let mut mismatches = Vec::new();
    for version in chosen {
        let Some(migration) = set.get(version) else {
            missing.push((
                version.to_string(),
                format!(
                    "its file {} is gone",
                    state.get(version).map(|v| v.file.as_str()).unwrap_or("?")
                ),
            ));
            continue;
        };
        if let Some(reason) = missing_rollback_reason(migration, strict) {
            missing.push((version.to_string(), reason));
        }
        if let Some(recorded) = state.get(version).and_then(|v| v.checksum.as_deref())
            && recorded != migration.up.checksum.as_str()
        {
            mismatches.push(ChecksumMismatch {
                version: version.to_string(),
                file: migration.up.path.clone(),
                recorded: recorded.to_owned(),
                current: migration.up.checksum.to_string(),
            });
        }
    }
    if !missing.is_empty() {
        return Err(RunError::MissingDown(missing));
    }
    if !mismatches.is_empty() {
        return Err(RunError::ChecksumMismatch(mismatches));
    }
    Ok(())
}

/// Why `migration` has no rollback to run, if it has none: no down section at all, or (under
/// --strict, which refuses a rollback that does nothing) an empty one.
fn missing_rollback_reason(migration: &Migration, strict: bool) -> Option<String> {
    match migration.down_section() {
        Err(MissingDown::Absent) => Some(format!(
            "{} has no rollback: write {}",
            migration.up.path.display(),
            migration.rollback_description()
        )),
        Err(MissingDown::Empty) if strict => Some(format!(
            "{} has no statements, and --strict refuses a rollback that does nothing",
            noop_description(migration)
        )),
        Err(MissingDown::Empty) | Ok(_) => None,
    }
}

/// A no-op down section, by its file: `migrations/0002_b.down.sql`, or `the down section of
/// migrations/0002_b.sql` when it shares the up file.
pub(crate) fn noop_description(migration: &Migration) -> String {
    match &migration.down {
        Some(down) if down.path != migration.up.path => down.path.display().to_string(),
        _ => format!("the down section of {}", migration.up.path.display()),
    }
}

/// Directives the linter reads (`-- safeshift:allow …`); the runner leaves them alone.
const LINT_DIRECTIVES: [&str; 2] = ["allow", "allow-file"];

/// Every `-- safeshift:` directive in the planned steps must be one the linter or the installed
/// hooks act on, and used where the hooks accept it: a misspelt `backfill` must not silently turn
/// into a plain full-table UPDATE.
pub(crate) fn check_directives(
    steps: &[Step<'_>],
    hooks: &dyn StatementHooks,
) -> Result<(), RunError> {
    let mut errors = Vec::new();
    for step in steps {
        for statement in &step.statements {
            for directive in &statement.directives {
                let name = directive.name.as_str();
                if LINT_DIRECTIVES.contains(&name) {
                    continue;
                }
                if hooks.directives().contains(&name) {
                    if let Err(message) = hooks.validate(statement, step.section) {
                        errors.push(SourceError::directive(
                            &step.section.path,
                            directive.line,
                            message,
                            format!("see `safeshift explain` and the documentation of `-- safeshift:{name}`"),
                        ));
                    }
                    continue;
                }
                let known: Vec<&str> = LINT_DIRECTIVES
                    .iter()
                    .chain(hooks.directives())
                    .copied()
                    .collect();
                errors.push(SourceError::directive(
                    &step.section.path,
                    directive.line,
                    format!("unknown directive `-- safeshift:{name}`"),
                    format!("known directives: {}", known.join(", ")),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RunError::Source(SourceErrors(errors)))
    }
}

enum StepError {
    Source(safeshift_source::SourceError),
    Run(RunError),
}

#[allow(clippy::too_many_arguments)]
fn step<'a>(
    migration: &'a Migration,
    direction: Direction,
    section: &'a Section,
    partial: Option<&Partial>,
    state: &HistoryState,
    applied_texts: &AppliedTexts,
    dialect: Dialect,
    defaults: &Timeouts,
) -> Result<Step<'a>, StepError> {
    let statements = migration
        .executable_statements(direction, dialect)
        .map_err(StepError::Source)?;
    let version = migration.version.to_string();
    let mut resume_from = 0;
    if let Some(partial) = partial {
        let applied = usize::try_from(partial.applied).unwrap_or(0);
        let blocked = |message: String, help: String| {
            StepError::Run(RunError::Blocked {
                version: version.clone(),
                message,
                help,
            })
        };
        if section.runs_in_one_transaction(&statements) {
            return Err(blocked(
                format!(
                    "migration {version} stopped after {applied} statement(s) without a transaction, and its {direction} section now asks for one"
                ),
                format!(
                    "finish it by hand and record that with `safeshift resolve {version} --applied`, or restore `transaction:false`"
                ),
            ));
        }
        if applied > statements.len() {
            return Err(blocked(
                format!(
                    "migration {version} has {} statement(s) now, but {applied} were already applied",
                    statements.len()
                ),
                format!(
                    "restore the statements that were applied, or finish by hand and record that with `safeshift resolve {version} --applied`"
                ),
            ));
        }
        let prefix = Checksum::of_statements(statements[..applied].iter().map(|s| s.sql.as_str()));
        if partial
            .applied_checksum
            .as_deref()
            .is_some_and(|recorded| recorded != prefix.as_str())
        {
            let (message, help) = changed_since_applied(
                &version,
                &section.path.display().to_string(),
                applied,
                &statements,
                applied_texts.get(&version, direction),
            );
            return Err(blocked(message, help));
        }
        resume_from = applied;
    }
    let last_failure = state
        .get(&migration.version)
        .and_then(|v| v.last_failure.as_ref());
    let resuming_failed_statement = last_failure.is_some_and(|record| {
        record.direction == direction
            && !record.transactional
            && record.error_sqlstate.as_deref() != Some(REFUSED)
            && usize::try_from(record.statements_applied).ok() == Some(resume_from)
    });
    Ok(Step {
        migration,
        direction,
        section,
        transactional: section.runs_in_one_transaction(&statements),
        statements,
        resume_from,
        resuming_failed_statement,
        timeouts: Timeouts {
            lock_timeout: section
                .options
                .lock_timeout
                .unwrap_or(defaults.lock_timeout),
            statement_timeout: section
                .options
                .statement_timeout
                .unwrap_or(defaults.statement_timeout),
        },
        noop: false,
    })
}
