//! Flyway: `V{version}__{description}.sql` versioned migrations (`_` in the version reads as
//! `.`: `V1_2__x.sql` is version 1.2), `U{version}__{description}.sql` undo migrations (their
//! down section, which Flyway Community does not run and safeshift does), and
//! `R__{description}.sql` repeatable migrations, which run after every versioned one, in the order
//! of their descriptions, and again whenever their file changes.
//!
//! The files are found, recursively, in the locations `flyway.toml` (`[flyway] locations`) or
//! `flyway.conf` (`flyway.locations`) name, relative to the configuration file; without a
//! configuration, in the migrations directory itself. `${name}` placeholders are replaced from
//! `--var`, the configuration's placeholders and Flyway's built-ins, as Flyway does by default;
//! `<file>.sql.conf` may say `executeInTransaction=false`. As Flyway does on PostgreSQL, a file
//! holding a statement that cannot run in a transaction (`CREATE INDEX CONCURRENTLY`) runs
//! outside one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{SourceError, SourceErrorKind, SourceErrors};
use crate::format::LoadOptions;
use crate::layouts::{empty_file_error, needs_no_transaction, read_file, sorted_entries};
use crate::load::{Loaded, SourceWarning};
use crate::migration::{Layout, Migration, Section, SectionParts};
use crate::options::{Direction, SectionOptions};
use crate::template::{self, DollarStyle};
use crate::version::Version;

/// Flyway's history table when the configuration does not name another.
pub const DEFAULT_TABLE: &str = "flyway_schema_history";

/// What a file name says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlywayName {
    Versioned {
        version: Version,
        description: String,
    },
    Undo {
        version: Version,
        description: String,
    },
    Repeatable {
        description: String,
    },
    /// A Flyway-looking name with a version that cannot be read.
    Malformed(String),
    NotFlyway,
}

pub(crate) fn parse_name(file_name: &str) -> FlywayName {
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return FlywayName::NotFlyway;
    };
    if let Some(description) = stem.strip_prefix("R__") {
        return FlywayName::Repeatable {
            description: description.to_owned(),
        };
    }
    let (undo, rest) = match stem.as_bytes().first() {
        Some(b'V') => (false, &stem[1..]),
        Some(b'U') => (true, &stem[1..]),
        _ => return FlywayName::NotFlyway,
    };
    let Some((version, description)) = rest.split_once("__") else {
        return FlywayName::NotFlyway;
    };
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return FlywayName::NotFlyway;
    }
    let Some(version) = Version::parse(&version.replace('_', ".")) else {
        return FlywayName::Malformed(format!(
            "`{file_name}`: `{version}` is not a Flyway version (digits separated by `.` or `_`)"
        ));
    };
    let description = description.to_owned();
    if undo {
        FlywayName::Undo {
            version,
            description,
        }
    } else {
        FlywayName::Versioned {
            version,
            description,
        }
    }
}

/// Whether a file name is one Flyway reads.
pub(crate) fn is_flyway_file_name(name: &str) -> bool {
    !matches!(parse_name(name), FlywayName::NotFlyway)
}

/// Whether a directory (or one below it) holds Flyway files.
pub(crate) fn holds_flyway_files(directory: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            holds_flyway_files(&path)
        } else {
            entry.file_name().to_str().is_some_and(is_flyway_file_name)
        }
    })
}

/// The checksum Flyway records for a migration file: CRC-32 over the file's lines without their
/// line endings (and without a byte-order mark), as a signed 32-bit integer. So line endings do
/// not change it, and neither do blank lines at the end.
pub fn flyway_checksum(bytes: &[u8]) -> i32 {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut hasher = crc32fast::Hasher::new();
    for line in bytes.split(|b| *b == b'\n' || *b == b'\r') {
        hasher.update(line);
    }
    hasher.finalize() as i32
}

/// What safeshift takes from a Flyway configuration.
#[derive(Debug, Clone)]
pub(crate) struct FlywayConfig {
    /// The configuration file, if there is one.
    pub file: Option<PathBuf>,
    pub locations: Vec<PathBuf>,
    pub placeholders: BTreeMap<String, String>,
    pub placeholder_replacement: bool,
    pub table: String,
}

