//! Finding the PostgreSQL programs on this machine.

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::PgServerError;

/// Names the directory holding `initdb` and `postgres`; when set, nothing else is searched.
pub const PG_BIN_ENV: &str = "SAFESHIFT_PG_BIN";

/// The directories conventionally holding PostgreSQL's programs, besides `PATH` and
/// `pg_config --bindir`.
const SOURCE_INSTALL_DIR: &str = "/usr/local/pgsql/bin";
const DEBIAN_VERSIONS_DIR: &str = "/usr/lib/postgresql";

/// A directory holding `initdb` and `postgres`, and the version they report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgBinaries {
    dir: PathBuf,
    version: String,
}

impl PgBinaries {
    /// Finds the server binaries: `SAFESHIFT_PG_BIN` if set (and nothing else), otherwise the
    /// first directory with `initdb` and `postgres` among `PATH`, `pg_config --bindir`,
    /// `/usr/lib/postgresql/*/bin` (newest first) and `/usr/local/pgsql/bin` — the first of
    /// `preferred_major` if any has it.
    pub fn find(preferred_major: Option<u32>) -> Result<PgBinaries, PgServerError> {
        let candidates = candidate_dirs();
        let mut first = None;
        for dir in &candidates {
            // `PATH` may hold links to the real directory (which also has pg_dump and psql).
            let Some(dir) = fs::canonicalize(dir.join("postgres"))
                .ok()
                .and_then(|postgres| postgres.parent().map(Path::to_path_buf))
            else {
                continue;
            };
            if !(is_executable(&dir.join("postgres")) && is_executable(&dir.join("initdb"))) {
                continue;
            }
            let found = PgBinaries::in_dir(&dir)?;
            if preferred_major.is_none() || found.major_version() == preferred_major {
                return Ok(found);
            }
            first.get_or_insert(found);
        }
        first.ok_or_else(|| PgServerError::BinariesNotFound {
            searched: list(&candidates),
            install: format!(
                "{}, or point {PG_BIN_ENV} at the directory holding `postgres`",
                install_hint("postgresql", preferred_major)
            ),
        })
    }

    /// The binaries in `dir`, whose `postgres --version` is asked.
    pub fn in_dir(dir: &Path) -> Result<PgBinaries, PgServerError> {
        let version = program_version(&dir.join("postgres"))?;
        Ok(PgBinaries {
            dir: dir.to_path_buf(),
            version,
        })
    }

    /// The directory holding the binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one program in that directory, such as `initdb`.
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// What `postgres --version` printed, such as `postgres (PostgreSQL) 15.18`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The major version, such as 15.
    pub fn major_version(&self) -> Option<u32> {
        major_of(&self.version)
    }

    /// A stable fingerprint of the exact version, location and `extra` key, used to key cached
    /// template clusters so a server never starts on a cluster made by another version.
    pub fn fingerprint(&self, extra: &str) -> u64 {
        let key = format!("{}\n{}\n{extra}", self.version, self.dir.display());
        fnv1a(key.as_bytes())
    }
}

/// A client program such as `pg_dump` that works with a server of major version `server_major`:
/// the same major version if there is one, else the newest newer one (PostgreSQL's client
/// programs read older servers, never newer ones). Searched where [`PgBinaries::find`] looks,
/// the server binaries' own directory first.
pub fn find_client_program(
    program: &str,
    server_major: u32,
    beside: Option<&Path>,
) -> Result<PathBuf, PgServerError> {
    let mut candidates: Vec<PathBuf> = beside.map(Path::to_path_buf).into_iter().collect();
    candidates.push(Path::new(DEBIAN_VERSIONS_DIR).join(format!("{server_major}/bin")));
    candidates.extend(candidate_dirs());
    let mut newer: Option<(u32, PathBuf)> = None;
    for dir in &candidates {
        let path = dir.join(program);
        if !is_executable(&path) {
            continue;
        }
        let Some(major) = program_version(&path).ok().and_then(|v| major_of(&v)) else {
            continue;
        };
        if major == server_major {
            return Ok(path);
        }
        if major > server_major && newer.as_ref().is_none_or(|(best, _)| major > *best) {
            newer = Some((major, path));
        }
    }
    newer
        .map(|(_, path)| path)
        .ok_or_else(|| PgServerError::ClientNotFound {
            program: program.to_owned(),
            wanted: format!("{server_major} or newer"),
            searched: list(&candidates),
            install: install_hint("postgresql-client", Some(server_major)),
        })
}

