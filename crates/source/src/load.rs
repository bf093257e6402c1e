//! Finding migrations in a directory, in each supported layout, and reading their sections.
//!
//! Numbered `{version}_{name}.sql` files say how to read themselves: `-- migrate:up` markers
//! (dbmate's sections), `-- +goose Up` annotations, or `-- Up migration` comments. Other tools'
//! directory layouts (Flyway, diesel, Prisma, sqitch) are read by their modules in
//! [`crate::layouts`].

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{SourceError, SourceErrorKind, SourceErrors};
use crate::format::{Detection, Format, LoadOptions, detect_format};
use crate::layouts::{self, goose, plain};
use crate::migration::{Layout, Migration, Section, SectionParts};
use crate::options::{self, Direction, KNOWN_OPTIONS, MarkerLine, SectionOptions};
use crate::statements::{Dialect, has_code};
use crate::template::{FileText, Variables};
use crate::version::Version;

/// The directory, under the migrations directory, that holds separate rollback files.
pub const ROLLBACK_DIRECTORY: &str = "rollback";

/// Something worth telling the user that does not stop a run (an ignored file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceWarning {
    pub path: PathBuf,
    pub message: String,
}

/// What a layout reader found: migrations in any order, warnings, and every problem.
#[derive(Default)]
pub(crate) struct Loaded {
    pub migrations: Vec<Migration>,
    pub warnings: Vec<SourceWarning>,
    pub errors: Vec<SourceError>,
}

/// Every migration in a directory, ordered by version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub directory: PathBuf,
    /// The migrations that could be read.
    pub migrations: Vec<Migration>,
    pub warnings: Vec<SourceWarning>,
    /// The layout the directory was read in, and why.
    pub detection: Detection,
    /// Every file that could not be read as a migration, with why. Empty in a set from
    /// [`MigrationSet::load_with`]; a set from [`MigrationSet::read_with`] keeps them, so that
    /// `status` can list every migration and flag the broken ones, while anything that runs
    /// migrations refuses.
    pub problems: Vec<SourceError>,
}

impl MigrationSet {
    /// Reads every migration in `directory`, detecting its layout. Reports every problem found,
    /// not just the first; on any error no migration is returned, so nothing can be applied from
    /// a broken directory.
    pub fn load(directory: impl AsRef<Path>) -> Result<MigrationSet, SourceErrors> {
        MigrationSet::load_with(directory, &LoadOptions::default())
    }

