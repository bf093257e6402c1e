//! Servers owned by this process, and stopping them when it exits.
//!
//! Rust never drops statics, so a server kept in one (the testkit's per-process shared server)
//! would outlive its process if only `Drop` stopped it. An `atexit` hook stops whatever is still
//! registered when the process exits normally; the parent-death signal set at spawn (see
//! [`Lifetime::Process`](crate::Lifetime::Process)) covers a process that is killed; and
//! [`Layout::remove_stale_base_dirs`](crate::Layout::remove_stale_base_dirs) removes what a
//! killed process leaves on disk.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use crate::process;

/// How long a server gets to shut down cleanly before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct Running {
    id: u64,
    child: Child,
    stop_signal: libc::c_int,
    base_dir: PathBuf,
}

impl Running {
    fn stop(mut self) {
        process::stop_child(&mut self.child, self.stop_signal, STOP_GRACE);
        let _ = fs::remove_dir_all(&self.base_dir);
    }
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static EXIT_HOOK: Once = Once::new();

/// A server registered to be stopped, and its directory removed, when [`Registration::stop`] is
/// called or at exit.
#[derive(Debug)]
pub struct Registration(u64);

/// Registers a running server (a child of this process) so it is stopped with `stop_signal`,
/// and `base_dir` removed, at exit at the latest.
pub fn register(child: Child, stop_signal: libc::c_int, base_dir: PathBuf) -> Registration {
    EXIT_HOOK.call_once(|| {
        // SAFETY: registering a plain extern "C" function has no preconditions. If it fails
        // (the table is full) the parent-death signal still stops the servers.
        unsafe {
            libc::atexit(stop_all_at_exit);
        }
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock().push(Running {
        id,
        child,
        stop_signal,
        base_dir,
    });
    Registration(id)
}

impl Registration {
    /// The pid of the registered server, if it is still registered.
    pub fn pid(&self) -> Option<u32> {
        lock()
            .iter()
            .find(|running| running.id == self.0)
            .map(|running| running.child.id())
    }

    /// Stops the server now and removes its directory.
    pub fn stop(&self) {
        let running = {
            let mut all = lock();
            let position = all.iter().position(|running| running.id == self.0);
            position.map(|index| all.remove(index))
        };
        if let Some(running) = running {
            running.stop();
        }
    }
}

extern "C" fn stop_all_at_exit() {
    let all = std::mem::take(&mut *lock());
    // Newest first: a PgBouncer goes before the server behind it.
    for running in all.into_iter().rev() {
        running.stop();
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Running>> {
    // A panic while holding the lock leaves the list intact, so poisoning is ignored.
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
