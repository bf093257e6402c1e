//! The SQLite driver (bundled SQLite through rusqlite).
//!
//! The run lock is an exclusive OS file lock on `<database>.safeshift-lock`, which the kernel
//! releases when the process ends, however it ends. `lock_timeout` becomes SQLite's busy
//! timeout; `statement_timeout` is enforced with a progress handler.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, ffi};

use crate::attempt::{Attempt, no_attempt};
use crate::error::{DriverError, ErrorKind};
use crate::events::{EventRecord, EventsSql, NewEvent, parse_event};
use crate::history::{Failure, HistoryLocation, HistoryRecord, NewRecord, Timeouts};
use crate::history_sql::{Ending, HistorySql, literal, parse_row};
use crate::lock::{LockAttempt, LockHolder, LockRequest, RunLockMode};
use crate::url::{DatabaseUrl, SqliteTarget};
use crate::{AttemptFrame, Canceller, ConnectOptions, Dialect, Driver, Engine, ServerInfo};

/// How often (in SQLite virtual-machine steps) the statement deadline is checked.
const PROGRESS_STEPS: i32 = 1000;
/// Busy timeout for the history's own statements.
const DEFAULT_BUSY: Duration = Duration::from_secs(5);

/// A connection to a SQLite database.
pub struct SqliteDriver {
    connection: Connection,
    redacted_url: String,
    server: ServerInfo,
    location: HistoryLocation,
    sql: HistorySql,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    /// The file did not exist and was not created: the driver reads as an empty database.
    missing: bool,
    lock_file: Option<File>,
    /// Deadline for the running statement, in milliseconds since `epoch`; 0 for none.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    statement_timeout: Duration,
    /// The attempt in progress.
    attempt: Option<Attempt>,
}

impl SqliteDriver {
    pub fn connect(
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<SqliteDriver, DriverError> {
        let target = url.sqlite_target(&options.base_dir).ok_or_else(|| {
            DriverError::new(
                ErrorKind::InvalidUrl,
                format!("`{url}` is not a SQLite URL"),
            )
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let (connection, path, missing) = match target {
            SqliteTarget::Memory => (Connection::open_in_memory(), None, false),
            SqliteTarget::File(path) if !options.create && !path.exists() => {
                (Connection::open_in_memory(), Some(path), true)
            }
            SqliteTarget::File(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                    && !parent.is_dir()
                {
                    return Err(DriverError::new(
                        ErrorKind::Connect,
                        format!(
                            "cannot open {}: the directory {} does not exist",
                            path.display(),
                            parent.display()
                        ),
                    )
                    .with_hint("create the directory, or fix the path in the sqlite:// URL"));
                }
                (Connection::open_with_flags(&path, flags), Some(path), false)
            }
        };
        let mut connection = connection.map_err(|error| {
            DriverError::new(
                ErrorKind::Connect,
                format!("cannot open {}: {error}", url.redacted()),
            )
            .with_hint("check the path and its permissions")
        })?;
        connection
            .busy_timeout(DEFAULT_BUSY)
            .map_err(|e| from_sqlite(&e))?;
        let deadline = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        {
            let deadline = Arc::clone(&deadline);
            connection
                .progress_handler(
                    PROGRESS_STEPS,
                    Some(move || {
                        let until = deadline.load(Ordering::Relaxed);
                        until != 0 && epoch.elapsed().as_millis() as u64 >= until
                    }),
                )
                .map_err(|e| from_sqlite(&e))?;
        }
        let table_name = format!("{}_{}", options.history.schema, options.history.table);
        let quoted_table = format!("\"{}\"", table_name.replace('"', "\"\""));
        let database = match (&path, missing) {
            (Some(path), false) => path.display().to_string(),
            (Some(path), true) => format!("{} (does not exist yet)", path.display()),
            (None, _) => ":memory:".to_owned(),
        };
        Ok(SqliteDriver {
            connection,
            redacted_url: url.redacted().to_owned(),
            server: ServerInfo {
                engine: Engine::Sqlite,
                version: rusqlite::version().to_owned(),
                version_number: rusqlite::version_number() as u32,
                database,
                user: whoami::username().unwrap_or_default(),
            },
            location: options.history.clone(),
            sql: HistorySql::new(Dialect::Sqlite, quoted_table),
            path,
            missing,
            lock_file: None,
            deadline,
            epoch,
            statement_timeout: Duration::ZERO,
            attempt: None,
        })
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    fn lock_path(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|path| {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".safeshift-lock");
            path.with_file_name(name)
        })
    }

    fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
        let mut statement = self.connection.prepare(sql).map_err(|e| from_sqlite(&e))?;
        let columns = statement.column_count();
        let mut rows = statement.query([]).map_err(|e| from_sqlite(&e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| from_sqlite(&e))? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(
                    row.get::<_, Option<String>>(i)
                        .map_err(|e| from_sqlite(&e))?,
                );
            }
            out.push(values);
        }
        Ok(out)
    }

