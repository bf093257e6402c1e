//! `CREATE INDEX CONCURRENTLY` with progress read from `pg_stat_progress_create_index` on a
//! second connection, and, after a failure worth retrying (a deadlock, a lock timeout), the
//! INVALID index it leaves dropped concurrently and the build tried again, a bounded number of
//! times. A build that fails for good drops its INVALID index too, so nothing useless is left
//! to slow writes down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use safeshift_driver::{Driver, DriverError, ErrorKind, PostgresDriver};
use safeshift_runner::Interrupt;
use safeshift_source::ConcurrentIndex;

use crate::events::{EventSink, IndexProgress, OnlineEvent};
use crate::lock_safe::sleep_unless_interrupted;
use crate::session::{Session, quote_ident, setting_ms};

/// How an index build is run.
#[derive(Debug, Clone, Copy)]
pub struct IndexBuild {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The `lock_timeout` for the build's own waits (for writers, and for old snapshots, which
    /// block no one) when the session allows setting it; `None` leaves the session's.
    pub wait_limit: Option<Duration>,
    /// The session's `lock_timeout`, restored afterwards.
    pub restore_lock_timeout: Duration,
}

/// The index's name, quoted (schema-qualified when the statement qualified its table).
pub fn quoted_name(target: &ConcurrentIndex) -> String {
    match &target.schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&target.name)),
        None => quote_ident(&target.name),
    }
}

/// Runs `sql` (a `CREATE [UNIQUE] INDEX CONCURRENTLY` that builds `target`).
pub fn build(
    driver: &mut PostgresDriver,
    sql: &str,
    target: &ConcurrentIndex,
    build: IndexBuild,
    interrupt: &Interrupt,
    sink: &EventSink,
) -> Result<(), DriverError> {
    if let Some(limit) = build.wait_limit {
        driver.execute(&format!("SET lock_timeout = {}", setting_ms(limit)))?;
    }
    let outcome = build_with_retries(driver, sql, target, build.retries, interrupt, sink);
    if build.wait_limit.is_some()
        && outcome
            .as_ref()
            .err()
            .is_none_or(|e| e.kind != ErrorKind::ConnectionLost)
    {
        driver.execute(&format!(
            "SET lock_timeout = {}",
            setting_ms(build.restore_lock_timeout)
        ))?;
    }
    outcome
}

fn build_with_retries(
    driver: &mut PostgresDriver,
    sql: &str,
    target: &ConcurrentIndex,
    retries: u32,
    interrupt: &Interrupt,
    sink: &EventSink,
) -> Result<(), DriverError> {
    let quoted = quoted_name(target);
    let mut attempt = 1;
    let started = Instant::now();
    loop {
        let monitor = Monitor::start(driver, &target.name, sink);
        let result = driver.execute(sql);
        monitor.stop();
        let error = match result {
            Ok(()) => {
                sink(&OnlineEvent::IndexBuilt {
                    index: target.name.clone(),
                    duration: started.elapsed(),
                });
                return Ok(());
            }
            Err(error) => error,
        };
        // Interrupted, or the connection is gone: the runner's resume drops the leftover.
        if interrupt.is_requested() || error.kind == ErrorKind::ConnectionLost {
            return Err(error);
        }
        let again = error.is_retryable() && attempt <= retries;
        if again {
            sink(&OnlineEvent::IndexRetry {
                index: target.name.clone(),
                attempt: attempt + 1,
                error: error.summary(),
            });
        }
        let dropped = drop_invalid(driver, target, retries, interrupt).map_err(|drop_error| {
            let mut error = error.clone();
            error.message = format!(
                "{} (and the INVALID index {quoted} it left could not be dropped: {})",
                error.message,
                drop_error.summary()
            );
            error.with_hint(format!(
                "drop it with `DROP INDEX CONCURRENTLY {quoted};` and run `safeshift up` again"
            ))
        })?;
        if again {
            let delay = Duration::from_millis(500 * u64::from(1u32 << (attempt - 1).min(6)));
            if !sleep_unless_interrupted(delay, interrupt) {
                return Err(DriverError::new(
                    ErrorKind::Canceled,
                    "interrupted before building the index again",
                ));
            }
            attempt += 1;
            continue;
        }
        let mut error = error;
        if dropped {
            sink(&OnlineEvent::IndexCleanedUp {
                index: target.name.clone(),
            });
            error.message = format!(
                "{} (the INVALID index {quoted} it left was dropped)",
                error.message
            );
        }
        return Err(error);
    }
}

/// Drops the INVALID index a failed build left, if there is one. `DROP INDEX CONCURRENTLY`
/// waits for the same transactions the build waited for, so a lock timeout is retried too.
/// Returns whether an index was dropped.
fn drop_invalid(
    driver: &mut PostgresDriver,
    target: &ConcurrentIndex,
    retries: u32,
    interrupt: &Interrupt,
) -> Result<bool, DriverError> {
    if !driver.index_is_invalid(target.schema.as_deref(), &target.name)? {
        return Ok(false);
    }
    let sql = format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quoted_name(target));
    let mut attempt = 1;
    loop {
        match driver.execute(&sql) {
            Ok(()) => return Ok(true),
            Err(error) if error.is_retryable() && attempt <= retries + 2 => {
                let delay = Duration::from_millis(250 * u64::from(1u32 << (attempt - 1).min(6)));
                if !sleep_unless_interrupted(delay, interrupt) {
                    return Err(error);
                }
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Polls the build's progress on a second connection while it runs.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    fn start(driver: &PostgresDriver, index: &str, sink: &EventSink) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = match (driver.session_pid(), driver.connect_again()) {
            (Some(pid), Ok(mut client)) => {
                let stop = Arc::clone(&stop);
                let sink = Arc::clone(sink);
                let index = index.to_owned();
                Some(std::thread::spawn(move || {
                    let started = Instant::now();
                    while !stop.load(Ordering::SeqCst) {
                        if let Ok(Some(progress)) = read_progress(&mut client, pid, &index, started)
                        {
                            sink(&OnlineEvent::IndexProgress(progress));
                        }
                        for _ in 0..10 {
                            if stop.load(Ordering::SeqCst) {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }))
            }
            // No fixed backend (a pooler) or no second connection: no progress, same build.
            _ => None,
        };
        Monitor { stop, thread }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_progress(
    client: &mut postgres::Client,
    pid: i64,
    index: &str,
    started: Instant,
) -> Result<Option<IndexProgress>, DriverError> {
    let rows = client.rows(&format!(
        "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total \
         FROM pg_stat_progress_create_index WHERE pid = {pid}"
    ))?;
    Ok(rows.into_iter().next().map(|row| {
        let number = |i: usize| -> u64 {
            row.get(i)
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let (done, total) = if number(2) > 0 {
            (number(1), number(2))
        } else {
            (number(3), number(4))
        };
        IndexProgress {
            index: index.to_owned(),
            phase: row[0].clone().unwrap_or_default(),
            done,
            total,
            elapsed: started.elapsed(),
        }
    }))
}
