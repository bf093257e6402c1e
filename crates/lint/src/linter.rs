//! The linter: walks migrations in order, keeps the schema and migration state, runs every rule
//! on every statement, and applies suppressions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pg_query::NodeEnum;
use pg_query::protobuf::{TransactionStmtKind, VariableSetKind};
use safeshift_source::{Checksum, LooseFile, MigrationSet, Section, Statement};

use crate::context::{
    Alterations, Execution, HeldLock, MigrationEnd, MigrationState, StatementContext,
};
use crate::effects::{self, Effects, StatementEffects};
use crate::finding::{Diagnostic, DiagnosticKind, Finding, Severity};
use crate::metadata::{ExampleMode, RuleMetadata};
use crate::options::LintOptions;
use crate::parse::{ParseFailure, ParsedSection, SectionTrees};
use crate::report::{FileReport, LintReport};
use crate::rules::RuleId;
use crate::rules::{self, RULES, RuleEntry, Violation};
use crate::schema::Schema;
use crate::sql::TableName;
use crate::suppression;

/// A rule id that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a safeshift rule; `safeshift explain` lists them")]
pub struct UnknownRule(pub String);

/// What is known about a database's history, so that objects created by pending migrations count
/// as new and out-of-order or edited migrations are caught.
#[derive(Debug, Clone, Default)]
pub struct AppliedMigrations {
    /// Applied versions with the checksum recorded when they were applied.
    pub versions: HashMap<String, Option<Checksum>>,
}

/// Which migrations of a set to report on (all are read, in order, for context).
#[derive(Debug, Clone, Default)]
pub enum Scope {
    /// Every migration.
    #[default]
    All,
    /// Only migrations not yet applied (needs [`AppliedMigrations`]).
    Pending,
    /// Only these files (paths as found in the set).
    Files(Vec<PathBuf>),
    /// Only migrations not yet applied, up to and including this version (`up --to`).
    PendingThrough(safeshift_source::Version),
}

/// Lints migrations. Cheap to create; holds no connection.
#[derive(Debug, Clone)]
pub struct Linter {
    options: LintOptions,
    enabled: Vec<bool>,
}

impl Linter {
    pub fn new(options: LintOptions) -> Result<Linter, UnknownRule> {
        let mut enabled = vec![true; RULES.len()];
        for id in &options.disabled_rules {
            let position = rules::position(id).ok_or_else(|| UnknownRule(id.clone()))?;
            enabled[position] = false;
        }
        Ok(Linter { options, enabled })
    }

    pub fn options(&self) -> &LintOptions {
        &self.options
    }

    /// Lints a migrations directory in version order. Every migration is read for context; those
    /// in `scope` are reported. Without `applied`, every migration before the one being linted
    /// counts as applied.
    pub fn lint_set(
        &self,
        set: &MigrationSet,
        applied: Option<&AppliedMigrations>,
        scope: &Scope,
    ) -> LintReport {
        let mut report = LintReport::default();
        self.lint_set_each(set, applied, scope, |file| report.files.push(file));
        report
    }

    /// [`Linter::lint_set`], handing each reported file to `each` as soon as it is linted, in
    /// version order, instead of collecting the report.
    pub fn lint_set_each(
        &self,
        set: &MigrationSet,
        applied: Option<&AppliedMigrations>,
        scope: &Scope,
        mut each: impl FnMut(FileReport),
    ) {
        self.walk_set(set, applied, scope, |visit| {
            let mut file = self.lint_parsed(
                &visit.migration.up,
                visit.parsed,
                visit.execution,
                visit.schema,
                visit.reported,
                &visit.history,
                None,
            );
            if visit.reported {
                file.version = Some(visit.migration.version.as_str().to_owned());
                each(file);
            }
        });
    }

