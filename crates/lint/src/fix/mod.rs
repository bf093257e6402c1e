//! `safeshift lint --fix`: rewriting the flagged statements that have a safe form into it, in
//! the migration's up section, and making the section run without a transaction when the safe
//! form needs that.
//!
//! The fixer starts from the linter's findings, so it rewrites exactly what `safeshift lint`
//! reports (a finding acknowledged with `-- safeshift:allow` is left alone), and replaces only
//! the byte span of each statement, so comments and formatting around it stay as they are.
//! Before handing a rewrite back it lints the result in the same history: a rewrite that would
//! bring a new finding of high risk or above is dropped, with the reason.
//!
//! ```
//! use safeshift_lint::{LintOptions, Linter};
//! # let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("0001_users.sql"), "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n").unwrap();
//! std::fs::write(dir.path().join("0002_index.sql"), "-- migrate:up\nCREATE INDEX users_email_idx ON users (email);\n").unwrap();
//! let set = safeshift_source::MigrationSet::load(dir.path()).unwrap();
//! let linter = Linter::new(LintOptions::default()).unwrap();
//! let fixes = linter.fix_set(&set, None, &safeshift_lint::Scope::All);
//! assert_eq!(
//!     fixes[0].fixed.as_deref(),
//!     Some("-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);\n")
//! );
//! assert_eq!(fixes[0].rewrites[0].rule, "require-concurrent-index-creation");
//! ```

mod rewrite;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};

use pg_query::NodeEnum;
use pg_query::protobuf::TransactionStmtKind;
use safeshift_source::{Dialect, LooseFile, MigrationSet, Section};
use serde::Serialize;

use crate::context::Execution;
use crate::finding::Finding;
use crate::linter::{AppliedMigrations, HistoryFacts, Linter, Scope};
use crate::parse;
use crate::report::FileReport;
use crate::risk::Risk;
use crate::rules::RuleId;
use crate::schema::Schema;

use rewrite::{FIXABLE_RULES, Input, Plan};

/// What `--fix` did to one file, and what it left alone.
#[derive(Debug, Clone, Serialize)]
pub struct FileFix {
    pub path: PathBuf,
    /// The migration's version, for files of a migrations directory.
    pub version: Option<String>,
    /// The file's text as it was read (line endings normalised to `\n`).
    #[serde(skip)]
    pub original: String,
    /// The new text (line endings normalised to `\n`), when anything changed.
    #[serde(skip)]
    pub fixed: Option<String>,
    /// The statements rewritten, in file order.
    pub rewrites: Vec<Rewrite>,
    /// The change to the up section's options, when the safe forms needed one (e.g. setting
    /// `transaction:false` on the `-- migrate:up` line).
    pub section_change: Option<String>,
    /// Findings `--fix` knows a safe form for but did not rewrite, with the reason.
    pub left_alone: Vec<LeftAlone>,
    /// What the user must know about a change that the fixer cannot judge (atomicity lost).
    pub warnings: Vec<String>,
}

/// One statement rewritten.
#[derive(Debug, Clone, Serialize)]
pub struct Rewrite {
    pub rule: RuleId,
    /// 1-based line of the statement in the original file.
    pub line: u32,
    /// What was done, in a few words.
    pub summary: &'static str,
    /// The statement's text before.
    pub before: String,
    /// The text that replaced it (with a directive line above it, when one was added).
    pub after: String,
    /// A condition the fixer cannot check that the rewritten statement needs.
    pub caveat: Option<String>,
}

/// A finding with a known safe form that was not rewritten.
#[derive(Debug, Clone, Serialize)]
pub struct LeftAlone {
    pub rule: RuleId,
    pub line: u32,
    pub reason: String,
}

