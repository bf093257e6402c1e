//! The MySQL and MariaDB driver, split by noun: connecting ([`connect`]), the run lock
//! ([`run_lock`], [`lease`]), one migration attempt ([`attempt`]), error classification
//! ([`errors`]), the history and the events log (here).
//!
//! MySQL commits the open transaction before and after every DDL statement, so a migration
//! holding DDL cannot be applied together with its history row. The runner runs such a
//! migration statement by statement. On MariaDB this driver sends each DDL statement inside a
//! compound statement (`BEGIN NOT ATOMIC … END`) with its progress record: the server writes
//! the record only if the statement succeeded, and writes it even if the runner was killed
//! meanwhile, so the statement counts as applied if and only if it is recorded. MySQL has no
//! compound statements outside stored programs; there the record follows in the same query
//! string, which the server abandons when the client is gone (see [`attempt`]). Statements that
//! can run in a transaction run in one of their own, committed with their progress record.
//!
//! The history lives in the database the URL names, as the table `{schema}_{table}`
//! (`safeshift_history`): on MySQL a schema is a database, and keeping the history beside the
//! application's tables puts it in the same backups.

mod attempt;
mod connect;
mod errors;
mod lease;
mod option_file;
mod run_lock;

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, Value};

use crate::attempt::Attempt;
use crate::error::DriverError;
use crate::events::{EventRecord, EventsSql, NewEvent, parse_event};
use crate::history::{Failure, HistoryRecord, NewRecord, Timeouts};
use crate::history_sql::{Ending, HistorySql, literal, parse_row};
use crate::lock::{LockAttempt, LockHolder, LockRequest, RunLockMode};
use crate::{AttemptFrame, Canceller, Dialect, Driver, Engine, ServerInfo, TableSize};

pub(crate) use errors::from_mysql;
use lease::Lease;
pub use option_file::ClientOptionFile;
use run_lock::NamedLock;

/// Which server answers: MySQL or MariaDB (their online DDL differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MysqlFlavor {
    Mysql,
    Mariadb,
}

impl MysqlFlavor {
    pub fn name(self) -> &'static str {
        match self {
            MysqlFlavor::Mysql => "MySQL",
            MysqlFlavor::Mariadb => "MariaDB",
        }
    }
}

/// A connection to MySQL or MariaDB.
pub struct MysqlDriver {
    conn: Conn,
    opts: Opts,
    redacted_url: String,
    server: ServerInfo,
    flavor: MysqlFlavor,
    /// The history table's name in the connected database (`safeshift_history`).
    table: String,
    sql: HistorySql,
    /// The `GET_LOCK` name of the run lock, derived from the database and the history table.
    lock_name: String,
    /// The run lock, held by `GET_LOCK` on a connection of its own.
    named_lock: Option<NamedLock>,
    lease: Option<Lease>,
    attempt: Option<Attempt>,
    /// This connection's id (`CONNECTION_ID()`), which `KILL QUERY` and the processlist use.
    connection_id: u32,
}

impl MysqlDriver {
    /// The MySQL driver behind a `dyn Driver`, if that is what it is.
    pub fn of(db: &dyn Driver) -> Option<&MysqlDriver> {
        db.as_any().downcast_ref()
    }

    /// [`MysqlDriver::of`], mutably.
    pub fn of_mut(db: &mut dyn Driver) -> Option<&mut MysqlDriver> {
        db.as_any_mut().downcast_mut()
    }

    /// MySQL or MariaDB.
    pub fn flavor(&self) -> MysqlFlavor {
        self.flavor
    }

