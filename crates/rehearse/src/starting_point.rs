//! The scratch database's starting schema, built once before the first pending migration and
//! again when `--keep-going` rebuilds the state after a migration whose rollback or re-run
//! failed: the applied migrations replayed, or the `--from-database` schema copied.

use std::path::PathBuf;

use safeshift_driver::DatabaseUrl;
use safeshift_source::{Migration, MigrationSet};

use crate::apply::run_section;
use crate::connection::Connection;
use crate::error::RehearseError;
use crate::production;
use crate::rehearsal::RehearsalOptions;
use crate::scratch::{APPLICATION_NAME, Scratch};

/// Copies the schema of the `--from-database` database into the rehearsal database.
pub fn copy_schema(
    connection: &mut Connection,
    scratch: &Scratch,
    pg_dump: &std::path::Path,
    url: &DatabaseUrl,
    options: &RehearsalOptions,
) -> Result<(), RehearseError> {
    production::copy_schema(
        pg_dump,
        url,
        connection,
        &options.scope.excluded_schemas,
        !scratch.is_throwaway(),
    )?;
    // The dump empties the session's search_path; start afresh.
    *connection = Connection::open(scratch.url(), APPLICATION_NAME)?;
    Ok(())
}

/// Replays the applied migrations' `up`, adding each version to `replayed`; why one failed.
pub fn replay_applied(
    connection: &mut Connection,
    set: &MigrationSet,
    options: &RehearsalOptions,
    replayed: &mut Vec<String>,
) -> Result<Option<String>, RehearseError> {
    for migration in set
        .migrations
        .iter()
        .filter(|m| options.applied.contains(m.version.as_str()))
    {
        if let Err(failure) = run_section(connection, &migration.up)? {
            return Ok(Some(format!(
                "replaying applied migration {} failed at line {}: {}",
                migration.file().display(),
                failure.line,
                failure.error
            )));
        }
        replayed.push(migration.version.as_str().to_owned());
    }
    Ok(None)
}

/// `--keep-going`: brings the scratch database to the state after the last of `ups`'s `up`, by
/// creating it again, building the starting point as at first (without reading sizes again)
/// and replaying the `up` of every migration in `ups`. Returns why that failed.
pub fn rebuild(
    scratch: &Scratch,
    connection: &mut Connection,
    set: &MigrationSet,
    options: &RehearsalOptions,
    copied_with: Option<&(PathBuf, DatabaseUrl)>,
    ups: &[&Migration],
) -> Result<Result<(), String>, RehearseError> {
    scratch.recreate()?;
    *connection = Connection::open(scratch.url(), APPLICATION_NAME)?;
    match copied_with {
        Some((pg_dump, url)) => copy_schema(connection, scratch, pg_dump, url, options)?,
        None => {
            if let Some(failure) = replay_applied(connection, set, options, &mut Vec::new())? {
                return Ok(Err(failure));
            }
        }
    }
    for migration in ups {
        if let Err(failure) = run_section(connection, &migration.up)? {
            return Ok(Err(format!(
                "replaying the up of {} failed at line {}: {}",
                migration.file().display(),
                failure.line,
                failure.error
            )));
        }
    }
    Ok(Ok(()))
}
