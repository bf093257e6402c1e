//! The tools whose history safeshift adopts, where each keeps its history, and finding those
//! tables in a database.

use serde::Serialize;

use safeshift_driver::{Dialect, Driver, DriverError};
use safeshift_source::Format;

/// A migration tool whose history table safeshift reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// dbmate's `schema_migrations(version)`.
    Dbmate,
    /// golang-migrate's `schema_migrations(version, dirty)`: one row, the newest version.
    GolangMigrate,
    /// Rails' `schema_migrations(version)` beside `ar_internal_metadata`.
    Rails,
    Goose,
    Flyway,
    Diesel,
    Prisma,
    Sqitch,
    Alembic,
    Knex,
    Typeorm,
    Sequelize,
}

impl Tool {
    pub const ALL: [Tool; 12] = [
        Tool::Dbmate,
        Tool::GolangMigrate,
        Tool::Rails,
        Tool::Goose,
        Tool::Flyway,
        Tool::Diesel,
        Tool::Prisma,
        Tool::Sqitch,
        Tool::Alembic,
        Tool::Knex,
        Tool::Typeorm,
        Tool::Sequelize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Dbmate => "dbmate",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Rails => "rails",
            Tool::Goose => "goose",
            Tool::Flyway => "flyway",
            Tool::Diesel => "diesel",
            Tool::Prisma => "prisma",
            Tool::Sqitch => "sqitch",
            Tool::Alembic => "alembic",
            Tool::Knex => "knex",
            Tool::Typeorm => "typeorm",
            Tool::Sequelize => "sequelize",
        }
    }

    pub fn parse(name: &str) -> Option<Tool> {
        let name = name.to_ascii_lowercase();
        Tool::ALL
            .into_iter()
            .find(|tool| tool.as_str() == name)
            .or(match name.as_str() {
                "migrate" | "golang_migrate" => Some(Tool::GolangMigrate),
                _ => None,
            })
    }

    /// The schema (when the tool keeps its own) and table the tool writes by default.
    pub fn default_table(self) -> (Option<&'static str>, &'static str) {
        match self {
            Tool::Dbmate | Tool::GolangMigrate | Tool::Rails => (None, "schema_migrations"),
            Tool::Goose => (None, "goose_db_version"),
            Tool::Flyway => (None, "flyway_schema_history"),
            Tool::Diesel => (None, "__diesel_schema_migrations"),
            Tool::Prisma => (None, "_prisma_migrations"),
            Tool::Sqitch => (Some("sqitch"), "changes"),
            Tool::Alembic => (None, "alembic_version"),
            Tool::Knex => (None, "knex_migrations"),
            Tool::Typeorm => (None, "migrations"),
            Tool::Sequelize => (None, "SequelizeMeta"),
        }
    }

    /// Whether the tool's migrations are SQL files safeshift reads; the others (Python,
    /// JavaScript, TypeScript, Ruby) are adopted through a baseline of the live schema.
    pub fn runs_sql_files(self) -> bool {
        self.format().is_some()
    }

    /// The layout of the tool's SQL migrations, for the tools that write SQL.
    pub fn format(self) -> Option<Format> {
        match self {
            Tool::Dbmate | Tool::GolangMigrate => Some(Format::Safeshift),
            Tool::Goose => Some(Format::Goose),
            Tool::Flyway => Some(Format::Flyway),
            Tool::Diesel => Some(Format::Diesel),
            Tool::Prisma => Some(Format::Prisma),
            Tool::Sqitch => Some(Format::Sqitch),
            Tool::Rails | Tool::Alembic | Tool::Knex | Tool::Typeorm | Tool::Sequelize => None,
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Another tool's history table in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryTable {
    pub tool: Tool,
    /// The schema on PostgreSQL; `None` on SQLite (or for the search path's first schema).
    pub schema: Option<String>,
    pub table: String,
}

impl HistoryTable {
    /// `schema.table`, for messages.
    pub fn display_name(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.table),
            None => self.table.clone(),
        }
    }

    /// The table's name, quoted for SQL.
    pub(crate) fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.table)),
            None => quote(&self.table),
        }
    }

    /// Another table in the same schema, quoted.
    pub(crate) fn sibling(&self, table: &str) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(table)),
            None => quote(table),
        }
    }
}

