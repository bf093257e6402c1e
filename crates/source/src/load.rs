//! Finding migrations in a directory, in each supported layout, and reading their sections.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::checksum::Checksum;
use crate::error::{SourceError, SourceErrorKind, SourceErrors};
use crate::migration::{Layout, Migration, Section};
use crate::options::{self, Direction, KNOWN_OPTIONS, MarkerLine, SectionOptions};
use crate::statements::has_code;
use crate::text::SourceText;
use crate::version::Version;

/// The directory, under the migrations directory, that holds separate rollback files.
pub const ROLLBACK_DIRECTORY: &str = "rollback";

/// Something worth telling the user that does not stop a run (an ignored file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceWarning {
    pub path: PathBuf,
    pub message: String,
}

/// Every migration in a directory, ordered by version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub directory: PathBuf,
    pub migrations: Vec<Migration>,
    pub warnings: Vec<SourceWarning>,
}

impl MigrationSet {
    /// Reads every migration in `directory`. Reports every problem found, not just the first;
    /// on any error no migration is returned, so nothing can be applied from a broken directory.
    pub fn load(directory: impl AsRef<Path>) -> Result<MigrationSet, SourceErrors> {
        let directory = directory.as_ref();
        let mut found = Found::default();
        found.scan_directory(directory, Path::new(""))?;
        let rollback = directory.join(ROLLBACK_DIRECTORY);
        if rollback.is_dir() {
            found.scan_directory(&rollback, Path::new(ROLLBACK_DIRECTORY))?;
        }
        let Found {
            candidates,
            mut errors,
            warnings,
        } = found;

        let mut by_version: BTreeMap<Version, Vec<Candidate>> = BTreeMap::new();
        for candidate in candidates {
            by_version
                .entry(candidate.version.clone())
                .or_default()
                .push(candidate);
        }
        let mut migrations = Vec::new();
        for (_, group) in by_version {
            match assemble(group) {
                Ok(migration) => migrations.push(migration),
                Err(mut group_errors) => errors.append(&mut group_errors),
            }
        }
        if errors.is_empty() {
            Ok(MigrationSet {
                directory: directory.to_path_buf(),
                migrations,
                warnings,
            })
        } else {
            Err(SourceErrors(errors))
        }
    }

    /// The migration with this version.
    pub fn get(&self, version: &Version) -> Option<&Migration> {
        self.migrations
            .binary_search_by(|m| m.version.cmp(version))
            .ok()
            .map(|i| &self.migrations[i])
    }

    /// The newest migration.
    pub fn last(&self) -> Option<&Migration> {
        self.migrations.last()
    }
}

/// The versions and layouts of the migrations in a directory, from file names alone (contents
/// are not read, so a migration still being written does not get in the way). For `new`.
pub fn existing_versions(directory: &Path) -> Result<Vec<(Version, Layout)>, SourceError> {
    let mut found = Found::default();
    found.scan_directory(directory, Path::new(""))?;
    let rollback = directory.join(ROLLBACK_DIRECTORY);
    if rollback.is_dir() {
        found.scan_directory(&rollback, Path::new(ROLLBACK_DIRECTORY))?;
    }
    let rollbacks: Vec<Version> = found
        .candidates
        .iter()
        .filter(|c| c.role == Role::Rollback)
        .map(|c| c.version.clone())
        .collect();
    let mut versions: Vec<(Version, Layout)> = found
        .candidates
        .into_iter()
        .filter_map(|c| match c.role {
            Role::Single if rollbacks.contains(&c.version) => {
                Some((c.version, Layout::RollbackDirectory))
            }
            Role::Single => Some((c.version, Layout::Sections)),
            Role::PairUp => Some((c.version, Layout::Pair)),
            Role::PairDown | Role::Rollback => None,
        })
        .collect();
    versions.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(versions)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `{version}_{name}.sql` in the migrations directory.
    Single,
    PairUp,
    PairDown,
    /// A file in `rollback/`.
    Rollback,
}

#[derive(Debug)]
struct Candidate {
    role: Role,
    version: Version,
    name: String,
    path: PathBuf,
    relative_path: PathBuf,
}

