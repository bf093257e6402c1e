//! What the watchdog reads from the server at each sample, one implementation per engine:
//! PostgreSQL from `pg_stat_activity` and `pg_locks`, MySQL and MariaDB from the processlist,
//! InnoDB's lock waits and the metadata lock tables (see [`crate::mysql`]).

use safeshift_driver::{DriverError, PostgresDriver};

use crate::activity::{Connections, Session, connections, sessions_where};
use crate::query::{millis, rows, text};

/// The migration's session at one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnSession {
    /// It is running a statement.
    pub active: bool,
    /// It waits for a lock.
    pub waiting: bool,
    /// When the current lock wait started, as the server says it (tells one wait from the next).
    pub wait_started: Option<String>,
    /// How long the current lock wait has lasted.
    pub waited_ms: u64,
    /// How long the current statement has run.
    pub running_ms: u64,
    /// The lock waited for: `ACCESS EXCLUSIVE on public.accounts`.
    pub lock: Option<String>,
}

/// A connection of the watchdog's own that can describe the migration's session (`id`: its
/// server process or connection id), who blocks it, who queues behind it, and how many
/// connections are in use.
pub trait Sampler: Send {
    fn own_session(&mut self, id: i64) -> Result<OwnSession, DriverError>;
    /// The sessions holding (or queued first for) the lock the migration waits for.
    fn blockers(&mut self, id: i64) -> Result<Vec<Session>, DriverError>;
    /// The sessions waiting for a lock the migration holds or waits for.
    fn queued_behind(&mut self, id: i64) -> Result<Vec<Session>, DriverError>;
    fn connections(&mut self) -> Result<Connections, DriverError>;
}

impl Sampler for PostgresDriver {
    fn own_session(&mut self, pid: i64) -> Result<OwnSession, DriverError> {
        let own = rows(
            self.client(),
            &format!(
                "SELECT a.state, a.wait_event_type, extract(epoch FROM clock_timestamp() - a.query_start) * 1000, \
                        w.waitstart::text, extract(epoch FROM clock_timestamp() - w.waitstart) * 1000, w.what \
                 FROM pg_stat_activity a \
                 LEFT JOIN LATERAL (SELECT l.waitstart, \
                          l.mode || CASE WHEN l.relation IS NOT NULL THEN ' on ' || l.relation::regclass::text \
                                         ELSE ' (' || l.locktype || ')' END AS what \
                        FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) w ON true \
                 WHERE a.pid = {pid}"
            ),
        )?
        .into_iter()
        .next()
        .unwrap_or_default();
        Ok(OwnSession {
            active: text(&own, 0) == "active",
            waiting: text(&own, 1) == "Lock",
            wait_started: own.get(3).cloned().flatten(),
            waited_ms: millis(&own, 4).unwrap_or(0),
            running_ms: millis(&own, 2).unwrap_or(0),
            lock: own.get(5).cloned().flatten(),
        })
    }

    fn blockers(&mut self, pid: i64) -> Result<Vec<Session>, DriverError> {
        sessions_where(
            self.client(),
            &format!("a.pid = ANY(pg_blocking_pids({pid}))"),
        )
    }

    fn queued_behind(&mut self, pid: i64) -> Result<Vec<Session>, DriverError> {
        sessions_where(
            self.client(),
            &format!("a.wait_event_type = 'Lock' AND {pid} = ANY(pg_blocking_pids(a.pid))"),
        )
    }

    fn connections(&mut self) -> Result<Connections, DriverError> {
        connections(self.client())
    }
}
