//! Free space on the filesystem that will hold a backup.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use crate::error::BackupError;

/// Whether a backup of `database_bytes` fits in a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpaceCheck {
    /// The size of the database on the server (or of the SQLite file).
    pub database_bytes: u64,
    /// Bytes available to this user where the backup goes.
    pub free_bytes: u64,
}

impl SpaceCheck {
    /// A dump is usually smaller than the database, but never count on it: the database's own
    /// size must fit.
    pub fn fits(&self) -> bool {
        self.free_bytes >= self.database_bytes
    }
}

/// Bytes available to an unprivileged user on the filesystem holding `dir` (or its nearest
/// existing parent).
pub fn free_bytes(dir: &Path) -> Result<u64, BackupError> {
    let mut probe = dir;
    while !probe.exists() {
        probe = match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if probe == Path::new(".") {
            break;
        }
    }
    let path = CString::new(probe.as_os_str().as_bytes())
        .map_err(|_| BackupError::Refused(format!("{} contains a NUL byte", probe.display())))?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stats` a writable statvfs.
    let result = unsafe { libc::statvfs(path.as_ptr(), &mut stats) };
    if result != 0 {
        return Err(BackupError::io(
            format!("cannot read the free space of {}", probe.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// `1.5 GiB`, `320 KiB`, `12 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn free_space_of_a_missing_directory_is_its_parents() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("not/yet")).unwrap();
        assert!(free > 0);
        assert!(
            SpaceCheck {
                database_bytes: 10,
                free_bytes: 10
            }
            .fits()
        );
        assert!(
            !SpaceCheck {
                database_bytes: 11,
                free_bytes: 10
            }
            .fits()
        );
    }
}