impl FileFix {
    fn new(path: &Path, original: &str) -> FileFix {
        FileFix {
            path: path.to_path_buf(),
            version: None,
            original: original.to_owned(),
            fixed: None,
            rewrites: Vec::new(),
            section_change: None,
            left_alone: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Whether there is anything to tell about the file.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_none() && self.left_alone.is_empty() && self.warnings.is_empty()
    }

    fn leave(&mut self, finding: &Finding, reason: impl Into<String>) {
        self.left_alone.push(LeftAlone {
            rule: finding.rule,
            line: finding.line,
            reason: reason.into(),
        });
    }
}

impl Linter {
    /// Fixes the migrations of a directory that `scope` selects, each linted in the history
    /// before it (as [`Linter::lint_set`] does). A migration the database has applied is never
    /// rewritten: its checksum would change and `safeshift up` would stop on it. Files with
    /// nothing to tell are left out.
    pub fn fix_set(
        &self,
        set: &MigrationSet,
        applied: Option<&AppliedMigrations>,
        scope: &Scope,
    ) -> Vec<FileFix> {
        let mut fixes = Vec::new();
        self.walk_set(set, applied, scope, |visit| {
            let before = visit.schema.clone();
            let report = self.lint_parsed(
                &visit.migration.up,
                visit.parsed,
                visit.execution,
                visit.schema,
                visit.reported,
                &visit.history,
                None,
            );
            if !visit.reported {
                return;
            }
            let mut fix = if visit.applied {
                let mut fix = FileFix::new(
                    &visit.migration.up.path,
                    visit.migration.up.file_text().as_str(),
                );
                for finding in fixable(&report).filter(|f| !f.is_suppressed()) {
                    fix.leave(finding, "the database has applied this migration: rewriting it would change its checksum and stop `safeshift up`; make the change in a new migration");
                }
                fix
            } else {
                self.fix_section(
                    &visit.migration.up,
                    visit.execution,
                    &before,
                    &report,
                    &visit.history,
                )
            };
            fix.version = Some(visit.migration.version.as_str().to_owned());
            if !fix.is_empty() {
                fixes.push(fix);
            }
        });
        fixes
    }

    /// Fixes one file read on its own, with a fresh schema (as [`Linter::lint_file`] lints it).
    pub fn fix_file(&self, file: &LooseFile) -> FileFix {
        let report = self.lint_file(file);
        let execution = report.execution;
        self.fix_section(
            &file.up,
            execution,
            &self.empty_schema(),
            &report,
            &HistoryFacts::default(),
        )
    }

    fn fix_section(
        &self,
        section: &Section,
        execution: Execution,
        schema_before: &Schema,
        report: &FileReport,
        history: &HistoryFacts,
    ) -> FileFix {
        let text = section.file_text().as_str();
        let mut fix = FileFix::new(&section.path, text);
        let mut active: Vec<&Finding> = Vec::new();
        for finding in fixable(report) {
            match &finding.suppressed {
                Some(reason) => fix.leave(
                    finding,
                    format!("acknowledged with `-- safeshift:allow` ({reason})"),
                ),
                None => active.push(finding),
            }
        }
        if active.is_empty() {
            return fix;
        }
        if report.errors().next().is_some() {
            for finding in active {
                fix.leave(
                    finding,
                    "the file has errors (see the diagnostics): fix them first",
                );
            }
            return fix;
        }
        let Ok(statements) = section.statements_unclassified(Dialect::Postgres) else {
            return fix;
        };
        let nodes = parse::parse_section(&statements);
        let mut schema = schema_before.clone();
        let mut in_file_transaction = false;
        let mut controls_transactions = false;
        let mut plans: Vec<(usize, RuleId, Plan)> = Vec::new();
        let mut code_statements: Vec<usize> = Vec::new();
        for (statement, node) in statements.iter().zip(nodes) {
            let Ok(Some(node)) = node else { continue };
            code_statements.push(statement.index);
            let mut flagged: Vec<&Finding> = active
                .iter()
                .copied()
                .filter(|f| f.statement == statement.index)
                .collect();
            flagged.sort_by_key(|f| FIXABLE_RULES.iter().position(|rule| *rule == f.rule));
            if let Some((first, others)) = flagged.split_first() {
                let own_tree = parse::parse_statement(&statement.sql).ok().flatten();
                let indent = indent_before(text, statement.span.start);
                let planned = match &own_tree {
                    Some(own_tree) => rewrite::plan(
                        first.rule,
                        &Input {
                            statement,
                            node: own_tree,
                            schema: &schema,
                            pg_version: self.options().pg_version,
                            execution,
                            in_file_transaction,
                            indent: indent.unwrap_or(""),
                        },
                    ),
                    None => Err("the statement does not parse on its own".to_owned()),
                };
                match planned {
                    Ok(plan) if plan.needs_no_transaction && in_file_transaction => fix.leave(
                        first,
                        "the statement is inside the file's own BEGIN … COMMIT, and its safe form cannot run in a transaction block",
                    ),
                    Ok(plan) => {
                        for other in others {
                            if !(plan.needs_no_transaction && only_needs_no_transaction(other.rule))
                            {
                                fix.leave(other, format!("the statement was rewritten for `{}`; run --fix again for this finding", first.rule));
                            }
                        }
                        plans.push((statement.index, first.rule, plan));
                    }
                    Err(reason) => {
                        fix.leave(first, reason);
                        for other in others {
                            fix.leave(other, "another finding on the statement could not be fixed");
                        }
                    }
                }
            }
            if let NodeEnum::TransactionStmt(transaction) = &node {
                controls_transactions = true;
                match transaction.kind() {
                    TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => {
                        in_file_transaction = true
                    }
                    TransactionStmtKind::TransStmtCommit
                    | TransactionStmtKind::TransStmtRollback => in_file_transaction = false,
                    _ => {}
                }
            }
            schema.apply(&node);
        }
        let runner_transaction = execution == Execution::Runner { transaction: true };
        let turns_off_transaction =
            runner_transaction && plans.iter().any(|(_, _, plan)| plan.needs_no_transaction);
        if turns_off_transaction && controls_transactions {
            plans.retain(|(index, rule, plan)| {
                if plan.needs_no_transaction {
                    fix.left_alone.push(LeftAlone {
                        rule: *rule,
                        line: statements[*index].line,
                        reason: "the section has BEGIN/COMMIT statements of its own; turning its transaction off would change what they mean".into(),
                    });
                }
                !plan.needs_no_transaction
            });
            return self.finish(
                fix,
                section,
                plans,
                &statements,
                None,
                execution,
                schema_before,
                report,
                history,
            );
        }
        let marker = turns_off_transaction.then(|| transaction_off_edit(section));
        let execution = if turns_off_transaction {
            Execution::Runner { transaction: false }
        } else {
            execution
        };
        if let Some((_, description)) = &marker {
            fix.section_change = Some(description.clone());
            let untouched: Vec<String> = code_statements
                .iter()
                .filter(|index| !plans.iter().any(|(planned, ..)| planned == *index))
                .map(|index| statements[*index].line.to_string())
                .collect();
            if !untouched.is_empty() {
                fix.warnings.push(format!(
                    "the up section now runs without a transaction: each statement commits on its own, so the statement{} on line{} {} no longer commit{} together with the rest; if one fails, the ones before it stay applied and `safeshift up` resumes from it. Check that nothing relies on them being atomic, or move the rewritten statements into a migration of their own",
                    if untouched.len() == 1 { "" } else { "s" },
                    if untouched.len() == 1 { "" } else { "s" },
                    untouched.join(", "),
                    if untouched.len() == 1 { "s" } else { "" },
                ));
            }
        }
        self.finish(
            fix,
            section,
            plans,
            &statements,
            marker.map(|(edit, _)| edit),
            execution,
            schema_before,
            report,
            history,
        )
    }

