//! diesel migrations: one directory per migration, `{version}_{name}/`, holding `up.sql`,
//! an optional `down.sql` and an optional `metadata.toml`. As diesel does, the version is the
//! directory name up to the first `_` with its dashes removed (`2024-01-15-093000_users` is
//! `20240115093000`, which is what `__diesel_schema_migrations` records), and
//! `run_in_transaction = false` in `metadata.toml` runs the migration outside a transaction.
//! diesel reads a `metadata.toml` that lacks the key as `false`, and so does safeshift.

use std::path::{Path, PathBuf};

use crate::error::{SourceError, SourceErrorKind, SourceErrors};
use crate::format::LoadOptions;
use crate::layouts::{empty_file_error, read_file, sorted_entries};
use crate::load::{Loaded, SourceWarning};
use crate::migration::{Layout, Migration, Section, SectionParts};
use crate::options::{Direction, SectionOptions};
use crate::version::Version;

/// The file diesel's CLI is configured by.
const DIESEL_TOML: &str = "diesel.toml";

/// `[migrations_directory] dir` of the project's `diesel.toml`, if it names one that exists.
pub(crate) fn configured_directory(root: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(root.join(DIESEL_TOML)).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    let dir = value
        .get("migrations_directory")?
        .get("dir")?
        .as_str()?
        .to_owned();
    let dir = root.join(dir);
    dir.is_dir().then_some(dir)
}

/// The version diesel gives a migration directory's name.
pub(crate) fn version_of(directory_name: &str) -> Option<(Version, &str)> {
    let (version, name) = directory_name
        .split_once('_')
        .unwrap_or((directory_name, ""));
    Some((Version::parse(&version.replace('-', ""))?, name))
}

pub(crate) fn load(directory: &Path, options: &LoadOptions) -> Result<Loaded, SourceErrors> {
    let mut loaded = Loaded::default();
    for (name, path) in sorted_entries(directory)? {
        if !path.is_dir() {
            if name.ends_with(".sql") {
                loaded.warnings.push(SourceWarning {
                    path,
                    message: "ignored: diesel migrations are directories with an up.sql".into(),
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
    let up_path = path.join("up.sql");
    if !up_path.is_file() {
        return Err(SourceError::new(
            SourceErrorKind::BadFileName,
            path,
            "a diesel migration directory without up.sql",
        )
        .help("add up.sql (and down.sql), or move the directory out of the migrations directory"));
    }
    let Some((version, description)) = version_of(name) else {
        return Err(SourceError::new(
            SourceErrorKind::BadFileName,
            path,
            format!(
                "`{name}` does not start with a version (digits and dashes before the first `_`)"
            ),
        )
        .help("name diesel migrations {version}_{name}, e.g. 2024-01-15-093000_create_users"));
    };
    let metadata = path.join("metadata.toml");
    let transaction = if metadata.is_file() {
        run_in_transaction(&metadata)?
    } else {
        true
    };
    let relative =
        |file: &str| PathBuf::from(path.strip_prefix(directory).unwrap_or(path)).join(file);
    let options_for = SectionOptions {
        transaction,
        ..SectionOptions::default()
    };
    let help = format!(
        "set `run_in_transaction = false` in {} (diesel's option; safeshift then sends each statement on its own and resumes from a failed one)",
        metadata.display()
    );
    let section = |file_path: &Path, relative_path: &Path, direction: Direction| {
        let file = read_file(file_path, &options.variables)?;
        if file.text.as_str().trim().is_empty() {
            return Err(empty_file_error(file_path));
        }
        let end = file.text.as_str().len();
        Section::build(SectionParts {
            direction,
            path: file_path,
            relative_path,
            file: &file,
            marker_line: None,
            options: options_for.clone(),
            range: 0..end,
            body: 0..end,
            no_transaction_help: Some(help.clone()),
        })
    };
    let up = section(&up_path, &relative("up.sql"), Direction::Up)?;
    let down_path = path.join("down.sql");
    let down = down_path
        .is_file()
        .then(|| section(&down_path, &relative("down.sql"), Direction::Down))
        .transpose()?;
    Ok(Migration {
        version,
        name: description.to_owned(),
        layout: Layout::Diesel,
        up,
        down,
        verify: None,
    })
}

/// `run_in_transaction` from a migration's `metadata.toml`, read as diesel reads it.
fn run_in_transaction(metadata: &Path) -> Result<bool, SourceError> {
    let text = std::fs::read_to_string(metadata)
        .map_err(|error| SourceError::config(metadata, format!("cannot read the file: {error}")))?;
    let table: toml::Table = toml::from_str(&text).map_err(|error| {
        SourceError::config(metadata, format!("not valid TOML: {error}"))
            .help("write `run_in_transaction = false` (or true)")
    })?;
    match table.get("run_in_transaction") {
        None => Ok(false),
        Some(toml::Value::Boolean(value)) => Ok(*value),
        Some(other) => Err(SourceError::config(
            metadata,
            format!("`run_in_transaction` is {other}, not true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_drop_their_dashes() {
        let (version, name) = version_of("2024-01-15-093000_create_users").unwrap();
        assert_eq!(version.as_str(), "20240115093000");
        assert_eq!(name, "create_users");
        assert_eq!(
            version_of("00000000000000_diesel_initial_setup")
                .unwrap()
                .0
                .as_str(),
            "00000000000000"
        );
        assert!(version_of("create_users").is_none());
    }
}
