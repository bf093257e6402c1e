//! Writing a new migration file: the next version, a file name from the description, both
//! sections and a short header, in the layout the directory already uses.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::load::ROLLBACK_DIRECTORY;
use crate::migration::Layout;
use crate::version::Version;

/// How new versions are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionScheme {
    /// `0001`, `0002`, … (the width of the newest version is kept).
    Sequence,
    /// `YYYYMMDDHHMMSS` in UTC.
    Timestamp,
}

/// A new migration, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMigration {
    pub version: String,
    /// Files to create, with their contents.
    pub files: Vec<(PathBuf, String)>,
}

/// Plans the next migration in `directory`, given the versions already there (see
/// [`crate::existing_versions`]). `scheme` defaults to the one the newest migration uses
/// (sequence for an empty directory); `layout` defaults to the one most migrations use.
pub fn plan_new_migration(
    directory: &Path,
    existing: &[(Version, Layout)],
    description: &str,
    scheme: Option<VersionScheme>,
    layout: Option<Layout>,
    now: DateTime<Utc>,
) -> Result<NewMigration, String> {
    let slug = slugify(description);
    if slug.is_empty() {
        return Err(format!(
            "`{description}` has no letters or digits to name the file with; describe the change, e.g. `add idempotency tables`"
        ));
    }
    let last = existing
        .iter()
        .map(|(version, _)| version)
        .filter(|version| !version.is_repeatable())
        .max();
    let scheme = scheme.unwrap_or(match last {
        Some(version) if version.is_timestamp() => VersionScheme::Timestamp,
        _ => VersionScheme::Sequence,
    });
    let version = next_version(last, scheme, now);
    let layout = layout
        .or_else(|| prevailing_layout(existing))
        .unwrap_or(Layout::Sections);
    files_for(directory, layout, version, &slug, description, now, None)
}

/// A migration at `version` whose up section is `up_sql` and which has no down section (a
/// baseline of a live schema), in `layout` or the one most migrations of the directory use.
pub fn plan_migration_with_sql(
    directory: &Path,
    existing: &[(Version, Layout)],
    version: &str,
    description: &str,
    layout: Option<Layout>,
    up_sql: &str,
    now: DateTime<Utc>,
) -> Result<NewMigration, String> {
    let layout = layout
        .or_else(|| prevailing_layout(existing))
        .unwrap_or(Layout::Sections);
    files_for(
        directory,
        layout,
        version.to_owned(),
        &slugify(description),
        description,
        now,
        Some(up_sql),
    )
}

/// The files of a new migration in `layout`: templates with empty sections, or, with `up_sql`,
/// that SQL as the up section and no down section.
fn files_for(
    directory: &Path,
    layout: Layout,
    version: String,
    slug: &str,
    description: &str,
    now: DateTime<Utc>,
    up_sql: Option<&str>,
) -> Result<NewMigration, String> {
    let header = header(&version, description, now);
    let rollback_header = format!("-- Rollback of migration {version}: {description}\n\n");
    let title = format!("-- Migration {version}: {description}\n\n");
    // The up file: a template, or the given SQL after the up marker.
    let up = |path: PathBuf, template: String, marker: &str| -> (PathBuf, String) {
        match up_sql {
            None => (path, template),
            Some(sql) => (path, format!("{marker}{sql}")),
        }
    };
    let (up_file, down_file) = match layout {
        Layout::Sections => (
            up(
                directory.join(format!("{version}_{slug}.sql")),
                format!("{header}\n-- migrate:up\n\n\n-- migrate:down\n\n"),
                "-- migrate:up\n",
            ),
            None,
        ),
        Layout::Pair => (
            up(
                directory.join(format!("{version}_{slug}.up.sql")),
                format!("{header}\n"),
                "",
            ),
            Some((
                directory.join(format!("{version}_{slug}.down.sql")),
                rollback_header,
            )),
        ),
        Layout::RollbackDirectory => {
            let subject = slug.split_once('_').map_or(slug, |(_, rest)| rest);
            (
                up(
                    directory.join(format!("{version}_{slug}.sql")),
                    format!("{header}\n"),
                    "",
                ),
                Some((
                    directory
                        .join(ROLLBACK_DIRECTORY)
                        .join(format!("{version}_rollback_{subject}.sql")),
                    rollback_header,
                )),
            )
        }
        Layout::Goose => (
            up(
                directory.join(format!("{version}_{slug}.sql")),
                format!("{title}-- +goose Up\n\n\n-- +goose Down\n\n"),
                "-- +goose Up\n",
            ),
            None,
        ),
        Layout::Plain => (
            up(
                directory.join(format!("{version}_{slug}.sql")),
                format!("{title}-- Up Migration\n\n\n-- Down Migration\n\n"),
                "-- Up Migration\n",
            ),
            None,
        ),
        Layout::Flyway => {
            let location = crate::layouts::flyway::read_config(directory)
                .ok()
                .and_then(|config| config.locations.into_iter().find(|l| l.is_dir()))
                .unwrap_or_else(|| directory.to_path_buf());
            let file_version = version.replace('.', "_");
            (
                up(
                    location.join(format!("V{file_version}__{slug}.sql")),
                    title.clone(),
                    "",
                ),
                Some((
                    location.join(format!("U{file_version}__{slug}.sql")),
                    rollback_header,
                )),
            )
        }
        Layout::Diesel | Layout::Prisma => {
            let folder = if layout == Layout::Diesel && version.len() == 14 {
                // diesel's own form, 2024-01-15-093000, which it reads as 20240115093000.
                format!(
                    "{}-{}-{}-{}_{slug}",
                    &version[..4],
                    &version[4..6],
                    &version[6..8],
                    &version[8..]
                )
            } else {
                format!("{version}_{slug}")
            };
            let up_name = if layout == Layout::Diesel {
                "up.sql"
            } else {
                "migration.sql"
            };
            (
                up(directory.join(&folder).join(up_name), title.clone(), ""),
                Some((directory.join(&folder).join("down.sql"), rollback_header)),
            )
        }
        Layout::Sqitch => {
            return Err(
                "safeshift does not add changes to sqitch.plan; add the change with `sqitch add`, and safeshift reads it"
                    .to_owned(),
            );
        }
    };
    let mut files = vec![up_file];
    if up_sql.is_none() {
        files.extend(down_file);
    }
    Ok(NewMigration { version, files })
}

