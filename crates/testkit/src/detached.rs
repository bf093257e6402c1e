//! Servers that outlive the process that started them, for a whole test run (`scripts/test`
//! starts them with `safeshift-testkit start` and stops them with `safeshift-testkit stop`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::binaries::PgBinaries;
use crate::error::TestkitError;
use crate::layout;
use crate::pgbouncer::{self, PoolMode, Target};
use crate::process::{Lifetime, ServerUser};
use crate::server::{self, database_url};

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
}

/// Starts a PostgreSQL server, and optionally a transaction-pooling PgBouncer in front of it,
/// that keep running after this process exits, in `dir` (which must not exist or be empty) or
/// in a fresh directory.
///
/// Nothing stops them but [`stop_detached`], so a caller must arrange for that (a shell `trap`).
pub fn start_detached(
    dir: Option<&Path>,
    with_pgbouncer: bool,
) -> Result<DetachedServers, TestkitError> {
    let binaries = PgBinaries::get()?;
    let user = ServerUser::get()?;
    let base_dir = layout::new_detached_base_dir(dir, user)?;
    let started = start_in(binaries, user, &base_dir, with_pgbouncer);
    if started.is_err() {
        let _ = stop_detached(&base_dir);
    }
    started
}

fn start_in(
    binaries: &PgBinaries,
    user: ServerUser,
    base_dir: &Path,
    with_pgbouncer: bool,
) -> Result<DetachedServers, TestkitError> {
    let pg = server::start_in(binaries, user, base_dir, Lifetime::Detached)?;
    let database = "postgres";
    crate::database::ensure_template_database(&database_url(pg.port, database))?;
    let pgbouncer_url = if with_pgbouncer {
        let pgbouncer_dir = base_dir.join("pgbouncer");
        layout::create_dir_with_mode(&pgbouncer_dir, 0o700)?;
        user.give(&pgbouncer_dir)?;
        let target = Target {
            host: "127.0.0.1",
            port: pg.port,
            pool_mode: PoolMode::Transaction,
        };
        let bouncer = pgbouncer::launch(&target, user, &pgbouncer_dir, Lifetime::Detached)?;
        Some(database_url(bouncer.port, database))
    } else {
        None
    };
    Ok(DetachedServers {
        base_dir: base_dir.to_path_buf(),
        pg_url: database_url(pg.port, database),
        pgbouncer_url,
    })
}

/// Stops the servers started by [`start_detached`] in `dir` and removes the directory.
/// Refuses a directory the testkit did not create.
pub fn stop_detached(dir: &Path) -> Result<(), TestkitError> {
    // The processes were started with absolute paths, which is how they are recognised.
    let dir = &fs::canonicalize(dir)
        .map_err(|source| TestkitError::io(format!("finding {}", dir.display()), source))?;
    if !layout::is_testkit_dir(dir) {
        return Err(TestkitError::NotATestkitDirectory {
            path: dir.to_path_buf(),
        });
    }
    layout::stop_leftover_processes(dir);
    fs::remove_dir_all(dir)
        .map_err(|source| TestkitError::io(format!("removing {}", dir.display()), source))
}
