//! safeshift, embedded: an application applies its migrations at start-up with the same safety
//! as the `safeshift` command, because the command runs through this crate too: the run lock,
//! the history and checksums, the lint gate (a migration with an unacknowledged high-risk finding
//! is refused before anything runs), lock-safe DDL (a statement whose lock blocks traffic waits
//! out long transactions outside the lock queue, then queues under a short `lock_timeout` with
//! retries) and `-- safeshift:backfill` statements run as resumable batched backfills. The
//! project's `safeshift.toml` is read as the command reads it, environments included.
//!
//! An application migrating itself on start-up, on PostgreSQL; the migration adds a column and
//! fills it in batches of 500 rows, each in a transaction of its own, so the application keeps
//! writing to the table meanwhile:
//!
//! ```
//! use safeshift::{Overrides, Project};
//!
//! # fn main() -> Result<(), safeshift::Error> {
//! # let database = safeshift_testkit::TestDatabase::new();
//! # database
//! #     .client()
//! #     .batch_execute(
//! #         "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
//! #          INSERT INTO accounts SELECT g, 'User' || g || '@Example.com' FROM generate_series(1, 2000) g;",
//! #     )
//! #     .unwrap();
//! # let url = database.url();
//! # let app = tempfile::tempdir().unwrap();
//! # let dir = app.path();
//! # std::fs::create_dir(dir.join("migrations")).unwrap();
//! std::fs::write(
//!     dir.join("migrations/0001_normalized_email.sql"),
//!     "-- migrate:up transaction:false\n\
//!      ALTER TABLE accounts ADD COLUMN email_normalized text;\n\
//!      -- safeshift:backfill batch=500\n\
//!      UPDATE accounts SET email_normalized = lower(email);\n\n\
//!      -- migrate:down\n\
//!      ALTER TABLE accounts DROP COLUMN email_normalized;\n",
//! ).unwrap();
//! std::fs::write(dir.join("safeshift.toml"), "directory = \"migrations\"\n").unwrap();
//!
//! // On start-up: the project as the command sees it (`url` may live in safeshift.toml, or in
//! // DATABASE_URL), then every pending migration, under the run lock.
//! let project = Project::load(&Overrides {
//!     config: Some(dir.join("safeshift.toml")),
//!     database_url: Some(url),
//!     ..Overrides::default()
//! })?;
//! let applied = safeshift::migrate(&project)?;
//! assert_eq!(applied.report.migrations.len(), 1);
//!
//! // Several instances starting at once apply each migration exactly once: the others wait for
//! // the run lock, then find nothing to do.
//! assert!(safeshift::migrate(&project)?.report.migrations.is_empty());
//! # let filled: i64 = database
//! #     .client()
//! #     .query_one("SELECT count(*) FROM accounts WHERE email_normalized = lower(email)", &[])
//! #     .unwrap()
//! #     .get(0);
//! # assert_eq!(filled, 2000);
//! # Ok(())
//! # }
//! ```
//!
//! [`migrate`] runs with the project's policy (its environment's, when `Overrides::environment`
//! names one) and shows nothing. For more control (progress, a person's confirmation, `down`, a
//! `--dry-run`), build the [`Deployment`] with [`Project::deployment`] and implement [`Report`]
//! and [`Confirm`], as the command does. The runner alone ([`Migrator`], [`connect`]) is still
//! there for applications that want nothing else:
//!
//! ```
//! use safeshift::{Migrator, MigrationSet, Settings};
//!
//! # fn main() -> Result<(), safeshift::Error> {
//! # let project = tempfile::tempdir().unwrap();
//! # let dir = project.path().join("migrations");
//! # std::fs::create_dir(&dir).unwrap();
//! std::fs::write(
//!     dir.join("0001_create_accounts.sql"),
//!     "-- migrate:up\nCREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n\
//!      -- migrate:down\nDROP TABLE accounts;\n",
//! ).unwrap();
//! # let url = format!("sqlite://{}", project.path().join("app.db").display());
//! // `url` is e.g. "postgres://app@db/app" or "sqlite://app.db".
//! let mut db = safeshift::connect(&url)?;
//! let migrator = Migrator::new(MigrationSet::load(&dir)?, Settings::default());
//! let report = migrator.up(db.as_mut(), None, &mut safeshift::Quiet)?;
//! assert_eq!(report.migrations.len(), 1);
//! assert_eq!(migrator.status(db.as_mut())?.pending, 0);
//! # Ok(())
//! # }
//! ```

