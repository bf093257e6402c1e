//! The PostgreSQL driver.

mod client_env;
mod events;
mod lease;
mod table_sizes;
mod tls;

use std::time::Duration;

use postgres::{Client, SimpleQueryMessage};
use postgres_protocol::escape::escape_identifier;
use sha2::{Digest, Sha256};

use crate::Finishing;
use crate::attempt::{Attempt, no_attempt};
use crate::error::{DriverError, ErrorKind};
use crate::events::{EventRecord, NewEvent};
use crate::history::{Failure, HistoryLocation, HistoryRecord, NewRecord, Timeouts};
use crate::history_sql::{Ending, HistorySql, literal, parse_row};
use crate::lock::{LockAttempt, LockHolder, LockMode, LockRequest};
use crate::url::DatabaseUrl;
use crate::{AttemptFrame, Canceller, ConnectOptions, Dialect, Driver, Engine, ServerInfo};

pub use client_env::ClientEnvironment;
use lease::Lease;
pub use table_sizes::{CatalogColumn, TableSize};

/// The session setting that names the run holding the advisory lock on a session.
const OWNER_SETTING: &str = "safeshift.run_lock_owner";

/// The text of the error a deferred prelude raises when this connection does not hold the run
/// lock (see [`PostgresDriver::raising_fence_expression`]).
const FENCE_MARKER: &str = "safeshift: the run lock is not held by this server connection";

/// `started_at` of a transactional attempt whose prelude is deferred: the transaction's start.
/// Meaningful only inside that transaction; a failure row (written after the rollback) computes
/// the start from the attempt's own clock instead.
const TRANSACTION_START: &str = "now()";

/// Which part of a joined query string an error belongs to.
enum Part {
    Prelude,
    Statement,
    Completion,
}

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
}

