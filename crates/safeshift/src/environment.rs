//! Environments (`[environments.<name>]` in safeshift.toml, chosen with `--env NAME` or
//! `SAFESHIFT_ENV`) and the `[backup]` section: how careful a production run is — confirmation,
//! a verified backup first, the risk accepted without acknowledgement, hooks around the run,
//! the watchdog's thresholds, and the health checks afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use safeshift_deploy::{WatchSettings, parse_percent};
use safeshift_lint::Risk;
use safeshift_source::parse_duration;
use safeshift_watch::HealthCheck;

use crate::config::ProjectError;

/// `[backup]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    pub dir: Option<String>,
    pub prefix: Option<String>,
    pub keep: Option<usize>,
    pub max_age: Option<String>,
    /// Fingerprint every table when dumping (for `verify --deep`); default true.
    pub fingerprints: Option<bool>,
}

/// `[environments.<name>]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSection {
    pub url: Option<String>,
    /// Show the plan and require typing the database name (or `--yes`).
    pub confirm: Option<bool>,
    /// `required`: `up` takes and verifies a backup first; `off` (default).
    pub backup: Option<BackupPolicy>,
    pub backup_dir: Option<String>,
    /// The highest lint risk `up` accepts without an acknowledgement in the file.
    pub max_risk: Option<Risk>,
    /// Run the pre-flight checks before `up` (default: on when confirmation or a backup is required).
    pub preflight: Option<bool>,
    pub lock_timeout: Option<String>,
    pub statement_timeout: Option<String>,
    pub lock_wait: Option<String>,
    pub retries: Option<u32>,
    /// Roll back this run's migrations when a health check fails.
    pub rollback_on_failure: Option<bool>,
    #[serde(default)]
    pub hooks: HooksSection,
    #[serde(default)]
    pub health: Vec<HealthSection>,
    #[serde(default)]
    pub watch: WatchSection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupPolicy {
    Required,
    Off,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSection {
    /// Commands (argument vectors, run without a shell) before the first migration.
    #[serde(default)]
    pub before: Vec<Vec<String>>,
    /// Commands after the run (and its health checks), whatever the outcome.
    #[serde(default)]
    pub after: Vec<Vec<String>>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    pub http: Option<String>,
    pub sql: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    pub interval: Option<String>,
    pub lock_wait: Option<String>,
    pub long_query: Option<String>,
    /// Percent of max_connections, e.g. 80.
    pub connections: Option<f64>,
    pub duration: Option<String>,
    /// Thresholds that abort, as `--abort-on` takes them: `lock-wait=3s,connections`.
    pub abort_on: Option<String>,
}

/// The chosen environment, resolved.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub confirm: bool,
    pub backup_required: bool,
    pub backup_dir: Option<PathBuf>,
    pub max_risk: Option<Risk>,
    pub preflight: bool,
    pub rollback_on_failure: bool,
    pub hooks_before: Vec<Vec<String>>,
    pub hooks_after: Vec<Vec<String>>,
    pub hook_timeout: Duration,
    pub health: Vec<HealthCheck>,
    pub watch: WatchSettings,
}

/// The `[backup]` section, resolved.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub dir: PathBuf,
    pub prefix: String,
    pub keep: Option<usize>,
    pub max_age: Option<Duration>,
    pub fingerprints: bool,
}

/// Expands `${VAR}` in a configuration value, naming the key in errors.
pub type Interpolate<'a> =
    &'a dyn Fn(&Option<String>, &str) -> Result<Option<String>, ProjectError>;
/// Builds a configuration error for a key.
pub type ConfigError<'a> = &'a dyn Fn(&str, String) -> ProjectError;

/// Resolves the `[backup]` section; `interpolate` expands `${VAR}` and reports errors with the key.
pub fn backup_settings(
    section: &BackupSection,
    root: &Path,
    interpolate: Interpolate<'_>,
    error: ConfigError<'_>,
) -> Result<BackupSettings, ProjectError> {
    let dir = interpolate(&section.dir, "backup.dir")?.unwrap_or_else(|| "backups".into());
    Ok(BackupSettings {
        dir: join(root, &dir),
        prefix: interpolate(&section.prefix, "backup.prefix")?
            .unwrap_or_else(|| "safeshift".into()),
        keep: section.keep,
        max_age: section
            .max_age
            .as_deref()
            .map(|v| parse_duration(v).map_err(|m| error("backup.max_age", m)))
            .transpose()?,
        fingerprints: section.fingerprints.unwrap_or(true),
    })
}