    /// Walks a migrations directory in version order, handing each migration to `visit` with the
    /// schema as the history before it left it; `visit` must advance the schema (by linting the
    /// migration). Applied migrations (all earlier ones without `applied`) are then settled.
    pub(crate) fn walk_set(
        &self,
        set: &MigrationSet,
        applied: Option<&AppliedMigrations>,
        scope: &Scope,
        mut visit: impl FnMut(SetVisit<'_>),
    ) -> Schema {
        let mut schema = self.empty_schema();
        // Paths are compared canonicalised, each once: comparing every migration with every
        // named file would make `lint dir/*.sql` quadratic in the directory.
        let named: Option<std::collections::HashSet<PathBuf>> = match scope {
            Scope::Files(files) => Some(files.iter().map(|f| canonical(f)).collect()),
            _ => None,
        };
        let newest_applied = applied.and_then(|applied| {
            set.migrations
                .iter()
                .filter(|m| applied.versions.contains_key(m.version.as_str()))
                .map(|m| m.version.clone())
                .max()
        });
        crate::ahead::in_order(
            &set.migrations,
            |migration| migration.up.sql().len(),
            |migration| ParsedSection::of(&migration.up),
            |migration, parsed| {
                let is_applied =
                    applied.map(|a| a.versions.contains_key(migration.version.as_str()));
                let reported = match scope {
                    Scope::All => true,
                    Scope::Pending => is_applied != Some(true),
                    Scope::PendingThrough(target) => {
                        is_applied != Some(true) && migration.version <= *target
                    }
                    Scope::Files(_) => named
                        .as_ref()
                        .is_some_and(|named| named.contains(&canonical(&migration.up.path))),
                };
                let history = HistoryFacts {
                    out_of_order: match (&newest_applied, is_applied) {
                        (Some(newest), Some(false)) if migration.version < *newest => {
                            Some(newest.as_str().to_owned())
                        }
                        _ => None,
                    },
                    changed_since_applied: applied
                        .and_then(|a| a.versions.get(migration.version.as_str()))
                        .and_then(Option::as_ref)
                        .is_some_and(|checksum| *checksum != migration.up.checksum),
                };
                visit(SetVisit {
                    migration,
                    parsed,
                    execution: Execution::Runner {
                        transaction: migration.up.options.transaction,
                    },
                    schema: &mut schema,
                    reported,
                    applied: is_applied == Some(true),
                    history,
                });
                if is_applied != Some(false) {
                    schema.settle();
                }
            },
        );
        schema
    }

    /// Lints SQL files that are not part of a migrations directory, in the order given, each
    /// after the ones before it (and after the whole `history`, when given, such as the
    /// project's migrations): the tables, columns and types they create are known to the files
    /// after them. A file with a `-- migrate:up` marker is taken as a migration the runner
    /// executes; any other file as a plain script.
    pub fn lint_files(&self, files: &[LooseFile], history: Option<&MigrationSet>) -> LintReport {
        let mut report = LintReport::default();
        self.lint_files_each(files, history, |file| report.files.push(file));
        report
    }

    /// [`Linter::lint_files`], handing each file to `each` as soon as it is linted, in order.
    pub fn lint_files_each(
        &self,
        files: &[LooseFile],
        history: Option<&MigrationSet>,
        mut each: impl FnMut(FileReport),
    ) {
        let mut schema = match history {
            Some(set) => self.schema_after(set),
            None => self.empty_schema(),
        };
        crate::ahead::in_order(
            files,
            |file| file.up.sql().len(),
            |file| ParsedSection::of(&file.up),
            |file, parsed| {
                let linted = self.lint_parsed(
                    &file.up,
                    parsed,
                    execution_of(file),
                    &mut schema,
                    true,
                    &HistoryFacts::default(),
                    None,
                );
                schema.settle();
                each(linted);
            },
        );
    }

    /// The schema a migrations directory leaves once every migration in it has run.
    fn schema_after(&self, set: &MigrationSet) -> Schema {
        self.walk_set(set, None, &Scope::Files(Vec::new()), |visit| {
            self.lint_parsed(
                &visit.migration.up,
                visit.parsed,
                visit.execution,
                visit.schema,
                false,
                &visit.history,
                None,
            );
        })
    }

    /// A schema before any migration: nothing created yet, the database's column types known.
    pub(crate) fn empty_schema(&self) -> Schema {
        Schema::with_database(self.options.database_columns.clone())
    }

    /// Lints one file on its own.
    pub fn lint_file(&self, file: &LooseFile) -> FileReport {
        self.lint_section(
            &file.up,
            execution_of(file),
            &mut self.empty_schema(),
            true,
            &HistoryFacts::default(),
            None,
        )
    }

    /// Lints `example` as it runs after `setup` has been applied, the way rule examples and
    /// tests describe a situation. Panics are not used for bad SQL: parse errors come back as
    /// diagnostics.
    pub fn lint_example(&self, setup: &str, example: &str, mode: ExampleMode) -> FileReport {
        self.lint_example_collecting(setup, example, mode, None)
    }

    /// The lock model's claim for each statement of `example` run after `setup`: the locks on
    /// pre-existing tables and the rewrites. The lock verification test compares it with what a
    /// real server does.
    pub fn example_effects(
        &self,
        setup: &str,
        example: &str,
        mode: ExampleMode,
    ) -> Vec<StatementEffects> {
        let mut collected = Vec::new();
        self.lint_example_collecting(setup, example, mode, Some(&mut collected));
        collected
    }

    fn lint_example_collecting(
        &self,
        setup: &str,
        example: &str,
        mode: ExampleMode,
        collect: Option<&mut Vec<StatementEffects>>,
    ) -> FileReport {
        let mut schema = self.empty_schema();
        if let Ok(setup) = LooseFile::from_bytes(Path::new("setup.sql"), setup.as_bytes()) {
            self.lint_section(
                &setup.up,
                Execution::Script,
                &mut schema,
                false,
                &HistoryFacts::default(),
                None,
            );
            schema.settle();
        }
        let execution = match mode {
            ExampleMode::Migration => Execution::Runner { transaction: true },
            ExampleMode::MigrationWithoutTransaction => Execution::Runner { transaction: false },
            ExampleMode::Script => Execution::Script,
        };
        match LooseFile::from_bytes(Path::new("example.sql"), example.as_bytes()) {
            Ok(file) => self.lint_section(
                &file.up,
                execution,
                &mut schema,
                true,
                &HistoryFacts::default(),
                collect,
            ),
            Err(error) => FileReport {
                path: PathBuf::from("example.sql"),
                version: None,
                execution,
                statements: 0,
                findings: Vec::new(),
                diagnostics: vec![source_error_diagnostic(error)],
                source: None,
            },
        }
    }

    pub(crate) fn lint_section(
        &self,
        section: &Section,
        execution: Execution,
        schema: &mut Schema,
        reported: bool,
        history: &HistoryFacts,
        collect: Option<&mut Vec<StatementEffects>>,
    ) -> FileReport {
        let parsed = ParsedSection::of(section);
        self.lint_parsed(
            section, parsed, execution, schema, reported, history, collect,
        )
    }

    /// Lints a section already split and parsed (see [`ParsedSection`]), advancing `schema`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lint_parsed(
        &self,
        section: &Section,
        parsed: ParsedSection,
        execution: Execution,
        schema: &mut Schema,
        reported: bool,
        history: &HistoryFacts,
        collect: Option<&mut Vec<StatementEffects>>,
    ) -> FileReport {
        let mut file = FileReport {
            path: section.path.clone(),
            version: None,
            execution,
            statements: 0,
            findings: Vec::new(),
            diagnostics: Vec::new(),
            source: Some(section.file_text().clone()),
        };
        let ParsedSection { statements, parsed } = parsed;
        let mut statements = match statements {
            Ok(statements) => statements,
            Err(error) => {
                file.diagnostics.push(source_error_diagnostic(error));
                return file;
            }
        };
        file.statements = statements.len();
        let SectionWalk {
            mut state,
            mut violations,
            effects_by_statement,
            nodes,
            mut parse_errors,
        } = self.walk_statements(
            section,
            &mut statements,
            parsed,
            execution,
            schema,
            reported,
            collect,
        );
        file.diagnostics.append(&mut parse_errors);
        if !reported {
            return file;
        }
        finish_transaction(&mut state);
        let end = MigrationEnd {
            state: &state,
            schema,
            nodes: &nodes,
            out_of_order: history.out_of_order.as_deref(),
            changed_since_applied: history.changed_since_applied,
        };
        for (position, rule) in self.enabled_rules() {
            let mut found = Vec::new();
            rule.logic.finish(&end, &mut found);
            for violation in found {
                violations.push((position, violation));
            }
        }
        file.findings = findings_of(violations, &statements, &effects_by_statement);
        file.findings.sort_by_key(|f| (f.span.start, f.statement));
        apply_suppressions(section, &statements, &mut file);
        file.diagnostics.sort_by_key(|d| (d.line, d.column));
        file
    }

