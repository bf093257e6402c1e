//! The cached template cluster: `initdb` runs once per machine and PostgreSQL version, and every
//! server starts on a copy of it, which is several times faster than running `initdb` each time.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::binaries::PgBinaries;
use crate::error::PgServerError;
use crate::layout::Layout;
use crate::process::{self, Lifetime};
use crate::server::{self, TemplateSetup};
use crate::user::ServerUser;

/// Bump whenever the template's `initdb` options or contents change, so caches are rebuilt.
const TEMPLATE_LAYOUT: u32 = 2;

/// The data directory of the cached template cluster, created on first use.
///
/// When `setup` is given, the cluster was prepared by it once, and the cache is keyed by its
/// name. Parallel processes wait on a file lock while one of them creates it, and it is built
/// in a staging directory and renamed into place, so nobody ever sees half a cluster.
pub(crate) fn template_data_dir(
    layout: &Layout,
    binaries: &PgBinaries,
    user: ServerUser,
    setup: Option<&TemplateSetup>,
) -> Result<PathBuf, PgServerError> {
    let parent = layout.template_dir()?;
    let setup_name = setup.map_or("", |setup| setup.name);
    let name = format!(
        "cluster-{}-{:016x}",
        binaries
            .major_version()
            .map_or_else(|| "unknown".to_owned(), |major| major.to_string()),
        binaries.fingerprint(&format!("{TEMPLATE_LAYOUT}\n{setup_name}"))
    );
    let ready = parent.join(&name);
    if ready.join("data").is_dir() {
        return Ok(ready.join("data"));
    }
    let _lock = ExclusiveFileLock::acquire(&parent.join(format!("{name}.lock")))?;
    if ready.join("data").is_dir() {
        return Ok(ready.join("data"));
    }
    // Only the lock holder touches the staging directory, so one that exists was left by a
    // creator that died (its server died with it: it was spawned with a parent-death signal).
    let staging = parent.join(format!("{name}.staging"));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|source| {
            PgServerError::io(format!("removing {}", staging.display()), source)
        })?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|source| PgServerError::io(format!("creating {}", staging.display()), source))?;
    user.give(&staging)?;
    init_cluster(binaries, user, &staging)?;
    if let Some(setup) = setup {
        prepare(binaries, user, &staging, setup)?;
    }
    fs::rename(&staging, &ready).map_err(|source| {
        PgServerError::io(
            format!("renaming {} to {}", staging.display(), ready.display()),
            source,
        )
    })?;
    Ok(ready.join("data"))
}

fn init_cluster(
    binaries: &PgBinaries,
    user: ServerUser,
    base_dir: &Path,
) -> Result<(), PgServerError> {
    let mut initdb = Command::new(binaries.program("initdb"));
    initdb
        .arg("--pgdata")
        .arg(base_dir.join("data"))
        .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
        .args(["--locale=C", "--no-sync"])
        // 1 MiB instead of 16 MiB of WAL makes every per-server copy much smaller.
        .arg("--wal-segsize=1")
        .current_dir(base_dir)
        .stdin(Stdio::null());
    user.configure(&mut initdb);
    process::run_to_completion(initdb, "initdb")
}

/// Starts the staging cluster once to run the setup, then stops it cleanly so copies start
/// without crash recovery.
fn prepare(
    binaries: &PgBinaries,
    user: ServerUser,
    base_dir: &Path,
    setup: &TemplateSetup,
) -> Result<(), PgServerError> {
    let mut launched = server::launch(
        binaries,
        user,
        base_dir,
        &[],
        Lifetime::Process(libc::SIGQUIT),
    )?;
    let prepared = (setup.prepare)(&server::admin_url(launched.port));
    process::stop_child(
        &mut launched.child,
        libc::SIGINT,
        std::time::Duration::from_secs(30),
    );
    prepared.map_err(|reason| PgServerError::TemplateSetupFailed {
        template: setup.name.to_owned(),
        reason,
    })?;
    for leftover in ["sock", "server.log"] {
        let path = base_dir.join(leftover);
        let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
    }
    Ok(())
}

/// Copies the template cluster into `destination` with `cp -a` semantics (modes preserved),
/// handing every entry to the server user.
pub(crate) fn copy_data_dir(
    source: &Path,
    destination: &Path,
    user: ServerUser,
) -> Result<(), PgServerError> {
    copy_tree(source, destination, user).map_err(|error| match error {
        CopyError::Io(path, source) => {
            PgServerError::io(format!("copying {}", path.display()), source)
        }
        CopyError::Server(error) => error,
    })
}

enum CopyError {
    Io(PathBuf, io::Error),
    Server(PgServerError),
}

fn copy_tree(source: &Path, destination: &Path, user: ServerUser) -> Result<(), CopyError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |error| CopyError::Io(path, error)
    };
    let mode = fs::metadata(source)
        .map_err(at(source))?
        .permissions()
        .mode();
    fs::DirBuilder::new()
        .mode(mode & 0o7777)
        .create(destination)
        .map_err(at(destination))?;
    user.give(destination).map_err(CopyError::Server)?;
    for entry in fs::read_dir(source).map_err(at(source))? {
        let entry = entry.map_err(at(source))?;
        let from = entry.path();
        let to = destination.join(entry.file_name());
        let file_type = entry.file_type().map_err(at(&from))?;
        if file_type.is_dir() {
            copy_tree(&from, &to, user)?;
            continue;
        }
        if file_type.is_symlink() {
            let target = fs::read_link(&from).map_err(at(&from))?;
            std::os::unix::fs::symlink(target, &to).map_err(at(&to))?;
        } else {
            // fs::copy keeps the permission bits.
            fs::copy(&from, &to).map_err(at(&to))?;
        }
        user.give(&to).map_err(CopyError::Server)?;
    }
    Ok(())
}

/// An exclusive `flock` on a file, released when dropped (or when the process dies).
struct ExclusiveFileLock {
    _file: File,
}

impl ExclusiveFileLock {
    fn acquire(path: &Path) -> Result<ExclusiveFileLock, PgServerError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| PgServerError::io(format!("opening {}", path.display()), source))?;
        loop {
            // SAFETY: the descriptor is open for the duration of the call.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(ExclusiveFileLock { _file: file });
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(PgServerError::io(
                    format!("locking {}", path.display()),
                    error,
                ));
            }
        }
    }
}