impl PostgresDriver {
    /// Connects. `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE` fill in what the
    /// URL leaves out, as with libpq.
    pub fn connect(
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<PostgresDriver, DriverError> {
        let (connection, tls_parameters) = tls::split_tls_parameters(url.expose_secret());
        let mut config: postgres::Config = connection.parse().map_err(|error| {
            DriverError::new(
                ErrorKind::InvalidUrl,
                format!(
                    "`{}` is not a valid PostgreSQL URL: {error}",
                    url.redacted()
                ),
            )
            .with_hint("write it as postgres://user:password@host:5432/database?sslmode=require")
        })?;
        apply_environment_defaults(&mut config);
        if config.get_application_name().is_none() {
            config.application_name(&options.application_name);
        }
        config.connect_timeout(options.connect_timeout);
        let (ssl_mode, tls) = tls::connector(&tls_parameters)?;
        config.ssl_mode(ssl_mode);
        let client = tls.connect(&config).map_err(|error| {
            DriverError::new(ErrorKind::Connect, format!("could not connect to {}: {}", url.redacted(), describe(&error)))
                .with_hint("check that the server is running and that the URL's host, port, user, password and database are right")
        })?;
        let location = options.history.clone();
        let quoted_schema = escape_identifier(&location.schema);
        let quoted_table = format!("{quoted_schema}.{}", escape_identifier(&location.table));
        let mut driver = PostgresDriver {
            client,
            config,
            tls,
            redacted_url: url.redacted().to_owned(),
            server: ServerInfo {
                engine: Engine::Postgres,
                version: String::new(),
                version_number: 0,
                database: String::new(),
                user: String::new(),
            },
            sql: HistorySql::new(Dialect::Postgres, quoted_table.clone()),
            lock_key: advisory_key(&location),
            location,
            quoted_schema,
            quoted_table,
            advisory_owner: None,
            lease: None,
            session_state: options.lock_mode == LockMode::Advisory,
            attempt: None,
            pending_prelude: None,
            prelude_error: None,
            lock_checked_up_front: false,
            backend_pid: None,
        };
        let row = driver.first_row(
            "SELECT current_setting('server_version'), current_setting('server_version_num'), current_database(), current_user, pg_backend_pid()",
        )?;
        driver.server.version = row[0].clone().unwrap_or_default();
        driver.server.version_number = row[1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        driver.server.database = row[2].clone().unwrap_or_default();
        driver.server.user = row[3].clone().unwrap_or_default();
        driver.backend_pid = row[4].as_deref().and_then(|pid| pid.parse().ok());
        if driver.session_state && driver.server.version_number >= 140000 {
            // A killed runner's backend notices within a second and rolls back, instead of
            // finishing a long statement while holding its locks.
            driver.run("SET client_connection_check_interval = 1000")?;
        }
        Ok(driver)
    }

    /// A second connection with the same settings (for heartbeats and watchers).
    pub fn connect_again(&self) -> Result<Client, DriverError> {
        self.tls.connect(&self.config).map_err(|error| {
            DriverError::new(
                ErrorKind::Connect,
                format!(
                    "could not connect to {}: {}",
                    self.redacted_url,
                    describe(&error)
                ),
            )
        })
    }

    /// A connection to another database on the same server, with the same credentials and TLS
    /// (a scratch copy for verifying a backup, the target of a restore).
    pub fn connect_to_database(&self, database: &str) -> Result<Client, DriverError> {
        let mut config = self.config.clone();
        config.dbname(database);
        self.tls.connect(&config).map_err(|error| {
            DriverError::new(
                ErrorKind::Connect,
                format!(
                    "could not connect to database {database} on the server of {}: {}",
                    self.redacted_url,
                    describe(&error)
                ),
            )
        })
    }

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

    /// Sends the deferred prelude of a transactional attempt, if there is one. On an error the
    /// transaction stays open and aborted for `fail_attempt`.
    fn flush_prelude(&mut self) -> Result<(), DriverError> {
        if let Some(error) = self.prelude_error.take() {
            return Err(error);
        }
        let Some(prelude) = self.pending_prelude.take() else {
            return Ok(());
        };
        self.client
            .batch_execute(&prelude)
            .map_err(|error| from_postgres(&error))
    }

    /// Sends `sql` as one query string with the deferred prelude (if any) before it and
    /// `completion` (if any) after it, and says which part an error belongs to. The server
    /// parses the whole string before it runs any of it, so each part must be complete by
    /// itself (see [`complete_statement`]); it stops at the first error, leaving the
    /// transaction aborted.
    fn send_joined(
        &mut self,
        sql: &str,
        completion: Option<&str>,
        completion_checks_the_lock: bool,
    ) -> Result<Vec<SimpleQueryMessage>, (Part, DriverError)> {
        if let Some(error) = self.prelude_error.take() {
            return Err((Part::Prelude, error));
        }
        let prelude = self.pending_prelude.take();
        let mut joined = String::with_capacity(
            prelude.as_ref().map_or(0, String::len)
                + sql.len()
                + completion.map_or(0, str::len)
                + 4,
        );
        if let Some(prelude) = &prelude {
            joined.push_str(prelude);
            joined.push('\n');
        }
        // Positions the server reports count characters from the start of the string.
        let statement_from = joined.chars().count() as u32;
        joined.push_str(sql);
        let statement_to = statement_from + sql.chars().count() as u32;
        if let Some(completion) = completion {
            // The newline ends a trailing `--` comment of the statement.
            joined.push_str("\n;\n");
            joined.push_str(completion);
        }
        match self.client.simple_query(&joined) {
            Ok(messages) => {
                if completion_checks_the_lock {
                    self.check_fence(&messages)
                        .map_err(|e| (Part::Completion, e))?;
                }
                Ok(messages)
            }
            Err(error) => {
                let in_history = error.as_db_error().is_some_and(|db| {
                    db.schema() == Some(self.location.schema.as_str())
                        && db.table() == Some(self.location.table.as_str())
                });
                let mut error = fence_error(from_postgres(&error));
                if error.kind == ErrorKind::LockLost {
                    return Err((Part::Prelude, error));
                }
                let part = match error.position {
                    Some(p) if p <= statement_from => Part::Prelude,
                    Some(p) if p > statement_to => Part::Completion,
                    _ if in_history && completion.is_some() => Part::Completion,
                    // Includes what the server raises at COMMIT (a deferred constraint): it
                    // names no statement, and the last one is where the transaction ended.
                    _ => Part::Statement,
                };
                error.position = match part {
                    Part::Statement => error.position.map(|p| p - statement_from),
                    Part::Prelude | Part::Completion => None,
                };
                Err((part, error))
            }
        }
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

    fn set_session_timeouts(&mut self, timeouts: &Timeouts) -> Result<(), DriverError> {
        self.run(&format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis()
        ))
    }

    fn reset_session_timeouts(&mut self) -> Result<(), DriverError> {
        if self.session_state {
            self.run("RESET lock_timeout; RESET statement_timeout")?;
        }
        Ok(())
    }

    fn advisory_holder(&mut self) -> Result<Option<LockHolder>, DriverError> {
        let key = self.lock_key as u64;
        let rows = self.rows(&format!(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
             coalesce(host(a.client_addr), 'local socket'), \
             to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.classid = {} AND l.objid = {} LIMIT 1",
            key >> 32,
            key & 0xffff_ffff
        ))?;
        Ok(rows.into_iter().next().map(|row| {
            let field = |i: usize| row[i].clone().unwrap_or_default();
            LockHolder {
                description: format!(
                    "{} (database user {} from {}, server pid {})",
                    if field(1).is_empty() {
                        "an unnamed client".to_owned()
                    } else {
                        field(1)
                    },
                    field(2),
                    field(3),
                    field(0)
                ),
                backend_pid: field(0).parse().ok(),
                since: row[4]
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc()),
                expires_at: None,
            }
        }))
    }

    /// Opens a transaction with the attempt's timeouts, reads the server's clock as
    /// `attempt_started`, and checks the run lock, in one round trip.
    fn transaction_prelude(&self, timeouts: &Timeouts) -> String {
        // `set_config(…, true)` is `SET LOCAL`; one SELECT sets the timeouts, reads the clock
        // and checks the advisory lock, so the server parses two statements instead of five.
        let mut select = format!(
            "BEGIN; SELECT set_config('lock_timeout', '{}', true), set_config('statement_timeout', '{}', true), ",
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis()
        );
        if !self.session_state && self.server.version_number >= 140000 {
            select.push_str("set_config('client_connection_check_interval', '1000', true), ");
        }
        select.push_str(
            "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS attempt_started",
        );
        if let Some(held) = self.advisory_fence_expression() {
            select.push_str(", ");
            select.push_str(&held);
        }
        select.push(';');
        if let Some(lease) = &self.lease {
            select.push(' ');
            select.push_str(&lease.renew_sql(&self.quoted_schema, &self.location));
        }
        select
    }

    /// The opening of a transactional attempt that goes in one query string with its first
    /// statement: `BEGIN` and the attempt's timeouts, short and readable, since it leads the
    /// statement's text in `pg_stat_activity`. The run lock is checked at the end, before the
    /// history row and the COMMIT ([`PostgresDriver::completion`]): the transaction
    /// commits only if the lock is held, and rolls back whole otherwise.
    /// Used with the advisory lock only (a direct connection, which already has
    /// `client_connection_check_interval` for the session); the lease renews itself at the start.
    fn deferred_prelude(&self, timeouts: &Timeouts) -> String {
        format!(
            "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {};",
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis()
        )
    }

    /// The end of a transactional attempt: the history row (timed by the server) and the
    /// COMMIT, after the run lock check (which fails the transaction when the lock is not held)
    /// if the attempt was opened by [`PostgresDriver::deferred_prelude`], which checks nothing.
    fn completion(&self, attempt: &Attempt, applied: i64, applied_checksum: &str) -> String {
        let insert = self.sql.insert(
            &attempt.record,
            &self.server.user,
            &attempt.started_at,
            Ending::SucceededTimedByServer {
                applied,
                applied_checksum,
            },
        );
        match self
            .raising_fence_expression()
            .filter(|_| attempt.started_at == TRANSACTION_START)
        {
            Some(fence) => format!("SELECT {fence}; {insert}; COMMIT"),
            None => format!("{insert}; COMMIT"),
        }
    }

    fn current_attempt(&self) -> Result<&Attempt, DriverError> {
        self.attempt.as_ref().ok_or_else(no_attempt)
    }

    /// A statement that returns a `run_lock_held` row only while this connection holds the run
    /// lock, run at the start of every attempt (inside a migration's transaction). For a lease it
    /// renews the lease, and taking the lease row's lock fences off a takeover until the
    /// migration's transaction ends. For the advisory lock it checks that this very backend holds
    /// it: behind a transaction-pooling proxy a statement can land on another server connection,
    /// where the session lock means nothing.
    fn fence_sql(&self) -> Option<String> {
        if let Some(lease) = &self.lease {
            return Some(lease.renew_sql(&self.quoted_schema, &self.location));
        }
        self.advisory_fence_expression()
            .map(|held| format!("SELECT {held}"))
    }

    /// `… AS run_lock_held`, true while this session holds the advisory lock for this run. The
    /// owner setting is set on the session that took the lock and cleared when it is released,
    /// so it stands for the lock without a scan of pg_locks.
    fn advisory_fence_expression(&self) -> Option<String> {
        self.advisory_owner.as_ref().map(|run_id| {
            format!(
                "coalesce(current_setting('{OWNER_SETTING}', true) = {}, false) AS run_lock_held",
                literal(Dialect::Postgres, run_id)
            )
        })
    }

    /// The advisory lock check as an expression that fails the statement, with an error naming
    /// [`FENCE_MARKER`], when this session does not hold the lock: the cast of the marker to
    /// boolean. The condition is not constant, so the planner does not evaluate the cast early.
    fn raising_fence_expression(&self) -> Option<String> {
        self.advisory_owner.as_ref().map(|run_id| {
            format!(
                "(CASE WHEN coalesce(current_setting('{OWNER_SETTING}', true) = {}, false) THEN 'true' ELSE {} END)::boolean AS run_lock_held",
                literal(Dialect::Postgres, run_id),
                literal(Dialect::Postgres, FENCE_MARKER),
            )
        })
    }

    fn check_fence(&mut self, messages: &[SimpleQueryMessage]) -> Result<(), DriverError> {
        let held = column_value(messages, "run_lock_held").is_some_and(|v| v == "t" || v == "1");
        match (held, self.lease.is_some(), self.advisory_owner.is_some()) {
            (true, _, _) | (false, false, false) => Ok(()),
            (false, true, _) => Err(DriverError::new(
                ErrorKind::LockLost,
                "the run lock's lease was lost: it expired and another runner took it over",
            )
            .with_hint(
                "nothing more was applied; run `safeshift status` and then `safeshift up` again",
            )),
            (false, false, true) => Err(advisory_lock_not_held()),
        }
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
        match request.mode {
            LockMode::Advisory => {
                let row = self.first_row(&format!(
                    "SELECT pg_try_advisory_lock({}), coalesce(current_setting('{OWNER_SETTING}', true), '')",
                    self.lock_key
                ))?;
                if row[0].as_deref() != Some("t") {
                    return Ok(LockAttempt::Busy(self.advisory_holder()?));
                }
                // The lock is re-entrant: on a server connection shared through a transaction
                // pooler, another run's lock is "acquired" again. The owner tag gives it away.
                let owner = row[1].clone().unwrap_or_default();
                if !owner.is_empty() && owner != request.run_id {
                    self.run(&format!("SELECT pg_advisory_unlock({})", self.lock_key))?;
                    return Err(DriverError::new(
                        ErrorKind::LockLost,
                        format!(
                            "this server connection already holds the run lock for another run ({owner}): \
                             the connection goes through a transaction-pooling proxy (such as PgBouncer), \
                             where a session advisory lock does not protect anything"
                        ),
                    )
                    .with_hint(
                        "nothing was applied; use `--lock-mode lease` (or `[lock] mode = \"lease\"`) through a \
                         transaction pooler, or connect to the server directly",
                    ));
                }
                self.run(&format!(
                    "SELECT set_config('{OWNER_SETTING}', {}, false)",
                    literal(Dialect::Postgres, &request.run_id)
                ))?;
                self.advisory_owner = Some(request.run_id.clone());
                Ok(LockAttempt::Acquired)
            }
            LockMode::Lease => {
                let exists = self.first_row(&format!(
                    "SELECT to_regclass({}) IS NOT NULL",
                    lease::lock_table_literal(&self.quoted_schema, &self.location)
                ))?;
                if exists[0].as_deref() != Some("t") {
                    let create_schema = self.create_schema_sql()?;
                    self.run(&lease::bootstrap_sql(
                        self.lock_key,
                        &create_schema,
                        &self.quoted_schema,
                        &self.location,
                    ))?;
                }
                // A running migration holds the lease row locked (see `fence_sql`); waiting for
                // it briefly and reporting "busy" keeps this runner polling and able to say who
                // holds the lock.
                let acquire = format!(
                    "BEGIN; SET LOCAL lock_timeout = 1000; {}; COMMIT",
                    lease::acquire_sql(&self.quoted_schema, &self.location, request)
                );
                let rows = match self.rows(&acquire) {
                    Ok(rows) => rows,
                    Err(error) if error.kind == ErrorKind::LockTimeout => {
                        self.run("ROLLBACK")?;
                        Vec::new()
                    }
                    Err(error) => {
                        let _ = self.run("ROLLBACK");
                        return Err(error);
                    }
                };
                if rows.is_empty() {
                    let rows =
                        self.rows(&lease::holder_sql(&self.quoted_schema, &self.location))?;
                    return Ok(LockAttempt::Busy(
                        rows.first().map(|row| lease::holder_from_row(row)),
                    ));
                }
                let heartbeat = self.connect_again()?;
                self.lease = Some(Lease::start(
                    heartbeat,
                    request.run_id.clone(),
                    request.lease,
                    self.quoted_schema.clone(),
                    self.location.clone(),
                ));
                Ok(LockAttempt::Acquired)
            }
        }
    }

    fn unlock(&mut self) -> Result<(), DriverError> {
        // An attempt abandoned before its first statement opened no transaction.
        self.pending_prelude = None;
        self.lock_checked_up_front = false;
        if self.advisory_owner.take().is_some() {
            self.run(&format!(
                "SELECT pg_advisory_unlock({}); SELECT set_config('{OWNER_SETTING}', '', false)",
                self.lock_key
            ))?;
        }
        if let Some(lease) = self.lease.take() {
            let release = lease.release_sql(&self.quoted_schema, &self.location);
            lease.stop();
            self.run(&release)?;
        }
        Ok(())
    }

    fn lock_holder(&mut self, mode: LockMode) -> Result<Option<LockHolder>, DriverError> {
        match mode {
            LockMode::Advisory => self.advisory_holder(),
            LockMode::Lease => {
                let table = lease::lock_table_literal(&self.quoted_schema, &self.location);
                let exists = self.first_row(&format!("SELECT to_regclass({table}) IS NOT NULL"))?;
                if exists[0].as_deref() != Some("t") {
                    return Ok(None);
                }
                let rows =
                    self.rows(&lease::live_holder_sql(&self.quoted_schema, &self.location))?;
                Ok(rows.first().map(|row| lease::holder_from_row(row)))
            }
        }
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
        self.attempt = None;
        self.pending_prelude = None;
        self.prelude_error = None;
        if record.transactional && self.lease.is_none() && self.lock_checked_up_front {
            // Nothing is sent yet: the transaction opens with the first statement.
            self.pending_prelude = Some(self.deferred_prelude(timeouts));
            self.attempt = Some(Attempt {
                record: record.clone(),
                timeouts: *timeouts,
                id: None,
                started_at: TRANSACTION_START.to_owned(),
                began: std::time::Instant::now(),
            });
        } else if record.transactional {
            // With the lease, and for the first transactional attempt with the advisory lock:
            // one round trip opens the transaction with its timeouts, takes the start time from
            // the server, and checks the run lock before any statement runs.
            let messages = match self
                .client
                .simple_query(&self.transaction_prelude(timeouts))
            {
                Ok(messages) => messages,
                Err(error) => {
                    let _ = self.client.batch_execute("ROLLBACK");
                    return Err(from_postgres(&error));
                }
            };
            let started_at = column_value(&messages, "attempt_started")
                .map(|time| literal(Dialect::Postgres, &time))
                .unwrap_or_else(|| self.sql.now_expression().to_owned());
            if let Err(error) = self.check_fence(&messages) {
                let _ = self.run("ROLLBACK");
                let failed = self.sql.insert(
                    record,
                    &self.server.user.clone(),
                    &started_at,
                    Ending::Failed(&Failure {
                        sqlstate: None,
                        message: error.message.clone(),
                        statement: None,
                        line: None,
                        duration: Duration::ZERO,
                    }),
                );
                let _ = self.run(&failed);
                return Err(error);
            }
            self.lock_checked_up_front = true;
            self.attempt = Some(Attempt {
                record: record.clone(),
                timeouts: *timeouts,
                id: None,
                started_at,
                began: std::time::Instant::now(),
            });
        } else {
            let now = self.sql.now_expression();
            let insert =
                self.sql
                    .insert(record, &self.server.user.clone(), now, Ending::AsRecorded);
            let id = first_id(
                &self
                    .client
                    .simple_query(&insert)
                    .map_err(|e| from_postgres(&e))?,
            )?;
            if let Some(fence) = self.fence_sql() {
                let messages = self
                    .client
                    .simple_query(&fence)
                    .map_err(|e| from_postgres(&e))?;
                if let Err(error) = self.check_fence(&messages) {
                    let _ = self.complete_interrupted(id, &error.message);
                    return Err(error);
                }
            }
            if self.session_state {
                self.set_session_timeouts(timeouts)?;
            }
            self.attempt = Some(Attempt {
                record: record.clone(),
                timeouts: *timeouts,
                id: Some(id),
                started_at: now.to_owned(),
                began: std::time::Instant::now(),
            });
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str) -> Result<(), DriverError> {
        if self.pending_prelude.is_some() && complete_statement(sql) {
            // The attempt's first statement opens its transaction.
            return self
                .send_joined(sql, None, false)
                .map(drop)
                .map_err(|(_, e)| e);
        }
        self.run(sql)
    }

    fn execute_recorded(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError> {
        let attempt = self.current_attempt()?;
        let (prelude, progress) = (
            self.transaction_prelude(&attempt.timeouts),
            self.sql
                .progress(attempt.running_id()?, applied, applied_checksum),
        );
        let messages = match self.client.simple_query(&prelude) {
            Ok(messages) => messages,
            Err(error) => {
                let _ = self.client.batch_execute("ROLLBACK");
                return Err(from_postgres(&error));
            }
        };
        let result = self
            .check_fence(&messages)
            .and_then(|()| self.run(sql))
            .and_then(|()| self.run(&format!("{progress}; COMMIT")));
        if result.is_err() {
            let _ = self.client.batch_execute("ROLLBACK");
        }
        result
    }

    fn record_progress(&mut self, applied: i64, applied_checksum: &str) -> Result<(), DriverError> {
        let id = self.current_attempt()?.running_id()?;
        let sql = self.sql.progress(id, applied, applied_checksum);
        self.run(&sql)
    }

    fn finish_attempt(
        &mut self,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), DriverError> {
        let attempt = self.attempt.take().ok_or_else(no_attempt)?;
        match attempt.id {
            None => {
                let completion = self.completion(&attempt, applied, applied_checksum);
                let completed = self.run(&completion).map_err(fence_error);
                if completed.is_err() {
                    // Still open (or already rolled back by the failed COMMIT): `fail_attempt`
                    // rolls it back and records the failure.
                    self.attempt = Some(attempt);
                }
                completed
            }
            Some(id) => {
                let update = self.sql.succeeded(id, applied, applied_checksum, duration);
                self.run(&update)?;
                self.reset_session_timeouts()
            }
        }
    }

    fn execute_and_finish(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), Finishing> {
        let attempt = self.current_attempt().map_err(Finishing::Statement)?;
        // Joined only when the attempt is transactional and the statement complete by itself:
        // a statement the grammar rejects (an unclosed parenthesis, say) is sent alone, for its
        // own error and position.
        if attempt.id.is_some() || !complete_statement(sql) {
            return crate::execute_then_finish(self, sql, applied, applied_checksum, duration);
        }
        let checks_the_lock = attempt.started_at == TRANSACTION_START;
        let completion = self.completion(attempt, applied, applied_checksum);
        match self.send_joined(sql, Some(&completion), checks_the_lock) {
            Ok(_) => {
                self.attempt = None;
                Ok(())
            }
            Err((Part::Completion, error)) => Err(Finishing::Completion(error)),
            Err((Part::Prelude | Part::Statement, error)) => Err(Finishing::Statement(error)),
        }
    }

    fn fail_attempt(&mut self, failure: &Failure) -> Result<(), DriverError> {
        let attempt = self.attempt.take().ok_or_else(no_attempt)?;
        // A prelude never sent opened nothing.
        let never_opened = self.pending_prelude.take().is_some();
        self.prelude_error = None;
        if !never_opened {
            // Ends the migration's transaction, or one the migration opened itself; outside a
            // transaction it only draws a warning.
            self.run("ROLLBACK")?;
        }
        match attempt.id {
            None => {
                let started_at = if attempt.started_at == TRANSACTION_START {
                    format!(
                        "clock_timestamp() - interval '{} milliseconds'",
                        attempt.began.elapsed().as_millis()
                    )
                } else {
                    attempt.started_at.clone()
                };
                let insert = self.sql.insert(
                    &attempt.record,
                    &self.server.user.clone(),
                    &started_at,
                    Ending::Failed(failure),
                );
                self.run(&insert)
            }
            Some(id) => {
                let update = self.sql.failed(id, failure);
                self.run(&update)?;
                self.reset_session_timeouts()
            }
        }
    }

    fn statement_in_progress(&mut self, sql: &str) -> Result<Option<i64>, DriverError> {
        // pg_stat_activity keeps the first track_activity_query_size bytes (1 kB by default).
        let rows = self.rows(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND state <> 'idle' AND left(query, 1000) = left({}, 1000) LIMIT 1",
            literal(Dialect::Postgres, sql)
        ))?;
        Ok(rows
            .first()
            .and_then(|row| row[0].as_deref())
            .and_then(|pid| pid.parse().ok()))
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

    fn session_pid(&self) -> Option<i64> {
        // Through a transaction pooler, statements run on whichever server process is free.
        if self.session_state {
            self.backend_pid
        } else {
            None
        }
    }

    fn attempt_frame(&self, transactional: bool, timeouts: &Timeouts) -> AttemptFrame {
        let (lock, statement) = (
            timeouts.lock_timeout.as_millis(),
            timeouts.statement_timeout.as_millis(),
        );
        if transactional {
            let mut before = vec![
                "BEGIN".to_owned(),
                format!("SET LOCAL lock_timeout = {lock}"),
                format!("SET LOCAL statement_timeout = {statement}"),
            ];
            if !self.session_state && self.server.version_number >= 140000 {
                before.push("SET LOCAL client_connection_check_interval = 1000".to_owned());
            }
            AttemptFrame {
                before,
                after: vec!["COMMIT".to_owned()],
            }
        } else if self.session_state {
            AttemptFrame {
                before: vec![
                    format!("SET lock_timeout = {lock}"),
                    format!("SET statement_timeout = {statement}"),
                ],
                after: vec![
                    "RESET lock_timeout".to_owned(),
                    "RESET statement_timeout".to_owned(),
                ],
            }
        } else {
            AttemptFrame::default()
        }
    }

    fn as_postgres(&mut self) -> Option<&mut PostgresDriver> {
        Some(self)
    }

    fn index_is_invalid(&mut self, schema: Option<&str>, name: &str) -> Result<bool, DriverError> {
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

/// libpq's environment defaults for what the URL leaves out.
fn apply_environment_defaults(config: &mut postgres::Config) {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        config.host(&env("PGHOST").unwrap_or_else(|| "localhost".to_owned()));
    }
    if config.get_ports().is_empty()
        && let Some(port) = env("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .unwrap_or_else(|| whoami::username().unwrap_or_else(|_| "postgres".to_owned()));
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(password) = env("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_dbname().is_none()
        && let Some(database) = env("PGDATABASE")
    {
        config.dbname(&database);
    }
}

/// The advisory lock key: the first 8 bytes of SHA-256 over the history table's name, so two
/// projects with different history tables in one database do not block each other.
fn advisory_key(location: &HistoryLocation) -> i64 {
    let digest =
        Sha256::digest(format!("safeshift:{}.{}", location.schema, location.table).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A readable message for a `postgres` error: the server's message when there is one.
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let text = error.to_string();
            match std::error::Error::source(error) {
                Some(source) if !text.contains(&source.to_string()) => format!("{text}: {source}"),
                _ => text,
            }
        }
    }
}

/// The advisory lock is not held by the server connection a statement ran on.
fn advisory_lock_not_held() -> DriverError {
    DriverError::new(
        ErrorKind::LockLost,
        "the run lock is not held by the server connection this statement ran on: the \
         connection goes through a transaction-pooling proxy (such as PgBouncer), where a \
         session advisory lock does not protect anything",
    )
    .with_hint(
        "nothing was applied; use `--lock-mode lease` (or `[lock] mode = \"lease\"`) through a \
         transaction pooler, or connect to the server directly",
    )
}

/// The error of a raising run lock check ([`FENCE_MARKER`]) as the lock loss it stands for;
/// any other error as it is.
fn fence_error(error: DriverError) -> DriverError {
    if error.message.contains(FENCE_MARKER) {
        advisory_lock_not_held()
    } else {
        error
    }
}

/// Whether `sql` is one complete statement for PostgreSQL's grammar (the raw parser only, a
/// few microseconds), so that it can share a query string with other statements.
fn complete_statement(sql: &str) -> bool {
    pg_query::split_with_parser(sql).is_ok_and(|statements| statements.len() == 1)
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

/// Classifies an error from a `postgres::Client` (from [`PostgresDriver::client`] or
/// [`PostgresDriver::connect_again`]) the way the driver classifies its own.
pub fn classify_postgres_error(error: &postgres::Error) -> DriverError {
    from_postgres(error)
}

/// Classifies a `postgres` error.
pub(crate) fn from_postgres(error: &postgres::Error) -> DriverError {
    let Some(db) = error.as_db_error() else {
        let kind = if error.is_closed()
            || std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
        {
            ErrorKind::ConnectionLost
        } else {
            ErrorKind::Statement
        };
        return DriverError::new(kind, describe(error));
    };
    let code = db.code().code();
    let kind = match code {
        "55P03" => ErrorKind::LockTimeout,
        "40P01" => ErrorKind::Deadlock,
        "57014" => ErrorKind::Canceled,
        "57P01" | "57P02" | "57P03" | "08006" | "08003" => ErrorKind::ConnectionLost,
        _ => ErrorKind::Statement,
    };
    let mut driver_error = DriverError::new(kind, db.message()).with_sqlstate(code);
    driver_error.detail = db.detail().map(str::to_owned);
    driver_error.hint = db.hint().map(str::to_owned);
    driver_error.position = match db.position() {
        Some(postgres::error::ErrorPosition::Original(position)) => Some(*position),
        _ => None,
    };
    driver_error
}
