//! How much data each table holds now, for showing what a restore replaces.
//!
//! The catalog's page counts (`pg_class.relpages`) cost nothing to read but are only as fresh as
//! the table's last VACUUM or ANALYZE: a table filled since reads as nearly empty. The sizes of
//! the files themselves (`pg_total_relation_size`) are true, but reading them takes the lock
//! every reader takes, which queues behind a session waiting for an exclusive lock. So the files
//! are read under a short `lock_timeout`, and a table whose lock is not free at once gets the
//! catalog's figure instead, marked as an estimate.

use std::collections::HashMap;

use serde::Serialize;

use safeshift_driver::ErrorKind;

use crate::error::BackupError;
use crate::postgres::Connection;

/// How long reading one table's size may wait for its lock.
const SIZE_LOCK_TIMEOUT_MS: u32 = 50;

/// The user tables, with the schemas the system keeps for itself left out.
const USER_TABLES: &str = "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// One table and the data it holds: heap, indexes and TOAST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSize {
    /// `schema.table`.
    pub table: String,
    pub bytes: u64,
    /// False when `bytes` is the catalog's estimate (the table's lock was not free).
    pub exact: bool,
}

/// Every user table with its size, by name.
pub(crate) fn user_tables(connection: &mut Connection) -> Result<Vec<TableSize>, BackupError> {
    let listed = connection.rows(&format!(
        "SELECT c.oid, n.nspname || '.' || c.relname, (c.relpages::bigint + coalesce((SELECT sum(ic.relpages) \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid), 0)) \
         * current_setting('block_size')::bigint {USER_TABLES} ORDER BY 2"
    ))?;
    let exact = file_sizes(connection, &listed)?;
    Ok(listed
        .into_iter()
        .filter_map(|row| {
            let oid = row[0].clone()?;
            let estimate = row[2].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            let measured = exact.get(&oid).copied();
            Some(TableSize {
                table: row[1].clone()?,
                bytes: measured.unwrap_or(estimate),
                exact: measured.is_some(),
            })
        })
        .collect())
}

/// The size of each listed table's files, by oid; a table whose lock was not free within
/// [`SIZE_LOCK_TIMEOUT_MS`] is left out. One query when no lock is in the way, else one per table.
fn file_sizes(
    connection: &mut Connection,
    listed: &[Vec<Option<String>>],
) -> Result<HashMap<String, u64>, BackupError> {
    let all = format!("SELECT c.oid, pg_total_relation_size(c.oid) {USER_TABLES}");
    if let Some(sizes) = under_short_lock_timeout(connection, &all)? {
        return Ok(sizes);
    }
    let mut sizes = HashMap::new();
    for oid in listed.iter().filter_map(|row| row[0].as_deref()) {
        let one = format!("SELECT {oid}::oid, pg_total_relation_size({oid}::oid)");
        if let Some(size) = under_short_lock_timeout(connection, &one)? {
            sizes.extend(size);
        }
    }
    Ok(sizes)
}

/// Runs `sql` (rows of oid and size) in a transaction of its own with a short `lock_timeout`;
/// `None` when a lock was not free in time.
fn under_short_lock_timeout(
    connection: &mut Connection,
    sql: &str,
) -> Result<Option<HashMap<String, u64>>, BackupError> {
    let result = connection.driver.query_rows(&format!(
        "BEGIN; SET LOCAL lock_timeout = {SIZE_LOCK_TIMEOUT_MS}; {sql}; COMMIT"
    ));
    match result {
        Ok(rows) => Ok(Some(
            rows.into_iter()
                .filter_map(|row| Some((row[0].clone()?, row[1].as_deref()?.parse().ok()?)))
                .collect(),
        )),
        Err(error) => {
            connection.driver.query_rows("ROLLBACK")?;
            if error.kind == ErrorKind::LockTimeout {
                Ok(None)
            } else {
                Err(error.into())
            }
        }
    }
}

/// Every table of a SQLite database with the pages it and its indexes use (`dbstat`), all exact.
pub(crate) fn sqlite_tables(file: &std::path::Path) -> Result<Vec<TableSize>, BackupError> {
    let connection = crate::sqlite::open_read_only(file)?;
    let failed = |e: rusqlite::Error| {
        BackupError::Database(safeshift_driver::DriverError::new(
            ErrorKind::Statement,
            format!("reading the table sizes of {}: {e}", file.display()),
        ))
    };
    let mut statement = connection
        .prepare(
            "SELECT m.tbl_name, coalesce(sum(d.pgsize), 0) FROM sqlite_master m \
             LEFT JOIN dbstat d ON d.name = m.name \
             WHERE m.type IN ('table', 'index') AND m.tbl_name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             GROUP BY m.tbl_name ORDER BY m.tbl_name",
        )
        .map_err(failed)?;
    let sizes = statement
        .query_map([], |row| {
            Ok(TableSize {
                table: row.get(0)?,
                bytes: row.get::<_, i64>(1)?.max(0) as u64,
                exact: true,
            })
        })
        .map_err(failed)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    Ok(sizes)
}
