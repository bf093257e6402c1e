//! The lint evaluation `lint`, `plan` and `up` share: what the linter is told about the database
//! (the applied history, its version, session time zone and column types) and the table sizes
//! that grade the findings, so the three grade the same migrations identically.

use std::collections::HashMap;

use safeshift_driver::{Driver, DriverError, Engine, PostgresDriver};
use safeshift_lint::{
    AppliedMigrations, DatabaseColumns, Evaluation, LintOptions, Linter, PgVersion, RiskPolicy,
    Scope, TableName, TableSize, TableStatistics,
};
use safeshift_runner::{EntryState, Migrator, StatusReport};
use safeshift_source::{Checksum, Version};

use crate::database::Database;
use crate::error::DeployError;

/// The versions the database has applied (or applied in part), with their recorded checksums.
pub fn applied_migrations(status: &StatusReport) -> AppliedMigrations {
    let mut applied = AppliedMigrations::default();
    for entry in &status.entries {
        if matches!(
            entry.state,
            EntryState::Applied
                | EntryState::Changed
                | EntryState::FileMissing
                | EntryState::Partial
        ) {
            applied.versions.insert(
                entry.version.clone(),
                entry
                    .recorded_checksum
                    .as_deref()
                    .map(Checksum::from_stored),
            );
        }
    }
    applied
}

/// Table sizes read from a PostgreSQL database, for the risk policy.
pub struct DatabaseSizes<'a>(pub &'a mut PostgresDriver);

impl TableStatistics for DatabaseSizes<'_> {
    fn table_sizes(&mut self, tables: &[TableName]) -> Result<Vec<Option<TableSize>>, String> {
        let names: Vec<(Option<String>, String)> = tables
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let found: HashMap<(Option<String>, String), TableSize> = self
            .0
            .table_sizes(&names)
            .map_err(|error| error.to_string())?
            .into_iter()
            .map(|size| {
                let size_of_table = TableSize {
                    rows: size.rows,
                    bytes: size.bytes,
                };
                ((size.schema, size.table), size_of_table)
            })
            .collect();
        Ok(names.iter().map(|name| found.get(name).copied()).collect())
    }
}

/// What the linter is told about the target: the project's risk policy and, from the database
/// when there is one, its version, the session's time zone and the column types of its tables
/// (those of `history_schema`, safeshift's own, left out).
pub fn lint_options(
    policy: RiskPolicy,
    history_schema: &str,
    database: Option<&mut PostgresDriver>,
) -> Result<LintOptions, DriverError> {
    let mut options = LintOptions {
        policy,
        ..LintOptions::default()
    };
    if let Some(db) = database {
        options.pg_version = PgVersion::from_server_version_num(db.server().version_number);
        options.time_zone = Some(db.session_time_zone()?);
        let mut columns = DatabaseColumns::new();
        for column in db.column_types(history_schema)? {
            columns.insert(
                &column.schema,
                &column.table,
                &column.column,
                &column.type_text,
            );
        }
        options.database_columns = Some(std::sync::Arc::new(columns));
    }
    Ok(options)
}

/// The evaluation of the migrations `up` would apply (the pending ones up to `target`), with
/// the whole history read for context, graded by `policy` with the table sizes of the database
/// (read on a connection of its own). Only PostgreSQL migrations are linted: `None` for SQLite,
/// or when nothing is pending.
pub fn evaluate_pending(
    migrator: &Migrator,
    status: &StatusReport,
    db: &dyn Driver,
    database: &Database,
    policy: RiskPolicy,
    target: Option<&Version>,
) -> Result<Option<Evaluation>, DeployError> {
    if db.engine() != Engine::Postgres {
        return Ok(None);
    }
    let set = migrator.migrations();
    let applied = applied_migrations(status);
    // Nothing pending (the usual deploy-time `up`): nothing to grade, and no reason to parse
    // every file for the history's context.
    if set
        .migrations
        .iter()
        .all(|m| applied.versions.contains_key(m.version.as_str()))
    {
        return Ok(None);
    }
    let mut catalog = database.connect_postgres()?;
    let options = lint_options(policy, &database.options.history.schema, Some(&mut catalog))?;
    let linter = Linter::new(options)?;
    let scope = match target {
        Some(target) => Scope::PendingThrough(target.clone()),
        None => Scope::Pending,
    };
    Ok(Some(linter.evaluate(
        set,
        Some(&applied),
        &scope,
        Some(&mut DatabaseSizes(&mut catalog)),
    )))
}
