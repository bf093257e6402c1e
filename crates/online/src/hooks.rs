//! The online operations as runner hooks, so `safeshift up` and `down` run every statement the
//! safe way: DDL lock-safe, `-- safeshift:backfill` statements as resumable batched backfills,
//! and `CREATE INDEX CONCURRENTLY` with progress, cleanup and retries.

use std::collections::HashMap;
use std::time::Duration;

use safeshift_driver::{Direction, Driver, DriverError, ErrorKind, PostgresDriver};
use safeshift_lint::{PgVersion, TableLock};
use safeshift_runner::{StatementContext, StatementHooks};
use safeshift_source::{Section, Statement, Transactionality};

use crate::backfill::{self, BackfillRequest, BackfillStatement, Existing, directive};
use crate::events::EventSink;
use crate::index::{self, IndexBuild};
use crate::lock_safe::{self, Frame, Restore};
use crate::settings::OnlineSettings;

/// The directive that turns an `UPDATE` into a batched backfill.
pub const BACKFILL_DIRECTIVE: &str = "backfill";

/// Runner hooks for the online operations. On SQLite they step aside: statements run as written.
pub struct OnlineHooks {
    settings: OnlineSettings,
    sink: EventSink,
    /// The transactional attempt in progress, and whether a statement of it took locks on
    /// tables (then a wait would hold them).
    attempt: Option<((String, Direction, u32), bool)>,
    /// Per version: tables whose locks a transactional attempt could not take without waiting
    /// while it held others; the next attempt waits for them before its first statement.
    blocked: HashMap<String, Vec<TableLock>>,
}

impl OnlineHooks {
    pub fn new(settings: OnlineSettings, sink: EventSink) -> OnlineHooks {
        OnlineHooks {
            settings,
            sink,
            attempt: None,
            blocked: HashMap::new(),
        }
    }

    /// Whether the transactional attempt `context` belongs to has taken locks already.
    fn attempt_holds_locks(&mut self, context: &StatementContext<'_>) -> bool {
        let key = (
            context.version.to_owned(),
            context.direction,
            context.attempt,
        );
        match &self.attempt {
            Some((current, holds)) if *current == key => *holds,
            _ => {
                self.attempt = Some((key, false));
                false
            }
        }
    }

    /// How long a statement may wait for long transactions on its tables.
    fn wait_limit(&self, context: &StatementContext<'_>) -> Duration {
        self.settings
            .lock_safety
            .wait_for_transactions
            .unwrap_or(context.timeouts.lock_timeout)
    }

    fn mark_locks_taken(&mut self) {
        if let Some((_, holds)) = &mut self.attempt {
            *holds = true;
        }
    }

    fn run_backfill(
        &mut self,
        db: &mut dyn Driver,
        statement: &Statement,
        arguments: &str,
        context: &StatementContext<'_>,
    ) -> Result<(), DriverError> {
        let mut options = self.settings.backfill.clone();
        directive::apply(arguments, &mut options)
            .map_err(|message| DriverError::new(ErrorKind::Statement, message))?;
        let Some(driver) = PostgresDriver::of_mut(db) else {
            return db.execute(&statement.sql);
        };
        let request = BackfillRequest {
            name: format!(
                "{}/{}/{}",
                context.version, context.direction, context.number
            ),
            sql: &statement.sql,
            options,
            checkpoint_schema: &self.settings.checkpoint_schema,
            existing: if context.resuming {
                Existing::Continue
            } else {
                Existing::Restart
            },
        };
        backfill::run(driver, &request, context.interrupt, &self.sink).map(|_| ())
    }
}

impl StatementHooks for OnlineHooks {
    fn directives(&self) -> &[&'static str] {
        &[BACKFILL_DIRECTIVE]
    }

