//! The rehearsal itself: for each pending migration, snapshot, `up` traced statement by
//! statement, snapshot, `down`, snapshot and compare, `up` again, and on to the next.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use safeshift_driver::DatabaseUrl;
use safeshift_source::{Migration, MigrationSet};

use crate::apply::{milliseconds, run_section};
use crate::connection::Connection;
use crate::error::RehearseError;
use crate::estimate::{self, TableStatistics};
use crate::expectations::Expectations;
use crate::policy;
use crate::predictions::{self, Predictions};
use crate::production;
use crate::relations::Relations;
use crate::report::{
    MigrationReport, ReapplyCheck, RehearsalReport, RollbackCheck, StartingPointReport, Verdict,
};
use crate::scratch::{APPLICATION_NAME, Scratch, ServerChoice};
use crate::snapshot::{Snapshot, SnapshotScope, diff};
use crate::synthetic;
use crate::trace::trace_section;

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
        total_ms: 0.0,
    };
    let building = Instant::now();
    let mut real_sizes: Option<HashMap<String, TableStatistics>> = None;
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
            production::copy_schema(
                &pg_dump,
                url,
                &mut connection,
                &options.scope.excluded_schemas,
                !scratch.is_throwaway(),
            )?;
            // The dump empties the session's search_path; start afresh.
            connection = Connection::open(scratch.url(), APPLICATION_NAME)?;
        }
        _ => {
            for migration in set
                .migrations
                .iter()
                .filter(|m| options.applied.contains(m.version.as_str()))
            {
                if let Err(failure) = run_section(&mut connection, &migration.up)? {
                    report.starting_point.failure = Some(format!(
                        "replaying applied migration {} failed at line {}: {}",
                        migration.file().display(),
                        failure.line,
                        failure.error
                    ));
                    break;
                }
                report
                    .starting_point
                    .replayed
                    .push(migration.version.as_str().to_owned());
            }
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
        match step.next {
            Some(next) => before = next,
            None => {
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
        verdict: Verdict::Pass,
        reasons: Vec::new(),
    };
    if let Some(rows) = options.rows {
        let tables = synthetic::tables_to_fill(before, migration.up.sql());
        report.fills = synthetic::fill(connection, &tables, rows)?;
    }
    let rehearsal_sizes = match real_sizes {
        Some(_) => Some(estimate::table_statistics(connection)?),
        None => None,
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
    report.policy_violations = policy::violations(&report.statements, report.transactional);
    if let Some(failure) = traced.failure {
        report.up_failure = Some(failure);
        return Ok(Step {
            report: judged(report, options.strict),
            next: None,
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
            return Ok(Step {
                report: judged(report, options.strict),
                next: Some(after_up),
            });
        }
    };
    let down_ms = match run_section(connection, down)? {
        Ok(ms) => ms,
        Err(failure) => {
            report.rollback = RollbackCheck::Failed { failure };
            // A failed transactional down left the schema as `up` made it.
            let next = down.options.transaction.then_some(after_up);
            return Ok(Step {
                report: judged(report, options.strict),
                next,
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
    })
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
            let reason = "no down section: rollback not rehearsed".to_owned();
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
        fail.push(format!(
            "lock policy {}: {}",
            violation.rule, violation.message
        ));
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
