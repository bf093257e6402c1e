//! Linting MySQL and MariaDB migrations with a parser made for MySQL (`sqlparser`'s MySQL
//! dialect): which `ALTER TABLE`s the server can do INSTANT, INPLACE (with or without a table
//! rebuild) or only as a COPY that blocks writes, on the server and version linted for; which
//! metadata lock each takes and for how long; and the safe form (`ALGORITHM=INSTANT`,
//! `ALGORITHM=INPLACE, LOCK=NONE`, or an online schema change with pt-online-schema-change).
//!
//! It has rules of its own (ids starting `mysql-`), kept apart from the PostgreSQL rules: the
//! lock model is MySQL's (metadata locks and online DDL), not PostgreSQL's lock modes.

mod online_ddl;
mod rules;
mod schema;
mod target;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::PathBuf;

use serde::Serialize;
use sqlparser::ast::Statement as Ast;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use safeshift_source::{Dialect, MigrationSet, Section, SourceText, Statement};

use crate::finding::{Diagnostic, DiagnosticKind, Severity};
use crate::risk::Risk;

pub use online_ddl::{Algorithm, Operation};
pub use rules::{MYSQL_RULES, MysqlRule};
pub use target::{MysqlTarget, Server};

use schema::Schema;

/// A MySQL rule's finding on one statement.
#[derive(Debug, Clone, Serialize)]
pub struct MysqlFinding {
    pub rule: &'static str,
    pub risk: Risk,
    pub message: String,
    /// The table the statement changes, as written.
    pub table: Option<String>,
    /// The cheapest way the server can run the statement, when it is an `ALTER TABLE` (or an
    /// index build).
    pub algorithm: Option<Algorithm>,
    /// Whether writes to the table wait while the statement runs.
    pub blocks_writes: bool,
    /// The metadata lock the statement takes, and for how long.
    pub metadata_lock: String,
    /// What to do instead, in a sentence.
    pub help: String,
    /// The safe form of this statement, when there is one.
    pub safe_alternative: Option<String>,
    /// 1-based line and column of the statement's first character.
    pub line: u32,
    pub column: u32,
    pub span: Range<usize>,
    /// 0-based index of the statement in its section.
    pub statement: usize,
    /// The reason given by a `-- safeshift:allow <rule> <reason>` directive above the statement.
    pub suppressed: Option<String>,
}

/// One file's findings.
#[derive(Debug, Clone, Serialize)]
pub struct MysqlFileReport {
    pub path: PathBuf,
    pub version: Option<String>,
    pub statements: usize,
    pub findings: Vec<MysqlFinding>,
    pub diagnostics: Vec<Diagnostic>,
    #[serde(skip)]
    pub source: Option<SourceText>,
}

impl MysqlFileReport {
    /// The highest risk among the findings not acknowledged.
    pub fn risk(&self) -> Option<Risk> {
        self.findings
            .iter()
            .filter(|f| f.suppressed.is_none())
            .map(|f| f.risk)
            .max()
    }
}

/// Every file's findings, and the server they were linted for.
#[derive(Debug, Clone, Serialize)]
pub struct MysqlLintReport {
    pub target: MysqlTarget,
    /// `MariaDB 10.11.0`.
    pub server: String,
    pub files: Vec<MysqlFileReport>,
}

impl MysqlLintReport {
    /// Whether a finding at or above `threshold` is not acknowledged.
    pub fn fails(&self, threshold: Risk) -> bool {
        self.files
            .iter()
            .any(|file| file.risk().is_some_and(|risk| risk >= threshold))
    }

    /// Whether any file has an error diagnostic (it could not be read or split).
    pub fn has_errors(&self) -> bool {
        self.files.iter().any(|file| {
            file.diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error)
        })
    }
}

/// Lints the up sections of a migrations directory in version order, for `target`; migrations
/// whose version `report` rejects are read for context only (tables they create count as in use).
pub fn lint_mysql_set(
    set: &MigrationSet,
    target: &MysqlTarget,
    report: impl Fn(&str) -> bool,
) -> MysqlLintReport {
    let mut schema = Schema::default();
    let mut files = Vec::new();
    for migration in &set.migrations {
        let file = lint_section(&migration.up, target, &mut schema);
        schema.settle();
        if report(migration.version.as_str()) {
            files.push(MysqlFileReport {
                version: Some(migration.version.as_str().to_owned()),
                ..file
            });
        }
    }
    MysqlLintReport {
        target: *target,
        server: target.describe(),
        files,
    }
}

