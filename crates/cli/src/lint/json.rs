//! `--format json`: every finding with its file, position, rule, risk, lock and help; every file
//! with its overall risk; diagnostics; and the summary.

use serde_json::{Value, json};

use safeshift_lint::{FileReport, Finding, LintReport};

pub fn render(report: &LintReport) -> String {
    let findings: Vec<Value> = report
        .files
        .iter()
        .flat_map(|file| {
            file.findings
                .iter()
                .map(move |finding| finding_json(file, finding))
        })
        .collect();
    let files: Vec<Value> = report
        .files
        .iter()
        .map(|file| {
            json!({
                "file": super::display_path(file),
                "version": file.version,
                "risk": file.risk(),
                "statements": file.statements,
                "execution": file.execution,
                "findings": file.active_findings().count(),
            })
        })
        .collect();
    let diagnostics: Vec<Value> = report
        .files
        .iter()
        .flat_map(|file| {
            file.diagnostics.iter().map(move |d| {
                json!({
                    "file": super::display_path(file),
                    "line": d.line,
                    "column": d.column,
                    "severity": d.severity,
                    "kind": d.kind,
                    "message": d.message,
                    "help": d.help,
                })
            })
        })
        .collect();
    let value = json!({
        "findings": findings,
        "files": files,
        "diagnostics": diagnostics,
        "summary": report.summary(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn finding_json(file: &FileReport, finding: &Finding) -> Value {
    let (end_line, end_column) =
        super::end_position(file, &finding.span).unwrap_or((finding.line, finding.column));
    json!({
        "file": super::display_path(file),
        "line": finding.line,
        "column": finding.column,
        "end_line": end_line,
        "end_column": end_column,
        "rule": finding.rule,
        "risk": finding.risk,
        "message": finding.message,
        "lock": finding.lock,
        "blocks": finding.blocks,
        "tables": finding.tables,
        "rewrite": finding.rewrite,
        "help": finding.help,
        "safe_alternative": finding.safe_alternative,
        "estimate": finding.estimate,
        "suppressed": finding.suppressed,
        "file_risk": file.risk(),
    })
}
