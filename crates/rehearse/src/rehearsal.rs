//! The rehearsal itself: for each pending migration, snapshot, `up` traced statement by
//! statement, snapshot, `down`, snapshot and compare, `up` again, and on to the next.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use safeshift_driver::DatabaseUrl;
use safeshift_source::{Migration, MigrationSet};

use crate::apply::{milliseconds, run_section};
use crate::connection::Connection;
use crate::error::RehearseError;
use crate::estimate::{self, TableStatistics};
use crate::expectations::Expectations;
use crate::policy::{self, GradingThresholds, KnownSizes};
use crate::predictions::{self, Predictions};
use crate::production;
use crate::relations::Relations;
use crate::report::{
    MigrationReport, ReapplyCheck, RehearsalReport, RollbackCheck, StartingPointReport, Verdict,
};
use crate::scratch::{APPLICATION_NAME, Scratch, ServerChoice};
use crate::snapshot::{Snapshot, SnapshotScope, diff};
use crate::starting_point::{copy_schema, rebuild, replay_applied};
use crate::synthetic;
use crate::trace::trace_section;
use safeshift_lint::Risk;

/// What to rehearse, where, and how.
#[derive(Debug, Clone)]
pub struct RehearsalOptions {
    pub server: ServerChoice,
    /// Copy this database's schema and table sizes instead of replaying applied migrations.
    pub from_database: Option<DatabaseUrl>,
    /// Versions already applied: replayed (or, with `from_database`, already in its schema).
    pub applied: BTreeSet<String>,
    /// Fill touched tables with this many synthetic rows before each migration.
    pub rows: Option<u64>,
    pub expectations: Option<Expectations>,
    /// Column-order-only rollback differences and missing down sections fail.
    pub strict: bool,
    /// The linter's predictions, to report disagreements.
    pub predictions: Predictions,
    pub scope: SnapshotScope,
    /// After a migration whose `down` or re-run fails, rebuild the state after its `up` and go
    /// on with the next one instead of stopping.
    pub keep_going: bool,
    /// Where a lock-policy violation becomes a failure (the linter's risk policy).
    pub thresholds: GradingThresholds,
}

/// Progress, for callers that show it.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The server is up.
    ServerReady { ms: f64 },
    /// The starting schema is built.
    StartingPointReady { ms: f64 },
    /// A migration's rehearsal starts (`position` counts from 1).
    Migration {
        position: usize,
        total: usize,
        version: &'a str,
        name: &'a str,
    },
    /// `--keep-going`: the scratch database is being rebuilt to the state after `version`'s
    /// `up`, replaying `replaying` pending migrations' `up` after the starting point.
    Rebuilding { version: &'a str, replaying: usize },
}

