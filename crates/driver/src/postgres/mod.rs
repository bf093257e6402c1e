//! The PostgreSQL driver, split by noun: connecting ([`connect`]), the run lock ([`run_lock`]),
//! one migration attempt ([`attempt`]), error classification ([`errors`]), the history and the
//! catalog (here), the events log ([`events`]) and table sizes ([`table_sizes`]). The [`Driver`]
//! methods whose work lives in a noun's module delegate to the inherent method of the same name
//! there.

mod attempt;
mod client_env;
mod connect;
mod errors;
mod events;
mod interrupted;
mod lease;
mod pooler;
mod run_lock;
mod table_sizes;
mod tls;

use std::time::Duration;

use postgres::{Client, SimpleQueryMessage};
use postgres_protocol::escape::escape_identifier;

use crate::Finishing;
use crate::attempt::Attempt;
use crate::error::{DriverError, ErrorKind};
use crate::events::{EventRecord, NewEvent};
use crate::history::{Failure, HistoryLocation, HistoryRecord, NewRecord, Timeouts};
use crate::history_sql::{Ending, HistorySql, literal, parse_row};
use crate::interrupted::InterruptedOutcome;
use crate::lock::{LockAttempt, LockHolder, LockRequest, RunLockMode};
use crate::{AttemptFrame, Canceller, Dialect, Driver, Engine, ServerInfo};

pub use client_env::ClientEnvironment;
pub use errors::classify_postgres_error;
pub(crate) use errors::from_postgres;
use lease::Lease;
pub use table_sizes::{CatalogColumn, TableSize};

/// A connection to PostgreSQL.
pub struct PostgresDriver {
    client: Client,
    config: postgres::Config,
    tls: tls::Connector,
    redacted_url: String,
    server: ServerInfo,
    location: HistoryLocation,
    sql: HistorySql,
    quoted_schema: String,
    quoted_table: String,
    /// The advisory lock key, derived from the history table's name.
    lock_key: i64,
    /// The run holding the advisory lock on this session, when held.
    advisory_owner: Option<String>,
    lease: Option<Lease>,
    /// Session settings are safe: the connection is not shared through a transaction pooler.
    session_state: bool,
    /// The attempt in progress.
    attempt: Option<Attempt>,
    /// The opening of a transactional attempt (`BEGIN` and its timeouts), not sent yet: it goes
    /// in one query string with the attempt's first statement, one round trip fewer per
    /// migration. Whatever else talks to the server during the attempt sends it first
    /// ([`PostgresDriver::flush_prelude`]).
    pending_prelude: Option<String>,
    /// An error from sending the prelude where it could not be returned ([`PostgresDriver::client`]);
    /// the attempt's next statement fails with it.
    prelude_error: Option<DriverError>,
    /// A transactional attempt on this connection has checked the run lock before its first
    /// statement. The first one of a run does (one round trip more), so a connection through a
    /// transaction pooler is refused before anything runs; later ones check before COMMIT.
    lock_checked_up_front: bool,
    /// The server process of this connection (meaningful on a direct connection only).
    backend_pid: Option<i64>,
    /// The duration recorded for the attempt that succeeded last.
    recorded_duration: Option<Duration>,
    /// The connection was probed for a transaction pooler (before the advisory lock is taken).
    pooler_checked: bool,
    /// When this connection began to connect: a server process older than that is not its own.
    connecting: std::time::Instant,
}

impl PostgresDriver {
    /// The underlying client, for callers that need PostgreSQL-specific queries (catalog
    /// lookups). Keep to the simple query protocol if the connection may go through PgBouncer.
    ///
    /// During a transactional attempt the attempt's transaction is open before the client is
    /// handed out. Should opening it fail, the transaction is left aborted (every statement on
    /// the client fails until the attempt is rolled back) and the attempt's next statement
    /// reports why.
    pub fn client(&mut self) -> &mut Client {
        if let Err(error) = self.flush_prelude() {
            self.prelude_error = Some(error);
        }
        &mut self.client
    }