/// The layout most migrations use.
fn prevailing_layout(existing: &[(Version, Layout)]) -> Option<Layout> {
    [
        Layout::Sections,
        Layout::Pair,
        Layout::RollbackDirectory,
        Layout::Goose,
        Layout::Flyway,
        Layout::Diesel,
        Layout::Prisma,
        Layout::Sqitch,
        Layout::Plain,
    ]
    .into_iter()
    .map(|layout| {
        (
            layout,
            existing.iter().filter(|(_, l)| *l == layout).count(),
        )
    })
    .filter(|&(_, count)| count > 0)
    .max_by_key(|&(_, count)| count)
    .map(|(layout, _)| layout)
}

/// Writes the planned files, never overwriting an existing one.
pub fn write_new_migration(migration: &NewMigration) -> std::io::Result<()> {
    for (path, contents) in &migration.files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        file.write_all(contents.as_bytes())?;
    }
    Ok(())
}

fn header(version: &str, description: &str, now: DateTime<Utc>) -> String {
    format!(
        "-- Migration {version}: {description}\n\
         -- Created {date}.\n\
         --\n\
         -- The up section runs in one transaction, with safeshift's lock_timeout. Statements that\n\
         -- cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM, …) need\n\
         -- `transaction:false` on the marker line; safeshift then runs them one at a time and\n\
         -- resumes from a failed one.\n",
        date = now.format("%Y-%m-%d"),
    )
}

fn next_version(last: Option<&Version>, scheme: VersionScheme, now: DateTime<Utc>) -> String {
    match scheme {
        VersionScheme::Timestamp => {
            let stamp = now.format("%Y%m%d%H%M%S").to_string();
            match last {
                // Two files in the same second, or a clock behind the newest file: keep order.
                Some(last) if Version::parse(&stamp).is_some_and(|s| &s <= last) => {
                    increment(last.as_str())
                }
                _ => stamp,
            }
        }
        // After timestamps a short sequence number would sort first, so the newest version is
        // incremented whatever its form.
        VersionScheme::Sequence => {
            last.map_or_else(|| "0001".to_owned(), |last| increment(last.as_str()))
        }
    }
}

/// Adds one to the last dot-separated group, keeping its zero padding.
fn increment(version: &str) -> String {
    let (prefix, group) = match version.rsplit_once('.') {
        Some((prefix, group)) => (format!("{prefix}."), group),
        None => (String::new(), version),
    };
    let width = group.len().max(if prefix.is_empty() { 4 } else { 1 });
    // Add one with decimal carry on the digit string itself, so any length works.
    let mut digits: Vec<u8> = group.bytes().collect();
    let mut index = digits.len();
    loop {
        if index == 0 {
            digits.insert(0, b'1');
            break;
        }
        index -= 1;
        if digits[index] == b'9' {
            digits[index] = b'0';
        } else {
            digits[index] += 1;
            break;
        }
    }
    let number = String::from_utf8(digits).unwrap_or_default();
    format!("{prefix}{number:0>width$}")
}

/// `Add idempotency tables!` → `add_idempotency_tables`.
pub fn slugify(description: &str) -> String {
    let mut slug = String::new();
    for c in description.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
    }
    slug.trim_end_matches('_').to_owned()
}

/// The default migrations directory.
pub fn default_directory() -> &'static Path {
    Path::new("migrations")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 30, 5).unwrap()
    }

    #[test]
    fn sequences_keep_their_width() {
        assert_eq!(increment("0004"), "0005");
        assert_eq!(increment("0099"), "0100");
        assert_eq!(increment("9999"), "10000");
        assert_eq!(increment("7"), "0008");
        assert_eq!(increment("1.9"), "1.10");
    }

    #[test]
    fn timestamps_follow_the_clock_but_never_go_back() {
        let last = Version::parse("20261121103005").unwrap();
        assert_eq!(
            next_version(Some(&last), VersionScheme::Timestamp, now()),
            "20261121103006"
        );
        let older = Version::parse("20250101000000").unwrap();
        assert_eq!(
            next_version(Some(&older), VersionScheme::Timestamp, now()),
            "20261121103005"
        );
        assert_eq!(next_version(None, VersionScheme::Sequence, now()), "0001");
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Add idempotency tables!"), "add_idempotency_tables");
        assert_eq!(slugify("  users: add e-mail  "), "users_add_e_mail");
        assert_eq!(slugify("!!!"), "");
    }
}
