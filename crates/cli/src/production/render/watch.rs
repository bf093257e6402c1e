//! The watchdog's events, printed as it sees them.

use safeshift_deploy::describe::session_line;
use safeshift_watch::WatchEvent;

use crate::output::{RED, YELLOW, err, millis, styled};

/// Prints one watchdog event as it comes (as JSON on one line with `--json`).
pub fn watch_event(event: &WatchEvent, json: bool) {
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
            // An aborting threshold's message, recorded in the history, starts with "watchdog: ";
            // the label says it here.
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
