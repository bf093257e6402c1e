//! `--format markdown`: a report to post as a pull-request comment: a summary line, a table of
//! findings, and the safe alternatives folded away.

use std::fmt::Write;

use safeshift_lint::{LintReport, Risk};

fn badge(risk: Risk) -> &'static str {
    match risk {
        Risk::High => "🔴 high",
        Risk::Medium => "🟠 medium",
        Risk::Low => "🔵 low",
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &LintReport) -> String {
    let summary = report.summary();
    let mut text = String::new();
    let headline = match summary.risk {
        Some(risk) => format!("highest risk **{}**", risk.as_str().to_uppercase()),
        None => "no findings".to_owned(),
    };
    let _ = writeln!(text, "## safeshift lint: {headline}\n");
    let _ = writeln!(
        text,
        "{} file(s), {} statement(s): **{}** high, **{}** medium, **{}** low, {} acknowledged, {} error(s).\n",
        summary.files,
        summary.statements,
        summary.high,
        summary.medium,
        summary.low,
        summary.suppressed,
        summary.errors
    );
    let findings: Vec<_> = report.active_findings().collect();
    if !findings.is_empty() {
        let _ = writeln!(text, "| Risk | Location | Rule | Lock | Finding |");
        let _ = writeln!(text, "|---|---|---|---|---|");
        for (file, finding) in &findings {
            let lock = finding.lock.map_or_else(
                || "—".to_owned(),
                |lock| format!("{lock} on {}", finding.tables.join(", ")),
            );
            let _ = writeln!(
                text,
                "| {} | `{}:{}` | `{}` | {} | {} |",
                badge(finding.risk),
                super::display_path(file),
                finding.line,
                finding.rule,
                cell(&lock),
                cell(&finding.message)
            );
        }
        let _ = writeln!(text, "\n<details><summary>Safe alternatives</summary>\n");
        for (file, finding) in &findings {
            let _ = writeln!(
                text,
                "**`{}:{}` — `{}`**: {}\n",
                super::display_path(file),
                finding.line,
                finding.rule,
                finding.help
            );
            if let Some(alternative) = &finding.safe_alternative {
                let _ = writeln!(text, "```sql\n{alternative}\n```\n");
            }
        }
        let _ = writeln!(text, "</details>");
    }
    let diagnostics: Vec<_> = report
        .files
        .iter()
        .flat_map(|f| f.diagnostics.iter().map(move |d| (f, d)))
        .collect();
    if !diagnostics.is_empty() {
        let _ = writeln!(text, "\n### Problems in the files\n");
        for (file, diagnostic) in diagnostics {
            let _ = writeln!(
                text,
                "- `{}:{}:{}`: {}",
                super::display_path(file),
                diagnostic.line,
                diagnostic.column,
                cell(&diagnostic.message)
            );
        }
    }
    let acknowledged: Vec<_> = report
        .files
        .iter()
        .flat_map(|f| {
            f.findings
                .iter()
                .filter(|x| x.is_suppressed())
                .map(move |x| (f, x))
        })
        .collect();
    if !acknowledged.is_empty() {
        let _ = writeln!(text, "\n### Acknowledged\n");
        for (file, finding) in acknowledged {
            let _ = writeln!(
                text,
                "- `{}:{}` `{}`: {}",
                super::display_path(file),
                finding.line,
                finding.rule,
                cell(finding.suppressed.as_deref().unwrap_or_default())
            );
        }
    }
    text
}
