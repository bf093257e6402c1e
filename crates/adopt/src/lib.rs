//! Taking a project over from the migration tool it uses today, without rewriting a file.
//!
//! [`find_history_tables`] finds the other tools' history tables in a database (dbmate,
//! golang-migrate and Rails `schema_migrations`, goose `goose_db_version`, Flyway
//! `flyway_schema_history`, diesel `__diesel_schema_migrations`, Prisma `_prisma_migrations`,
//! sqitch `sqitch.changes`, Alembic `alembic_version`, Knex `knex_migrations`, TypeORM
//! `migrations`, Sequelize `SequelizeMeta`); [`read_history`] reads one as that tool wrote it,
//! failed and half-done rows included; [`plan_adoption`] matches it to the migration files and
//! says what adopting records, what stays pending, and every way the two disagree. The runner
//! writes the records (`Migrator::record_applied`), each with an audit note. Nothing here ever
//! writes to the other tool's table, so a team can go back to it; nothing here prints.
//!
//! Tools whose migrations are code (Alembic, Knex, TypeORM, Sequelize, Rails) have no SQL files
//! to match: [`code_tool_check`] compares their history with their migration files, and a
//! baseline of the live schema stands for all of them.

mod code;
mod history;
mod plan;
mod tool;
mod tools;

pub use code::{CodeToolCheck, code_tool_check, default_tool_directory};
pub use history::{
    ForeignApplied, ForeignChecksum, ForeignFailure, ForeignHistory, ForeignKey, read_history,
};
pub use plan::{
    AdoptOptions, Adopted, AdoptionPlan, Disagreement, DisagreementKind, Pending, plan_adoption,
};
pub use tool::{HistoryTable, Tool, find_history_tables, locate_history_table};
