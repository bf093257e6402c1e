//! Linting migrations before they run. MySQL and MariaDB migrations have rules of their own
//! in [`mysql`]. PostgreSQL migrations: every statement is parsed with the real
//! PostgreSQL grammar (`pg_query`), followed through the whole migration history (which tables
//! exist, which constraints are validated, which objects are new), and checked by rules that know
//! the lock each statement takes and what that lock blocks.
//!
//! The library returns values and never prints: [`LintReport`] holds per-file findings,
//! diagnostics and risks; rendering is the caller's business.
//!
//! ```
//! use safeshift_lint::{LintOptions, Linter, Risk};
//! # let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("0001_users.sql"), "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n").unwrap();
//! std::fs::write(dir.path().join("0002_index.sql"), "-- migrate:up\nCREATE INDEX users_email_idx ON users (email);\n").unwrap();
//! let set = safeshift_source::MigrationSet::load(dir.path()).unwrap();
//! let linter = Linter::new(LintOptions::default()).unwrap();
//! let report = linter.lint_set(&set, None, &safeshift_lint::Scope::All);
//! let finding = &report.files[1].findings[0];
//! assert_eq!(finding.rule, "require-concurrent-index-creation");
//! assert_eq!(finding.risk, Risk::High);
//! assert_eq!(finding.lock.unwrap().sql_name(), "SHARE");
//! ```
//!
//! Each rule lives in `src/rules/<rule>.rs` (logic and tests) with its metadata in
//! `rules/<rule-id>.toml` (risk, lock, why, safe alternative, examples); [`explain`] renders the
//! metadata, so documentation and behaviour share one source.

mod ahead;
mod coercion;
mod context;
mod effects;
mod evaluation;
mod finding;
mod fix;
mod gate;
mod linter;
mod lock;
mod metadata;
pub mod mysql;
mod naming;
mod options;
mod parse;
mod policy;
mod report;
mod risk;
mod rules;
mod schema;
mod size;
mod sql;
mod suppression;
mod volatility;

pub use context::Execution;
pub use effects::{StatementEffects, TableLock};
pub use evaluation::Evaluation;
pub use finding::{Diagnostic, DiagnosticKind, Finding, Severity, SizeEstimate};
pub use fix::{FileFix, LeftAlone, Rewrite, encode_like};
pub use gate::{BlockedUp, BlockingFinding, blocked_up, gate};
pub use linter::{AppliedMigrations, Linter, Scope, UnknownRule};
pub use lock::{Blocks, LockMode};
pub use metadata::{Cost, ExampleMode, Examples, RuleMetadata};
pub use options::{LintOptions, PgVersion};
pub use policy::{Grading, Hazard, RiskPolicy, grade};
pub use report::{FileReport, LintReport, Summary};
pub use risk::Risk;
pub use rules::RuleId;
pub use schema::DatabaseColumns;
pub use size::{TableSize, TableStatistics};
pub use sql::TableName;

/// The lock the lock model says a statement takes on each table it names, strongest per table,
/// for callers that run statements (lock-safe DDL). It sees the statement alone, without the
/// migration history, so a relation the model finds only through the history (the table of an
/// index named by `DROP INDEX` or `REINDEX INDEX`) is missing. `None` when the statement does
/// not parse.
///
/// ```
/// use safeshift_lint::{LockMode, PgVersion, statement_locks};
/// let locks = statement_locks("ALTER TABLE accounts ADD COLUMN note text", PgVersion::DEFAULT).unwrap();
/// assert_eq!(locks[0].table.name, "accounts");
/// assert_eq!(locks[0].mode, LockMode::AccessExclusive);
/// let concurrent = statement_locks("CREATE INDEX CONCURRENTLY i ON accounts (note)", PgVersion::DEFAULT).unwrap();
/// assert!(!concurrent[0].mode.blocks_traffic());
/// assert!(statement_locks("ALTER TABLE", PgVersion::DEFAULT).is_none());
/// ```
pub fn statement_locks(sql: &str, pg_version: PgVersion) -> Option<Vec<TableLock>> {
    let node = parse::parse_statement(sql).ok()?;
    Some(node.map_or_else(Vec::new, |node| {
        effects::of(&node, &schema::Schema::default(), pg_version, false).locks
    }))
}

/// Every rule's metadata, in the order the rules run.
pub fn rules() -> &'static [RuleMetadata] {
    rules::metadata()
}

/// One rule's metadata.
pub fn rule(id: &str) -> Option<&'static RuleMetadata> {
    rules::position(id).map(|i| &rules::metadata()[i])
}

/// The page `safeshift explain <rule>` prints.
pub fn explain(id: &str) -> Result<String, UnknownRule> {
    rule(id)
        .map(RuleMetadata::explain)
        .ok_or_else(|| UnknownRule(id.to_owned()))
}
