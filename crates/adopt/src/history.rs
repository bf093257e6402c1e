//! Another tool's history, read from its table into one shape: which migrations it applied,
//! with what checksum and when, and the rows that say a migration failed or was left
//! half-done. Reading never writes: the other tool's table stays as it was, so a team can go
//! back to the tool.

use serde::Serialize;

use safeshift_driver::{Driver, DriverError};
use safeshift_source::Version;

use crate::tool::{HistoryTable, Tool};
use crate::tools;

/// What the other tool's history says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignHistory {
    pub table: HistoryTable,
    /// The migrations it applied (and has not rolled back), oldest first.
    pub applied: Vec<ForeignApplied>,
    /// Rows that say a migration failed or was left half-done.
    pub failures: Vec<ForeignFailure>,
    /// golang-migrate keeps one version: it and every earlier one are applied.
    pub applied_through: Option<Version>,
    /// Flyway's baseline: every version up to it counts as applied.
    pub baseline: Option<Version>,
    /// Things worth saying that change nothing (Flyway's schema-creation row, goose's version 0).
    pub notes: Vec<String>,
}

/// One migration the other tool applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignApplied {
    pub key: ForeignKey,
    /// When, as the table says.
    pub applied_at: Option<String>,
    pub checksum: Option<ForeignChecksum>,
    /// The row, for the audit note: `goose_db_version id 7`.
    pub row: String,
    /// For code-based tools and Flyway's Java migrations: the kind of migration, when it is not
    /// a SQL file safeshift can run.
    pub not_sql: Option<String>,
}

/// How a row names its migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ForeignKey {
    /// A version, compared by number (`00042` is `42`).
    Version { version: String },
    /// A repeatable migration's description (Flyway's `R__<description>.sql`).
    Repeatable { description: String },
    /// A name: a Prisma migration directory, a sqitch change (with its plan position), a
    /// code-based tool's file or revision.
    Name {
        name: String,
        position: Option<usize>,
    },
}

impl ForeignKey {
    pub fn version(text: &str) -> ForeignKey {
        ForeignKey::Version {
            version: text.to_owned(),
        }
    }

    /// How the key reads in messages.
    pub fn describe(&self) -> String {
        match self {
            ForeignKey::Version { version } => format!("version {version}"),
            ForeignKey::Repeatable { description } => format!("repeatable `{description}`"),
            ForeignKey::Name { name, .. } => format!("`{name}`"),
        }
    }
}

/// A checksum the other tool recorded, in its own algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "algorithm", content = "value", rename_all = "kebab-case")]
pub enum ForeignChecksum {
    /// Flyway's line-based CRC-32.
    Flyway(i32),
    /// Prisma's SHA-256 of `migration.sql`.
    Prisma(String),
    /// sqitch's SHA-1 of the deploy script.
    Sqitch(String),
}

/// A row that says a migration failed or was left half-done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignFailure {
    /// The migration, as the row names it.
    pub what: String,
    /// What the row says.
    pub detail: String,
    /// How to settle it with the other tool (or by hand) before adopting.
    pub help: String,
}

/// Reads the history in `table`. `sqitch_project` filters sqitch's registry to one project.
pub fn read_history(
    db: &mut dyn Driver,
    table: &HistoryTable,
    sqitch_project: Option<&str>,
) -> Result<ForeignHistory, DriverError> {
    let mut history = ForeignHistory {
        table: table.clone(),
        applied: Vec::new(),
        failures: Vec::new(),
        applied_through: None,
        baseline: None,
        notes: Vec::new(),
    };
    match table.tool {
        Tool::Dbmate | Tool::Rails => tools::schema_migrations::read_versions(db, &mut history)?,
        Tool::GolangMigrate => tools::schema_migrations::read_golang_migrate(db, &mut history)?,
        Tool::Goose => tools::goose::read(db, &mut history)?,
        Tool::Flyway => tools::flyway::read(db, &mut history)?,
        Tool::Diesel => tools::diesel::read(db, &mut history)?,
        Tool::Prisma => tools::prisma::read(db, &mut history)?,
        Tool::Sqitch => tools::sqitch::read(db, &mut history, sqitch_project)?,
        Tool::Alembic => tools::alembic::read(db, &mut history)?,
        Tool::Knex => tools::knex::read(db, &mut history)?,
        Tool::Typeorm => tools::typeorm::read(db, &mut history)?,
        Tool::Sequelize => tools::sequelize::read(db, &mut history)?,
    }
    Ok(history)
}

/// The rows of a query, every column cast to text so SQLite hands them over as text too.
pub(crate) fn rows(
    db: &mut dyn Driver,
    columns: &[&str],
    from: &str,
    order: &str,
) -> Result<Vec<Vec<Option<String>>>, DriverError> {
    let select = columns
        .iter()
        .map(|column| format!("CAST({} AS TEXT)", crate::tool::quote(column)))
        .collect::<Vec<_>>()
        .join(", ");
    db.query_rows(&format!("SELECT {select} FROM {from} ORDER BY {order}"))
}

/// A boolean as PostgreSQL (`true`, `t`) or SQLite (`1`) writes it as text.
pub(crate) fn truthy(value: Option<&str>) -> bool {
    matches!(value, Some("t" | "true" | "1" | "TRUE"))
}
