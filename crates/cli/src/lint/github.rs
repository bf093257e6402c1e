//! `--format github`: workflow commands that GitHub Actions turns into annotations on the pull
//! request's diff (`::error file=…,line=…::message`).

use std::fmt::Write;

use safeshift_lint::{LintReport, Risk, Severity};

/// Escapes the message part of a workflow command.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(report: &LintReport) -> String {
    let mut text = String::new();
    for file in &report.files {
        let path = escape_property(&super::display_path(file));
        for finding in file.active_findings() {
            let command = match finding.risk {
                Risk::High => "error",
                Risk::Medium => "warning",
                Risk::Low => "notice",
            };
            let (end_line, _) =
                super::end_position(file, &finding.span).unwrap_or((finding.line, finding.column));
            let mut message = format!("{}\nhelp: {}", finding.message, finding.help);
            if let Some(alternative) = &finding.safe_alternative {
                message.push_str(&format!("\nsafe alternative:\n{alternative}"));
            }
            let title = escape_property(&format!(
                "safeshift {} ({} risk)",
                finding.rule, finding.risk
            ));
            let _ = writeln!(
                text,
                "::{command} file={path},line={},endLine={end_line},col={},title={title}::{}",
                finding.line,
                finding.column,
                escape_data(&message)
            );
        }
        for diagnostic in &file.diagnostics {
            let command = if diagnostic.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            let _ = writeln!(
                text,
                "::{command} file={path},line={},col={},title=safeshift::{}",
                diagnostic.line,
                diagnostic.column,
                escape_data(&diagnostic.message)
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_workflow_command_syntax() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
