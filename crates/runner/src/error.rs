//! Why a run stopped. Every variant says what happened, where, and what to do next; the CLI maps
//! each to a documented exit code.

use std::path::PathBuf;
use std::time::Duration;

use safeshift_driver::{Direction, DriverError, LockHolder};
use safeshift_source::{SourceError, SourceErrors};

use crate::interrupt::InterruptReason;

/// The code recorded (in place of a SQLSTATE) when safeshift itself refused to run a statement,
/// so a later run can tell a refusal from a statement that ran and failed.
pub(crate) const REFUSED: &str = "safeshift-refused";

/// A file whose checksum no longer matches what was applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChecksumMismatch {
    pub version: String,
    pub file: PathBuf,
    /// The checksum recorded when it was applied (or last repaired).
    pub recorded: String,
    /// The checksum of the file now.
    pub current: String,
}

/// A statement that failed, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedStatement {
    /// 1-based position in the section.
    pub number: usize,
    pub total: usize,
    /// Where the statement starts in its file.
    pub line: u32,
    pub column: u32,
    /// The line the server's error points at (the statement's first line when it gives none).
    pub error_line: u32,
    pub sql: String,
}

/// Why a run stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("the migration files have problems")]
    Source(SourceErrors),

    #[error("{}", .0)]
    Statements(SourceError),

    #[error("{0}")]
    Database(DriverError),

    #[error("timed out after {waited:?} waiting for the run lock")]
    LockTimeout {
        waited: Duration,
        holder: Option<LockHolder>,
    },

    #[error("lost the run lock: {0}")]
    LockLost(String),

    #[error("{} applied migration(s) changed since they were applied", .0.len())]
    ChecksumMismatch(Vec<ChecksumMismatch>),

    #[error("pending migration(s) {} are older than the newest applied version {newest_applied}", .versions.join(", "))]
    OutOfOrder {
        versions: Vec<String>,
        newest_applied: String,
    },

    #[error("{} cannot be rolled back: {}", .0.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>().join(", "), .0.iter().map(|(_, why)| why.as_str()).collect::<Vec<_>>().join("; "))]
    MissingDown(Vec<(String, String)>),

    #[error("{message}")]
    Blocked {
        version: String,
        message: String,
        help: String,
    },

    #[error("migration {version} ({direction}) failed")]
    MigrationFailed {
        version: String,
        file: PathBuf,
        direction: Direction,
        statement: Option<FailedStatement>,
        error: DriverError,
        attempts: u32,
        /// Whether the failure was recorded in the history (it is not when the connection died).
        recorded: bool,
        /// Statements that stay applied (a non-transactional migration keeps what it did).
        applied_statements: usize,
        transactional: bool,
    },

    #[error("interrupted ({reason}){}", .version.as_ref().map(|v| format!(" during migration {v}")).unwrap_or_else(|| " while waiting for the run lock".to_owned()))]
    Interrupted {
        version: Option<String>,
        recorded: bool,
        /// Who asked, and why (`Ctrl-C`, `watchdog: lock wait over 5s`).
        reason: InterruptReason,
    },

    #[error("{0}")]
    Usage(String),
}

impl RunError {
    /// A suggestion for what to do next.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            RunError::Source(_) | RunError::Statements(_) => return None,
            RunError::Database(error) => return error.hint.clone(),
            RunError::LockTimeout { .. } => {
                "another safeshift run holds the lock; wait for it, raise --lock-wait, or check the holder named above".into()
            }
            RunError::LockLost(_) => "nothing more was applied; run `safeshift status`, then `safeshift up` again".into(),
            RunError::ChecksumMismatch(_) => {
                "an applied migration must not be edited; restore the file, or, if the change is intended \
                 (a comment, a fix already made by hand), accept it with `safeshift repair`"
                    .into()
            }
            RunError::OutOfOrder { .. } => {
                "these migrations were probably merged from another branch; check they do not conflict with the \
                 newer ones, then run with --allow-out-of-order"
                    .into()
            }
            RunError::MissingDown(_) => "write the rollback each line above asks for, or restore by other means".into(),
            RunError::Blocked { help, .. } => help.clone(),
            RunError::MigrationFailed {
                transactional,
                applied_statements,
                recorded,
                error,
                ..
            } => {
                let mut help = if *transactional {
                    "the migration's transaction was rolled back: nothing of it was applied. Fix the cause and run \
                     `safeshift up` again"
                        .to_owned()
                } else if *applied_statements > 0 {
                    format!(
                        "the first {applied_statements} statement(s) stay applied (this migration runs without a transaction). \
                         Fix the cause and run `safeshift up` again: it resumes at the failed statement. \
                         If you finished it by hand, `safeshift resolve <version> --applied` records that"
                    )
                } else {
                    "nothing of the migration was applied. Fix the cause and run `safeshift up` again".to_owned()
                };
                if !recorded {
                    help.push_str(
                        ". The failure could not be recorded (the connection was lost); the next run marks the attempt as interrupted",
                    );
                }
                if let Some(hint) = &error.hint {
                    help = format!("{hint}\n{help}");
                }
                help
            }
            RunError::Interrupted { recorded, .. } => {
                if *recorded {
                    "the running statement was cancelled and recorded; run `safeshift up` to continue".into()
                } else {
                    "the next run marks the interrupted attempt in the history; run `safeshift status`".into()
                }
            }
            RunError::Usage(_) => return None,
        })
    }
}

impl From<DriverError> for RunError {
    fn from(error: DriverError) -> Self {
        RunError::Database(error)
    }
}

impl From<SourceErrors> for RunError {
    fn from(errors: SourceErrors) -> Self {
        RunError::Source(errors)
    }
}
