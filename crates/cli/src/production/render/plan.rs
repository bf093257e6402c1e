//! The migration plan: its short form before the confirmation prompt, and `safeshift plan` as
//! Markdown.

use std::fmt::Write as _;

use safeshift_backup::human_bytes;

use crate::output::{BOLD, DIM, millis, styled, table};
use safeshift_deploy::Plan;

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
                    // Never analysed: its size is known, its row count is not.
                    (None, Some(bytes)) => format!(" (rows unknown, {})", human_bytes(bytes)),
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