/// Reads `flyway.toml`, `flyway.conf` or `conf/flyway.conf` in `directory`.
pub(crate) fn read_config(directory: &Path) -> Result<FlywayConfig, SourceError> {
    let mut config = FlywayConfig {
        file: None,
        locations: Vec::new(),
        placeholders: BTreeMap::new(),
        placeholder_replacement: true,
        table: DEFAULT_TABLE.to_owned(),
    };
    let toml_path = directory.join("flyway.toml");
    let conf_path = [
        directory.join("flyway.conf"),
        directory.join("conf/flyway.conf"),
    ]
    .into_iter()
    .find(|path| path.is_file());
    let mut settings: BTreeMap<String, String> = BTreeMap::new();
    let mut locations: Vec<String> = Vec::new();
    if toml_path.is_file() {
        let text = std::fs::read_to_string(&toml_path).map_err(|error| {
            SourceError::config(&toml_path, format!("cannot read the file: {error}"))
        })?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|error| SourceError::config(&toml_path, format!("not valid TOML: {error}")))?;
        if let Some(flyway) = table.get("flyway").and_then(toml::Value::as_table) {
            for (key, value) in flyway {
                match (key.as_str(), value) {
                    ("locations", toml::Value::Array(items)) => locations.extend(
                        items
                            .iter()
                            .filter_map(|item| item.as_str().map(str::to_owned)),
                    ),
                    ("locations", toml::Value::String(text)) => {
                        locations.extend(text.split(',').map(|l| l.trim().to_owned()))
                    }
                    ("placeholders", toml::Value::Table(values)) => {
                        for (name, value) in values {
                            let value = match value {
                                toml::Value::String(text) => text.clone(),
                                other => other.to_string(),
                            };
                            config.placeholders.insert(name.clone(), value);
                        }
                    }
                    (key, toml::Value::String(text)) => {
                        settings.insert(key.to_owned(), text.clone());
                    }
                    (key, other) => {
                        settings.insert(key.to_owned(), other.to_string());
                    }
                }
            }
        }
        config.file = Some(toml_path);
    } else if let Some(conf_path) = conf_path {
        let text = std::fs::read_to_string(&conf_path).map_err(|error| {
            SourceError::config(&conf_path, format!("cannot read the file: {error}"))
        })?;
        for (key, value) in java_properties(&text) {
            let Some(key) = key.strip_prefix("flyway.") else {
                continue;
            };
            if let Some(name) = key.strip_prefix("placeholders.") {
                config.placeholders.insert(name.to_owned(), value);
            } else if key == "locations" {
                locations.extend(value.split(',').map(|l| l.trim().to_owned()));
            } else {
                settings.insert(key.to_owned(), value);
            }
        }
        config.file = Some(conf_path);
    }
    let Some(file) = config.file.clone() else {
        config.locations.push(directory.to_path_buf());
        return Ok(config);
    };
    for setting in [
        "sqlMigrationPrefix",
        "sqlMigrationSeparator",
        "sqlMigrationSuffixes",
        "repeatableSqlMigrationPrefix",
        "undoSqlMigrationPrefix",
    ] {
        if let Some(value) = settings.get(setting) {
            return Err(SourceError::config(
                &file,
                format!("`{setting}` is set to `{value}`; safeshift reads Flyway's default file names only (V…__…sql, U…__…sql, R__…sql)"),
            )
            .help("rename the files to Flyway's default names, or remove the setting"));
        }
    }
    if let Some(value) = settings.get("placeholderReplacement") {
        config.placeholder_replacement = value.trim() != "false";
    }
    if let Some(table) = settings.get("table") {
        config.table = table.trim().to_owned();
    }
    if locations.is_empty() {
        // Flyway's command line looks in `sql/` by default.
        locations.push("filesystem:sql".to_owned());
    }
    for location in locations.iter().filter(|l| !l.is_empty()) {
        config
            .locations
            .push(resolve_location(directory, location, &file)?);
    }
    Ok(config)
}

/// A location as a directory: `filesystem:` paths are relative to the configuration file;
/// `classpath:` (and unprefixed) ones are looked for where Maven and Gradle keep resources.
fn resolve_location(directory: &Path, location: &str, file: &Path) -> Result<PathBuf, SourceError> {
    if location.contains('*') || location.contains('?') {
        return Err(SourceError::config(
            file,
            format!("the location `{location}` has wildcards, which safeshift does not expand"),
        )
        .help("name each directory in `locations`"));
    }
    if let Some(path) = location.strip_prefix("filesystem:") {
        return Ok(directory.join(path));
    }
    let path = location.strip_prefix("classpath:").unwrap_or(location);
    let resources = directory.join("src/main/resources").join(path);
    Ok(if resources.is_dir() {
        resources
    } else {
        directory.join(path)
    })
}