    fn run(&self, sql: &str) -> Result<(), DriverError> {
        self.connection
            .execute_batch(sql)
            .map_err(|e| from_sqlite(&e))
    }

    fn events_table_name(&self) -> String {
        format!("{}_{}_events", self.location.schema, self.location.table)
    }

    fn events_sql(&self) -> EventsSql {
        EventsSql::new(
            Dialect::Sqlite,
            format!("\"{}\"", self.events_table_name().replace('"', "\"\"")),
        )
    }

    fn current_attempt(&self) -> Result<&Attempt, DriverError> {
        self.attempt.as_ref().ok_or_else(no_attempt)
    }

    fn refuse_if_missing(&self) -> Result<(), DriverError> {
        if self.missing {
            let path = self
                .path
                .as_ref()
                .map_or_else(|| self.server.database.clone(), |p| p.display().to_string());
            return Err(DriverError::new(
                ErrorKind::Connect,
                format!("the database file {path} does not exist"),
            )
            .with_hint("run a command that creates it, such as `safeshift up`"));
        }
        Ok(())
    }
}

impl Driver for SqliteDriver {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn server(&self) -> &ServerInfo {
        &self.server
    }

    fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    fn history_location(&self) -> String {
        format!("{}_{}", self.location.schema, self.location.table)
    }

    fn canceller(&self) -> Canceller {
        let handle = self.connection.get_interrupt_handle();
        Arc::new(move || handle.interrupt())
    }

    fn try_lock(&mut self, request: &LockRequest) -> Result<LockAttempt, DriverError> {
        self.refuse_if_missing()?;
        let Some(lock_path) = self.lock_path() else {
            // A private in-memory database has no other users.
            return Ok(LockAttempt::Acquired);
        };
        let io_error = |error: std::io::Error| {
            DriverError::new(
                ErrorKind::Connect,
                format!("cannot use the lock file {}: {error}", lock_path.display()),
            )
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {
                let description = format!(
                    "{} (run {}), since {}",
                    request.holder,
                    request.run_id,
                    chrono::Utc::now().to_rfc3339()
                );
                file.set_len(0).map_err(io_error)?;
                file.rewind().map_err(io_error)?;
                file.write_all(description.as_bytes()).map_err(io_error)?;
                file.flush().map_err(io_error)?;
                self.lock_file = Some(file);
                Ok(LockAttempt::Acquired)
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut description = String::new();
                let _ = file.read_to_string(&mut description);
                Ok(LockAttempt::Busy(Some(LockHolder {
                    description: if description.is_empty() {
                        "another process".into()
                    } else {
                        description
                    },
                    backend_pid: None,
                    since: None,
                    expires_at: None,
                })))
            }
            Err(std::fs::TryLockError::Error(error)) => Err(io_error(error)),
        }
    }

    fn unlock(&mut self) -> Result<(), DriverError> {
        if let Some(file) = self.lock_file.take() {
            let _ = file.set_len(0);
            file.unlock().map_err(|e| {
                DriverError::new(
                    ErrorKind::Connect,
                    format!("cannot release the lock file: {e}"),
                )
            })?;
        }
        Ok(())
    }