    /// Runs the statements in order: each one's effects are worked out against the schema as
    /// the statements before it left it, checked by every enabled rule when `reported`, and then
    /// applied to the schema and the migration state.
    #[allow(clippy::too_many_arguments)]
    fn walk_statements(
        &self,
        section: &Section,
        statements: &mut [Statement],
        parsed: SectionTrees,
        execution: Execution,
        schema: &mut Schema,
        reported: bool,
        mut collect: Option<&mut Vec<StatementEffects>>,
    ) -> SectionWalk {
        let session_utc = self.utc_conversions(self.options.time_zone.as_deref());
        let mut walk = SectionWalk {
            state: MigrationState::new(execution, session_utc),
            violations: Vec::new(),
            effects_by_statement: Vec::with_capacity(statements.len()),
            nodes: Vec::with_capacity(statements.len()),
            parse_errors: Vec::new(),
        };
        for (statement, parsed) in statements.iter_mut().zip(parsed) {
            let node = match parsed {
                Ok(Some(node)) => {
                    // A section parsed as it is linted learns this here (see `ParsedSection`).
                    statement.transactionality = safeshift_source::transactionality_of(&node);
                    node
                }
                Ok(None) => {
                    walk.effects_by_statement.push(Effects::default());
                    walk.nodes.push(None);
                    continue;
                }
                Err(failure) => {
                    walk.parse_errors
                        .push(parse_error_diagnostic(section, statement, failure));
                    walk.effects_by_statement.push(Effects::default());
                    walk.nodes.push(None);
                    continue;
                }
            };
            let effects = effects::of(
                &node,
                schema,
                self.options.pg_version,
                walk.state.utc_conversions,
            );
            if let Some(collected) = collect.as_deref_mut() {
                collected.push(claimed_effects(statement, &effects, schema));
            }
            if reported {
                self.check_statement(statement, &node, schema, &effects, &mut walk);
            }
            let state = &mut walk.state;
            advance(state, statement.index, &node, &effects, schema);
            if let Some(zone) = time_zone_set_by(&node) {
                state.utc_conversions =
                    self.utc_conversions(zone.as_deref().or(self.options.time_zone.as_deref()));
            }
            schema.apply(&node);
            walk.effects_by_statement.push(effects);
            // Only the rules that look back at the whole migration need a tree again, and only
            // an ALTER TABLE's: the others are dropped here, so a file of many statements does
            // not keep every tree.
            walk.nodes
                .push(matches!(node, NodeEnum::AlterTableStmt(_)).then_some(node));
        }
        walk
    }