    fn validate(&self, statement: &Statement, section: &Section) -> Result<(), String> {
        let Some(directive) = statement.directive(BACKFILL_DIRECTIVE) else {
            return Ok(());
        };
        if section.options.transaction {
            return Err(
                "a backfill commits batch by batch, so it cannot run inside the migration's transaction: \
                 mark the section `transaction:false` (e.g. `-- migrate:up transaction:false`)"
                    .into(),
            );
        }
        BackfillStatement::parse(&statement.sql)?;
        directive::apply(&directive.arguments, &mut self.settings.backfill.clone())
    }

    fn before_statement(
        &mut self,
        db: &mut dyn Driver,
        _statement: &Statement,
        context: &StatementContext<'_>,
    ) -> Result<(), DriverError> {
        if !context.transactional || context.number != 1 {
            return Ok(());
        }
        let Some(driver) = PostgresDriver::of_mut(db) else {
            return Ok(());
        };
        // Nothing is locked yet: the moment to wait for what blocked the previous attempt.
        if let Some(locks) = self.blocked.remove(context.version) {
            lock_safe::wait_for_blockers(
                driver,
                "the migration's first statement",
                &locks,
                &self.settings.lock_safety,
                self.wait_limit(context),
                true,
                context.interrupt,
                &self.sink,
            )?;
        }
        Ok(())
    }

    fn run_statement(
        &mut self,
        db: &mut dyn Driver,
        statement: &Statement,
        context: &StatementContext<'_>,
    ) -> Option<Result<(), DriverError>> {
        if let Some(directive) = statement.directive(BACKFILL_DIRECTIVE) {
            let arguments = directive.arguments.clone();
            return Some(self.run_backfill(db, statement, &arguments, context));
        }
        let pg_version =
            PgVersion::from_server_version_num(PostgresDriver::of_mut(db)?.server().version_number);
        let session_timeouts = db.timeouts_outside_transactions();
        let driver = PostgresDriver::of_mut(db)?;
        if let Some(target) = statement.concurrent_index() {
            let build = IndexBuild {
                retries: self.settings.index_retries,
                wait_limit: self
                    .settings
                    .lock_safety
                    .wait_for_transactions
                    .filter(|_| session_timeouts),
                restore_lock_timeout: context.timeouts.lock_timeout,
            };
            return Some(index::build(
                driver,
                &statement.sql,
                &target,
                build,
                context.interrupt,
                &self.sink,
            ));
        }
        let locks = safeshift_lint::statement_locks(&statement.sql, pg_version).unwrap_or_default();
        let strong: Vec<TableLock> = locks
            .iter()
            .filter(|lock| lock.mode.blocks_traffic())
            .cloned()
            .collect();
        let holds_locks = context.transactional && self.attempt_holds_locks(context);
        if strong.is_empty() {
            if context.transactional && !locks.is_empty() {
                self.mark_locks_taken();
            }
            return None;
        }
        let frame = if context.transactional {
            if holds_locks {
                Frame::SingleTry
            } else {
                Frame::Savepoint
            }
        } else if statement.transactionality == Transactionality::Any && context.record.is_some() {
            Frame::OwnTransaction
        } else if statement.transactionality == Transactionality::Any {
            // Inside a BEGIN … COMMIT the section opened itself: a savepoint per attempt, and
            // the section's COMMIT ends it.
            Frame::Savepoint
        } else if session_timeouts {
            Frame::Session
        } else {
            // Through a transaction pooler a statement that cannot run in a transaction cannot
            // have a lock_timeout of its own: the runner runs it as it is.
            return None;
        };
        let restore = Restore {
            lock_timeout: context.timeouts.lock_timeout,
            statement_timeout: context.timeouts.statement_timeout,
        };
        let result = lock_safe::run(
            driver,
            &statement.sql,
            &strong,
            frame,
            context.record,
            restore,
            &self.settings.lock_safety,
            self.wait_limit(context),
            context.interrupt,
            &self.sink,
        );
        match &result {
            Ok(_) if context.transactional => self.mark_locks_taken(),
            Err(error) if context.transactional && error.kind == ErrorKind::LockTimeout => {
                self.blocked
                    .entry(context.version.to_owned())
                    .or_default()
                    .extend(strong);
            }
            _ => {}
        }
        Some(result.map(|_| ()))
    }
}
