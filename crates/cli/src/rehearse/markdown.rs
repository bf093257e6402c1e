//! The rehearsal as a Markdown pull-request comment: the summary first (one row per
//! migration), then the details of the migrations that did not pass, as many as fit in a
//! comment (GitHub takes 65,536 characters), and a pointer to the full report for the rest.

use safeshift_rehearse::{
    MigrationReport, ReapplyCheck, RehearsalReport, RollbackCheck, StatementReport, Verdict,
};

use super::diff::difference_lines;
use super::human::{first_line, fold, milliseconds};

/// The most characters a GitHub pull-request comment takes.
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the closing lines that say what was left out.
const FOOTER_ROOM: usize = 1_000;

/// What goes into the Markdown.
pub struct MarkdownOptions<'a> {
    /// Keep the text within this many characters, leaving out details that do not fit
    /// (`None`: everything, for the full report).
    pub limit: Option<usize>,
    /// The details of passing migrations too.
    pub every_migration: bool,
    /// Where the full report was written, for the comment to point at.
    pub full_report: Option<&'a str>,
}

/// The report as Markdown (no terminal styles).
pub fn render(report: &RehearsalReport, options: &MarkdownOptions<'_>) -> String {
    let (passed, warned, failed) = report.counts();
    let mut head = vec![
        format!(
            "## safeshift rehearse: {} migration{}, {passed} passed, {warned} with warnings, {failed} failed",
            report.migrations.len(),
            if report.migrations.len() == 1 {
                ""
            } else {
                "s"
            }
        ),
        String::new(),
        format!(
            "PostgreSQL {} ({} server), {:.2} s in all.",
            report.server.version,
            report.server.kind,
            report.total_ms / 1000.0
        ),
        String::new(),
    ];
    if let Some(failure) = &report.starting_point.failure {
        head.push(format!(
            "**The starting point could not be built**: {failure}"
        ));
        head.push(String::new());
    }
    let limit = options.limit.unwrap_or(usize::MAX);
    let mut rows = summary_rows(report.migrations.iter());
    let mut summarised_passes = false;
    if length(&head) + length(&rows) > limit / 2 {
        // A history too long to list in a comment: the rows that matter, and a count.
        rows = summary_rows(
            report
                .migrations
                .iter()
                .filter(|m| m.verdict != Verdict::Pass),
        );
        summarised_passes = true;
    }
    head.extend(rows);
    if summarised_passes {
        head.push(String::new());
        head.push(format!(
            "The {passed} migrations that passed are listed in the full report."
        ));
    }
    head.push(String::new());

    let mut shown = head;
    let mut left_out = 0;
    let mut order: Vec<&MigrationReport> = report
        .migrations
        .iter()
        .filter(|m| options.every_migration || m.verdict != Verdict::Pass)
        .collect();
    // The failures first: a comment cut short keeps them.
    order.sort_by_key(|m| std::cmp::Reverse(m.verdict));
    let mut total = length(&shown);
    let mut sections = Vec::new();
    for migration in order {
        let section = details(migration);
        let size = length(&section);
        if total + size + FOOTER_ROOM > limit {
            left_out += 1;
            continue;
        }
        total += size;
        sections.push((migration.version.as_str(), section));
    }
    // Shown in version order again.
    sections.sort_by(|a, b| {
        let position = |version: &str| report.migrations.iter().position(|m| m.version == version);
        position(a.0).cmp(&position(b.0))
    });
    for (_, section) in sections {
        shown.extend(section);
    }
    if !report.not_rehearsed.is_empty() {
        shown.push(format!(
            "Not rehearsed after a failure: {}",
            report.not_rehearsed.join(", ")
        ));
        shown.push(String::new());
    }
    if left_out > 0 || summarised_passes {
        if left_out > 0 {
            shown.push(format!(
                "_The details of {left_out} more migration{} are left out, to fit a pull-request comment._",
                if left_out == 1 { "" } else { "s" }
            ));
        }
        shown.push(match options.full_report {
            Some(path) => format!("The full report: `{path}`."),
            None => "For the full report, run `safeshift rehearse --format markdown --full-report FILE` \
                     (or `--format json`)."
                .to_owned(),
        });
    } else if let Some(path) = options.full_report {
        shown.push(format!("The full report: `{path}`."));
    }
    shown.join("\n").trim_end().to_owned()
}

fn summary_rows<'a>(migrations: impl Iterator<Item = &'a MigrationReport>) -> Vec<String> {
    let mut rows = vec![
        "| version | migration | verdict | up | rollback | re-run |".to_owned(),
        "|---|---|---|---:|---|---|".to_owned(),
    ];
    for migration in migrations {
        rows.push(format!(
            "| `{}` | {} | {} | {} | {} | {} |",
            migration.version,
            migration.name.replace('|', "\\|"),
            verdict(migration.verdict),
            if migration.up_failure.is_some() {
                "**failed**".to_owned()
            } else {
                milliseconds(migration.up_ms)
            },
            rollback(&migration.rollback),
            reapply(&migration.reapply),
        ));
    }
    rows
}

