//! Servers that outlive the process that started them, for a whole test run (`scripts/test`
//! starts them with `safeshift-testkit start` and stops them with `safeshift-testkit stop`).

use std::path::{Path, PathBuf};

use safeshift_pgserver::{ServerUser, create_dir_with_mode, database_url};

use crate::error::TestkitError;
use crate::mariadb;
use crate::pgbouncer::{self, PoolMode, Target};
use crate::server;

/// Servers started by [`start_detached`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedServers {
    /// Their common directory; pass it to [`stop_detached`].
    pub base_dir: PathBuf,
    /// The PostgreSQL server's `postgres` database (for `SAFESHIFT_TEST_PG_URL`).
    pub pg_url: String,
    /// The transaction-pooling PgBouncer's `postgres` database (for
    /// `SAFESHIFT_TEST_PGBOUNCER_URL`), if one was started.
    pub pgbouncer_url: Option<String>,
    /// The MariaDB server's `mysql` database (for `SAFESHIFT_TEST_MYSQL_URL`), if one was
    /// started.
    pub mysql_url: Option<String>,
}

/// Which servers [`start_detached`] starts beside PostgreSQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// A transaction-pooling PgBouncer in front of it.
    pub pgbouncer: bool,
    /// A MariaDB server.
    pub mariadb: bool,
}

/// Starts a PostgreSQL server, and optionally a transaction-pooling PgBouncer in front of it and
/// a MariaDB server, that keep running after this process exits, in `dir` (which must not exist
/// or be empty) or in a fresh directory.
///
/// Nothing stops them but [`stop_detached`], so a caller must arrange for that (a shell `trap`).
pub fn start_detached(dir: Option<&Path>, extras: Extras) -> Result<DetachedServers, TestkitError> {
    let pg = safeshift_pgserver::start_detached(&server::options()?, dir)?;
    let started = (|| {
        let pgbouncer_url = extras
            .pgbouncer
            .then(|| start_pgbouncer(&pg.base_dir, pg.port))
            .transpose()?;
        let mysql_url = extras
            .mariadb
            .then(|| start_mariadb(&pg.base_dir))
            .transpose()?;
        Ok::<_, TestkitError>((pgbouncer_url, mysql_url))
    })();
    match started {
        Ok((pgbouncer_url, mysql_url)) => Ok(DetachedServers {
            pg_url: database_url(pg.port, "postgres"),
            base_dir: pg.base_dir,
            pgbouncer_url,
            mysql_url,
        }),
        Err(error) => {
            let _ = stop_detached(&pg.base_dir);
            Err(error)
        }
    }
}

/// Starts a MariaDB server in `base_dir/mariadb` and returns the URL of its `mysql` database.
fn start_mariadb(base_dir: &Path) -> Result<String, TestkitError> {
    let dir = base_dir.join("mariadb");
    create_dir_with_mode(&dir, 0o700)?;
    let (_, port) = mariadb::launch(&dir, safeshift_pgserver::Lifetime::Detached)?;
    Ok(mariadb::test_url(port, "mysql"))
}

/// Starts a transaction-pooling PgBouncer in `base_dir/pgbouncer`, in front of the server on
/// `port`, and returns the URL of its `postgres` database.
fn start_pgbouncer(base_dir: &Path, port: u16) -> Result<String, TestkitError> {
    let user = ServerUser::get()?;
    let pgbouncer_dir = base_dir.join("pgbouncer");
    create_dir_with_mode(&pgbouncer_dir, 0o700)?;
    user.give(&pgbouncer_dir)?;
    let target = Target {
        host: "127.0.0.1",
        port,
        pool_mode: PoolMode::Transaction,
    };
    let bouncer = pgbouncer::launch(
        &target,
        user,
        &pgbouncer_dir,
        safeshift_pgserver::Lifetime::Detached,
    )?;
    Ok(database_url(bouncer.port, "postgres"))
}

/// Stops the servers started by [`start_detached`] in `dir` and removes the directory.
/// Refuses a directory the testkit did not create.
pub fn stop_detached(dir: &Path) -> Result<(), TestkitError> {
    Ok(safeshift_pgserver::stop_detached(dir)?)
}
