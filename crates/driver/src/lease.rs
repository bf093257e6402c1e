//! What the lease lock is on every server that has one: a row with an expiry, renewed by a
//! heartbeat thread on a connection of its own. Each driver writes its own SQL; the heartbeat's
//! rhythm, and when it counts the lease as lost, are the same everywhere.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lock::LockHolder;

/// The lease row's name: one lock per history table.
pub(crate) const LOCK_NAME: &str = "migrations";

/// The holder a lease row names: `(holder, run_id, acquired_at, expires_at)`, the times in
/// RFC 3339.
pub(crate) fn holder_from_row(row: &[Option<String>]) -> LockHolder {
    let time = |i: usize| {
        row.get(i)
            .cloned()
            .flatten()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.to_utc())
    };
    LockHolder {
        description: format!(
            "{} (run {})",
            row.first().cloned().flatten().unwrap_or_default(),
            row.get(1).cloned().flatten().unwrap_or_default()
        ),
        backend_pid: None,
        since: time(2),
        expires_at: time(3),
    }
}

/// A thread renewing a lease every third of its length until stopped.
pub(crate) struct Heartbeat {
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts renewing: `renew` says whether the lease row was still this run's (`Ok(false)`:
    /// another runner took an expired lease over, and the lease is lost). A failed renewal (a
    /// migration's transaction holding the row renews it itself; a blip) is tried again, until
    /// a whole lease has passed since the last renewal.
    pub(crate) fn start<E: Display>(
        lease: Duration,
        mut renew: impl FnMut() -> Result<bool, E> + Send + 'static,
    ) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, lost) = (Arc::clone(&stop), Arc::clone(&lost));
            std::thread::Builder::new()
                .name("safeshift-lease".into())
                .spawn(move || {
                    let interval = (lease / 3).max(Duration::from_millis(100));
                    let mut last_renewal = Instant::now();
                    let why = loop {
                        std::thread::park_timeout(interval);
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        match renew() {
                            Ok(true) => last_renewal = Instant::now(),
                            Ok(false) => {
                                break "the lease expired and another runner took it over".into();
                            }
                            Err(error) if last_renewal.elapsed() >= lease => {
                                break format!(
                                    "could not renew the lease for {}s: {error}",
                                    lease.as_secs()
                                );
                            }
                            Err(_) => {}
                        }
                    };
                    *lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                })
                .ok()
        };
        Heartbeat { stop, lost, thread }
    }

    /// Why the lease was lost, if it was.
    pub(crate) fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the heartbeat and waits for it.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
        }
    }
}
