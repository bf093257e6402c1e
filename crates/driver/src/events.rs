//! The run-events log: what happened around migrations rather than to one of them — a backup
//! taken or restored, a hook run, a health check, a rollback after a failed check, a pre-flight
//! outcome, a watchdog abort. One row per event, appended and never changed.
//!
//! It is a table of its own beside the history (`{schema}.{table}_events`; on SQLite
//! `{schema}_{table}_events`) rather than more rows in the history, because the history's rows
//! are attempts on one migration version and `status` derives the applied set from them: an
//! event has no version, and mixing the two would make every reader of the history filter.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Dialect;
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::literal;

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub run_id: String,
    /// What happened.
    pub kind: EventKind,
    pub outcome: EventOutcome,
    /// The environment (`--env`) the command ran in, if any.
    pub environment: Option<String>,
    /// One line for people.
    pub summary: String,
    /// Details for machines (JSON text), optional.
    pub detail: Option<String>,
    /// The backup the event concerns, if any.
    pub backup_ref: Option<String>,
    pub installed_by: String,
    pub tool_version: String,
    /// When it happened; `None` for now. Given when events are carried over a restore.
    pub at: Option<DateTime<Utc>>,
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A backup taken (and verified) before a run, or by `backup create`.
    Backup,
    /// A backup restored by `backup restore`.
    Restore,
    /// A hook command run before or after a run.
    Hook,
    /// A health check after a run.
    HealthCheck,
    /// The rollback of a run whose health checks failed.
    Rollback,
    /// The pre-flight checks before a run.
    Preflight,
    /// The watchdog aborted a run.
    Watchdog,
    /// A statement an interrupted run stopped at, settled when a later run resumed there:
    /// recorded as applied, finished, or its leftovers dropped.
    Reconcile,
}

impl EventKind {
    /// The name stored in the events log and shown by `history --events`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Backup => "backup",
            EventKind::Restore => "restore",
            EventKind::Hook => "hook",
            EventKind::HealthCheck => "health-check",
            EventKind::Rollback => "rollback",
            EventKind::Preflight => "preflight",
            EventKind::Watchdog => "watchdog",
            EventKind::Reconcile => "reconcile",
        }
    }

    fn parse(text: &str) -> Option<EventKind> {
        [
            EventKind::Backup,
            EventKind::Restore,
            EventKind::Hook,
            EventKind::HealthCheck,
            EventKind::Rollback,
            EventKind::Preflight,
            EventKind::Watchdog,
            EventKind::Reconcile,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventOutcome {
    Succeeded,
    Warning,
    Failed,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Succeeded => "succeeded",
            EventOutcome::Warning => "warning",
            EventOutcome::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<EventOutcome> {
        Some(match text {
            "succeeded" => EventOutcome::Succeeded,
            "warning" => EventOutcome::Warning,
            "failed" => EventOutcome::Failed,
            _ => return None,
        })
    }
}

/// An event as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub id: i64,
    pub run_id: String,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub outcome: EventOutcome,
    pub environment: Option<String>,
    pub summary: String,
    pub detail: Option<String>,
    pub backup_ref: Option<String>,
    pub installed_by: String,
    pub db_user: String,
    pub tool_version: String,
}

/// The events table's SQL in one dialect.
pub(crate) struct EventsSql {
    dialect: Dialect,
    /// The quoted, qualified table name.
    table: String,
}

impl EventsSql {
    pub fn new(dialect: Dialect, quoted_table: String) -> EventsSql {
        EventsSql {
            dialect,
            table: quoted_table,
        }
    }

    pub fn create_table(&self) -> String {
        let (id, timestamp, now) = match self.dialect {
            Dialect::Postgres => (
                "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                "timestamptz",
                "clock_timestamp()",
            ),
            Dialect::Sqlite => (
                "INTEGER PRIMARY KEY AUTOINCREMENT",
                "TEXT",
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            ),
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (
  id           {id},
  run_id       text NOT NULL,
  at           {timestamp} NOT NULL DEFAULT ({now}),
  kind         text NOT NULL,
  outcome      text NOT NULL CHECK (outcome IN ('succeeded', 'warning', 'failed')),
  environment  text,
  summary      text NOT NULL,
  detail       text,
  backup_ref   text,
  installed_by text NOT NULL,
  db_user      text NOT NULL,
  tool_version text NOT NULL
)",
            table = self.table
        )
    }

    pub fn insert(&self, event: &NewEvent, db_user: &str) -> String {
        let optional = |value: Option<&str>| {
            value.map_or_else(|| "NULL".to_owned(), |v| literal(self.dialect, v))
        };
        format!(
            "INSERT INTO {} (run_id, at, kind, outcome, environment, summary, detail, backup_ref, installed_by, db_user, tool_version) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
            self.table,
            literal(self.dialect, &event.run_id),
            match (event.at, self.dialect) {
                (Some(at), Dialect::Postgres) =>
                    format!("{}::timestamptz", literal(self.dialect, &at.to_rfc3339())),
                (Some(at), Dialect::Sqlite) => literal(
                    self.dialect,
                    &at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
                ),
                (None, Dialect::Postgres) => "clock_timestamp()".to_owned(),
                (None, Dialect::Sqlite) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')".to_owned(),
            },
            literal(self.dialect, event.kind.as_str()),
            literal(self.dialect, event.outcome.as_str()),
            optional(event.environment.as_deref()),
            literal(self.dialect, &event.summary),
            optional(event.detail.as_deref()),
            optional(event.backup_ref.as_deref()),
            literal(self.dialect, &event.installed_by),
            literal(self.dialect, db_user),
            literal(self.dialect, &event.tool_version),
        )
    }

    pub fn select_all(&self) -> String {
        let at = match self.dialect {
            Dialect::Postgres => {
                "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
            }
            Dialect::Sqlite => "at",
        };
        let id = match self.dialect {
            Dialect::Postgres => "id::text",
            Dialect::Sqlite => "CAST(id AS TEXT)",
        };
        format!(
            "SELECT {id}, run_id, {at}, kind, outcome, environment, summary, detail, backup_ref, installed_by, db_user, tool_version \
             FROM {} ORDER BY id",
            self.table
        )
    }
}

/// Parses a row read by `select_all`.
pub(crate) fn parse_event(row: &[Option<String>]) -> Result<EventRecord, DriverError> {
    let bad = |column: &str| {
        DriverError::new(
            ErrorKind::Statement,
            format!("the events table holds an unexpected value in `{column}`"),
        )
    };
    if row.len() != 12 {
        return Err(DriverError::new(
            ErrorKind::Statement,
            "the events table does not have the expected columns",
        ));
    }
    let required = |i: usize, column: &str| row[i].clone().ok_or_else(|| bad(column));
    Ok(EventRecord {
        id: required(0, "id")?.parse().map_err(|_| bad("id"))?,
        run_id: required(1, "run_id")?,
        at: DateTime::parse_from_rfc3339(&required(2, "at")?)
            .map_err(|_| bad("at"))?
            .with_timezone(&Utc),
        kind: EventKind::parse(&required(3, "kind")?).ok_or_else(|| bad("kind"))?,
        outcome: EventOutcome::parse(&required(4, "outcome")?).ok_or_else(|| bad("outcome"))?,
        environment: row[5].clone(),
        summary: required(6, "summary")?,
        detail: row[7].clone(),
        backup_ref: row[8].clone(),
        installed_by: required(9, "installed_by")?,
        db_user: required(10, "db_user")?,
        tool_version: required(11, "tool_version")?,
    })
}