    /// Runs every enabled rule on one statement, adding what they find to `walk.violations`.
    fn check_statement(
        &self,
        statement: &Statement,
        node: &NodeEnum,
        schema: &Schema,
        effects: &Effects,
        walk: &mut SectionWalk,
    ) {
        let context = StatementContext {
            sql: &statement.sql,
            node,
            index: statement.index,
            statement,
            schema,
            state: &walk.state,
            effects,
            pg_version: self.options.pg_version,
            columns: crate::sql::defined_columns(node),
        };
        for (position, rule) in self.enabled_rules() {
            let mut found = Vec::new();
            rule.logic.check(&context, &mut found);
            for mut violation in found {
                violation.statement.get_or_insert(statement.index);
                if violation.locks.is_none() {
                    violation.locks = Some(context.existing_locks());
                }
                walk.violations.push((position, violation));
            }
        }
    }

    /// The rules this linter runs, with their positions in [`RULES`].
    fn enabled_rules(&self) -> impl Iterator<Item = (usize, &'static RuleEntry)> + '_ {
        RULES
            .iter()
            .enumerate()
            .filter(|(position, _)| self.enabled[*position])
    }
}

/// What walking a section's statements leaves for the end-of-migration rules and the report.
struct SectionWalk {
    /// The migration state before the current statement; after the walk, at the end.
    state: MigrationState,
    /// Rule positions in [`RULES`] with what each found.
    violations: Vec<(usize, Violation)>,
    /// One per statement, in order (empty for statements that did not parse).
    effects_by_statement: Vec<Effects>,
    /// One per statement: the tree of each ALTER TABLE, kept for the end-of-migration rules.
    nodes: Vec<Option<NodeEnum>>,
    parse_errors: Vec<Diagnostic>,
}

/// The diagnostic for a file that cannot be split into statements.
fn source_error_diagnostic(error: safeshift_source::SourceError) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        kind: DiagnosticKind::SourceError,
        message: error.message,
        help: error.help,
        line: error.line.unwrap_or(1),
        column: error.column.unwrap_or(1),
        span: None,
    }
}

