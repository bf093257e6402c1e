//! What the runner hands back: values the CLI renders as text or JSON.

use chrono::{DateTime, Utc};
use serde::Serialize;

use safeshift_driver::{AttemptFrame, Direction, HistoryRecord};

use crate::error::RunError;

/// `safeshift status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The layout the migrations directory is read in (safeshift's own, goose, Flyway…), and why.
    pub format: safeshift_source::Detection,
    /// The database URL, redacted.
    pub database: String,
    pub engine: &'static str,
    pub server_version: String,
    /// Where the history lives.
    pub history: String,
    pub history_exists: bool,
    /// Another run holds the run lock now: migrations may be applying (found without taking
    /// the lock).
    pub run_in_progress: Option<safeshift_driver::LockHolder>,
    pub entries: Vec<StatusEntry>,
    /// Versions to apply with `up`.
    pub pending: usize,
    pub warnings: Vec<String>,
}

impl StatusReport {
    /// The newest applied version (entries are in version order).
    pub fn newest_applied(&self) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| !e.repeatable)
            .rfind(|e| e.state.is_applied())
            .map(|e| e.version.as_str())
    }
}

/// One version in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub version: String,
    /// A repeatable migration (no number; runs again when its file changes).
    pub repeatable: bool,
    pub name: String,
    /// The up file, relative to the migrations directory; `None` when the file is gone.
    pub file: Option<String>,
    pub state: EntryState,
    pub applied_at: Option<DateTime<Utc>>,
    pub applied_by: Option<String>,
    pub duration_ms: Option<i64>,
    /// The file's checksum now.
    pub checksum: Option<String>,
    /// The checksum recorded when it was applied (or repaired).
    pub recorded_checksum: Option<String>,
    pub has_down: bool,
    pub transactional: Option<bool>,
    pub partial: Option<PartialProgress>,
    pub last_error: Option<LastError>,
    /// Pending, but older than the newest applied version.
    pub out_of_order: bool,
}

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryState {
    Applied,
    /// Applied, and the file changed since.
    Changed,
    /// Applied, and the file is gone.
    FileMissing,
    Pending,
    /// Pending; its last attempt failed and applied nothing.
    Failed,
    /// A non-transactional up migration stopped part-way.
    Partial,
    /// A non-transactional down migration stopped part-way.
    PartiallyRolledBack,
    /// An attempt is marked running: in progress now, or its runner died.
    Running,
    /// A repeatable migration that was applied and whose file changed since: `up` applies it
    /// again.
    Reapply,
}

impl EntryState {
    /// Applied, whether or not its file is still there as it was.
    pub fn is_applied(self) -> bool {
        matches!(
            self,
            EntryState::Applied | EntryState::Changed | EntryState::FileMissing
        )
    }

    /// What `up` runs (again): pending, failed, stopped part-way, or a changed repeatable.
    pub fn runs_on_up(self) -> bool {
        matches!(
            self,
            EntryState::Pending | EntryState::Failed | EntryState::Partial | EntryState::Reapply
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Applied => "applied",
            EntryState::Changed => "changed",
            EntryState::FileMissing => "file missing",
            EntryState::Pending => "pending",
            EntryState::Failed => "failed",
            EntryState::Partial => "partial",
            EntryState::PartiallyRolledBack => "partially rolled back",
            EntryState::Running => "running",
            EntryState::Reapply => "changed, runs again",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PartialProgress {
    pub direction: Direction,
    pub applied: i64,
    pub total: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub at: DateTime<Utc>,
    pub sqlstate: Option<String>,
    pub message: Option<String>,
    pub statement: Option<String>,
    pub line: Option<i64>,
}

/// What `--dry-run` would do.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub direction: Direction,
    pub history: String,
    pub steps: Vec<DryRunStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRunStep {
    pub version: String,
    pub name: String,
    pub file: String,
    pub transactional: bool,
    /// Statements skipped because an earlier attempt applied them.
    pub resume_from: usize,
    pub frame: AttemptFrame,
    pub statements: Vec<DryRunStatement>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRunStatement {
    pub line: u32,
    pub sql: String,
}

/// What `up` or `down` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub migrations: Vec<CompletedMigration>,
    pub lock_waited_ms: u64,
    pub duration_ms: u64,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletedMigration {
    pub version: String,
    pub name: String,
    pub file: String,
    pub direction: Direction,
    pub transactional: bool,
    pub statements: usize,
    pub resumed_from: usize,
    pub attempts: u32,
    pub duration_ms: u64,
}

/// A run that stopped on an error, with what it completed first.
#[derive(Debug, Clone)]
pub struct RunFailure {
    pub completed: RunReport,
    pub error: RunError,
}

impl From<RunError> for RunFailure {
    fn from(error: RunError) -> Self {
        RunFailure {
            completed: RunReport::default(),
            error,
        }
    }
}

/// What `repair` accepted.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub repaired: Vec<crate::error::ChecksumMismatch>,
}

/// A row `resolve` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveReport {
    pub record: HistoryRecord,
}
