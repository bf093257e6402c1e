//! Holding `pg_restore` to `--restore-lock-timeout`. Every archive `pg_dump` writes starts with
//! `SET lock_timeout = 0`, which `pg_restore` runs after connecting, so a `lock_timeout` handed
//! to its session (`PGOPTIONS`) is undone and the restore would wait for ever behind a session
//! holding a lock. Instead, its server process is watched from another connection and its
//! statement cancelled once it has waited that long for a lock; the restore is one transaction,
//! so nothing of it stays.

use std::time::Duration;

use postgres::Client;

use crate::error::BackupError;
use crate::fingerprint::simple_rows;

/// The `application_name` a restore's session runs under, so its server process can be found.
pub(crate) fn application_name() -> String {
    format!("safeshift restore {}", std::process::id())
}

/// Cancels the statement of the restore session (`application`) if it has waited longer than
/// `lock_timeout` for a lock; returns what it waited for when it did.
pub(crate) fn give_up_on_long_lock_wait(
    watcher: &mut Client,
    application: &str,
    lock_timeout: Duration,
) -> Result<Option<String>, BackupError> {
    // `waitstart` exists from PostgreSQL 14; before, the statement's start stands in for it.
    let rows = simple_rows(
        watcher,
        &format!(
            "SELECT coalesce(l.relation::regclass::text, l.locktype), \
             array_to_string(pg_blocking_pids(a.pid), ', '), pg_cancel_backend(a.pid) \
             FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted \
             WHERE a.application_name = {} \
             AND coalesce((to_jsonb(l) ->> 'waitstart')::timestamptz, a.query_start) \
                 < clock_timestamp() - interval '{} milliseconds' \
             LIMIT 1",
            literal(application),
            lock_timeout.as_millis()
        ),
    )
    .map_err(BackupError::Database)?;
    Ok(rows.into_iter().next().map(|row| {
        let what = row[0].clone().unwrap_or_default();
        match row[1].as_deref() {
            Some(holders) if !holders.is_empty() => {
                format!("a lock on {what}, held by server process {holders}")
            }
            _ => format!("a lock on {what}"),
        }
    }))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The error of a restore given up on: what it waited for, that nothing was restored, and what
/// to do.
pub(crate) fn gave_up(waited_for: &str, lock_timeout: Duration, tool_message: &str) -> BackupError {
    BackupError::Tool {
        program: "pg_restore".into(),
        message: format!(
            "it waited {lock_timeout:?} (--restore-lock-timeout) for {waited_for} and was stopped; it runs in \
             one transaction, so nothing was restored. Run it again once that session is done, or allow a \
             longer wait ({tool_message})"
        ),
    }
}
