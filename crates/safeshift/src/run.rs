//! A project, ready to run: its connection, its migrator with the online operations installed,
//! its policy, and the deployment that applies it with the lint gate. The command runs every
//! `up` and `down` through here, and so can an application that migrates itself.

use safeshift_deploy::{Backups, Database, Deployment, Hooks, Policy};
use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver};
use safeshift_online::{EventSink, OnlineHooks};
use safeshift_runner::{Identity, Migrator, Settings};
use safeshift_source::{LoadOptions, MigrationSet, SourceErrors, Variables};

use crate::Error;
use crate::config::{Project, ProjectError};

/// How a project's migrations run, besides its configuration.
#[derive(Clone)]
pub struct RunOptions {
    /// Who runs: recorded in every history row and event.
    pub identity: Identity,
    /// Apply pending migrations older than the newest applied one.
    pub allow_out_of_order: bool,
    /// `down` refuses a rollback whose down section holds no statements instead of recording
    /// it as a no-op.
    pub strict_rollbacks: bool,
    /// Where the online operations report progress (backfill batches, index builds, waits for
    /// locks); [`safeshift_online::quiet`] shows nothing.
    pub online_events: EventSink,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            identity: Identity::current(),
            allow_out_of_order: false,
            strict_rollbacks: false,
            online_events: safeshift_online::quiet(),
        }
    }
}

impl Project {
    /// The database URL, or an error that says how to give one.
    pub fn database_url(&self) -> Result<DatabaseUrl, Error> {
        let Some((url, _)) = &self.url else {
            return Err(Error::Project(ProjectError::with_help(
                "no database URL",
                "set `url` under [database] in safeshift.toml, pass --database-url, or set DATABASE_URL \
                 (e.g. sqlite://app.db or postgres://user@host/db)",
            )));
        };
        Ok(DatabaseUrl::parse(url)?)
    }

    /// Options for the migration's connection: the project's history table and run lock, and an
    /// application name that tells a waiting run who holds the lock.
    pub fn connect_options(&self, identity: &Identity) -> ConnectOptions {
        ConnectOptions {
            base_dir: self.root.clone(),
            application_name: application_name(identity),
            history: self.history.clone(),
            create: false,
            lock_mode: self.lock.mode,
            ..ConnectOptions::default()
        }
    }

    /// The project's database, for a run and its other connections.
    pub fn database(&self, identity: &Identity) -> Result<Database, Error> {
        Ok(Database::new(
            self.database_url()?,
            self.connect_options(identity),
        ))
    }

    /// Connects. `create` allows creating a missing SQLite file (commands that only read pass
    /// false, so that reading a fresh project creates nothing).
    pub fn connect(&self, identity: &Identity, create: bool) -> Result<Box<dyn Driver>, Error> {
        Ok(self.database(identity)?.connect(create)?)
    }

    /// The runner's settings: timeouts, retries, the run lock, who runs.
    pub fn settings(&self, identity: &Identity, allow_out_of_order: bool) -> Settings {
        Settings {
            timeouts: self.timeouts,
            retry: self.retry,
            lock: self.lock,
            allow_out_of_order: allow_out_of_order || self.allow_out_of_order,
            identity: identity.clone(),
            backup_ref: None,
            strict_rollbacks: false,
        }
    }

    /// Every migration in the project's directory; any malformed file is an error.
    pub fn migrations(&self) -> Result<MigrationSet, SourceErrors> {
        MigrationSet::load_with(&self.migrations_dir, &self.load_options())
    }

    /// Every migration in the project's directory that can be read, with the problems of the
    /// files that cannot (a migrator refuses to run while there are any; `status` lists them).
    pub fn all_migrations(&self) -> Result<MigrationSet, SourceErrors> {
        MigrationSet::read_with(&self.migrations_dir, &self.load_options())
    }

