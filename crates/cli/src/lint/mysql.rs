//! The human view of a MySQL lint report: each finding with its statement, the algorithm the
//! server uses, the metadata lock it takes, and the safe form.

use safeshift_lint::mysql::{MysqlFileReport, MysqlLintReport};

/// The report as text.
pub fn human(report: &MysqlLintReport) -> String {
    let mut text = String::new();
    let mut counts = [0usize; 3];
    let mut acknowledged = 0;
    for file in &report.files {
        for finding in &file.findings {
            if finding.suppressed.is_some() {
                acknowledged += 1;
                continue;
            }
            counts[finding.risk as usize] += 1;
            text.push_str(&format!(
                "{}[{}]: {}\n  --> {}:{}:{}\n",
                finding.risk,
                finding.rule,
                finding.message,
                file.path.display(),
                finding.line,
                finding.column
            ));
            for line in snippet(file, &finding.span) {
                text.push_str(&format!("  | {line}\n"));
            }
            if let Some(algorithm) = finding.algorithm {
                text.push_str(&format!(
                    "   = algorithm: {}; writes {}\n",
                    algorithm.describe(),
                    if finding.blocks_writes {
                        "wait"
                    } else {
                        "go on"
                    }
                ));
                text.push_str(&format!("   = metadata lock: {}\n", finding.metadata_lock));
            }
            text.push_str(&format!("   = help: {}\n", finding.help));
            if let Some(safe) = &finding.safe_alternative {
                text.push_str("   = safe alternative:\n");
                for line in safe.lines() {
                    text.push_str(&format!("         {line}\n"));
                }
            }
            text.push('\n');
        }
        for diagnostic in &file.diagnostics {
            text.push_str(&format!(
                "{}: {}\n  --> {}:{}:{}\n",
                match diagnostic.severity {
                    safeshift_lint::Severity::Error => "error",
                    safeshift_lint::Severity::Warning => "warning",
                },
                diagnostic.message,
                file.path.display(),
                diagnostic.line,
                diagnostic.column
            ));
            if let Some(help) = &diagnostic.help {
                text.push_str(&format!("   = help: {help}\n"));
            }
            text.push('\n');
        }
    }
    for file in &report.files {
        text.push_str(&format!(
            "{}{}: risk {}\n",
            file.path.display(),
            file.version
                .as_ref()
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default(),
            file.risk().map_or("none", |r| r.as_str())
        ));
    }
    let statements: usize = report.files.iter().map(|f| f.statements).sum();
    text.push_str(&format!(
        "Linted {} file(s), {statements} statement(s) for {}: {} high, {} medium, {} low, {acknowledged} acknowledged.\n",
        report.files.len(),
        report.server,
        counts[2],
        counts[1],
        counts[0]
    ));
    text
}

/// The statement's lines, as in the file.
fn snippet<'a>(file: &'a MysqlFileReport, span: &std::ops::Range<usize>) -> Vec<&'a str> {
    file.source
        .as_ref()
        .and_then(|source| source.as_str().get(span.clone()))
        .map(|text| text.lines().collect())
        .unwrap_or_default()
}
