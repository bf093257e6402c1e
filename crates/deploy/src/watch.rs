//! The watchdog beside the migrations: a connection of its own samples the migration's server
//! process, reports what it sees, and stops the run when a threshold chosen to abort is crossed.

use std::time::Duration;

use safeshift_driver::{Driver, Engine, PostgresDriver};
use safeshift_runner::InterruptReason;
use safeshift_watch::{WatchConfig, Watchdog};

use crate::database::Database;
use crate::frontend::{NoWatchdog, Report, Step, Stop};
use crate::policy::WatchSettings;

/// Starts the watchdog when the migration connection has a fixed server process (a direct
/// PostgreSQL connection); otherwise reports why there is none. `estimate` is the plan's: when
/// no duration limit is set, twice the estimate (and never under 30 s) is the limit.
pub fn start(
    db: &dyn Driver,
    database: &Database,
    settings: &WatchSettings,
    estimate: Duration,
    stop: Stop,
    report: &mut dyn Report,
) -> Option<Watchdog> {
    if db.engine() != Engine::Postgres {
        return None;
    }
    let Some(pid) = PostgresDriver::of(db).and_then(PostgresDriver::session_pid) else {
        report.step(Step::NoWatchdog(NoWatchdog::Pooled));
        return None;
    };
    let connection = match database.connect_postgres() {
        Ok(connection) => connection,
        Err(error) => {
            report.step(Step::NoWatchdog(NoWatchdog::Failed(&error)));
            return None;
        }
    };
    let mut limits = settings.limits;
    if !settings.duration_given {
        // Estimates are rough.
        limits.duration = Some((estimate * 2).max(Duration::from_secs(30)));
    }
    let config = WatchConfig {
        pid,
        interval: settings.interval,
        limits,
        abort_on: settings.abort_on.clone(),
        estimate: Some(estimate),
        progress_every: Duration::from_secs(5),
    };
    Some(Watchdog::start(
        connection,
        config,
        report.watch_events(),
        Box::new(move |reason: String| stop.stop(InterruptReason::Watchdog(reason))),
    ))
}
