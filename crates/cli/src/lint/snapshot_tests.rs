//! Snapshots of every output format for one report, so reviewers see what users see.

use std::path::Path;

use safeshift_lint::{LintOptions, LintReport, Linter};
use safeshift_source::LooseFile;

use super::{Format, render};

const MIGRATION: &str = "-- migrate:up
CREATE INDEX orders_status_idx ON orders (status);
ALTER TABLE orders
    ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
-- safeshift:allow renaming-column the only reader is the reporting job, deployed first
ALTER TABLE users RENAME COLUMN email TO email_address;
-- safeshift:allow no-such-rule typo
ALTER TABLE users ADD COLUMN nickname text NOT NUL;
";

const SCRIPT: &str = "CREATE TABLE audit (id integer PRIMARY KEY, payload json);
UPDATE orders SET status = 'new';
";

fn report() -> LintReport {
    let linter = Linter::new(LintOptions::default()).unwrap();
    let files = [
        LooseFile::from_bytes(Path::new("migrations/0003_risky.sql"), MIGRATION.as_bytes())
            .unwrap(),
        LooseFile::from_bytes(Path::new("scripts/cleanup.sql"), SCRIPT.as_bytes()).unwrap(),
    ];
    LintReport {
        files: files.iter().map(|file| linter.lint_file(file)).collect(),
    }
}

#[test]
fn human() {
    insta::assert_snapshot!(render(&report(), Format::Human, false));
}

#[test]
fn json() {
    insta::assert_snapshot!(render(&report(), Format::Json, false));
}

#[test]
fn json_report() {
    insta::assert_snapshot!(render(&report(), Format::JsonReport, false));
}

#[test]
fn github() {
    insta::assert_snapshot!(render(&report(), Format::Github, false));
}

#[test]
fn markdown() {
    insta::assert_snapshot!(render(&report(), Format::Markdown, false));
}

#[test]
fn sarif_is_2_1_0_with_every_rule_and_result() {
    let sarif: serde_json::Value =
        serde_json::from_str(&render(&report(), Format::Sarif, false)).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        safeshift_lint::rules().len()
    );
    let results = run["results"].as_array().unwrap();
    let index = results
        .iter()
        .find(|r| r["ruleId"] == "require-concurrent-index-creation")
        .unwrap();
    assert_eq!(index["level"], "error");
    assert_eq!(
        index["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    assert_eq!(
        index["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "migrations/0003_risky.sql"
    );
    let acknowledged = results
        .iter()
        .find(|r| r["ruleId"] == "renaming-column")
        .unwrap();
    assert_eq!(
        acknowledged["suppressions"][0]["justification"],
        "the only reader is the reporting job, deployed first"
    );
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "safeshift-diagnostic" && r["level"] == "error")
    );
}

/// `--format json` on one line (written a file at a time as files are linted) holds the same
/// list, in the same order, as the indented rendering of the whole report above.
#[test]
fn json_on_one_line_is_the_indented_list() {
    let report = report();
    let mut streamed = Vec::new();
    let mut list = super::json::ListWriter::new(&mut streamed).unwrap();
    for file in &report.files {
        list.file(file).unwrap();
    }
    list.finish().unwrap();
    let streamed = String::from_utf8(streamed).unwrap();
    assert_eq!(streamed.lines().count(), 1, "{streamed}");
    let one_line: serde_json::Value = serde_json::from_str(&streamed).unwrap();
    let indented: serde_json::Value =
        serde_json::from_str(&render(&report, Format::Json, false)).unwrap();
    assert_eq!(one_line, indented);
    // Both files, a parse error and the findings are in it.
    let entries = one_line.as_array().unwrap();
    assert!(entries.iter().any(|e| e["kind"] == "error"), "{streamed}");
    assert!(
        entries.iter().any(|e| e["file"] == "scripts/cleanup.sql"),
        "{streamed}"
    );
    assert!(entries.len() > 4, "{streamed}");
}