    /// Runs `sql` (one or more statements) through the simple query protocol and returns the
    /// rows of every statement that returns rows, as text (`None` for NULL).
    pub fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
        self.rows(sql)
    }

    /// The PostgreSQL driver behind a `dyn Driver`, if that is what it is.
    pub fn of(db: &dyn Driver) -> Option<&PostgresDriver> {
        db.as_any().downcast_ref()
    }

    /// [`PostgresDriver::of`], mutably.
    pub fn of_mut(db: &mut dyn Driver) -> Option<&mut PostgresDriver> {
        db.as_any_mut().downcast_mut()
    }

    /// The server process this connection's statements run in (the backend pid), so a watcher
    /// on another connection can find what blocks it. `None` when it is not fixed (a connection
    /// through a transaction pooler).
    pub fn session_pid(&self) -> Option<i64> {
        // Through a transaction pooler, statements run on whichever server process is free.
        if self.session_state {
            self.backend_pid
        } else {
            None
        }
    }

    /// Whether an index with this name exists and is INVALID (left by a failed `CREATE INDEX
    /// CONCURRENTLY`).
    pub fn index_is_invalid(
        &mut self,
        schema: Option<&str>,
        name: &str,
    ) -> Result<bool, DriverError> {
        let schema_condition = match schema {
            Some(schema) => format!("n.nspname = {}", literal(Dialect::Postgres, schema)),
            None => "pg_table_is_visible(c.oid)".to_owned(),
        };
        let rows = self.rows(&format!(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = {} AND {schema_condition}",
            literal(Dialect::Postgres, name)
        ))?;
        Ok(rows
            .first()
            .is_some_and(|row| row[0].as_deref() == Some("t")))
    }

    fn run(&mut self, sql: &str) -> Result<(), DriverError> {
        self.flush_prelude()?;
        self.client
            .batch_execute(sql)
            .map_err(|error| from_postgres(&error))
    }

    fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
        self.flush_prelude()?;
        simple_query_rows(&mut self.client, sql)
    }

    fn first_row(&mut self, sql: &str) -> Result<Vec<Option<String>>, DriverError> {
        self.rows(sql)?.into_iter().next().ok_or_else(|| {
            DriverError::new(ErrorKind::Statement, format!("no row returned by: {sql}"))
        })
    }

    /// `CREATE SCHEMA IF NOT EXISTS …;` when the history schema is missing, else nothing: the
    /// statement checks the database's CREATE privilege before it checks whether the schema
    /// exists, so a role that was given only a ready-made schema must not run it.
    fn create_schema_sql(&mut self) -> Result<String, DriverError> {
        let row = self.first_row(&format!(
            "SELECT to_regnamespace({}) IS NOT NULL",
            literal(Dialect::Postgres, &self.quoted_schema)
        ))?;
        Ok(if row[0].as_deref() == Some("t") {
            String::new()
        } else {
            format!("CREATE SCHEMA IF NOT EXISTS {}; ", self.quoted_schema)
        })
    }
}

impl Driver for PostgresDriver {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn server(&self) -> &ServerInfo {
        &self.server
    }

    fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    fn history_location(&self) -> String {
        self.location.display_name()
    }

    fn canceller(&self) -> Canceller {
        let token = self.client.cancel_token();
        let tls = self.tls.clone();
        std::sync::Arc::new(move || {
            tls.cancel(&token);
        })
    }

    fn try_lock(&mut self, request: &LockRequest) -> Result<LockAttempt, DriverError> {
        PostgresDriver::try_lock(self, request)
    }

    fn unlock(&mut self) -> Result<(), DriverError> {
        PostgresDriver::unlock(self)
    }

    fn lock_holder(&mut self, mode: RunLockMode) -> Result<Option<LockHolder>, DriverError> {
        PostgresDriver::lock_holder(self, mode)
    }

    fn lock_lost(&self) -> Option<String> {
        self.lease.as_ref().and_then(Lease::lost)
    }

    fn history_exists(&mut self) -> Result<bool, DriverError> {
        let row = self.first_row(&format!(
            "SELECT to_regclass({}) IS NOT NULL",
            literal(Dialect::Postgres, &self.quoted_table)
        ))?;
        Ok(row[0].as_deref() == Some("t"))
    }

    fn ensure_history(&mut self) -> Result<(), DriverError> {
        if self.history_exists()? {
            return Ok(());
        }
        let index = escape_identifier(&format!("{}_version_idx", self.location.table));
        let sql = format!(
            "{}{}",
            self.create_schema_sql()?,
            self.sql.create_table(&index)
        );
        self.run(&sql)
    }

