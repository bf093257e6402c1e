//! The terminal view of a rehearsal: per migration, a table of its statements (lock, what it
//! blocks, rewrite, scan, duration, how long the lock is held), then the rollback and re-run
//! checks and the verdict with its reasons.

use safeshift_rehearse::{
    MigrationReport, ReapplyCheck, RehearsalReport, RollbackCheck, StatementReport, Verdict,
};

use crate::output::{BOLD, DIM, GREEN, RED, YELLOW, styled, table};

use super::diff::difference_lines;

/// The report as terminal text.
pub fn render(report: &RehearsalReport) -> String {
    let mut lines = vec![header(report), String::new()];
    for migration in &report.migrations {
        migration_lines(migration, report.estimate_method.is_some(), &mut lines);
        lines.push(String::new());
    }
    if let Some(failure) = &report.starting_point.failure {
        lines.push(format!("{} {failure}", styled(RED, "error:")));
    }
    if !report.not_rehearsed.is_empty() {
        lines.push(format!(
            "{} not rehearsed after that failure: {}",
            styled(RED, "✗"),
            report.not_rehearsed.join(", ")
        ));
    }
    if let Some(method) = report.estimate_method {
        lines.push(styled(DIM, format!("estimates: {method}")));
    }
    lines.push(summary(report));
    lines.join("\n")
}

fn header(report: &RehearsalReport) -> String {
    let server = &report.server;
    let start = &report.starting_point;
    let starting_point = match &start.source {
        Some(source) => format!(
            "schema and sizes of {} tables copied from {source}",
            start.tables_with_statistics
        ),
        None if start.replayed.is_empty() => "an empty database".to_owned(),
        None => format!("{} applied migrations replayed", start.replayed.len()),
    };
    let rows = report
        .rows
        .map(|rows| format!("; touched tables filled with {rows} rows"))
        .unwrap_or_default();
    format!(
        "Rehearsing on PostgreSQL {} ({} server, ready in {}); starting from {starting_point} ({}){rows}",
        server.version,
        server.kind,
        seconds(server.start_ms),
        milliseconds(start.ms)
    )
}

