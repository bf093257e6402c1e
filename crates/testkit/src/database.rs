//! Per-test databases cloned from a template database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use postgres::error::SqlState;

use crate::error::TestkitError;
use crate::shared::{SharedServer, shared_server};

/// The database every test database is cloned from. It accepts no connections, because
/// `CREATE DATABASE ... TEMPLATE` fails while anyone is connected to the template.
pub const TEMPLATE_DATABASE: &str = "safeshift_template";

/// PostgreSQL's limit on identifier length, in bytes.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// A fresh, empty database on the shared server (see [`shared_server`]), dropped when this
/// value is dropped. Each test gets its own, so tests can run in parallel without seeing each
/// other's tables.
///
/// ```no_run
/// let database = safeshift_testkit::TestDatabase::new();
/// let mut client = database.client();
/// client.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY)").unwrap();
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    server: &'static SharedServer,
}

impl TestDatabase {
    /// Creates a database from the template on the shared server, starting that server first
    /// if this process has none yet.
    ///
    /// # Panics
    ///
    /// Panics with the reason if no server is available or the database cannot be created;
    /// use [`TestDatabase::try_new`] to handle that instead.
    pub fn new() -> TestDatabase {
        TestDatabase::try_new().unwrap_or_else(|error| {
            panic!("safeshift-testkit could not create a test database: {error}")
        })
    }

    /// Creates a database from the template on the shared server.
    pub fn try_new() -> Result<TestDatabase, TestkitError> {
        let server = shared_server();
        let name = create_database(&server.admin_url())?;
        Ok(TestDatabase { name, server })
    }

    /// The database's name, unique across processes sharing the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for the database on the server directly.
    pub fn url(&self) -> String {
        self.server.url(&self.name)
    }

    /// A URL for the same database through the shared PgBouncer in transaction pooling mode
    /// (`SAFESHIFT_TEST_PGBOUNCER_URL`, or one started for this process on first use).
    ///
    /// PgBouncer 1.18 cannot follow named prepared statements between server connections, so
    /// through it use `simple_query`/`batch_execute`; `query`/`execute` may fail with
    /// `prepared statement "s0" already exists` (which is exactly what production code must
    /// survive). Startup `options` are silently dropped by the pooler.
    ///
    /// # Panics
    ///
    /// Panics with the reason if no PgBouncer is available.
    pub fn pgbouncer_url(&self) -> String {
        self.server.pgbouncer_url(&self.name)
    }

    /// A direct connection to the database as the superuser, without TLS.
    ///
    /// # Panics
    ///
    /// Panics with the reason if the connection fails.
    pub fn client(&self) -> postgres::Client {
        connect(&self.url()).unwrap_or_else(|error| panic!("safeshift-testkit: {error}"))
    }
}

impl Default for TestDatabase {
    fn default() -> TestDatabase {
        TestDatabase::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE disconnects clients the test left open; errors are ignored because a drop must
        // not panic, and the whole server is thrown away anyway.
        if let Ok(mut admin) = postgres::Client::connect(&self.server.admin_url(), postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_identifier(&self.name)
            ));
        }
    }
}

/// Creates the template database on the server at `admin_url` unless it exists. Safe to call
/// from parallel processes.
pub(crate) fn ensure_template_database(admin_url: &str) -> Result<(), TestkitError> {
    let mut admin = connect(admin_url)?;
    let existing = admin
        .simple_query(&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE_DATABASE}'"
        ))
        .map_err(|source| TestkitError::sql("looking for the template database", source))?;
    let exists = existing
        .iter()
        .any(|message| matches!(message, postgres::SimpleQueryMessage::Row(_)));
    if exists {
        return Ok(());
    }
    let created = admin.batch_execute(&format!(
        "CREATE DATABASE {TEMPLATE_DATABASE} TEMPLATE template0 IS_TEMPLATE true ALLOW_CONNECTIONS false"
    ));
    match created {
        Ok(()) => Ok(()),
        // Another process created it first.
        Err(error)
            if error.code() == Some(&SqlState::DUPLICATE_DATABASE)
                || error.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
        {
            Ok(())
        }
        Err(source) => Err(TestkitError::sql(
            format!("creating the template database {TEMPLATE_DATABASE}"),
            source,
        )),
    }
}

/// Creates a uniquely named database from the template and returns its name.
fn create_database(admin_url: &str) -> Result<String, TestkitError> {
    let mut admin = connect(admin_url)?;
    loop {
        let name = unique_name();
        let created = admin.batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {TEMPLATE_DATABASE}",
            quote_identifier(&name)
        ));
        match created {
            Ok(()) => return Ok(name),
            // A dead process with the same pid left a database behind; take the next number.
            Err(error) if error.code() == Some(&SqlState::DUPLICATE_DATABASE) => continue,
            Err(source) => {
                return Err(TestkitError::sql(
                    format!("creating test database {name} from {TEMPLATE_DATABASE}"),
                    source,
                ));
            }
        }
    }
}

fn connect(url: &str) -> Result<postgres::Client, TestkitError> {
    postgres::Client::connect(url, postgres::NoTls)
        .map_err(|source| TestkitError::sql(format!("connecting to {url}"), source))
}

/// `t_<test name>_<pid>_<n>`: unique among live processes, and the test name (the test
/// thread's name) makes a leftover database easy to trace.
pub(crate) fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let suffix = format!(
        "_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let test_name = thread::current()
        .name()
        .map(|name| name.rsplit("::").next().unwrap_or(name).to_owned())
        .unwrap_or_default();
    let mut hint: String = test_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    hint.truncate(MAX_IDENTIFIER_BYTES - "t_".len() - suffix.len());
    format!("t_{hint}{suffix}")
}

/// Quotes an identifier for SQL.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_distinct_identifiers() {
        let first = unique_name();
        let second = unique_name();
        assert_ne!(first, second);
        for name in [&first, &second] {
            assert!(name.len() <= MAX_IDENTIFIER_BYTES, "{name} is too long");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name} needs quoting"
            );
        }
    }

    #[test]
    fn long_test_names_are_truncated_to_the_identifier_limit() {
        let name = thread::Builder::new()
            .name(format!("module::{}", "x".repeat(200)))
            .spawn(unique_name)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(name.len(), MAX_IDENTIFIER_BYTES);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
