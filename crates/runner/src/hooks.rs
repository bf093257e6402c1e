//! Extension points around each statement, for operations that live outside the runner: checks
//! before a statement runs (lock-safe DDL) and statements run another way (a `-- safeshift:`
//! directive such as a batched backfill).

use std::path::Path;

use safeshift_driver::{Direction, Driver, DriverError, Timeouts};
use safeshift_source::{Section, Statement};

use crate::interrupt::Interrupt;

/// Where a statement stands in the run, for hooks.
#[derive(Debug)]
pub struct StatementContext<'a> {
    pub run_id: &'a str,
    pub version: &'a str,
    pub file: &'a Path,
    pub direction: Direction,
    pub transactional: bool,
    /// 1-based position of the statement in its section.
    pub number: usize,
    pub total: usize,
    pub attempt: u32,
    pub timeouts: &'a Timeouts,
    pub interrupt: &'a Interrupt,
    /// An earlier attempt, in this run or a previous one, stopped at this very statement (so
    /// work it left behind, such as a backfill's checkpoint, is this statement's own).
    pub resuming: bool,
    /// Set when the statement runs in a transaction of its own (a statement that can run in a
    /// transaction, in a section without one): a hook that runs it must commit this progress
    /// record in that same transaction ([`Driver::execute_recorded`]), so the statement counts
    /// as applied if and only if it was. The runner records it again afterwards (a no-op).
    pub record: Option<Progress<'a>>,
}

/// The progress record of a non-transactional attempt after a statement.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Statements applied, this one included.
    pub applied: i64,
    /// The checksum of the applied statements.
    pub checksum: &'a str,
}

/// Hooks the runner calls around statements. Every method has a default that does nothing.
pub trait StatementHooks {
    /// The `-- safeshift:<name>` directives these hooks act on; any other directive, except the
    /// linter's `allow` and `allow-file`, is an error before anything runs.
    fn directives(&self) -> &[&'static str] {
        &[]
    }

    /// Checks a statement that carries one of [`Self::directives`] when the run is planned
    /// (e.g. that it sits in a non-transactional section); the error names what to fix.
    fn validate(&self, _statement: &Statement, _section: &Section) -> Result<(), String> {
        Ok(())
    }

    /// Called before each statement runs.
    fn before_statement(
        &mut self,
        _db: &mut dyn Driver,
        _statement: &Statement,
        _context: &StatementContext<'_>,
    ) -> Result<(), DriverError> {
        Ok(())
    }

    /// Runs a statement instead of the runner, or returns `None` to let the runner execute it.
    fn run_statement(
        &mut self,
        _db: &mut dyn Driver,
        _statement: &Statement,
        _context: &StatementContext<'_>,
    ) -> Option<Result<(), DriverError>> {
        None
    }
}

/// No hooks.
pub struct NoHooks;

impl StatementHooks for NoHooks {}
