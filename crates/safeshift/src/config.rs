//! `safeshift.toml`, environment variables and flags, resolved into one project configuration.
//!
//! Precedence, highest first: flags, `SAFESHIFT_*` environment variables (clap reads those for
//! the flags), the configuration file, defaults. The database URL falls back to `DATABASE_URL`
//! last. String values in the file may use `${VAR}` and `${VAR:-default}`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use safeshift_driver::{HistoryLocation, RunLockMode, Timeouts};
use safeshift_runner::{LockSettings, RetryPolicy};
use safeshift_source::{VersionScheme, parse_duration, parse_timeout};

/// What the command line (or an embedding application) sets over the configuration file: each
/// field given wins over the file. `Default` is "nothing given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The configuration file; found upwards from the current directory when `None`.
    pub config: Option<PathBuf>,
    pub database_url: Option<String>,
    pub migrations_dir: Option<PathBuf>,
    pub history_schema: Option<String>,
    pub history_table: Option<String>,
    pub lock_mode: Option<RunLockMode>,
    pub lock_wait: Option<String>,
    pub lock_timeout: Option<String>,
    pub statement_timeout: Option<String>,
    pub retries: Option<u32>,
    /// The environment (`[environments.<name>]`) to use.
    pub environment: Option<String>,
    /// The layout of the migrations directory (`--migration-format`); detected when `None`.
    pub migration_format: Option<safeshift_source::Format>,
    /// Values for template placeholders (`--var NAME=VALUE`), over `[variables]`.
    pub variables: Vec<(String, String)>,
}

/// A configuration problem: what is wrong (naming the file and key), and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProjectError {
    pub message: String,
    pub help: Option<String>,
}

