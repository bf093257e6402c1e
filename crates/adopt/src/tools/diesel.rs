//! diesel's `__diesel_schema_migrations`: one row per applied migration, its version being the
//! directory name's leading part without dashes; reverting deletes the row.

use safeshift_driver::{Driver, DriverError};

use crate::history::{ForeignApplied, ForeignHistory, ForeignKey, rows};

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    for row in rows(db, &["version", "run_on"], &history.table.quoted(), "1")? {
        let Some(version) = row[0].clone() else {
            continue;
        };
        history.applied.push(ForeignApplied {
            key: ForeignKey::version(&version),
            applied_at: row[1].clone(),
            checksum: None,
            row: format!("{table} version {version}"),
            not_sql: None,
        });
    }
    Ok(())
}
