//! What the lease lock is on every server that has one: a row with an expiry, renewed by a
//! heartbeat thread on a connection of its own. Each driver writes its own SQL; the heartbeat's
//! rhythm, and when it counts the lease as lost, are the same everywhere. The heartbeat is a
//! [`Keeper`], the thread MySQL's `GET_LOCK` connection is watched by too.

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

/// A thread that wakes every `interval` to check something a run depends on (its lease, its
/// lock's connection) until it is stopped or the check fails; why it failed is kept for
/// [`Keeper::lost`].
pub(crate) struct Keeper {
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

/// Why a [`Keeper`]'s thread woke.
pub(crate) enum Wake {
    /// Time to check: `Some(why)` when what it keeps is lost (the thread then ends).
    Check,
    /// The keeper is stopped: the last chance to let go (the answer is not read).
    Stop,
}

impl Keeper {
    /// Starts a thread named `name` calling `check` every `interval`, and once with
    /// [`Wake::Stop`] when stopped. Without a thread (it could not be started), nothing is kept
    /// and nothing is ever reported lost.
    pub(crate) fn start(
        name: &str,
        interval: Duration,
        mut check: impl FnMut(Wake) -> Option<String> + Send + 'static,
    ) -> Keeper {
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, lost) = (Arc::clone(&stop), Arc::clone(&lost));
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    loop {
                        std::thread::park_timeout(interval);
                        if stop.load(Ordering::SeqCst) {
                            check(Wake::Stop);
                            return;
                        }
                        if let Some(why) = check(Wake::Check) {
                            *lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                            return;
                        }
                    }
                })
                .ok()
        };
        Keeper { stop, lost, thread }
    }

    /// Why what it keeps was lost, if it was.
    pub(crate) fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the thread and waits for it (and its last [`Wake::Stop`]).
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Keeper {
    /// Stops the thread without waiting for it.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
        }
    }
}

/// A thread renewing a lease every third of its length until stopped: `renew` says whether the
/// lease row was still this run's (`Ok(false)`: another runner took an expired lease over, and
/// the lease is lost). A failed renewal (a migration's transaction holding the row renews it
/// itself; a blip) is tried again, until a whole lease has passed since the last renewal.
pub(crate) fn heartbeat<E: Display>(
    lease: Duration,
    mut renew: impl FnMut() -> Result<bool, E> + Send + 'static,
) -> Keeper {
    let interval = (lease / 3).max(Duration::from_millis(100));
    let mut last_renewal = Instant::now();
    Keeper::start("safeshift-lease", interval, move |wake| match wake {
        Wake::Stop => None,
        Wake::Check => match renew() {
            Ok(true) => {
                last_renewal = Instant::now();
                None
            }
            Ok(false) => Some("the lease expired and another runner took it over".into()),
            Err(error) if last_renewal.elapsed() >= lease => Some(format!(
                "could not renew the lease for {}s: {error}",
                lease.as_secs()
            )),
            Err(_) => None,
        },
    })
}
