//! Knex's `knex_migrations(id, name, batch, migration_time)`, one row per applied migration
//! file, and `knex_migrations_lock(index, is_locked)`, which a run sets while it migrates (and
//! leaves set if it dies).

use safeshift_driver::{Driver, DriverError};

use crate::history::{ForeignApplied, ForeignFailure, ForeignHistory, ForeignKey, rows};
use crate::tool::existing_tables;

pub(crate) fn read(db: &mut dyn Driver, history: &mut ForeignHistory) -> Result<(), DriverError> {
    let table = history.table.display_name();
    for row in rows(
        db,
        &["id", "name", "batch", "migration_time"],
        &history.table.quoted(),
        "\"id\"",
    )? {
        let Some(name) = row[1].clone() else { continue };
        history.applied.push(ForeignApplied {
            key: ForeignKey::Name {
                name,
                position: None,
            },
            applied_at: row[3].clone(),
            checksum: None,
            row: format!(
                "{table} id {} (batch {})",
                row[0].as_deref().unwrap_or("?"),
                row[2].as_deref().unwrap_or("?")
            ),
            not_sql: Some("a Knex migration (JavaScript)".into()),
        });
    }
    let lock_name = format!("{}_lock", history.table.table);
    let schema = history.table.schema.clone();
    if existing_tables(db, &[&lock_name])?
        .iter()
        .any(|(s, _)| schema.is_none() || *s == schema)
    {
        let locked = rows(db, &["is_locked"], &history.table.sibling(&lock_name), "1")?
            .iter()
            .any(|row| row[0].as_deref() == Some("1"));
        if locked {
            history.failures.push(ForeignFailure {
                what: lock_name.clone(),
                detail: format!("{lock_name} is locked: a Knex run is migrating now, or one died while it held the lock"),
                help: "wait for the run to end; if it died, check the database, then `knex migrate:unlock`, and adopt again".into(),
            });
        }
    }
    Ok(())
}
