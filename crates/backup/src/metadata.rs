//! The metadata file written beside every backup (`<backup>.json`): what was backed up, from
//! where, by whom, its checksum, and how it was last verified.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::BackupError;
use crate::fingerprint::TableFingerprint;

/// The metadata file's format version.
pub const FORMAT: u32 = 1;

/// Everything known about one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub format: u32,
    /// `postgres` or `sqlite`.
    pub engine: String,
    /// The database name (PostgreSQL) or file name (SQLite).
    pub database: String,
    /// Where it came from, with any password redacted.
    pub source: String,
    pub server_version: String,
    /// The newest applied migration when the backup was taken (as the caller reported it).
    pub schema_version: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `user@host` of whoever took it.
    pub created_by: String,
    /// safeshift's version.
    pub tool_version: String,
    /// The program that wrote the file: `pg_dump (PostgreSQL) 15.18`, `SQLite 3.46.0 online backup`.
    pub dump_tool: String,
    pub size_bytes: u64,
    /// `sha256:<hex>` of the backup file.
    pub sha256: String,
    /// Row count and content hash of every table, taken in the same snapshot as the dump
    /// (empty when fingerprinting was turned off).
    #[serde(default)]
    pub tables: Vec<TableFingerprint>,
    /// The last verification, if any.
    #[serde(default)]
    pub verified: Option<VerificationRecord>,
}

/// How a backup was last verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    pub at: DateTime<Utc>,
    /// Restored into a scratch database and compared table by table.
    pub deep: bool,
    pub ok: bool,
    pub summary: String,
}

/// The metadata file of a backup file.
pub fn metadata_path(backup: &Path) -> PathBuf {
    let mut name = backup.file_name().unwrap_or_default().to_os_string();
    name.push(".json");
    backup.with_file_name(name)
}

impl Metadata {
    /// Reads the metadata beside `backup`.
    pub fn read(backup: &Path) -> Result<Metadata, BackupError> {
        let path = metadata_path(backup);
        let text = std::fs::read_to_string(&path).map_err(|error| BackupError::Unreadable {
            path: backup.to_path_buf(),
            message: format!(
                "its metadata file {} cannot be read ({error}); safeshift keeps one beside every backup it takes",
                path.display()
            ),
        })?;
        let metadata: Metadata =
            serde_json::from_str(&text).map_err(|error| BackupError::Unreadable {
                path: path.clone(),
                message: format!("not valid backup metadata: {error}"),
            })?;
        if metadata.format > FORMAT {
            return Err(BackupError::Unreadable {
                path,
                message: format!(
                    "metadata format {} is newer than this safeshift understands ({FORMAT})",
                    metadata.format
                ),
            });
        }
        Ok(metadata)
    }

    /// Writes the metadata beside `backup`, readable by its owner only, replacing it atomically.
    pub fn write(&self, backup: &Path) -> Result<(), BackupError> {
        let path = metadata_path(backup);
        let temporary = path.with_extension("json.partial");
        let text = serde_json::to_string_pretty(self).map_err(|error| BackupError::Unreadable {
            path: path.clone(),
            message: error.to_string(),
        })?;
        let mut file = create_private(&temporary)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| BackupError::io(format!("writing {}", temporary.display()), e))?;
        std::fs::rename(&temporary, &path)
            .map_err(|e| BackupError::io(format!("renaming {}", temporary.display()), e))
    }
}

/// `sha256:<hex>` of a finished hash.
pub(crate) fn sha256_text(hasher: sha2::Sha256) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    let mut text = String::from("sha256:");
    for byte in hasher.finalize().iter() {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Creates (or truncates) a file readable and writable by its owner only (0600), whatever the
/// umask; an existing file's mode is tightened too.
pub(crate) fn create_private(path: &Path) -> Result<File, BackupError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BackupError::io(format!("creating {}", path.display()), e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| BackupError::io(format!("setting the mode of {}", path.display()), e))?;
    Ok(file)
}

/// Creates the backup directory (0700) if it is missing.
pub(crate) fn ensure_directory(dir: &Path) -> Result<(), BackupError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        BackupError::io(
            format!("creating the backup directory {}", dir.display()),
            e,
        )
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| BackupError::io(format!("setting the mode of {}", dir.display()), e))
}

/// `{prefix}_{database}_{version}_{timestamp}.{extension}`, with every part reduced to
/// characters that are safe in a file name.
pub fn file_name(
    prefix: &str,
    database: &str,
    schema_version: Option<&str>,
    at: DateTime<Utc>,
    extension: &str,
) -> String {
    let safe = |text: &str| -> String {
        let cleaned: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if cleaned.is_empty() {
            "none".to_owned()
        } else {
            cleaned
        }
    };
    format!(
        "{}_{}_{}_{}.{extension}",
        safe(prefix),
        safe(database),
        safe(schema_version.unwrap_or("none")),
        at.format("%Y%m%dT%H%M%S%3fZ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern_and_stay_safe() {
        let at = DateTime::parse_from_rfc3339("2025-03-04T05:06:07.089Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            file_name("safeshift", "shop", Some("0004"), at, "dump"),
            "safeshift_shop_0004_20250304T050607089Z.dump"
        );
        assert_eq!(
            file_name("pre up", "a/b_c", None, at, "sqlite3"),
            "pre-up_a-b_c_none_20250304T050607089Z.sqlite3"
        );
    }

    #[test]
    fn private_files_are_0600_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
