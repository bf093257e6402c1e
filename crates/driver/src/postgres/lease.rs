//! The lease lock: a row in `{schema}.{table}_lock` with an expiry, renewed by a heartbeat on a
//! connection of its own. It needs no session state, so it works through PgBouncer's
//! transaction pooling; a killed runner's lease runs out and the next runner takes it over.

use std::time::Duration;

use postgres::{Client, SimpleQueryMessage};
use postgres_protocol::escape::escape_identifier;

use crate::Dialect;
use crate::history::HistoryLocation;
use crate::history_sql::literal;
use crate::lease::{Keeper, LOCK_NAME};
use crate::lock::LockRequest;

fn lock_table(quoted_schema: &str, location: &HistoryLocation) -> String {
    format!(
        "{quoted_schema}.{}",
        escape_identifier(&format!("{}_lock", location.table))
    )
}

/// Creates the lock table if needed. Concurrent runners serialise on a transaction-scoped
/// advisory lock, which (unlike a session lock) works through a transaction pooler.
/// `create_schema` is the statement creating the schema, or empty when it exists.
pub(crate) fn bootstrap_sql(
    key: i64,
    create_schema: &str,
    quoted_schema: &str,
    location: &HistoryLocation,
) -> String {
    format!(
        "BEGIN; SELECT pg_advisory_xact_lock({key}); {create_schema} \
         CREATE TABLE IF NOT EXISTS {table} (name text PRIMARY KEY, run_id text NOT NULL, holder text NOT NULL, \
         acquired_at timestamptz NOT NULL, renewed_at timestamptz NOT NULL, expires_at timestamptz NOT NULL); COMMIT",
        table = lock_table(quoted_schema, location)
    )
}

/// The lock table's qualified, quoted name as a literal, for `to_regclass`.
pub(crate) fn lock_table_literal(quoted_schema: &str, location: &HistoryLocation) -> String {
    literal(Dialect::Postgres, &lock_table(quoted_schema, location))
}

/// Takes the lease if it is free, expired, or already ours; returns a row only on success.
pub(crate) fn acquire_sql(
    quoted_schema: &str,
    location: &HistoryLocation,
    request: &LockRequest,
) -> String {
    let lease_ms = request.lease.as_millis();
    format!(
        "INSERT INTO {table} AS l (name, run_id, holder, acquired_at, renewed_at, expires_at) \
         VALUES ({name}, {run_id}, {holder}, clock_timestamp(), clock_timestamp(), clock_timestamp() + interval '{lease_ms} milliseconds') \
         ON CONFLICT (name) DO UPDATE SET run_id = excluded.run_id, holder = excluded.holder, \
         acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at \
         WHERE l.expires_at < clock_timestamp() OR l.run_id = excluded.run_id RETURNING run_id",
        table = lock_table(quoted_schema, location),
        name = literal(Dialect::Postgres, LOCK_NAME),
        run_id = literal(Dialect::Postgres, &request.run_id),
        holder = literal(Dialect::Postgres, &request.holder),
    )
}

pub(crate) fn holder_sql(quoted_schema: &str, location: &HistoryLocation) -> String {
    format!(
        "SELECT holder, run_id, to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
         to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM {} WHERE name = {}",
        lock_table(quoted_schema, location),
        literal(Dialect::Postgres, LOCK_NAME)
    )
}

/// The holder of a lease that has not expired.
pub(crate) fn live_holder_sql(quoted_schema: &str, location: &HistoryLocation) -> String {
    format!(
        "{} AND expires_at > clock_timestamp()",
        holder_sql(quoted_schema, location)
    )
}

/// A held lease and its heartbeat.
pub(crate) struct Lease {
    run_id: String,
    lease: Duration,
    heartbeat: Keeper,
}

impl Lease {
    pub fn start(
        mut connection: Client,
        run_id: String,
        lease: Duration,
        quoted_schema: String,
        location: HistoryLocation,
    ) -> Lease {
        let renew = renew_sql_for(&quoted_schema, &location, &run_id, lease);
        let heartbeat = crate::lease::heartbeat(lease, move || {
            connection.simple_query(&renew).map(|messages| {
                messages
                    .iter()
                    .any(|m| matches!(m, SimpleQueryMessage::Row(_)))
            })
        });
        Lease {
            run_id,
            lease,
            heartbeat,
        }
    }

    /// Why the lease was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.heartbeat.lost()
    }

    /// Renewal as a statement that returns `run_lock_held` only while the lease is ours.
    pub fn renew_sql(&self, quoted_schema: &str, location: &HistoryLocation) -> String {
        renew_sql_for(quoted_schema, location, &self.run_id, self.lease)
    }

    pub fn release_sql(&self, quoted_schema: &str, location: &HistoryLocation) -> String {
        format!(
            "DELETE FROM {} WHERE name = {} AND run_id = {}",
            lock_table(quoted_schema, location),
            literal(Dialect::Postgres, LOCK_NAME),
            literal(Dialect::Postgres, &self.run_id)
        )
    }

    /// Stops the heartbeat and waits for it.
    pub fn stop(self) {
        self.heartbeat.stop();
    }
}

fn renew_sql_for(
    quoted_schema: &str,
    location: &HistoryLocation,
    run_id: &str,
    lease: Duration,
) -> String {
    format!(
        "UPDATE {} SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + interval '{} milliseconds' \
         WHERE name = {} AND run_id = {} RETURNING 1 AS run_lock_held",
        lock_table(quoted_schema, location),
        lease.as_millis(),
        literal(Dialect::Postgres, LOCK_NAME),
        literal(Dialect::Postgres, run_id)
    )
}