/// The diagnostic for a statement PostgreSQL's grammar rejects, pointing at the token where
/// parsing stopped.
fn parse_error_diagnostic(
    section: &Section,
    statement: &Statement,
    failure: ParseFailure,
) -> Diagnostic {
    let offset = statement.span.start + failure.offset;
    let (line, column) = section.file_text().line_col(offset);
    Diagnostic {
        severity: Severity::Error,
        kind: DiagnosticKind::ParseError,
        message: failure.message,
        help: Some(
            "PostgreSQL will reject this statement; the rest of the file was still linted"
                .to_owned(),
        ),
        line,
        column,
        span: Some(offset..offset + token_length(&statement.sql[failure.offset..])),
    }
}

/// The lock model's claim for one statement: its locks and rewrites of tables that existed
/// before the migration (locks on a table the migration creates block nobody).
fn claimed_effects(statement: &Statement, effects: &Effects, schema: &Schema) -> StatementEffects {
    StatementEffects {
        index: statement.index,
        line: statement.line,
        sql: statement.sql.clone(),
        outside_transaction: matches!(
            statement.transactionality,
            safeshift_source::Transactionality::OutsideTransaction { .. }
        ),
        locks: effects
            .locks
            .iter()
            .filter(|l| schema.is_existing(&l.table))
            .cloned()
            .collect(),
        rewrites: effects
            .rewrites
            .iter()
            .filter(|t| schema.is_existing(t))
            .cloned()
            .collect(),
    }
}

/// The findings for the rules' violations, each placed on its statement (a violation that
/// names none, or one past the end, lands on the nearest statement).
fn findings_of(
    violations: Vec<(usize, Violation)>,
    statements: &[Statement],
    effects_by_statement: &[Effects],
) -> Vec<Finding> {
    let metadata = rules::metadata();
    let no_effects = Effects::default();
    let mut findings = Vec::new();
    for (position, violation) in violations {
        let index = violation
            .statement
            .unwrap_or(0)
            .min(statements.len().saturating_sub(1));
        if let Some(statement) = statements.get(index) {
            let effects = effects_by_statement.get(index).unwrap_or(&no_effects);
            findings.push(finding(
                RULES[position].id,
                &metadata[position],
                violation,
                effects,
                statement,
            ));
        }
    }
    findings
}