/// Rehearses the pending migrations of `set`; `progress` is told what is happening.
pub fn rehearse(
    set: &MigrationSet,
    options: &RehearsalOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RehearsalReport, RehearseError> {
    let started = Instant::now();
    let mut source = match &options.from_database {
        Some(url) => Some(Connection::open(url, APPLICATION_NAME)?),
        None => None,
    };
    let server = match (&options.server, &source) {
        (
            ServerChoice::Throwaway {
                preferred_major: None,
            },
            Some(source),
        ) => ServerChoice::Throwaway {
            preferred_major: Some(source.server_version_number() / 10000),
        },
        (choice, _) => choice.clone(),
    };
    let scratch = Scratch::start(&server)?;
    progress(Progress::ServerReady {
        ms: milliseconds(started),
    });
    let outcome = rehearse_on(set, options, &scratch, source.as_mut(), started, progress);
    scratch.finish();
    let mut report = outcome?;
    report.total_ms = milliseconds(started);
    Ok(report)
}

fn rehearse_on(
    set: &MigrationSet,
    options: &RehearsalOptions,
    scratch: &Scratch,
    source: Option<&mut Connection>,
    started: Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RehearsalReport, RehearseError> {
    let mut connection = Connection::open(scratch.url(), APPLICATION_NAME)?;
    let pending: Vec<&Migration> = set
        .migrations
        .iter()
        .filter(|m| !options.applied.contains(m.version.as_str()))
        .collect();
    let mut report = RehearsalReport {
        server: scratch.report().clone(),
        starting_point: StartingPointReport {
            kind: "empty".to_owned(),
            source: None,
            replayed: Vec::new(),
            tables_with_statistics: 0,
            ms: 0.0,
            failure: None,
        },
        migrations: Vec::new(),
        not_rehearsed: Vec::new(),
        rows: options.rows,
        estimate_method: None,
        strict: options.strict,
        keep_going: options.keep_going,
        total_ms: 0.0,
    };
    let building = Instant::now();
    let mut real_sizes: Option<HashMap<String, TableStatistics>> = None;
    // How the starting schema is copied again when `--keep-going` rebuilds the database.
    let mut copied_with: Option<(PathBuf, DatabaseUrl)> = None;
    match (source, &options.from_database) {
        (Some(source), Some(url)) => {
            report.starting_point.kind = "copied".to_owned();
            report.starting_point.source = Some(url.redacted().to_owned());
            let sizes = estimate::table_statistics(source)?;
            report.starting_point.tables_with_statistics = sizes.len();
            real_sizes = Some(sizes);
            report.estimate_method = Some(estimate::METHOD);
            if scratch.is_throwaway() {
                production::create_missing_roles(&mut connection, &production::roles(source)?)?;
            }
            let major = source.server_version_number() / 10000;
            let pg_dump =
                safeshift_pgserver::find_client_program("pg_dump", major, scratch.bin_dir())?;
            copy_schema(&mut connection, scratch, &pg_dump, url, options)?;
            copied_with = Some((pg_dump, url.clone()));
        }
        _ => {
            report.starting_point.failure = replay_applied(
                &mut connection,
                set,
                options,
                &mut report.starting_point.replayed,
            )?;
        }
    }
    report.starting_point.ms = milliseconds(building);
    progress(Progress::StartingPointReady {
        ms: milliseconds(started),
    });
    if report.starting_point.failure.is_some() {
        report.not_rehearsed = pending
            .iter()
            .map(|m| m.version.as_str().to_owned())
            .collect();
        return Ok(report);
    }
    let mut before = Snapshot::capture(&mut connection, &options.scope)?;
    let total = pending.len();
    for (position, migration) in pending.iter().enumerate() {
        progress(Progress::Migration {
            position: position + 1,
            total,
            version: migration.version.as_str(),
            name: &migration.name,
        });
        let step = rehearse_one(
            &mut connection,
            migration,
            options,
            &before,
            real_sizes.as_ref(),
        )?;
        report.migrations.push(step.report);
        match (step.next, step.up_state) {
            (Some(next), _) => before = next,
            (None, Some(up_state)) if options.keep_going => {
                progress(Progress::Rebuilding {
                    version: migration.version.as_str(),
                    replaying: position + 1,
                });
                let rebuilding = Instant::now();
                let rebuilt = rebuild(
                    scratch,
                    &mut connection,
                    set,
                    options,
                    copied_with.as_ref(),
                    &pending[..=position],
                )?;
                let migration_report = report.migrations.last_mut().expect("pushed above");
                if let Err(why) = rebuilt {
                    migration_report.continued = Some(format!(
                        "--keep-going could not rebuild the state after this migration's up: {why}"
                    ));
                    report.not_rehearsed = pending[position + 1..]
                        .iter()
                        .map(|m| m.version.as_str().to_owned())
                        .collect();
                    break;
                }
                let after = Snapshot::capture(&mut connection, &options.scope)?;
                let differences = diff(&up_state, &after).differences.len();
                let mut note = format!(
                    "--keep-going: the scratch database was rebuilt to the state after this \
                     migration's up ({}, then the up of {} pending migration{} replayed, in {:.2} s, \
                     without synthetic rows); the next migration starts from there",
                    match (&copied_with, report.starting_point.replayed.len()) {
                        (Some(_), _) => "schema copied again".to_owned(),
                        (None, 0) => "from an empty database".to_owned(),
                        (None, applied) => format!("{applied} applied migrations replayed"),
                    },
                    position + 1,
                    if position == 0 { "" } else { "s" },
                    milliseconds(rebuilding) / 1000.0
                );
                if differences > 0 {
                    note.push_str(&format!(
                        "; the rebuilt schema differs from the one the first up made in \
                         {differences} place{}, so later results may differ from a run in order",
                        if differences == 1 { "" } else { "s" }
                    ));
                }
                migration_report.continued = Some(note);
                before = after;
            }
            (None, _) => {
                report.not_rehearsed = pending[position + 1..]
                    .iter()
                    .map(|m| m.version.as_str().to_owned())
                    .collect();
                break;
            }
        }
    }
    Ok(report)
}

/// One migration's report, and the schema the next migration starts from (`None` when the
/// scratch database's state is no longer known).
struct Step {
    report: MigrationReport,
    next: Option<Snapshot>,
    /// The schema after the first `up`, when it succeeded.
    up_state: Option<Snapshot>,
}

fn rehearse_one(
    connection: &mut Connection,
    migration: &Migration,
    options: &RehearsalOptions,
    before: &Snapshot,
    real_sizes: Option<&HashMap<String, TableStatistics>>,
) -> Result<Step, RehearseError> {
    let mut report = MigrationReport {
        version: migration.version.as_str().to_owned(),
        name: migration.name.clone(),
        file: migration.file().display().to_string(),
        transactional: migration.up.options.transaction,
        fills: Vec::new(),
        statements: Vec::new(),
        up_failure: None,
        up_ms: 0.0,
        commit_ms: 0.0,
        rollback: RollbackCheck::NotRun,
        reapply: ReapplyCheck::NotRun,
        expectation_mismatches: Vec::new(),
        expectations_checked: false,
        policy_violations: Vec::new(),
        irreversible: Vec::new(),
        continued: None,
        verdict: Verdict::Pass,
        reasons: Vec::new(),
    };
    if let Some(rows) = options.rows {
        let tables = synthetic::tables_to_fill(before, migration.up.sql());
        report.fills = synthetic::fill(connection, &tables, rows)?;
    }
    let rehearsal_sizes = if real_sizes.is_some() || options.rows.is_some() {
        let mut sizes = estimate::table_statistics(connection)?;
        // A fill counted its table's rows exactly.
        for fill in &report.fills {
            if let Some(size) = sizes.get_mut(&fill.table) {
                size.rows = Some(fill.rows_before + fill.rows_added);
            }
        }
        Some(sizes)
    } else {
        None
    };
    let relations = Relations::read(connection)?;
    let traced = trace_section(connection, &migration.up, &relations)?;
    report.statements = traced.statements;
    report.up_ms = traced.total_ms;
    report.commit_ms = traced.commit_ms;
    predictions::compare(
        &options.predictions,
        &report.version,
        report.transactional,
        &mut report.statements,
    );
    if let (Some(real), Some(here)) = (real_sizes, &rehearsal_sizes) {
        for statement in &mut report.statements {
            statement.estimate = Some(estimate::estimate(statement, real, here));
        }
    }
    let known_sizes = rehearsal_sizes.as_ref().map(|rehearsal| KnownSizes {
        real: real_sizes,
        rehearsal,
    });
    report.policy_violations = policy::violations(
        &report.statements,
        report.transactional,
        known_sizes,
        &options.thresholds,
    );
    if let Some(failure) = traced.failure {
        report.up_failure = Some(failure);
        return Ok(Step {
            report: judged(report, options.strict),
            next: None,
            up_state: None,
        });
    }
    let after_up = Snapshot::capture(connection, &options.scope)?;
    let changes = diff(before, &after_up);
    if let Some(expectation) = options
        .expectations
        .as_ref()
        .and_then(|e| e.for_version(&report.version))
    {
        report.expectations_checked = true;
        report.expectation_mismatches = expectation.mismatches(&changes);
    }
    let down = match migration.down_section() {
        Ok(down) => down,
        Err(_) => {
            report.rollback = RollbackCheck::NoDown;
            report.irreversible = changes.differences.iter().map(change).collect();
            return Ok(Step {
                report: judged(report, options.strict),
                next: Some(after_up.clone()),
                up_state: Some(after_up),
            });
        }
    };
    let down_ms = match run_section(connection, down)? {
        Ok(ms) => ms,
        Err(failure) => {
            report.rollback = RollbackCheck::Failed { failure };
            // A failed transactional down left the schema as `up` made it.
            let next = down.options.transaction.then(|| after_up.clone());
            return Ok(Step {
                report: judged(report, options.strict),
                next,
                up_state: Some(after_up),
            });
        }
    };
    let after_down = Snapshot::capture(connection, &options.scope)?;
    let rollback = diff(before, &after_down);
    report.rollback = if rollback.is_empty() {
        RollbackCheck::Exact { ms: down_ms }
    } else if rollback.differences.is_empty() {
        RollbackCheck::ColumnOrderOnly {
            ms: down_ms,
            diff: rollback,
        }
    } else {
        RollbackCheck::Differs {
            ms: down_ms,
            diff: rollback,
        }
    };
    let next = match run_section(connection, &migration.up)? {
        Err(failure) => {
            report.reapply = ReapplyCheck::Failed { failure };
            None
        }
        Ok(ms) => {
            let after_reapply = Snapshot::capture(connection, &options.scope)?;
            let mut again = diff(&after_up, &after_reapply);
            // The order of columns after a re-run follows from the rollback, reported there.
            again.column_order.clear();
            report.reapply = if again.is_empty() {
                ReapplyCheck::Succeeded { ms }
            } else {
                ReapplyCheck::DifferentSchema { ms, diff: again }
            };
            Some(after_reapply)
        }
    };
    Ok(Step {
        report: judged(report, options.strict),
        next,
        up_state: Some(after_up),
    })
}

/// One schema change, as the irreversible list names it: `created table public.users`.
fn change(difference: &crate::snapshot::Difference) -> String {
    match (&difference.property, &difference.left, &difference.right) {
        (None, None, _) => format!("created {}", difference.object()),
        (None, _, None) => format!("dropped {}", difference.object()),
        (Some(property), ..) => format!("changed the {property} of {}", difference.object()),
        (None, Some(_), Some(_)) => format!("changed {}", difference.object()),
    }
}

/// The finding for a migration without down whose `up` changed the schema.
fn irreversible_reason(changes: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut listed = changes[..changes.len().min(SHOWN)].join(", ");
    if changes.len() > SHOWN {
        listed.push_str(&format!(" and {} more", changes.len() - SHOWN));
    }
    format!(
        "irreversible: no down section, and up {listed}; nothing rolls this back \
         (`safeshift down` refuses to go past it)"
    )
}

/// Sets the verdict and its reasons.
fn judged(mut report: MigrationReport, strict: bool) -> MigrationReport {
    let mut fail = Vec::new();
    let mut warn = Vec::new();
    if let Some(failure) = &report.up_failure {
        fail.push(format!(
            "up failed at line {}: {}",
            failure.line, failure.error
        ));
    }
    match &report.rollback {
        RollbackCheck::Differs { diff, .. } => fail.push(format!(
            "rollback is not exact: {} difference{} after down",
            diff.differences.len(),
            if diff.differences.len() == 1 { "" } else { "s" }
        )),
        RollbackCheck::Failed { failure } => fail.push(format!(
            "down failed at line {}: {}",
            failure.line, failure.error
        )),
        RollbackCheck::ColumnOrderOnly { .. } => {
            let reason = "rollback changes the order of columns".to_owned();
            if strict {
                fail.push(reason)
            } else {
                warn.push(reason)
            }
        }
        RollbackCheck::NoDown => {
            let reason = if report.irreversible.is_empty() {
                "no down section: rollback not rehearsed (up changed no schema object)".to_owned()
            } else {
                irreversible_reason(&report.irreversible)
            };
            if strict {
                fail.push(reason)
            } else {
                warn.push(reason)
            }
        }
        RollbackCheck::Exact { .. } | RollbackCheck::NotRun => {}
    }
    match &report.reapply {
        ReapplyCheck::Failed { failure } => fail.push(format!(
            "up failed when run again after down, at line {}: {}",
            failure.line, failure.error
        )),
        ReapplyCheck::DifferentSchema { diff, .. } => fail.push(format!(
            "up run again after down made another schema ({} difference{})",
            diff.differences.len(),
            if diff.differences.len() == 1 { "" } else { "s" }
        )),
        ReapplyCheck::Succeeded { .. } | ReapplyCheck::NotRun => {}
    }
    if !report.expectation_mismatches.is_empty() {
        fail.push(format!(
            "{} expectation{} not met",
            report.expectation_mismatches.len(),
            if report.expectation_mismatches.len() == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    for violation in &report.policy_violations {
        let reason = format!(
            "lock policy {} ({}): {} — {}",
            violation.rule, violation.risk, violation.message, violation.grade
        );
        if violation.risk == Risk::High {
            fail.push(reason)
        } else {
            warn.push(reason)
        }
    }
    let disagreements: usize = report
        .statements
        .iter()
        .map(|s| s.lint_disagreements.len())
        .sum();
    if disagreements > 0 {
        warn.push(format!(
            "{disagreements} disagreement{} with the linter (the observation wins)",
            if disagreements == 1 { "" } else { "s" }
        ));
    }
    report.verdict = if !fail.is_empty() {
        Verdict::Fail
    } else if !warn.is_empty() {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    report.reasons = fail.into_iter().chain(warn).collect();
    report
}
