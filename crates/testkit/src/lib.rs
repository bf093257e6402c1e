//! Real, throwaway PostgreSQL servers, PgBouncer and MariaDB servers for safeshift's tests.
//!
//! Most tests need only [`TestDatabase`]: a fresh database cloned from a template on a server
//! shared by the whole test process (or by the whole test run, when `scripts/test` exports
//! `SAFESHIFT_TEST_PG_URL`), dropped when the value is dropped.
//!
//! ```no_run
//! use safeshift_testkit::TestDatabase;
//!
//! let database = TestDatabase::new();
//! let mut client = database.client();
//! client.batch_execute("CREATE TABLE accounts (id bigint PRIMARY KEY)").unwrap();
//! // The same database through a transaction-pooling PgBouncer:
//! let through_pgbouncer = database.pgbouncer_url();
//! # let _ = through_pgbouncer;
//! ```
//!
//! Everything here is blocking (it uses the `postgres` crate's blocking client), so call it
//! outside an async runtime, or from `spawn_blocking`.
//!
//! Tests that need a server of their own (to restart it, or to change its settings) use
//! [`PgServer`], and [`PgBouncer`] puts a pooler with any [`PoolMode`] in front of it. The
//! servers themselves come from `safeshift-pgserver`, the same code `safeshift rehearse` uses;
//! this crate adds what only tests need.
//!
//! As root, every server runs as the `postgres` system user, because PostgreSQL and PgBouncer
//! refuse to run as root. Servers started by a test process never outlive it: they are stopped
//! on drop, by an exit hook, and by a parent-death signal if the process is killed; whatever a
//! killed process leaves on disk is removed by the next run.
//!
//! Environment variables:
//!
//! | variable | effect |
//! |---|---|
//! | `SAFESHIFT_TEST_PG_URL` | use this server instead of starting one per process |
//! | `SAFESHIFT_TEST_PGBOUNCER_URL` | use this transaction-pooling PgBouncer in front of it |
//! | `SAFESHIFT_TEST_MYSQL_URL` | use this MariaDB server (for [`TestMysqlDatabase`]) instead of starting one per process |
//! | `SAFESHIFT_MARIADB_BIN` | the directory holding `mariadbd` and `mariadb-install-db` |
//! | `SAFESHIFT_PG_BIN` | the directory holding `initdb` and `postgres` |
//! | `SAFESHIFT_PGBOUNCER_BIN` | the `pgbouncer` binary |
//! | `SAFESHIFT_TESTKIT_DIR` | where template clusters and server directories are kept (default: `/dev/shm/safeshift-testkit-<uid>`, or under `$TMPDIR` when `/dev/shm` is small) |

mod database;
mod detached;
mod error;
mod mariadb;
mod pgbouncer;
mod server;
mod shared;

pub use database::{TEMPLATE_DATABASE, TestDatabase};
pub use detached::{DetachedServers, Extras, start_detached, stop_detached};
pub use error::TestkitError;
pub use mariadb::{
    MARIADB_BIN_ENV, MYSQL_URL_ENV, MariaDbServer, SharedMariaDb, TestMysqlDatabase,
    shared_mariadb, test_url,
};
pub use pgbouncer::{PGBOUNCER_BIN_ENV, PgBouncer, PoolMode};
pub use safeshift_pgserver::PG_BIN_ENV;
pub use server::{DIR_ENV, PgServer};
pub use shared::{PG_URL_ENV, PGBOUNCER_URL_ENV, SharedServer, shared_server};

/// The directory holding the PostgreSQL binaries the testkit uses (`pg_dump`, `psql` and
/// friends included), found as described for `SAFESHIFT_PG_BIN`.
pub fn pg_bin_dir() -> Result<std::path::PathBuf, TestkitError> {
    Ok(server::binaries()?.dir().to_path_buf())
}
