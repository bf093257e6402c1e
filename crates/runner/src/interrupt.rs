//! Stopping a run from outside: a signal handler, a watchdog, an embedding application. The
//! reason is recorded with the interrupted attempt.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a run was asked to stop. What the front end does about it depends on it (a watchdog's
/// abort is a production guard's refusal, exit 9; a signal is an interruption, exit 130).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptReason {
    /// Ctrl-C (SIGINT) at the terminal.
    CtrlC,
    /// SIGTERM: a service manager or an orchestrator stopping the process.
    Terminated,
    /// A watchdog threshold chosen to abort was crossed; the watchdog's message says which and
    /// by how much (`watchdog: waited 3.1 s for a lock (limit 3 s)`).
    Watchdog(String),
    /// An embedding application asked, for the reason it gives.
    Requested(String),
}

impl fmt::Display for InterruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterruptReason::CtrlC => f.write_str("Ctrl-C"),
            InterruptReason::Terminated => f.write_str("SIGTERM"),
            InterruptReason::Watchdog(message) | InterruptReason::Requested(message) => {
                f.write_str(message)
            }
        }
    }
}

/// A request to stop the run at the next statement boundary (cancel the running statement with
/// the driver's canceller to stop sooner).
#[derive(Debug, Default)]
pub struct Interrupt {
    requested: AtomicBool,
    reason: Mutex<Option<InterruptReason>>,
}

impl Interrupt {
    /// Asks the run to stop; the first reason given is kept. Returns whether this was the first
    /// request.
    pub fn request(&self, reason: InterruptReason) -> bool {
        let mut stored = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if stored.is_none() {
            *stored = Some(reason);
        }
        !self.requested.swap(true, Ordering::SeqCst)
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Why the run was asked to stop (the reason is stored before the request shows, so it is
    /// there whenever [`Interrupt::is_requested`] is true).
    pub fn reason(&self) -> InterruptReason {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| InterruptReason::Requested("interrupted".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins() {
        let interrupt = Interrupt::default();
        assert!(!interrupt.is_requested());
        let watchdog = InterruptReason::Watchdog("watchdog: lock wait over 5s".into());
        assert!(interrupt.request(watchdog.clone()));
        assert!(!interrupt.request(InterruptReason::CtrlC));
        assert!(interrupt.is_requested());
        assert_eq!(interrupt.reason(), watchdog);
        assert_eq!(
            interrupt.reason().to_string(),
            "watchdog: lock wait over 5s"
        );
        assert_eq!(InterruptReason::CtrlC.to_string(), "Ctrl-C");
    }
}
