//! The watchdog: while a migration runs, a second connection samples the migration's server
//! process every `interval` and reports who blocks it (pid, user, query, how long), how long it
//! has waited for locks, which sessions queue behind it, connection usage against
//! `max_connections`, and elapsed time against the estimate. Thresholds produce warnings; those
//! chosen to abort call the abort callback once, with the reason (the caller cancels the
//! statement and lets the runner roll back and record it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::Client;
use serde::Serialize;

use safeshift_driver::PostgresDriver;

use crate::activity::{Session, connections, sessions_where};
use crate::query::{Row, millis, rows, text};

/// A threshold the watchdog watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Threshold {
    /// The migration has waited for locks this long in total during the run (across retries).
    LockWait,
    /// The migration's running statement has run this long (not counting lock waits).
    LongQuery,
    /// This share of `max_connections` is in use.
    Connections,
    /// The run has taken this long.
    Duration,
}

impl Threshold {
    pub const ALL: [Threshold; 4] = [
        Threshold::LockWait,
        Threshold::LongQuery,
        Threshold::Connections,
        Threshold::Duration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Threshold::LockWait => "lock-wait",
            Threshold::LongQuery => "long-query",
            Threshold::Connections => "connections",
            Threshold::Duration => "duration",
        }
    }

    pub fn parse(text: &str) -> Option<Threshold> {
        Threshold::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Where the thresholds lie.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub lock_wait: Duration,
    pub long_query: Duration,
    /// A share of `max_connections`, 0 to 1.
    pub connections: f64,
    /// `None`: no duration threshold (no estimate and none given).
    pub duration: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lock_wait: Duration::from_secs(5),
            long_query: Duration::from_secs(10),
            connections: 0.8,
            duration: None,
        }
    }
}

/// How the watchdog runs.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// The migration connection's server process (`Driver::session_pid`).
    pub pid: i64,
    pub interval: Duration,
    pub limits: Limits,
    /// Thresholds that abort the run instead of only warning.
    pub abort_on: Vec<Threshold>,
    /// The plan's estimate, reported beside the elapsed time.
    pub estimate: Option<Duration>,
    /// How often to report progress (elapsed against the estimate, lock waits, connections).
    pub progress_every: Duration,
}

/// What the watchdog noticed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum WatchEvent {
    /// The migration waits for a lock, and these sessions hold or queue for it first. Sent when
    /// the wait starts and whenever the set of blockers changes.
    Blocked {
        /// How long this wait had lasted when it was seen.
        waited_ms: u64,
        /// The lock waited for: `ACCESS EXCLUSIVE on public.accounts`.
        lock: Option<String>,
        blockers: Vec<Session>,
    },
    /// The wait ended (the lock was granted, or the statement gave up or was cancelled).
    Unblocked { waited_ms: u64 },
    /// Sessions waiting behind the migration's lock; sent when their number changes.
    Queued { sessions: Vec<Session> },
    /// A threshold was crossed (once per threshold per run).
    Crossed {
        threshold: Threshold,
        message: String,
        /// Whether it aborts the run.
        aborting: bool,
    },
    /// Where the run stands, sent every `progress_every`.
    Progress {
        elapsed_ms: u64,
        estimate_ms: Option<u64>,
        lock_wait_ms: u64,
        queued: usize,
        connections: (u64, u64),
    },
    /// Sampling failed; the watchdog stops sampling (the migration goes on).
    Failed { message: String },
}

/// What the watchdog saw over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WatchSummary {
    pub samples: u64,
    /// Total time the migration waited for locks.
    pub lock_wait_ms: u64,
    pub longest_lock_wait_ms: u64,
    pub most_queued: usize,
    pub most_connections: Option<(u64, u64)>,
    /// The reason, when a threshold aborted the run.
    pub aborted: Option<String>,
}

/// A running watchdog; stop it with [`Watchdog::stop`] (dropping it stops it too).
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<WatchSummary>>,
}

type Report = Box<dyn FnMut(WatchEvent) + Send>;
type Abort = Box<dyn Fn(String) + Send>;

