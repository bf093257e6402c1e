//! The human view, modelled on rustc: the rule and message, the location, the statement with its
//! text underlined, then lock, estimate, help and the safe alternative.

use std::fmt::Write;

use anstyle::{AnsiColor, Color, Style};
use safeshift_lint::{Diagnostic, FileReport, Finding, LintReport, Risk, Severity};

/// Lines of a statement shown before the snippet is cut.
const MAX_SNIPPET_LINES: usize = 6;

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }

    fn risk(&self, risk: Risk) -> String {
        let color = match risk {
            Risk::High => AnsiColor::Red,
            Risk::Medium => AnsiColor::Yellow,
            Risk::Low => AnsiColor::Cyan,
        };
        self.paint(
            Style::new().bold().fg_color(Some(Color::Ansi(color))),
            risk.as_str(),
        )
    }

    fn accent(&self, text: &str) -> String {
        self.paint(
            Style::new()
                .bold()
                .fg_color(Some(Color::Ansi(AnsiColor::Blue))),
            text,
        )
    }

    fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }
}

pub fn render(report: &LintReport, color: bool) -> String {
    let painter = Painter { color };
    let mut text = String::new();
    for file in &report.files {
        let mut entries: Vec<(u32, String)> = Vec::new();
        for diagnostic in &file.diagnostics {
            entries.push((
                diagnostic.line,
                render_diagnostic(&painter, file, diagnostic),
            ));
        }
        for finding in &file.findings {
            entries.push((finding.line, render_finding(&painter, file, finding)));
        }
        entries.sort_by_key(|(line, _)| *line);
        for (_, entry) in entries {
            text.push_str(&entry);
            text.push('\n');
        }
    }
    for file in &report.files {
        let counts = counts(
            file.findings
                .iter()
                .filter(|f| !f.is_suppressed())
                .map(|f| f.risk),
        );
        let risk = file
            .risk()
            .map_or_else(|| "none".to_owned(), |r| painter.risk(r));
        let version = file
            .version
            .as_deref()
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "{}{version}: risk {risk}{counts}",
            super::display_path(file)
        );
    }
    let summary = report.summary();
    let overall = summary
        .risk
        .map_or_else(|| "none".to_owned(), |r| painter.risk(r));
    let _ = writeln!(
        text,
        "{} {} file{}, {} statement{}: {} high, {} medium, {} low, {} acknowledged; {} error{}, {} warning{}. Highest risk: {overall}",
        painter.bold("Linted"),
        summary.files,
        plural(summary.files),
        summary.statements,
        plural(summary.statements),
        summary.high,
        summary.medium,
        summary.low,
        summary.suppressed,
        summary.errors,
        plural(summary.errors),
        summary.warnings,
        plural(summary.warnings),
    );
    text
}