/// The first executable called `name` on `PATH` or in `extra_dirs`.
pub fn find_executable(name: &str, extra_dirs: &[&Path]) -> Option<PathBuf> {
    path_dirs()
        .into_iter()
        .chain(extra_dirs.iter().map(|dir| dir.to_path_buf()))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn candidate_dirs() -> Vec<PathBuf> {
    if let Some(explicit) = env::var_os(PG_BIN_ENV).filter(|value| !value.is_empty()) {
        // An explicit choice is the only candidate, so a wrong value is reported, not bypassed.
        return vec![PathBuf::from(explicit)];
    }
    let mut dirs = path_dirs();
    let pg_config = Command::new("pg_config").arg("--bindir").output().ok();
    if let Some(output) = pg_config.filter(|output| output.status.success()) {
        dirs.push(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        ));
    }
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir(DEBIAN_VERSIONS_DIR)
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
    dirs.push(PathBuf::from(SOURCE_INSTALL_DIR));
    let mut unique = Vec::with_capacity(dirs.len());
    for dir in dirs {
        if !unique.contains(&dir) {
            unique.push(dir);
        }
    }
    unique
}

fn path_dirs() -> Vec<PathBuf> {
    env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect())
        .unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn program_version(program: &Path) -> Result<String, PgServerError> {
    let output = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|source| {
            PgServerError::io(format!("running {} --version", program.display()), source)
        })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The major version in a `--version` line such as `pg_dump (PostgreSQL) 15.18 (Debian …)`.
fn major_of(version_line: &str) -> Option<u32> {
    version_line.split_whitespace().find_map(|word| {
        let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// What to install, phrased for this machine's package manager.
fn install_hint(package: &str, major: Option<u32>) -> String {
    let major = major.unwrap_or(15);
    if Path::new("/usr/bin/apt-get").exists() {
        format!("install them with `apt-get install {package}-{major}`")
    } else if Path::new("/usr/bin/dnf").exists() {
        format!("install them with `dnf install postgresql{major}-server`")
    } else if Path::new("/opt/homebrew/bin/brew").exists()
        || Path::new("/usr/local/bin/brew").exists()
    {
        format!("install them with `brew install postgresql@{major}`")
    } else {
        format!("install the PostgreSQL {major} server package")
    }
}

fn list(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
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

    fn binaries(version: &str) -> PgBinaries {
        PgBinaries {
            dir: PathBuf::from("/x"),
            version: version.to_owned(),
        }
    }

    #[test]
    fn major_version_is_read_from_the_version_line() {
        let found = binaries("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)");
        assert_eq!(found.major_version(), Some(15));
        assert_eq!(major_of("pg_dump (PostgreSQL) 17.2"), Some(17));
        assert_eq!(major_of("postgres (PostgreSQL) 18beta1"), Some(18));
        assert_eq!(major_of("garbage"), None);
    }

    #[test]
    fn fingerprint_changes_with_the_version_and_the_extra_key() {
        let a = binaries("postgres (PostgreSQL) 15.18");
        let b = binaries("postgres (PostgreSQL) 15.19");
        assert_ne!(a.fingerprint("1"), b.fingerprint("1"));
        assert_eq!(a.fingerprint("1"), a.fingerprint("1"));
        assert_ne!(a.fingerprint("1"), a.fingerprint("2"));
    }

    #[test]
    fn the_install_hint_names_the_package_and_version() {
        let hint = install_hint("postgresql", Some(16));
        assert!(hint.contains("16"), "{hint}");
    }
}
