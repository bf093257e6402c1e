//! The history table's SQL, shared by the drivers: the same columns and statements on every
//! engine, with each dialect's literals, timestamps and booleans. Values are inlined as escaped
//! literals because PostgreSQL is spoken through the simple query protocol.

use std::time::Duration;

use chrono::{DateTime, Utc};
use safeshift_source::Dialect;

use crate::error::{DriverError, ErrorKind};
use crate::history::{Direction, Failure, HistoryRecord, NewRecord, RecordKind, Status};

/// The columns, in the order `select_all` returns them.
const COLUMNS: [&str; 26] = [
    "id",
    "run_id",
    "kind",
    "version",
    "name",
    "file",
    "direction",
    "status",
    "checksum",
    "transactional",
    "statements_total",
    "statements_applied",
    "applied_checksum",
    "attempt",
    "error_sqlstate",
    "error_message",
    "error_statement",
    "error_line",
    "started_at",
    "finished_at",
    "duration_ms",
    "installed_by",
    "db_user",
    "tool_version",
    "note",
    "backup_ref",
];

/// The name under which an inserted history row hands back the duration it recorded (unlikely
/// to be a column of a migration's own last statement, sent in the same query string).
pub(crate) const RECORDED_DURATION: &str = "safeshift_recorded_duration_ms";

/// How a row being inserted ends.
pub(crate) enum Ending<'a> {
    /// As the record says: a `running` row, or a finished audit row.
    AsRecorded,
    /// A finished attempt, written in its own transaction at commit.
    Succeeded {
        applied: i64,
        applied_checksum: &'a str,
        duration: Duration,
    },
    /// A finished attempt written in the same query string as its last statement, so its
    /// duration is measured by the server, from `started_at` to the moment the row is written
    /// (PostgreSQL only).
    SucceededTimedByServer {
        applied: i64,
        applied_checksum: &'a str,
    },
    /// A failed attempt, written after its transaction rolled back.
    Failed(&'a Failure),
}

/// Builds history statements for one table in one dialect.
pub(crate) struct HistorySql {
    dialect: Dialect,
    /// The quoted, qualified table name.
    table: String,
}

impl HistorySql {
    pub fn new(dialect: Dialect, quoted_table: String) -> HistorySql {
        HistorySql {
            dialect,
            table: quoted_table,
        }
    }

    /// A string literal.
    pub fn literal(&self, text: &str) -> String {
        literal(self.dialect, text)
    }

    fn optional(&self, text: Option<&str>) -> String {
        text.map_or_else(|| "NULL".to_owned(), |t| self.literal(t))
    }