    fn lock_holder(&mut self, _mode: RunLockMode) -> Result<Option<LockHolder>, DriverError> {
        if self.lock_file.is_some() {
            return Ok(None);
        }
        let Some(lock_path) = self.lock_path() else {
            return Ok(None);
        };
        let Ok(mut file) = std::fs::File::open(&lock_path) else {
            return Ok(None);
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(None)
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut description = String::new();
                let _ = file.read_to_string(&mut description);
                Ok(Some(LockHolder {
                    description: if description.is_empty() {
                        "another process".into()
                    } else {
                        description
                    },
                    backend_pid: None,
                    since: None,
                    expires_at: None,
                }))
            }
            Err(std::fs::TryLockError::Error(error)) => Err(DriverError::new(
                ErrorKind::Connect,
                format!("cannot read the lock file {}: {error}", lock_path.display()),
            )),
        }
    }

    fn lock_lost(&self) -> Option<String> {
        None
    }

    fn history_exists(&mut self) -> Result<bool, DriverError> {
        let name = format!("{}_{}", self.location.schema, self.location.table);
        let count: i64 = self
            .connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&name],
                |row| row.get(0),
            )
            .map_err(|e| from_sqlite(&e))?;
        Ok(count > 0)
    }

    fn ensure_history(&mut self) -> Result<(), DriverError> {
        self.refuse_if_missing()?;
        let index = format!(
            "\"{}_{}_version_idx\"",
            self.location.schema, self.location.table
        );
        let sql = self.sql.create_table(&index);
        self.run(&sql)
    }

    fn read_history(&mut self) -> Result<Vec<HistoryRecord>, DriverError> {
        if !self.history_exists()? {
            return Ok(Vec::new());
        }
        self.rows(&self.sql.select_all())?
            .iter()
            .map(|row| parse_row(row))
            .collect()
    }

    fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
        self.rows(sql)
    }

    fn append_record(&mut self, record: &NewRecord) -> Result<i64, DriverError> {
        self.refuse_if_missing()?;
        let insert = self.sql.insert(
            record,
            &self.server.user,
            self.sql.now_expression(),
            Ending::AsRecorded,
        );
        self.connection
            .query_row(&insert, [], |row| row.get(0))
            .map_err(|e| from_sqlite(&e))
    }

    fn complete_interrupted(&mut self, id: i64, message: &str) -> Result<(), DriverError> {
        self.run(&self.sql.interrupted(id, message))
    }

    fn begin_attempt(
        &mut self,
        record: &NewRecord,
        timeouts: &Timeouts,
    ) -> Result<(), DriverError> {
        self.refuse_if_missing()?;
        self.attempt = None;
        self.connection
            .busy_timeout(busy_timeout(timeouts.lock_timeout))
            .map_err(|e| from_sqlite(&e))?;
        self.statement_timeout = timeouts.statement_timeout;
        let id = if record.transactional {
            // IMMEDIATE takes the write lock now, so the migration cannot fail half-way on a
            // lock upgrade.
            self.run("BEGIN IMMEDIATE")?;
            None
        } else {
            Some(self.append_record(record)?)
        };
        self.attempt = Some(Attempt {
            record: record.clone(),
            timeouts: *timeouts,
            id,
            started_at: literal(Dialect::Sqlite, &now_text()),
            began: std::time::Instant::now(),
        });
        Ok(())
    }

    fn execute(&mut self, sql: &str) -> Result<(), DriverError> {
        if !self.statement_timeout.is_zero() {
            let until = self.epoch.elapsed() + self.statement_timeout;
            self.deadline
                .store(until.as_millis().max(1) as u64, Ordering::Relaxed);
        }
        let result = (|| {
            let mut statement = self.connection.prepare(sql)?;
            let mut rows = statement.query([])?;
            while rows.next()?.is_some() {}
            Ok::<_, rusqlite::Error>(())
        })();
        let timed_out = self.deadline.swap(0, Ordering::Relaxed) != 0 && result.is_err();
        result.map_err(|error| {
            let mut error = from_sqlite(&error);
            if timed_out && error.kind == ErrorKind::Canceled {
                error.message = format!(
                    "statement_timeout ({} ms) expired",
                    self.statement_timeout.as_millis()
                );
            }
            error
        })
    }

    fn execute_recorded(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError> {
        let progress = self.sql.progress(
            self.current_attempt()?.running_id()?,
            applied,
            applied_checksum,
        );
        self.run("BEGIN IMMEDIATE")?;
        let result = self
            .execute(sql)
            .and_then(|()| self.run(&format!("{progress}; COMMIT")));
        if result.is_err() && !self.connection.is_autocommit() {
            let _ = self.run("ROLLBACK");
        }
        result
    }

    fn record_progress(&mut self, applied: i64, applied_checksum: &str) -> Result<(), DriverError> {
        let id = self.current_attempt()?.running_id()?;
        self.run(&self.sql.progress(id, applied, applied_checksum))
    }

    fn finish_attempt(
        &mut self,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), DriverError> {
        let attempt = self.attempt.take().ok_or_else(no_attempt)?;
        let result = match attempt.id {
            None => {
                let insert = self.sql.insert(
                    &attempt.record,
                    &self.server.user,
                    &attempt.started_at,
                    Ending::Succeeded {
                        applied,
                        applied_checksum,
                        duration,
                    },
                );
                self.run(&format!("{insert}; COMMIT"))
            }
            Some(id) => self.run(&self.sql.succeeded(id, applied, applied_checksum, duration)),
        };
        if result.is_err() && !self.connection.is_autocommit() {
            let _ = self.run("ROLLBACK");
        }
        self.connection
            .busy_timeout(DEFAULT_BUSY)
            .map_err(|e| from_sqlite(&e))?;
        result
    }

    fn fail_attempt(&mut self, failure: &Failure) -> Result<(), DriverError> {
        let attempt = self.attempt.take().ok_or_else(no_attempt)?;
        // Ends the migration's transaction, or one the migration opened itself.
        if !self.connection.is_autocommit() {
            self.run("ROLLBACK")?;
        }
        self.connection
            .busy_timeout(DEFAULT_BUSY)
            .map_err(|e| from_sqlite(&e))?;
        match attempt.id {
            None => self.run(&self.sql.insert(
                &attempt.record,
                &self.server.user,
                &attempt.started_at,
                Ending::Failed(failure),
            )),
            Some(id) => self.run(&self.sql.failed(id, failure)),
        }
    }

    fn timeouts_outside_transactions(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn ensure_events(&mut self) -> Result<(), DriverError> {
        self.refuse_if_missing()?;
        self.run(&self.events_sql().create_table())
    }

    fn append_event(&mut self, event: &NewEvent) -> Result<i64, DriverError> {
        self.refuse_if_missing()?;
        let sql = self.events_sql();
        self.run(&sql.create_table())?;
        self.connection
            .query_row(&sql.insert(event, &self.server.user), [], |row| row.get(0))
            .map_err(|e| from_sqlite(&e))
    }

    fn read_events(&mut self) -> Result<Vec<EventRecord>, DriverError> {
        let name = self.events_table_name();
        let exists = self
            .connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&name],
                |row| row.get::<_, i64>(0),
            )
            .map_err(|e| from_sqlite(&e))?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        self.rows(&self.events_sql().select_all())?
            .iter()
            .map(|row| parse_event(row))
            .collect()
    }

    fn attempt_frame(&self, transactional: bool, timeouts: &Timeouts) -> AttemptFrame {
        let mut before = vec![format!(
            "PRAGMA busy_timeout = {}",
            busy_timeout(timeouts.lock_timeout).as_millis()
        )];
        let mut after = Vec::new();
        if transactional {
            before.push("BEGIN IMMEDIATE".to_owned());
            after.push("COMMIT".to_owned());
        }
        AttemptFrame { before, after }
    }
}