    /// The id of the connection migrations run on, as the processlist shows it.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// Runs `sql` (one or more statements) and returns the rows of every statement that
    /// returns rows, every value as text (`None` for NULL).
    pub fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
        rows(&mut self.conn, sql)
    }

    /// A second connection with the same settings (for heartbeats, watchers, backups).
    pub fn connect_again(&self) -> Result<Conn, DriverError> {
        connect::open(&self.opts, &self.redacted_url)
    }

    /// The connection options (host, port, user, password, database), for tools that connect
    /// by themselves (`mariadb-dump`, `pt-online-schema-change`).
    pub fn options(&self) -> &Opts {
        &self.opts
    }

    /// The connection id of another session running this exact statement (a killed runner's
    /// statement the server is still running: MySQL finishes a statement whose client is gone
    /// before it notices), if any. Statements that commit implicitly are checked before they
    /// are run again.
    pub fn statement_in_progress(&mut self, sql: &str) -> Result<Option<i64>, DriverError> {
        let text = literal(Dialect::Mysql, sql);
        // The statement may run inside the compound statement it was sent in.
        let found = self.first_value(&format!(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = DATABASE() \
             AND COMMAND IN ('Query', 'Execute') AND LOCATE({text}, INFO) > 0 LIMIT 1"
        ))?;
        Ok(found.and_then(|id| id.parse().ok()))
    }

    /// Every base table of the database with the server's estimates of its rows and its size
    /// (data and indexes), from `information_schema.TABLES`: no table is opened or locked.
    pub fn table_sizes(&mut self) -> Result<Vec<TableSize>, DriverError> {
        Ok(rows(
            &mut self.conn,
            "SELECT TABLE_NAME, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) \
             FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' \
             ORDER BY TABLE_NAME",
        )?
        .into_iter()
        .map(|row| {
            let number = |i: usize| row[i].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0);
            TableSize {
                schema: None,
                table: row[0].clone().unwrap_or_default(),
                rows: Some(number(1)),
                bytes: number(2),
            }
        })
        .collect())
    }

    fn run(&mut self, sql: &str) -> Result<(), DriverError> {
        rows(&mut self.conn, sql).map(drop)
    }

    fn first_value(&mut self, sql: &str) -> Result<Option<String>, DriverError> {
        Ok(rows(&mut self.conn, sql)?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten()))
    }

    fn table_exists(&mut self, name: &str) -> Result<bool, DriverError> {
        let count = self.first_value(&format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
            literal(Dialect::Mysql, name)
        ))?;
        Ok(count.as_deref() != Some("0"))
    }

    fn events_table(&self) -> String {
        format!("{}_events", self.table)
    }

    fn events_sql(&self) -> EventsSql {
        EventsSql::new(Dialect::Mysql, quote_identifier(&self.events_table()))
    }

    /// Runs an `INSERT` and returns the new row's id.
    fn insert(&mut self, sql: &str) -> Result<i64, DriverError> {
        self.run(sql)?;
        Ok(self.conn.last_insert_id() as i64)
    }
}

impl Driver for MysqlDriver {
    fn engine(&self) -> Engine {
        Engine::Mysql
    }

    fn server(&self) -> &ServerInfo {
        &self.server
    }

    fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    fn history_location(&self) -> String {
        self.table.clone()
    }

    fn canceller(&self) -> Canceller {
        let opts = self.opts.clone();
        let redacted = self.redacted_url.clone();
        let id = self.connection_id;
        std::sync::Arc::new(move || {
            if let Ok(mut conn) = connect::open(&opts, &redacted) {
                let _ = conn.query_drop(format!("KILL QUERY {id}"));
            }
        })
    }

    fn try_lock(&mut self, request: &LockRequest) -> Result<LockAttempt, DriverError> {
        MysqlDriver::try_lock(self, request)
    }

    fn unlock(&mut self) -> Result<(), DriverError> {
        MysqlDriver::unlock(self)
    }

    fn lock_holder(&mut self, mode: RunLockMode) -> Result<Option<LockHolder>, DriverError> {
        MysqlDriver::lock_holder(self, mode)
    }

    fn lock_lost(&self) -> Option<String> {
        match (&self.named_lock, &self.lease) {
            (Some(lock), _) => lock.lost(),
            (None, Some(lease)) => lease.lost(),
            (None, None) => None,
        }
    }

    fn history_exists(&mut self) -> Result<bool, DriverError> {
        let table = self.table.clone();
        self.table_exists(&table)
    }

