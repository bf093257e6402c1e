//! Rendering lint reports: a rustc-like human view, JSON, SARIF 2.1.0, GitHub workflow
//! annotations and a Markdown pull-request comment. Each renderer turns a report into text and
//! prints nothing itself.

mod fixes;
mod github;
mod human;
pub mod json;
mod markdown;
pub mod mysql;
mod sarif;
#[cfg(test)]
mod snapshot_tests;

use std::ops::Range;

use clap::ValueEnum;
use safeshift_lint::{FileReport, LintReport};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Source snippets with the statement underlined, risk, lock and help.
    Human,
    /// A JSON list of findings, each with its file's overall risk.
    Json,
    /// The whole report as a JSON object: findings, files, diagnostics, summary (and `--fix`'s
    /// rewrites).
    JsonReport,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
    /// GitHub Actions workflow annotations.
    Github,
    /// A Markdown report for a pull-request comment.
    Markdown,
}

pub use fixes::render as render_fixes;

/// The report in `format`; `color` adds terminal styles to the human view.
pub fn render(report: &LintReport, format: Format, color: bool) -> String {
    match format {
        Format::Human => human::render(report, color),
        Format::Json => json::render(report),
        Format::JsonReport => json::render_report(report),
        Format::Sarif => sarif::render(report),
        Format::Github => github::render(report),
        Format::Markdown => markdown::render(report),
    }
}

/// What `up` prints when its lint check refuses: the blocking findings in full, then one line
/// about the whole evaluation.
pub fn render_gate(blocked: &safeshift_lint::BlockedUp) -> String {
    human::render_gate(blocked, false)
}

/// The file's path as the user gave or sees it, with `/` separators.
fn display_path(file: &FileReport) -> String {
    file.path.display().to_string().replace('\\', "/")
}

/// 1-based line and column where a byte range of the file ends (its last character).
fn end_position(file: &FileReport, span: &Range<usize>) -> Option<(u32, u32)> {
    let source = file.source.as_ref()?;
    let (line, column) = source.line_col(span.end.saturating_sub(1).max(span.start));
    Some((line, column + 1))
}
