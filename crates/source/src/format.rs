//! Which tool's layout a migrations directory follows: chosen with `--migration-format`, or detected from
//! what the directory holds.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{SourceError, SourceErrorKind};
use crate::template::Variables;

/// The tool whose file layout a migrations directory follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// safeshift's own layouts: dbmate's `-- migrate:up` / `-- migrate:down` sections,
    /// golang-migrate and sqlx `.up.sql` / `.down.sql` pairs, and the `rollback/` mirror.
    Safeshift,
    /// goose SQL files: `-- +goose Up` / `-- +goose Down` annotations.
    Goose,
    /// Flyway: `V…__…sql`, `U…__…sql` undo files and `R__…sql` repeatables, in the locations
    /// `flyway.conf` / `flyway.toml` name.
    Flyway,
    /// diesel: one directory per migration with `up.sql`, `down.sql` and `metadata.toml`.
    Diesel,
    /// Prisma Migrate: one directory per migration with `migration.sql`.
    Prisma,
    /// sqitch: `sqitch.plan` with `deploy/`, `revert/` and `verify/` scripts.
    Sqitch,
    /// Hand-run numbered files, with `-- Up migration` / `-- Down migration` comments or none.
    Plain,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Safeshift,
        Format::Goose,
        Format::Flyway,
        Format::Diesel,
        Format::Prisma,
        Format::Sqitch,
        Format::Plain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Safeshift => "safeshift",
            Format::Goose => "goose",
            Format::Flyway => "flyway",
            Format::Diesel => "diesel",
            Format::Prisma => "prisma",
            Format::Sqitch => "sqitch",
            Format::Plain => "plain",
        }
    }

    /// A format by name; `dbmate`, `golang-migrate` and `sqlx` name safeshift's own layouts,
    /// which are theirs.
    pub fn parse(name: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
            .or(match name.as_str() {
                "dbmate" | "golang-migrate" | "migrate" | "sqlx" => Some(Format::Safeshift),
                _ => None,
            })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to read a migrations directory.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The layout to read; `None` detects it.
    pub format: Option<Format>,
    /// Values for template placeholders.
    pub variables: Variables,
}

/// The format a directory is read in, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    pub format: Format,
    /// What decided it: `--migration-format`, or what the directory holds (`sqitch.plan`, `24 files with
    /// -- +goose annotations`).
    pub reason: String,
}

/// Files that name a directory's format by being there.
pub(crate) const SQITCH_PLAN: &str = "sqitch.plan";
pub(crate) const SQITCH_CONF: &str = "sqitch.conf";
pub(crate) const FLYWAY_CONFIG_FILES: [&str; 3] =
    ["flyway.toml", "flyway.conf", "conf/flyway.conf"];
pub(crate) const PRISMA_LOCK: &str = "migration_lock.toml";

/// Detects the format of `directory` from the files it holds: a `sqitch.plan`, a Flyway
/// configuration or `V…__` files, diesel or Prisma migration directories; otherwise the files are
/// numbered SQL files whose own markers say how to read each (safeshift's sections, goose
/// annotations, plain `-- Up migration` comments).
pub fn detect_format(directory: &Path) -> Result<Detection, SourceError> {
    if let Some(file) = [SQITCH_PLAN, SQITCH_CONF]
        .into_iter()
        .find(|name| directory.join(name).is_file())
    {
        return Ok(Detection {
            format: Format::Sqitch,
            reason: format!("{file} is in {}", directory.display()),
        });
    }
    if let Some(config) = FLYWAY_CONFIG_FILES
        .iter()
        .find(|name| directory.join(name).is_file())
    {
        return Ok(Detection {
            format: Format::Flyway,
            reason: format!("{config} is in {}", directory.display()),
        });
    }
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        // The loader reports an unreadable directory with its own advice.
        Err(_) => {
            return Ok(Detection {
                format: Format::Safeshift,
                reason: "default".into(),
            });
        }
    };
    let mut diesel = 0;
    let mut prisma = 0;
    let mut flyway = 0;
    let mut numbered = 0;
    let mut prisma_lock = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            if path.join("up.sql").is_file() {
                diesel += 1;
            } else if path.join("migration.sql").is_file() {
                prisma += 1;
            } else if crate::layouts::flyway::holds_flyway_files(&path) {
                flyway += 1;
            }
        } else if name == PRISMA_LOCK {
            prisma_lock = true;
        } else if name.ends_with(".sql") {
            if crate::layouts::flyway::is_flyway_file_name(name) {
                flyway += 1;
            } else if name.starts_with(|c: char| c.is_ascii_digit()) {
                numbered += 1;
            }
        }
    }
    let kinds: Vec<(Format, usize, &str)> = [
        (
            Format::Diesel,
            diesel,
            "diesel migration directories (with up.sql)",
        ),
        (
            Format::Prisma,
            prisma,
            "Prisma migration directories (with migration.sql)",
        ),
        (Format::Flyway, flyway, "Flyway files (V…__…sql, R__…sql)"),
        (Format::Safeshift, numbered, "numbered .sql files"),
    ]
    .into_iter()
    .filter(|(_, count, _)| *count > 0)
    .collect();
    match kinds.as_slice() {
        [] if prisma_lock => Ok(Detection {
            format: Format::Prisma,
            reason: format!("{PRISMA_LOCK} is in {}", directory.display()),
        }),
        [] => Ok(Detection {
            format: Format::Safeshift,
            reason: "no migrations yet".into(),
        }),
        // Numbered files say how to read themselves; the loader names the markers they carry.
        [(Format::Safeshift, count, what)] => Ok(Detection {
            format: Format::Safeshift,
            reason: format!("{count} {what}"),
        }),
        [(format, count, what)] => Ok(Detection {
            format: *format,
            reason: format!("{count} {what}"),
        }),
        several => Err(SourceError::new(
            SourceErrorKind::Layout,
            directory,
            format!(
                "the directory mixes layouts: {}",
                several
                    .iter()
                    .map(|(_, count, what)| format!("{count} {what}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .help("keep one tool's layout per directory, or choose one with --migration-format (the files of the others are then reported as ignored)")),
    }
}

/// Where a project keeps its migrations when safeshift is not told: `migrations/` if it exists,
/// else the place the other tool's configuration names or uses by default (a Flyway
/// configuration's directory or `sql/`, `sqitch.plan`'s directory, diesel.toml's
/// `migrations_directory`, `prisma/migrations`, `db/migrations`).
pub fn discover_directory(root: &Path) -> Option<PathBuf> {
    let migrations = root.join("migrations");
    if migrations.is_dir() {
        return Some(migrations);
    }
    if root.join(SQITCH_PLAN).is_file()
        || root.join(SQITCH_CONF).is_file()
        || FLYWAY_CONFIG_FILES
            .iter()
            .any(|name| root.join(name).is_file())
    {
        return Some(root.to_path_buf());
    }
    if let Some(dir) = crate::layouts::diesel::configured_directory(root) {
        return Some(dir);
    }
    ["prisma/migrations", "db/migrations", "sql", "db/migration"]
        .into_iter()
        .map(|relative| root.join(relative))
        .find(|dir| dir.is_dir())
}