fn migration_lines(migration: &MigrationReport, estimates: bool, lines: &mut Vec<String>) {
    lines.push(format!(
        "{} {}  {}{}",
        styled(BOLD, &migration.version),
        migration.name,
        verdict(migration.verdict),
        if migration.transactional {
            ""
        } else {
            "  (transaction:false)"
        }
    ));
    for fill in &migration.fills {
        let note = fill
            .note
            .as_deref()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        lines.push(styled(
            DIM,
            format!(
                "  filled {} with {} rows ({} already there) in {}{note}",
                fill.table,
                fill.rows_added,
                fill.rows_before,
                milliseconds(fill.ms)
            ),
        ));
    }
    let mut rows = vec![
        [
            "LINE",
            "STATEMENT",
            "LOCK",
            "ON",
            "BLOCKS",
            "REWRITE",
            "SCAN",
            "TIME",
            "HELD",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    if estimates {
        rows[0].push("EST. REAL".to_owned());
    }
    for statement in &migration.statements {
        statement_rows(statement, estimates, &mut rows);
    }
    if let Some(failure) = &migration.up_failure {
        rows.push(vec![
            failure.line.to_string(),
            first_line(&failure.sql),
            styled(RED, "failed"),
        ]);
    }
    lines.extend(table(&rows).into_iter().map(|line| format!("  {line}")));
    lines.push(format!(
        "  up {} (commit {}) · {} · {}",
        milliseconds(migration.up_ms),
        milliseconds(migration.commit_ms),
        rollback(&migration.rollback),
        reapply(&migration.reapply)
    ));
    for statement in &migration.statements {
        for disagreement in &statement.lint_disagreements {
            lines.push(format!(
                "  {} line {}: {disagreement} (the observation wins)",
                styled(YELLOW, "lint:"),
                statement.line
            ));
        }
    }
    for reason in &migration.reasons {
        let mark = if migration.verdict == Verdict::Fail {
            styled(RED, "✗")
        } else {
            styled(YELLOW, "!")
        };
        lines.push(format!("  {mark} {reason}"));
    }
    if let Some(failure) = &migration.up_failure {
        lines.push(format!("    {}: {}", failure.sql, failure.error));
    }
    match &migration.rollback {
        RollbackCheck::Differs { diff, .. } | RollbackCheck::ColumnOrderOnly { diff, .. } => {
            for line in difference_lines(diff, "before up", "after down") {
                lines.push(format!("    {line}"));
            }
        }
        RollbackCheck::Failed { failure } => {
            lines.push(format!(
                "    down line {}: {}: {}",
                failure.line, failure.sql, failure.error
            ));
        }
        _ => {}
    }
    match &migration.reapply {
        ReapplyCheck::Failed { failure } => {
            lines.push(format!("    line {}: {}", failure.line, failure.sql));
            lines.push(format!("    {}", failure.error));
        }
        ReapplyCheck::DifferentSchema { diff, .. } => {
            for line in difference_lines(diff, "after the first up", "after up again") {
                lines.push(format!("    {line}"));
            }
        }
        _ => {}
    }
    for mismatch in &migration.expectation_mismatches {
        lines.push(format!("    expected: {mismatch}"));
    }
}

fn statement_rows(statement: &StatementReport, estimates: bool, rows: &mut Vec<Vec<String>>) {
    let rewrite = join(statement.rewrites.iter().map(|r| r.relation.as_str()));
    let scan = join(statement.scans.iter().map(|s| s.relation.as_str()));
    let estimate = statement
        .estimate
        .as_ref()
        .map(|e| milliseconds(e.ms))
        .unwrap_or_default();
    let mut first = true;
    let locks: Vec<_> = statement.locks.iter().collect();
    let lock_rows = locks.len().max(1);
    for position in 0..lock_rows {
        let lock = locks.get(position);
        let mut row = vec![
            if first {
                statement.line.to_string()
            } else {
                String::new()
            },
            if first {
                first_line(&statement.sql)
            } else {
                String::new()
            },
            lock.map_or_else(
                || styled(DIM, "-"),
                |l| styled(mode_style(l.mode), l.mode.sql_name()),
            ),
            lock.map_or_else(String::new, |l| l.relation.clone()),
            lock.map_or_else(String::new, |l| l.mode.blocks_summary().to_owned()),
            if first {
                rewrite.clone()
            } else {
                String::new()
            },
            if first { scan.clone() } else { String::new() },
            if first {
                milliseconds(statement.duration_ms)
            } else {
                String::new()
            },
            lock.map_or_else(String::new, |l| milliseconds(l.held_ms)),
        ];
        if estimates {
            row.push(if first {
                estimate.clone()
            } else {
                String::new()
            });
        }
        rows.push(row);
        first = false;
    }
}

fn mode_style(mode: safeshift_rehearse::LockMode) -> anstyle::Style {
    use safeshift_rehearse::LockMode::*;
    match mode {
        AccessExclusive | Exclusive => RED,
        Share | ShareRowExclusive => YELLOW,
        _ => DIM,
    }
}

fn rollback(check: &RollbackCheck) -> String {
    match check {
        RollbackCheck::Exact { ms } => {
            styled(GREEN, format!("rollback exact ({})", milliseconds(*ms)))
        }
        RollbackCheck::ColumnOrderOnly { .. } => styled(YELLOW, "rollback changes column order"),
        RollbackCheck::Differs { diff, .. } => styled(
            RED,
            format!(
                "rollback not exact ({} differences)",
                diff.differences.len()
            ),
        ),
        RollbackCheck::Failed { .. } => styled(RED, "down failed"),
        RollbackCheck::NoDown => styled(YELLOW, "no down section"),
        RollbackCheck::NotRun => styled(DIM, "rollback not run"),
    }
}

fn reapply(check: &ReapplyCheck) -> String {
    match check {
        ReapplyCheck::Succeeded { ms } => {
            styled(GREEN, format!("re-run ok ({})", milliseconds(*ms)))
        }
        ReapplyCheck::DifferentSchema { .. } => styled(RED, "re-run made another schema"),
        ReapplyCheck::Failed { .. } => styled(RED, "re-run failed"),
        ReapplyCheck::NotRun => styled(DIM, "re-run not run"),
    }
}

fn verdict(verdict: Verdict) -> String {
    match verdict {
        Verdict::Pass => styled(GREEN, "PASS"),
        Verdict::Warn => styled(YELLOW, "WARN"),
        Verdict::Fail => styled(RED, "FAIL"),
    }
}

fn summary(report: &RehearsalReport) -> String {
    let (passed, warned, failed) = report.counts();
    format!(
        "{} migration{} rehearsed: {} passed, {} with warnings, {} failed in {} (server start included)",
        report.migrations.len(),
        if report.migrations.len() == 1 {
            ""
        } else {
            "s"
        },
        passed,
        warned,
        failed,
        seconds(report.total_ms)
    )
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    }
}

/// The statement's first line, cut to fit a table.
pub fn first_line(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or_default().trim();
    let cut: String = line.chars().take(44).collect();
    if cut.len() < line.len() || sql.lines().nth(1).is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// `0.42 ms`, `12.3 ms`, `1.24 s`.
pub fn milliseconds(ms: f64) -> String {
    if ms >= 1000.0 {
        seconds(ms)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn seconds(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}
