//! Running the watchdog beside `up` and printing what it sees as it sees it.

use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver, Engine, PostgresDriver};
use safeshift_watch::{Session, WatchConfig, WatchEvent, Watchdog};

use crate::output::{RED, YELLOW, err, millis, styled};
use safeshift::environment::WatchSettings;

/// Starts the watchdog on a connection of its own when the migration connection has a fixed
/// server process (a direct PostgreSQL connection); otherwise says why there is none. `abort`
/// is called once, with the reason, when a threshold chosen to abort is crossed.
pub fn start(
    db: &dyn Driver,
    url: &DatabaseUrl,
    options: &ConnectOptions,
    settings: &WatchSettings,
    estimate: std::time::Duration,
    abort: Box<dyn Fn(String) + Send>,
    json: bool,
) -> Option<Watchdog> {
    if db.engine() != Engine::Postgres {
        return None;
    }
    let Some(pid) = PostgresDriver::of(db).and_then(PostgresDriver::session_pid) else {
        err(format!(
            "{} no watchdog: the migration connection has no fixed server process (lease lock through a pooler)",
            styled(YELLOW, "note:")
        ));
        return None;
    };
    let connection = match PostgresDriver::connect(url, options) {
        Ok(connection) => connection,
        Err(error) => {
            err(format!(
                "{} no watchdog: {error}",
                styled(YELLOW, "warning:")
            ));
            return None;
        }
    };
    let config = WatchConfig {
        pid,
        interval: settings.interval,
        limits: settings.limits,
        abort_on: settings.abort_on.clone(),
        estimate: Some(estimate),
        progress_every: std::time::Duration::from_secs(5),
    };
    Some(Watchdog::start(
        connection,
        config,
        Box::new(move |event| report(&event, json)),
        abort,
    ))
}

fn report(event: &WatchEvent, json: bool) {
    if json {
        if let Ok(text) = serde_json::to_string(event) {
            err(format!("watchdog {text}"));
        }
        return;
    }
    match event {
        WatchEvent::Blocked {
            waited_ms,
            lock,
            blockers,
        } => {
            err(format!(
                "{} the migration is waiting for {} ({} so far), blocked by:",
                styled(YELLOW, "watchdog:"),
                lock.as_deref().unwrap_or("a lock"),
                millis(*waited_ms)
            ));
            for blocker in blockers {
                err(format!("    {}", session_line(blocker)));
            }
        }
        WatchEvent::Unblocked { waited_ms } => {
            err(format!(
                "{} the lock wait ended after {}",
                styled(YELLOW, "watchdog:"),
                millis(*waited_ms)
            ));
        }
        WatchEvent::Queued { sessions } if sessions.is_empty() => {
            err(format!(
                "{} no session is queued behind the migration any more",
                styled(YELLOW, "watchdog:")
            ));
        }
        WatchEvent::Queued { sessions } => {
            err(format!(
                "{} {} session(s) queued behind the migration's lock:",
                styled(YELLOW, "watchdog:"),
                sessions.len()
            ));
            for session in sessions.iter().take(5) {
                err(format!("    {}", session_line(session)));
            }
        }
        WatchEvent::Crossed {
            message, aborting, ..
        } => {
            // The reason recorded in the history starts with "watchdog: "; the label says it here.
            let message = message.strip_prefix("watchdog: ").unwrap_or(message);
            if *aborting {
                err(format!(
                    "{} {message}: aborting the run (cancelling the statement; the runner rolls back and records it)",
                    styled(RED, "watchdog:")
                ));
            } else {
                err(format!("{} {message}", styled(YELLOW, "warning:")));
            }
        }
        WatchEvent::Progress {
            elapsed_ms,
            estimate_ms,
            lock_wait_ms,
            queued,
            connections,
        } => err(format!(
            "{} {} elapsed{}; waited {} for locks; {queued} queued behind; connections {}/{}",
            styled(YELLOW, "watchdog:"),
            millis(*elapsed_ms),
            estimate_ms
                .map(|e| format!(" (estimate {})", millis(e)))
                .unwrap_or_default(),
            millis(*lock_wait_ms),
            connections.0,
            connections.1
        )),
        WatchEvent::Failed { message } => err(format!(
            "{} the watchdog stopped sampling: {message}",
            styled(YELLOW, "warning:")
        )),
    }
}

/// `pid 4242 (app via psql, idle in transaction, transaction open 12.3 s): SELECT …`
pub fn session_line(session: &Session) -> String {
    let mut facts = vec![format!("user {}", session.user)];
    if !session.application.is_empty() {
        facts.push(format!("application {}", session.application));
    }
    if !session.state.is_empty() {
        facts.push(session.state.clone());
    }
    if let Some(ms) = session.transaction_ms {
        facts.push(format!("transaction open {}", millis(ms)));
    } else if let Some(ms) = session.query_ms {
        facts.push(format!("query running {}", millis(ms)));
    }
    let query: String = session
        .query
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(160)
        .collect();
    format!("pid {} ({}): {query}", session.pid, facts.join(", "))
}