impl ProjectError {
    pub fn new(message: impl Into<String>) -> ProjectError {
        ProjectError {
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(message: impl Into<String>, help: impl Into<String>) -> ProjectError {
        ProjectError {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

/// The configuration file's name.
pub const CONFIG_FILE: &str = "safeshift.toml";

/// `safeshift.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The migrations directory, relative to the file.
    pub directory: Option<String>,
    /// The directory's layout (`goose`, `flyway`…); detected when absent.
    pub format: Option<String>,
    /// Values for template placeholders in the migration files.
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub history: HistorySection,
    #[serde(default)]
    pub lock: LockSection,
    #[serde(default)]
    pub migrate: MigrateSection,
    #[serde(default)]
    pub new: NewSection,
    #[serde(default)]
    pub backup: crate::environment::BackupSection,
    #[serde(default)]
    pub environments: std::collections::BTreeMap<String, crate::environment::EnvironmentSection>,
    #[serde(default)]
    pub online: crate::online::OnlineSection,
    #[serde(default)]
    pub lint: LintSection,
}

/// `[lint]`: the risk policy `lint`, `plan` and `up` share.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintSection {
    /// Tables with fewer rows are small: a statement that blocks them may be graded low.
    pub small_table_rows: Option<u64>,
    /// The longest a lock blocking reads or writes may be held before the statement is high.
    pub lock_budget: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    pub schema: Option<String>,
    pub table: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockSection {
    pub mode: Option<RunLockMode>,
    pub wait: Option<String>,
    pub lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateSection {
    pub lock_timeout: Option<String>,
    pub statement_timeout: Option<String>,
    pub retries: Option<u32>,
    pub retry_backoff: Option<String>,
    /// Stop retrying a migration once its failed attempts have run this long in all.
    pub max_stall: Option<String>,
    pub allow_out_of_order: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    pub version_scheme: Option<VersionScheme>,
}

/// Where the database URL came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSource {
    Flag,
    ConfigFile,
    /// `url` of the chosen `[environments.<name>]`.
    Environment,
    DatabaseUrlVariable,
}

/// Everything a command needs to know about the project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory relative paths are resolved against: the configuration file's, or the
    /// current directory.
    pub root: PathBuf,
    pub migrations_dir: PathBuf,
    /// The layout of the migrations directory, when chosen (`--migration-format`, `format`).
    pub format: Option<safeshift_source::Format>,
    /// Values for template placeholders (`[variables]`, then `--var`).
    pub variables: std::collections::BTreeMap<String, String>,
    /// The database URL, password included; parse it with `DatabaseUrl`, which redacts it.
    pub url: Option<(String, UrlSource)>,
    pub history: HistoryLocation,
    pub lock: LockSettings,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub allow_out_of_order: bool,
    pub version_scheme: Option<VersionScheme>,
    /// The environment chosen with `--env` / `SAFESHIFT_ENV`.
    pub environment: Option<crate::environment::Environment>,
    pub backup: crate::environment::BackupSettings,
    /// `[online]`: lock-safe DDL, backfills, concurrent index retries.
    pub online: safeshift_online::OnlineSettings,
    /// `[lint]`: how table sizes grade risk.
    pub risk_policy: safeshift_lint::RiskPolicy,
    /// Environment variables that may hold a database password (see `credential_variables`),
    /// withheld from hooks.
    pub credential_variables: Vec<String>,
}

impl Project {
    /// Loads the configuration file (given, or found upwards from the current directory) and
    /// applies flags and environment variables.
    pub fn load(args: &Overrides) -> Result<Project, ProjectError> {
        let cwd = std::env::current_dir()
            .map_err(|e| ProjectError::new(format!("cannot read the current directory: {e}")))?;
        let config_file = match &args.config {
            Some(path) => {
                if !path.is_file() {
                    return Err(ProjectError::with_help(
                        format!("the configuration file {} does not exist", path.display()),
                        "check the --config path or SAFESHIFT_CONFIG, or create one with `safeshift init`",
                    ));
                }
                Some(path.clone())
            }
            None => find_config(&cwd),
        };
        Project::resolve(args, config_file)
    }

    /// The project `config_file` describes (its defaults when `None`), with `args` over it; no
    /// file is searched for.
    pub fn resolve(
        args: &Overrides,
        config_file: Option<PathBuf>,
    ) -> Result<Project, ProjectError> {
        let file = match &config_file {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let root = config_file
            .as_ref()
            .and_then(|p| p.parent())
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let origin = config_file
            .as_ref()
            .map_or_else(|| "defaults".to_owned(), |p| p.display().to_string());
        let mut reading = Reading {
            args,
            file: &file,
            origin,
            root,
            environment_section: None,
        };
        let interpolated = |value: &Option<String>, key: &str| reading.interpolated(value, key);
        let config_error_for = |key: &str, message: String| reading.error(key, message);
        let environment = match args.environment.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => Some(crate::environment::resolve(
                name,
                &file.environments,
                &reading.root,
                &interpolated,
                &config_error_for,
            )?),
            None => None,
        };
        let backup = crate::environment::backup_settings(
            &file.backup,
            &reading.root,
            &interpolated,
            &config_error_for,
        )?;
        reading.environment_section = environment
            .as_ref()
            .and_then(|e| file.environments.get(&e.name));
        let history = reading.history()?;
        let online = crate::online::settings(&file.online, &history.schema, &|key, message| {
            reading.error(key, message)
        })?;
        Ok(Project {
            migrations_dir: reading.migrations_dir()?,
            format: reading.format()?,
            variables: reading.variables()?,
            url: reading.url(environment.as_ref())?,
            lock: reading.lock()?,
            timeouts: reading.timeouts()?,
            retry: reading.retry()?,
            risk_policy: reading.risk_policy()?,
            allow_out_of_order: file.migrate.allow_out_of_order.unwrap_or(false),
            version_scheme: file.new.version_scheme,
            credential_variables: credential_variables(&file),
            root: reading.root,
            history,
            environment,
            backup,
            online,
        })
    }
}

/// The configuration file being turned into a [`Project`], with the flags that override it:
/// each setting is read by one method, flag first, then the chosen environment's value, then
/// the file's, then the default.
struct Reading<'a> {
    args: &'a Overrides,
    file: &'a FileConfig,
    /// The file's path, or "defaults", for error messages.
    origin: String,
    /// The directory relative paths in the file are relative to.
    root: PathBuf,
    /// The `[environments.NAME]` section chosen with `--env`.
    environment_section: Option<&'a crate::environment::EnvironmentSection>,
}

impl Reading<'_> {
    fn error(&self, key: &str, message: String) -> ProjectError {
        config_error(&self.origin, key, message)
    }

    /// A value of the file with `${VAR}` expanded.
    fn interpolated(
        &self,
        value: &Option<String>,
        key: &str,
    ) -> Result<Option<String>, ProjectError> {
        value
            .as_deref()
            .map(|v| interpolate(v).map_err(|m| self.error(key, m)))
            .transpose()
    }

    /// A duration from a flag (named `flag_name` in errors) or else the file's `value` at `key`.
    /// `parse` is `parse_timeout` for what the database is given (and must accept).
    fn duration(
        &self,
        parse: fn(&str) -> Result<Duration, String>,
        flag: &Option<String>,
        flag_name: &str,
        value: &Option<String>,
        key: &str,
    ) -> Result<Option<Duration>, ProjectError> {
        if let Some(text) = flag {
            return parse(text)
                .map(Some)
                .map_err(|m| ProjectError::new(format!("{flag_name}: {m}")));
        }
        value
            .as_deref()
            .map(|v| parse(v).map_err(|m| self.error(key, m)))
            .transpose()
    }

    /// The chosen environment's value when it sets one, else the file's.
    fn per_environment<'v>(
        &'v self,
        environment: impl Fn(&'v crate::environment::EnvironmentSection) -> &'v Option<String>,
        file: &'v Option<String>,
    ) -> &'v Option<String> {
        match self.environment_section.map(environment) {
            Some(value) if value.is_some() => value,
            _ => file,
        }
    }