    fn read_history(&mut self) -> Result<Vec<HistoryRecord>, DriverError> {
        if !self.history_exists()? {
            return Ok(Vec::new());
        }
        let select = self.sql.select_all();
        self.rows(&select)?
            .iter()
            .map(|row| parse_row(row))
            .collect()
    }

    fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
        self.rows(sql)
    }

    fn append_record(&mut self, record: &NewRecord) -> Result<i64, DriverError> {
        let insert = self.sql.insert(
            record,
            &self.server.user.clone(),
            self.sql.now_expression(),
            Ending::AsRecorded,
        );
        let row = self.first_row(&insert)?;
        Ok(row[0]
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_default())
    }

    fn complete_interrupted(&mut self, id: i64, message: &str) -> Result<(), DriverError> {
        let sql = self.sql.interrupted(id, message);
        self.run(&sql)
    }

    fn begin_attempt(
        &mut self,
        record: &NewRecord,
        timeouts: &Timeouts,
    ) -> Result<(), DriverError> {
        PostgresDriver::begin_attempt(self, record, timeouts)
    }

    fn execute(&mut self, sql: &str) -> Result<(), DriverError> {
        PostgresDriver::execute(self, sql)
    }

    fn execute_recorded(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError> {
        PostgresDriver::execute_recorded(self, sql, applied, applied_checksum)
    }

    fn record_progress(&mut self, applied: i64, applied_checksum: &str) -> Result<(), DriverError> {
        PostgresDriver::record_progress(self, applied, applied_checksum)
    }

    fn finish_attempt(
        &mut self,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), DriverError> {
        PostgresDriver::finish_attempt(self, applied, applied_checksum, duration)
    }

    fn execute_and_finish(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), Finishing> {
        PostgresDriver::execute_and_finish(self, sql, applied, applied_checksum, duration)
    }

    fn recorded_duration(&self) -> Option<Duration> {
        self.recorded_duration
    }

    fn fail_attempt(&mut self, failure: &Failure) -> Result<(), DriverError> {
        PostgresDriver::fail_attempt(self, failure)
    }

    fn statement_in_progress(&mut self, sql: &str) -> Result<Option<i64>, DriverError> {
        PostgresDriver::statement_in_progress(self, sql)
    }

    fn interrupted_outcome(&mut self, sql: &str) -> Result<InterruptedOutcome, DriverError> {
        let lock_timeout = self
            .attempt
            .as_ref()
            .map_or(Duration::from_secs(5), |attempt| {
                attempt.timeouts.lock_timeout
            });
        interrupted::inspect(self, sql, lock_timeout)
    }

    fn timeouts_outside_transactions(&self) -> bool {
        self.session_state
    }

    fn ensure_events(&mut self) -> Result<(), DriverError> {
        self.ensure_event_table()
    }

    fn append_event(&mut self, event: &NewEvent) -> Result<i64, DriverError> {
        self.append_event_row(event)
    }

    fn read_events(&mut self) -> Result<Vec<EventRecord>, DriverError> {
        self.read_event_rows()
    }

    fn attempt_frame(&self, transactional: bool, timeouts: &Timeouts) -> AttemptFrame {
        PostgresDriver::attempt_frame(self, transactional, timeouts)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl Drop for PostgresDriver {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

/// The value of the column with this name in the first row that has one.
fn column_value(messages: &[SimpleQueryMessage], column: &str) -> Option<String> {
    messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => {
            let index = row.columns().iter().position(|c| c.name() == column)?;
            row.get(index).map(str::to_owned)
        }
        _ => None,
    })
}

/// The duration a history row inserted in this query string recorded (server-timed).
fn recorded_duration_in(messages: &[SimpleQueryMessage]) -> Option<Duration> {
    column_value(messages, crate::history_sql::RECORDED_DURATION)
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
}

fn first_id(messages: &[SimpleQueryMessage]) -> Result<i64, DriverError> {
    rows_of(messages)
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| DriverError::new(ErrorKind::Statement, "the history insert returned no id"))
}

fn rows_of(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Runs `sql` (one or more statements) on `client` through the simple query protocol and returns
/// the rows of every statement that returns rows, as text (`None` for NULL); errors are classified
/// as the driver classifies its own. For clients from [`PostgresDriver::client`] or
/// [`PostgresDriver::connect_again`].
pub fn simple_query_rows(
    client: &mut Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, DriverError> {
    let messages = client
        .simple_query(sql)
        .map_err(|error| from_postgres(&error))?;
    Ok(rows_of(&messages))
}
