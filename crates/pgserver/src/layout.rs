//! Where servers keep their files, and cleaning up after processes that died.
//!
//! ```text
//! <root>/                                   e.g. /dev/shm/safeshift-<euid>
//!   template/cluster-15-<fingerprint>/data  initdb'd once, copied per server
//!   servers/pg-<pid>-<start>-<n>/           one per server started by a process
//!   detached-<pid>-<n>/                     servers that outlive the process that started them
//! ```
//!
//! The files live in memory (`/dev/shm`) when it is a roomy tmpfs, because creating the ~1300
//! files of a cluster copy on a disk file system can take seconds on a busy machine and takes a
//! fraction of that in memory. Unix socket paths must stay short, and the server user must be
//! able to reach the directories, so they never live deep inside a project.

use std::env;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::PgServerError;
use crate::process;
use crate::user::ServerUser;

/// The file that marks a directory as created here, so nothing else is ever removed.
const MARKER: &str = ".safeshift-server";

/// The in-memory file system preferred for the files.
const MEMORY_DIR: &str = "/dev/shm";
/// How much room the in-memory file system needs to be used (containers often give it 64 MiB).
const MEMORY_DIR_MIN_FREE_BYTES: u64 = 2 << 30;

/// The root directory servers keep their files in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The directory named by the environment variable `override_env`, or else
    /// `<name>-<euid>` in `/dev/shm` (when it is a roomy tmpfs) or in the temp directory;
    /// created (mode 0755, so the server user can traverse it) if missing.
    pub fn from_env_or_default(name: &str, override_env: &str) -> Result<Layout, PgServerError> {
        if let Some(dir) = env::var_os(override_env).filter(|value| !value.is_empty()) {
            return Layout::at(PathBuf::from(dir));
        }
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        let parent = if is_roomy_tmpfs(Path::new(MEMORY_DIR)) {
            PathBuf::from(MEMORY_DIR)
        } else {
            env::temp_dir()
        };
        let root = parent.join(format!("{name}-{euid}"));
        create_dir_with_mode(&root, 0o755)?;
        // A shared temp dir: refuse a directory someone else planted under our name.
        let meta = fs::metadata(&root).map_err(|source| {
            PgServerError::io(format!("inspecting {}", root.display()), source)
        })?;
        if meta.uid() != euid {
            return Err(PgServerError::io(
                format!("using {}", root.display()),
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("it belongs to another user; remove it or set {override_env}"),
                ),
            ));
        }
        Ok(Layout { root })
    }

    /// Exactly `root`, created (mode 0755) if missing.
    pub fn at(root: PathBuf) -> Result<Layout, PgServerError> {
        create_dir_with_mode(&root, 0o755)?;
        Ok(Layout { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding cached template clusters.
    pub(crate) fn template_dir(&self) -> Result<PathBuf, PgServerError> {
        let dir = self.root.join("template");
        create_dir_with_mode(&dir, 0o755)?;
        Ok(dir)
    }

    fn servers_dir(&self) -> Result<PathBuf, PgServerError> {
        let dir = self.root.join("servers");
        create_dir_with_mode(&dir, 0o755)?;
        Ok(dir)
    }

    /// Creates a fresh base directory (named `<kind>-<pid>-<start>-<n>`) for a server that
    /// belongs to this process. Its name records this process, so a later run can tell whether
    /// the owner is still alive.
    pub fn new_owned_base_dir(
        &self,
        kind: &str,
        user: ServerUser,
    ) -> Result<PathBuf, PgServerError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let start = process::start_time(pid).unwrap_or(0);
        let servers = self.servers_dir()?;
        loop {
            let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = servers.join(format!("{kind}-{pid}-{start}-{sequence}"));
            if create_new_base_dir(&dir, user)? {
                return Ok(dir);
            }
        }
    }

    /// Creates the base directory for servers that outlive this process: `requested` (which
    /// must not exist yet, or be empty) or a fresh `detached-<pid>-<n>` under the root.
    pub fn new_detached_base_dir(
        &self,
        requested: Option<&Path>,
        user: ServerUser,
    ) -> Result<PathBuf, PgServerError> {
        if let Some(dir) = requested {
            let is_empty_dir = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
            if is_empty_dir {
                fs::remove_dir(dir).map_err(|source| {
                    PgServerError::io(format!("reusing {}", dir.display()), source)
                })?;
            }
            if !create_new_base_dir(dir, user)? {
                return Err(PgServerError::io(
                    format!("creating {}", dir.display()),
                    io::Error::new(io::ErrorKind::AlreadyExists, "it exists and is not empty"),
                ));
            }
            return Ok(fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
        }
        let pid = std::process::id();
        for sequence in 0.. {
            let dir = self.root.join(format!("detached-{pid}-{sequence}"));
            if create_new_base_dir(&dir, user)? {
                return Ok(dir);
            }
        }
        unreachable!("the sequence is unbounded")
    }

    /// Removes the base directories of processes that died without cleaning up, stopping any
    /// server still running in them. Best effort: a failure here must not stop a start.
    pub fn remove_stale_base_dirs(&self) {
        let Ok(servers) = self.servers_dir() else {
            return;
        };
        let Ok(entries) = fs::read_dir(&servers) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let Some((owner_pid, owner_start)) = owner_of(&dir) else {
                continue;
            };
            let owner_alive =
                process::is_alive(owner_pid) && process::start_time(owner_pid) == Some(owner_start);
            if owner_alive {
                continue;
            }
            if stop_leftover_processes(&dir) {
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
}

/// Whether `dir` was created by [`Layout`].
pub fn is_server_dir(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// Whether `dir` is a writable tmpfs with room for a few servers.
fn is_roomy_tmpfs(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut stats: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `stats` is valid for writes.
    if unsafe { libc::statfs(path.as_ptr(), &mut stats) } != 0 {
        return false;
    }
    let free = (stats.f_bavail as u64).saturating_mul(stats.f_bsize as u64);
    // SAFETY: the path is NUL-terminated.
    let writable = unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } == 0;
    stats.f_type == libc::TMPFS_MAGIC && free >= MEMORY_DIR_MIN_FREE_BYTES && writable
}

/// Creates `dir` (mode 0700, handed to the server user) with the marker inside. Returns false if
/// it already exists.
fn create_new_base_dir(dir: &Path, user: ServerUser) -> Result<bool, PgServerError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(source) => {
            return Err(PgServerError::io(
                format!("creating {}", dir.display()),
                source,
            ));
        }
    }
    user.give(dir)?;
    fs::write(dir.join(MARKER), format!("pid {}\n", std::process::id())).map_err(|source| {
        PgServerError::io(format!("writing the marker in {}", dir.display()), source)
    })?;
    Ok(true)
}

/// Creates a directory (and its parents) if missing, and gives it exactly `mode` if it is ours
/// (a restrictive umask would otherwise keep the server user out of a 0755 directory).
pub fn create_dir_with_mode(dir: &Path, mode: u32) -> Result<(), PgServerError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| PgServerError::io(format!("creating {}", dir.display()), source))?;
    let meta = fs::metadata(dir)
        .map_err(|source| PgServerError::io(format!("inspecting {}", dir.display()), source))?;
    // SAFETY: geteuid cannot fail.
    let ours = meta.uid() == unsafe { libc::geteuid() };
    if ours && meta.mode() & 0o7777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(|source| {
            PgServerError::io(format!("setting the mode of {}", dir.display()), source)
        })?;
    }
    Ok(())
}

