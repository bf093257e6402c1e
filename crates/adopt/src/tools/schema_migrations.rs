//! `schema_migrations`, which three tools share a name for: dbmate and Rails keep one row per
//! applied version (`version varchar`); golang-migrate keeps a single row, the newest version
//! applied, with a `dirty` flag it sets before running a migration and clears after.

use safeshift_driver::{Driver, DriverError};
use safeshift_source::Version;

use crate::history::{ForeignApplied, ForeignFailure, ForeignHistory, ForeignKey, rows, truthy};

pub(crate) fn read_versions(
    db: &mut dyn Driver,
    history: &mut ForeignHistory,
) -> Result<(), DriverError> {
    let table = history.table.display_name();
    for row in rows(db, &["version"], &history.table.quoted(), "1")? {
        let Some(version) = row[0].clone() else {
            continue;
        };
        history.applied.push(ForeignApplied {
            key: ForeignKey::version(&version),
            applied_at: None,
            checksum: None,
            row: format!("{table} version {version}"),
            not_sql: None,
        });
    }
    Ok(())
}

pub(crate) fn read_golang_migrate(
    db: &mut dyn Driver,
    history: &mut ForeignHistory,
) -> Result<(), DriverError> {
    let table = history.table.display_name();
    let found = rows(db, &["version", "dirty"], &history.table.quoted(), "1")?;
    if found.len() > 1 {
        history.failures.push(ForeignFailure {
            what: table.clone(),
            detail: format!("{} rows, where golang-migrate keeps exactly one", found.len()),
            help: "the table was changed by hand; leave the one row golang-migrate expects (`migrate version` shows it)".into(),
        });
    }
    let Some(row) = found.first() else {
        history
            .notes
            .push(format!("{table} is empty: golang-migrate applied nothing"));
        return Ok(());
    };
    let version = row[0].clone().unwrap_or_default();
    if truthy(row[1].as_deref()) {
        history.failures.push(ForeignFailure {
            what: format!("version {version}"),
            detail: format!("golang-migrate marked version {version} dirty: it failed part-way, and nothing records which of its statements ran"),
            help: format!("finish or undo the migration by hand, then `migrate force {version}` (finished) or `migrate force <the version before>` (undone), and adopt again"),
        });
        return Ok(());
    }
    // golang-migrate's `nil` version is -1 (everything rolled back).
    if version.starts_with('-') {
        history.notes.push(format!(
            "{table} says version {version}: nothing is applied"
        ));
        return Ok(());
    }
    history.applied_through = Version::parse(&version);
    history.applied.push(ForeignApplied {
        key: ForeignKey::version(&version),
        applied_at: None,
        checksum: None,
        row: format!("{table} version {version}"),
        not_sql: None,
    });
    Ok(())
}