/// The lint check of `up` refusing: the findings that block, in full, then one line about the
/// whole evaluation (every migration `up` would apply, not only those shown).
pub fn render_gate(blocked: &safeshift_lint::BlockedUp, color: bool) -> String {
    let painter = Painter { color };
    let mut text = String::new();
    for file in &blocked.report.files {
        for finding in &file.findings {
            text.push_str(&render_finding(&painter, file, finding));
            text.push('\n');
        }
    }
    let summary = &blocked.evaluated;
    let graded = match &blocked.grading {
        safeshift_lint::Grading::TableSizes => "graded with the table sizes",
        _ => "graded without table sizes",
    };
    let files = blocked.report.files.len();
    let _ = writeln!(
        text,
        "{} {} pending migration{}, {} statement{} ({graded}): {} high, {} medium, {} low, {} acknowledged. \
         {} finding{} above {} risk in {} migration{} stop `up`.",
        painter.bold("Linted"),
        summary.files,
        plural(summary.files),
        summary.statements,
        plural(summary.statements),
        summary.high,
        summary.medium,
        summary.low,
        summary.suppressed,
        blocked.count,
        plural(blocked.count),
        blocked.accepted,
        files,
        plural(files),
    );
    text
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn counts(risks: impl Iterator<Item = Risk>) -> String {
    let risks: Vec<Risk> = risks.collect();
    if risks.is_empty() {
        return String::new();
    }
    let count = |risk| risks.iter().filter(|r| **r == risk).count();
    format!(
        " ({} high, {} medium, {} low)",
        count(Risk::High),
        count(Risk::Medium),
        count(Risk::Low)
    )
}

fn render_finding(painter: &Painter, file: &FileReport, finding: &Finding) -> String {
    let mut text = String::new();
    let heading = if finding.is_suppressed() {
        "acknowledged".to_owned()
    } else {
        painter.risk(finding.risk)
    };
    let _ = writeln!(
        text,
        "{heading}[{}]: {}",
        finding.rule,
        painter.bold(&finding.message)
    );
    let gutter = finding_gutter(file, finding);
    let pad = " ".repeat(gutter);
    let _ = writeln!(
        text,
        "{pad}{} {}:{}:{}",
        painter.accent("-->"),
        super::display_path(file),
        finding.line,
        finding.column
    );
    snippet(painter, &mut text, file, finding.span.clone(), gutter);
    let note = |text: &mut String, label: &str, body: &str| {
        let _ = writeln!(text, "{pad} {} {label}: {body}", painter.accent("="));
    };
    if let Some(lock) = finding.lock {
        let tables = finding.tables.join(", ");
        let blocks = finding.blocks.map(|b| b.describe()).unwrap_or_default();
        let rewrite = if finding.rewrite {
            "; rewrites the table"
        } else {
            ""
        };
        note(
            &mut text,
            "lock",
            &format!("{lock} on {tables}, blocks {blocks}{rewrite}"),
        );
    }
    if let Some(estimate) = &finding.estimate {
        let rows = estimate
            .rows
            .map_or_else(|| "rows unknown".to_owned(), |rows| format!("{rows} rows"));
        let basis = if estimate.basis.is_empty() {
            String::new()
        } else {
            format!("; {}", estimate.basis)
        };
        note(
            &mut text,
            "size",
            &format!(
                "{rows}, {}{basis} (risk {} before sizes were known)",
                human_bytes(estimate.bytes),
                estimate.static_risk
            ),
        );
    }
    if let Some(reason) = &finding.suppressed {
        note(&mut text, "acknowledged", reason);
    }
    note(&mut text, "help", finding.help);
    if let Some(alternative) = &finding.safe_alternative {
        let _ = writeln!(text, "{pad} {} safe alternative:", painter.accent("="));
        for line in alternative.lines() {
            let _ = writeln!(text, "{pad}       {line}");
        }
    }
    let _ = writeln!(
        text,
        "{pad} {} safeshift explain {}",
        painter.accent("="),
        finding.rule
    );
    text
}

fn render_diagnostic(painter: &Painter, file: &FileReport, diagnostic: &Diagnostic) -> String {
    let mut text = String::new();
    let (label, style) = match diagnostic.severity {
        Severity::Error => ("error", AnsiColor::Red),
        Severity::Warning => ("warning", AnsiColor::Yellow),
    };
    let kind = serde_json::to_value(diagnostic.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let label = painter.paint(
        Style::new().bold().fg_color(Some(Color::Ansi(style))),
        label,
    );
    let _ = writeln!(
        text,
        "{label}[{kind}]: {}",
        painter.bold(&diagnostic.message)
    );
    let gutter = diagnostic.line.to_string().len() + 1;
    let pad = " ".repeat(gutter);
    let _ = writeln!(
        text,
        "{pad}{} {}:{}:{}",
        painter.accent("-->"),
        super::display_path(file),
        diagnostic.line,
        diagnostic.column
    );
    if let Some(span) = &diagnostic.span {
        snippet(painter, &mut text, file, span.clone(), gutter);
    }
    if let Some(help) = &diagnostic.help {
        let _ = writeln!(text, "{pad} {} help: {help}", painter.accent("="));
    }
    text
}

fn finding_gutter(file: &FileReport, finding: &Finding) -> usize {
    let last = super::end_position(file, &finding.span).map_or(finding.line, |(line, _)| line);
    let shown_last = last.min(finding.line + MAX_SNIPPET_LINES as u32 - 1);
    shown_last.to_string().len() + 1
}

/// The lines of `span` with the span's text underlined.
fn snippet(
    painter: &Painter,
    text: &mut String,
    file: &FileReport,
    span: std::ops::Range<usize>,
    gutter: usize,
) {
    let Some(source) = &file.source else { return };
    let full = source.as_str();
    let (first_line, _) = source.line_col(span.start);
    let (last_line, _) = source.line_col(span.end.saturating_sub(1).max(span.start));
    let pad = " ".repeat(gutter);
    let bar = painter.accent("|");
    let _ = writeln!(text, "{pad}{bar}");
    let shown_last = last_line.min(first_line + MAX_SNIPPET_LINES as u32 - 1);
    for line in first_line..=shown_last {
        let start = source.line_start(line);
        let end = full[start..].find('\n').map_or(full.len(), |i| start + i);
        let content = &full[start..end];
        let number = painter.accent(&format!("{line:>width$}", width = gutter - 1));
        let _ = writeln!(text, "{number} {bar} {content}");
        // A statement over several lines is marked on its first line only, as rustc does.
        let underline_start = span.start.max(start);
        let underline_end = span.end.min(end);
        if line == first_line && underline_end > underline_start {
            let before = full[start..underline_start].chars().count();
            let width = full[underline_start..underline_end].chars().count().max(1);
            let marks = painter.paint(
                Style::new()
                    .bold()
                    .fg_color(Some(Color::Ansi(AnsiColor::Red))),
                &"^".repeat(width),
            );
            let _ = writeln!(text, "{pad}{bar} {}{marks}", " ".repeat(before));
        } else if span.is_empty() && line == first_line {
            let before = full[start..span.start.min(end)].chars().count();
            let _ = writeln!(text, "{pad}{bar} {}^", " ".repeat(before));
        }
    }
    if shown_last < last_line {
        let _ = writeln!(
            text,
            "{pad}{bar} … {} more line{}",
            last_line - shown_last,
            plural((last_line - shown_last) as usize)
        );
    }
    let _ = writeln!(text, "{pad}{bar}");
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