/// Resolves one environment.
pub fn resolve(
    name: &str,
    sections: &BTreeMap<String, EnvironmentSection>,
    root: &Path,
    interpolate: Interpolate<'_>,
    error: ConfigError<'_>,
) -> Result<Environment, ProjectError> {
    let Some(section) = sections.get(name) else {
        let known: Vec<&str> = sections.keys().map(String::as_str).collect();
        return Err(ProjectError::with_help(
            format!("there is no environment `{name}` in safeshift.toml"),
            if known.is_empty() {
                "define one as [environments.<name>] in safeshift.toml".to_owned()
            } else {
                format!("defined environments: {}", known.join(", "))
            },
        ));
    };
    let key = |field: &str| format!("environments.{name}.{field}");
    let duration =
        |value: &Option<String>, field: &str| -> Result<Option<Duration>, ProjectError> {
            value
                .as_deref()
                .map(|v| parse_duration(v).map_err(|m| error(&key(field), m)))
                .transpose()
        };
    let mut health = Vec::new();
    for (index, check) in section.health.iter().enumerate() {
        let field = format!("health[{index}]");
        let timeout = duration(&check.timeout, &format!("{field}.timeout"))?
            .unwrap_or(Duration::from_secs(5));
        match (
            interpolate(&check.http, &key(&format!("{field}.http")))?,
            &check.sql,
        ) {
            (Some(url), None) => health.push(HealthCheck::Http { url, timeout }),
            (None, Some(query)) => health.push(HealthCheck::Sql {
                query: query.clone(),
                timeout,
            }),
            _ => {
                return Err(error(
                    &key(&field),
                    "a health check has either `http = \"URL\"` or `sql = \"QUERY\"`".into(),
                ));
            }
        }
    }
    for (phase, commands) in [
        ("before", &section.hooks.before),
        ("after", &section.hooks.after),
    ] {
        if commands
            .iter()
            .any(|argv| argv.is_empty() || argv[0].is_empty())
        {
            return Err(error(
                &key(&format!("hooks.{phase}")),
                "each hook is a non-empty argument vector, such as [\"./maintenance\", \"on\"]"
                    .into(),
            ));
        }
    }
    let mut watch = WatchSettings::default();
    if let Some(interval) = duration(&section.watch.interval, "watch.interval")? {
        watch.interval = interval.max(Duration::from_millis(50));
    }
    if let Some(limit) = duration(&section.watch.lock_wait, "watch.lock_wait")? {
        watch.limits.lock_wait = limit;
    }
    if let Some(limit) = duration(&section.watch.long_query, "watch.long_query")? {
        watch.limits.long_query = limit;
    }
    if let Some(percent) = section.watch.connections {
        watch.limits.connections =
            parse_percent(&percent.to_string()).map_err(|m| error(&key("watch.connections"), m))?;
    }
    if let Some(limit) = duration(&section.watch.duration, "watch.duration")? {
        watch.limits.duration = Some(limit);
        watch.duration_given = true;
    }
    if let Some(abort_on) = &section.watch.abort_on {
        watch
            .apply_abort_on(abort_on)
            .map_err(|m| error(&key("watch.abort_on"), m))?;
    }
    let confirm = section.confirm.unwrap_or(false);
    let backup_required = section.backup == Some(BackupPolicy::Required);
    Ok(Environment {
        name: name.to_owned(),
        confirm,
        backup_required,
        backup_dir: interpolate(&section.backup_dir, &key("backup_dir"))?.map(|d| join(root, &d)),
        max_risk: section.max_risk,
        preflight: section.preflight.unwrap_or(confirm || backup_required),
        rollback_on_failure: section.rollback_on_failure.unwrap_or(false),
        hooks_before: section.hooks.before.clone(),
        hooks_after: section.hooks.after.clone(),
        hook_timeout: duration(&section.hooks.timeout, "hooks.timeout")?
            .unwrap_or(Duration::from_secs(300)),
        health,
        watch,
    })
}

fn join(root: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() || root == Path::new(".") {
        path.to_path_buf()
    } else {
        root.join(path)
    }
}