/// One migration's statements, checks, reasons and schema differences.
fn details(migration: &MigrationReport) -> Vec<String> {
    let icon = match migration.verdict {
        Verdict::Pass => "✅",
        Verdict::Warn => "⚠️",
        Verdict::Fail => "❌",
    };
    let mut out = vec![
        format!("### {icon} `{}` {}", migration.version, migration.name),
        String::new(),
        "| line | statement | lock | blocks | rewrite | scan | time | held |".to_owned(),
        "|---:|---|---|---|---|---|---:|---:|".to_owned(),
    ];
    for statement in &migration.statements {
        out.push(statement_row(statement));
    }
    out.push(String::new());
    out.push(format!(
        "Rollback: {}. Re-run: {}.",
        rollback_detail(&migration.rollback),
        reapply_detail(&migration.reapply)
    ));
    for reason in &migration.reasons {
        out.push(format!("- {reason}"));
    }
    if let Some(continued) = &migration.continued {
        out.push(format!("- ↻ {continued}"));
    }
    if let Some(failure) = &migration.up_failure {
        out.push(format!(
            "- up failed at line {}: `{}`: {}",
            failure.line,
            fold(&failure.sql, 120).replace('`', "'"),
            failure.error
        ));
    }
    let diff = match &migration.rollback {
        RollbackCheck::Differs { diff, .. } | RollbackCheck::ColumnOrderOnly { diff, .. } => {
            Some((diff, "before up", "after down"))
        }
        _ => match &migration.reapply {
            ReapplyCheck::DifferentSchema { diff, .. } => {
                Some((diff, "after the first up", "after up again"))
            }
            _ => None,
        },
    };
    if let Some((diff, left, right)) = diff {
        out.push(String::new());
        out.push("```diff".to_owned());
        out.extend(difference_lines(diff, left, right));
        out.push("```".to_owned());
    }
    out.push(String::new());
    out
}

fn statement_row(statement: &StatementReport) -> String {
    let locks: Vec<String> = statement
        .locks
        .iter()
        .map(|l| format!("{} on `{}`", l.mode.sql_name(), l.relation))
        .collect();
    let blocks: Vec<&str> = statement
        .locks
        .iter()
        .map(|l| l.mode.blocks_summary())
        .collect();
    let held = statement
        .locks
        .iter()
        .map(|l| l.held_ms)
        .fold(0.0, f64::max);
    format!(
        "| {} | `{}` | {} | {} | {} | {} | {} | {} |",
        statement.line,
        first_line(&statement.sql).replace('|', "\\|"),
        if locks.is_empty() {
            "—".to_owned()
        } else {
            locks.join("<br>")
        },
        if blocks.is_empty() {
            "—".to_owned()
        } else {
            blocks.join("<br>")
        },
        names(statement.rewrites.iter().map(|r| r.relation.as_str())),
        names(statement.scans.iter().map(|s| s.relation.as_str())),
        milliseconds(statement.duration_ms),
        if statement.locks.is_empty() {
            "—".to_owned()
        } else {
            milliseconds(held)
        },
    )
}

fn verdict(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅ pass",
        Verdict::Warn => "⚠️ warn",
        Verdict::Fail => "❌ fail",
    }
}

fn rollback(check: &RollbackCheck) -> &'static str {
    match check {
        RollbackCheck::Exact { .. } => "exact",
        RollbackCheck::ColumnOrderOnly { .. } => "column order",
        RollbackCheck::Differs { .. } => "**not exact**",
        RollbackCheck::Failed { .. } => "**down failed**",
        RollbackCheck::NoDown => "no down",
        RollbackCheck::NotRun => "not run",
    }
}

fn rollback_detail(check: &RollbackCheck) -> String {
    match check {
        RollbackCheck::Failed { failure } => format!(
            "**down failed** at line {}: {}",
            failure.line, failure.error
        ),
        RollbackCheck::ColumnOrderOnly { .. } => "column order changes".to_owned(),
        RollbackCheck::NoDown => "no down section".to_owned(),
        other => rollback(other).to_owned(),
    }
}

fn reapply(check: &ReapplyCheck) -> &'static str {
    match check {
        ReapplyCheck::Succeeded { .. } => "ok",
        ReapplyCheck::DifferentSchema { .. } => "**another schema**",
        ReapplyCheck::Failed { .. } => "**failed**",
        ReapplyCheck::NotRun => "not run",
    }
}

fn reapply_detail(check: &ReapplyCheck) -> String {
    match check {
        ReapplyCheck::Failed { failure } => {
            format!("**failed** at line {}: {}", failure.line, failure.error)
        }
        other => reapply(other).to_owned(),
    }
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|name| format!("`{name}`")).collect();
    if names.is_empty() {
        "—".to_owned()
    } else {
        names.join(", ")
    }
}

/// Characters of lines joined with newlines.
fn length(lines: &[String]) -> usize {
    lines.iter().map(|line| line.chars().count() + 1).sum()
}
