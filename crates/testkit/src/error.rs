//! The one error type of the testkit.

use std::io;

/// Why the testkit could not provide a server, a PgBouncer or a database.
///
/// Every variant says what was being done and, where it helps, what to do next.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The PostgreSQL server could not be found, started or stopped.
    #[error(transparent)]
    Server(#[from] safeshift_pgserver::PgServerError),

    /// No `pgbouncer` binary was found.
    #[error(
        "pgbouncer not found (looked in: {searched}); install it with `apt-get install pgbouncer` \
         or point SAFESHIFT_PGBOUNCER_BIN at the binary"
    )]
    PgBouncerNotFound {
        /// The places that were tried, comma-separated.
        searched: String,
    },

    /// No MariaDB server binaries were found.
    #[error(
        "mariadbd or mariadb-install-db not found (looked in: {searched}); install MariaDB with \
         `apt-get install --no-install-recommends mariadb-server` or point SAFESHIFT_MARIADB_BIN at their directory"
    )]
    MariaDbNotFound {
        /// The places that were tried, comma-separated.
        searched: String,
    },

    /// A MariaDB server could not be started or used.
    #[error("{context}: {detail}")]
    MariaDb {
        /// What was being done.
        context: String,
        /// The server's or tool's own words.
        detail: String,
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

    /// A server URL (for example from `SAFESHIFT_TEST_PG_URL` or `SAFESHIFT_TEST_MYSQL_URL`)
    /// could not be understood.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
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