    fn now(&self) -> &'static str {
        now(self.dialect)
    }

    fn boolean(&self, value: bool) -> &'static str {
        match (self.dialect, value) {
            (Dialect::Postgres, true) => "true",
            (Dialect::Postgres, false) => "false",
            (Dialect::Sqlite | Dialect::Mysql, true) => "1",
            (Dialect::Sqlite | Dialect::Mysql, false) => "0",
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` for the history, and its index.
    pub fn create_table(&self, index_name: &str) -> String {
        let (id, timestamp, boolean) = match self.dialect {
            Dialect::Postgres => (
                "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                "timestamptz",
                "boolean",
            ),
            Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "INTEGER"),
            // UTC, written with UTC_TIMESTAMP(6): DATETIME keeps no time zone.
            Dialect::Mysql => (
                "bigint AUTO_INCREMENT PRIMARY KEY",
                "datetime(6)",
                "boolean",
            ),
        };
        // MySQL indexes only bounded strings.
        let version = match self.dialect {
            Dialect::Mysql => "varchar(255)",
            Dialect::Postgres | Dialect::Sqlite => "text",
        };
        let now = self.now();
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (
  id                 {id},
  run_id             text NOT NULL,
  kind               text NOT NULL CHECK (kind IN ('migrate', 'resolve', 'repair')),
  version            {version} NOT NULL,
  name               text NOT NULL,
  file               text NOT NULL,
  direction          text NOT NULL CHECK (direction IN ('up', 'down')),
  status             text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  checksum           text,
  transactional      {boolean} NOT NULL,
  statements_total   integer,
  statements_applied integer NOT NULL DEFAULT 0,
  applied_checksum   text,
  attempt            integer NOT NULL DEFAULT 1,
  error_sqlstate     text,
  error_message      text,
  error_statement    text,
  error_line         integer,
  started_at         {timestamp} NOT NULL DEFAULT ({now}),
  finished_at        {timestamp},
  duration_ms        bigint,
  installed_by       text NOT NULL,
  db_user            text NOT NULL,
  tool_version       text NOT NULL,
  note               text,
  backup_ref         text{inline_index}
){options}{index}",
            table = self.table,
            // MySQL has no CREATE INDEX IF NOT EXISTS (MariaDB has): the index is declared
            // with the table.
            inline_index = match self.dialect {
                Dialect::Mysql => format!(",\n  INDEX {index_name} (version, id)"),
                Dialect::Postgres | Dialect::Sqlite => String::new(),
            },
            options = match self.dialect {
                Dialect::Mysql => " ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
                Dialect::Postgres | Dialect::Sqlite => "",
            },
            index = match self.dialect {
                Dialect::Mysql => String::new(),
                Dialect::Postgres | Dialect::Sqlite => format!(
                    ";\nCREATE INDEX IF NOT EXISTS {index_name} ON {table} (version, id)",
                    table = self.table
                ),
            },
        )
    }

    /// `SELECT` of every row, oldest first, every column as text.
    pub fn select_all(&self) -> String {
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|column| match (self.dialect, *column) {
                (Dialect::Postgres, "started_at" | "finished_at") => {
                    format!(
                        "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                    )
                }
                (Dialect::Postgres, _) => column.to_string(),
                (Dialect::Sqlite, _) => format!("CAST({column} AS TEXT)"),
                (Dialect::Mysql, "started_at" | "finished_at") => {
                    format!("DATE_FORMAT({column}, '%Y-%m-%dT%H:%i:%s.%fZ')")
                }
                (Dialect::Mysql, _) => column.to_string(),
            })
            .collect();
        format!(
            "SELECT {} FROM {} ORDER BY id",
            columns.join(", "),
            self.table
        )
    }

    /// `INSERT` of a new row, starting at `started_at` (an SQL expression: `self.now()`, or a
    /// timestamp literal captured when the attempt began), and ending as `ending` says.
    pub fn insert(
        &self,
        record: &NewRecord,
        db_user: &str,
        started_at: &str,
        ending: Ending<'_>,
    ) -> String {
        let now = self.now();
        let null = || "NULL".to_owned();
        let (status, applied, applied_checksum, finished, duration, error) = match ending {
            Ending::AsRecorded if record.status == Status::Running => (
                record.status,
                record.statements_applied,
                self.optional(record.applied_checksum.as_deref()),
                null(),
                null(),
                None,
            ),
            Ending::AsRecorded => (
                record.status,
                record.statements_applied,
                self.optional(record.applied_checksum.as_deref()),
                now.to_owned(),
                "0".to_owned(),
                None,
            ),
            Ending::Succeeded {
                applied,
                applied_checksum,
                duration,
            } => (
                Status::Succeeded,
                applied,
                self.literal(applied_checksum),
                now.to_owned(),
                duration.as_millis().to_string(),
                None,
            ),
            Ending::SucceededTimedByServer {
                applied,
                applied_checksum,
            } => (
                Status::Succeeded,
                applied,
                self.literal(applied_checksum),
                now.to_owned(),
                format!(
                    "greatest(0, round(extract(epoch FROM {now} - ({started_at})::timestamptz) * 1000))::bigint"
                ),
                None,
            ),
            Ending::Failed(failure) => (
                Status::Failed,
                record.statements_applied,
                self.optional(record.applied_checksum.as_deref()),
                now.to_owned(),
                failure.duration.as_millis().to_string(),
                Some(failure),
            ),
        };
        let error_sqlstate = self.optional(error.and_then(|f| f.sqlstate.as_deref()));
        let error_message = self.optional(error.map(|f| f.message.as_str()));
        let error_statement = self.optional(error.and_then(|f| f.statement.as_deref()));
        let error_line = error
            .and_then(|f| f.line)
            .map_or_else(null, |l| l.to_string());
        format!(
            "INSERT INTO {table} (run_id, kind, version, name, file, direction, status, checksum, transactional, \
             statements_total, statements_applied, applied_checksum, attempt, error_sqlstate, error_message, \
             error_statement, error_line, started_at, finished_at, duration_ms, installed_by, db_user, tool_version, \
             note, backup_ref) VALUES \
             ({run_id}, {kind}, {version}, {name}, {file}, {direction}, {status}, {checksum}, {transactional}, \
             {total}, {applied}, {applied_checksum}, {attempt}, {error_sqlstate}, {error_message}, {error_statement}, \
             {error_line}, {started_at}, {finished}, {duration}, {installed_by}, {db_user}, {tool_version}, {note}, \
             {backup_ref}){returning}",
            table = self.table,
            run_id = self.literal(&record.run_id),
            kind = self.literal(record.kind.as_str()),
            version = self.literal(&record.version),
            name = self.literal(&record.name),
            file = self.literal(&record.file),
            direction = self.literal(record.direction.as_str()),
            status = self.literal(status.as_str()),
            checksum = self.optional(record.checksum.as_deref()),
            transactional = self.boolean(record.transactional),
            total = record.statements_total.map_or_else(null, |n| n.to_string()),
            attempt = record.attempt,
            installed_by = self.literal(&record.installed_by),
            db_user = self.literal(db_user),
            tool_version = self.literal(&record.tool_version),
            note = self.optional(record.note.as_deref()),
            backup_ref = self.optional(record.backup_ref.as_deref()),
            returning = returning_record(self.dialect),
        )
    }

    /// The current time as an SQL expression.
    pub fn now_expression(&self) -> &'static str {
        self.now()
    }

    pub fn progress(&self, id: i64, applied: i64, applied_checksum: &str) -> String {
        format!(
            "UPDATE {} SET statements_applied = {applied}, applied_checksum = {} WHERE id = {id}",
            self.table,
            self.literal(applied_checksum)
        )
    }

    pub fn succeeded(
        &self,
        id: i64,
        applied: i64,
        applied_checksum: &str,
        duration: Duration,
    ) -> String {
        format!(
            "UPDATE {} SET status = 'succeeded', statements_applied = {applied}, applied_checksum = {}, \
             finished_at = {}, duration_ms = {} WHERE id = {id}",
            self.table,
            self.literal(applied_checksum),
            self.now(),
            duration.as_millis()
        )
    }

    pub fn failed(&self, id: i64, failure: &Failure) -> String {
        format!(
            "UPDATE {} SET status = 'failed', error_sqlstate = {}, error_message = {}, error_statement = {}, \
             error_line = {}, finished_at = {}, duration_ms = {} WHERE id = {id}",
            self.table,
            self.optional(failure.sqlstate.as_deref()),
            self.literal(&failure.message),
            self.optional(failure.statement.as_deref()),
            failure
                .line
                .map_or_else(|| "NULL".to_owned(), |l| l.to_string()),
            self.now(),
            failure.duration.as_millis()
        )
    }

    pub fn interrupted(&self, id: i64, message: &str) -> String {
        format!(
            "UPDATE {} SET status = 'failed', error_message = {}, finished_at = {} WHERE id = {id} AND status = 'running'",
            self.table,
            self.literal(message),
            self.now()
        )
    }
}

/// The current time as the history stores it.
pub(crate) fn now(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "clock_timestamp()",
        Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        Dialect::Mysql => "UTC_TIMESTAMP(6)",
    }
}

/// What ends an `INSERT` so that it hands back the new row's id: MySQL has no `RETURNING`
/// (MariaDB has), and its driver reads `LAST_INSERT_ID()` instead.
pub(crate) fn returning_id(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres | Dialect::Sqlite => " RETURNING id",
        Dialect::Mysql => "",
    }
}

/// What ends a history row's `INSERT`: its id, and the duration the database recorded (so the
/// run reports what the history says). MySQL has no `RETURNING`: its driver reads
/// `LAST_INSERT_ID()` and times the step itself.
pub(crate) fn returning_record(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres | Dialect::Sqlite => {
            format!(" RETURNING id, duration_ms AS {RECORDED_DURATION}")
        }
        Dialect::Mysql => String::new(),
    }
}

/// A string literal in a dialect. PostgreSQL literals go through `postgres-protocol`'s escaping,
/// which stays correct whatever `standard_conforming_strings` is. On MySQL a backslash is an
/// escape unless the session's `sql_mode` has `NO_BACKSLASH_ESCAPES`, so text holding one (or
/// a quote) is written as hex bytes, which read the same in every mode.
pub(crate) fn literal(dialect: Dialect, text: &str) -> String {
    match dialect {
        Dialect::Postgres => postgres_protocol::escape::escape_literal(text),
        Dialect::Sqlite => format!("'{}'", text.replace('\'', "''")),
        Dialect::Mysql if text.contains(['\\', '\'', '\0']) => {
            let hex: String = text.bytes().map(|b| format!("{b:02X}")).collect();
            format!("CONVERT(X'{hex}' USING utf8mb4)")
        }
        Dialect::Mysql => format!("'{text}'"),
    }
}

/// Parses a row read by `select_all`.
pub(crate) fn parse_row(row: &[Option<String>]) -> Result<HistoryRecord, DriverError> {
    let bad = |column: &str, value: &Option<String>| {
        DriverError::new(
            ErrorKind::Statement,
            format!("the history table holds an unexpected value in `{column}`: {value:?}"),
        )
        .with_hint("the history table was changed by hand or by another tool; compare it with `safeshift history`")
    };
    if row.len() != COLUMNS.len() {
        return Err(DriverError::new(
            ErrorKind::Statement,
            "the history table does not have the expected columns",
        ));
    }
    let text = |i: usize| row[i].clone();
    let required = |i: usize| row[i].clone().ok_or_else(|| bad(COLUMNS[i], &row[i]));
    let integer = |i: usize| -> Result<Option<i64>, DriverError> {
        row[i]
            .as_deref()
            .map(|v| v.parse::<i64>().map_err(|_| bad(COLUMNS[i], &row[i])))
            .transpose()
    };
    let timestamp = |i: usize| -> Result<Option<DateTime<Utc>>, DriverError> {
        row[i]
            .as_deref()
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| bad(COLUMNS[i], &row[i]))
            })
            .transpose()
    };
    Ok(HistoryRecord {
        id: integer(0)?.ok_or_else(|| bad("id", &row[0]))?,
        run_id: required(1)?,
        kind: RecordKind::parse(&required(2)?).ok_or_else(|| bad("kind", &row[2]))?,
        version: required(3)?,
        name: required(4)?,
        file: required(5)?,
        direction: match required(6)?.as_str() {
            "up" => Direction::Up,
            "down" => Direction::Down,
            _ => return Err(bad("direction", &row[6])),
        },
        status: Status::parse(&required(7)?).ok_or_else(|| bad("status", &row[7]))?,
        checksum: text(8),
        transactional: matches!(required(9)?.as_str(), "t" | "true" | "1"),
        statements_total: integer(10)?,
        statements_applied: integer(11)?.unwrap_or(0),
        applied_checksum: text(12),
        attempt: integer(13)?.unwrap_or(1),
        error_sqlstate: text(14),
        error_message: text(15),
        error_statement: text(16),
        error_line: integer(17)?,
        started_at: timestamp(18)?.ok_or_else(|| bad("started_at", &row[18]))?,
        finished_at: timestamp(19)?,
        duration_ms: integer(20)?,
        installed_by: required(21)?,
        db_user: required(22)?,
        tool_version: required(23)?,
        note: text(24),
        backup_ref: text(25),
    })
}
