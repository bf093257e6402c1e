//! safeshift, embedded: apply your application's migrations at start-up with the same run lock,
//! history, checksums and transaction handling as the `safeshift` command.
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
//!
//! // Running it again applies nothing: the history knows.
//! let again = migrator.up(db.as_mut(), None, &mut safeshift::Quiet)?;
//! assert!(again.migrations.is_empty());
//! assert_eq!(migrator.status(db.as_mut())?.pending, 0);
//! # Ok(())
//! # }
//! ```
//!
//! [`Migrator::up`] waits for the run lock, so several instances of an application starting at
//! once apply each migration exactly once. Progress can be observed by passing a closure
//! `|event: safeshift::Event| …` instead of [`Quiet`].

// `Error` wraps the runner's error, which is large and returned at most once per run.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod environment;
mod online;

pub use config::{Overrides, Project, ProjectError, UrlSource};

pub use safeshift_driver::{
    ConnectOptions, DatabaseUrl, Direction, Driver, DriverError, Engine, HistoryLocation,
    HistoryRecord, RunLockMode, Timeouts, redact,
};
pub use safeshift_runner::{
    DownTarget, DryRun, Event, Identity, LockSettings, Migrator, Observer, Quiet, RepairReport,
    Resolution, RetryPolicy, RunError, RunFailure, RunReport, Settings, StatusReport,
};
pub use safeshift_source::{Migration, MigrationSet, SourceError, SourceErrors, Version};

/// Any error safeshift returns to an embedding application.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Source(#[from] SourceErrors),
    #[error("{0}")]
    Database(#[from] DriverError),
    #[error("{}", .0.error)]
    Run(Box<RunFailure>),
    #[error("{0}")]
    Runner(#[from] RunError),
}

impl From<RunFailure> for Error {
    fn from(failure: RunFailure) -> Self {
        Error::Run(Box::new(failure))
    }
}

/// Connects to a database URL with default options (relative SQLite paths resolve against the
/// current directory).
pub fn connect(url: &str) -> Result<Box<dyn Driver>, Error> {
    let url = DatabaseUrl::parse(url)?;
    Ok(safeshift_driver::connect(&url, &ConnectOptions::default())?)
}
