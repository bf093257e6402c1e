//! Prisma Migrate: `prisma/migrations/{version}_{name}/migration.sql`, one directory per
//! migration, beside `migration_lock.toml`. Prisma has no down migrations; safeshift reads an
//! optional `down.sql` in the migration's directory as its rollback (Prisma ignores it).
//!
//! Prisma sends a migration's script to the server in one query string, which PostgreSQL runs as
//! one transaction; a script whose only statement cannot run in a transaction (a lone
//! `CREATE INDEX CONCURRENTLY`) runs outside one, and so it does here.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{SourceError, SourceErrorKind, SourceErrors};
use crate::format::{LoadOptions, PRISMA_LOCK};
use crate::layouts::{empty_file_error, needs_no_transaction, read_file, sorted_entries};
use crate::load::{Loaded, SourceWarning};
use crate::migration::{Layout, Migration, Section, SectionParts};
use crate::options::{Direction, SectionOptions};
use crate::version::Version;

const NO_TRANSACTION_HELP: &str = "Prisma runs a migration in one transaction unless its only statement cannot run in one: move the statement into a migration directory of its own";

pub(crate) fn load(directory: &Path, options: &LoadOptions) -> Result<Loaded, SourceErrors> {
    let mut loaded = Loaded::default();
    for (name, path) in sorted_entries(directory)? {
        if !path.is_dir() {
            if name != PRISMA_LOCK {
                loaded.warnings.push(SourceWarning {
                    path,
                    message: "ignored: Prisma migrations are directories with a migration.sql"
                        .into(),
                });
            }
            continue;
        }
        match read_migration(directory, &name, &path, options) {
            Ok(migration) => loaded.migrations.push(migration),
            Err(error) => loaded.errors.push(error),
        }
    }
    Ok(loaded)
}

fn read_migration(
    directory: &Path,
    name: &str,
    path: &Path,
    options: &LoadOptions,
) -> Result<Migration, SourceError> {
    let script = path.join("migration.sql");
    if !script.is_file() {
        return Err(SourceError::new(
            SourceErrorKind::BadFileName,
            path,
            "a Prisma migration directory without migration.sql",
        )
        .help("add migration.sql, or move the directory out of the migrations directory (Prisma refuses it too)"));
    }
    let (version, description) = name.split_once('_').unwrap_or((name, ""));
    let Some(version) = Version::parse(version) else {
        return Err(SourceError::new(
            SourceErrorKind::BadFileName,
            path,
            format!("`{name}` does not start with a number followed by `_`"),
        )
        .help("safeshift orders Prisma migrations by the number their directory starts with, as `prisma migrate dev` names them (20240115093000_create_users, 0_init)"));
    };
    let relative =
        |file: &str| PathBuf::from(path.strip_prefix(directory).unwrap_or(path)).join(file);
    let section = |file_path: &Path, direction: Direction, relative_path: PathBuf| {
        let file = read_file(file_path, &options.variables)?;
        if file.text.as_str().trim().is_empty() {
            return Err(empty_file_error(file_path));
        }
        let end = file.text.as_str().len();
        let transaction = !needs_no_transaction(file_path, &file, true)?;
        Section::build(SectionParts {
            direction,
            path: file_path,
            relative_path: &relative_path,
            file: &file,
            marker_line: None,
            options: SectionOptions {
                transaction,
                ..SectionOptions::default()
            },
            range: 0..end,
            body: 0..end,
            no_transaction_help: Some(NO_TRANSACTION_HELP.to_owned()),
        })
    };
    let up = section(&script, Direction::Up, relative("migration.sql"))?;
    let down_path = path.join("down.sql");
    let down = down_path
        .is_file()
        .then(|| section(&down_path, Direction::Down, relative("down.sql")))
        .transpose()?;
    Ok(Migration {
        version,
        name: description.to_owned(),
        layout: Layout::Prisma,
        up,
        down,
        verify: None,
    })
}

/// Whether `checksum` (as `_prisma_migrations.checksum` holds it) is the checksum of `script`
/// (the bytes of `migration.sql`), as Prisma compares them: the SHA-256 of the script, of its
/// LF form or of its CRLF form (git may have changed the line endings), written as 64 hex digits
/// or, by older Prisma versions, without zero padding.
pub fn prisma_checksum_matches(script: &[u8], checksum: &str) -> bool {
    let text = String::from_utf8_lossy(script);
    let lf = text.replace("\r\n", "\n");
    let crlf = lf.replace('\n', "\r\n");
    [script.to_vec(), lf.into_bytes(), crlf.into_bytes()]
        .iter()
        .any(|bytes| {
            let digest = Sha256::digest(bytes);
            let padded: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            let unpadded: String = digest.iter().map(|b| format!("{b:x}")).collect();
            checksum == padded || checksum == unpadded
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_ignore_line_endings() {
        // sha256("SELECT 1;\n")
        let lf = b"SELECT 1;\n";
        let checksum: String = Sha256::digest(lf)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(prisma_checksum_matches(lf, &checksum));
        assert!(prisma_checksum_matches(b"SELECT 1;\r\n", &checksum));
        assert!(!prisma_checksum_matches(b"SELECT 2;\n", &checksum));
    }
}
