//! Detecting a transaction-pooling proxy (PgBouncer with `pool_mode = transaction`, and the
//! like) in front of the server, before the advisory run lock is taken through it.
//!
//! Through such a proxy a client owns a server connection only while a transaction is open;
//! between transactions its statements run on whichever connection is free, and its session
//! state (a `SET`, a session advisory lock) stays behind on a connection other clients now use.
//! Nothing in the startup exchange gives the proxy away, so the probe watches for exactly that
//! behaviour, with a few more connections of its own to make it show:
//!
//! 1. this connection sets a session setting and notes its server process;
//! 2. a helper connection opens a transaction (which pins a server connection to it while it
//!    lasts) and reads its server process and that setting: through a transaction pooler it is
//!    usually handed the very connection this one just released (PgBouncer reuses the most
//!    recent first), so it sees the same process, or the setting;
//! 3. while the helper holds its connection, this one asks again: if its server connection was
//!    taken meanwhile (by the helper or by another client), it lands on another process, or
//!    loses its setting.
//!
//! On a direct connection, or through session pooling, none of that can happen: a helper gets a
//! session of its own and this one keeps its own. A direct connection shows itself in the first
//! round (this connection is still on the server process it connected to, and both its and the
//! helper's are younger than their connections), and the probe stops there. A pool (the helper's server process is older) gets three more rounds with three
//! helpers, so that contention from other clients cannot hide it: a miss needs them to take and
//! give back this connection's server connection exactly between the steps, in every round.
//! The fence of every migration's transaction and the unlock's chase
//! ([`release_advisory_lock`]) stay behind it.

use std::time::{Duration, Instant};

use postgres::Client;

use super::run_lock::OWNER_SETTING;
use super::{PostgresDriver, simple_query_rows};
use crate::Dialect;
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::literal;

/// The session setting the probe leaves on this connection's server process, and reads back.
const PROBE_SETTING: &str = "safeshift.pooler_probe";
/// Rounds after the first, once a pool is seen.
const ROUNDS: usize = 3;
/// Connections holding transactions in each round once a pool is seen (the first has one).
const HELPERS: usize = 3;
/// How long a lock left on a pooled server connection is chased before that connection is
/// closed instead.
const STRAY_LOCK_CHASE: Duration = Duration::from_secs(2);
/// At most this many extra connections hold transactions open while chasing it, each pinning
/// one more of the pool's server connections, so the next try lands on another.
const STRAY_LOCK_HELPERS: usize = 8;

/// What the probe saw that only a transaction pooler explains, or `None`.
pub(super) fn transaction_pooling(
    driver: &mut PostgresDriver,
) -> Result<Option<String>, DriverError> {
    // Connected before its round, so a proxy has no server connection to give it before its
    // first statement: the moment this connection's is free.
    let mut helpers = connect_helpers(driver, 1)?;
    let first = probe_round(driver, &mut helpers, &marker(0))?;
    // This connection and the helper each got a server process started for it, and this one
    // kept its own since connecting: no pool handed them out, so a direct connection. Only a
    // pool is worth more rounds.
    if first.evidence.is_some() || !first.pooled_connection {
        return finish(driver, first.evidence);
    }
    helpers.extend(connect_helpers(driver, HELPERS - 1)?);
    let mut evidence = None;
    for round in 1..=ROUNDS {
        evidence = probe_round(driver, &mut helpers, &marker(round))?.evidence;
        if evidence.is_some() {
            break;
        }
    }
    finish(driver, evidence)
}

fn marker(round: usize) -> String {
    format!("{}-{round}", std::process::id())
}

/// Clears the probe's setting and passes `evidence` on. Through a pooler the setting may sit on
/// any connection by now; it names nothing secret.
fn finish(
    driver: &mut PostgresDriver,
    evidence: Option<String>,
) -> Result<Option<String>, DriverError> {
    driver.run(&format!("SELECT set_config('{PROBE_SETTING}', '', false)"))?;
    Ok(evidence)
}

/// `count` more connections like the driver's, opened in parallel (each is a round trip or a
/// TLS handshake).
fn connect_helpers(driver: &PostgresDriver, count: usize) -> Result<Vec<Helper>, DriverError> {
    let (tls, config) = (&driver.tls, &driver.config);
    let connected: Vec<Result<Helper, postgres::Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    tls.connect(config).map(|client| Helper { client, started })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a probe connection thread panicked"))
            .collect()
    });
    connected
        .into_iter()
        .collect::<Result<Vec<Helper>, _>>()
        .map_err(|error| {
            DriverError::new(
                ErrorKind::Connect,
                format!(
                    "could not open another connection to {} (to check for a connection pooler): {}",
                    driver.redacted_url,
                    super::errors::describe(&error)
                ),
            )
        })
}

/// A helper connection, and when it began connecting.
struct Helper {
    client: Client,
    started: Instant,
}

/// What one round saw.
struct Round {
    evidence: Option<String>,
    /// A helper was served by a server process older than its own connection: a pool.
    pooled_connection: bool,
}

