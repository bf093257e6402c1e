//! The one error type of the crate: why a rehearsal (or a snapshot) could not be carried out.
//! A rehearsal that ran and found problems is not an error: its report says so.

use std::path::PathBuf;

use safeshift_driver::DriverError;
use safeshift_pgserver::PgServerError;

/// Why a rehearsal, snapshot or diff could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    /// No throwaway server could be started (binaries missing, start failed).
    #[error(transparent)]
    Server(#[from] PgServerError),

    /// Connecting to, or talking with, a database failed.
    #[error("{context}: {error}")]
    Database {
        /// What was being done.
        context: String,
        /// The driver's error (passwords redacted).
        error: Box<DriverError>,
    },

    /// A catalog query failed (the server is not PostgreSQL 12 or newer, or lacks a privilege).
    #[error("reading the catalog ({what}) failed: {message}")]
    Catalog {
        /// Which part of the catalog.
        what: &'static str,
        /// The server's message.
        message: String,
    },

    /// The migrations could not be read or split into statements.
    #[error(transparent)]
    Source(#[from] safeshift_source::SourceErrors),

    /// The expectations file could not be read or understood.
    #[error("{}: {message}", path.display())]
    Expectations {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// Copying the schema of the real database failed.
    #[error("copying the schema of {source_url} failed: {message}")]
    SchemaCopy {
        /// The database, password redacted.
        source_url: String,
        /// What went wrong, with the tool's output.
        message: String,
    },

    /// A URL or option given by the caller cannot be used.
    #[error("{0}")]
    Usage(String),
}

impl RehearseError {
    pub(crate) fn database(context: impl Into<String>, error: DriverError) -> RehearseError {
        RehearseError::Database {
            context: context.into(),
            error: Box::new(error),
        }
    }
}