// `DeployError` carries the runner's error, which is large and returned at most once per run.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod environment;
mod online;
mod run;

pub use config::{Overrides, Project, ProjectError, UrlSource};
pub use run::RunOptions;

pub use safeshift_deploy::{
    Action, Backups, Confirm, Database, DeployError, DeployFailure, Deployed, Deployment, Hooks,
    NoWatchdog, Plan, Policy, Preflight, Question, Quiet, Refusal, Report, Stage, Step, Stop,
    Unattended, WatchSettings,
};
pub use safeshift_driver::{
    ConnectOptions, DatabaseUrl, Direction, Driver, DriverError, Engine, HistoryLocation,
    HistoryRecord, RunLockMode, Timeouts, redact,
};
pub use safeshift_lint::{LintReport, Risk, RuleId};
pub use safeshift_runner::{
    DownTarget, DryRun, Event, Identity, InterruptReason, LockSettings, Migrator, Observer,
    RepairReport, Resolution, RetryPolicy, RunError, RunFailure, RunReport, Settings, StatusReport,
};
pub use safeshift_source::{Migration, MigrationSet, SourceError, SourceErrors, Version};

/// Any error safeshift returns to an embedding application.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// safeshift.toml, the environment or an override is wrong.
    #[error("{0}")]
    Project(#[from] ProjectError),
    #[error("{0}")]
    Source(#[from] SourceErrors),
    #[error("{0}")]
    Database(#[from] DriverError),
    /// A run of the runner alone stopped.
    #[error("{}", .0.error)]
    Run(Box<RunFailure>),
    #[error("{0}")]
    Runner(Box<RunError>),
    /// A deployment stopped (before, during or after its migrations).
    #[error("{}", .0.error)]
    Deploy(Box<DeployFailure>),
}

impl From<RunFailure> for Error {
    fn from(failure: RunFailure) -> Self {
        Error::Run(Box::new(failure))
    }
}

impl From<RunError> for Error {
    fn from(error: RunError) -> Self {
        Error::Runner(Box::new(error))
    }
}

impl From<DeployFailure> for Error {
    fn from(failure: DeployFailure) -> Self {
        Error::Deploy(Box::new(failure))
    }
}

impl From<DeployError> for Error {
    fn from(error: DeployError) -> Self {
        Error::Deploy(Box::new(DeployFailure {
            done: Deployed::default(),
            stage: Stage::BeforeMigrations,
            error,
        }))
    }
}

/// Applies the project's pending migrations as `safeshift up` would, with its policy (the
/// environment's, or the unguarded run), showing nothing; a policy that asks for a person's
/// confirmation refuses before any work ([`Unattended`]).
pub fn migrate(project: &Project) -> Result<Deployed, Error> {
    let mut deployment = project.deployment(&RunOptions::default(), project.policy())?;
    Ok(deployment.up(None, &mut Unattended, &mut Quiet)?)
}

/// Connects to a database URL with default options (relative SQLite paths resolve against the
/// current directory).
pub fn connect(url: &str) -> Result<Box<dyn Driver>, Error> {
    connect_with(url, &ConnectOptions::default())
}

/// Connects to a database URL with the given options (the history's location, the run lock's
/// mode, where relative SQLite paths resolve, the application name…).
pub fn connect_with(url: &str, options: &ConnectOptions) -> Result<Box<dyn Driver>, Error> {
    let url = DatabaseUrl::parse(url)?;
    Ok(safeshift_driver::connect(&url, options)?)
}