/// Marks the findings the file's suppression comments acknowledge, and adds a warning for
/// each suppression that acknowledges none (or is malformed) to the file's diagnostics.
fn apply_suppressions(section: &Section, statements: &[Statement], file: &mut FileReport) {
    let (mut suppressions, mut diagnostics) =
        suppression::find(section.file_text(), body_range(section), statements, |id| {
            rules::position(id).is_some()
        });
    for finding in &mut file.findings {
        if let Some(suppression) = suppressions
            .iter_mut()
            .find(|s| finding.rule == s.rule && s.statement.is_none_or(|i| i == finding.statement))
        {
            suppression.used = true;
            finding.suppressed = Some(suppression.reason.clone());
        }
    }
    for unused in suppressions.iter().filter(|s| !s.used) {
        let (line, column) = section.file_text().line_col(unused.span.start);
        diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            kind: DiagnosticKind::UnusedSuppression,
            message: format!(
                "the suppression of `{}` acknowledges no finding",
                unused.rule
            ),
            help: Some("remove it, or move it next to the statement it is meant for".to_owned()),
            line,
            column,
            span: Some(unused.span.clone()),
        });
    }
    file.diagnostics.append(&mut diagnostics);
}

/// How the runner (or another tool) executes a file outside a migrations directory.
fn execution_of(file: &LooseFile) -> Execution {
    if file.has_marker {
        Execution::Runner {
            transaction: file.up.options.transaction,
        }
    } else {
        Execution::Script
    }
}

/// Facts about a migration that come from the database's history.
#[derive(Debug, Clone, Default)]
pub(crate) struct HistoryFacts {
    out_of_order: Option<String>,
    changed_since_applied: bool,
}

/// One migration of a set, as [`Linter::walk_set`] hands it over.
pub(crate) struct SetVisit<'a> {
    pub migration: &'a safeshift_source::Migration,
    /// Its up section, split and parsed ahead on another thread.
    pub parsed: ParsedSection,
    pub execution: Execution,
    /// The schema before the migration; linting the migration advances it.
    pub schema: &'a mut Schema,
    /// Whether the migration is in the scope to report.
    pub reported: bool,
    /// Whether the database has applied it (false without a database).
    pub applied: bool,
    pub history: HistoryFacts,
}

fn finding(
    rule: RuleId,
    metadata: &'static RuleMetadata,
    violation: Violation,
    effects: &Effects,
    statement: &Statement,
) -> Finding {
    let locks = violation.locks.unwrap_or_default();
    let strongest = locks.iter().map(|l| l.mode).max();
    let mut tables: Vec<String> = Vec::new();
    for lock in &locks {
        let name = lock.table.to_string();
        if !tables.contains(&name) {
            tables.push(name);
        }
    }
    let rewrite = violation
        .rewrite
        .unwrap_or_else(|| locks.iter().any(|l| effects.rewrites.contains(&l.table)));
    let mut finding = Finding {
        rule,
        risk: violation.risk.unwrap_or(metadata.risk),
        hazard: violation.hazard.unwrap_or(metadata.hazard),
        message: violation.message,
        lock: strongest,
        blocks: strongest.map(|mode| mode.blocks()),
        tables,
        locks,
        rewrite,
        help: &metadata.help,
        safe_alternative: violation.safe_alternative,
        line: statement.line,
        column: statement.column,
        span: statement.span.clone(),
        statement: statement.index,
        estimate: None,
        suppressed: None,
    };
    finding.risk = crate::policy::risk_without_sizes(metadata, &finding);
    finding
}

impl Linter {
    /// Whether converting between `timestamp` and `timestamptz` rewrites nothing in a session
    /// with this time zone (unknown: it may rewrite).
    fn utc_conversions(&self, zone: Option<&str>) -> bool {
        self.options.pg_version.0 >= 12 && zone.is_some_and(crate::coercion::is_utc)
    }
}