/// `key=value` and `key: value` lines of a Java properties file, with `#` and `!` comments and
/// `\` line continuations.
fn java_properties(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        if entry.trim().is_empty() {
            continue;
        }
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let key = entry[..split].trim().to_owned();
        let value = entry.get(split + 1..).unwrap_or("").trim().to_owned();
        pairs.push((key, value));
    }
    pairs
}

/// A Flyway file found in a location.
struct Found {
    path: PathBuf,
    name: FlywayName,
}

fn scan(location: &Path, found: &mut Vec<Found>, loaded: &mut Loaded) -> Result<(), SourceError> {
    for (name, path) in sorted_entries(location)? {
        if path.is_dir() {
            scan(&path, found, loaded)?;
            continue;
        }
        if name.ends_with(".sql.conf") {
            continue;
        }
        match parse_name(&name) {
            FlywayName::NotFlyway => {
                if name.ends_with(".sql") {
                    loaded.warnings.push(SourceWarning {
                        path,
                        message: "ignored: not a Flyway file name (V{version}__{description}.sql, U…, R__…)".into(),
                    });
                }
            }
            FlywayName::Malformed(message) => loaded.errors.push(
                SourceError::new(SourceErrorKind::BadFileName, &path, message)
                    .help("name versioned migrations V{version}__{description}.sql, e.g. V1_2__add_users.sql"),
            ),
            name => found.push(Found { path, name }),
        }
    }
    Ok(())
}

/// The versions of the versioned and repeatable migrations, from file names alone (for `new`).
pub(crate) fn existing_versions(directory: &Path) -> Result<Vec<(Version, Layout)>, SourceError> {
    let config = read_config(directory)?;
    let mut loaded = Loaded::default();
    let mut found = Vec::new();
    for location in config.locations.iter().filter(|l| l.is_dir()) {
        scan(location, &mut found, &mut loaded)?;
    }
    Ok(found
        .into_iter()
        .filter_map(|file| match file.name {
            FlywayName::Versioned { version, .. } => Some((version, Layout::Flyway)),
            FlywayName::Repeatable { description } => {
                Some((Version::repeatable(&description), Layout::Flyway))
            }
            _ => None,
        })
        .collect())
}

pub(crate) fn load(directory: &Path, options: &LoadOptions) -> Result<Loaded, SourceErrors> {
    let config = read_config(directory)?;
    let mut loaded = Loaded::default();
    let mut found = Vec::new();
    for location in &config.locations {
        if !location.is_dir() {
            loaded.warnings.push(SourceWarning {
                path: location.clone(),
                message: format!("the Flyway location {} does not exist", location.display()),
            });
            continue;
        }
        scan(location, &mut found, &mut loaded)?;
    }
    let mut undo: BTreeMap<Version, Vec<&Found>> = BTreeMap::new();
    for file in &found {
        if let FlywayName::Undo { version, .. } = &file.name {
            undo.entry(version.clone()).or_default().push(file);
        }
    }
    let mut versions_with_file = std::collections::BTreeSet::new();
    for file in &found {
        let (version, description) = match &file.name {
            FlywayName::Versioned {
                version,
                description,
            } => {
                versions_with_file.insert(version.clone());
                (version.clone(), description.clone())
            }
            FlywayName::Repeatable { description } => {
                (Version::repeatable(description), description.clone())
            }
            _ => continue,
        };
        let down = undo.get(&version).and_then(|files| files.first());
        let result =
            read_section(directory, &file.path, Direction::Up, &config, options).and_then(|up| {
                let down = down
                    .map(|undo| {
                        read_section(directory, &undo.path, Direction::Down, &config, options)
                    })
                    .transpose()?;
                Ok((up, down))
            });
        match result {
            Ok((up, down)) => loaded.migrations.push(Migration {
                version,
                name: description,
                layout: Layout::Flyway,
                up,
                down,
                verify: None,
            }),
            Err(error) => loaded.errors.push(error),
        }
    }
    for (version, files) in &undo {
        for (index, file) in files.iter().enumerate() {
            if index > 0 {
                loaded.errors.push(
                    SourceError::new(
                        SourceErrorKind::DuplicateVersion,
                        &file.path,
                        format!("version {version} has a second undo file"),
                    )
                    .help("keep one undo file per version"),
                );
            } else if !versions_with_file.contains(version) {
                loaded.errors.push(
                    SourceError::new(
                        SourceErrorKind::OrphanDown,
                        &file.path,
                        format!("undo file for version {version}, which has no V{version}__ file"),
                    )
                    .help("an undo file U{version}__….sql belongs to the versioned file V{version}__….sql"),
                );
            }
        }
    }
    Ok(loaded)
}

