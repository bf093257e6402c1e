//! Running the watchdog beside `up` and printing what it sees as it sees it.

use std::sync::Arc;

use safeshift_driver::{Canceller, ConnectOptions, DatabaseUrl, Driver, Engine, PostgresDriver};
use safeshift_runner::Interrupt;
use safeshift_watch::{Session, WatchConfig, WatchEvent, Watchdog};

use crate::environment::WatchSettings;
use crate::output::{RED, YELLOW, err, millis, styled};

/// Starts the watchdog on a connection of its own when the migration connection has a fixed
/// server process (a direct PostgreSQL connection); otherwise says why there is none.
pub fn start(
    db: &dyn Driver,
    url: &DatabaseUrl,
    options: &ConnectOptions,
    settings: &WatchSettings,
    interrupt: Arc<Interrupt>,
    canceller: Canceller,
    json: bool,
) -> Option<Watchdog> {
    if db.engine() != Engine::Postgres {
        return None;
    }
    let Some(pid) = db.session_pid() else {
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
    };
    Some(Watchdog::start(
        connection,
        config,
        Box::new(move |event| report(&event, json)),
        Box::new(move |reason| {
            interrupt.request(reason);
            canceller();
        }),
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
            if *aborting {
                err(format!(
                    "{} {message}: aborting the run (cancelling the statement; the runner rolls back and records it)",
                    styled(RED, "watchdog:")
                ));
            } else {
                err(format!("{} {message}", styled(YELLOW, "warning:")));
            }
        }
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
