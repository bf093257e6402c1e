//! Sequelize's `SequelizeMeta(name)`: one row per applied migration file name.

use safeshift_driver::{Driver, DriverError};

use crate::history::{ForeignApplied, ForeignHistory, ForeignKey, rows};

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    for row in rows(db, &["name"], &history.table.quoted(), "1")? {
        let Some(name) = row[0].clone() else { continue };
        history.applied.push(ForeignApplied {
            key: ForeignKey::Name {
                name: name.clone(),
                position: None,
            },
            applied_at: None,
            checksum: None,
            row: format!("{table} name {name}"),
            not_sql: Some("a Sequelize migration (JavaScript)".into()),
        });
    }
    Ok(())
}
