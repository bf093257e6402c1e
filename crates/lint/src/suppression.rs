//! `-- safeshift:allow <rule-id> <reason>` comments: on a statement (the comment above it, inside
//! it, or at the end of its last line) or, as `-- safeshift:allow-file <rule-id> <reason>`, for
//! the whole file. An unknown rule id or a missing reason is an error; a suppression that
//! acknowledges nothing is a warning.

use std::ops::Range;

use pg_query::protobuf::Token;
use safeshift_source::{SourceText, Statement};

use crate::finding::{Diagnostic, DiagnosticKind, Severity};

const STATEMENT_MARKER: &str = "safeshift:allow";
const FILE_MARKER: &str = "safeshift:allow-file";

/// A parsed suppression comment.
#[derive(Debug, Clone)]
pub struct Suppression {
    pub rule: String,
    pub reason: String,
    /// The statement it applies to; `None` for the whole file.
    pub statement: Option<usize>,
    pub span: Range<usize>,
    pub used: bool,
}

/// Finds the suppressions in `body` of the file and the diagnostics for the malformed ones.
pub fn find(
    source: &SourceText,
    body: Range<usize>,
    statements: &[Statement],
    is_rule: impl Fn(&str) -> bool,
) -> (Vec<Suppression>, Vec<Diagnostic>) {
    let mut suppressions = Vec::new();
    let mut diagnostics = Vec::new();
    let text = &source.as_str()[body.clone()];
    if !text.contains(STATEMENT_MARKER) {
        return (suppressions, diagnostics);
    }
    let Ok(tokens) = safeshift_source::scan_tokens(text) else {
        return (suppressions, diagnostics);
    };
    for token in tokens
        .iter()
        .filter(|t| matches!(t.token(), Token::SqlComment | Token::CComment))
    {
        let span = body.start + token.start as usize..body.start + token.end as usize;
        let comment = comment_body(&source.as_str()[span.clone()]);
        let (file_wide, rest) = if let Some(rest) = comment.strip_prefix(FILE_MARKER) {
            (true, rest)
        } else if let Some(rest) = comment.strip_prefix(STATEMENT_MARKER) {
            (false, rest)
        } else {
            continue;
        };
        let (line, column) = source.line_col(span.start);
        let diagnostic = |kind, message: String, help: &str| Diagnostic {
            severity: Severity::Error,
            kind,
            message,
            help: Some(help.to_owned()),
            line,
            column,
            span: Some(span.clone()),
        };
        let mut words = rest.trim().splitn(2, char::is_whitespace);
        let rule = words.next().unwrap_or("").to_owned();
        let reason = words.next().unwrap_or("").trim().to_owned();
        if rule.is_empty() || !is_rule(&rule) {
            let message = if rule.is_empty() {
                "the suppression names no rule".to_owned()
            } else {
                format!("`{rule}` is not a safeshift rule")
            };
            diagnostics.push(diagnostic(
                DiagnosticKind::UnknownRule,
                message,
                "write `-- safeshift:allow <rule-id> <reason>`; `safeshift explain` lists the rule ids",
            ));
            continue;
        }
        if reason.is_empty() {
            diagnostics.push(diagnostic(
                DiagnosticKind::MissingReason,
                format!("the suppression of `{rule}` gives no reason"),
                "say why the finding is acceptable after the rule id, so reviewers can judge it",
            ));
            continue;
        }
        let statement = if file_wide {
            None
        } else {
            target_statement(source, statements, &span)
        };
        if !file_wide && statement.is_none() {
            diagnostics.push(Diagnostic {
                severity: Severity::Warning,
                kind: DiagnosticKind::UnusedSuppression,
                message: format!("the suppression of `{rule}` is not next to any statement"),
                help: Some(
                    "put it on the line above the statement, or use `safeshift:allow-file`"
                        .to_owned(),
                ),
                line,
                column,
                span: Some(span.clone()),
            });
            continue;
        }
        suppressions.push(Suppression {
            rule,
            reason,
            statement,
            span,
            used: false,
        });
    }
    (suppressions, diagnostics)
}

/// `-- text` or `/* text */` → `text`.
fn comment_body(comment: &str) -> &str {
    let trimmed = comment.trim();
    let inner = if let Some(rest) = trimmed.strip_prefix("--") {
        rest
    } else {
        trimmed
            .strip_prefix("/*")
            .and_then(|rest| rest.strip_suffix("*/"))
            .unwrap_or(trimmed)
    };
    inner.trim()
}

/// The statement a comment belongs to: the one containing it, the one ending on its line before
/// it, or else the next one.
fn target_statement(
    source: &SourceText,
    statements: &[Statement],
    span: &Range<usize>,
) -> Option<usize> {
    if let Some(containing) = statements
        .iter()
        .find(|s| s.span.start <= span.start && span.start < s.span.end)
    {
        return Some(containing.index);
    }
    let comment_line = source.line_col(span.start).0;
    if let Some(before) = statements.iter().rev().find(|s| {
        s.span.end <= span.start && source.line_col(s.span.end.saturating_sub(1)).0 == comment_line
    }) {
        return Some(before.index);
    }
    statements
        .iter()
        .find(|s| s.span.start >= span.end)
        .map(|s| s.index)
}
