//! Database drivers for safeshift: one per engine (PostgreSQL, SQLite, MySQL and MariaDB),
//! behind the [`Driver`] trait.
//!
//! A driver stores the history log, holds the run lock, and runs statements with the
//! transaction handling and timeouts the runner asks for. It decides nothing about ordering,
//! checksums or retries (that is the runner's job) and prints nothing.
//!
//! PostgreSQL is spoken through the simple query protocol only: it carries no named prepared
//! statements, so it works through PgBouncer in transaction pooling, and it is how a
//! non-transactional migration sends one statement at a time. Values are inlined as properly
//! escaped literals.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod attempt;
mod error;
mod events;
mod history;
mod history_sql;
mod interrupted;
mod lease;
mod lock;
mod mysql;
mod postgres;
mod sqlite;
mod url;

pub use error::{DriverError, ErrorKind, code_label};
pub use events::{EventKind, EventOutcome, EventRecord, NewEvent};
pub use history::{
    Direction, Failure, HistoryLocation, HistoryRecord, NewRecord, RecordKind, Status, Timeouts,
};
pub use interrupted::{InterruptedOutcome, Leftover};
pub use lock::{LockAttempt, LockHolder, LockRequest, RunLockMode};
pub use mysql::{ClientOptionFile, MysqlDriver, MysqlFlavor, mysql_rows};
pub use postgres::{
    CatalogColumn, ClientEnvironment, PostgresDriver, TableSize, classify_postgres_error,
    simple_query_rows,
};
pub use safeshift_source::Dialect;
pub use sqlite::SqliteDriver;
pub use url::{DatabaseUrl, Engine, SqliteTarget, redact};

/// What the connected server is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerInfo {
    pub engine: Engine,
    /// `15.18`, `3.54.1`.
    pub version: String,
    /// PostgreSQL's `server_version_num` (150018); SQLite's version number (3054001).
    pub version_number: u32,
    pub database: String,
    pub user: String,
}

/// Cancels whatever statement the driver's connection is running; callable from another thread
/// (a signal handler's thread, a watchdog).
pub type Canceller = Arc<dyn Fn() + Send + Sync>;

/// The statements a driver sends around an attempt's own, as `--dry-run` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttemptFrame {
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Relative SQLite paths are resolved against this directory (the project's).
    pub base_dir: PathBuf,
    /// Shown in `pg_stat_activity`, so a waiting runner can say who holds the lock.
    pub application_name: String,
    pub history: HistoryLocation,
    /// Whether a missing SQLite file may be created. When false, a missing file reads as an
    /// empty database and nothing is written.
    pub create: bool,
    pub connect_timeout: Duration,
    pub lock_mode: RunLockMode,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            base_dir: PathBuf::from("."),
            application_name: format!("safeshift {}", env!("CARGO_PKG_VERSION")),
            history: HistoryLocation::default(),
            create: true,
            connect_timeout: Duration::from_secs(10),
            lock_mode: RunLockMode::Advisory,
        }
    }
}

/// Connects to the database a URL names.
pub fn connect(
    url: &DatabaseUrl,
    options: &ConnectOptions,
) -> Result<Box<dyn Driver>, DriverError> {
    match url.engine() {
        Engine::Postgres => Ok(Box::new(PostgresDriver::connect(url, options)?)),
        Engine::Sqlite => Ok(Box::new(SqliteDriver::connect(url, options)?)),
        Engine::Mysql => Ok(Box::new(MysqlDriver::connect(url, options)?)),
    }
}

/// What failed in [`Driver::execute_and_finish`].
#[derive(Debug)]
pub enum Finishing {
    /// The statement: nothing of the attempt was committed.
    Statement(DriverError),
    /// Completing the attempt: writing its history row, or committing.
    Completion(DriverError),
}

/// [`Driver::execute_and_finish`] as two steps: `execute`, then `finish_attempt`.
pub(crate) fn execute_then_finish<D: Driver + ?Sized>(
    db: &mut D,
    sql: &str,
    applied: i64,
    applied_checksum: &str,
    duration: Duration,
) -> Result<(), Finishing> {
    let started = std::time::Instant::now();
    db.execute(sql).map_err(Finishing::Statement)?;
    db.finish_attempt(applied, applied_checksum, duration + started.elapsed())
        .map_err(Finishing::Completion)
}

/// One database connection, able to keep safeshift's history and run migrations.
///
/// An attempt runs as `begin_attempt`, then `execute` per statement (with `record_progress`
/// after each in a non-transactional attempt), then `finish_attempt` or `fail_attempt`. In a
/// transactional attempt the history row's completion commits together with the statements.
pub trait Driver: Send {
    fn engine(&self) -> Engine;

    fn dialect(&self) -> Dialect {
        match self.engine() {
            Engine::Postgres => Dialect::Postgres,
            Engine::Sqlite => Dialect::Sqlite,
            Engine::Mysql => Dialect::Mysql,
        }
    }

    fn server(&self) -> &ServerInfo;

    /// The URL with its password redacted.
    fn redacted_url(&self) -> &str;

    /// Where the history lives, for messages.
    fn history_location(&self) -> String;

    /// A handle that cancels the running statement from another thread.
    fn canceller(&self) -> Canceller;

    /// Tries once to take the run lock; does not wait.
    fn try_lock(&mut self, request: &LockRequest) -> Result<LockAttempt, DriverError>;

    /// Releases the run lock if held.
    fn unlock(&mut self) -> Result<(), DriverError>;