    /// Applies the plans, lints the result in the same history, and keeps it unless it brings a
    /// new finding of high risk or above.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        mut fix: FileFix,
        section: &Section,
        plans: Vec<(usize, RuleId, Plan)>,
        statements: &[safeshift_source::Statement],
        marker: Option<Edit>,
        execution: Execution,
        schema_before: &Schema,
        report: &FileReport,
        history: &HistoryFacts,
    ) -> FileFix {
        if plans.is_empty() {
            fix.section_change = None;
            fix.warnings.clear();
            return fix;
        }
        let text = section.file_text().as_str();
        let mut edits: Vec<Edit> = marker.into_iter().collect();
        let mut rewrites = Vec::new();
        for (index, rule, plan) in &plans {
            let statement = &statements[*index];
            let mut after = plan
                .replacement
                .clone()
                .unwrap_or_else(|| statement.sql.clone());
            if let Some(replacement) = &plan.replacement {
                edits.push(Edit {
                    range: statement.span.clone(),
                    text: replacement.clone(),
                });
            }
            if let Some(line) = &plan.line_above {
                let inserted = match indent_before(text, statement.span.start) {
                    Some(indent) => format!("{line}\n{indent}"),
                    None => format!("\n{line}\n"),
                };
                edits.push(Edit {
                    range: statement.span.start..statement.span.start,
                    text: inserted,
                });
                after = format!("{line}\n{after}");
            }
            rewrites.push(Rewrite {
                rule: *rule,
                line: statement.line,
                summary: plan.summary,
                before: statement.sql.clone(),
                after,
                caveat: plan.caveat.clone(),
            });
        }
        let fixed = apply(text, edits);
        if fixed == text {
            return fix;
        }
        if let Err(reason) = self.check_fixed(
            &section.path,
            &fixed,
            execution,
            schema_before,
            report,
            history,
        ) {
            for rewrite in rewrites {
                fix.left_alone.push(LeftAlone {
                    rule: rewrite.rule,
                    line: rewrite.line,
                    reason: reason.clone(),
                });
            }
            fix.section_change = None;
            fix.warnings.clear();
            return fix;
        }
        fix.rewrites = rewrites;
        fix.fixed = Some(fixed);
        fix
    }

