//! A run's policy: how careful `up` and `down` are around the migrations. The unguarded run is
//! [`Policy::default`]; an environment of safeshift.toml (`[environments.<name>]`) resolves to a
//! policy, and the command's flags adjust it.

use std::path::PathBuf;
use std::time::Duration;

use safeshift_lint::{Risk, RiskPolicy};
use safeshift_source::parse_duration;
use safeshift_watch::{HealthCheck, Limits, Threshold};

use crate::hooks;

/// What a run does around the migrations.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The environment's name, recorded with every event and given to hooks; `None` outside an
    /// environment.
    pub environment: Option<String>,
    /// Show the plan and ask a person before applying (and before rolling back).
    pub confirm: bool,
    /// Where backups go, and whether `up` takes one first.
    pub backups: Backups,
    /// The highest lint risk applied without an acknowledgement in the migration.
    pub max_risk: Risk,
    /// How table sizes grade the lint findings the gate refuses on (`[lint]`).
    pub risk_policy: RiskPolicy,
    /// Run the pre-flight checks before applying; a failed check stops the run.
    pub preflight: bool,
    /// Commands run before the first migration and after the run.
    pub hooks: Hooks,
    /// Watch the migration's session from a second connection while it runs; `None`: no
    /// watchdog.
    pub watch: Option<WatchSettings>,
    /// Checks run after the migrations applied.
    pub health: Vec<HealthCheck>,
    /// Roll back the migrations of the run when a health check fails.
    pub rollback_on_failure: bool,
}

impl Default for Policy {
    /// The unguarded run: the lint gate at medium risk, and nothing around the migrations.
    fn default() -> Self {
        Policy {
            environment: None,
            confirm: false,
            backups: Backups::default(),
            max_risk: Risk::Medium,
            risk_policy: RiskPolicy::default(),
            preflight: false,
            hooks: Hooks::default(),
            watch: None,
            health: Vec::new(),
            rollback_on_failure: false,
        }
    }
}

impl Policy {
    /// Whether the run does anything around the migrations. A guarded run with nothing to apply
    /// stops before its guards (no backup, no hook, no confirmation).
    pub fn guards_the_run(&self) -> bool {
        self.environment.is_some()
            || self.confirm
            || self.backups.before_up
            || self.preflight
            || !self.hooks.before.is_empty()
            || !self.hooks.after.is_empty()
            || self.watch.is_some()
            || !self.health.is_empty()
            || self.rollback_on_failure
    }
}

/// Backups: where they go, and whether `up` takes one first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backups {
    /// Take and verify a backup before applying.
    pub before_up: bool,
    /// Where backups go (the pre-flight checks measure its free space).
    pub dir: PathBuf,
    /// The start of a backup file's name.
    pub prefix: String,
    /// Fingerprint every table when dumping (for `backup verify --deep`).
    pub fingerprints: bool,
}

impl Default for Backups {
    fn default() -> Self {
        Backups {
            before_up: false,
            dir: PathBuf::from("backups"),
            prefix: "safeshift".to_owned(),
            fingerprints: true,
        }
    }
}

/// Hook commands: argument vectors, run without a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// Before the first migration; one that fails stops the run.
    pub before: Vec<Vec<String>>,
    /// After the run (and its health checks), whatever the outcome.
    pub after: Vec<Vec<String>>,
    /// How long one hook may run before it is killed.
    pub timeout: Duration,
    /// Environment variables the hooks are not handed: every one a database password may be
    /// read from (at least [`hooks::CREDENTIAL_VARIABLES`]).
    pub withheld: Vec<String>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            before: Vec::new(),
            after: Vec::new(),
            timeout: Duration::from_secs(300),
            withheld: hooks::CREDENTIAL_VARIABLES
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
        }
    }
}

/// The watchdog's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSettings {
    pub interval: Duration,
    pub limits: Limits,
    /// Set explicitly (config or `--abort-on duration=…`); otherwise the estimate decides.
    pub duration_given: bool,
    pub abort_on: Vec<Threshold>,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            interval: Duration::from_millis(200),
            limits: Limits::default(),
            duration_given: false,
            abort_on: Vec::new(),
        }
    }
}

impl WatchSettings {
    /// Applies an `--abort-on` list: `lock-wait[=5s],long-query[=10s],connections[=80%],duration[=10m]`.
    pub fn apply_abort_on(&mut self, text: &str) -> Result<(), String> {
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (item, None),
            };
            let threshold = Threshold::parse(name).ok_or_else(|| {
                format!(
                    "`{name}` is not a watchdog threshold; use lock-wait, long-query, connections or duration"
                )
            })?;
            if let Some(value) = value {
                match threshold {
                    Threshold::LockWait => self.limits.lock_wait = parse_duration(value)?,
                    Threshold::LongQuery => self.limits.long_query = parse_duration(value)?,
                    Threshold::Connections => self.limits.connections = parse_percent(value)?,
                    Threshold::Duration => {
                        self.limits.duration = Some(parse_duration(value)?);
                        self.duration_given = true;
                    }
                }
            }
            if !self.abort_on.contains(&threshold) {
                self.abort_on.push(threshold);
            }
        }
        Ok(())
    }
}

/// `80`, `80%` or `0.8` → 0.8.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number: f64 = text
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage (write 80%)"))?;
    let ratio = if number > 1.0 { number / 100.0 } else { number };
    if !(0.0..=1.0).contains(&ratio) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_on_lists_set_limits() {
        let mut watch = WatchSettings::default();
        watch
            .apply_abort_on("lock-wait=2s, connections=90%,duration=10m")
            .unwrap();
        assert_eq!(watch.limits.lock_wait, Duration::from_secs(2));
        assert!((watch.limits.connections - 0.9).abs() < 1e-9);
        assert_eq!(watch.limits.duration, Some(Duration::from_secs(600)));
        assert_eq!(
            watch.abort_on,
            [
                Threshold::LockWait,
                Threshold::Connections,
                Threshold::Duration
            ]
        );
        assert!(watch.apply_abort_on("lockwait").is_err());
        assert!(parse_percent("120%").is_err());
        assert!((parse_percent("0.5").unwrap() - 0.5).abs() < 1e-9);
    }
}
