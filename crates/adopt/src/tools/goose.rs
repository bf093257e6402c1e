//! goose's `goose_db_version`: an append-only log, one row per up (`is_applied = true`) and, in
//! older goose versions, per down (`is_applied = false`; newer ones delete the row). The newest
//! row of a version says whether it is applied. goose writes a row for version 0 when it creates
//! the table; it is not a migration.

use std::collections::BTreeMap;

use safeshift_driver::{Driver, DriverError};

use crate::history::{ForeignApplied, ForeignHistory, ForeignKey, rows, truthy};

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    let mut newest: BTreeMap<i64, (String, bool, Option<String>)> = BTreeMap::new();
    for row in rows(
        db,
        &["id", "version_id", "is_applied", "tstamp"],
        &history.table.quoted(),
        "\"id\"",
    )? {
        let Some(version) = row[1].as_deref().and_then(|v| v.parse::<i64>().ok()) else {
            continue;
        };
        newest.insert(
            version,
            (
                row[0].clone().unwrap_or_default(),
                truthy(row[2].as_deref()),
                row[3].clone(),
            ),
        );
    }
    if newest.remove(&0).is_some() {
        history
            .notes
            .push("version 0 is the row goose writes when it creates its table".into());
    }
    for (version, (id, applied, at)) in newest {
        if version < 0 || !applied {
            continue;
        }
        history.applied.push(ForeignApplied {
            key: ForeignKey::version(&version.to_string()),
            applied_at: at,
            checksum: None,
            row: format!("{table} id {id}"),
            not_sql: None,
        });
    }
    Ok(())
}