/// Lints one section, following its tables in `schema`.
fn lint_section(section: &Section, target: &MysqlTarget, schema: &mut Schema) -> MysqlFileReport {
    let mut report = MysqlFileReport {
        path: section.path.clone(),
        version: None,
        statements: 0,
        findings: Vec::new(),
        diagnostics: Vec::new(),
        source: Some(section.file_text().clone()),
    };
    let statements = match section.statements(Dialect::Mysql) {
        Ok(statements) => statements,
        Err(error) => {
            report.diagnostics.push(Diagnostic {
                severity: Severity::Error,
                kind: DiagnosticKind::SourceError,
                message: error.message.clone(),
                help: error.help.clone(),
                line: error.line.unwrap_or(1),
                column: error.column.unwrap_or(1),
                span: None,
            });
            return report;
        }
    };
    report.statements = statements.len();
    for statement in &statements {
        let ast = match Parser::parse_sql(&MySqlDialect {}, &statement.sql) {
            Ok(mut parsed) if parsed.len() == 1 => parsed.remove(0),
            Ok(_) => continue,
            Err(error) => {
                report.diagnostics.push(Diagnostic {
                    severity: Severity::Warning,
                    kind: DiagnosticKind::ParseError,
                    message: format!(
                        "the MySQL grammar safeshift uses does not read this statement: {error}"
                    ),
                    help: Some(
                        "the server checks it when it runs; its locks are not analysed here".into(),
                    ),
                    line: statement.line,
                    column: statement.column,
                    span: Some(statement.span.clone()),
                });
                continue;
            }
        };
        let mut findings = rules::check(&ast, statement, target, schema);
        if statement.directive(ONLINE_SCHEMA_CHANGE).is_some() {
            // pt-online-schema-change runs the change on a copy while writes go on: what the
            // server would do with the ALTER itself no longer matters.
            findings.retain(|finding| !rules::ONLINE_SCHEMA_CHANGE_SOLVES.contains(&finding.rule));
        }
        for finding in &mut findings {
            finding.suppressed = acknowledgement(statement, finding.rule);
        }
        report.findings.extend(findings);
        follow(&ast, schema);
    }
    report
}

/// The directive that runs an ALTER with pt-online-schema-change (safeshift's online crate).
const ONLINE_SCHEMA_CHANGE: &str = "online-schema-change";

/// The reason of a `-- safeshift:allow <rule> <reason>` directive for `rule`.
fn acknowledgement(statement: &Statement, rule: &str) -> Option<String> {
    statement
        .directives
        .iter()
        .filter(|d| d.name == "allow")
        .find_map(|directive| {
            let (named, reason) = directive
                .arguments
                .split_once(char::is_whitespace)
                .unwrap_or((directive.arguments.as_str(), ""));
            (named == rule).then(|| reason.trim().to_owned())
        })
}

/// Records what a statement does to the tables.
fn follow(ast: &Ast, schema: &mut Schema) {
    match ast {
        Ast::CreateTable(create) => {
            schema.create(schema::table_key(&create.name), &create.columns, true)
        }
        Ast::AlterTable(alter) => {
            let table = schema::table_key(&alter.name);
            schema.alter(&table, &alter.operations);
            for operation in &alter.operations {
                if let sqlparser::ast::AlterTableOperation::RenameTable { table_name } = operation {
                    let to = table_name
                        .to_string()
                        .trim_start_matches("TO ")
                        .trim_start_matches("AS ")
                        .trim_matches('`')
                        .to_ascii_lowercase();
                    schema.rename(&table, to);
                }
            }
        }
        Ast::Drop { names, .. } => {
            for name in names {
                schema.drop(&schema::table_key(name));
            }
        }
        Ast::RenameTable(renames) => {
            for rename in renames {
                schema.rename(
                    &schema::table_key(&rename.old_name),
                    schema::table_key(&rename.new_name),
                );
            }
        }
        _ => {}
    }
}
