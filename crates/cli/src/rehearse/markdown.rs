//! The rehearsal as a Markdown pull-request comment.

use safeshift_rehearse::{ReapplyCheck, RehearsalReport, RollbackCheck, Verdict};

use super::diff::difference_lines;
use super::human::{first_line, milliseconds};

/// The report as Markdown (no terminal styles).
pub fn render(report: &RehearsalReport) -> String {
    let (passed, warned, failed) = report.counts();
    let mut out = vec![
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
    for migration in &report.migrations {
        let icon = match migration.verdict {
            Verdict::Pass => "✅",
            Verdict::Warn => "⚠️",
            Verdict::Fail => "❌",
        };
        out.push(format!(
            "### {icon} `{}` {}",
            migration.version, migration.name
        ));
        out.push(String::new());
        out.push("| line | statement | lock | blocks | rewrite | scan | time | held |".to_owned());
        out.push("|---:|---|---|---|---|---|---:|---:|".to_owned());
        for statement in &migration.statements {
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
            out.push(format!(
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
            ));
        }
        out.push(String::new());
        let rollback = match &migration.rollback {
            RollbackCheck::Exact { .. } => "exact".to_owned(),
            RollbackCheck::ColumnOrderOnly { .. } => "column order changes".to_owned(),
            RollbackCheck::Differs { .. } => "**not exact**".to_owned(),
            RollbackCheck::Failed { failure } => format!("**down failed**: {}", failure.error),
            RollbackCheck::NoDown => "no down section".to_owned(),
            RollbackCheck::NotRun => "not run".to_owned(),
        };
        let reapply = match &migration.reapply {
            ReapplyCheck::Succeeded { .. } => "ok".to_owned(),
            ReapplyCheck::DifferentSchema { .. } => "**another schema**".to_owned(),
            ReapplyCheck::Failed { failure } => {
                format!("**failed** at line {}: {}", failure.line, failure.error)
            }
            ReapplyCheck::NotRun => "not run".to_owned(),
        };
        out.push(format!("Rollback: {rollback}. Re-run: {reapply}."));
        for reason in &migration.reasons {
            out.push(format!("- {reason}"));
        }
        if let Some(continued) = &migration.continued {
            out.push(format!("- ↻ {continued}"));
        }
        if let RollbackCheck::Differs { diff, .. } | RollbackCheck::ColumnOrderOnly { diff, .. } =
            &migration.rollback
        {
            out.push(String::new());
            out.push("```diff".to_owned());
            out.extend(difference_lines(diff, "before up", "after down"));
            out.push("```".to_owned());
        }
        out.push(String::new());
    }
    if !report.not_rehearsed.is_empty() {
        out.push(format!(
            "Not rehearsed after a failure: {}",
            report.not_rehearsed.join(", ")
        ));
    }
    out.join("\n")
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|name| format!("`{name}`")).collect();
    if names.is_empty() {
        "—".to_owned()
    } else {
        names.join(", ")
    }
}