impl Drop for SqliteDriver {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

/// The time now as the history stores it on SQLite (ISO 8601, UTC, milliseconds).
fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// SQLite's busy timeout for a `lock_timeout`: zero means no limit, as in PostgreSQL (SQLite's
/// own zero would mean not waiting at all).
fn busy_timeout(lock_timeout: Duration) -> Duration {
    if lock_timeout.is_zero() {
        Duration::from_millis(i32::MAX as u64)
    } else {
        lock_timeout
    }
}

/// SQLite's name for a result code (`SQLITE_CONSTRAINT_UNIQUE`, `SQLITE_BUSY`, …).
fn result_code_name(extended_code: i32) -> String {
    let primary = match extended_code & 0xff {
        1 => "ERROR",
        2 => "INTERNAL",
        3 => "PERM",
        4 => "ABORT",
        5 => "BUSY",
        6 => "LOCKED",
        7 => "NOMEM",
        8 => "READONLY",
        9 => "INTERRUPT",
        10 => "IOERR",
        11 => "CORRUPT",
        13 => "FULL",
        14 => "CANTOPEN",
        17 => "SCHEMA",
        18 => "TOOBIG",
        19 => "CONSTRAINT",
        20 => "MISMATCH",
        21 => "MISUSE",
        23 => "AUTH",
        25 => "RANGE",
        26 => "NOTADB",
        other => return format!("SQLITE_{other}"),
    };
    let detail = match extended_code {
        275 => "_CHECK",
        531 => "_COMMITHOOK",
        787 => "_FOREIGNKEY",
        1043 => "_FUNCTION",
        1299 => "_NOTNULL",
        1555 => "_PRIMARYKEY",
        1811 => "_TRIGGER",
        2067 => "_UNIQUE",
        2323 => "_VTAB",
        2579 => "_ROWID",
        _ => "",
    };
    format!("SQLITE_{primary}{detail}")
}

/// Classifies a rusqlite error.
fn from_sqlite(error: &rusqlite::Error) -> DriverError {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let kind = match failure.code {
                ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => {
                    ErrorKind::LockTimeout
                }
                ffi::ErrorCode::OperationInterrupted => ErrorKind::Canceled,
                _ => ErrorKind::Statement,
            };
            let text = message.clone().unwrap_or_else(|| failure.to_string());
            DriverError::new(kind, text).with_sqlstate(result_code_name(failure.extended_code))
        }
        other => DriverError::new(ErrorKind::Statement, other.to_string()),
    }
}
