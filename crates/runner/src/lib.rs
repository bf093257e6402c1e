//! The safeshift runner: applies and rolls back versioned migrations over a [`Driver`], keeping
//! an append-only history, holding a run lock, retrying lock timeouts, and resuming
//! non-transactional migrations from the statement that failed.
//!
//! The runner returns values and reports progress through an [`Observer`]; it prints nothing.

// `RunError` carries the failed statement and the database's error so the CLI can show both; it
// is returned at most once per run, never in a loop, so its size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod apply;
mod error;
mod events;
mod hooks;
mod interrupt;
mod migrator;
mod plan;
mod report;
mod resume;
mod settings;
mod state;

pub use error::{ChecksumMismatch, FailedStatement, RunError};
pub use events::{Event, Observer, Quiet};
pub use hooks::{NoHooks, Progress, StatementContext, StatementHooks};
pub use interrupt::{Interrupt, InterruptReason};
pub use migrator::{AppliedElsewhere, Migrator, Resolution};
pub use plan::DownTarget;
pub use report::{
    CompletedMigration, DryRun, DryRunStatement, DryRunStep, EntryState, LastError,
    PartialProgress, RepairReport, ResolveReport, RunFailure, RunReport, StatusEntry, StatusReport,
};
pub use safeshift_driver::Driver;
pub use settings::{Identity, LockSettings, RetryPolicy, Settings};
pub use state::{HistoryState, Partial, VersionState};