    /// Who holds the run lock now, found without taking it (for `status`).
    fn lock_holder(&mut self, mode: RunLockMode) -> Result<Option<LockHolder>, DriverError>;

    /// If the lock was held and has since been lost (a lease that could not be renewed), why.
    fn lock_lost(&self) -> Option<String>;

    /// Whether the history table exists (without creating it).
    fn history_exists(&mut self) -> Result<bool, DriverError>;

    /// Creates the history table if it does not exist. Call with the run lock held.
    fn ensure_history(&mut self) -> Result<(), DriverError>;

    /// Every history row, oldest first. Empty when the table does not exist.
    fn read_history(&mut self) -> Result<Vec<HistoryRecord>, DriverError>;

    /// The rows of a query outside any attempt, every value as text (`None` for NULL): for
    /// reading the catalog and other tools' tables. On SQLite, cast columns that are not text
    /// (`CAST(x AS TEXT)`).
    fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError>;

    /// Appends a finished row (an audit row from `resolve` or `repair`); returns its id.
    fn append_record(&mut self, record: &NewRecord) -> Result<i64, DriverError>;

    /// Creates the run-events log if it is missing (before a backup, so that the backup holds it).
    fn ensure_events(&mut self) -> Result<(), DriverError>;

    /// Appends a run event (a backup, a restore, a hook, a health check…) to the events log
    /// beside the history, creating the log when it is missing. Returns the row id.
    fn append_event(&mut self, event: &NewEvent) -> Result<i64, DriverError>;

    /// Every run event, oldest first; empty when the log does not exist.
    fn read_events(&mut self) -> Result<Vec<EventRecord>, DriverError>;

    /// Marks a row left `running` by a runner that died as failed, with the reason.
    fn complete_interrupted(&mut self, id: i64, message: &str) -> Result<(), DriverError>;

    /// Starts an attempt. A transactional attempt opens its transaction with the timeouts set
    /// and the run lock checked; its history row is written when it ends (inside the
    /// transaction, on success), so a migration is applied together with its record or not at
    /// all. A non-transactional attempt writes a `running` row at once and records its progress
    /// statement by statement.
    fn begin_attempt(&mut self, record: &NewRecord, timeouts: &Timeouts)
    -> Result<(), DriverError>;

    /// Runs one statement as it is (in the attempt's transaction, if it has one).
    fn execute(&mut self, sql: &str) -> Result<(), DriverError>;

    /// In a non-transactional attempt, runs a statement that may run inside a transaction in a
    /// transaction of its own, with the attempt's timeouts and the run lock checked, and
    /// commits it together with the progress record: the statement counts as applied if and
    /// only if it was.
    fn execute_recorded(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError>;

    /// Records that `applied` statements of a non-transactional attempt are done.
    fn record_progress(&mut self, applied: i64, applied_checksum: &str) -> Result<(), DriverError>;

    /// The duration the history recorded for the attempt that succeeded last, from its start
    /// to its completion row, when the driver knows it. A run reports this one, so that what
    /// `up` prints is what `status` and `history` show.
    fn recorded_duration(&self) -> Option<Duration> {
        None
    }

    /// Completes the attempt as succeeded (committing its transaction, if it has one).
    fn finish_attempt(
        &mut self,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), DriverError>;

    /// In a transactional attempt, runs its last statement and completes the attempt as
    /// succeeded, committing both. PostgreSQL sends the statement, the run lock check, the
    /// history row and the COMMIT in one query string (and, for a migration of one statement,
    /// the BEGIN too: one round trip per migration); the error says whether the statement or
    /// the completion failed. After an error the attempt is still open:
    /// [`Driver::fail_attempt`] rolls it back. `duration` is the attempt's time before the
    /// statement, for engines that cannot time it themselves.
    fn execute_and_finish(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), Finishing> {
        execute_then_finish(self, sql, applied, applied_checksum, duration)
    }

    /// Completes the attempt as failed: rolls back its transaction, if it has one, and records
    /// the error. The recorded progress stays what was committed.
    fn fail_attempt(&mut self, failure: &Failure) -> Result<(), DriverError>;

    /// The server process still running this exact statement for another client (a killed
    /// runner's statement that has not noticed yet), if any. Statements that cannot run in a
    /// transaction are checked before they are run again.
    fn statement_in_progress(&mut self, _sql: &str) -> Result<Option<i64>, DriverError> {
        Ok(None)
    }

    /// What a statement that cannot run in a transaction left in the database, when an
    /// attempt stopped at it (a killed runner, a lost connection, a failure part-way): whether
    /// it finished anyway, stopped half-way, or left something behind. Called during the
    /// resuming attempt, before the statement runs again.
    fn interrupted_outcome(&mut self, _sql: &str) -> Result<InterruptedOutcome, DriverError> {
        Ok(InterruptedOutcome::RunAgain { note: None })
    }

    /// Whether `lock_timeout` and `statement_timeout` can be applied to statements that run
    /// outside a transaction (not through a transaction pooler, where session settings leak).
    fn timeouts_outside_transactions(&self) -> bool;

    /// The statements sent before and after an attempt's own statements (history bookkeeping
    /// aside), for `--dry-run`.
    fn attempt_frame(&self, transactional: bool, timeouts: &Timeouts) -> AttemptFrame;

    /// The driver as its own type, for what only one engine has: [`PostgresDriver::of`] finds
    /// the PostgreSQL driver behind a `dyn Driver` (its catalog, a second session, its server
    /// process), and an engine added later is reached the same way.
    fn as_any(&self) -> &dyn std::any::Any;

    /// [`Driver::as_any`], mutably.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}