    fn ensure_history(&mut self) -> Result<(), DriverError> {
        if self.history_exists()? {
            return Ok(());
        }
        let index = quote_identifier(&format!("{}_version_idx", self.table));
        let sql = self.sql.create_table(&index);
        self.run(&sql)
    }

    fn read_history(&mut self) -> Result<Vec<HistoryRecord>, DriverError> {
        if !self.history_exists()? {
            return Ok(Vec::new());
        }
        let select = self.sql.select_all();
        rows(&mut self.conn, &select)?
            .iter()
            .map(|row| parse_row(row))
            .collect()
    }

    fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
        rows(&mut self.conn, sql)
    }

    fn append_record(&mut self, record: &NewRecord) -> Result<i64, DriverError> {
        let insert = self.sql.insert(
            record,
            &self.server.user,
            self.sql.now_expression(),
            Ending::AsRecorded,
        );
        self.insert(&insert)
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
        MysqlDriver::begin_attempt(self, record, timeouts)
    }

    fn execute(&mut self, sql: &str) -> Result<(), DriverError> {
        MysqlDriver::execute(self, sql)
    }

    fn execute_recorded(
        &mut self,
        sql: &str,
        applied: i64,
        applied_checksum: &str,
    ) -> Result<(), DriverError> {
        MysqlDriver::execute_recorded(self, sql, applied, applied_checksum)
    }

    fn record_progress(&mut self, applied: i64, applied_checksum: &str) -> Result<(), DriverError> {
        MysqlDriver::record_progress(self, applied, applied_checksum)
    }

    fn finish_attempt(
        &mut self,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> Result<(), DriverError> {
        MysqlDriver::finish_attempt(self, applied, applied_checksum, duration)
    }

    fn fail_attempt(&mut self, failure: &Failure) -> Result<(), DriverError> {
        MysqlDriver::fail_attempt(self, failure)
    }

    fn statement_in_progress(&mut self, sql: &str) -> Result<Option<i64>, DriverError> {
        MysqlDriver::statement_in_progress(self, sql)
    }

    fn timeouts_outside_transactions(&self) -> bool {
        // Session variables stay with the connection (a proxy such as ProxySQL tracks them).
        true
    }

    fn attempt_frame(&self, transactional: bool, timeouts: &Timeouts) -> AttemptFrame {
        MysqlDriver::attempt_frame(self, transactional, timeouts)
    }

    fn ensure_events(&mut self) -> Result<(), DriverError> {
        let create = self.events_sql().create_table();
        self.run(&create)
    }

    fn append_event(&mut self, event: &NewEvent) -> Result<i64, DriverError> {
        let events = self.events_sql();
        if !self.table_exists(&self.events_table())? {
            self.run(&events.create_table())?;
        }
        let insert = events.insert(event, &self.server.user);
        self.insert(&insert)
    }

    fn read_events(&mut self) -> Result<Vec<EventRecord>, DriverError> {
        if !self.table_exists(&self.events_table())? {
            return Ok(Vec::new());
        }
        let select = self.events_sql().select_all();
        rows(&mut self.conn, &select)?
            .iter()
            .map(|row| parse_event(row))
            .collect()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl Drop for MysqlDriver {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

/// A backtick-quoted identifier.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Runs `sql` (one or more statements) on `conn` through the text protocol and returns the
/// rows of every result set, every value as text (`None` for NULL). Stops at the first
/// statement that fails (the server runs none after it) and returns its error.
pub fn mysql_rows(conn: &mut Conn, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
    rows(conn, sql)
}

fn rows(conn: &mut Conn, sql: &str) -> Result<Vec<Vec<Option<String>>>, DriverError> {
    let error = |e: mysql::Error| from_mysql(&e, Some(sql));
    let mut result = conn.query_iter(sql).map_err(error)?;
    let mut out = Vec::new();
    while let Some(set) = result.iter() {
        for row in set {
            let row = row.map_err(error)?;
            out.push(row.unwrap().into_iter().map(text_of).collect());
        }
    }
    Ok(out)
}

/// A value of the text protocol as text.
fn text_of(value: Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
    }
}
