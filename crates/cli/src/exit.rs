//! Exit codes (documented in `--help` and the README) and the errors that lead to them.

use safeshift_driver::{DriverError, ErrorKind};
use safeshift_runner::{InterruptReason, RunError};
use safeshift_source::SourceErrors;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    MigrationFailed = 1,
    Usage = 2,
    InvalidFiles = 3,
    Refused = 4,
    Lock = 5,
    Connection = 6,
    Pending = 7,
    /// `lint`: a finding at or above `--fail-on`, or a file with errors.
    LintFindings = 8,
    /// A production guard stopped the run: pre-flight, backup, hook, confirmation, watchdog.
    Guard = 9,
    /// Migrations applied, but a health check failed afterwards.
    HealthCheck = 10,
    /// `rehearse`: a migration failed its rehearsal.
    RehearsalFailed = 11,
    /// `diff --exit-code`: the schemas differ.
    SchemasDiffer = 12,
    Interrupted = 130,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

/// Why a command failed. `diagnostics::report` shows it with its file, snippet and help; the
/// `Display` form is the message alone (the JSON output's `message`).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A usage or configuration problem.
    #[error("{message}")]
    Usage {
        message: String,
        help: Option<String>,
    },
    #[error("{0}")]
    Source(SourceErrors),
    #[error("{0}")]
    Database(DriverError),
    #[error("{0}")]
    Run(RunError),
    /// A production guard stopped the run (exit 9), or a health check failed (exit 10).
    #[error("{}", .0.message)]
    Guard(Box<Guard>),
}

/// A production guard's refusal, or failed health checks.
#[derive(Debug)]
pub struct Guard {
    pub exit: Exit,
    pub message: String,
    pub help: Option<String>,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::Usage {
            message: message.into(),
            help: None,
        }
    }

    pub fn usage_with_help(message: impl Into<String>, help: impl Into<String>) -> CliError {
        CliError::Usage {
            message: message.into(),
            help: Some(help.into()),
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage { .. } => Exit::Usage,
            CliError::Source(_) => Exit::InvalidFiles,
            CliError::Database(error) => driver_exit(error),
            CliError::Run(error) => run_exit(error),
            CliError::Guard(guard) => guard.exit,
        }
    }
}

fn driver_exit(error: &DriverError) -> Exit {
    match error.kind {
        ErrorKind::InvalidUrl => Exit::Usage,
        ErrorKind::Connect | ErrorKind::ConnectionLost => Exit::Connection,
        ErrorKind::LockLost => Exit::Lock,
        _ => Exit::MigrationFailed,
    }
}

fn run_exit(error: &RunError) -> Exit {
    match error {
        RunError::Source(_) | RunError::Statements(_) => Exit::InvalidFiles,
        RunError::Database(error) => driver_exit(error),
        RunError::LockTimeout { .. } | RunError::LockLost(_) => Exit::Lock,
        RunError::ChecksumMismatch(_)
        | RunError::OutOfOrder { .. }
        | RunError::MissingDown(_)
        | RunError::Blocked { .. } => Exit::Refused,
        RunError::MigrationFailed { error, .. } if error.kind == ErrorKind::ConnectionLost => {
            Exit::Connection
        }
        RunError::MigrationFailed { .. } => Exit::MigrationFailed,
        RunError::Interrupted {
            reason: InterruptReason::Watchdog(_),
            ..
        } => Exit::Guard,
        RunError::Interrupted { .. } => Exit::Interrupted,
        RunError::Usage(_) => Exit::Usage,
    }
}

impl CliError {
    /// A production guard's refusal (exit 9).
    pub fn guard(message: impl Into<String>, help: Option<String>) -> CliError {
        CliError::Guard(Box::new(Guard {
            exit: Exit::Guard,
            message: message.into(),
            help,
        }))
    }
}

impl From<safeshift_backup::BackupError> for CliError {
    fn from(error: safeshift_backup::BackupError) -> Self {
        use safeshift_backup::BackupError;
        match error {
            BackupError::Database(error) => CliError::Database(error),
            other => CliError::guard(other.to_string(), other.help()),
        }
    }
}

impl From<safeshift::DeployError> for CliError {
    fn from(error: safeshift::DeployError) -> Self {
        use safeshift::DeployError;
        match error {
            DeployError::Run(error) => CliError::from(error),
            DeployError::Source(errors) => CliError::Source(errors),
            DeployError::Database(error) => CliError::Database(error),
            DeployError::Backup(error) => CliError::from(error),
            DeployError::Lint(error) => CliError::usage(error.to_string()),
            DeployError::Blocked { error, .. } => CliError::Run(error),
            DeployError::Refused(refusal) => CliError::from(refusal),
            DeployError::Guard { message, help } => CliError::guard(message, help),
            DeployError::Unhealthy { message, help } => CliError::Guard(Box::new(Guard {
                exit: Exit::HealthCheck,
                message,
                help,
            })),
        }
    }
}

impl From<safeshift::Refusal> for CliError {
    /// Nobody could answer: a usage problem (exit 2); a person said no: a guard's refusal (exit 9).
    fn from(refusal: safeshift::Refusal) -> Self {
        if refusal.unanswerable {
            CliError::Usage {
                message: refusal.message,
                help: refusal.help,
            }
        } else {
            CliError::guard(refusal.message, refusal.help)
        }
    }
}

impl From<safeshift::Error> for CliError {
    fn from(error: safeshift::Error) -> Self {
        match error {
            safeshift::Error::Project(error) => CliError::from(error),
            safeshift::Error::Source(errors) => CliError::Source(errors),
            safeshift::Error::Database(error) => CliError::Database(error),
            safeshift::Error::Run(failure) => CliError::from(failure.error),
            safeshift::Error::Runner(error) => CliError::from(*error),
            safeshift::Error::Deploy(failure) => CliError::from(failure.error),
        }
    }
}

impl From<safeshift::ProjectError> for CliError {
    fn from(error: safeshift::ProjectError) -> Self {
        CliError::Usage {
            message: error.message,
            help: error.help,
        }
    }
}

impl From<SourceErrors> for CliError {
    fn from(errors: SourceErrors) -> Self {
        CliError::Source(errors)
    }
}

impl From<DriverError> for CliError {
    fn from(error: DriverError) -> Self {
        CliError::Database(error)
    }
}

impl From<RunError> for CliError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Source(errors) => CliError::Source(errors),
            other => CliError::Run(other),
        }
    }
}
