//! Flyway's `flyway_schema_history`: one row per attempt, in `installed_rank` order. `type` says
//! what the row is: a migration (`SQL`, or `JDBC` and others for Java migrations), Flyway's
//! `SCHEMA` creation row, a `BASELINE` (every version up to it counts as applied), an undo
//! (`UNDO_SQL`), or a migration `repair` marked `DELETE`d. `success = false` is a failed
//! migration that Flyway could not roll back; `flyway repair` removes such rows. Repeatable
//! migrations have no version; their rows are told apart by script.

use std::collections::BTreeMap;
use std::path::Path;

use safeshift_driver::{Driver, DriverError};
use safeshift_source::Version;

use crate::history::{
    ForeignApplied, ForeignChecksum, ForeignFailure, ForeignHistory, ForeignKey, rows, truthy,
};

/// Where a migration stands after the rows so far.
enum Standing {
    Applied(ForeignApplied),
    Failed(ForeignFailure),
    Removed,
}

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    let mut standing: BTreeMap<String, Standing> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for row in rows(
        db,
        &[
            "installed_rank",
            "version",
            "description",
            "type",
            "script",
            "checksum",
            "installed_on",
            "success",
        ],
        &history.table.quoted(),
        "\"installed_rank\"",
    )? {
        let text = |i: usize| row[i].clone().unwrap_or_default();
        let (rank, version, kind, script) = (text(0), row[1].clone(), text(3), text(4));
        let success = truthy(row[7].as_deref());
        match kind.as_str() {
            "SCHEMA" => {
                history.notes.push(format!(
                    "installed_rank {rank}: Flyway created the schema {script}"
                ));
                continue;
            }
            "BASELINE" => {
                if success {
                    history.baseline = version.as_deref().and_then(Version::parse);
                    history.notes.push(format!(
                        "installed_rank {rank}: Flyway's baseline at version {}",
                        version.as_deref().unwrap_or("?")
                    ));
                }
                continue;
            }
            _ => {}
        }
        let key = match &version {
            Some(version) => ForeignKey::version(version),
            None => {
                let file = Path::new(&script)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(&script);
                let description = file
                    .strip_prefix("R__")
                    .and_then(|f| f.strip_suffix(".sql"))
                    .unwrap_or(file)
                    .to_owned();
                ForeignKey::Repeatable { description }
            }
        };
        let id = key.describe();
        if !order.contains(&id) {
            order.push(id.clone());
        }
        let new = if kind == "DELETE" {
            Standing::Removed
        } else if kind.starts_with("UNDO") {
            if success {
                Standing::Removed
            } else {
                Standing::Failed(ForeignFailure {
                    what: id.clone(),
                    detail: format!("Flyway recorded the undo {script} as failed (installed_rank {rank})"),
                    help: "finish or undo it by hand, remove the failed row with `flyway repair`, and adopt again".into(),
                })
            }
        } else if !success {
            Standing::Failed(ForeignFailure {
                what: id.clone(),
                detail: format!(
                    "Flyway recorded {script} as failed (installed_rank {rank}, {}): it ran outside a transaction and stopped part-way",
                    text(6)
                ),
                help: "finish or undo it by hand, remove the failed row with `flyway repair`, and adopt again".into(),
            })
        } else {
            Standing::Applied(ForeignApplied {
                key,
                applied_at: row[6].clone(),
                checksum: row[5]
                    .as_deref()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(ForeignChecksum::Flyway),
                row: format!("{table} installed_rank {rank}"),
                not_sql: (kind != "SQL").then(|| format!("a Flyway {kind} migration")),
            })
        };
        standing.insert(id, new);
    }
    for id in order {
        match standing.remove(&id) {
            Some(Standing::Applied(applied)) => history.applied.push(applied),
            Some(Standing::Failed(failure)) => history.failures.push(failure),
            Some(Standing::Removed) | None => {}
        }
    }
    Ok(())
}
