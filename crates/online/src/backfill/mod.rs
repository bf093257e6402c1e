//! Backfills: an `UPDATE` run in keyset-paginated batches, each its own short transaction in one
//! session, over the rows that existed when it started; a checkpoint that commits with every
//! batch, so an interrupted backfill (Ctrl-C, SIGKILL, a lost connection) continues where it
//! stopped and never updates a row twice; batch sizes adapted to a target duration; pauses on
//! replication lag, lock waiters and a user probe; progress as events.

pub mod checkpoint;
pub mod directive;
mod sizing;
mod statement;
mod throttle;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use safeshift_driver::{DriverError, ErrorKind};
use safeshift_runner::Interrupt;
use sha2::{Digest, Sha256};

use crate::catalog;
use crate::events::{BackfillProgress, BackfillSummary, EventSink, OnlineEvent};
use crate::lock_safe::{interrupted, sleep_unless_interrupted};
use crate::session::{Session, parse_number, setting_ms};
use crate::settings::BackfillOptions;

pub use checkpoint::Checkpoint;
pub use sizing::BatchSizer;
pub use statement::{BackfillStatement, KeyColumn};

use statement::Batch;
use throttle::Throttle;

/// What to do with a checkpoint an earlier run left under the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Continue it (the statement must be the same); a finished one means nothing is left.
    Continue,
    /// Discard it and start over.
    Restart,
}

/// One backfill to run.
#[derive(Debug, Clone)]
pub struct BackfillRequest<'a> {
    /// Names the checkpoint: `0004/up/3` for a migration's statement, a chosen name otherwise.
    pub name: String,
    /// The `UPDATE` statement.
    pub sql: &'a str,
    pub options: BackfillOptions,
    /// The schema holding the checkpoint table.
    pub checkpoint_schema: &'a str,
    pub existing: Existing,
}

