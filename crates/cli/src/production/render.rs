//! Text and Markdown for the production reports: pre-flight checks, the plan, backups, health
//! checks and the server's activity.

use std::fmt::Write as _;

use safeshift_backup::{Backup, PruneReport, RestorePreview, Verification, human_bytes};
use safeshift_watch::{Activity, HealthOutcome};

use crate::output::{BOLD, DIM, GREEN, RED, YELLOW, millis, out, styled, table};
use crate::production::plan::Plan;
use crate::production::preflight::{Outcome, Preflight};
use crate::production::watch::session_line;

fn verdict(outcome: Outcome) -> String {
    match outcome {
        Outcome::Pass => styled(GREEN, "pass"),
        Outcome::Warn => styled(YELLOW, "warn"),
        Outcome::Fail => styled(RED, "FAIL"),
    }
}

/// `safeshift preflight`, and the checks before a production `up` (to stderr there).
pub fn preflight(report: &Preflight, say: &dyn Fn(String)) {
    say(format!(
        "{} {}",
        styled(BOLD, "Pre-flight"),
        report.database
    ));
    for check in &report.checks {
        say(format!(
            "  {}  {:<18} {}",
            verdict(check.outcome),
            check.name,
            check.summary
        ));
        for detail in &check.details {
            say(format!("        {}", styled(DIM, detail)));
        }
    }
    let (fails, warns) = report
        .checks
        .iter()
        .fold((0, 0), |(f, w), c| match c.outcome {
            Outcome::Fail => (f + 1, w),
            Outcome::Warn => (f, w + 1),
            Outcome::Pass => (f, w),
        });
    say(match report.outcome() {
        Outcome::Fail => format!("{fails} check(s) failed, {warns} warning(s)."),
        Outcome::Warn => format!("Ready, with {warns} warning(s)."),
        Outcome::Pass => "Ready.".to_owned(),
    });
}