    fn migrations_dir(&self) -> Result<PathBuf, ProjectError> {
        let root = &self.root;
        Ok(
            match (
                &self.args.migrations_dir,
                self.interpolated(&self.file.directory, "directory")?,
            ) {
                (Some(dir), _) => dir.clone(),
                (None, Some(directory)) => clean_join(root, Path::new(&directory)),
                // Without a setting, `migrations/`, or where another tool keeps its migrations.
                (None, None) => match safeshift_source::discover_directory(root) {
                    Some(dir) => match dir.strip_prefix(root) {
                        Ok(relative) if relative.as_os_str().is_empty() => root.clone(),
                        Ok(relative) => clean_join(root, relative),
                        Err(_) => dir,
                    },
                    None => clean_join(root, Path::new("migrations")),
                },
            },
        )
    }

    fn format(&self) -> Result<Option<safeshift_source::Format>, ProjectError> {
        match (
            self.args.migration_format,
            self.interpolated(&self.file.format, "format")?,
        ) {
            (Some(format), _) => Ok(Some(format)),
            (None, Some(name)) => {
                safeshift_source::Format::parse(&name)
                    .map(Some)
                    .ok_or_else(|| {
                        self.error(
                            "format",
                            format!(
                                "`{name}` is not a format; choose one of {}",
                                safeshift_source::Format::ALL.map(|f| f.as_str()).join(", ")
                            ),
                        )
                    })
            }
            (None, None) => Ok(None),
        }
    }

    /// `[variables]`, with `--var` over them.
    fn variables(&self) -> Result<std::collections::BTreeMap<String, String>, ProjectError> {
        let mut variables = std::collections::BTreeMap::new();
        for (name, value) in &self.file.variables {
            let value =
                interpolate(value).map_err(|m| self.error(&format!("variables.{name}"), m))?;
            variables.insert(name.clone(), value);
        }
        variables.extend(self.args.variables.iter().cloned());
        Ok(variables)
    }

