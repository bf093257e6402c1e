//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Why a throwaway server could not be found, started or cleaned up.
///
/// Every variant says what was being done and, where it helps, what to do next.
#[derive(Debug, thiserror::Error)]
pub enum PgServerError {
    /// No PostgreSQL server binaries (`initdb`, `postgres`) were found.
    #[error("PostgreSQL server binaries not found (looked in: {searched}); {install}")]
    BinariesNotFound {
        /// The directories that were tried, comma-separated.
        searched: String,
        /// What to install, or which variable to set.
        install: String,
    },

    /// A client program such as `pg_dump` was not found in a recent enough version.
    #[error("{program} {wanted} not found (looked in: {searched}); {install}")]
    ClientNotFound {
        /// The program looked for.
        program: String,
        /// The versions that would do, such as `15 or newer`.
        wanted: String,
        /// The directories that were tried, comma-separated.
        searched: String,
        /// What to install.
        install: String,
    },

    /// Running as root, but the unprivileged user the server must run as does not exist.
    #[error(
        "running as root, but the `{user}` system user does not exist; PostgreSQL refuses to run \
         as root (installing the postgresql package creates the user)"
    )]
    ServerUserMissing {
        /// The user that was looked up.
        user: String,
    },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, including the path involved.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A helper program (such as `initdb`) exited unsuccessfully.
    #[error("{program} failed ({status}); its output:\n{output}")]
    CommandFailed {
        /// The program that was run.
        program: String,
        /// How it exited.
        status: String,
        /// What it printed.
        output: String,
    },

    /// A server process exited before it was ready, or did not become ready in time.
    #[error("{what} did not start: {reason}; its log ({}) ends with:\n{log_tail}", log.display())]
    StartFailed {
        /// Which server (`PostgreSQL`, or the caller's name for another kind).
        what: &'static str,
        /// What went wrong.
        reason: String,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },

    /// The template cluster's preparation step failed.
    #[error("preparing the template cluster `{template}` failed: {reason}")]
    TemplateSetupFailed {
        /// The template's name.
        template: String,
        /// What the preparation reported.
        reason: String,
    },

    /// A directory that was not created by this crate was given to be stopped and removed.
    #[error(
        "{} was not created by safeshift (no marker file); refusing to remove it",
        path.display()
    )]
    NotAServerDirectory {
        /// The directory given.
        path: PathBuf,
    },
}

impl PgServerError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> PgServerError {
        PgServerError::Io {
            context: context.into(),
            source,
        }
    }
}
