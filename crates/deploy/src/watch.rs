//! The watchdog beside the migrations: a connection of its own samples the migration's server
//! process, reports what it sees, and stops the run when a threshold chosen to abort is crossed.

use std::time::Duration;

use safeshift_driver::{Driver, DriverError, Engine, MysqlDriver, PostgresDriver};
use safeshift_runner::InterruptReason;
use safeshift_watch::mysql::MysqlSampler;
use safeshift_watch::{Sampler, WatchConfig, Watchdog};

use crate::database::Database;
use crate::frontend::{NoWatchdog, Report, Step, Stop};
use crate::policy::WatchSettings;

/// Starts the watchdog when the migration connection has a fixed server process (a direct
/// PostgreSQL connection, or any MySQL connection); otherwise reports why there is none. `estimate` is the plan's: when
/// no duration limit is set, twice the estimate (and never under 30 s) is the limit.
pub fn start(
    db: &dyn Driver,
    database: &Database,
    settings: &WatchSettings,
    estimate: Duration,
    stop: Stop,
    report: &mut dyn Report,
) -> Option<Watchdog> {
    let (pid, connection): (i64, Result<Box<dyn Sampler>, DriverError>) = match db.engine() {
        Engine::Postgres => {
            let Some(pid) = PostgresDriver::of(db).and_then(PostgresDriver::session_pid) else {
                report.step(Step::NoWatchdog(NoWatchdog::Pooled));
                return None;
            };
            let connection = database
                .connect_postgres()
                .map(|c| Box::new(c) as Box<dyn Sampler>);
            (pid, connection)
        }
        Engine::Mysql => {
            let pid = MysqlDriver::of(db).map_or(0, |d| i64::from(d.connection_id()));
            let connection = database
                .connect_mysql()
                .and_then(MysqlSampler::new)
                .map(|c| Box::new(c) as Box<dyn Sampler>);
            (pid, connection)
        }
        Engine::Sqlite => return None,
    };
    let connection = match connection {
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