/// The checksum that ties a checkpoint to its statement.
pub fn statement_checksum(sql: &str) -> String {
    let normalized: Vec<&str> = sql.split_whitespace().collect();
    Sha256::digest(normalized.join(" ").as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A default name for a standalone backfill: the table and the start of the statement's
/// checksum, so running the same command again continues it.
pub fn default_name(sql: &str) -> Result<String, DriverError> {
    let statement = BackfillStatement::parse(sql).map_err(invalid)?;
    Ok(format!(
        "{}-{}",
        statement.table.name,
        &statement_checksum(sql)[..8]
    ))
}

fn invalid(message: String) -> DriverError {
    DriverError::new(ErrorKind::Statement, format!("backfill: {message}"))
}

/// Runs a backfill to the end, or until interrupted or failed (the checkpoint keeps what is
/// done either way).
pub fn run(
    session: &mut dyn Session,
    request: &BackfillRequest<'_>,
    interrupt: &Interrupt,
    sink: &EventSink,
) -> Result<BackfillSummary, DriverError> {
    let statement = BackfillStatement::parse(request.sql).map_err(invalid)?;
    let schema = request.checkpoint_schema;
    checkpoint::ensure_table(session, schema)?;
    let key = catalog::paging_key(session, &statement.table)?;
    if let Some(column) = statement
        .assigned
        .iter()
        .find(|column| key.iter().any(|k| &&k.name == column))
    {
        return Err(invalid(format!(
            "the statement assigns `{column}`, part of the key it pages on; backfill key columns another way"
        )));
    }
    let (state, resumed) = match start(session, request, &statement, &key)? {
        Start::AlreadyFinished(summary) => {
            sink(&OnlineEvent::BackfillFinished(summary.clone()));
            return Ok(summary);
        }
        Start::From(state, resumed) => (state, resumed),
    };
    let mut batches = Batches::new(request, &statement, &key, state, interrupt, sink);
    sink(&OnlineEvent::BackfillStarted {
        name: request.name.clone(),
        table: batches.table.clone(),
        key: batches.key_names.clone(),
        rows_total: batches.state.rows_total,
        resumed_from_rows: resumed,
    });
    batches.run(session)?;
    batches.finish(session)
}

/// Where a backfill starts.
enum Start {
    /// A checkpoint of the same statement says it is done.
    AlreadyFinished(BackfillSummary),
    /// From this checkpoint (fresh, or an earlier run's, with the rows that run did).
    From(Checkpoint, Option<u64>),
}

/// Continues the checkpoint an earlier run left under the request's name, or starts a fresh one.
fn start(
    session: &mut dyn Session,
    request: &BackfillRequest<'_>,
    statement: &BackfillStatement,
    key: &[KeyColumn],
) -> Result<Start, DriverError> {
    let schema = request.checkpoint_schema;
    let key_names: Vec<String> = key.iter().map(|k| k.name.clone()).collect();
    let checksum = statement_checksum(request.sql);
    let table_name = statement.table.sql();
    let existing = match request.existing {
        Existing::Continue => checkpoint::load(session, schema, &request.name)?,
        Existing::Restart => None,
    };
    if let Some(saved) = existing {
        if saved.statement_checksum != checksum {
            return Err(invalid(format!(
                "the statement of backfill `{}` changed since it started (it has done {} rows)",
                request.name, saved.rows_scanned
            ))
            .with_hint(
                "restore the statement, or start over with `safeshift backfill --restart` (rows already done are updated again)",
            ));
        }
        if saved.finished {
            return Ok(Start::AlreadyFinished(BackfillSummary {
                name: request.name.clone(),
                table: table_name,
                key: key_names,
                rows_scanned: saved.rows_scanned,
                rows_updated: saved.rows_updated,
                resumed_from_rows: saved.rows_scanned,
                batches: saved.batches,
                batch_retries: 0,
                duration: Duration::ZERO,
                rows_per_second: 0.0,
                throttled: Duration::ZERO,
                throttle_reasons: Vec::new(),
                final_batch_size: 0,
                already_finished: true,
            }));
        }
        let resumed = saved.rows_scanned;
        return Ok(Start::From(saved, Some(resumed)));
    }
    let fresh = Checkpoint {
        name: request.name.clone(),
        statement_checksum: checksum,
        table: table_name,
        key: key_names,
        upper: catalog::highest_key(session, &statement.table, statement.only, key)?,
        last: None,
        batches: 0,
        rows_scanned: 0,
        rows_updated: 0,
        rows_total: catalog::estimated_rows(session, &statement.table)?,
        finished: false,
        started_at: String::new(),
        updated_at: String::new(),
    };
    checkpoint::start(session, schema, &fresh)?;
    Ok(Start::From(fresh, None))
}

/// A backfill's batches in progress.
struct Batches<'b> {
    request: &'b BackfillRequest<'b>,
    statement: &'b BackfillStatement,
    key: &'b [KeyColumn],
    interrupt: &'b Interrupt,
    sink: &'b EventSink,
    checkpoint_table: String,
    /// The table as the statement names it, and its paging key, for events and the summary.
    table: String,
    key_names: Vec<String>,
    state: Checkpoint,
    sizer: BatchSizer,
    throttle: Throttle,
    started: Instant,
    scanned_before: u64,
    /// Rows scanned at recent moments, for the rate over the last ten seconds.
    window: VecDeque<(Instant, u64)>,
    throttled: Duration,
    throttle_reasons: Vec<String>,
    failures_in_a_row: u32,
    batch_retries: u64,
}

/// What one batch did.
enum Batched {
    /// It updated rows; `true` when it was the last.
    Done(bool),
    /// It failed in a way worth another try.
    Retry,
    /// Another run of the same backfill had moved the checkpoint on: continue from there.
    Moved,
    /// Another run of the same backfill finished it.
    FinishedElsewhere,
}

impl<'b> Batches<'b> {
    fn new(
        request: &'b BackfillRequest<'b>,
        statement: &'b BackfillStatement,
        key: &'b [KeyColumn],
        state: Checkpoint,
        interrupt: &'b Interrupt,
        sink: &'b EventSink,
    ) -> Self {
        let options = &request.options;
        let started = Instant::now();
        Batches {
            checkpoint_table: checkpoint::table(request.checkpoint_schema),
            sizer: BatchSizer::new(
                options.batch,
                options.min_batch,
                options.max_batch,
                options.target,
            ),
            throttle: Throttle::new(options, &statement.table.sql()),
            table: statement.table.sql(),
            key_names: key.iter().map(|k| k.name.clone()).collect(),
            started,
            scanned_before: state.rows_scanned,
            window: VecDeque::from([(started, state.rows_scanned)]),
            throttled: Duration::ZERO,
            throttle_reasons: Vec::new(),
            failures_in_a_row: 0,
            batch_retries: 0,
            request,
            statement,
            key,
            interrupt,
            sink,
            state,
        }
    }

    /// The error of a run that stops before the end: its checkpoint keeps what is done.
    fn stopped(&self) -> DriverError {
        interrupted(&format!(
            "during backfill `{}` after {} rows; running it again continues from its checkpoint",
            self.state.name, self.state.rows_scanned
        ))
    }

    /// Runs batches until the last.
    fn run(&mut self, session: &mut dyn Session) -> Result<(), DriverError> {
        while let Some(upper) = self.state.upper.clone() {
            if self.interrupt.is_requested() {
                return Err(self.stopped());
            }
            self.wait_while_throttled(session)?;
            match self.batch(session, &upper)? {
                Batched::Done(true) | Batched::FinishedElsewhere => break,
                Batched::Done(false) => {
                    let pause = self.request.options.pause;
                    if !pause.is_zero() && !sleep_unless_interrupted(pause, self.interrupt) {
                        return Err(self.stopped());
                    }
                }
                Batched::Retry | Batched::Moved => {}
            }
        }
        Ok(())
    }

    /// Pauses while the throttle says so (replication lag, lock waiters, the user's probe).
    fn wait_while_throttled(&mut self, session: &mut dyn Session) -> Result<(), DriverError> {
        let Some(reason) = self.throttle.reason(session)? else {
            return Ok(());
        };
        let paused_at = Instant::now();
        (self.sink)(&OnlineEvent::BackfillThrottled {
            name: self.request.name.clone(),
            reason: reason.clone(),
        });
        if !self.throttle_reasons.contains(&reason) {
            self.throttle_reasons.push(reason);
        }
        while self.throttle.reason(session)?.is_some() {
            if !sleep_unless_interrupted(Duration::from_millis(500), self.interrupt) {
                self.throttled += paused_at.elapsed();
                return Err(self.stopped());
            }
        }
        self.throttled += paused_at.elapsed();
        (self.sink)(&OnlineEvent::BackfillUnthrottled {
            name: self.request.name.clone(),
            paused: paused_at.elapsed(),
        });
        Ok(())
    }

    /// Runs one batch, with its checkpoint, in a transaction of its own.
    fn batch(
        &mut self,
        session: &mut dyn Session,
        upper: &[String],
    ) -> Result<Batched, DriverError> {
        let options = &self.request.options;
        let sql = Batch {
            statement: self.statement,
            keys: self.key,
            checkpoint_table: &self.checkpoint_table,
            name: &self.request.name,
            after: self.state.last.as_deref(),
            upper,
            size: self.sizer.size(),
            expected_batches: self.state.batches,
            lock_timeout: setting_ms(options.lock_timeout),
            statement_timeout: setting_ms(options.statement_timeout),
        }
        .sql();
        let batch_started = Instant::now();
        let rows = match session.rows(&sql) {
            Ok(rows) => rows,
            Err(error) => return self.failed_batch(session, error).map(|()| Batched::Retry),
        };
        let took = batch_started.elapsed();
        self.failures_in_a_row = 0;
        // The checkpoint row lock's SELECT returns a row too; the batch's has four columns.
        let Some(row) = rows.into_iter().find(|row| row.len() == 4) else {
            return self.moved_elsewhere(session);
        };
        let scanned: u64 = parse_number(row[0].as_deref(), "batch row count")?;
        let updated: u64 = parse_number(row[1].as_deref(), "batch row count")?;
        self.state.last = row[2]
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        self.state.batches += 1;
        self.state.rows_scanned += scanned;
        self.state.rows_updated += updated;
        let final_batch = row[3].as_deref() == Some("t");
        self.sizer.record(scanned, took);
        self.progress(took);
        Ok(Batched::Done(final_batch))
    }

    /// After a failed batch: an error that ends the backfill, or `Ok` to try again after a
    /// pause (with a smaller batch).
    fn failed_batch(
        &mut self,
        session: &mut dyn Session,
        error: DriverError,
    ) -> Result<(), DriverError> {
        if error.kind == ErrorKind::ConnectionLost {
            return Err(error);
        }
        // The explicit transaction is left aborted.
        session.run("ROLLBACK")?;
        if self.interrupt.is_requested() {
            return Err(self.stopped());
        }
        let worth_retrying = error.is_retryable() || error.kind == ErrorKind::Canceled;
        if !worth_retrying {
            let mut error = error;
            error.message = format!(
                "backfill `{}` failed after {} rows: {}",
                self.request.name, self.state.rows_scanned, error.message
            );
            return Err(error);
        }
        self.failures_in_a_row += 1;
        self.batch_retries += 1;
        if self.failures_in_a_row > self.request.options.batch_retries {
            let mut error = error;
            error.message = format!(
                "backfill `{}` gave up after {} failed batches in a row: {}",
                self.request.name, self.failures_in_a_row, error.message
            );
            return Err(error);
        }
        self.sizer.failed();
        (self.sink)(&OnlineEvent::BackfillBatchRetry {
            name: self.request.name.clone(),
            error: error.summary(),
            batch_size: self.sizer.size(),
        });
        let delay = Duration::from_millis(100 * u64::from(self.failures_in_a_row.min(20)));
        if !sleep_unless_interrupted(delay, self.interrupt) {
            return Err(self.stopped());
        }
        Ok(())
    }

    /// A batch that returned nothing: another run of the same backfill moved the checkpoint on;
    /// continue from where it is.
    fn moved_elsewhere(&mut self, session: &mut dyn Session) -> Result<Batched, DriverError> {
        let saved = checkpoint::load(session, self.request.checkpoint_schema, &self.request.name)?
            .ok_or_else(|| {
                invalid(format!(
                    "the checkpoint of `{}` disappeared while it ran",
                    self.request.name
                ))
            })?;
        if saved.finished {
            self.state = saved;
            return Ok(Batched::FinishedElsewhere);
        }
        if saved.batches != self.state.batches {
            self.state = saved;
            return Ok(Batched::Moved);
        }
        Err(invalid(format!(
            "a batch of `{}` returned nothing although its checkpoint did not move",
            self.request.name
        )))
    }

    /// Reports progress after a batch that took `took`, with the rate over the last ten seconds.
    fn progress(&mut self, took: Duration) {
        let now = Instant::now();
        self.window.push_back((now, self.state.rows_scanned));
        while self.window.len() > 2
            && self
                .window
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(10))
        {
            self.window.pop_front();
        }
        let rows_per_second = match (self.window.front(), self.window.back()) {
            (Some((from, first)), Some((to, last))) if to > from => {
                (last - first) as f64 / to.duration_since(*from).as_secs_f64()
            }
            _ => 0.0,
        };
        let state = &self.state;
        let remaining = state.rows_total.saturating_sub(state.rows_scanned);
        (self.sink)(&OnlineEvent::BackfillProgress(BackfillProgress {
            name: self.request.name.clone(),
            table: self.table.clone(),
            rows_scanned: state.rows_scanned,
            rows_updated: state.rows_updated,
            rows_total: state.rows_total.max(state.rows_scanned),
            rows_per_second,
            eta: (rows_per_second > 0.0)
                .then(|| Duration::from_secs_f64(remaining as f64 / rows_per_second)),
            batches: state.batches,
            batch_size: self.sizer.size(),
            last_batch: took,
        }));
    }

    /// Marks the checkpoint finished and sums the run up.
    fn finish(self, session: &mut dyn Session) -> Result<BackfillSummary, DriverError> {
        checkpoint::finish(session, self.request.checkpoint_schema, &self.request.name)?;
        let duration = self.started.elapsed();
        let this_run = self.state.rows_scanned - self.scanned_before;
        let summary = BackfillSummary {
            name: self.request.name.clone(),
            table: self.table,
            key: self.key_names,
            rows_scanned: self.state.rows_scanned,
            rows_updated: self.state.rows_updated,
            resumed_from_rows: self.scanned_before,
            batches: self.state.batches,
            batch_retries: self.batch_retries,
            duration,
            rows_per_second: if duration.is_zero() {
                0.0
            } else {
                this_run as f64 / duration.as_secs_f64()
            },
            throttled: self.throttled,
            throttle_reasons: self.throttle_reasons,
            final_batch_size: self.sizer.size(),
            already_finished: false,
        };
        (self.sink)(&OnlineEvent::BackfillFinished(summary.clone()));
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_ignores_layout_but_not_content() {
        assert_eq!(
            statement_checksum("UPDATE t\n  SET a = 1"),
            statement_checksum("UPDATE t SET a = 1")
        );
        assert_ne!(
            statement_checksum("UPDATE t SET a = 1"),
            statement_checksum("UPDATE t SET a = 2")
        );
    }

    #[test]
    fn default_names_follow_the_table_and_the_statement() {
        let name = default_name("UPDATE accounts SET c = 1").unwrap();
        assert!(name.starts_with("accounts-"), "{name}");
        assert_eq!(name.len(), "accounts-".len() + 8);
        assert!(default_name("DELETE FROM t").is_err());
    }
}