    /// The one rule for where the database URL comes from: the flag (or
    /// `SAFESHIFT_DATABASE_URL`), the chosen environment's `url`, the file's `database.url`,
    /// then `DATABASE_URL`.
    fn url(
        &self,
        environment: Option<&crate::environment::Environment>,
    ) -> Result<Option<(String, UrlSource)>, ProjectError> {
        let environment_url = match (environment, self.environment_section) {
            (Some(environment), Some(section)) => self
                .interpolated(
                    &section.url,
                    &format!("environments.{}.url", environment.name),
                )?
                .filter(|url| !url.trim().is_empty()),
            _ => None,
        };
        Ok(match (&self.args.database_url, environment_url) {
            (Some(url), _) => Some((url.clone(), UrlSource::Flag)),
            (None, Some(url)) => Some((url, UrlSource::Environment)),
            (None, None) => match self.interpolated(&self.file.database.url, "database.url")? {
                Some(url) if !url.trim().is_empty() => Some((url, UrlSource::ConfigFile)),
                _ => std::env::var("DATABASE_URL")
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (v, UrlSource::DatabaseUrlVariable)),
            },
        })
    }

    fn history(&self) -> Result<HistoryLocation, ProjectError> {
        let history = HistoryLocation {
            schema: self
                .args
                .history_schema
                .clone()
                .or(self.interpolated(&self.file.history.schema, "history.schema")?)
                .unwrap_or_else(|| "safeshift".into()),
            table: self
                .args
                .history_table
                .clone()
                .or(self.interpolated(&self.file.history.table, "history.table")?)
                .unwrap_or_else(|| "history".into()),
        };
        for (key, value) in [
            ("history schema", &history.schema),
            ("history table", &history.table),
        ] {
            if value.is_empty() || value.len() > 50 {
                return Err(ProjectError::new(format!(
                    "the {key} name must have 1 to 50 characters, not `{value}`"
                )));
            }
            if value.contains('\0') {
                return Err(ProjectError::new(format!(
                    "the {key} name `{}` contains a NUL character, which PostgreSQL and SQLite names cannot hold",
                    value.escape_default()
                )));
            }
        }
        // PostgreSQL keeps these for itself: creating the history there fails, or (as a
        // superuser, in information_schema) mixes it into the system's views.
        if history.schema.starts_with("pg_") || history.schema == "information_schema" {
            return Err(ProjectError::with_help(
                format!(
                    "the history schema `{}` is PostgreSQL's own (information_schema, and every name starting with pg_)",
                    history.schema
                ),
                "pick a schema of your own, such as the default `safeshift` (--history-schema, [history] schema)",
            ));
        }
        Ok(history)
    }

    fn lock(&self) -> Result<LockSettings, ProjectError> {
        let defaults = LockSettings::default();
        let file = &self.file.lock;
        let lock = LockSettings {
            mode: self
                .args
                .lock_mode
                .unwrap_or(file.mode.unwrap_or(defaults.mode)),
            wait: self
                .duration(
                    parse_duration,
                    &self.args.lock_wait,
                    "--lock-wait",
                    self.per_environment(|e| &e.lock_wait, &file.wait),
                    "lock.wait",
                )?
                .unwrap_or(defaults.wait),
            // The lease's expiry is computed by the server.
            lease: self
                .duration(parse_timeout, &None, "", &file.lease, "lock.lease")?
                .unwrap_or(defaults.lease),
            poll: defaults.poll,
        };
        if lock.lease < Duration::from_secs(1) {
            return Err(self.error(
                "lock.lease",
                "a lease shorter than 1s would expire between heartbeats".into(),
            ));
        }
        Ok(lock)
    }

    fn timeouts(&self) -> Result<Timeouts, ProjectError> {
        let defaults = Timeouts::default();
        let migrate = &self.file.migrate;
        Ok(Timeouts {
            lock_timeout: self
                .duration(
                    parse_timeout,
                    &self.args.lock_timeout,
                    "--lock-timeout",
                    self.per_environment(|e| &e.lock_timeout, &migrate.lock_timeout),
                    "migrate.lock_timeout",
                )?
                .unwrap_or(defaults.lock_timeout),
            statement_timeout: self
                .duration(
                    parse_timeout,
                    &self.args.statement_timeout,
                    "--statement-timeout",
                    self.per_environment(|e| &e.statement_timeout, &migrate.statement_timeout),
                    "migrate.statement_timeout",
                )?
                .unwrap_or(defaults.statement_timeout),
        })
    }

    fn retry(&self) -> Result<RetryPolicy, ProjectError> {
        let defaults = RetryPolicy::default();
        let migrate = &self.file.migrate;
        Ok(RetryPolicy {
            retries: self
                .args
                .retries
                .or(self.environment_section.and_then(|e| e.retries))
                .or(migrate.retries)
                .unwrap_or(defaults.retries),
            backoff: self
                .duration(
                    parse_duration,
                    &None,
                    "",
                    &migrate.retry_backoff,
                    "migrate.retry_backoff",
                )?
                .unwrap_or(defaults.backoff),
            max_backoff: defaults.max_backoff,
            max_stall: self
                .duration(
                    parse_duration,
                    &None,
                    "",
                    &migrate.max_stall,
                    "migrate.max_stall",
                )?
                .or(defaults.max_stall),
        })
    }

    /// `[lint]`: how table sizes grade risk.
    fn risk_policy(&self) -> Result<safeshift_lint::RiskPolicy, ProjectError> {
        let defaults = safeshift_lint::RiskPolicy::default();
        let lint = &self.file.lint;
        Ok(safeshift_lint::RiskPolicy {
            small_table_rows: lint.small_table_rows.unwrap_or(defaults.small_table_rows),
            lock_budget: self
                .duration(
                    parse_duration,
                    &None,
                    "",
                    &lint.lock_budget,
                    "lint.lock_budget",
                )?
                .unwrap_or(defaults.lock_budget),
        })
    }
}