fn read_section(
    directory: &Path,
    path: &Path,
    direction: Direction,
    config: &FlywayConfig,
    options: &LoadOptions,
) -> Result<Section, SourceError> {
    let mut file = read_file(path, &options.variables)?;
    if file.text.as_str().trim().is_empty() {
        return Err(empty_file_error(path));
    }
    if config.placeholder_replacement {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let lookup = |name: &str| -> Option<String> {
            options
                .variables
                .given
                .get(name)
                .or_else(|| config.placeholders.get(name))
                .or_else(|| {
                    config
                        .placeholders
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value)
                })
                .cloned()
                .or_else(|| match name {
                    "flyway:filename" => Some(file_name.clone()),
                    "flyway:table" => Some(config.table.clone()),
                    _ => None,
                })
        };
        let where_from = config
            .file
            .as_ref()
            .map(|file| format!(" or `placeholders.NAME` in {}", file.display()))
            .unwrap_or_default();
        let help = |name: &str| {
            format!(
                "Flyway replaces `${{{name}}}`: give its value with --var {name}=VALUE{where_from}"
            )
        };
        file = template::expand_dollar(
            path,
            file,
            None,
            &DollarStyle {
                shell_forms: false,
                lookup: &lookup,
                missing_help: &help,
                dotted_names: true,
            },
        )?;
    }
    let conf = PathBuf::from(format!("{}.conf", path.display()));
    let mut transaction = !needs_no_transaction(path, &file, false)?;
    if conf.is_file() {
        let text = std::fs::read_to_string(&conf).map_err(|error| {
            SourceError::config(&conf, format!("cannot read the file: {error}"))
        })?;
        for (key, value) in java_properties(&text) {
            if key == "executeInTransaction" {
                transaction = value.trim() != "false";
            }
        }
    }
    let relative = path.strip_prefix(directory).unwrap_or(path);
    let end = file.text.as_str().len();
    Section::build(SectionParts {
        direction,
        path,
        relative_path: relative,
        file: &file,
        marker_line: None,
        options: SectionOptions {
            transaction,
            ..SectionOptions::default()
        },
        range: 0..end,
        body: 0..end,
        no_transaction_help: Some(format!(
            "write `executeInTransaction=false` in {} (Flyway's per-script setting)",
            conf.display()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            parse_name("V1_2__add_users.sql"),
            FlywayName::Versioned {
                version: Version::parse("1.2").unwrap(),
                description: "add_users".into()
            }
        );
        assert_eq!(
            parse_name("U3__drop.sql"),
            FlywayName::Undo {
                version: Version::parse("3").unwrap(),
                description: "drop".into()
            }
        );
        assert_eq!(
            parse_name("R__views.sql"),
            FlywayName::Repeatable {
                description: "views".into()
            }
        );
        assert!(matches!(parse_name("V1a__x.sql"), FlywayName::Malformed(_)));
        assert_eq!(parse_name("0001_x.sql"), FlywayName::NotFlyway);
        assert_eq!(parse_name("Values__x.sql"), FlywayName::NotFlyway);
    }

    #[test]
    fn checksum_is_line_based_crc32() {
        // CRC-32 of "abc" is 0x352441c2.
        assert_eq!(flyway_checksum(b"abc"), 0x3524_41c2);
        assert_eq!(flyway_checksum(b"a\r\nb\r\n"), flyway_checksum(b"ab"));
        assert_eq!(
            flyway_checksum(b"\xEF\xBB\xBFab\n\n"),
            flyway_checksum(b"ab")
        );
        // CRC-32 of "123456789" is 0xCBF43926, stored negative as Java's (int) cast does.
        assert_eq!(flyway_checksum(b"123456789"), -873_187_034);
    }

    #[test]
    fn properties() {
        let pairs = java_properties(
            "# comment\nflyway.locations=filesystem:sql,\\\n  filesystem:more\nflyway.placeholders.owner : app\n",
        );
        assert_eq!(
            pairs,
            [
                (
                    "flyway.locations".to_owned(),
                    "filesystem:sql,filesystem:more".to_owned()
                ),
                ("flyway.placeholders.owner".to_owned(), "app".to_owned())
            ]
        );
    }
}
