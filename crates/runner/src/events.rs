//! What happens during a run, as it happens. The runner reports events to an observer; the CLI
//! prints them. Nothing in the runner prints.

use std::time::Duration;

use safeshift_driver::{Direction, DriverError, HistoryRecord, LockHolder};

/// One step of a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another runner holds the lock; sent on every poll.
    WaitingForLock {
        holder: Option<&'a LockHolder>,
        waited: Duration,
    },
    LockAcquired {
        waited: Duration,
    },
    /// A `running` row left by a runner that died was marked failed.
    SettledInterrupted {
        record: &'a HistoryRecord,
    },
    /// Something the user should know that does not stop the run.
    Warning(String),
    MigrationStarted {
        version: &'a str,
        name: &'a str,
        direction: Direction,
        transactional: bool,
        statements: usize,
        /// Statements skipped because an earlier attempt applied them.
        resume_from: usize,
        attempt: u32,
    },
    /// A statement of a non-transactional migration finished (and was recorded).
    StatementApplied {
        version: &'a str,
        number: usize,
        total: usize,
        elapsed: Duration,
    },
    /// An INVALID index left by an earlier failed attempt of the same statement was dropped.
    InvalidIndexDropped {
        version: &'a str,
        index: &'a str,
    },
    /// A statement left running on the server by an interrupted run: this run waits for it to
    /// end (up to `patience`) before resuming there.
    WaitingForStatement {
        version: &'a str,
        number: usize,
        pid: i64,
        patience: Duration,
    },
    /// The statement an earlier attempt stopped at turned out to be in effect (it finished on
    /// the server after its runner stopped): recorded as applied without running it again.
    StatementInEffect {
        version: &'a str,
        number: usize,
        evidence: &'a str,
    },
    /// The statement an earlier attempt stopped at was cut off half-way; `finish` completes it.
    StatementHalfDone {
        version: &'a str,
        number: usize,
        evidence: &'a str,
        finish: &'a str,
    },
    /// Something an earlier attempt of the statement left behind was dropped before running it
    /// again.
    LeftoverDropped {
        version: &'a str,
        number: usize,
        leftover: &'a str,
    },
    /// The statement an earlier attempt stopped at runs again although it may have finished,
    /// because that is harmless (`note` says why).
    StatementRepeated {
        version: &'a str,
        number: usize,
        note: &'a str,
    },
    Retrying {
        version: &'a str,
        attempt: u32,
        error: &'a DriverError,
        delay: Duration,
    },
    MigrationFinished {
        version: &'a str,
        name: &'a str,
        direction: Direction,
        duration: Duration,
        statements: usize,
    },
}

/// Receives events.
pub trait Observer {
    fn event(&mut self, event: Event<'_>);
}

impl<F: FnMut(Event<'_>)> Observer for F {
    fn event(&mut self, event: Event<'_>) {
        self(event)
    }
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _event: Event<'_>) {}
}
