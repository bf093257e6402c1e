//! What only a front end can do for a run: ask a person ([`Confirm`]) and show what happens
//! ([`Report`], with the runner's [`Observer`] for the migrations themselves). The command's
//! front end asks on the terminal and prints; an application that migrates itself on start-up
//! can use [`Unattended`] and [`Quiet`], or log.

use std::path::Path;
use std::sync::Arc;

use safeshift_backup::Verification;
use safeshift_driver::{Canceller, DriverError, EventKind};
use safeshift_runner::{Event, Interrupt, InterruptReason, Observer};
use safeshift_watch::{HealthOutcome, WatchEvent};

use crate::hooks::HookOutcome;
use crate::plan::Plan;
use crate::preflight::Preflight;

/// What a run may ask a person to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
}

/// The question, with what a person needs to answer it.
#[derive(Debug)]
pub enum Question<'a> {
    /// Apply the planned migrations (a backup, when taken, is named).
    Apply {
        plan: &'a Plan,
        backup: Option<&'a str>,
        /// The database's name, which a person types to confirm.
        database: &'a str,
    },
    /// Roll back these versions, newest first.
    RollBack {
        versions: &'a [String],
        /// The URL, redacted.
        database_url: &'a str,
        database: &'a str,
    },
}

/// Why nobody confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Nobody could be asked (no terminal, no answer), as opposed to a person saying no.
    pub unanswerable: bool,
    pub message: String,
    pub help: Option<String>,
}

/// Asking a person.
pub trait Confirm {
    /// Called before any work when the policy asks for a confirmation: refuses at once when
    /// nobody will be able to answer, so a run never waits for an answer that cannot come.
    fn can_ask(&self, action: Action, environment: &str) -> Result<(), Refusal>;

    /// Asks; `Ok` to go ahead.
    fn ask(&mut self, question: &Question<'_>) -> Result<(), Refusal>;
}

/// For runs without a person: a policy that asks for a confirmation refuses before any work.
pub struct Unattended;

impl Confirm for Unattended {
    fn can_ask(&self, action: Action, environment: &str) -> Result<(), Refusal> {
        Err(Refusal {
            unanswerable: true,
            message: format!(
                "`{}` in the `{environment}` environment needs a confirmation, and nobody can give it",
                match action {
                    Action::Up => "up",
                    Action::Down => "down",
                }
            ),
            help: Some("nothing was changed; turn `confirm` off for unattended runs".into()),
        })
    }

    fn ask(&mut self, question: &Question<'_>) -> Result<(), Refusal> {
        let action = match question {
            Question::Apply { .. } => Action::Up,
            Question::RollBack { .. } => Action::Down,
        };
        self.can_ask(action, "this")
    }
}

/// Why a run has no watchdog.
#[derive(Debug)]
pub enum NoWatchdog<'a> {
    /// The migration connection has no fixed server process (the lease lock through a pooler).
    Pooled,
    /// Its connection could not be opened.
    Failed(&'a DriverError),
}

/// A step of a run, besides the migrations themselves.
#[derive(Debug)]
pub enum Step<'a> {
    /// The plan's table sizes could not be read in time (a lock is queued on one of them):
    /// risks are graded without them.
    SizesUnavailable,
    /// The pre-flight checks ran.
    Preflight(&'a Preflight),
    /// A backup is being taken into this directory.
    BackupStarted {
        dir: &'a Path,
    },
    /// The backup was checked.
    BackupChecked {
        verification: &'a Verification,
    },
    /// The backup is taken and verified.
    BackupTaken {
        reference: &'a str,
    },
    /// A hook ran.
    Hook(&'a HookOutcome),
    /// The run goes without a watchdog.
    NoWatchdog(NoWatchdog<'a>),
    /// Health checks start, after this many applied migrations.
    HealthChecksStarted {
        applied: usize,
    },
    Health(&'a HealthOutcome),
    /// The run's migrations are rolled back after failed health checks.
    RollbackStarted {
        migrations: usize,
    },
    /// How that rollback ended, in a sentence.
    RollbackEnded {
        summary: &'a str,
    },
    /// The events log could not be created before a backup (the backup will not hold it).
    EventsLogUnavailable {
        error: &'a DriverError,
    },
    /// An event could not be written to the events log (the run goes on).
    EventNotRecorded {
        kind: EventKind,
        error: &'a DriverError,
    },
}

/// What stops the migrations of a run once they run: request a stop, then cancel the running
/// statement; the runner records the interrupted attempt and releases the lock.
#[derive(Clone)]
pub struct Stop {
    pub interrupt: Arc<Interrupt>,
    pub canceller: Canceller,
}

impl Stop {
    /// Stops the run, for `reason`.
    pub fn stop(&self, reason: InterruptReason) {
        self.interrupt.request(reason);
        (self.canceller)();
    }
}

/// Showing a run as it happens. The migrations' own events come through [`Observer`].
pub trait Report: Observer {
    /// A step of the run.
    fn step(&mut self, _step: Step<'_>) {}

    /// Where the watchdog's events go; called from the watchdog's own thread.
    fn watch_events(&self) -> Box<dyn FnMut(WatchEvent) + Send> {
        Box::new(|_| {})
    }

    /// The migrations are about to run; `stop` stops them (from a signal handler, say).
    fn migrations_starting(&mut self, _stop: &Stop) {}
}

/// Shows nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _event: Event<'_>) {}
}

impl Report for Quiet {}
