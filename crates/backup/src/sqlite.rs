//! SQLite backups with SQLite's online backup API: a consistent copy of a database that stays
//! in use, page by page.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, MAIN_DB, OpenFlags};
use sha2::{Digest, Sha256};

use safeshift_driver::{DriverError, ErrorKind};

use crate::Dumped;
use crate::error::BackupError;
use crate::fingerprint::{self, TableFingerprint};
use crate::metadata::create_private;

/// Pages copied per step; between steps the source database is free for its writers.
const PAGES_PER_STEP: std::ffi::c_int = 256;
const PAUSE_BETWEEN_STEPS: Duration = Duration::from_millis(5);

fn error(e: rusqlite::Error) -> BackupError {
    BackupError::Database(DriverError::new(ErrorKind::Statement, e.to_string()))
}

pub(crate) fn open_read_only(path: &Path) -> Result<Connection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Refused(format!(
            "the SQLite database {} does not exist",
            path.display()
        )));
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(error)
}

/// `SQLite 3.46.0`.
pub(crate) fn version() -> String {
    format!("SQLite {}", rusqlite::version())
}

/// Copies the database at `source` into `file` (created 0600) with the online backup API and
/// fingerprints the copy.
pub(crate) fn dump(source: &Path, file: &Path, fingerprints: bool) -> Result<Dumped, BackupError> {
    let connection = open_read_only(source)?;
    drop(create_private(file)?);
    {
        let mut destination = Connection::open(file).map_err(error)?;
        let backup = rusqlite::backup::Backup::new(&connection, &mut destination).map_err(error)?;
        backup
            .run_to_completion(PAGES_PER_STEP, PAUSE_BETWEEN_STEPS, None)
            .map_err(error)?;
    }
    let tables = if fingerprints {
        fingerprint::sqlite(&open_read_only(file)?)?
    } else {
        Vec::new()
    };
    let (size, sha256) = checksum(file)?;
    Ok(Dumped {
        size,
        sha256,
        dump_tool: format!("{} online backup", version()),
        tables,
    })
}

/// `PRAGMA integrity_check` on a backup file: `ok`, or SQLite's list of problems.
pub(crate) fn integrity(file: &Path) -> Result<String, BackupError> {
    let connection = open_read_only(file)?;
    let rows: Vec<String> = connection
        .prepare("PRAGMA integrity_check")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(error)?;
    Ok(rows.join("; "))
}

pub(crate) fn fingerprints(file: &Path) -> Result<Vec<TableFingerprint>, BackupError> {
    Ok(fingerprint::sqlite(&open_read_only(file)?)?)
}

/// Replaces the database at `target` with the backup's pages (the online backup API in
/// reverse), waiting up to `busy` for its other users.
pub(crate) fn restore(file: &Path, target: &Path, busy: Duration) -> Result<(), BackupError> {
    let mut connection = Connection::open(target).map_err(error)?;
    connection.busy_timeout(busy).map_err(error)?;
    connection
        .restore(MAIN_DB, file, None::<fn(rusqlite::backup::Progress)>)
        .map_err(error)
}

/// Size and `sha256:<hex>` of a file.
pub(crate) fn checksum(file: &Path) -> Result<(u64, String), BackupError> {
    let mut input = std::fs::File::open(file)
        .map_err(|e| BackupError::io(format!("reading {}", file.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let read = input
            .read(&mut buffer)
            .map_err(|e| BackupError::io(format!("reading {}", file.display()), e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, crate::metadata::sha256_text(hasher)))
}