    /// Reads every migration in `directory` in the layout `options` names (or the detected one),
    /// expanding template placeholders with the values it gives. Any problem with any file is an
    /// error, and all of them are reported together.
    pub fn load_with(
        directory: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<MigrationSet, SourceErrors> {
        let set = MigrationSet::read_with(directory, options)?;
        if set.problems.is_empty() {
            Ok(set)
        } else {
            Err(SourceErrors(set.problems))
        }
    }

    /// Reads every migration in `directory` that can be read, keeping the problems of the
    /// others in [`MigrationSet::problems`]. Fails only when the directory itself cannot be read
    /// (or its layout's configuration cannot).
    pub fn read_with(
        directory: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<MigrationSet, SourceErrors> {
        let directory = directory.as_ref();
        let detection = match options.format {
            Some(format) => Detection {
                format,
                reason: "chosen with --migration-format or `format` in safeshift.toml".into(),
            },
            None => detect_format(directory)?,
        };
        let (loaded, detection) = match detection.format {
            Format::Safeshift | Format::Goose | Format::Plain => {
                load_numbered_files(directory, options, detection)?
            }
            Format::Flyway => (layouts::flyway::load(directory, options)?, detection),
            Format::Diesel => (layouts::diesel::load(directory, options)?, detection),
            Format::Prisma => (layouts::prisma::load(directory, options)?, detection),
            Format::Sqitch => (layouts::sqitch::load(directory, options)?, detection),
        };
        let Loaded {
            mut migrations,
            warnings,
            mut errors,
        } = loaded;
        migrations.sort_by(|a, b| a.version.cmp(&b.version));
        for pair in migrations.windows(2) {
            if pair[0].version == pair[1].version {
                errors.push(
                    SourceError::new(
                        SourceErrorKind::DuplicateVersion,
                        &pair[1].up.path,
                        format!(
                            "version {} is also used by {}",
                            pair[1].version,
                            pair[0].up.path.display()
                        ),
                    )
                    .help("give each migration its own version; renumber one of them")
                    .of_version(&pair[1].version),
                );
            }
        }
        sort_problems(&mut errors);
        Ok(MigrationSet {
            directory: directory.to_path_buf(),
            migrations,
            warnings,
            detection,
            problems: errors,
        })
    }

    /// Every problem of every file, in both directions, for a database of `dialect`: the files
    /// that could not be read, and the statements that cannot run in their section's
    /// transaction mode, up and down sections alike. One pass, so a user fixes the whole
    /// directory at once instead of meeting the problems one command at a time.
    pub fn check(&self, dialect: Dialect) -> Result<(), SourceErrors> {
        let mut problems = self.problems.clone();
        for migration in &self.migrations {
            for direction in [Direction::Up, Direction::Down] {
                if let Err(error) = migration.executable_statements(direction, dialect) {
                    problems.push(error.of_version(&migration.version));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            sort_problems(&mut problems);
            Err(SourceErrors(problems))
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

/// Problems in the order of the directory: by version, file and line.
fn sort_problems(problems: &mut [SourceError]) {
    problems.sort_by(|a, b| (&a.version, &a.path, a.line).cmp(&(&b.version, &b.path, b.line)));
}

/// The versions and layouts of the migrations in a directory, from file names (and, for
/// numbered files, the markers they carry), without reading them as migrations, so a migration
/// still being written does not get in the way. For `new`.
pub fn existing_versions(directory: &Path) -> Result<Vec<(Version, Layout)>, SourceError> {
    let mut versions = match detect_format(directory)?.format {
        Format::Flyway => layouts::flyway::existing_versions(directory)?,
        Format::Diesel => layouts::sorted_entries(directory)?
            .into_iter()
            .filter(|(_, path)| path.join("up.sql").is_file())
            .filter_map(|(name, _)| layouts::diesel::version_of(&name).map(|(v, _)| v))
            .map(|version| (version, Layout::Diesel))
            .collect(),
        Format::Prisma => layouts::sorted_entries(directory)?
            .into_iter()
            .filter(|(_, path)| path.join("migration.sql").is_file())
            .filter_map(|(name, _)| {
                Version::parse(name.split_once('_').map_or(name.as_str(), |(v, _)| v))
            })
            .map(|version| (version, Layout::Prisma))
            .collect(),
        Format::Sqitch => crate::layouts::sqitch::SqitchPlan::read(directory)?
            .changes
            .iter()
            .filter_map(|change| Version::parse(&change.position.to_string()))
            .map(|version| (version, Layout::Sqitch))
            .collect(),
        Format::Safeshift | Format::Goose | Format::Plain => existing_numbered(directory)?,
    };
    versions.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(versions)
}

fn existing_numbered(directory: &Path) -> Result<Vec<(Version, Layout)>, SourceError> {
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
    let marked = |candidate: &Candidate| match read_candidate(candidate, &Variables::default())
        .map(|file| flavour_of(&file))
    {
        Ok(Flavour::Goose) => Layout::Goose,
        Ok(Flavour::Plain) => Layout::Plain,
        _ => Layout::Sections,
    };
    Ok(found
        .candidates
        .iter()
        .filter_map(|c| match c.role {
            Role::Single if rollbacks.contains(&c.version) => {
                Some((c.version.clone(), Layout::RollbackDirectory))
            }
            Role::Single => Some((c.version.clone(), marked(c))),
            Role::PairUp => Some((c.version.clone(), Layout::Pair)),
            Role::PairDown | Role::Rollback => None,
        })
        .collect())
}

/// How a numbered file marks its sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// `-- migrate:up` / `-- migrate:down` (or a near miss of them).
    Sections,
    /// `-- +goose` annotations.
    Goose,
    /// `-- Up migration` / `-- Down migration` comments.
    Plain,
    /// No markers at all.
    Unmarked,
}

fn flavour_of(file: &FileText) -> Flavour {
    let text = &file.text;
    let mut goose = false;
    let mut plain = false;
    for (_, range) in text.lines() {
        let line = &text.as_str()[range];
        match options::classify_line(line) {
            MarkerLine::Marker { .. } | MarkerLine::NearMiss => return Flavour::Sections,
            MarkerLine::Goose => goose = true,
            MarkerLine::NotMarker => plain |= plain::marker(line).is_some(),
        }
    }
    if goose {
        Flavour::Goose
    } else if plain {
        Flavour::Plain
    } else {
        Flavour::Unmarked
    }
}

/// What the numbered files of a directory need to be read: their texts (read once) and how
/// each marks its sections.
struct NumberedFiles<'a> {
    texts: HashMap<PathBuf, Result<FileText, SourceError>>,
    flavours: HashMap<PathBuf, Flavour>,
    /// The format `--migration-format` forces, if any.
    forced: Option<Format>,
    /// Unmarked files are whole-file migrations (the directory is a plain one).
    unmarked_are_plain: bool,
    variables: &'a Variables,
}

/// Reads the numbered files of `directory`: safeshift's own layouts, goose files and plain files.
fn load_numbered_files(
    directory: &Path,
    options: &LoadOptions,
    detection: Detection,
) -> Result<(Loaded, Detection), SourceErrors> {
    let mut found = Found::default();
    found.scan_directory(directory, Path::new(""))?;
    let rollback = directory.join(ROLLBACK_DIRECTORY);
    if rollback.is_dir() {
        found.scan_directory(&rollback, Path::new(ROLLBACK_DIRECTORY))?;
    }
    let Found {
        candidates,
        mut errors,
        mut warnings,
        go_files,
    } = found;

    let mut texts = HashMap::new();
    let mut flavours = HashMap::new();
    let read = in_parallel(candidates.iter().collect(), |candidate| {
        read_candidate(candidate, &options.variables)
    });
    for (candidate, text) in candidates.iter().zip(read) {
        if candidate.role == Role::Single
            && let Ok(file) = &text
        {
            flavours.insert(candidate.path.clone(), flavour_of(file));
        }
        texts.insert(candidate.path.clone(), text);
    }
    let count = |flavour: Flavour| flavours.values().filter(|f| **f == flavour).count();
    let (sections, goose_files, plain_files) = (
        count(Flavour::Sections),
        count(Flavour::Goose),
        count(Flavour::Plain),
    );
    let forced = options.format;
    let unmarked_are_plain = match forced {
        Some(format) => format == Format::Plain,
        None => plain_files > 0 && sections == 0 && goose_files == 0,
    };
    let goose_directory = forced == Some(Format::Goose) || (forced.is_none() && goose_files > 0);
    for go_file in go_files {
        if goose_directory {
            errors.push(
                SourceError::new(
                    SourceErrorKind::Layout,
                    &go_file,
                    "a goose Go migration: safeshift runs SQL migrations only",
                )
                .help("write the migration in SQL (a goose SQL file with the same version), or, if it is applied everywhere, record it with `safeshift adopt` and delete the file"),
            );
        }
    }
    let files = NumberedFiles {
        texts,
        flavours,
        forced,
        unmarked_are_plain,
        variables: &options.variables,
    };

    let mut by_version: BTreeMap<Version, Vec<Candidate>> = BTreeMap::new();
    for candidate in candidates {
        by_version
            .entry(candidate.version.clone())
            .or_default()
            .push(candidate);
    }
    let groups: Vec<Vec<Candidate>> = by_version.into_values().collect();
    let mut migrations = Vec::new();
    for assembled in in_parallel(groups, |group| assemble(group, &files)) {
        match assembled {
            Ok(migration) => migrations.push(migration),
            Err(mut group_errors) => errors.append(&mut group_errors),
        }
    }
    let total = files.flavours.len();
    let detection = if forced.is_some() {
        detection
    } else if goose_files > 0 && goose_files >= sections {
        Detection {
            format: Format::Goose,
            reason: format!("{goose_files} of {total} numbered files have `-- +goose` annotations"),
        }
    } else if unmarked_are_plain {
        Detection {
            format: Format::Plain,
            reason: format!(
                "{plain_files} of {total} numbered files have `-- Up migration` comments"
            ),
        }
    } else {
        detection
    };
    if forced.is_none() && goose_files > 0 && sections > 0 {
        warnings.push(SourceWarning {
            path: directory.to_path_buf(),
            message: format!(
                "{goose_files} goose file(s) and {sections} safeshift file(s) side by side; each is read in its own layout"
            ),
        });
    }
    Ok((
        Loaded {
            migrations,
            warnings,
            errors,
        },
        detection,
    ))
}

/// `f` of every item, in the items' order, computed on as many threads as the machine has cores:
/// reading a large history (each file's text normalised, checksummed and tokenised to find its
/// sections) is a tenth of `lint`'s time on one thread. Items are split into one contiguous run
/// per thread; with one core they are done here.
fn in_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 2 {
        return items.into_iter().map(f).collect();
    }
    let run = items.len().div_ceil(threads);
    let mut parts = Vec::new();
    let mut items = items.into_iter();
    loop {
        let part: Vec<T> = items.by_ref().take(run).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Reads a candidate file: normalised text with Go template placeholders expanded, refusing an
/// empty migration file. An empty down or rollback file is an explicit no-op rollback, as
/// golang-migrate reads it.
fn read_candidate(candidate: &Candidate, variables: &Variables) -> Result<FileText, SourceError> {
    let file = layouts::read_file(&candidate.path, variables)?;
    let rollback = matches!(candidate.role, Role::PairDown | Role::Rollback);
    if !rollback && file.text.as_str().trim().is_empty() {
        return Err(layouts::empty_file_error(&candidate.path));
    }
    Ok(file)
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
    /// Numbered `.go` files (goose Go migrations).
    go_files: Vec<PathBuf>,
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
            if name.ends_with(".go")
                && name.starts_with(|c: char| c.is_ascii_digit())
                && !name.ends_with("_test.go")
                && path.is_file()
            {
                self.go_files.push(path);
                continue;
            }
            if name.starts_with('.') {
                continue;
            }
            let numbered = name.starts_with(|c: char| c.is_ascii_digit());
            // The version a migration-like name gives, for problems found before the file is
            // read.
            let version_of = |name: &str| match parse_file_name(name, in_rollback) {
                FileName::Migration { version, .. } => Some(version),
                _ => None,
            };
            if !name.ends_with(".sql") {
                if numbered && name.to_ascii_lowercase().ends_with(".sql") {
                    let stem = &name[..name.len() - ".sql".len()];
                    let mut error = SourceError::new(
                        SourceErrorKind::BadFileName,
                        &path,
                        format!("`{name}` ends in `{}`, and safeshift reads only `.sql` files, so it would never run", &name[stem.len()..]),
                    )
                    .help(format!("rename it to {stem}.sql"));
                    error.version = version_of(&format!("{stem}.sql"));
                    self.errors.push(error);
                }
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => {}
                Ok(_) => continue,
                Err(error) => {
                    let problem = unreadable_entry(&path, &error);
                    if numbered {
                        let mut error = SourceError::new(SourceErrorKind::Io, &path, problem)
                            .help("point the link at the migration file, or delete it");
                        error.version = version_of(name);
                        self.errors.push(error);
                    } else {
                        self.warnings.push(SourceWarning {
                            path,
                            message: format!("ignored: {problem}"),
                        });
                    }
                    continue;
                }
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

/// Why a directory entry cannot be read: a symbolic link to nothing, a loop of links, or the
/// system's reason.
fn unreadable_entry(path: &Path, error: &std::io::Error) -> String {
    match std::fs::read_link(path) {
        Ok(target) if error.kind() == std::io::ErrorKind::NotFound => format!(
            "a symbolic link to `{}`, which does not exist, so the migration cannot be read",
            target.display()
        ),
        Ok(target) => format!(
            "a symbolic link to `{}` that cannot be followed ({error}), so the migration cannot be read",
            target.display()
        ),
        Err(_) => format!("cannot be read: {error}"),
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

/// Builds one migration from the files that share a version. Every problem of the group is
/// reported: a duplicate version does not hide what is wrong inside the files.
fn assemble(
    group: Vec<Candidate>,
    files: &NumberedFiles<'_>,
) -> Result<Migration, Vec<SourceError>> {
    let version = group[0].version.clone();
    let (ups, others): (Vec<_>, Vec<_>) = group
        .into_iter()
        .partition(|c| matches!(c.role, Role::Single | Role::PairUp));
    let (pair_downs, rollbacks): (Vec<_>, Vec<_>) =
        others.into_iter().partition(|c| c.role == Role::PairDown);

    let mut errors = Vec::new();
    let tag = |errors: Vec<SourceError>| -> Vec<SourceError> {
        errors.into_iter().map(|e| e.of_version(&version)).collect()
    };
    let Some(up) = ups.first() else {
        for orphan in pair_downs.iter().chain(&rollbacks) {
            errors.push(orphan_error(orphan));
        }
        return Err(tag(errors));
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
    // A duplicate's own problems are reported with the duplicate, not left for the next run.
    for duplicate in ups.iter().skip(1) {
        if let Err(error) = read_migration(duplicate, None, None, files) {
            errors.push(error);
        }
    }
    let mut pair_down = pair_downs.first();
    if let Some(down) = pair_down
        && (up.role != Role::PairUp || down.name != up.name)
    {
        errors.push(orphan_error(down));
        pair_down = None;
    }
    let mut rollback = rollbacks.first();
    if let (Some(extra), Some(down)) = (rollback, pair_down) {
        errors.push(
            SourceError::new(
                SourceErrorKind::DuplicateVersion,
                &extra.path,
                format!(
                    "version {} already has a down file, {}",
                    extra.version,
                    down.path.display()
                ),
            )
            .help("keep one of the two down files"),
        );
        rollback = None;
    }
    match read_migration(up, pair_down, rollback, files) {
        Ok(migration) if errors.is_empty() => Ok(migration),
        Ok(_) => Err(tag(errors)),
        Err(error) => {
            errors.push(error);
            Err(tag(errors))
        }
    }
}

/// Reads an up file with its down or rollback file, if it has one.
fn read_migration(
    up: &Candidate,
    pair_down: Option<&Candidate>,
    rollback: Option<&Candidate>,
    files: &NumberedFiles<'_>,
) -> Result<Migration, SourceError> {
    let read = |candidate: &Candidate| -> Result<FileText, SourceError> {
        match files.texts.get(&candidate.path) {
            Some(text) => text.clone(),
            None => read_candidate(candidate, files.variables),
        }
    };
    let up_text = read(up)?;
    let rollback_text = rollback
        .map(|r| read(r).map(|text| (r, text)))
        .transpose()?;
    let (layout, up_section, mut down_section) = match up.role {
        Role::Single => {
            let flavour = files
                .flavours
                .get(&up.path)
                .copied()
                .unwrap_or(Flavour::Unmarked);
            read_numbered_file(
                up,
                up_text,
                rollback_text.as_ref().map(|(r, _)| *r),
                flavour,
                files,
            )?
        }
        _ => {
            if files.forced == Some(Format::Goose) {
                return Err(SourceError::new(
                    SourceErrorKind::Layout,
                    &up.path,
                    "an .up.sql file in a directory read as goose files",
                )
                .help("goose keeps up and down in one file with `-- +goose Up` / `-- +goose Down`; drop --migration-format goose to read .up.sql/.down.sql pairs"));
            }
            (
                Layout::Pair,
                read_whole_file(up, up_text, Direction::Up)?,
                None,
            )
        }
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
        verify: None,
    })
}

/// Reads a `{version}_{name}.sql` file by the markers it carries (and the format `--migration-format`
/// forces): safeshift's sections, goose annotations, plain comments, or none.
fn read_numbered_file(
    up: &Candidate,
    text: FileText,
    rollback: Option<&Candidate>,
    flavour: Flavour,
    files: &NumberedFiles<'_>,
) -> Result<(Layout, Section, Option<Section>), SourceError> {
    let layout_error = |message: String, help: &str| {
        SourceError::new(SourceErrorKind::Layout, &up.path, message).help(help.to_owned())
    };
    let with_rollback = |layout: Layout| {
        if rollback.is_some() {
            Layout::RollbackDirectory
        } else {
            layout
        }
    };
    match (flavour, files.forced) {
        (Flavour::Goose, Some(Format::Safeshift | Format::Plain)) => Err(layout_error(
            "the file has goose annotations (`-- +goose Up`)".into(),
            "read goose files with --migration-format goose, or without it (each file is read in its own layout)",
        )),
        (Flavour::Goose, _) => {
            if let Some(rollback) = rollback {
                return Err(layout_error(
                    format!(
                        "a goose file with a rollback file, {}",
                        rollback.path.display()
                    ),
                    "keep the rollback in the file's `-- +goose Down` section and delete the rollback file",
                ));
            }
            let (up_section, down) =
                goose::read(&up.path, &up.relative_path, text, files.variables)?;
            Ok((Layout::Goose, up_section, down))
        }
        (Flavour::Sections, Some(Format::Goose | Format::Plain)) => Err(layout_error(
            "the file has safeshift's `-- migrate:up` markers".into(),
            "read it without --migration-format, or with --migration-format safeshift",
        )),
        (Flavour::Plain | Flavour::Unmarked, Some(Format::Goose)) => Err(SourceError::new(
            SourceErrorKind::MissingUp,
            &up.path,
            "the file has no `-- +goose Up` annotation",
        )
        .at_line(1)
        .help("goose requires `-- +goose Up` above the migration's SQL")),
        (Flavour::Plain, Some(Format::Safeshift)) | (Flavour::Sections, _) => {
            let (up_section, down) = read_sections_file(up, text, rollback)?;
            Ok((with_rollback(Layout::Sections), up_section, down))
        }
        (Flavour::Unmarked, _) if rollback.is_some() || !files.unmarked_are_plain => {
            let (up_section, down) = read_sections_file(up, text, rollback)?;
            Ok((with_rollback(Layout::Sections), up_section, down))
        }
        (Flavour::Plain | Flavour::Unmarked, _) => {
            let (up_section, down) = plain::read(&up.path, &up.relative_path, text)?;
            if let (Some(rollback), Some(down)) = (rollback, &down) {
                return Err(layout_error(
                    format!(
                        "the file has a down-migration comment (line {}) and a rollback file, {}",
                        down.marker_line.unwrap_or(1),
                        rollback.path.display()
                    ),
                    "keep one of the two rollbacks",
                ));
            }
            Ok((with_rollback(Layout::Plain), up_section, down))
        }
    }
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
fn find_markers(candidate: &Candidate, source: &FileText) -> Result<Markers, SourceError> {
    let source = &source.text;
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
                    format!("a goose annotation in a file with `-- migrate:` markers: `{}`", text.trim()),
                )
                .at_line(line)
                .help("keep one layout per file: use `-- migrate:up` for `-- +goose Up`, `-- migrate:down` for `-- +goose Down`, and add transaction:false to the marker for `-- +goose NO TRANSACTION`; or remove the `-- migrate:` markers to read it as a goose file"));
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
    file: FileText,
    rollback: Option<&Candidate>,
) -> Result<(Section, Option<Section>), SourceError> {
    let path = &candidate.path;
    let markers = find_markers(candidate, &file)?;
    let source = &file.text;
    let end = source.as_str().len();
    match (&markers.up, &markers.down, rollback) {
        (None, None, Some(_)) => {
            let up = build_section(candidate, &file, Direction::Up, None, 0..end)?;
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
            .help("start the migration with a line `-- migrate:up` and put its rollback after a line `-- migrate:down` (dbmate's layout); or name the file .up.sql, or put the rollback in rollback/; hand-run files without sections are read with --migration-format plain")),
        (Some(_), Some(down), Some(rollback)) => Err(SourceError::new(
            SourceErrorKind::MisplacedMarker,
            path,
            format!("the file has a `-- migrate:down` section and a rollback file, {}", rollback.path.display()),
        )
        .at_line(down.line)
        .help("keep one of the two rollbacks")),
        (Some(up_marker), down_marker, _) => {
            if let Some(token) = has_code(path, source, 0..up_marker.line_range.start)? {
                let (line, column) = source.line_col(token.start());
                return Err(SourceError::new(
                    SourceErrorKind::CodeBeforeUp,
                    path,
                    format!("SQL before the `-- migrate:up` marker (line {}) would never run", up_marker.line),
                )
                .at(line, column)
                .help("move it below the marker, or delete it; only comments may stand above the up section"));
            }
            let up_end = down_marker.as_ref().map_or(end, |d| d.line_range.start);
            let up = build_section(candidate, &file, Direction::Up, Some(up_marker), up_marker.line_range.start..up_end)?;
            require_statements(&up)?;
            let down = down_marker
                .as_ref()
                .map(|d| build_section(candidate, &file, Direction::Down, Some(d), d.line_range.start..end))
                .transpose()?;
            Ok((up, down))
        }
    }
}

/// Reads a file that holds one direction only (`.up.sql`, `.down.sql`, a rollback file). A marker
/// line is optional and only carries options; sqlx's first-line `-- no-transaction` is honoured.
fn read_whole_file(
    candidate: &Candidate,
    file: FileText,
    direction: Direction,
) -> Result<Section, SourceError> {
    let markers = find_markers(candidate, &file)?;
    let source = &file.text;
    let marker = match direction {
        Direction::Up => markers.up,
        Direction::Down => markers.down,
    };
    let end = source.as_str().len();
    let section = match &marker {
        Some(marker) => {
            if let Some(token) = has_code(&candidate.path, source, 0..marker.line_range.start)? {
                let (line, column) = source.line_col(token.start());
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
                &file,
                direction,
                Some(marker),
                marker.line_range.start..end,
            )?
        }
        None => {
            let mut section = build_section(candidate, &file, direction, None, 0..end)?;
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
    file: &FileText,
    direction: Direction,
    marker: Option<&Marker>,
    range: Range<usize>,
) -> Result<Section, SourceError> {
    let body_start = match marker {
        Some(marker) => (marker.line_range.end + 1).min(range.end),
        None => range.start,
    };
    Section::build(SectionParts {
        direction,
        path: &candidate.path,
        relative_path: &candidate.relative_path,
        file,
        marker_line: marker.map(|m| m.line),
        options: marker.map(|m| m.options.clone()).unwrap_or_default(),
        body: body_start..range.end,
        range,
        no_transaction_help: None,
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

#[cfg(test)]
mod tests {
    use super::in_parallel;

    #[test]
    fn in_parallel_keeps_the_items_order() {
        let items: Vec<u64> = (0..1_001).collect();
        let doubled = in_parallel(items.clone(), |n| {
            // Uneven work, so the threads finish out of order.
            std::thread::sleep(std::time::Duration::from_micros((n * 7_919) % 200));
            n * 2
        });
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(in_parallel(vec![7], |n| n + 1), vec![8]);
        assert!(in_parallel(Vec::<u8>::new(), |n| n).is_empty());
    }

    #[test]
    #[should_panic(expected = "item 77 is bad")]
    fn a_panic_in_a_thread_reaches_the_caller() {
        in_parallel((0..100).collect(), |n: u32| {
            assert!(n != 77, "item 77 is bad")
        });
    }
}
