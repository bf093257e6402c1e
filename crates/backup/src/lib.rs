//! Backups for safeshift: take one before changing a database, prove it restores, restore it
//! when something breaks, and keep the directory from filling up.
//!
//! * PostgreSQL: `pg_dump -Fc` of the server's major version (or newer; a clear error names what
//!   is missing), reading the same snapshot in which every table is fingerprinted; `pg_restore`
//!   to restore. Credentials reach the programs through libpq's environment, never their
//!   command line.
//! * MySQL and MariaDB: `mariadb-dump` (or `mysqldump`) `--single-transaction`, restored with
//!   the `mariadb` (or `mysql`) client; credentials go through a 0600 option file.
//! * SQLite: the online backup API.
//!
//! Every backup is a file `{prefix}_{database}_{version}_{timestamp}.dump` (`.sql` for MySQL,
//! `.sqlite3` for SQLite)
//! with a metadata file beside it (`<file>.json`), both created with mode 0600. The version is
//! whatever the caller says the schema version is; this crate knows nothing of migrations.
//!
//! The library returns values and prints nothing.

mod error;
mod fingerprint;
mod metadata;
mod mysql;
mod postgres;
mod restore_watch;
mod retention;
mod space;
mod sqlite;
mod table_sizes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use safeshift_driver::{DatabaseUrl, Driver, Engine, SqliteTarget};

pub use error::BackupError;
pub use fingerprint::{TableFingerprint, TableMismatch, compare};
pub use metadata::{Metadata, VerificationRecord, metadata_path};
pub use postgres::ArchiveContents;
pub use retention::{PruneDecision, Retention};
pub use space::{SpaceCheck, free_bytes, human_bytes};
pub use table_sizes::TableSize;

/// The database a backup is taken from or restored into.
#[derive(Debug, Clone, Copy)]
pub struct Database<'a> {
    pub url: &'a DatabaseUrl,
    /// The directory relative SQLite paths are resolved against (the project's).
    pub base_dir: &'a Path,
}

impl Database<'_> {
    fn sqlite_file(&self) -> Result<PathBuf, BackupError> {
        match self.url.sqlite_target(self.base_dir) {
            Some(SqliteTarget::File(path)) => Ok(path),
            Some(SqliteTarget::Memory) => Err(BackupError::Refused(
                "an in-memory SQLite database cannot be backed up".into(),
            )),
            None => Err(BackupError::Refused(format!(
                "`{}` is not a SQLite URL",
                self.url
            ))),
        }
    }
}

/// How to take a backup.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Where the file goes (created 0700 when missing).
    pub dir: PathBuf,
    /// The file name's first part.
    pub prefix: String,
    /// The schema version to record and put in the name.
    pub schema_version: Option<String>,
    /// `user@host`.
    pub created_by: String,
    /// Fingerprint every table (a count and hash per table, read in the dump's snapshot), so that
    /// `verify --deep` can compare a restored copy. Reads every table once more.
    pub fingerprints: bool,
}

/// A backup file and its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    pub path: PathBuf,
    pub metadata: Metadata,
}

impl Backup {
    /// Reads the backup at `path` (its metadata file must be beside it).
    pub fn open(path: &Path) -> Result<Backup, BackupError> {
        if !path.is_file() {
            return Err(BackupError::Unreadable {
                path: path.to_path_buf(),
                message: "no such backup file".into(),
            });
        }
        Ok(Backup {
            path: path.to_path_buf(),
            metadata: Metadata::read(path)?,
        })
    }