/// `safeshift.toml` in `start` or the nearest parent directory.
fn find_config(start: &Path) -> Option<PathBuf> {
    let mut directory = Some(start);
    while let Some(current) = directory {
        let candidate = current.join(CONFIG_FILE);
        if candidate.is_file() {
            // Keep the path short when the file is in the current directory.
            return Some(if current == start {
                PathBuf::from(CONFIG_FILE)
            } else {
                candidate
            });
        }
        directory = current.parent();
    }
    None
}

fn read_config(path: &Path) -> Result<FileConfig, ProjectError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ProjectError::new(format!(
            "cannot read the configuration file {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|error| {
        let location = error
            .span()
            .map(|span| {
                let line = text[..span.start].matches('\n').count() + 1;
                format!(":{line}")
            })
            .unwrap_or_default();
        let suggestion = error
            .span()
            .and_then(|span| what_to_write(&text, span.start, error.message()))
            .map(|write| format!("; write `{write}`"))
            .unwrap_or_default();
        ProjectError::with_help(
            format!("{}{location}: {}{suggestion}", path.display(), error.message()),
            "see the configuration reference in the README (keys: directory, [database] url, [history] schema/table, \
             [lock] mode/wait/lease, [migrate] lock_timeout/statement_timeout/retries/retry_backoff/allow_out_of_order, \
             [new] version_scheme, [backup] dir/prefix/keep/max_age/fingerprints, [lint] small_table_rows/lock_budget, \
             [environments.<name>]; \
             see docs/production.md for environments)",
        )
    })
}

