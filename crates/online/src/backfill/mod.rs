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
    let key_names: Vec<String> = key.iter().map(|k| k.name.clone()).collect();
    let checksum = statement_checksum(request.sql);
    let table_name = statement.table.sql();
    let existing = match request.existing {
        Existing::Continue => checkpoint::load(session, schema, &request.name)?,
        Existing::Restart => None,
    };
    let (mut state, resumed) = match existing {
        Some(saved) => {
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
                let summary = BackfillSummary {
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
                };
                sink(&OnlineEvent::BackfillFinished(summary.clone()));
                return Ok(summary);
            }
            let resumed = saved.rows_scanned;
            (saved, Some(resumed))
        }
        None => {
            let fresh = Checkpoint {
                name: request.name.clone(),
                statement_checksum: checksum,
                table: table_name.clone(),
                key: key_names.clone(),
                upper: catalog::highest_key(session, &statement.table, statement.only, &key)?,
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
            (fresh, None)
        }
    };
    sink(&OnlineEvent::BackfillStarted {
        name: request.name.clone(),
        table: table_name.clone(),
        key: key_names.clone(),
        rows_total: state.rows_total,
        resumed_from_rows: resumed,
    });

    let options = &request.options;
    let checkpoint_table = checkpoint::table(schema);
    let mut sizer = BatchSizer::new(
        options.batch,
        options.min_batch,
        options.max_batch,
        options.target,
    );
    let mut throttle = Throttle::new(options, &table_name);
    let started = Instant::now();
    let scanned_before = state.rows_scanned;
    let mut window: VecDeque<(Instant, u64)> = VecDeque::from([(started, state.rows_scanned)]);
    let mut throttled = Duration::ZERO;
    let mut throttle_reasons: Vec<String> = Vec::new();
    let mut failures_in_a_row = 0u32;
    let mut batch_retries = 0u64;
    let stopped = |state: &Checkpoint| {
        interrupted(&format!(
            "during backfill `{}` after {} rows; running it again continues from its checkpoint",
            state.name, state.rows_scanned
        ))
    };

    while let Some(upper) = state.upper.clone() {
        if interrupt.is_requested() {
            return Err(stopped(&state));
        }
        if let Some(reason) = throttle.reason(session)? {
            let paused_at = Instant::now();
            sink(&OnlineEvent::BackfillThrottled {
                name: request.name.clone(),
                reason: reason.clone(),
            });
            if !throttle_reasons.contains(&reason) {
                throttle_reasons.push(reason);
            }
            while throttle.reason(session)?.is_some() {
                if !sleep_unless_interrupted(Duration::from_millis(500), interrupt) {
                    throttled += paused_at.elapsed();
                    return Err(stopped(&state));
                }
            }
            throttled += paused_at.elapsed();
            sink(&OnlineEvent::BackfillUnthrottled {
                name: request.name.clone(),
                paused: paused_at.elapsed(),
            });
        }
        let size = sizer.size();
        let sql = Batch {
            statement: &statement,
            keys: &key,
            checkpoint_table: &checkpoint_table,
            name: &request.name,
            after: state.last.as_deref(),
            upper: &upper,
            size,
            expected_batches: state.batches,
            lock_timeout: setting_ms(options.lock_timeout),
            statement_timeout: setting_ms(options.statement_timeout),
        }
        .sql();
        let batch_started = Instant::now();
        let rows = match session.rows(&sql) {
            Ok(rows) => rows,
            Err(error) => {
                if error.kind == ErrorKind::ConnectionLost {
                    return Err(error);
                }
                // The explicit transaction is left aborted.
                session.run("ROLLBACK")?;
                if interrupt.is_requested() {
                    return Err(stopped(&state));
                }
                let worth_retrying = error.is_retryable() || error.kind == ErrorKind::Canceled;
                if !worth_retrying {
                    let mut error = error;
                    error.message = format!(
                        "backfill `{}` failed after {} rows: {}",
                        request.name, state.rows_scanned, error.message
                    );
                    return Err(error);
                }
                failures_in_a_row += 1;
                batch_retries += 1;
                if failures_in_a_row > options.batch_retries {
                    let mut error = error;
                    error.message = format!(
                        "backfill `{}` gave up after {failures_in_a_row} failed batches in a row: {}",
                        request.name, error.message
                    );
                    return Err(error);
                }
                sizer.failed();
                sink(&OnlineEvent::BackfillBatchRetry {
                    name: request.name.clone(),
                    error: error.summary(),
                    batch_size: sizer.size(),
                });
                let delay = Duration::from_millis(100 * u64::from(failures_in_a_row.min(20)));
                if !sleep_unless_interrupted(delay, interrupt) {
                    return Err(stopped(&state));
                }
                continue;
            }
        };
        let took = batch_started.elapsed();
        failures_in_a_row = 0;
        // The checkpoint row lock's SELECT returns a row too; the batch's has four columns.
        let Some(row) = rows.into_iter().find(|row| row.len() == 4) else {
            // No row: another run of the same backfill moved the checkpoint on; continue from
            // where it is.
            let saved = checkpoint::load(session, schema, &request.name)?.ok_or_else(|| {
                invalid(format!(
                    "the checkpoint of `{}` disappeared while it ran",
                    request.name
                ))
            })?;
            if saved.finished {
                state = saved;
                break;
            }
            if saved.batches != state.batches {
                state = saved;
                continue;
            }
            return Err(invalid(format!(
                "a batch of `{}` returned nothing although its checkpoint did not move",
                request.name
            )));
        };
        let scanned: u64 = parse_number(row[0].as_deref(), "batch row count")?;
        let updated: u64 = parse_number(row[1].as_deref(), "batch row count")?;
        state.last = row[2]
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        state.batches += 1;
        state.rows_scanned += scanned;
        state.rows_updated += updated;
        let final_batch = row[3].as_deref() == Some("t");
        sizer.record(scanned, took);

        let now = Instant::now();
        window.push_back((now, state.rows_scanned));
        while window.len() > 2
            && window
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(10))
        {
            window.pop_front();
        }
        let rows_per_second = match (window.front(), window.back()) {
            (Some((from, first)), Some((to, last))) if to > from => {
                (last - first) as f64 / to.duration_since(*from).as_secs_f64()
            }
            _ => 0.0,
        };
        let remaining = state.rows_total.saturating_sub(state.rows_scanned);
        sink(&OnlineEvent::BackfillProgress(BackfillProgress {
            name: request.name.clone(),
            table: table_name.clone(),
            rows_scanned: state.rows_scanned,
            rows_updated: state.rows_updated,
            rows_total: state.rows_total.max(state.rows_scanned),
            rows_per_second,
            eta: (rows_per_second > 0.0)
                .then(|| Duration::from_secs_f64(remaining as f64 / rows_per_second)),
            batches: state.batches,
            batch_size: sizer.size(),
            last_batch: took,
        }));
        if final_batch {
            break;
        }
        if !options.pause.is_zero() && !sleep_unless_interrupted(options.pause, interrupt) {
            return Err(stopped(&state));
        }
    }

    checkpoint::finish(session, schema, &request.name)?;
    let duration = started.elapsed();
    let this_run = state.rows_scanned - scanned_before;
    let summary = BackfillSummary {
        name: request.name.clone(),
        table: table_name,
        key: key_names,
        rows_scanned: state.rows_scanned,
        rows_updated: state.rows_updated,
        resumed_from_rows: scanned_before,
        batches: state.batches,
        batch_retries,
        duration,
        rows_per_second: if duration.is_zero() {
            0.0
        } else {
            this_run as f64 / duration.as_secs_f64()
        },
        throttled,
        throttle_reasons,
        final_batch_size: sizer.size(),
        already_finished: false,
    };
    sink(&OnlineEvent::BackfillFinished(summary.clone()));
    Ok(summary)
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
