//! Why a run stopped, and what it had done by then.

use safeshift_backup::BackupError;
use safeshift_driver::DriverError;
use safeshift_lint::{BlockedUp, UnknownRule};
use safeshift_runner::{RunError, RunReport};
use safeshift_source::SourceErrors;
use safeshift_watch::{HealthOutcome, WatchSummary};

use crate::frontend::Refusal;

/// What a run did (completely, or up to where it stopped).
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    /// The migrations applied (or rolled back).
    pub report: RunReport,
    /// Nothing was pending: a guarded run stopped before its guards, applying nothing.
    pub up_to_date: bool,
    /// What the watchdog saw, when one ran.
    pub watchdog: Option<WatchSummary>,
    /// The backup taken before applying, when the policy asked for one.
    pub backup: Option<String>,
    /// The health checks after the migrations.
    pub health: Vec<HealthOutcome>,
    /// After failed health checks: whether the run's migrations were rolled back (`None` when
    /// the policy did not ask for it).
    pub rolled_back: Option<bool>,
}

/// Where in the run it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Before any migration ran: checks, the lint gate, the backup, the confirmation, hooks.
    BeforeMigrations,
    /// While the migrations ran.
    Migrations,
    /// The migrations applied, and the health checks failed.
    HealthChecks,
    /// The rollback after failed health checks failed.
    Rollback,
}

/// A run that stopped: what it did, where and why.
#[derive(Debug)]
pub struct DeployFailure {
    pub done: Deployed,
    pub stage: Stage,
    pub error: DeployError,
}

/// Why a run stopped. Each says what happened and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The runner stopped: a migration failed, the run lock, a changed file, an interrupt...
    #[error(transparent)]
    Run(RunError),
    #[error("the migration files have problems")]
    Source(SourceErrors),
    #[error(transparent)]
    Database(DriverError),
    #[error(transparent)]
    Backup(BackupError),
    #[error(transparent)]
    Lint(UnknownRule),
    /// The lint gate: findings above the accepted risk in the migrations to apply.
    #[error("{error}")]
    Blocked {
        /// The blocking findings, to show, with the counts of the whole evaluation.
        blocked: Box<BlockedUp>,
        /// [`RunError::Blocked`], saying how many and what to do.
        error: RunError,
    },
    /// Nobody confirmed.
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// A guard stopped the run before anything was applied: a failed pre-flight check, backup or
    /// hook.
    #[error("{message}")]
    Guard {
        message: String,
        help: Option<String>,
    },
    /// The migrations applied, and health checks failed afterwards.
    #[error("{message}")]
    Unhealthy {
        message: String,
        help: Option<String>,
    },
}

impl DeployError {
    pub(crate) fn guard(message: impl Into<String>, help: Option<String>) -> DeployError {
        DeployError::Guard {
            message: message.into(),
            help,
        }
    }
}

impl From<RunError> for DeployError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Source(errors) => DeployError::Source(errors),
            other => DeployError::Run(other),
        }
    }
}

impl From<DriverError> for DeployError {
    fn from(error: DriverError) -> Self {
        DeployError::Database(error)
    }
}

impl From<BackupError> for DeployError {
    fn from(error: BackupError) -> Self {
        DeployError::Backup(error)
    }
}

impl From<UnknownRule> for DeployError {
    fn from(error: UnknownRule) -> Self {
        DeployError::Lint(error)
    }
}

impl From<SourceErrors> for DeployError {
    fn from(errors: SourceErrors) -> Self {
        DeployError::Source(errors)
    }
}

impl From<Refusal> for DeployError {
    fn from(refusal: Refusal) -> Self {
        DeployError::Refused(refusal)
    }
}