/// The pid and start time recorded in an owned base directory's name.
fn owner_of(dir: &Path) -> Option<(u32, u64)> {
    let name = dir.file_name()?.to_str()?;
    let mut parts = name.rsplitn(4, '-');
    let _sequence = parts.next()?;
    let start = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    Some((pid, start))
}

/// Stops every server recorded in `dir`'s pid files that still runs from this directory: the
/// postmaster (`data/postmaster.pid`, with SIGQUIT) and any other `*.pid` file in `dir` or one
/// level below (with SIGTERM; the testkit's PgBouncer keeps one there). Returns whether nothing
/// is left running.
pub fn stop_leftover_processes(dir: &Path) -> bool {
    let mut pid_files = vec![(dir.join("data").join("postmaster.pid"), libc::SIGQUIT)];
    let mut search = vec![dir.to_path_buf()];
    if let Ok(entries) = fs::read_dir(dir) {
        search.extend(
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.is_dir() && path.file_name() != Some("data".as_ref())),
        );
    }
    for directory in search {
        let Ok(entries) = fs::read_dir(&directory) else {
            continue;
        };
        pid_files.extend(
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "pid"))
                .map(|path| (path, libc::SIGTERM)),
        );
    }
    let mut all_gone = true;
    for (pid_file, stop_signal) in pid_files {
        let Some(pid) = read_pid_file(&pid_file) else {
            continue;
        };
        if runs_from(pid, dir) {
            all_gone &= process::stop_pid(pid, stop_signal, Duration::from_secs(10));
        }
    }
    all_gone
}

/// The pid on the first line of a pid file.
fn read_pid_file(path: &Path) -> Option<u32> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Whether `pid` is alive and was started with a path inside `dir` on its command line, so a
/// reused pid is never signalled.
fn runs_from(pid: u32, dir: &Path) -> bool {
    let Ok(command_line) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let dir = dir.as_os_str().as_encoded_bytes();
    process::is_alive(pid)
        && command_line
            .split(|byte| *byte == 0)
            .any(|argument| argument.starts_with(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_parsed_from_the_directory_name() {
        assert_eq!(
            owner_of(Path::new("/tmp/x/servers/pgbouncer-123-456789-7")),
            Some((123, 456_789))
        );
        assert_eq!(owner_of(Path::new("/tmp/x/servers/pg-1-2-3")), Some((1, 2)));
        assert_eq!(owner_of(Path::new("/tmp/x/servers/junk")), None);
    }

    #[test]
    fn a_layout_creates_its_root_and_marks_the_directories_it_makes() {
        let scratch = std::env::temp_dir().join(format!("safeshift-layout-{}", std::process::id()));
        let layout = Layout::at(scratch.join("root")).unwrap();
        let user = ServerUser::get().unwrap();
        let owned = layout.new_owned_base_dir("pg", user).unwrap();
        assert!(is_server_dir(&owned));
        assert!(owned.starts_with(layout.root()));
        let detached = layout.new_detached_base_dir(None, user).unwrap();
        assert!(is_server_dir(&detached));
        assert!(!is_server_dir(layout.root()));
        fs::remove_dir_all(&scratch).unwrap();
    }
}