/// The plan's short form, shown before asking for confirmation.
pub fn plan_summary(plan: &Plan, backup: Option<&str>, say: &dyn Fn(String)) {
    say(format!(
        "{} {} migration(s) on {} ({} → {})",
        styled(BOLD, "Plan:"),
        plan.migrations.len(),
        plan.database,
        plan.current_version.as_deref().unwrap_or("empty"),
        plan.target_version.as_deref().unwrap_or("?")
    ));
    let mut rows = vec![
        ["VERSION", "NAME", "RISK", "ESTIMATE", "LOCKS"]
            .iter()
            .map(|h| styled(DIM, h))
            .collect::<Vec<_>>(),
    ];
    for migration in &plan.migrations {
        rows.push(vec![
            migration.version.clone(),
            migration.name.clone(),
            migration
                .risk
                .map_or_else(|| "none".to_owned(), |r| r.to_string()),
            format!("~{}", millis(migration.estimated.as_millis() as u64)),
            migration
                .locks
                .iter()
                .map(|l| format!("{} {}", l.mode, l.table))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    for line in table(&rows) {
        say(format!("  {line}"));
    }
    say(format!(
        "  estimated {} in total; downtime: {}; backup: {}",
        millis(plan.estimated.as_millis() as u64),
        if plan.downtime {
            "yes, some statements block traffic"
        } else {
            "no"
        },
        backup.unwrap_or("none")
    ));
}

/// `safeshift plan` as Markdown: the migration spec a reviewer wants.
pub fn plan_markdown(plan: &Plan) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# Migration plan\n");
    let _ = writeln!(
        text,
        "- **Database:** `{}` ({} {})",
        plan.database, plan.engine, plan.server_version
    );
    let _ = writeln!(
        text,
        "- **Schema version:** {} → {}",
        plan.current_version.as_deref().unwrap_or("empty"),
        plan.target_version.as_deref().unwrap_or("no change")
    );
    let _ = writeln!(text, "- **Migrations:** {}", plan.migrations.len());
    let _ = writeln!(
        text,
        "- **Risk:** {}{}",
        plan.risk.map_or("none found", |r| r.as_str()),
        if plan.sized {
            " (graded with the table sizes of the database)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        text,
        "- **Estimated duration:** {}",
        millis(plan.estimated.as_millis() as u64)
    );
    let _ = writeln!(
        text,
        "- **Downtime required:** {}\n",
        if plan.downtime { "yes" } else { "no" }
    );
    if plan.migrations.is_empty() {
        let _ = writeln!(text, "Nothing to apply: the database is up to date.");
        return text;
    }
    let mut previous = plan
        .current_version
        .clone()
        .unwrap_or_else(|| "0".to_owned());
    for migration in &plan.migrations {
        let _ = writeln!(
            text,
            "## {} {}\n",
            migration.version,
            migration.name.replace('_', " ")
        );
        let _ = writeln!(
            text,
            "- **File:** `{}` ({} statement(s), {})",
            migration.file,
            migration.statements,
            if migration.transactional {
                "in one transaction"
            } else {
                "without a transaction"
            }
        );
        let _ = writeln!(
            text,
            "- **Risk:** {}",
            migration.risk.map_or("none found", |r| r.as_str())
        );
        let _ = writeln!(
            text,
            "- **Estimated duration:** {}",
            millis(migration.estimated.as_millis() as u64)
        );
        let _ = writeln!(
            text,
            "- **Downtime required:** {}\n",
            if migration.downtime { "yes" } else { "no" }
        );
        let _ = writeln!(
            text,
            "### Schema changes\n\n```sql\n{}\n```\n",
            migration.up_sql
        );
        let _ = writeln!(text, "### Data impact\n");
        if migration.locks.is_empty() {
            let _ = writeln!(text, "No lock on a table that exists before the migration.");
        }
        for lock in &migration.locks {
            let _ = writeln!(
                text,
                "- `{}` on `{}`: blocks {}",
                lock.mode, lock.table, lock.blocks
            );
        }
        for table in &migration.rewrites {
            let _ = writeln!(text, "- `{table}` is rewritten (every row copied)");
        }
        let _ = writeln!(text);
        if !migration.findings.is_empty() {
            let _ = writeln!(text, "### Risk reasons\n");
            for finding in &migration.findings {
                let size = match (finding.rows, finding.bytes) {
                    (Some(rows), Some(bytes)) => format!(" (~{rows} rows, {})", human_bytes(bytes)),
                    _ => String::new(),
                };
                let acknowledged = finding
                    .acknowledged
                    .as_ref()
                    .map(|r| format!(" — acknowledged: {r}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    text,
                    "- **{}** `{}` (line {}){size}: {}. {}{acknowledged}",
                    finding.risk,
                    finding.rule,
                    finding.line,
                    finding.message.trim_end_matches('.'),
                    finding.help
                );
                if let Some(alternative) = &finding.safe_alternative {
                    let _ = writeln!(
                        text,
                        "\n  ```sql\n  {}\n  ```",
                        alternative.replace('\n', "\n  ")
                    );
                }
            }
            let _ = writeln!(text);
        }
        let _ = writeln!(text, "### Rollback procedure\n");
        match &migration.down_sql {
            Some(down) => {
                let _ = writeln!(
                    text,
                    "`safeshift down --to {previous}` rolls back to the version before it (and everything applied after it), running:\n\n```sql\n{down}\n```\n"
                );
            }
            None => {
                let _ = writeln!(
                    text,
                    "**No down section.** Rolling back means restoring the backup taken before the run (`safeshift backup restore FILE`).\n"
                );
            }
        }
        previous = migration.version.clone();
    }
    let tables = plan.tables();
    let _ = writeln!(text, "## Testing plan\n");
    let _ = writeln!(
        text,
        "- Apply on a copy of production data (`safeshift backup restore FILE --to <scratch>`, then `safeshift up` against it) and time it."
    );
    let _ = writeln!(
        text,
        "- Run the down migrations on that copy, then `up` again, to prove the rollback."
    );
    let _ = writeln!(
        text,
        "- Run the application's tests against the new schema, and the old application against it (expand/contract).\n"
    );
    let _ = writeln!(text, "## Checklist\n");
    let _ = writeln!(text, "**Before**\n");
    let _ = writeln!(
        text,
        "- [ ] `safeshift preflight` passes (history, privileges, disk space, blocking sessions, replication lag)"
    );
    let _ = writeln!(
        text,
        "- [ ] A verified backup exists (`safeshift backup create`, `safeshift backup verify --deep FILE`)"
    );
    let _ = writeln!(
        text,
        "- [ ] No long transactions on {}",
        if tables.is_empty() {
            "the affected tables".to_owned()
        } else {
            tables
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(text, "- [ ] Reviewer approved this plan\n");
    let _ = writeln!(text, "**During**\n");
    let _ = writeln!(
        text,
        "- [ ] Watch the run (`safeshift up --abort-on lock-wait`; `safeshift activity --watch` in another terminal)"
    );
    let _ = writeln!(
        text,
        "- [ ] Application error rate and latency stay normal\n"
    );
    let _ = writeln!(text, "**After**\n");
    let _ = writeln!(
        text,
        "- [ ] `safeshift status` shows every migration applied"
    );
    let _ = writeln!(
        text,
        "- [ ] Health checks pass; roll back (`safeshift down`) or restore if not"
    );
    let _ = writeln!(
        text,
        "- [ ] Dead tuples and table sizes look normal (`safeshift activity`)"
    );
    text
}

/// One backup, for `backup create` and `backup list`.
pub fn backup_rows(backups: &[Backup]) -> Vec<String> {
    let mut rows = vec![
        [
            "FILE",
            "DATABASE",
            "VERSION",
            "SIZE",
            "TAKEN (UTC)",
            "BY",
            "VERIFIED",
        ]
        .iter()
        .map(|h| styled(DIM, h))
        .collect::<Vec<_>>(),
    ];
    for backup in backups {
        let metadata = &backup.metadata;
        rows.push(vec![
            backup.reference(),
            metadata.database.clone(),
            metadata
                .schema_version
                .clone()
                .unwrap_or_else(|| "-".into()),
            human_bytes(metadata.size_bytes),
            metadata.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            metadata.created_by.clone(),
            match &metadata.verified {
                Some(v) if v.ok => styled(GREEN, if v.deep { "deep ok" } else { "ok" }),
                Some(_) => styled(RED, "FAILED"),
                None => "-".to_owned(),
            },
        ]);
    }
    table(&rows)
}

pub fn verification(result: &Verification, say: &dyn Fn(String)) {
    say(format!(
        "  checksum   {} {}",
        if result.checksum_ok {
            styled(GREEN, "ok")
        } else {
            styled(RED, "MISMATCH")
        },
        result.actual_sha256
    ));
    if let Some(contents) = &result.contents {
        say(format!(
            "  contents   {} entries, {} tables, data for {} (pg_restore --list){}",
            contents.entries,
            contents.tables.len(),
            contents.table_data,
            contents
                .dumped_from
                .as_ref()
                .map(|v| format!("; dumped from PostgreSQL {v}"))
                .unwrap_or_default()
        ));
    }
    if let Some(integrity) = &result.integrity {
        say(format!("  integrity  {integrity}"));
    }
    if let Some(deep) = &result.deep {
        say(format!(
            "  deep       restored into {}: {} table(s) compared, {} differ",
            deep.scratch,
            deep.tables_compared,
            deep.mismatches.len()
        ));
    }
    for problem in &result.problems {
        say(format!("  {} {problem}", styled(RED, "problem:")));
    }
}

pub fn restore_preview(preview: &RestorePreview, backup: &Backup, say: &dyn Fn(String)) {
    let metadata = &backup.metadata;
    say(format!(
        "{} {} → {}{}",
        styled(BOLD, "Restore"),
        backup.reference(),
        preview.database,
        if preview.into_new_database {
            " (a new database)"
        } else {
            ""
        }
    ));
    say(format!(
        "  taken {} UTC by {} from {} (server {}), schema version {}",
        metadata.created_at.format("%Y-%m-%d %H:%M:%S"),
        metadata.created_by,
        metadata.source,
        metadata.server_version,
        metadata.schema_version.as_deref().unwrap_or("none")
    ));
    if !preview.into_new_database {
        let bytes: u64 = preview.replaced.iter().map(|t| t.bytes).sum();
        let estimated = preview.replaced.iter().filter(|t| !t.exact).count();
        say(format!(
            "  replaces {} table(s) now holding {}{} with the backup's {} table(s)",
            preview.replaced.len(),
            if estimated > 0 { "about " } else { "" },
            human_bytes(bytes),
            preview.backup_tables.len()
        ));
        for table in preview.replaced.iter().take(20) {
            if table.exact {
                say(format!(
                    "    {} ({})",
                    table.table,
                    human_bytes(table.bytes)
                ));
            } else {
                say(format!(
                    "    {} (about {}: an estimate from the catalog, whose page counts are as old as the \
                     last VACUUM or ANALYZE; the table's lock was not free to read its files)",
                    table.table,
                    human_bytes(table.bytes)
                ));
            }
        }
        if !preview.kept.is_empty() {
            say(format!(
                "  {} not in the backup, left as they are: {}",
                styled(YELLOW, "note:"),
                preview.kept.join(", ")
            ));
        }
    }
}

pub fn prune(report: &PruneReport) {
    for decision in &report.decisions {
        out(format!(
            "{} {} ({})",
            if decision.delete {
                styled(
                    RED,
                    if report.dry_run {
                        "would delete"
                    } else {
                        "deleted"
                    },
                )
            } else {
                styled(GREEN, "kept")
            },
            decision.file,
            decision.reason
        ));
    }
    let deleted = report.decisions.iter().filter(|d| d.delete).count();
    out(format!(
        "{} {deleted} backup(s), {}.",
        if report.dry_run {
            "Would delete"
        } else {
            "Deleted"
        },
        human_bytes(report.freed_bytes)
    ));
}

pub fn health(outcome: &HealthOutcome, say: &dyn Fn(String)) {
    say(format!(
        "  {} {} — {} ({})",
        if outcome.ok {
            styled(GREEN, "healthy")
        } else {
            styled(RED, "UNHEALTHY")
        },
        outcome.check,
        outcome.detail,
        millis(outcome.duration_ms)
    ));
}

/// `safeshift activity`.
pub fn activity(activity: &Activity) {
    out(format!(
        "{} {} · PostgreSQL {} · connections {}/{} ({:.0} %)",
        styled(BOLD, "Activity"),
        activity.database,
        activity.server_version,
        activity.connections.used,
        activity.connections.max,
        activity.connections.ratio() * 100.0
    ));
    out("");
    out(styled(BOLD, "Sessions (not idle), blocking tree"));
    if activity.sessions.is_empty() {
        out("  none");
    }
    // Roots: sessions that block others or wait for nobody; each blocked session under its blockers.
    let blocked: Vec<i64> = activity
        .sessions
        .iter()
        .filter(|s| !s.blocked_by.is_empty())
        .map(|s| s.pid)
        .collect();
    fn walk(activity: &Activity, pid: i64, depth: usize, seen: &mut Vec<i64>) {
        if seen.contains(&pid) || depth > 8 {
            return;
        }
        seen.push(pid);
        if let Some(session) = activity.sessions.iter().find(|s| s.pid == pid) {
            let marker = if depth == 0 {
                ""
            } else {
                "└ waits for the one above: "
            };
            out(format!(
                "  {}{marker}{}",
                "    ".repeat(depth),
                session_line(session)
            ));
        }
        for child in activity
            .sessions
            .iter()
            .filter(|s| s.blocked_by.contains(&pid))
        {
            walk(activity, child.pid, depth + 1, seen);
        }
    }
    let mut seen = Vec::new();
    for session in activity
        .sessions
        .iter()
        .filter(|s| !blocked.contains(&s.pid))
    {
        walk(activity, session.pid, 0, &mut seen);
    }
    for session in &activity.sessions {
        walk(activity, session.pid, 0, &mut seen);
    }
    out("");
    out(styled(BOLD, "Lock waits"));
    if activity.lock_waits.is_empty() {
        out("  none");
    }
    for wait in &activity.lock_waits {
        out(format!(
            "  pid {} waits {} for {} {}",
            wait.pid,
            wait.waited_ms.map_or("?".into(), millis),
            wait.mode,
            wait.relation
                .clone()
                .unwrap_or_else(|| format!("({})", wait.lock_type))
        ));
    }
    out("");
    out(styled(BOLD, "Index builds"));
    if activity.index_builds.is_empty() {
        out("  none");
    }
    for build in &activity.index_builds {
        let percent = if build.blocks_total > 0 {
            format!(
                "{:.0} % of blocks",
                build.blocks_done as f64 * 100.0 / build.blocks_total as f64
            )
        } else if build.tuples_total > 0 {
            format!(
                "{:.0} % of tuples",
                build.tuples_done as f64 * 100.0 / build.tuples_total as f64
            )
        } else {
            "progress unknown".to_owned()
        };
        out(format!(
            "  pid {} {} on {}: {} ({percent})",
            build.pid, build.index, build.table, build.phase
        ));
    }
    out("");
    out(styled(BOLD, "Largest tables"));
    let mut rows = vec![
        ["TABLE", "SIZE", "LIVE", "DEAD", "DEAD %"]
            .iter()
            .map(|h| styled(DIM, h))
            .collect::<Vec<_>>(),
    ];
    for table_row in &activity.tables {
        let ratio = table_row.dead_ratio() * 100.0;
        rows.push(vec![
            table_row.table.clone(),
            human_bytes(table_row.total_bytes),
            table_row.live_tuples.to_string(),
            table_row.dead_tuples.to_string(),
            if ratio >= 20.0 {
                styled(YELLOW, format!("{ratio:.0}"))
            } else {
                format!("{ratio:.0}")
            },
        ]);
    }
    for line in table(&rows) {
        out(format!("  {line}"));
    }
}
