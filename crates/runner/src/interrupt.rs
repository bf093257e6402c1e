//! Stopping a run from outside: a signal handler, a watchdog. The reason is recorded with the
//! interrupted attempt.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// A request to stop the run at the next statement boundary (cancel the running statement with
/// the driver's canceller to stop sooner).
#[derive(Debug, Default)]
pub struct Interrupt {
    requested: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Interrupt {
    /// Asks the run to stop; the first reason given is kept. Returns whether this was the first
    /// request.
    pub fn request(&self, reason: impl Into<String>) -> bool {
        let mut stored = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if stored.is_none() {
            *stored = Some(reason.into());
        }
        !self.requested.swap(true, Ordering::SeqCst)
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Why the run was asked to stop.
    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "interrupted".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins() {
        let interrupt = Interrupt::default();
        assert!(!interrupt.is_requested());
        assert!(interrupt.request("watchdog: lock wait over 5s"));
        assert!(!interrupt.request("Ctrl-C"));
        assert!(interrupt.is_requested());
        assert_eq!(interrupt.reason(), "watchdog: lock wait over 5s");
    }
}