/// For a value of the wrong type, the line as it should be written: a number where a string
/// is expected becomes a string (a duration with its unit: `lock_timeout = "5s"`), a quoted
/// number where a number is expected loses its quotes (`retries = 3`).
fn what_to_write(text: &str, offset: usize, message: &str) -> Option<String> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let (key, value) = text[line_start..line_end].split_once('=')?;
    let (key, value) = (key.trim(), value.trim());
    let value = value.split(" #").next().unwrap_or(value).trim();
    if message.starts_with("invalid type: integer") && message.contains("expected a string") {
        let duration = [
            "timeout", "wait", "lease", "backoff", "age", "interval", "delay", "lag",
        ]
        .iter()
        .any(|word| key.contains(word));
        let unit = if duration { "s" } else { "" };
        return Some(format!("{key} = \"{value}{unit}\""));
    }
    if message.starts_with("invalid type: string") && !message.contains("expected a string") {
        let unquoted = value.trim_matches('"').trim_matches('\'');
        if unquoted.parse::<f64>().is_ok() || matches!(unquoted, "true" | "false") {
            return Some(format!("{key} = {unquoted}"));
        }
    }
    None
}

fn config_error(origin: &str, key: &str, message: String) -> ProjectError {
    ProjectError::new(format!("{origin}: `{key}`: {message}"))
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.
pub fn interpolate(text: &str) -> Result<String, String> {
    expand(text, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

/// The variables `${VAR}` references in `text` name, set or not.
fn referenced_variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = expand(text, |name| {
        names.push(name.to_owned());
        Some(String::new())
    });
    names
}

/// Every variable a database URL of the configuration may be read from (the file's own `url`
/// and every environment's, used or not): a child process such as a hook is not handed them,
/// since a URL may carry a password.
fn credential_variables(file: &FileConfig) -> Vec<String> {
    let mut names: Vec<String> = safeshift_deploy::hooks::CREDENTIAL_VARIABLES
        .iter()
        .map(|&n| n.to_owned())
        .collect();
    let urls = std::iter::once(&file.database.url)
        .chain(
            file.environments
                .values()
                .map(|environment| &environment.url),
        )
        .flatten();
    for url in urls {
        names.extend(referenced_variables(url));
    }
    names.sort();
    names.dedup();
    names
}

/// Expands `text`, asking `lookup` for each variable's value.
fn expand(text: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find('$') {
        out.push_str(&rest[..index]);
        let after = &rest[index + 1..];
        if let Some(after_dollar) = after.strip_prefix('$') {
            out.push('$');
            rest = after_dollar;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
            let expression = &body[..end];
            let (name, default) = match expression.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expression, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{expression}}}` is not a variable reference; write ${{NAME}} or ${{NAME:-default}}"
                ));
            }
            match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "the environment variable {name} is not set (write ${{{name}:-default}} for a fallback)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `root.join(path)`, without a leading `./` when the root is the current directory.
fn clean_join(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new(".") {
        path.to_path_buf()
    } else {
        root.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation() {
        // SAFETY: tests in this module are the only ones touching these variables.
        unsafe {
            std::env::set_var("SAFESHIFT_TEST_HOST", "db.internal");
            std::env::remove_var("SAFESHIFT_TEST_MISSING");
        }
        assert_eq!(
            interpolate("postgres://u@${SAFESHIFT_TEST_HOST}/app").unwrap(),
            "postgres://u@db.internal/app"
        );
        assert_eq!(
            interpolate("${SAFESHIFT_TEST_MISSING:-sqlite://app.db}").unwrap(),
            "sqlite://app.db"
        );
        assert_eq!(interpolate("cost: $$5 and $x").unwrap(), "cost: $5 and $x");
        let error = interpolate("${SAFESHIFT_TEST_MISSING}").unwrap_err();
        assert!(
            error.contains("SAFESHIFT_TEST_MISSING is not set"),
            "{error}"
        );
        assert!(interpolate("${oops").is_err());
        assert_eq!(
            referenced_variables(
                "postgres://app:${DB_PASS}@${DB_HOST:-localhost}/${SAFESHIFT_TEST_UNSET}"
            ),
            ["DB_PASS", "DB_HOST", "SAFESHIFT_TEST_UNSET"]
        );
        assert!(referenced_variables("postgres://app@db/app$$x").is_empty());
        assert!(interpolate("${a b}").is_err());
    }
}