    /// How to read the migrations directory: the chosen layout and the template values (`--var`,
    /// then the environment, which goose's ENVSUB reads).
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            format: self.format,
            variables: Variables {
                given: self.variables.clone(),
                environment: std::env::vars().collect(),
            },
        }
    }

    /// A migrator with the online operations installed: statements whose lock blocks traffic
    /// run lock-safe, `-- safeshift:backfill` statements run as resumable batched backfills,
    /// `CREATE INDEX CONCURRENTLY` is watched and retried.
    pub fn migrator(&self, options: &RunOptions) -> Result<Migrator, SourceErrors> {
        let mut settings = self.settings(&options.identity, options.allow_out_of_order);
        settings.strict_rollbacks = options.strict_rollbacks;
        let mut migrator = Migrator::new(self.all_migrations()?, settings);
        migrator.set_hooks(Box::new(OnlineHooks::new(
            self.online.clone(),
            options.online_events.clone(),
        )));
        Ok(migrator)
    }

    /// The chosen environment's policy (`[environments.<name>]`); without one, the unguarded
    /// run.
    pub fn policy(&self) -> Policy {
        let backups = Backups {
            before_up: false,
            dir: self
                .environment
                .as_ref()
                .and_then(|e| e.backup_dir.clone())
                .unwrap_or_else(|| self.backup.dir.clone()),
            prefix: self.backup.prefix.clone(),
            fingerprints: self.backup.fingerprints,
        };
        let Some(environment) = &self.environment else {
            return Policy {
                backups,
                risk_policy: self.risk_policy,
                ..Policy::default()
            };
        };
        Policy {
            environment: Some(environment.name.clone()),
            confirm: environment.confirm,
            backups: Backups {
                before_up: environment.backup_required,
                ..backups
            },
            max_risk: environment.max_risk.unwrap_or(Policy::default().max_risk),
            risk_policy: self.risk_policy,
            preflight: environment.preflight,
            hooks: Hooks {
                before: environment.hooks_before.clone(),
                after: environment.hooks_after.clone(),
                timeout: environment.hook_timeout,
                withheld: self.credential_variables.clone(),
            },
            watch: Some(environment.watch.clone()),
            health: environment.health.clone(),
            rollback_on_failure: environment.rollback_on_failure,
        }
    }

    /// The project's migrations on its database under `policy`, with the online operations
    /// installed and the lint gate before every `up`. Nothing connects yet.
    pub fn deployment(&self, options: &RunOptions, policy: Policy) -> Result<Deployment, Error> {
        Ok(Deployment::new(
            self.migrator(options)?,
            self.database(&options.identity)?,
            policy,
        ))
    }
}

/// `safeshift 0.1.0 pid 4242 deploy@ci-7`, cut to PostgreSQL's 63-byte limit (the pid first,
/// so a long host name cannot push it out); a waiting runner shows it to say who holds the lock.
fn application_name(identity: &Identity) -> String {
    let mut name = format!(
        "safeshift {} pid {} {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        identity.installed_by
    );
    while name.len() > 63 {
        name.pop();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Overrides;

    #[test]
    fn an_environment_resolves_to_its_policy_and_none_to_the_unguarded_run() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("safeshift.toml");
        std::fs::write(
            &config,
            "[backup]\ndir = \"dumps\"\n\n\
             [environments.production]\nconfirm = true\nbackup = \"required\"\nmax_risk = \"high\"\n\n\
             [environments.production.hooks]\nbefore = [[\"./maintenance\", \"on\"]]\n",
        )
        .unwrap();
        let load = |environment: Option<&str>| {
            Project::load(&Overrides {
                config: Some(config.clone()),
                database_url: Some("sqlite://app.db".into()),
                environment: environment.map(str::to_owned),
                ..Overrides::default()
            })
            .unwrap()
        };
        let unguarded = load(None).policy();
        assert!(!unguarded.guards_the_run());
        assert_eq!(
            unguarded,
            Policy {
                backups: Backups {
                    dir: dir.path().join("dumps"),
                    ..Backups::default()
                },
                ..Policy::default()
            }
        );
        let production = load(Some("production")).policy();
        assert!(production.guards_the_run());
        assert_eq!(production.environment.as_deref(), Some("production"));
        assert!(production.confirm && production.backups.before_up);
        assert!(production.preflight, "on by default with a confirmation");
        assert_eq!(production.max_risk, safeshift_lint::Risk::High);
        assert_eq!(production.hooks.before, [["./maintenance", "on"]]);
        assert!(production.watch.is_some(), "an environment is watched");
        assert!(!production.rollback_on_failure);
    }
}
