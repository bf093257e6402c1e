//! The history log's records as stored: one row per attempt to apply, roll back, resolve or
//! repair a migration. Rows are appended; the only update a row ever receives is its own
//! completion (status, progress, error, finish time).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use safeshift_source::Direction;

/// Where the history lives: a schema and table on PostgreSQL; on SQLite, which has no schemas,
/// the table `{schema}_{table}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLocation {
    pub schema: String,
    pub table: String,
}

impl Default for HistoryLocation {
    fn default() -> Self {
        HistoryLocation {
            schema: "safeshift".into(),
            table: "history".into(),
        }
    }
}

impl HistoryLocation {
    /// `schema.table`, for messages.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// Why a row was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// Running a migration's up or down section.
    Migrate,
    /// Marking a version applied or rolled back by hand (`safeshift resolve`).
    Resolve,
    /// Accepting a changed file's new checksum (`safeshift repair`).
    Repair,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Migrate => "migrate",
            RecordKind::Resolve => "resolve",
            RecordKind::Repair => "repair",
        }
    }

    pub fn parse(text: &str) -> Option<RecordKind> {
        Some(match text {
            "migrate" => RecordKind::Migrate,
            "resolve" => RecordKind::Resolve,
            "repair" => RecordKind::Repair,
            _ => return None,
        })
    }
}

/// Where an attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Started and not finished: in progress, or its runner died.
    Running,
    Succeeded,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "running" => Status::Running,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            _ => return None,
        })
    }
}

/// A row of the history, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRecord {
    pub id: i64,
    pub run_id: String,
    pub kind: RecordKind,
    pub version: String,
    pub name: String,
    /// The file, relative to the migrations directory.
    pub file: String,
    pub direction: Direction,
    pub status: Status,
    /// The up section's checksum at the time (for repair rows: the accepted new checksum).
    pub checksum: Option<String>,
    pub transactional: bool,
    pub statements_total: Option<i64>,
    pub statements_applied: i64,
    /// Checksum of the statements applied so far, for resuming a non-transactional migration.
    pub applied_checksum: Option<String>,
    /// 1 for the first try, 2… for retries after lock timeouts.
    pub attempt: i64,
    pub error_sqlstate: Option<String>,
    pub error_message: Option<String>,
    pub error_statement: Option<String>,
    /// Line of the failing statement in its file.
    pub error_line: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// Operating-system user and host of the runner (`deploy@ci-7`).
    pub installed_by: String,
    /// The database role that ran it.
    pub db_user: String,
    pub tool_version: String,
    pub note: Option<String>,
    /// The backup taken before the run, when there was one.
    pub backup_ref: Option<String>,
}

/// A row to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub run_id: String,
    pub kind: RecordKind,
    pub version: String,
    pub name: String,
    pub file: String,
    pub direction: Direction,
    pub status: Status,
    pub checksum: Option<String>,
    pub transactional: bool,
    pub statements_total: Option<i64>,
    /// Statements already applied when the attempt starts (a resumed migration starts past 0).
    pub statements_applied: i64,
    pub applied_checksum: Option<String>,
    pub attempt: i64,
    pub installed_by: String,
    pub tool_version: String,
    pub note: Option<String>,
    pub backup_ref: Option<String>,
}

/// Timeouts set for every migration. Zero disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// How long a statement may wait for a lock before failing (and being retried).
    #[serde(with = "duration_ms")]
    pub lock_timeout: Duration,
    /// How long a statement may run.
    #[serde(with = "duration_ms")]
    pub statement_timeout: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::ZERO,
        }
    }
}

/// How an attempt ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub sqlstate: Option<String>,
    pub message: String,
    pub statement: Option<String>,
    pub line: Option<i64>,
    pub duration: Duration,
}

mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis() as u64)
    }
}
