//! Errors from the database, classified so the runner can decide to retry, resume or stop.

use std::fmt;

use serde::Serialize;

use crate::url::redact;

/// What went wrong, as far as the runner cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The URL could not be understood.
    InvalidUrl,
    /// Could not connect (refused, unknown host, authentication, TLS, missing SQLite file…).
    Connect,
    /// The connection broke while in use; the server rolls back any open transaction.
    ConnectionLost,
    /// `lock_timeout` expired (SQLSTATE 55P03) or SQLite stayed busy: worth retrying.
    LockTimeout,
    /// A deadlock was detected (SQLSTATE 40P01): worth retrying.
    Deadlock,
    /// The statement was cancelled: `statement_timeout` or an interrupt.
    Canceled,
    /// The run lock's lease was lost (expired and taken over).
    LockLost,
    /// Any other error reported by the database for a statement.
    Statement,
}

/// An error from the database or the driver. Messages never contain passwords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverError {
    pub kind: ErrorKind,
    pub message: String,
    /// The SQLSTATE code (PostgreSQL), extended result code name (SQLite, `SQLITE_BUSY`) or
    /// error number (MySQL and MariaDB, `MySQL 1054`).
    pub sqlstate: Option<String>,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement, when the server reports one.
    pub position: Option<u32>,
}

impl DriverError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DriverError {
            kind,
            message: redact(&message.into()),
            sqlstate: None,
            detail: None,
            hint: None,
            position: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(redact(&hint.into()));
        self
    }

    pub fn with_sqlstate(mut self, sqlstate: impl Into<String>) -> Self {
        self.sqlstate = Some(sqlstate.into());
        self
    }

    /// Whether running the same thing again later may succeed (lock timeouts, deadlocks).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::LockTimeout | ErrorKind::Deadlock)
    }

    /// The error code as people look it up: `SQLSTATE 42P01`, `SQLITE_BUSY`, `MySQL 1054`.
    pub fn code_label(&self) -> Option<String> {
        self.sqlstate.as_deref().map(code_label)
    }

    /// `SQLSTATE message`, the form stored in the history.
    pub fn summary(&self) -> String {
        match &self.sqlstate {
            Some(code) => format!("{code} {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(label) = self.code_label() {
            write!(f, " ({label})")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, "\ndetail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DriverError {}

/// An error code (as stored in the history) as people look it up: PostgreSQL's five-character
/// SQLSTATEs are named so; SQLite's result code names, MySQL's numbers and safeshift's own
/// codes carry their own prefix.
pub fn code_label(code: &str) -> String {
    let is_sqlstate = code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric());
    if is_sqlstate {
        format!("SQLSTATE {code}")
    } else {
        code.to_owned()
    }
}
