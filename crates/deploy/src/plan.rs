//! The migration plan: for each pending migration, what it changes, how risky the linter finds
//! it (graded by the real table sizes when connected to PostgreSQL), which tables it locks and
//! how, how long it may take, whether it needs downtime, and how to roll it back. `plan`,
//! `preflight`, the confirmation prompt and the watchdog's duration threshold all read it.

use std::time::Duration;

use serde::Serialize;

use safeshift_driver::{Dialect, Driver, Engine};
use safeshift_lint::{
    Evaluation, ExampleMode, FileReport, Finding, Grading, LintOptions, LintReport, Linter,
    PgVersion, Risk, RiskPolicy, RuleId, TableName,
};
use safeshift_runner::{Migrator, StatusReport};
use safeshift_source::{Migration, Version};

use crate::database::Database;
use crate::error::DeployError;

/// Time assumed for a statement whose cost the linter cannot estimate from table sizes.
const BASE_STATEMENT_TIME: Duration = Duration::from_millis(5);

/// The plan for the pending migrations.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub database: String,
    pub engine: &'static str,
    pub server_version: String,
    /// The newest applied version now.
    pub current_version: Option<String>,
    /// The version after the plan is applied.
    pub target_version: Option<String>,
    pub migrations: Vec<PlannedMigration>,
    /// The highest risk of any migration.
    pub risk: Option<Risk>,
    #[serde(serialize_with = "duration_ms")]
    pub estimated: Duration,
    /// Any statement takes a lock that blocks reads or writes for longer than a moment.
    pub downtime: bool,
    /// Whether the table sizes came from the database (otherwise risks are static).
    pub sized: bool,
    /// The sizes were asked for and could not be read in time (a lock is queued on one of the
    /// tables): risks are graded without them.
    #[serde(skip)]
    pub sizes_unavailable: bool,
    /// The lint evaluation the risks come from, which `up`'s gate refuses on (PostgreSQL, with
    /// migrations pending).
    #[serde(skip)]
    pub evaluation: Option<Evaluation>,
}

/// One pending migration in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedMigration {
    pub version: String,
    pub name: String,
    pub file: String,
    pub transactional: bool,
    pub statements: usize,
    pub risk: Option<Risk>,
    pub findings: Vec<PlanFinding>,
    /// Tables that exist before it runs, with the strongest lock it takes on each.
    pub locks: Vec<PlanLock>,
    /// Tables it rewrites.
    pub rewrites: Vec<String>,
    #[serde(serialize_with = "duration_ms")]
    pub estimated: Duration,
    pub downtime: bool,
    pub up_sql: String,
    /// The rollback: the down section's SQL, if there is one.
    pub down_sql: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanFinding {
    pub rule: RuleId,
    pub risk: Risk,
    pub line: u32,
    pub message: String,
    pub help: String,
    pub safe_alternative: Option<String>,
    /// Rows and bytes of the tables involved, when known.
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub acknowledged: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanLock {
    pub table: String,
    /// PostgreSQL's name for the lock mode (`ACCESS EXCLUSIVE`).
    pub mode: &'static str,
    /// What the lock blocks, in words.
    pub blocks: String,
    pub blocks_traffic: bool,
    /// The table's schema and name, as written.
    #[serde(skip)]
    pub name: TableName,
    #[serde(skip)]
    strength: safeshift_lint::LockMode,
}

fn duration_ms<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(value.as_millis() as u64)
}

/// Builds the plan for the migrations `up` would apply (up to `target`): their risks are the
/// evaluation `lint` shows and `up`'s gate refuses on, graded by `policy` with the table sizes
/// read on a connection of its own.
pub fn build(
    migrator: &Migrator,
    db: &mut dyn Driver,
    database: &Database,
    policy: RiskPolicy,
    target: Option<&Version>,
) -> Result<Plan, DeployError> {
    migrator.check_files(db.dialect())?;
    let status = migrator.status(db)?;
    let postgres = db.engine() == Engine::Postgres;
    let pg_version = if postgres {
        PgVersion::from_server_version_num(db.server().version_number)
    } else {
        PgVersion::DEFAULT
    };
    let linter = Linter::new(LintOptions {
        pg_version,
        ..LintOptions::default()
    })?;
    let evaluation =
        crate::evaluation::evaluate_pending(migrator, &status, db, database, policy, target)?;
    let no_report = LintReport::default();
    let report = evaluation.as_ref().map_or(&no_report, |e| &e.report);
    let grading = evaluation.as_ref().map(|e| &e.grading);
    let sized = grading == Some(&Grading::TableSizes);
    let sizes_unavailable = matches!(grading, Some(Grading::SizesUnavailable { .. }));
    let migrations: Vec<PlannedMigration> = pending(migrator, &status, target)
        .into_iter()
        .map(|migration| {
            let file_report = report
                .files
                .iter()
                .find(|f| f.version.as_deref() == Some(migration.version.as_str()));
            plan_migration(migration, file_report, &linter, db.dialect(), postgres)
        })
        .collect();
    Ok(Plan {
        database: db.redacted_url().to_owned(),
        engine: db.engine().as_str(),
        server_version: db.server().version.clone(),
        current_version: status.newest_applied().map(str::to_owned),
        target_version: migrations.last().map(|m| m.version.clone()),
        risk: migrations.iter().filter_map(|m| m.risk).max(),
        estimated: migrations.iter().map(|m| m.estimated).sum(),
        downtime: migrations.iter().any(|m| m.downtime),
        sized,
        sizes_unavailable,
        migrations,
        evaluation,
    })
}

