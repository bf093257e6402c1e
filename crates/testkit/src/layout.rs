//! Where the testkit keeps its files, and cleaning up after runs that died.
//!
//! ```text
//! /dev/shm/safeshift-testkit-<euid>/       (or $TMPDIR/..., or SAFESHIFT_TESTKIT_DIR)
//!   template/cluster-15-<fingerprint>/data  initdb'd once, copied per server
//!   servers/pg-<pid>-<start>-<n>/           one per server started by a test process
//!   servers/pgbouncer-<pid>-<start>-<n>/    one per PgBouncer started by a test process
//!   detached-<pid>-<n>/                     started by `safeshift-testkit start`
//! ```
//!
//! The files live in memory (`/dev/shm`) when it is a roomy tmpfs, because creating the ~1300
//! files of a cluster copy on a disk file system can take seconds on a busy machine and takes a
//! fraction of that in memory. They never live under `target/`, because the `postgres` user
//! must be able to reach them and Unix socket paths must stay short.

use std::env;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::TestkitError;
use crate::process::{self, ServerUser};

/// Overrides the directory the testkit keeps its files in.
pub const DIR_ENV: &str = "SAFESHIFT_TESTKIT_DIR";

/// The file that marks a directory as the testkit's, so `stop` never removes anything else.
const MARKER: &str = ".safeshift-testkit";

/// The in-memory file system preferred for the testkit's files.
const MEMORY_DIR: &str = "/dev/shm";
/// How much room the in-memory file system needs to be used (containers often give it 64 MiB).
const MEMORY_DIR_MIN_FREE_BYTES: u64 = 2 << 30;

/// The testkit's root directory, created (mode 0755, so the server user can traverse it) on
/// first use.
pub(crate) fn root() -> Result<PathBuf, TestkitError> {
    let (root, explicit) = match env::var_os(DIR_ENV) {
        Some(dir) => (PathBuf::from(dir), true),
        None => {
            // SAFETY: geteuid cannot fail.
            let euid = unsafe { libc::geteuid() };
            let parent = if is_roomy_tmpfs(Path::new(MEMORY_DIR)) {
                PathBuf::from(MEMORY_DIR)
            } else {
                env::temp_dir()
            };
            (parent.join(format!("safeshift-testkit-{euid}")), false)
        }
    };
    create_dir_with_mode(&root, 0o755)?;
    if !explicit {
        // A shared temp dir: refuse a directory someone else planted under our name.
        let meta = fs::metadata(&root)
            .map_err(|source| TestkitError::io(format!("inspecting {}", root.display()), source))?;
        // SAFETY: geteuid cannot fail.
        if meta.uid() != unsafe { libc::geteuid() } {
            return Err(TestkitError::io(
                format!("using {}", root.display()),
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "it belongs to another user; remove it or set SAFESHIFT_TESTKIT_DIR",
                ),
            ));
        }
    }
    Ok(root)
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

/// The directory holding cached template clusters.
pub(crate) fn template_dir() -> Result<PathBuf, TestkitError> {
    let dir = root()?.join("template");
    create_dir_with_mode(&dir, 0o755)?;
    Ok(dir)
}

fn servers_dir() -> Result<PathBuf, TestkitError> {
    let dir = root()?.join("servers");
    create_dir_with_mode(&dir, 0o755)?;
    Ok(dir)
}

/// Creates a fresh base directory for a server that belongs to this process. Its name records
/// this process, so a later run can tell whether the owner is still alive.
pub(crate) fn new_owned_base_dir(kind: &str, user: ServerUser) -> Result<PathBuf, TestkitError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let start = process::start_time(pid).unwrap_or(0);
    let servers = servers_dir()?;
    loop {
        let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = servers.join(format!("{kind}-{pid}-{start}-{sequence}"));
        if create_new_base_dir(&dir, user)? {
            return Ok(dir);
        }
    }
}

/// Creates the base directory for servers that outlive this process: `requested` (which must
/// not exist yet, or be empty) or a fresh one under the root.
pub(crate) fn new_detached_base_dir(
    requested: Option<&Path>,
    user: ServerUser,
) -> Result<PathBuf, TestkitError> {
    if let Some(dir) = requested {
        let is_empty_dir = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
        if is_empty_dir {
            fs::remove_dir(dir)
                .map_err(|source| TestkitError::io(format!("reusing {}", dir.display()), source))?;
        }
        if !create_new_base_dir(dir, user)? {
            return Err(TestkitError::io(
                format!("creating {}", dir.display()),
                io::Error::new(io::ErrorKind::AlreadyExists, "it exists and is not empty"),
            ));
        }
        return Ok(absolute(dir));
    }
    let root = root()?;
    let pid = std::process::id();
    for sequence in 0.. {
        let dir = root.join(format!("detached-{pid}-{sequence}"));
        if create_new_base_dir(&dir, user)? {
            return Ok(dir);
        }
    }
    unreachable!("the sequence is unbounded")
}

/// Whether `dir` was created by the testkit.
pub(crate) fn is_testkit_dir(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// Creates `dir` (mode 0700, handed to the server user) with the marker inside. Returns false if
/// it already exists.
fn create_new_base_dir(dir: &Path, user: ServerUser) -> Result<bool, TestkitError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(source) => {
            return Err(TestkitError::io(
                format!("creating {}", dir.display()),
                source,
            ));
        }
    }
    user.give(dir)?;
    fs::write(dir.join(MARKER), format!("pid {}\n", std::process::id())).map_err(|source| {
        TestkitError::io(format!("writing the marker in {}", dir.display()), source)
    })?;
    Ok(true)
}

/// Creates a directory (and its parents) if missing, and gives it exactly `mode` if it is ours
/// (a restrictive umask would otherwise keep the server user out of a 0755 directory).
pub(crate) fn create_dir_with_mode(dir: &Path, mode: u32) -> Result<(), TestkitError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| TestkitError::io(format!("creating {}", dir.display()), source))?;
    let meta = fs::metadata(dir)
        .map_err(|source| TestkitError::io(format!("inspecting {}", dir.display()), source))?;
    // SAFETY: geteuid cannot fail.
    let ours = meta.uid() == unsafe { libc::geteuid() };
    if ours && meta.mode() & 0o7777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(|source| {
            TestkitError::io(format!("setting the mode of {}", dir.display()), source)
        })?;
    }
    Ok(())
}

fn absolute(dir: &Path) -> PathBuf {
    fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Removes the base directories of test processes that died without cleaning up, stopping any
/// server still running in them. Best effort: a failure here must not fail a test.
pub(crate) fn remove_stale_base_dirs() {
    let Ok(servers) = servers_dir() else { return };
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

/// The pid and start time recorded in an owned base directory's name.
fn owner_of(dir: &Path) -> Option<(u32, u64)> {
    let name = dir.file_name()?.to_str()?;
    let mut parts = name.rsplitn(4, '-');
    let _sequence = parts.next()?;
    let start = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    Some((pid, start))
}

/// Stops the postmaster or PgBouncer recorded in `dir`'s pid files if it still runs from this
/// directory. Returns whether nothing is left running.
pub(crate) fn stop_leftover_processes(dir: &Path) -> bool {
    let pid_files = [
        (dir.join("data").join("postmaster.pid"), libc::SIGQUIT),
        (dir.join("pgbouncer.pid"), libc::SIGTERM),
        (dir.join("pgbouncer").join("pgbouncer.pid"), libc::SIGTERM),
    ];
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
pub(crate) fn read_pid_file(path: &Path) -> Option<u32> {
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
}