/// The time zone a `SET TIME ZONE` (or `SET timezone`, `RESET`) statement leaves: `Some(None)`
/// for the session's default.
fn time_zone_set_by(node: &NodeEnum) -> Option<Option<String>> {
    let NodeEnum::VariableSetStmt(set) = node else {
        return None;
    };
    if !set.name.eq_ignore_ascii_case("timezone") {
        return None;
    }
    match set.kind() {
        VariableSetKind::VarSetValue => Some(Some(
            set.args
                .iter()
                .filter_map(crate::sql::constant_text)
                .collect::<Vec<_>>()
                .join(" "),
        )),
        VariableSetKind::VarSetDefault
        | VariableSetKind::VarReset
        | VariableSetKind::VarResetAll => Some(None),
        _ => None,
    }
}

/// Updates the migration state after a statement ran.
fn advance(
    state: &mut MigrationState,
    index: usize,
    node: &NodeEnum,
    effects: &Effects,
    schema: &Schema,
) {
    if state.in_transaction {
        let slow = !effects.rewrites.is_empty()
            || !effects.scans.is_empty()
            || matches!(
                node,
                NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) | NodeEnum::InsertStmt(_)
            );
        state.transaction_statements += 1;
        if slow {
            state.last_slow_work = state.transaction_statements;
        }
    }
    match node {
        NodeEnum::TransactionStmt(transaction) => match transaction.kind() {
            TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart
                if !state.in_transaction =>
            {
                state.in_transaction = true;
                state.explicit_begin = Some(index);
            }
            TransactionStmtKind::TransStmtCommit | TransactionStmtKind::TransStmtRollback => {
                finish_transaction(state);
                state.in_transaction = false;
                state.explicit_begin = None;
            }
            _ => {}
        },
        NodeEnum::VariableSetStmt(set) => note_timeout_setting(state, set),
        NodeEnum::AlterTableStmt(alter) => note_table_alteration(state, index, alter, schema),
        _ => {}
    }
    for (table, columns, referenced) in crate::sql::declared_foreign_keys(node) {
        state.foreign_keys.push((index, table, columns, referenced));
    }
    if effects
        .locks
        .iter()
        .any(|l| l.mode.blocks_traffic() && schema.is_existing(&l.table))
    {
        state.blocking_statements += 1;
    }
    if effects
        .scans
        .iter()
        .chain(&effects.rewrites)
        .any(|t| schema.is_existing(t))
    {
        state.slow_statements += 1;
    }
    if state.in_transaction {
        hold_locks(state, index, effects, schema);
    }
}

/// Records whether a `SET` turns `lock_timeout` or `statement_timeout` on (a value of 0, or
/// a reset, turns it off).
fn note_timeout_setting(state: &mut MigrationState, set: &pg_query::protobuf::VariableSetStmt) {
    let enabled = set.kind() == VariableSetKind::VarSetValue
        && !set
            .args
            .iter()
            .any(|a| crate::sql::constant_text(a).as_deref() == Some("0"));
    match set.name.as_str() {
        "lock_timeout" => state.lock_timeout_set = enabled,
        "statement_timeout" => state.statement_timeout_set = enabled,
        _ => {}
    }
}

/// Records an `ALTER TABLE` of a table that existed before the migration (so rules can see
/// several alterations of one table that could have been one), and the constraints added
/// `NOT VALID` inside the transaction.
fn note_table_alteration(
    state: &mut MigrationState,
    index: usize,
    alter: &pg_query::protobuf::AlterTableStmt,
    schema: &Schema,
) {
    let Some(relation) = &alter.relation else {
        return;
    };
    if alter.objtype() != pg_query::protobuf::ObjectType::ObjectTable {
        return;
    }
    let table = TableName::from_range_var(relation);
    if schema.is_existing(&table) {
        match state.alterations_by_table.get(table.key()) {
            Some(&position) => state.alterations[position].statements.push(index),
            None => {
                state
                    .alterations_by_table
                    .insert(table.key().to_owned(), state.alterations.len());
                state.alterations.push(Alterations {
                    table: table.clone(),
                    statements: vec![index],
                });
            }
        }
    }
    if state.in_transaction {
        for command in crate::sql::alter_commands(alter) {
            if let Some(NodeEnum::Constraint(constraint)) = crate::sql::inner(&command.def)
                && constraint.skip_validation
            {
                state
                    .not_valid_in_transaction
                    .push((table.key().to_owned(), constraint.conname.clone()));
            }
        }
    }
}

