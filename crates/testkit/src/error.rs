//! The one error type of the testkit.

use std::io;
use std::path::PathBuf;

/// Why the testkit could not provide a server, a PgBouncer or a database.
///
/// Every variant says what was being done and, where it helps, what to do next.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// No PostgreSQL server binaries (`initdb`, `postgres`) were found.
    #[error(
        "PostgreSQL server binaries not found (looked in: {searched}); install them with \
         `apt-get install postgresql-15` or point SAFESHIFT_PG_BIN at the directory holding `postgres`"
    )]
    PostgresBinariesNotFound {
        /// The directories that were tried, comma-separated.
        searched: String,
    },

    /// No `pgbouncer` binary was found.
    #[error(
        "pgbouncer not found (looked in: {searched}); install it with `apt-get install pgbouncer` \
         or point SAFESHIFT_PGBOUNCER_BIN at the binary"
    )]
    PgBouncerNotFound {
        /// The places that were tried, comma-separated.
        searched: String,
    },

    /// Running as root, but the unprivileged user the servers must run as does not exist.
    #[error(
        "running as root, but the `{user}` system user does not exist; PostgreSQL and PgBouncer \
         refuse to run as root (installing postgresql-15 creates the user)"
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
        /// Which server (`PostgreSQL` or `PgBouncer`).
        what: &'static str,
        /// What went wrong.
        reason: String,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },

    /// A SQL command against a test server failed.
    #[error("{context}: {detail}")]
    Sql {
        /// What was being done.
        context: String,
        /// The server's message and SQLSTATE (the client error's own text is just `db error`).
        detail: String,
        /// The error from the `postgres` client.
        #[source]
        source: postgres::Error,
    },

    /// A server URL (for example from `SAFESHIFT_TEST_PG_URL`) could not be understood.
    #[error(
        "invalid PostgreSQL URL `{url}`: {reason} (expected postgres://USER@HOST:PORT/DATABASE)"
    )]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `stop` was pointed at a directory that the testkit did not create.
    #[error(
        "{} was not created by `safeshift-testkit start` (no marker file); refusing to remove it",
        path.display()
    )]
    NotATestkitDirectory {
        /// The directory given.
        path: PathBuf,
    },
}

impl TestkitError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> TestkitError {
        TestkitError::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a SQL error with what was being done.
    pub(crate) fn sql(context: impl Into<String>, source: postgres::Error) -> TestkitError {
        let detail = match source.as_db_error() {
            Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
            None => match std::error::Error::source(&source) {
                Some(cause) => format!("{source}: {cause}"),
                None => source.to_string(),
            },
        };
        TestkitError::Sql {
            context: context.into(),
            detail,
            source,
        }
    }
}
