//! Prisma's `_prisma_migrations`: one row per attempt. A row with `finished_at` and no
//! `rolled_back_at` is an applied migration; one with neither is a failed migration, which
//! blocks `prisma migrate deploy` (P3009) until `prisma migrate resolve`; one with
//! `rolled_back_at` was marked rolled back. `checksum` is the SHA-256 of `migration.sql`.

use std::collections::BTreeMap;

use safeshift_driver::{Driver, DriverError};

use crate::history::{
    ForeignApplied, ForeignChecksum, ForeignFailure, ForeignHistory, ForeignKey, rows,
};

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    let mut applied: BTreeMap<String, ForeignApplied> = BTreeMap::new();
    let mut failed: BTreeMap<String, ForeignFailure> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for row in rows(
        db,
        &[
            "id",
            "checksum",
            "finished_at",
            "migration_name",
            "logs",
            "rolled_back_at",
            "started_at",
        ],
        &history.table.quoted(),
        "\"started_at\", \"id\"",
    )? {
        let Some(name) = row[3].clone() else {
            continue;
        };
        if !order.contains(&name) {
            order.push(name.clone());
        }
        let id = row[0].clone().unwrap_or_default();
        match (&row[2], &row[5]) {
            (_, Some(_)) => {
                // Marked rolled back: it no longer counts, applied or failed.
                failed.remove(&name);
            }
            (Some(finished), None) => {
                failed.remove(&name);
                applied.insert(
                    name.clone(),
                    ForeignApplied {
                        key: ForeignKey::Name {
                            name: name.clone(),
                            position: None,
                        },
                        applied_at: Some(finished.clone()),
                        checksum: row[1].clone().map(ForeignChecksum::Prisma),
                        row: format!("{table} id {id}"),
                        not_sql: None,
                    },
                );
            }
            (None, None) => {
                let logs = row[4]
                    .as_deref()
                    .and_then(|l| l.lines().find(|line| !line.trim().is_empty()))
                    .map(|line| format!(": {}", line.trim()))
                    .unwrap_or_default();
                failed.insert(
                    name.clone(),
                    ForeignFailure {
                        what: format!("`{name}`"),
                        detail: format!(
                            "Prisma recorded a failed migration (started {}){logs}",
                            row[6].as_deref().unwrap_or("?")
                        ),
                        help: format!(
                            "fix the database by hand, then `prisma migrate resolve --applied {name}` (or `--rolled-back {name}`), and adopt again"
                        ),
                    },
                );
            }
        }
    }
    for name in order {
        if let Some(entry) = applied.remove(&name) {
            history.applied.push(entry);
        }
        if let Some(failure) = failed.remove(&name) {
            history.failures.push(failure);
        }
    }
    Ok(())
}