/// Adds a statement's locks on existing tables to those the open transaction holds until it
/// ends, keeping per table the strongest mode and the statement that took it.
fn hold_locks(state: &mut MigrationState, index: usize, effects: &Effects, schema: &Schema) {
    for lock in effects
        .locks
        .iter()
        .filter(|l| schema.is_existing(&l.table))
    {
        let taken_at = state.transaction_statements;
        match state.held_by_table.get(lock.table.key()) {
            Some(&position) => {
                let held = &mut state.held[position];
                if held.lock.mode < lock.mode {
                    held.lock.mode = lock.mode;
                    held.statement = index;
                    held.taken_at = taken_at;
                }
            }
            None => {
                state
                    .held_by_table
                    .insert(lock.table.key().to_owned(), state.held.len());
                state.held.push(HeldLock {
                    lock: lock.clone(),
                    statement: index,
                    later_statements: 0,
                    later_slow_work: false,
                    taken_at,
                });
            }
        }
    }
}

fn finish_transaction(state: &mut MigrationState) {
    let (statements, last_slow) = (state.transaction_statements, state.last_slow_work);
    for mut held in std::mem::take(&mut state.held) {
        held.later_statements = statements - held.taken_at;
        held.later_slow_work = last_slow > held.taken_at;
        state.released.push(held);
    }
    state.held_by_table.clear();
    state.transaction_statements = 0;
    state.last_slow_work = 0;
    state.not_valid_in_transaction.clear();
}

fn token_length(rest: &str) -> usize {
    rest.find(|c: char| c.is_whitespace() || c == ';' || c == ',' || c == '(' || c == ')')
        .unwrap_or(rest.len())
        .max(1)
        .min(rest.len())
}

fn body_range(section: &Section) -> std::ops::Range<usize> {
    let text = section.file_text().as_str();
    let body = section.sql();
    let start = body.as_ptr() as usize - text.as_ptr() as usize;
    start..start + body.len()
}

/// The path with symbolic links and `..` resolved, or as given when it cannot be.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose(name: &str, sql: &str) -> LooseFile {
        LooseFile::from_bytes(Path::new(name), sql.as_bytes()).unwrap()
    }

    fn type_changes(report: &FileReport) -> usize {
        report
            .findings
            .iter()
            .filter(|f| f.rule == "changing-column-type")
            .count()
    }

    #[test]
    fn files_outside_a_directory_know_what_the_files_before_them_created() {
        let linter = Linter::new(LintOptions::default()).unwrap();
        let create = loose("001.sql", "CREATE TABLE users (email varchar(50));");
        let widen = loose(
            "002.sql",
            "ALTER TABLE users ALTER COLUMN email TYPE varchar(100);",
        );
        let report = linter.lint_files(&[create, widen.clone()], None);
        assert_eq!(
            type_changes(&report.files[1]),
            0,
            "{:#?}",
            report.files[1].findings
        );
        assert_eq!(
            type_changes(&linter.lint_file(&widen)),
            1,
            "alone, the type is unknown"
        );

        let directory = tempfile::tempdir().unwrap();
        std::fs::write(
            directory.path().join("0001_users.sql"),
            "-- migrate:up\nCREATE TABLE users (email varchar(50));\n",
        )
        .unwrap();
        let set = MigrationSet::load(directory.path()).unwrap();
        let after_history = linter.lint_files(&[widen], Some(&set));
        assert_eq!(type_changes(&after_history.files[0]), 0);
    }
}
