//! Helpers for the rules' own tests.

use crate::finding::Finding;
use crate::linter::Linter;
use crate::metadata::ExampleMode;
use crate::options::{LintOptions, PgVersion};

/// The findings of rule `id` when `sql` runs as a migration after `setup` was applied.
pub fn findings(id: &str, setup: &str, sql: &str) -> Vec<Finding> {
    findings_with(id, setup, sql, ExampleMode::Migration, PgVersion::DEFAULT)
}

/// Like [`findings`], with the execution mode and PostgreSQL version given.
pub fn findings_with(
    id: &str,
    setup: &str,
    sql: &str,
    mode: ExampleMode,
    pg_version: PgVersion,
) -> Vec<Finding> {
    let linter = Linter::new(LintOptions {
        pg_version,
        ..LintOptions::default()
    })
    .expect("default options are valid");
    let report = linter.lint_example(setup, sql, mode);
    assert!(
        report.errors().next().is_none(),
        "the test SQL does not lint cleanly: {:?}",
        report.diagnostics
    );
    report
        .findings
        .into_iter()
        .filter(|f| f.rule == id)
        .collect()
}

/// Asserts that rule `id` finds exactly one thing in `sql` after `setup`, and returns it.
pub fn one(id: &str, setup: &str, sql: &str) -> Finding {
    let mut found = findings(id, setup, sql);
    assert_eq!(
        found.len(),
        1,
        "expected one `{id}` finding for {sql:?}, got {found:#?}"
    );
    found.remove(0)
}

/// Asserts that rule `id` finds nothing in `sql` after `setup`.
pub fn none(id: &str, setup: &str, sql: &str) {
    let found = findings(id, setup, sql);
    assert!(
        found.is_empty(),
        "expected no `{id}` finding for {sql:?}, got {found:#?}"
    );
}
