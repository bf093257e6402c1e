//! What can go wrong with a backup, each with what to do next.

use std::path::PathBuf;

use safeshift_driver::DriverError;

/// A failed backup operation. Messages never contain passwords.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },

    #[error(transparent)]
    Database(#[from] DriverError),

    /// A PostgreSQL client program is missing or too old for the server.
    #[error("{0}")]
    ClientProgram(String),

    /// `pg_dump` / `pg_restore` exited with an error.
    #[error("{program} failed: {message}")]
    Tool { program: String, message: String },

    #[error(
        "not enough free space in {}: the database is {} and {} is free",
        dir.display(), crate::space::human_bytes(*needed), crate::space::human_bytes(*available)
    )]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },

    /// The file is not a backup safeshift can read, or its metadata is missing or broken.
    #[error("{}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },

    /// A refusal: a name clash, an unsupported combination.
    #[error("{0}")]
    Refused(String),
}

impl BackupError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> BackupError {
        BackupError::Io {
            context: context.into(),
            source,
        }
    }

    /// A suggestion for what to do next.
    pub fn help(&self) -> Option<String> {
        match self {
            BackupError::ClientProgram(_) => Some(
                "install the PostgreSQL client programs of the server's major version (Debian: \
                 `apt-get install postgresql-client-<major>`), or point SAFESHIFT_PG_BIN at them"
                    .to_owned(),
            ),
            BackupError::NoSpace { .. } => Some(
                "free space there, or write the backup elsewhere with `--backup-dir` or `[backup] dir`"
                    .to_owned(),
            ),
            BackupError::Database(error) => error.hint.clone(),
            _ => None,
        }
    }
}
