//! Watching a statement that cannot run in a transaction from a second connection: its locks
//! are released as soon as it finishes, so they are sampled from `pg_locks` while it runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

/// Samples the relation locks a backend holds until stopped.
pub struct LockWatcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<BTreeSet<(u32, String)>>,
}

const SAMPLE: &str = "SELECT relation::oid::int8, mode FROM pg_locks \
                      WHERE pid = $1 AND locktype = 'relation' AND granted AND relation IS NOT NULL";

impl LockWatcher {
    /// Starts sampling the locks of backend `pid` on `client`, back to back (a sample takes a
    /// fraction of a millisecond), so only locks shorter than that can be missed.
    pub fn start(mut client: postgres::Client, pid: i32) -> LockWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let Ok(statement) = client.prepare(SAMPLE) else {
                return seen;
            };
            loop {
                // One more sample after the stop request, so a statement that ends between two
                // samples is still seen.
                let last = stopped.load(Ordering::Acquire);
                if let Ok(rows) = client.query(&statement, &[&pid]) {
                    for row in rows {
                        let (relation, mode): (i64, String) = (row.get(0), row.get(1));
                        seen.insert((relation as u32, mode));
                    }
                }
                if last {
                    return seen;
                }
            }
        });
        LockWatcher { stop, handle }
    }

    /// Stops sampling and returns every `(relation, mode)` seen.
    pub fn finish(self) -> BTreeSet<(u32, String)> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_default()
    }
}
