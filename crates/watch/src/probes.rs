//! The server-side questions of a pre-flight check, each answered with numbers: can these
//! credentials change the schema, who holds locks on the tables the migrations touch, which
//! transactions have been open for long, and how far behind the replicas are.

use postgres::Client;
use serde::Serialize;

use safeshift_driver::DriverError;

use crate::activity::{Session, sessions_where};
use crate::query::{literal, millis, number, rows, text};

/// Whether the connected role can run DDL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DdlPrivilege {
    pub role: String,
    pub superuser: bool,
    /// A `CREATE TABLE` in the current schema succeeded (in a transaction rolled back at once).
    pub can_create: bool,
    /// The error when it did not.
    pub create_error: Option<String>,
    /// Existing tables the migrations alter that the role does not own (ALTER needs ownership).
    pub not_owned: Vec<String>,
    /// Connected to a standby (read-only), where no DDL can run.
    pub in_recovery: bool,
}

/// Tries a `CREATE TABLE` in a transaction that is rolled back, and checks ownership of `tables`
/// (names as written in migrations, resolved through the search path).
pub fn ddl_privilege(client: &mut Client, tables: &[String]) -> Result<DdlPrivilege, DriverError> {
    let role = rows(
        client,
        "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), pg_is_in_recovery()",
    )?
    .into_iter()
    .next()
    .unwrap_or_default();
    let in_recovery = text(&role, 2) == "t";
    let (can_create, create_error) = if in_recovery {
        (
            false,
            Some("the server is a standby (in recovery)".to_owned()),
        )
    } else {
        let probe = "BEGIN; SET LOCAL lock_timeout = '2s'; \
                     CREATE TABLE safeshift_preflight_probe (id integer); ROLLBACK";
        match client.batch_execute(probe) {
            Ok(()) => (true, None),
            Err(error) => {
                let _ = client.batch_execute("ROLLBACK");
                (
                    false,
                    Some(
                        error
                            .as_db_error()
                            .map_or_else(|| error.to_string(), |db| db.message().to_owned()),
                    ),
                )
            }
        }
    };
    let mut not_owned = Vec::new();
    if !tables.is_empty() {
        let values: Vec<String> = tables.iter().map(|t| format!("({})", literal(t))).collect();
        for row in rows(
            client,
            &format!(
                "SELECT w.name FROM (VALUES {}) AS w(name) JOIN pg_class c ON c.oid = to_regclass(w.name) \
                 WHERE NOT pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY 1",
                values.join(", ")
            ),
        )? {
            not_owned.push(text(&row, 0));
        }
    }
    Ok(DdlPrivilege {
        role: text(&role, 0),
        superuser: text(&role, 1) == "t",
        can_create,
        create_error,
        not_owned,
        in_recovery,
    })
}

/// A session holding a lock on one of the tables, or with a long-open transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockHolder {
    pub session: Session,
    /// `AccessShareLock on public.accounts`, one per lock held on the tables asked about.
    pub locks: Vec<String>,
}

/// Sessions (other than ours) holding any lock on these tables: a migration that needs a
/// conflicting lock waits for them, and everything queues behind it.
pub fn lock_holders(
    client: &mut Client,
    tables: &[String],
) -> Result<Vec<LockHolder>, DriverError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = tables
        .iter()
        .map(|t| format!("to_regclass({})", literal(t)))
        .collect();
    let locks = rows(
        client,
        &format!(
            "SELECT l.pid, string_agg(DISTINCT l.mode || ' on ' || l.relation::regclass::text, ', ') \
             FROM pg_locks l WHERE l.granted AND l.pid <> pg_backend_pid() \
             AND l.relation = ANY(ARRAY[{}]::oid[]) GROUP BY l.pid ORDER BY l.pid",
            names.join(", ")
        ),
    )?;
    let mut holders = Vec::new();
    for row in locks {
        let pid = number(&row, 0).unwrap_or(0.0) as i64;
        let session = sessions_where(client, &format!("a.pid = {pid}"))?;
        if let Some(session) = session.into_iter().next() {
            holders.push(LockHolder {
                session,
                locks: text(&row, 1).split(", ").map(str::to_owned).collect(),
            });
        }
    }
    Ok(holders)
}

/// Client sessions of any database whose transaction has been open longer than `older_than_ms`.
pub fn long_transactions(
    client: &mut Client,
    older_than_ms: u64,
) -> Result<Vec<Session>, DriverError> {
    sessions_where(
        client,
        &format!(
            "a.pid <> pg_backend_pid() AND a.backend_type = 'client backend' AND a.xact_start IS NOT NULL \
             AND clock_timestamp() - a.xact_start > interval '{older_than_ms} milliseconds'"
        ),
    )
}

/// One streaming replica as the primary sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replica {
    pub name: String,
    pub address: String,
    pub state: String,
    /// `replay_lag`, when the server reports it.
    pub replay_lag_ms: Option<u64>,
    /// WAL not yet replayed on the replica.
    pub replay_lag_bytes: Option<u64>,
}

/// The replicas streaming from this server (empty when none, or on a standby).
pub fn replicas(client: &mut Client) -> Result<Vec<Replica>, DriverError> {
    Ok(rows(
        client,
        "SELECT coalesce(application_name, ''), coalesce(host(client_addr), 'local'), coalesce(state, ''), \
         extract(epoch FROM replay_lag) * 1000, \
         CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) END \
         FROM pg_stat_replication ORDER BY 1",
    )?
    .iter()
    .map(|row| Replica {
        name: text(row, 0),
        address: text(row, 1),
        state: text(row, 2),
        replay_lag_ms: millis(row, 3),
        replay_lag_bytes: number(row, 4).map(|v| v.max(0.0) as u64),
    })
    .collect())
}