#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    errors: Vec<SourceError>,
    warnings: Vec<SourceWarning>,
}

impl Found {
    fn scan_directory(&mut self, directory: &Path, relative: &Path) -> Result<(), SourceError> {
        let entries = std::fs::read_dir(directory).map_err(|error| {
            let error = SourceError::new(
                SourceErrorKind::Io,
                directory,
                format!("cannot read the migrations directory: {error}"),
            );
            if directory.exists() {
                error
            } else {
                error.help("create it (`safeshift init` does), or point safeshift at your migrations with --dir or `directory` in safeshift.toml")
            }
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| {
                SourceError::new(
                    SourceErrorKind::Io,
                    directory,
                    format!("cannot list the directory: {error}"),
                )
            })?;
            names.push(entry.file_name());
        }
        names.sort();
        let in_rollback = !relative.as_os_str().is_empty();
        for name in names {
            let path = directory.join(&name);
            let relative_path = relative.join(&name);
            let Some(name) = name.to_str() else {
                self.warnings.push(SourceWarning {
                    path,
                    message: "ignored: the file name is not UTF-8".into(),
                });
                continue;
            };
            if name.starts_with('.') || !name.ends_with(".sql") || !path.is_file() {
                continue;
            }
            match parse_file_name(name, in_rollback) {
                FileName::Migration { role, version, name } => self.candidates.push(Candidate {
                    role,
                    version,
                    name,
                    path,
                    relative_path,
                }),
                FileName::NotMigration => self.warnings.push(SourceWarning {
                    path,
                    message: "ignored: the name does not start with a version ({version}_{description}.sql)".into(),
                }),
                FileName::Malformed(message) => self.errors.push(
                    SourceError::new(SourceErrorKind::BadFileName, &path, message)
                        .help("name migrations {version}_{description}.sql, e.g. 0004_add_idempotency_tables.sql, where the version is digits (optionally dot-separated)"),
                ),
            }
        }
        Ok(())
    }
}

enum FileName {
    Migration {
        role: Role,
        version: Version,
        name: String,
    },
    NotMigration,
    Malformed(String),
}

fn parse_file_name(file_name: &str, in_rollback: bool) -> FileName {
    let (stem, role) = if in_rollback {
        (
            file_name.strip_suffix(".sql").unwrap_or(file_name),
            Role::Rollback,
        )
    } else if let Some(stem) = file_name.strip_suffix(".up.sql") {
        (stem, Role::PairUp)
    } else if let Some(stem) = file_name.strip_suffix(".down.sql") {
        (stem, Role::PairDown)
    } else {
        (
            file_name.strip_suffix(".sql").unwrap_or(file_name),
            Role::Single,
        )
    };
    if !stem.starts_with(|c: char| c.is_ascii_digit()) {
        return FileName::NotMigration;
    }
    let Some((version, name)) = stem.split_once('_') else {
        return FileName::Malformed(format!(
            "`{file_name}` has no description after the version"
        ));
    };
    let Some(version) = Version::parse(version) else {
        return FileName::Malformed(format!(
            "`{file_name}` does not start with a valid version (`{version}`)"
        ));
    };
    if name.is_empty() {
        return FileName::Malformed(format!("`{file_name}` has an empty description"));
    }
    FileName::Migration {
        role,
        version,
        name: name.to_owned(),
    }
}

