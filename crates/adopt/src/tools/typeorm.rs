//! TypeORM's `migrations(id, timestamp, name)`: one row per applied migration class (its name
//! ends with the timestamp, as in `CreateUsers1700000000000`).

use safeshift_driver::{Driver, DriverError};

use crate::history::{ForeignApplied, ForeignHistory, ForeignKey, rows};

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    for row in rows(
        db,
        &["id", "timestamp", "name"],
        &history.table.quoted(),
        "\"id\"",
    )? {
        let Some(name) = row[2].clone() else { continue };
        history.applied.push(ForeignApplied {
            key: ForeignKey::Name {
                name,
                position: None,
            },
            applied_at: None,
            checksum: None,
            row: format!(
                "{table} id {} (timestamp {})",
                row[0].as_deref().unwrap_or("?"),
                row[1].as_deref().unwrap_or("?")
            ),
            not_sql: Some("a TypeORM migration (TypeScript)".into()),
        });
    }
    Ok(())
}
