//! Servers that outlive the process that started them (the testkit starts one for a whole test
//! run and stops it from a shell `trap`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::PgServerError;
use crate::layout;
use crate::process::Lifetime;
use crate::server::{self, ServerOptions};
use crate::user::ServerUser;

/// A server started by [`start_detached`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedServer {
    /// Its directory; pass it to [`stop_detached`]. Other servers may share it (the testkit puts
    /// a PgBouncer in a subdirectory); [`stop_detached`] stops them too.
    pub base_dir: PathBuf,
    /// The port it listens on (on 127.0.0.1).
    pub port: u16,
}

/// Starts a server that keeps running after this process exits, in `dir` (which must not exist
/// or be empty) or in a fresh directory of the layout.
///
/// Nothing stops it but [`stop_detached`], so a caller must arrange for that.
pub fn start_detached(
    options: &ServerOptions,
    dir: Option<&Path>,
) -> Result<DetachedServer, PgServerError> {
    let user = ServerUser::get()?;
    let base_dir = options.layout.new_detached_base_dir(dir, user)?;
    match server::start_in(options, user, &base_dir, Lifetime::Detached) {
        Ok(launched) => Ok(DetachedServer {
            base_dir,
            port: launched.port,
        }),
        Err(error) => {
            let _ = stop_detached(&base_dir);
            Err(error)
        }
    }
}

/// Stops the servers started in `dir` by [`start_detached`] (and any other server that runs
/// from it and left a pid file there) and removes the directory. Refuses a directory that was
/// not created here.
pub fn stop_detached(dir: &Path) -> Result<(), PgServerError> {
    // The processes were started with absolute paths, which is how they are recognised.
    let dir = &fs::canonicalize(dir)
        .map_err(|source| PgServerError::io(format!("finding {}", dir.display()), source))?;
    if !layout::is_server_dir(dir) {
        return Err(PgServerError::NotAServerDirectory {
            path: dir.to_path_buf(),
        });
    }
    layout::stop_leftover_processes(dir);
    fs::remove_dir_all(dir)
        .map_err(|source| PgServerError::io(format!("removing {}", dir.display()), source))
}