/// The migrations `up --to target` would apply, in order.
fn pending<'m>(
    migrator: &'m Migrator,
    status: &StatusReport,
    target: Option<&Version>,
) -> Vec<&'m Migration> {
    status
        .entries
        .iter()
        .filter(|e| e.file.is_some() && e.state.runs_on_up())
        .filter_map(|e| Version::parse(&e.version))
        .filter(|v| target.is_none_or(|t| v <= t))
        .filter_map(|v| migrator.migrations().get(&v))
        .collect()
}

/// One migration's part of the plan, from its lint report (graded by size when known).
fn plan_migration(
    migration: &Migration,
    file_report: Option<&FileReport>,
    linter: &Linter,
    dialect: Dialect,
    postgres: bool,
) -> PlannedMigration {
    let findings: Vec<PlanFinding> = file_report
        .map(|f| f.findings.iter().map(PlanFinding::from).collect())
        .unwrap_or_default();
    let split = migration.up.statements(dialect).unwrap_or_default();
    let statements = split.len();
    // The longest size-based estimate per statement, plus a small floor for every statement.
    let mut estimated = BASE_STATEMENT_TIME * statements as u32;
    if let Some(file) = file_report {
        let mut per_statement: std::collections::BTreeMap<usize, Duration> = Default::default();
        for finding in &file.findings {
            if let Some(duration) = finding.estimate.as_ref().and_then(|e| e.duration) {
                let entry = per_statement.entry(finding.statement).or_default();
                *entry = (*entry).max(duration);
            }
        }
        estimated += per_statement.values().sum::<Duration>();
    }
    let (locks, rewrites) = if postgres {
        locks_and_rewrites(linter, migration)
    } else {
        (Vec::new(), Vec::new())
    };
    // Downtime: a lock that blocks traffic held for longer than a moment (a rewrite, or an
    // estimated second or more of work under it).
    let downtime = locks.iter().any(|l| l.blocks_traffic)
        && (!rewrites.is_empty() || estimated >= Duration::from_secs(1));
    PlannedMigration {
        version: migration.version.to_string(),
        name: migration.name.clone(),
        file: migration.file().display().to_string(),
        transactional: migration.up.runs_in_one_transaction(&split),
        statements,
        risk: file_report.and_then(|f| f.risk()),
        findings,
        locks,
        rewrites,
        estimated,
        downtime,
        up_sql: migration.up.sql().trim().to_owned(),
        down_sql: migration
            .down_section()
            .ok()
            .map(|section| section.sql().trim().to_owned()),
    }
}

impl From<&Finding> for PlanFinding {
    fn from(finding: &Finding) -> Self {
        PlanFinding {
            rule: finding.rule,
            risk: finding.risk,
            line: finding.line,
            message: finding.message.clone(),
            help: finding.help.to_string(),
            safe_alternative: finding.safe_alternative.clone(),
            rows: finding.estimate.as_ref().and_then(|e| e.rows),
            bytes: finding.estimate.as_ref().map(|e| e.bytes),
            acknowledged: finding.suppressed.clone(),
        }
    }
}

/// The strongest lock the migration takes on each table that exists before it, and the tables
/// it rewrites, by the linter's lock model.
fn locks_and_rewrites(linter: &Linter, migration: &Migration) -> (Vec<PlanLock>, Vec<String>) {
    let mode = if migration.up.options.transaction {
        ExampleMode::Migration
    } else {
        ExampleMode::MigrationWithoutTransaction
    };
    let mut locks: Vec<PlanLock> = Vec::new();
    let mut rewrites: Vec<String> = Vec::new();
    for effects in linter.example_effects("", migration.up.sql(), mode) {
        for lock in effects.locks {
            match locks.iter_mut().find(|l| l.name == lock.table) {
                Some(existing) if existing.strength >= lock.mode => {}
                Some(existing) => *existing = plan_lock(lock.table, lock.mode),
                None => locks.push(plan_lock(lock.table, lock.mode)),
            }
        }
        for table in effects.rewrites {
            let name = table.to_string();
            if !rewrites.contains(&name) {
                rewrites.push(name);
            }
        }
    }
    (locks, rewrites)
}

fn plan_lock(name: TableName, mode: safeshift_lint::LockMode) -> PlanLock {
    PlanLock {
        table: name.to_string(),
        name,
        mode: mode.sql_name(),
        blocks: mode.blocks().describe(),
        blocks_traffic: mode.blocks_traffic(),
        strength: mode,
    }
}

impl Plan {
    /// Every existing table the plan locks, as written in the migrations.
    pub fn tables(&self) -> Vec<&TableName> {
        let mut tables: Vec<&TableName> = Vec::new();
        for migration in &self.migrations {
            for lock in &migration.locks {
                if !tables.contains(&&lock.name) {
                    tables.push(&lock.name);
                }
            }
        }
        tables
    }
}
