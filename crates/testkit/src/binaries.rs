//! Finding the PostgreSQL and PgBouncer programs.

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::TestkitError;

/// Overrides where the PostgreSQL server binaries are.
pub const PG_BIN_ENV: &str = "SAFESHIFT_PG_BIN";
/// Overrides where the `pgbouncer` binary is.
pub const PGBOUNCER_BIN_ENV: &str = "SAFESHIFT_PGBOUNCER_BIN";

/// The PostgreSQL version safeshift tests against first.
const PREFERRED_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A directory holding `initdb` and `postgres`, and the version they report.
#[derive(Debug)]
pub(crate) struct PgBinaries {
    dir: PathBuf,
    version: String,
}

impl PgBinaries {
    /// Finds the server binaries once per process: `SAFESHIFT_PG_BIN`, then PostgreSQL 15's
    /// Debian location, then `pg_config --bindir`, then `PATH`, then any other
    /// `/usr/lib/postgresql/*/bin` (newest first).
    pub(crate) fn get() -> Result<&'static PgBinaries, TestkitError> {
        static FOUND: OnceLock<PgBinaries> = OnceLock::new();
        if let Some(found) = FOUND.get() {
            return Ok(found);
        }
        let located = PgBinaries::locate()?;
        Ok(FOUND.get_or_init(|| located))
    }

    fn locate() -> Result<PgBinaries, TestkitError> {
        let candidates = candidate_dirs();
        let dir = candidates
            .iter()
            .find(|dir| is_executable(&dir.join("postgres")) && is_executable(&dir.join("initdb")))
            .cloned()
            .ok_or_else(|| TestkitError::PostgresBinariesNotFound {
                searched: candidates
                    .iter()
                    .map(|dir| dir.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let postgres = dir.join("postgres");
        let output = Command::new(&postgres)
            .arg("--version")
            .output()
            .map_err(|source| {
                TestkitError::io(format!("running {} --version", postgres.display()), source)
            })?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok(PgBinaries { dir, version })
    }

    /// The directory holding the binaries.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one program in that directory, such as `initdb`.
    pub(crate) fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The major version, such as `15`, or `unknown`.
    pub(crate) fn major_version(&self) -> &str {
        self.version
            .split_whitespace()
            .find_map(|word| {
                word.split('.')
                    .next()
                    .filter(|major| major.parse::<u32>().is_ok())
            })
            .unwrap_or("unknown")
    }

    /// A stable fingerprint of the exact version and location, used to key the cached template
    /// cluster so an upgraded server never starts on a cluster made by another version.
    pub(crate) fn fingerprint(&self, layout_version: u32) -> u64 {
        let key = format!("{}\n{}\n{layout_version}", self.version, self.dir.display());
        fnv1a(key.as_bytes())
    }
}

/// Finds `pgbouncer`: `SAFESHIFT_PGBOUNCER_BIN`, then `PATH`, then `/usr/sbin` (which is not on
/// a non-root user's `PATH` on Debian).
pub(crate) fn pgbouncer_binary() -> Result<PathBuf, TestkitError> {
    let mut candidates = Vec::new();
    if let Some(explicit) = env::var_os(PGBOUNCER_BIN_ENV) {
        candidates.push(PathBuf::from(explicit));
    }
    candidates.extend(path_dirs().into_iter().map(|dir| dir.join("pgbouncer")));
    candidates.push(PathBuf::from("/usr/sbin/pgbouncer"));
    candidates
        .iter()
        .find(|candidate| is_executable(candidate))
        .cloned()
        .ok_or_else(|| TestkitError::PgBouncerNotFound {
            searched: format!("{PGBOUNCER_BIN_ENV}, PATH, /usr/sbin/pgbouncer"),
        })
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(explicit) = env::var_os(PG_BIN_ENV) {
        // An explicit choice is the only candidate, so a wrong value is reported, not bypassed.
        return vec![PathBuf::from(explicit)];
    }
    dirs.push(PathBuf::from(PREFERRED_BIN_DIR));
    let pg_config = Command::new("pg_config").arg("--bindir").output().ok();
    if let Some(output) = pg_config.filter(|output| output.status.success()) {
        dirs.push(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        ));
    }
    dirs.extend(path_dirs());
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    dirs
}

fn path_dirs() -> Vec<PathBuf> {
    env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect())
        .unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// FNV-1a: tiny, and unlike std's hasher guaranteed stable across Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_version_is_read_from_the_version_line() {
        let binaries = PgBinaries {
            dir: PathBuf::from("/x"),
            version: "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".to_owned(),
        };
        assert_eq!(binaries.major_version(), "15");
    }

    #[test]
    fn fingerprint_changes_with_the_version() {
        let a = PgBinaries {
            dir: PathBuf::from("/x"),
            version: "postgres (PostgreSQL) 15.18".to_owned(),
        };
        let b = PgBinaries {
            dir: PathBuf::from("/x"),
            version: "postgres (PostgreSQL) 15.19".to_owned(),
        };
        assert_ne!(a.fingerprint(1), b.fingerprint(1));
        assert_eq!(a.fingerprint(1), a.fingerprint(1));
        assert_ne!(a.fingerprint(1), a.fingerprint(2));
    }
}