    /// Lints the fixed text where the original stood; an error or a new finding at high risk or
    /// above (one more of a rule than before) rejects it.
    fn check_fixed(
        &self,
        path: &Path,
        fixed: &str,
        execution: Execution,
        schema_before: &Schema,
        report: &FileReport,
        history: &HistoryFacts,
    ) -> Result<(), String> {
        let file = LooseFile::from_bytes(path, fixed.as_bytes())
            .map_err(|error| format!("the rewritten file would not read: {}", error.message))?;
        let after = self.lint_section(
            &file.up,
            execution,
            &mut schema_before.clone(),
            true,
            history,
            None,
        );
        if let Some(error) = after.errors().next() {
            return Err(format!(
                "the rewritten file would have an error on line {}: {}",
                error.line, error.message
            ));
        }
        let serious = |report: &FileReport, rule: RuleId| {
            report
                .active_findings()
                .filter(|f| f.risk >= Risk::High && f.rule == rule)
                .count()
        };
        let mut introduced: Vec<String> = Vec::new();
        for finding in after.active_findings().filter(|f| f.risk >= Risk::High) {
            if serious(&after, finding.rule) > serious(report, finding.rule)
                && !introduced
                    .iter()
                    .any(|known| known.starts_with(finding.rule.as_str()))
            {
                introduced.push(format!("{} (line {})", finding.rule, finding.line));
            }
        }
        if introduced.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the rewritten file would bring new high-risk findings: {}",
                introduced.join(", ")
            ))
        }
    }
}

/// The findings of the rules `--fix` knows a safe form for.
fn fixable(report: &FileReport) -> impl Iterator<Item = &Finding> {
    report
        .findings
        .iter()
        .filter(|f| FIXABLE_RULES.contains(&f.rule))
}

/// Rules whose whole fix is running the section without a transaction.
fn only_needs_no_transaction(rule: RuleId) -> bool {
    matches!(
        rule,
        RuleId::ConcurrentlyInTransaction | RuleId::ValidateInSameTransaction
    )
}

/// A replacement of a byte range of the file text.
#[derive(Debug, Clone)]
struct Edit {
    range: Range<usize>,
    text: String,
}

/// The text with the edits made; edits do not overlap (statements, the marker line and the
/// points before statements are disjoint).
fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| (edit.range.start, edit.range.end));
    let mut result = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for edit in edits {
        result.push_str(&text[at..edit.range.start]);
        result.push_str(&edit.text);
        at = edit.range.end;
    }
    result.push_str(&text[at..]);
    result
}

/// The whitespace between the start of the line and `offset`, when only whitespace is there.
fn indent_before(text: &str, offset: usize) -> Option<&str> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    before
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(before)
}

/// The edit that makes the up section run without a transaction, and its description: the
/// marker line gets `transaction:false` (replacing `transaction:true`), or, in a file whose
/// marker is optional (`.up.sql`, a file with a rollback/ file), a marker line is added on top.
fn transaction_off_edit(section: &Section) -> (Edit, String) {
    let source = section.file_text();
    let line = section
        .marker_line
        .and_then(|marker| source.lines().find(|(number, _)| *number == marker));
    match line {
        Some((number, range)) => {
            let text = &source.as_str()[range.clone()];
            let edited = match text.find("transaction:true") {
                Some(at) => format!(
                    "{}transaction:false{}",
                    &text[..at],
                    &text[at + "transaction:true".len()..]
                ),
                None => format!("{} transaction:false", text.trim_end()),
            };
            (
                Edit {
                    range,
                    text: edited,
                },
                format!("set `transaction:false` on the `-- migrate:up` line (line {number})"),
            )
        }
        None => (
            Edit {
                range: 0..0,
                text: "-- migrate:up transaction:false\n".to_owned(),
            },
            "added a first line `-- migrate:up transaction:false` (the marker carries the file's options)".to_owned(),
        ),
    }
}

/// The bytes to write for `fixed`, spelled like `original` was: the same byte-order mark and
/// line endings (`\r\n` when the original used them throughout). A file that mixes line endings
/// is refused, since its original endings cannot be told apart after normalisation.
pub fn encode_like(original: &[u8], fixed: &str) -> Result<Vec<u8>, String> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let (bom, body) = match original.strip_prefix(BOM) {
        Some(body) => (BOM, body),
        None => (&[][..], original),
    };
    let carriage_returns = body.iter().filter(|&&b| b == b'\r').count();
    let newlines = body.iter().filter(|&&b| b == b'\n').count();
    let crlf = body.windows(2).filter(|pair| pair == b"\r\n").count();
    let text = if carriage_returns == 0 {
        fixed.to_owned()
    } else if crlf == carriage_returns && crlf == newlines {
        fixed.replace('\n', "\r\n")
    } else {
        return Err(
            "the file mixes \\r\\n and \\n line endings; give it one kind, then run --fix again"
                .into(),
        );
    };
    let mut bytes = bom.to_vec();
    bytes.extend_from_slice(text.as_bytes());
    Ok(bytes)
}