fn probe_round(
    driver: &mut PostgresDriver,
    helpers: &mut [Helper],
    marker: &str,
) -> Result<Round, DriverError> {
    let first = driver.first_row(&format!(
        "SELECT pg_backend_pid(), set_config('{PROBE_SETTING}', {}, false), {AGE_MS} \
         FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        literal(Dialect::Postgres, marker)
    ))?;
    let first_pid = first[0].clone().unwrap_or_default();
    let mut pinned = 0;
    let mut round = Round {
        evidence: None,
        pooled_connection: older_than(first.get(2), driver.connecting),
    };
    if let Some(connected_on) = driver.backend_pid
        && connected_on.to_string() != first_pid
    {
        round.evidence = Some(format!(
            "this connection's statements ran in server process {connected_on} when it connected, and in {first_pid} now"
        ));
        return Ok(round);
    }
    for helper in helpers.iter_mut() {
        let seen = match simple_query_rows(
            &mut helper.client,
            &format!(
                "BEGIN; SELECT pg_backend_pid(), current_setting('{PROBE_SETTING}', true), {AGE_MS} \
                 FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            ),
        ) {
            Ok(rows) => rows.into_iter().next().unwrap_or_default(),
            Err(error) if error.message.contains("pooling") => {
                // PgBouncer in statement pooling refuses multi-statement transactions outright.
                round.evidence = Some(format!(
                    "it refuses a transaction of several statements ({})",
                    error.message
                ));
                break;
            }
            Err(error) => {
                end_transactions(&mut helpers[..pinned]);
                return Err(error);
            }
        };
        pinned += 1;
        let pid = seen.first().cloned().flatten().unwrap_or_default();
        let setting = seen.get(1).cloned().flatten().unwrap_or_default();
        if older_than(seen.get(2), helper.started) {
            round.pooled_connection = true;
        }
        if pid == first_pid {
            round.evidence = Some(format!(
                "another connection was served by the same server process ({first_pid}) as this one"
            ));
            break;
        }
        if !setting.is_empty() {
            round.evidence = Some(format!(
                "another connection saw a session setting made on this one (on server process {pid})"
            ));
            break;
        }
    }
    if round.evidence.is_none() {
        let again = driver.first_row(&format!(
            "SELECT pg_backend_pid(), current_setting('{PROBE_SETTING}', true)"
        ));
        let again = match again {
            Ok(again) => again,
            Err(error) => {
                end_transactions(&mut helpers[..pinned]);
                return Err(error);
            }
        };
        let again_pid = again[0].clone().unwrap_or_default();
        if again_pid != first_pid {
            round.evidence = Some(format!(
                "two statements of this connection ran in different server processes ({first_pid}, then {again_pid})"
            ));
        } else if again[1].as_deref() != Some(marker) {
            round.evidence = Some(
                "a session setting made on this connection was gone by its next statement"
                    .to_owned(),
            );
        }
    }
    end_transactions(&mut helpers[..pinned]);
    Ok(round)
}

/// The age of the server process serving a statement, in milliseconds (from `pg_stat_activity`
/// for `pg_backend_pid()`).
const AGE_MS: &str = "extract(epoch FROM clock_timestamp() - backend_start) * 1000";

/// Whether a server process of this age (`AGE_MS`, measured by the server) was started before
/// its client began to connect at `connecting` (measured here): then it is not the client's
/// own but a pool's. Both are intervals, so the two clocks need not agree; the server's lies
/// within the client's for a process of its own.
fn older_than(age_ms: Option<&Option<String>>, connecting: Instant) -> bool {
    let age_ms: f64 = age_ms
        .cloned()
        .flatten()
        .and_then(|age| age.parse().ok())
        .unwrap_or(0.0);
    age_ms > connecting.elapsed().as_secs_f64() * 1000.0 + 1.0
}

/// Rolls back the helpers' transactions (their server connections go back to the pool).
fn end_transactions(helpers: &mut [Helper]) {
    for helper in helpers {
        let _ = helper.client.batch_execute("ROLLBACK");
    }
}

/// The refusal: advisory mode through a transaction pooler.
pub(super) fn refusal(evidence: &str) -> DriverError {
    DriverError::new(
        ErrorKind::LockLost,
        format!(
            "the connection goes through a transaction-pooling proxy (such as PgBouncer with pool_mode = transaction): \
             {evidence}. A session advisory lock cannot keep other runners out there, and its unlock would land \
             on another server connection, leaving the lock held"
        ),
    )
    .with_hint(
        "use `--lock-mode lease` (or `[lock] mode = \"lease\"` in safeshift.toml) through a transaction pooler, \
         or connect to the server directly; nothing was applied and no lock was taken",
    )
}

/// Releases the advisory lock this run took, on this connection's session. Returns whether it
/// was released there; when it was not (the connection turned out to be pooled, and this
/// statement ran on another server connection), [`release_stray_lock`] finds it. Releasing only
/// where the owner setting names this run keeps PostgreSQL's "you don't own a lock" warning,
/// and another run's lock, out of it.
pub(super) fn release_advisory_lock(
    driver: &mut PostgresDriver,
    run_id: &str,
) -> Result<(), DriverError> {
    let release = release_sql(driver.lock_key, run_id);
    let row = driver.first_row(&release)?;
    if row[0].as_deref() == Some("t") {
        return Ok(());
    }
    release_stray_lock(driver, &release)
}

fn release_sql(key: i64, run_id: &str) -> String {
    format!(
        "SELECT CASE WHEN coalesce(current_setting('{OWNER_SETTING}', true), '') = {run} \
         THEN pg_advisory_unlock({key}) AND set_config('{OWNER_SETTING}', '', false) = '' ELSE false END",
        run = literal(Dialect::Postgres, run_id)
    )
}

/// The lock sits on a server connection this client no longer reaches (a transaction pooler
/// that the probe missed). Tries `release` from more connections, each holding its transaction
/// open so that the proxy hands the next one another server connection, until one lands where
/// the lock is; failing that, closes that server connection if it is idle (the server then
/// drops the lock, and the proxy opens a new connection when it needs one). A connection in
/// use by someone else is never closed: the error names it instead.
fn release_stray_lock(driver: &mut PostgresDriver, release: &str) -> Result<(), DriverError> {
    let started = Instant::now();
    while started.elapsed() < STRAY_LOCK_CHASE {
        let Some(holder) = driver.advisory_holder()?.and_then(|h| h.backend_pid) else {
            return Ok(());
        };
        let mut helpers: Vec<Client> = Vec::new();
        let mut released = false;
        for _ in 0..STRAY_LOCK_HELPERS {
            let mut helper = driver.connect_again()?;
            let rows = simple_query_rows(&mut helper, &format!("BEGIN; {release}"))?;
            released = rows
                .first()
                .is_some_and(|row| row[0].as_deref() == Some("t"));
            helpers.push(helper);
            if released {
                break;
            }
        }
        for mut helper in helpers {
            // COMMIT keeps the cleared owner setting (an unlock is not transactional anyway).
            let _ = helper.batch_execute("COMMIT");
        }
        if released {
            return Ok(());
        }
        let terminated = driver.rows(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {holder} AND state = 'idle'"
        ))?;
        if terminated.iter().any(|row| row[0].as_deref() == Some("t")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    match driver.advisory_holder()?.and_then(|h| h.backend_pid) {
        None => Ok(()),
        Some(holder) => Err(DriverError::new(
            ErrorKind::LockLost,
            format!(
                "the run lock is still held by server process {holder}: the connection goes through a \
                 transaction-pooling proxy, which gave that server connection to another client before the \
                 lock could be released on it"
            ),
        )
        .with_hint(format!(
            "it is released when that connection closes: `SELECT pg_terminate_backend({holder});`; use \
             `--lock-mode lease` through a transaction pooler"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use safeshift_testkit::TestDatabase;

    use crate::lock::{LockAttempt, LockRequest, RunLockMode};
    use crate::postgres::PostgresDriver;
    use crate::{ConnectOptions, DatabaseUrl};

    fn advisory_locks(client: &mut postgres::Client) -> String {
        let rows = super::simple_query_rows(
            client,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .unwrap();
        rows[0][0].clone().unwrap()
    }

    /// The probe is the first defence; should it miss, the lock taken through the pooler must
    /// still not outlive the run, even when its server connection is busy with another client
    /// at the moment of the unlock.
    #[test]
    fn a_lock_taken_through_a_transaction_pooler_is_released_where_it_is() {
        let db = TestDatabase::new();
        let url = DatabaseUrl::parse(&db.pgbouncer_url()).unwrap();
        let options = ConnectOptions {
            lock_mode: RunLockMode::Advisory,
            ..ConnectOptions::default()
        };
        let mut driver = PostgresDriver::connect(&url, &options).unwrap();
        // As if the probe had seen nothing.
        driver.pooler_checked = true;
        let request = LockRequest {
            mode: RunLockMode::Advisory,
            run_id: "run-1".to_owned(),
            holder: "test".to_owned(),
            lease: Duration::from_secs(30),
        };
        assert_eq!(driver.try_lock(&request).unwrap(), LockAttempt::Acquired);
        let mut direct = db.client();
        assert_eq!(advisory_locks(&mut direct), "1");
        // Another client pins the server connection that holds the lock (the pooler hands it
        // the one released last), and keeps it for a while.
        let mut other = postgres::Client::connect(&db.pgbouncer_url(), postgres::NoTls).unwrap();
        other.batch_execute("BEGIN; SELECT 1").unwrap();
        let release_later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.batch_execute("COMMIT").unwrap();
            other
        });
        driver.unlock().unwrap();
        assert_eq!(advisory_locks(&mut direct), "0");
        drop(release_later.join().unwrap());
    }
}