impl Watchdog {
    /// Starts sampling on `connection` (a connection of its own, not the migration's).
    pub fn start(
        mut connection: PostgresDriver,
        config: WatchConfig,
        mut report: Report,
        abort: Abort,
    ) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut state = State::new(config);
            while !stopping.load(Ordering::SeqCst) {
                let started = Instant::now();
                match state.sample(connection.client()) {
                    Ok(events) => {
                        for event in events {
                            if let WatchEvent::Crossed {
                                aborting: true,
                                message,
                                ..
                            } = &event
                                && state.summary.aborted.is_none()
                            {
                                state.summary.aborted = Some(message.clone());
                                report(event.clone());
                                abort(message.clone());
                                continue;
                            }
                            report(event);
                        }
                    }
                    Err(message) => {
                        report(WatchEvent::Failed { message });
                        break;
                    }
                }
                let pause = state.config.interval.saturating_sub(started.elapsed());
                let deadline = Instant::now() + pause;
                while Instant::now() < deadline && !stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10).min(pause));
                }
            }
            state.finish()
        });
        Watchdog {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns what was seen.
    pub fn stop(mut self) -> WatchSummary {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The sampler's memory between samples.
struct State {
    config: WatchConfig,
    started: Instant,
    summary: WatchSummary,
    /// Lock waits that ended, summed.
    finished_waits_ms: u64,
    /// The wait in progress: its start (as the server's `waitstart` text) and length so far.
    current_wait: Option<(String, u64)>,
    blockers: Vec<i64>,
    queued: usize,
    crossed: Vec<Threshold>,
    last_progress: Instant,
}

impl State {
    fn new(config: WatchConfig) -> State {
        State {
            config,
            started: Instant::now(),
            summary: WatchSummary::default(),
            finished_waits_ms: 0,
            current_wait: None,
            blockers: Vec::new(),
            queued: 0,
            crossed: Vec::new(),
            last_progress: Instant::now(),
        }
    }

    fn sample(&mut self, client: &mut Client) -> Result<Vec<WatchEvent>, String> {
        let mut events = Vec::new();
        self.summary.samples += 1;
        let own = self.own_session(client)?;
        let total_wait = self.track_lock_wait(client, &own, &mut events)?;
        self.track_queue(client, &mut events)?;
        self.check_statement(&own, total_wait, &mut events);
        self.track_connections(client, total_wait, &mut events)?;
        let limits = self.config.limits;
        if let Some(limit) = limits.duration
            && self.started.elapsed() >= limit
        {
            self.cross(
                Threshold::Duration,
                format!(
                    "the run has taken {} (limit {})",
                    seconds(self.started.elapsed().as_millis() as u64),
                    seconds(limit.as_millis() as u64)
                ),
                &mut events,
            );
        }
        Ok(events)
    }

    /// The migration's session: its state, wait event, how long its statement has run, and the
    /// lock it waits for, if any (since when, how long, on what).
    fn own_session(&self, client: &mut Client) -> Result<Row, String> {
        let pid = self.config.pid;
        let own = rows(
            client,
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
        )
        .map_err(|e| e.message)?;
        Ok(own.into_iter().next().unwrap_or_default())
    }

    /// Follows the migration's lock waits (and who blocks them); returns the time waited for
    /// locks in all.
    fn track_lock_wait(
        &mut self,
        client: &mut Client,
        own: &Row,
        events: &mut Vec<WatchEvent>,
    ) -> Result<u64, String> {
        let pid = self.config.pid;
        let waiting = text(own, 1) == "Lock";
        let wait_start = own.get(3).cloned().flatten();
        let waited_ms = millis(own, 4).unwrap_or(0);
        match (&self.current_wait, waiting, &wait_start) {
            (Some((start, last)), true, Some(now_start)) if start == now_start => {
                let _ = last;
                self.current_wait = Some((start.clone(), waited_ms));
            }
            (previous, true, Some(now_start)) => {
                if let Some((_, last)) = previous {
                    self.finished_waits_ms += last;
                }
                self.current_wait = Some((now_start.clone(), waited_ms));
                self.blockers.clear();
            }
            (Some((_, last)), _, _) => {
                let last = *last;
                self.finished_waits_ms += last;
                self.current_wait = None;
                self.blockers.clear();
                events.push(WatchEvent::Unblocked { waited_ms: last });
            }
            (None, _, _) => {}
        }
        if let Some((_, current)) = &self.current_wait {
            self.summary.longest_lock_wait_ms = self.summary.longest_lock_wait_ms.max(*current);
            let blockers = sessions_where(client, &format!("a.pid = ANY(pg_blocking_pids({pid}))"))
                .map_err(|e| e.message)?;
            let mut pids: Vec<i64> = blockers.iter().map(|s| s.pid).collect();
            pids.sort_unstable();
            if pids != self.blockers && !blockers.is_empty() {
                self.blockers = pids;
                events.push(WatchEvent::Blocked {
                    waited_ms: *current,
                    lock: own.get(5).cloned().flatten(),
                    blockers,
                });
            }
        }
        let total_wait = self.finished_waits_ms
            + self
                .current_wait
                .as_ref()
                .map_or(0, |(_, current)| *current);
        self.summary.lock_wait_ms = total_wait;
        Ok(total_wait)
    }

    /// The sessions queued behind the migration's lock.
    fn track_queue(
        &mut self,
        client: &mut Client,
        events: &mut Vec<WatchEvent>,
    ) -> Result<(), String> {
        let pid = self.config.pid;
        let queued = sessions_where(
            client,
            &format!("a.wait_event_type = 'Lock' AND {pid} = ANY(pg_blocking_pids(a.pid))"),
        )
        .map_err(|e| e.message)?;
        if queued.len() != self.queued {
            self.queued = queued.len();
            self.summary.most_queued = self.summary.most_queued.max(queued.len());
            events.push(WatchEvent::Queued { sessions: queued });
        }
        Ok(())
    }

    /// The lock-wait and long-statement thresholds.
    fn check_statement(&mut self, own: &Row, total_wait: u64, events: &mut Vec<WatchEvent>) {
        let waiting = text(own, 1) == "Lock";
        let limits = self.config.limits;
        if total_wait >= limits.lock_wait.as_millis() as u64 {
            self.cross(
                Threshold::LockWait,
                format!(
                    "the migration has waited {} for locks (limit {})",
                    seconds(total_wait),
                    seconds(limits.lock_wait.as_millis() as u64)
                ),
                events,
            );
        }
        let running_ms = millis(own, 2).unwrap_or(0);
        if !waiting
            && text(own, 0) == "active"
            && running_ms >= limits.long_query.as_millis() as u64
        {
            self.cross(
                Threshold::LongQuery,
                format!(
                    "the migration's statement has run for {} (limit {})",
                    seconds(running_ms),
                    seconds(limits.long_query.as_millis() as u64)
                ),
                events,
            );
        }
    }

    /// Progress every few seconds, and connection use against its threshold.
    fn track_connections(
        &mut self,
        client: &mut Client,
        total_wait: u64,
        events: &mut Vec<WatchEvent>,
    ) -> Result<(), String> {
        let limits = self.config.limits;
        let connections = connections(client).map_err(|e| e.message)?;
        if self.last_progress.elapsed() >= self.config.progress_every {
            self.last_progress = Instant::now();
            events.push(WatchEvent::Progress {
                elapsed_ms: self.started.elapsed().as_millis() as u64,
                estimate_ms: self.config.estimate.map(|e| e.as_millis() as u64),
                lock_wait_ms: total_wait,
                queued: self.queued,
                connections: (connections.used, connections.max),
            });
        }
        let most = self
            .summary
            .most_connections
            .get_or_insert((0, connections.max));
        if connections.used > most.0 {
            *most = (connections.used, connections.max);
        }
        if connections.ratio() >= limits.connections {
            self.cross(
                Threshold::Connections,
                format!(
                    "{} of {} connections are in use ({:.0} %, limit {:.0} %)",
                    connections.used,
                    connections.max,
                    connections.ratio() * 100.0,
                    limits.connections * 100.0
                ),
                events,
            );
        }
        Ok(())
    }

    fn cross(&mut self, threshold: Threshold, message: String, events: &mut Vec<WatchEvent>) {
        if self.crossed.contains(&threshold) {
            return;
        }
        self.crossed.push(threshold);
        let aborting = self.config.abort_on.contains(&threshold);
        events.push(WatchEvent::Crossed {
            threshold,
            message: if aborting {
                format!("watchdog: {message}")
            } else {
                message
            },
            aborting,
        });
    }

    fn finish(mut self) -> WatchSummary {
        if let Some((_, current)) = self.current_wait.take() {
            self.summary.lock_wait_ms = self.finished_waits_ms + current;
        }
        self.summary
    }
}

fn seconds(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{:.0} s", ms as f64 / 1000.0)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_by_name() {
        for threshold in Threshold::ALL {
            assert_eq!(Threshold::parse(threshold.as_str()), Some(threshold));
        }
        assert_eq!(Threshold::parse("lockwait"), None);
    }
}
