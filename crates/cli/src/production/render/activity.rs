//! `safeshift activity`: sessions as a blocking tree, lock waits, index builds, largest tables.

use safeshift_backup::human_bytes;
use safeshift_watch::Activity;

use crate::output::{BOLD, DIM, YELLOW, millis, out, styled, table};
use safeshift_deploy::describe::session_line;

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
