//! Alembic's `alembic_version`: one row per head revision the database is at (usually one).
//! Revisions are Python, so adopting Alembic means a baseline of the live schema.

use safeshift_driver::{Driver, DriverError};

use crate::history::{ForeignApplied, ForeignHistory, ForeignKey, rows};

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    for row in rows(db, &["version_num"], &history.table.quoted(), "1")? {
        let Some(revision) = row[0].clone() else {
            continue;
        };
        history.applied.push(ForeignApplied {
            key: ForeignKey::Name {
                name: revision.clone(),
                position: None,
            },
            applied_at: None,
            checksum: None,
            row: format!("{table} version_num {revision}"),
            not_sql: Some("an Alembic revision (Python)".into()),
        });
    }
    Ok(())
}
