//! sqitch's registry: `sqitch.changes` holds the changes deployed now, one row each (reverting
//! deletes the row), with the SHA-1 of the deploy script; `sqitch.events` logs every deploy,
//! revert and failure. sqitch deploys in plan order, so the deployed changes, oldest first, are
//! the plan's first changes.

use safeshift_driver::{Driver, DriverError};

use crate::history::{
    ForeignApplied, ForeignChecksum, ForeignFailure, ForeignHistory, ForeignKey, rows,
};
use crate::tool::literal;

pub(crate) fn read(
    db: &mut dyn Driver,
    history: &mut ForeignHistory,
    project: Option<&str>,
) -> Result<(), DriverError> {
    let table = history.table.display_name();
    let filter = project
        .map(|p| format!(" WHERE \"project\" = {}", literal(p)))
        .unwrap_or_default();
    let changes = rows(
        db,
        &["change_id", "script_hash", "change", "committed_at"],
        &format!("{}{filter}", history.table.quoted()),
        "\"committed_at\", \"change_id\"",
    )?;
    for (index, row) in changes.into_iter().enumerate() {
        let Some(name) = row[2].clone() else { continue };
        history.applied.push(ForeignApplied {
            key: ForeignKey::Name {
                name,
                position: Some(index + 1),
            },
            applied_at: row[3].clone(),
            checksum: row[1].clone().map(ForeignChecksum::Sqitch),
            row: format!("{table} change_id {}", row[0].as_deref().unwrap_or("?")),
            not_sql: None,
        });
    }
    if let Some(project) = project {
        let others = rows(
            db,
            &["project"],
            &format!(
                "{} WHERE \"project\" <> {} GROUP BY \"project\"",
                history.table.quoted(),
                literal(project)
            ),
            "1",
        )?;
        if !others.is_empty() {
            history.notes.push(format!(
                "{table} also holds changes of {}; only `{project}`, sqitch.plan's project, is adopted",
                others
                    .iter()
                    .filter_map(|row| row[0].clone())
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let events = history.table.sibling("events");
    let last = rows(
        db,
        &["event", "change", "committed_at"],
        &format!("{events}{filter}"),
        "\"committed_at\" DESC LIMIT 1",
    )?;
    if let Some(event) = last.first()
        && event[0].as_deref() == Some("fail")
    {
        let change = event[1].clone().unwrap_or_default();
        history.failures.push(ForeignFailure {
            what: format!("`{change}`"),
            detail: format!(
                "sqitch's last event is a failed deploy of `{change}` ({})",
                event[2].as_deref().unwrap_or("?")
            ),
            help: format!(
                "sqitch reverted what it could; a script without a transaction may have left part of `{change}` behind: check the database, then `sqitch deploy` (or revert by hand) until sqitch reports no failure, and adopt again"
            ),
        });
    }
    Ok(())
}