/// Builds one migration from the files that share a version.
fn assemble(group: Vec<Candidate>) -> Result<Migration, Vec<SourceError>> {
    let (ups, others): (Vec<_>, Vec<_>) = group
        .into_iter()
        .partition(|c| matches!(c.role, Role::Single | Role::PairUp));
    let (pair_downs, rollbacks): (Vec<_>, Vec<_>) =
        others.into_iter().partition(|c| c.role == Role::PairDown);

    let mut errors = Vec::new();
    let Some(up) = ups.first() else {
        for orphan in pair_downs.iter().chain(&rollbacks) {
            errors.push(orphan_error(orphan));
        }
        return Err(errors);
    };
    for duplicate in ups
        .iter()
        .skip(1)
        .chain(pair_downs.iter().skip(1))
        .chain(rollbacks.iter().skip(1))
    {
        errors.push(
            SourceError::new(
                SourceErrorKind::DuplicateVersion,
                &duplicate.path,
                format!("version {} is also used by {}", duplicate.version, up.path.display()),
            )
            .help("give each migration its own version; renumber one of them (safeshift new picks the next free version)"),
        );
    }
    let pair_down = pair_downs.first();
    if let Some(down) = pair_down
        && (up.role != Role::PairUp || down.name != up.name)
    {
        errors.push(orphan_error(down));
    }
    let rollback = rollbacks.first();
    if let (Some(rollback), Some(down)) = (rollback, pair_down)
        && up.role == Role::PairUp
        && down.name == up.name
    {
        errors.push(
            SourceError::new(
                SourceErrorKind::DuplicateVersion,
                &rollback.path,
                format!(
                    "version {} already has a down file, {}",
                    rollback.version,
                    down.path.display()
                ),
            )
            .help("keep one of the two down files"),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let read = |candidate: &Candidate| -> Result<SourceText, SourceError> {
        let bytes = std::fs::read(&candidate.path).map_err(|error| {
            SourceError::new(
                SourceErrorKind::Io,
                &candidate.path,
                format!("cannot read the file: {error}"),
            )
        })?;
        let text = SourceText::from_bytes(&candidate.path, &bytes)?;
        if text.as_str().trim().is_empty() {
            return Err(SourceError::new(
                SourceErrorKind::Empty,
                &candidate.path,
                "the file is empty",
            )
            .help("write the migration, or delete the file"));
        }
        Ok(text)
    };
    let result = (|| -> Result<Migration, SourceError> {
        let up_text = read(up)?;
        let rollback_text = rollback
            .map(|r| read(r).map(|text| (r, text)))
            .transpose()?;
        let (layout, up_section, mut down_section) = match up.role {
            Role::Single => {
                let (up_section, down_section) =
                    read_sections_file(up, up_text, rollback_text.as_ref().map(|(r, _)| *r))?;
                let layout = if rollback.is_some() {
                    Layout::RollbackDirectory
                } else {
                    Layout::Sections
                };
                (layout, up_section, down_section)
            }
            _ => (
                Layout::Pair,
                read_whole_file(up, up_text, Direction::Up)?,
                None,
            ),
        };
        if let Some(down) = pair_down {
            down_section = Some(read_whole_file(down, read(down)?, Direction::Down)?);
        }
        if let Some((rollback, text)) = rollback_text {
            down_section = Some(read_whole_file(rollback, text, Direction::Down)?);
        }
        Ok(Migration {
            version: up.version.clone(),
            name: up.name.clone(),
            layout,
            up: up_section,
            down: down_section,
        })
    })();
    result.map_err(|error| vec![error])
}

fn orphan_error(orphan: &Candidate) -> SourceError {
    let (message, help) = match orphan.role {
        Role::Rollback => (
            format!("rollback file for version {} has no migration with that version", orphan.version),
            "rollback files mirror a migration in the directory above: rollback/0004_rollback_x.sql belongs to 0004_<action>_x.sql".to_owned(),
        ),
        _ => (
            format!("down file has no up file `{}_{}.up.sql`", orphan.version, orphan.name),
            "a .down.sql file pairs with the .up.sql file of the same name; add or rename the up file, or delete this one".to_owned(),
        ),
    };
    SourceError::new(SourceErrorKind::OrphanDown, &orphan.path, message).help(help)
}

/// A marker line found in a file.
struct Marker {
    line: u32,
    /// Byte range of the whole line.
    line_range: Range<usize>,
    options: SectionOptions,
}

#[derive(Default)]
struct Markers {
    up: Option<Marker>,
    down: Option<Marker>,
}

/// Finds the section markers of a file, rejecting near misses, unknown options, repeated and
/// out-of-order markers, and markers that do not belong in this kind of file.
fn find_markers(candidate: &Candidate, source: &SourceText) -> Result<Markers, SourceError> {
    let path = &candidate.path;
    let mut markers = Markers::default();
    for (line, range) in source.lines() {
        let text = &source.as_str()[range.clone()];
        match options::classify_line(text) {
            MarkerLine::NotMarker => {}
            MarkerLine::NearMiss => {
                return Err(SourceError::new(
                    SourceErrorKind::UnknownMarker,
                    path,
                    format!("`{}` looks like a section marker but is not one", text.trim()),
                )
                .at_line(line)
                .help("write the markers exactly `-- migrate:up` and `-- migrate:down` (lower case, no space after the colon)"));
            }
            MarkerLine::Goose => {
                return Err(SourceError::new(
                    SourceErrorKind::UnknownMarker,
                    path,
                    format!("goose annotations are not supported: `{}`", text.trim()),
                )
                .at_line(line)
                .help("use `-- migrate:up` for `-- +goose Up`, `-- migrate:down` for `-- +goose Down`, and add transaction:false to the marker for `-- +goose NO TRANSACTION`"));
            }
            MarkerLine::Marker {
                direction,
                options,
                options_offset,
            } => {
                let parsed = options::parse_options(options).map_err(|error| {
                    let column = text[..options_offset + error.offset].chars().count() as u32 + 1;
                    SourceError::new(SourceErrorKind::UnknownOption, path, error.message)
                        .at(line, column)
                        .help(format!("known options: {KNOWN_OPTIONS}"))
                })?;
                let misplaced = |message: String, help: &str| {
                    SourceError::new(SourceErrorKind::MisplacedMarker, path, message)
                        .at_line(line)
                        .help(help.to_owned())
                };
                match (candidate.role, direction) {
                    (Role::PairUp, Direction::Down) => {
                        return Err(misplaced(
                            "a .up.sql file holds only the up migration, but this line starts a down section".into(),
                            &format!("move the down section into {}_{}.down.sql", candidate.version, candidate.name),
                        ));
                    }
                    (Role::PairDown | Role::Rollback, Direction::Up) => {
                        return Err(misplaced(
                            "a down file holds only the rollback, but this line starts an up section".into(),
                            "move the up section into the migration's up file",
                        ));
                    }
                    _ => {}
                }
                if direction == Direction::Up
                    && markers.up.is_none()
                    && let Some(down) = &markers.down
                {
                    return Err(misplaced(
                        format!(
                            "`-- migrate:up` comes after `-- migrate:down` (line {})",
                            down.line
                        ),
                        "put the up section first and the down section after it",
                    ));
                }
                let slot = match direction {
                    Direction::Up => &mut markers.up,
                    Direction::Down => &mut markers.down,
                };
                if let Some(first) = slot {
                    return Err(misplaced(
                        format!(
                            "second `-- migrate:{direction}` marker (the first is on line {})",
                            first.line
                        ),
                        "a migration has one up section and at most one down section; merge them",
                    ));
                }
                *slot = Some(Marker {
                    line,
                    line_range: range,
                    options: parsed,
                });
            }
        }
    }
    Ok(markers)
}

/// Reads a `{version}_{name}.sql` file: `-- migrate:up` and `-- migrate:down` sections, or,
/// when a rollback file exists for it, the whole file as the up migration.
fn read_sections_file(
    candidate: &Candidate,
    source: SourceText,
    rollback: Option<&Candidate>,
) -> Result<(Section, Option<Section>), SourceError> {
    let path = &candidate.path;
    let markers = find_markers(candidate, &source)?;
    let end = source.as_str().len();
    match (&markers.up, &markers.down, rollback) {
        (None, None, Some(_)) => {
            let up = build_section(candidate, &source, Direction::Up, None, 0..end)?;
            require_statements(&up)?;
            Ok((up, None))
        }
        (None, Some(down), _) => Err(SourceError::new(
            SourceErrorKind::MissingUp,
            path,
            "the file has a `-- migrate:down` section but no `-- migrate:up` section",
        )
        .at_line(down.line)
        .help("add a line `-- migrate:up` above the migration's SQL")),
        (None, None, None) => Err(SourceError::new(SourceErrorKind::MissingUp, path, "the file has no `-- migrate:up` section")
            .at_line(1)
            .help("start the migration with a line `-- migrate:up` and put its rollback after a line `-- migrate:down` (dbmate's layout); or name the file .up.sql, or put the rollback in rollback/")),
        (Some(_), Some(down), Some(rollback)) => Err(SourceError::new(
            SourceErrorKind::MisplacedMarker,
            path,
            format!("the file has a `-- migrate:down` section and a rollback file, {}", rollback.path.display()),
        )
        .at_line(down.line)
        .help("keep one of the two rollbacks")),
        (Some(up_marker), down_marker, _) => {
            if let Some(token) = has_code(path, &source, 0..up_marker.line_range.start)? {
                let (line, column) = source.line_col(token.start);
                return Err(SourceError::new(
                    SourceErrorKind::CodeBeforeUp,
                    path,
                    format!("SQL before the `-- migrate:up` marker (line {}) would never run", up_marker.line),
                )
                .at(line, column)
                .help("move it below the marker, or delete it; only comments may stand above the up section"));
            }
            let up_end = down_marker.as_ref().map_or(end, |d| d.line_range.start);
            let up = build_section(candidate, &source, Direction::Up, Some(up_marker), up_marker.line_range.start..up_end)?;
            require_statements(&up)?;
            let down = down_marker
                .as_ref()
                .map(|d| build_section(candidate, &source, Direction::Down, Some(d), d.line_range.start..end))
                .transpose()?;
            Ok((up, down))
        }
    }
}

/// Reads a file that holds one direction only (`.up.sql`, `.down.sql`, a rollback file). A marker
/// line is optional and only carries options; sqlx's first-line `-- no-transaction` is honoured.
fn read_whole_file(
    candidate: &Candidate,
    source: SourceText,
    direction: Direction,
) -> Result<Section, SourceError> {
    let markers = find_markers(candidate, &source)?;
    let marker = match direction {
        Direction::Up => markers.up,
        Direction::Down => markers.down,
    };
    let end = source.as_str().len();
    let section = match &marker {
        Some(marker) => {
            if let Some(token) = has_code(&candidate.path, &source, 0..marker.line_range.start)? {
                let (line, column) = source.line_col(token.start);
                return Err(SourceError::new(
                    SourceErrorKind::CodeBeforeUp,
                    &candidate.path,
                    format!(
                        "SQL before the `-- migrate:{direction}` marker (line {}) would never run",
                        marker.line
                    ),
                )
                .at(line, column)
                .help("move it below the marker, or delete it"));
            }
            build_section(
                candidate,
                &source,
                direction,
                Some(marker),
                marker.line_range.start..end,
            )?
        }
        None => {
            let mut section = build_section(candidate, &source, direction, None, 0..end)?;
            if source.as_str().starts_with("-- no-transaction") {
                section.options.transaction = false;
            }
            section
        }
    };
    if direction == Direction::Up {
        require_statements(&section)?;
    }
    Ok(section)
}

fn build_section(
    candidate: &Candidate,
    source: &SourceText,
    direction: Direction,
    marker: Option<&Marker>,
    range: Range<usize>,
) -> Result<Section, SourceError> {
    let body_start = match marker {
        Some(marker) => (marker.line_range.end + 1).min(range.end),
        None => range.start,
    };
    let body = body_start..range.end;
    let empty = has_code(&candidate.path, source, body.clone())?.is_none();
    Ok(Section {
        direction,
        path: candidate.path.clone(),
        relative_path: candidate.relative_path.clone(),
        options: marker.map(|m| m.options.clone()).unwrap_or_default(),
        marker_line: marker.map(|m| m.line),
        checksum: Checksum::of(&source.as_str()[range]),
        source: source.clone(),
        body,
        empty,
    })
}

fn require_statements(up: &Section) -> Result<(), SourceError> {
    if !up.is_empty() {
        return Ok(());
    }
    let error = SourceError::new(
        SourceErrorKind::EmptyUp,
        &up.path,
        "the up section has no statements",
    );
    let error = match up.marker_line {
        Some(line) => error.at_line(line),
        None => error,
    };
    Err(error.help("write the migration's SQL, or delete the file; an empty migration would be recorded as applied and then fail its checksum once you fill it in"))
}