    /// How the history refers to this backup: its file name.
    pub fn reference(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn server_major(&self) -> u32 {
        self.metadata
            .server_version
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// Whether a backup of the database fits in `dir`: the database's size against the free space.
pub fn space_check(database: &Database, dir: &Path) -> Result<SpaceCheck, BackupError> {
    let database_bytes = match database.url.engine() {
        Engine::Postgres => postgres::Connection::open(database.url)?.database_size()?,
        Engine::Sqlite => {
            let file = database.sqlite_file()?;
            std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0)
                + std::fs::metadata(file.with_extension("db-wal"))
                    .map(|m| m.len())
                    .unwrap_or(0)
        }
        Engine::Mysql => mysql::Connection::open(database.url)?.database_size()?,
    };
    Ok(SpaceCheck {
        database_bytes,
        free_bytes: free_bytes(dir)?,
    })
}

/// What a finished dump wrote.
pub(crate) struct Dumped {
    pub size: u64,
    pub sha256: String,
    pub dump_tool: String,
    pub tables: Vec<TableFingerprint>,
}

/// What a backup is taken of, as its file name and metadata tell it.
struct Source {
    engine: &'static str,
    database: String,
    server_version: String,
    /// The bytes the dump is expected to need.
    size: u64,
    extension: &'static str,
}

/// Takes a backup: checks the free space first (refusing with the numbers), writes the file
/// under a temporary name, and renames it when complete, with its metadata beside it.
pub fn create(database: &Database, options: &CreateOptions) -> Result<Backup, BackupError> {
    metadata::ensure_directory(&options.dir)?;
    match database.url.engine() {
        Engine::Postgres => {
            let mut connection = postgres::Connection::open(database.url)?;
            let server = connection.driver.server().clone();
            let source = Source {
                engine: "postgres",
                database: server.database,
                server_version: server.version,
                size: connection.database_size()?,
                extension: "dump",
            };
            write(database, options, source, |file| {
                postgres::dump(&mut connection, file, options.fingerprints)
            })
        }
        Engine::Sqlite => {
            let file = database.sqlite_file()?;
            let source = Source {
                engine: "sqlite",
                database: file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "database".into()),
                server_version: rusqlite::version().to_owned(),
                size: std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
                extension: "sqlite3",
            };
            write(database, options, source, |partial| {
                sqlite::dump(&file, partial, options.fingerprints)
            })
        }
        Engine::Mysql => {
            let mut connection = mysql::Connection::open(database.url)?;
            let server = connection.driver.server().clone();
            let source = Source {
                engine: "mysql",
                database: server.database,
                server_version: server.version,
                size: connection.database_size()?,
                extension: "sql",
            };
            write(database, options, source, |file| {
                mysql::dump(&mut connection, file, options.fingerprints)
            })
        }
    }
}

/// The part of [`create`] every engine shares: the free-space check, the file's name, `dump`
/// into a temporary file (removed if it fails), and the metadata.
fn write(
    database: &Database,
    options: &CreateOptions,
    source: Source,
    dump: impl FnOnce(&Path) -> Result<Dumped, BackupError>,
) -> Result<Backup, BackupError> {
    let available = free_bytes(&options.dir)?;
    if available < source.size {
        return Err(BackupError::NoSpace {
            dir: options.dir.clone(),
            needed: source.size,
            available,
        });
    }
    let created_at = Utc::now();
    let name = metadata::file_name(
        &options.prefix,
        &source.database,
        options.schema_version.as_deref(),
        created_at,
        source.extension,
    );
    let path = options.dir.join(&name);
    let partial = options.dir.join(format!(".{name}.partial"));
    let dumped = dump(&partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    finish(
        &partial,
        path,
        Metadata {
            format: metadata::FORMAT,
            engine: source.engine.into(),
            database: source.database,
            source: database.url.redacted().to_owned(),
            server_version: source.server_version,
            schema_version: options.schema_version.clone(),
            created_at,
            created_by: options.created_by.clone(),
            tool_version: tool_version(),
            dump_tool: dumped.dump_tool,
            size_bytes: dumped.size,
            sha256: dumped.sha256,
            tables: dumped.tables,
            verified: None,
        },
    )
}

fn finish(partial: &Path, path: PathBuf, metadata: Metadata) -> Result<Backup, BackupError> {
    if path.exists() {
        let _ = std::fs::remove_file(partial);
        return Err(BackupError::Refused(format!(
            "{} already exists",
            path.display()
        )));
    }
    metadata.write(&path)?;
    std::fs::rename(partial, &path)
        .map_err(|e| BackupError::io(format!("renaming {}", partial.display()), e))?;
    Ok(Backup { path, metadata })
}

fn tool_version() -> String {
    format!("safeshift {}", env!("CARGO_PKG_VERSION"))
}

/// Every backup in `dir` (files with a metadata file beside them), newest first. Files whose
/// metadata cannot be read come back as errors beside the list.
pub fn list(dir: &Path) -> Result<(Vec<Backup>, Vec<BackupError>), BackupError> {
    let mut backups = Vec::new();
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((backups, problems));
        }
        Err(error) => {
            return Err(BackupError::io(format!("reading {}", dir.display()), error));
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_backup = [".dump", ".sql", ".sqlite3"]
            .iter()
            .any(|extension| name.ends_with(extension));
        if name.starts_with('.') || !is_backup {
            continue;
        }
        match Backup::open(&path) {
            Ok(backup) => backups.push(backup),
            Err(error) => problems.push(error),
        }
    }
    backups.sort_by_key(|b| std::cmp::Reverse(b.metadata.created_at));
    Ok((backups, problems))
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub file: String,
    /// The file's checksum matches the one recorded when it was taken.
    pub checksum_ok: bool,
    pub expected_sha256: String,
    pub actual_sha256: String,
    /// PostgreSQL: the archive's table of contents, as `pg_restore --list` reads it.
    pub contents: Option<ArchiveContents>,
    /// SQLite: `PRAGMA integrity_check`. MySQL: whether the dump ends with its completion line.
    pub integrity: Option<String>,
    /// With `deep`: the copy restored and compared table by table.
    pub deep: Option<DeepCheck>,
    pub problems: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A restore into a scratch database, compared with the fingerprints taken with the backup.
#[derive(Debug, Clone, Serialize)]
pub struct DeepCheck {
    /// The scratch database (dropped afterwards) or file.
    pub scratch: String,
    pub tables_compared: usize,
    pub mismatches: Vec<TableMismatch>,
}

/// Verifies a backup: its checksum, that its contents read back (`pg_restore --list`, or SQLite's
/// integrity check), and with `deep` (PostgreSQL: a server to restore a scratch copy on) that a
/// restored copy has every table with the recorded row count and content hash. The result is
/// recorded in the backup's metadata.
pub fn verify(backup: &mut Backup, deep: Option<&Database>) -> Result<Verification, BackupError> {
    let (_, actual) = sqlite::checksum(&backup.path)?;
    let mut verification = Verification {
        file: backup.reference(),
        checksum_ok: actual == backup.metadata.sha256,
        expected_sha256: backup.metadata.sha256.clone(),
        actual_sha256: actual,
        contents: None,
        integrity: None,
        deep: None,
        problems: Vec::new(),
    };
    if !verification.checksum_ok {
        verification.problems.push(format!(
            "the file's checksum is {} but {} was recorded when it was taken: the file is damaged or was changed",
            verification.actual_sha256, verification.expected_sha256
        ));
    } else if backup.metadata.engine == "postgres" {
        match postgres::contents(&backup.path, backup.server_major()) {
            Ok(contents) => {
                if contents.entries == 0 {
                    verification
                        .problems
                        .push("pg_restore --list finds no entries in the archive".into());
                }
                verification.contents = Some(contents);
            }
            Err(error) => verification.problems.push(error.to_string()),
        }
        if verification.problems.is_empty()
            && let Some(database) = deep
        {
            let check = deep_postgres(backup, database)?;
            verification.problems.extend(mismatch_problems(&check));
            verification.deep = Some(check);
        }
    } else if backup.metadata.engine == "mysql" {
        let contents = mysql::contents(&backup.path)?;
        verification.integrity = Some(if contents.complete {
            "ok".to_owned()
        } else {
            "incomplete".to_owned()
        });
        if !contents.complete {
            verification
                .problems
                .push("the dump ends before its `-- Dump completed` line: it was cut short".into());
        } else if contents.tables.is_empty() {
            verification
                .problems
                .push("the dump creates no tables".into());
        }
        if verification.problems.is_empty()
            && let Some(database) = deep
        {
            let check = deep_mysql(backup, database)?;
            verification.problems.extend(mismatch_problems(&check));
            verification.deep = Some(check);
        }
    } else {
        let integrity = sqlite::integrity(&backup.path)?;
        if integrity != "ok" {
            verification
                .problems
                .push(format!("SQLite's integrity check reports: {integrity}"));
        }
        verification.integrity = Some(integrity);
        if verification.problems.is_empty() && deep.is_some() {
            let actual = sqlite::fingerprints(&backup.path)?;
            let check = DeepCheck {
                scratch: backup.reference(),
                tables_compared: backup.metadata.tables.len(),
                mismatches: compare(&backup.metadata.tables, &actual),
            };
            verification.problems.extend(mismatch_problems(&check));
            verification.deep = Some(check);
        }
    }
    backup.metadata.verified = Some(VerificationRecord {
        at: Utc::now(),
        deep: verification.deep.is_some(),
        ok: verification.ok(),
        summary: if verification.ok() {
            "ok".to_owned()
        } else {
            verification.problems.join("; ")
        },
    });
    backup.metadata.write(&backup.path)?;
    Ok(verification)
}

fn mismatch_problems(check: &DeepCheck) -> Vec<String> {
    check
        .mismatches
        .iter()
        .map(|m| match (&m.expected, &m.actual) {
            (Some((rows, _)), None) => {
                format!(
                    "{}: missing from the restored copy ({rows} rows expected)",
                    m.table
                )
            }
            (None, Some((rows, _))) => format!(
                "{}: in the restored copy ({rows} rows) but not recorded with the backup",
                m.table
            ),
            (Some((expected, _)), Some((actual, _))) if expected != actual => {
                format!("{}: {actual} rows restored, {expected} recorded", m.table)
            }
            _ => format!("{}: same row count, different content", m.table),
        })
        .collect()
}

/// A deep check compares a restored copy with the fingerprints taken with the backup.
fn refuse_without_fingerprints(backup: &Backup) -> Result<(), BackupError> {
    if backup.metadata.tables.is_empty() {
        return Err(BackupError::Refused(format!(
            "{} was taken without table fingerprints, so a restored copy has nothing to be compared with",
            backup.reference()
        )));
    }
    Ok(())
}

/// A fresh name for the scratch database a deep check restores into.
fn scratch_database_name() -> String {
    format!(
        "safeshift_verify_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn deep_postgres(backup: &Backup, database: &Database) -> Result<DeepCheck, BackupError> {
    refuse_without_fingerprints(backup)?;
    let mut connection = postgres::Connection::open(database.url)?;
    let scratch = scratch_database_name();
    postgres::create_database(&mut connection, &scratch)?;
    let result = (|| {
        let major = connection.major();
        postgres::restore(
            &backup.path,
            &connection.environment.with_database(&scratch),
            major,
            postgres::RestoreInto::Empty,
            Duration::from_secs(60),
            connection.driver.client(),
        )?;
        postgres::fingerprints_of(&connection, &scratch)
    })();
    let dropped = postgres::drop_database(&mut connection, &scratch);
    let actual = result?;
    dropped?;
    Ok(DeepCheck {
        scratch,
        tables_compared: backup.metadata.tables.len(),
        mismatches: compare(&backup.metadata.tables, &actual),
    })
}

/// Restores a MySQL dump into a scratch database on the server and compares its row counts
/// with those the dump holds.
fn deep_mysql(backup: &Backup, database: &Database) -> Result<DeepCheck, BackupError> {
    refuse_without_fingerprints(backup)?;
    let mut connection = mysql::Connection::open(database.url)?;
    let scratch = scratch_database_name();
    connection.create_database(&scratch)?;
    let result = mysql::restore(&connection, &backup.path, &scratch, Duration::from_secs(60))
        .and_then(|()| connection.row_counts(&scratch));
    let dropped = connection.drop_database(&scratch);
    let actual = result?;
    dropped?;
    Ok(DeepCheck {
        scratch,
        tables_compared: backup.metadata.tables.len(),
        mismatches: compare(&backup.metadata.tables, &actual),
    })
}

/// What a restore would replace.
#[derive(Debug, Clone, Serialize)]
pub struct RestorePreview {
    /// The database that will be written (the current one, or the `--to` target).
    pub database: String,
    pub into_new_database: bool,
    /// Tables there now, with their sizes, that the backup replaces.
    pub replaced: Vec<TableSize>,
    /// Tables there now that the backup does not hold: a restore leaves them as they are.
    pub kept: Vec<String>,
    /// Tables the backup holds.
    pub backup_tables: Vec<String>,
}

/// Where a restore writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Over the database itself: what the backup holds is dropped and created again.
    InPlace,
    /// Into a new database on the same server (PostgreSQL) or a new file (SQLite), which must not
    /// exist.
    New(String),
}

/// Shows what a restore would replace, without changing anything.
pub fn restore_preview(
    backup: &Backup,
    database: &Database,
    target: &RestoreTarget,
) -> Result<RestorePreview, BackupError> {
    check_engine(backup, database)?;
    let backup_tables: Vec<String> = if backup.metadata.engine == "postgres" {
        postgres::contents(&backup.path, backup.server_major())?.tables
    } else if backup.metadata.engine == "mysql" {
        mysql::contents(&backup.path)?.tables
    } else {
        sqlite::fingerprints(&backup.path)?
            .into_iter()
            .map(|t| t.table)
            .collect()
    };
    let (name, current): (String, Vec<TableSize>) = match (database.url.engine(), target) {
        (_, RestoreTarget::New(name)) => (name.clone(), Vec::new()),
        (Engine::Postgres, RestoreTarget::InPlace) => {
            let mut connection = postgres::Connection::open(database.url)?;
            let tables = table_sizes::user_tables(&mut connection)?;
            (connection.driver.server().database.clone(), tables)
        }
        (Engine::Sqlite, RestoreTarget::InPlace) => {
            let file = database.sqlite_file()?;
            let tables = if file.is_file() {
                table_sizes::sqlite_tables(&file)?
            } else {
                Vec::new()
            };
            (file.display().to_string(), tables)
        }
        (Engine::Mysql, RestoreTarget::InPlace) => {
            let mut connection = mysql::Connection::open(database.url)?;
            // information_schema's figures are the server's estimates (InnoDB samples pages).
            let tables = connection
                .tables()?
                .into_iter()
                .map(|(table, bytes)| table_sizes::TableSize {
                    table,
                    bytes,
                    exact: false,
                })
                .collect();
            (connection.database(), tables)
        }
    };
    let (replaced, kept): (Vec<_>, Vec<_>) = current
        .into_iter()
        .partition(|table| backup_tables.contains(&table.table));
    Ok(RestorePreview {
        database: name,
        into_new_database: matches!(target, RestoreTarget::New(_)),
        replaced,
        kept: kept.into_iter().map(|table| table.table).collect(),
        backup_tables,
    })
}

fn check_engine(backup: &Backup, database: &Database) -> Result<(), BackupError> {
    if backup.metadata.engine != database.url.engine().as_str() {
        return Err(BackupError::Refused(format!(
            "{} is a {} backup and the database is {}",
            backup.reference(),
            backup.metadata.engine,
            database.url.engine().as_str()
        )));
    }
    Ok(())
}

/// Restores a backup after checking its checksum. In place, PostgreSQL runs `pg_restore --clean
/// --if-exists` in one transaction (all or nothing) and gives up on lock waits after
/// `lock_timeout`; MySQL loads the dump, which drops and creates each table it holds (one by
/// one: MySQL has no transactional DDL); SQLite copies the backup's pages over the database. Returns the database
/// written to (PostgreSQL: its name; SQLite: its path).
pub fn restore(
    backup: &Backup,
    database: &Database,
    target: &RestoreTarget,
    lock_timeout: Duration,
) -> Result<String, BackupError> {
    check_engine(backup, database)?;
    let (_, actual) = sqlite::checksum(&backup.path)?;
    if actual != backup.metadata.sha256 {
        return Err(BackupError::Refused(format!(
            "{} is damaged: its checksum is {actual}, {} was recorded; it was not restored",
            backup.reference(),
            backup.metadata.sha256
        )));
    }
    match database.url.engine() {
        Engine::Postgres => {
            let mut connection = postgres::Connection::open(database.url)?;
            let major = connection.major();
            match target {
                RestoreTarget::InPlace => {
                    let name = connection.driver.server().database.clone();
                    postgres::restore(
                        &backup.path,
                        &connection.environment,
                        major,
                        postgres::RestoreInto::Replace,
                        lock_timeout,
                        connection.driver.client(),
                    )?;
                    Ok(name)
                }
                RestoreTarget::New(name) => {
                    if postgres::database_exists(&mut connection, name)? {
                        return Err(BackupError::Refused(format!(
                            "the database {name} already exists; `--to` restores into a new database only"
                        )));
                    }
                    postgres::create_database(&mut connection, name)?;
                    let restored = postgres::restore(
                        &backup.path,
                        &connection.environment.with_database(name),
                        major,
                        postgres::RestoreInto::Empty,
                        lock_timeout,
                        connection.driver.client(),
                    );
                    if let Err(error) = restored {
                        let _ = postgres::drop_database(&mut connection, name);
                        return Err(error);
                    }
                    Ok(name.clone())
                }
            }
        }
        Engine::Sqlite => match target {
            RestoreTarget::InPlace => {
                let file = database.sqlite_file()?;
                sqlite::restore(&backup.path, &file, lock_timeout)?;
                Ok(file.display().to_string())
            }
            RestoreTarget::New(path) => {
                let path = database.base_dir.join(path);
                if path.exists() {
                    return Err(BackupError::Refused(format!(
                        "{} already exists; `--to` restores into a new file only",
                        path.display()
                    )));
                }
                sqlite::restore(&backup.path, &path, lock_timeout)?;
                Ok(path.display().to_string())
            }
        },
        Engine::Mysql => {
            let mut connection = mysql::Connection::open(database.url)?;
            match target {
                RestoreTarget::InPlace => {
                    let name = connection.database();
                    mysql::restore(&connection, &backup.path, &name, lock_timeout)?;
                    Ok(name)
                }
                RestoreTarget::New(name) => {
                    if connection.database_exists(name)? {
                        return Err(BackupError::Refused(format!(
                            "the database {name} already exists; `--to` restores into a new database only"
                        )));
                    }
                    connection.create_database(name)?;
                    if let Err(error) =
                        mysql::restore(&connection, &backup.path, name, lock_timeout)
                    {
                        let _ = connection.drop_database(name);
                        return Err(error);
                    }
                    Ok(name.clone())
                }
            }
        }
    }
}

/// What `prune` did (or would do, with `dry_run`).
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub decisions: Vec<PruneDecision>,
    pub dry_run: bool,
    pub freed_bytes: u64,
}

/// Deletes the backups (and their metadata) that fall outside `retention`, never the newest
/// verified backup of a database.
pub fn prune(dir: &Path, retention: Retention, dry_run: bool) -> Result<PruneReport, BackupError> {
    let (backups, _) = list(dir)?;
    let decisions = retention::decide(&backups, retention, Utc::now());
    let mut freed_bytes = 0;
    for decision in decisions.iter().filter(|d| d.delete) {
        let Some(backup) = backups.iter().find(|b| b.reference() == decision.file) else {
            continue;
        };
        freed_bytes += backup.metadata.size_bytes;
        if !dry_run {
            std::fs::remove_file(&backup.path)
                .map_err(|e| BackupError::io(format!("deleting {}", backup.path.display()), e))?;
            let _ = std::fs::remove_file(metadata_path(&backup.path));
        }
    }
    Ok(PruneReport {
        decisions,
        dry_run,
        freed_bytes,
    })
}

/// The server version and database name a URL leads to, for messages (connects once).
pub fn describe_server(database: &Database) -> Result<(String, String), BackupError> {
    match database.url.engine() {
        Engine::Postgres => {
            let connection = postgres::Connection::open(database.url)?;
            let server = connection.driver.server();
            Ok((server.version.clone(), server.database.clone()))
        }
        Engine::Sqlite => Ok((
            rusqlite::version().to_owned(),
            database.sqlite_file()?.display().to_string(),
        )),
        Engine::Mysql => {
            let connection = mysql::Connection::open(database.url)?;
            let server = connection.driver.server();
            Ok((server.version.clone(), server.database.clone()))
        }
    }
}