/// An identifier, double-quoted.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal (the same escaping on PostgreSQL with standard strings and on SQLite).
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Every table of `names` in the database, as `(schema, table)` (schema `None` on SQLite).
pub(crate) fn existing_tables(
    db: &mut dyn Driver,
    names: &[&str],
) -> Result<Vec<(Option<String>, String)>, DriverError> {
    let list = names
        .iter()
        .map(|name| literal(name))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(match db.dialect() {
        Dialect::Postgres => db
            .query_rows(&format!(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND c.relname IN ({list}) \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            ))?
            .into_iter()
            .map(|row| (row[0].clone(), row[1].clone().unwrap_or_default()))
            .collect(),
        Dialect::Sqlite => db
            .query_rows(&format!(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({list}) ORDER BY 1"
            ))?
            .into_iter()
            .map(|row| (None, row[0].clone().unwrap_or_default()))
            .collect(),
    })
}

/// The columns of a table.
pub(crate) fn columns(
    db: &mut dyn Driver,
    schema: Option<&str>,
    table: &str,
) -> Result<Vec<String>, DriverError> {
    let sql = match (db.dialect(), schema) {
        (Dialect::Postgres, Some(schema)) => format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
            literal(schema),
            literal(table)
        ),
        (Dialect::Postgres, None) => format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = {} ORDER BY ordinal_position",
            literal(table)
        ),
        (Dialect::Sqlite, _) => format!(
            "SELECT name FROM pragma_table_info({}) ORDER BY cid",
            literal(table)
        ),
    };
    Ok(db
        .query_rows(&sql)?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect())
}

/// Which tool wrote a table, from its name and columns.
fn classify(
    db: &mut dyn Driver,
    schema: Option<&str>,
    table: &str,
    siblings: &[(Option<String>, String)],
) -> Result<Option<Tool>, DriverError> {
    Ok(match table {
        "schema_migrations" => {
            let columns = columns(db, schema, table)?;
            if columns.iter().any(|c| c == "dirty") {
                Some(Tool::GolangMigrate)
            } else if siblings
                .iter()
                .any(|(s, t)| s.as_deref() == schema && t == "ar_internal_metadata")
            {
                Some(Tool::Rails)
            } else {
                Some(Tool::Dbmate)
            }
        }
        "migrations" => {
            let columns = columns(db, schema, table)?;
            let typeorm = ["id", "timestamp", "name"]
                .iter()
                .all(|c| columns.iter().any(|have| have == c));
            typeorm.then_some(Tool::Typeorm)
        }
        "changes" if schema == Some("sqitch") => Some(Tool::Sqitch),
        "changes" => None,
        other => Tool::ALL
            .into_iter()
            .find(|tool| tool.default_table().1 == other),
    })
}

/// The other tools' history tables in the database, found by their default names (and, for the
/// tables several tools share a name for, their columns).
pub fn find_history_tables(db: &mut dyn Driver) -> Result<Vec<HistoryTable>, DriverError> {
    let mut names: Vec<&str> = Tool::ALL
        .into_iter()
        .map(|tool| tool.default_table().1)
        .collect();
    names.push("ar_internal_metadata");
    names.sort();
    names.dedup();
    let found = existing_tables(db, &names)?;
    let mut tables = Vec::new();
    for (schema, table) in &found {
        if table == "ar_internal_metadata" {
            continue;
        }
        if let Some(tool) = classify(db, schema.as_deref(), table, &found)? {
            tables.push(HistoryTable {
                tool,
                schema: schema.clone(),
                table: table.clone(),
            });
        }
    }
    Ok(tables)
}

/// The table a tool keeps its history in: the one named (`[schema.]table`), or the tool's
/// default, looked up in the database.
pub fn locate_history_table(
    db: &mut dyn Driver,
    tool: Tool,
    table: Option<&str>,
) -> Result<Option<HistoryTable>, DriverError> {
    let (default_schema, default_table) = tool.default_table();
    let (schema, name) = match table {
        Some(table) => match table.split_once('.') {
            Some((schema, name)) => (Some(schema.to_owned()), name.to_owned()),
            None => (default_schema.map(str::to_owned), table.to_owned()),
        },
        None => (default_schema.map(str::to_owned), default_table.to_owned()),
    };
    let found = existing_tables(db, &[&name])?;
    Ok(found
        .into_iter()
        .find(|(found_schema, _)| match (&schema, found_schema) {
            (Some(wanted), Some(found)) => wanted == found,
            _ => true,
        })
        .map(|(found_schema, table)| HistoryTable {
            tool,
            schema: found_schema,
            table,
        }))
}
