//! A runner killed with SIGKILL in the middle of a migration, on PostgreSQL (advisory lock
//! directly, lease lock through PgBouncer) and on SQLite: the history says what happened, no
//! lock is left behind, and the next `up` finishes the job with every statement applied once.
//!
//! The long statement is `pg_sleep` for 60 s while the table `slow_marker` exists and 0 s once
//! the test drops it, so the same file is slow for the killed run and quick for the next.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{
    Project, Run, advisory_locks, backend_alive, backend_running, exit, kill, live_leases,
    pg_history, pg_rows, pg_value, spawn_up, wait_until,
};
use rusqlite::types::ValueRef;
use safeshift_testkit::TestDatabase;

/// Generous: a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(45);
/// Well under the 60 s the killed statement would run: the server must notice the dead client.
const BACKEND_GONE_WITHIN: Duration = Duration::from_secs(30);
/// The lease lasts this long without a heartbeat (written to safeshift.toml).
const LEASE: &str = "2s";

const SLOW_STATEMENT: &str =
    "SELECT pg_sleep(CASE WHEN to_regclass('public.slow_marker') IS NULL THEN 0 ELSE 60 END);";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Straight to PostgreSQL, with the default session advisory lock.
    DirectAdvisory,
    /// Through the transaction-pooling PgBouncer, with the lease lock.
    PgBouncerLease,
}

impl Route {
    fn project(self, db: &TestDatabase) -> Project {
        let project = match self {
            Route::DirectAdvisory => Project::postgres(db.url()),
            Route::PgBouncerLease => Project::postgres(db.pgbouncer_url()),
        };
        let mode = match self {
            Route::DirectAdvisory => "advisory",
            Route::PgBouncerLease => "lease",
        };
        std::fs::write(
            project.path().join("safeshift.toml"),
            format!("[lock]\nmode = \"{mode}\"\nlease = \"{LEASE}\"\n"),
        )
        .unwrap();
        project
    }
}

/// `(version, statement)` rows of `ledger` with how often each was written.
fn ledger(client: &mut postgres::Client) -> Vec<(String, String, String)> {
    pg_rows(
        client,
        "SELECT version, statement, count(*) FROM ledger GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .into_iter()
    .map(|row| {
        (
            row[0].clone().unwrap(),
            row[1].clone().unwrap(),
            row[2].clone().unwrap(),
        )
    })
    .collect()
}

fn once(version: &str, statement: u32) -> (String, String, String) {
    (version.into(), statement.to_string(), "1".into())
}

fn row(version: &str, status: &str) -> (String, String, String, String) {
    (version.into(), "up".into(), status.into(), "migrate".into())
}

/// 0001 creates the ledger; 0002 writes ledger rows around the slow statement (statement 3 of
/// 4), in one transaction or, with `transaction:false`, one statement at a time; 0003 comes
/// after it.
fn write_migrations(project: &Project, transactional: bool) {
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version text NOT NULL, statement int NOT NULL);\nINSERT INTO ledger VALUES ('0001', 1);",
        "DROP TABLE ledger;",
    );
    let options = if transactional {
        ""
    } else {
        " transaction:false"
    };
    project.write(
        "0002_slow.sql",
        format!(
            "-- migrate:up{options}\nINSERT INTO ledger VALUES ('0002', 1);\nINSERT INTO ledger VALUES ('0002', 2);\n\
             {SLOW_STATEMENT}\nINSERT INTO ledger VALUES ('0002', 4);\n\n-- migrate:down\nDELETE FROM ledger WHERE version = '0002';\n"
        ),
    );
    project.migration(
        "0003_after.sql",
        "INSERT INTO ledger VALUES ('0003', 1);",
        "DELETE FROM ledger WHERE version = '0003';",
    );
}

fn killed_mid_migration(route: Route, transactional: bool) {
    let db = TestDatabase::new();
    let project = route.project(&db);
    write_migrations(&project, transactional);
    let mut client = db.client();
    client.batch_execute("CREATE TABLE slow_marker ()").unwrap();

    let runner = spawn_up(&project);
    let mut backend = None;
    wait_until("the slow statement runs", DEADLINE, || {
        backend = backend_running(&mut client, "slow_marker");
        backend.is_some()
    });
    let backend = backend.unwrap();
    kill(runner);

    // The history tells the truth before anyone settles it. A transactional migration writes
    // its row inside its own transaction, so the killed attempt left none: nothing of it was
    // applied and it is still pending. A non-transactional one is marked running, with the
    // statements it committed.
    let status = project.run(&["status", "--json"]);
    status.expect(exit::OK);
    if transactional {
        assert_eq!(pg_history(&mut client), [row("0001", "succeeded")]);
        assert_eq!(status.json()["entries"][1]["state"], "pending");
    } else {
        assert_eq!(
            pg_history(&mut client),
            [row("0001", "succeeded"), row("0002", "running")]
        );
        let attempt = &pg_rows(
            &mut client,
            "SELECT transactional, statements_applied, statements_total, finished_at IS NULL FROM safeshift.history WHERE version = '0002'",
        )[0];
        assert_eq!(
            attempt
                .iter()
                .map(|v| v.as_deref().unwrap())
                .collect::<Vec<_>>(),
            ["f", "2", "4", "t"]
        );
        assert_eq!(status.json()["entries"][1]["state"], "running");
    }

    // The server notices the dead client well before the 60 s statement would end, so the
    // killed run's transaction and locks go away. A statement of a non-transactional migration
    // runs in a transaction of its own that asks the server to check for a dead client, which
    // works through a transaction pooler too.
    wait_until(
        "the killed runner's server process ends",
        BACKEND_GONE_WITHIN,
        || !backend_alive(&mut client, &backend),
    );
    assert_eq!(
        advisory_locks(&mut client),
        0,
        "the advisory lock died with the session"
    );
    if route == Route::PgBouncerLease {
        wait_until("the killed runner's lease expires", DEADLINE, || {
            live_leases(&mut client) == 0
        });
    }
    let committed = if transactional {
        vec![once("0001", 1)]
    } else {
        vec![once("0001", 1), once("0002", 1), once("0002", 2)]
    };
    assert_eq!(
        ledger(&mut client),
        committed,
        "only what was committed before the kill is there"
    );

    // The next run settles the dead attempt and finishes the job.
    client.batch_execute("DROP TABLE slow_marker").unwrap();
    let next = project.run(&["up"]);
    next.expect(exit::OK);
    if transactional {
        assert_eq!(
            pg_history(&mut client),
            [
                row("0001", "succeeded"),
                row("0002", "succeeded"),
                row("0003", "succeeded")
            ]
        );
    } else {
        assert!(
            next.stderr
                .contains("never finished; recorded it as interrupted"),
            "{}",
            next.stderr
        );
        assert!(
            next.stdout.contains("resuming at statement 3"),
            "{}",
            next.stdout
        );
        assert_eq!(
            pg_history(&mut client),
            [
                row("0001", "succeeded"),
                row("0002", "failed"),
                row("0002", "succeeded"),
                row("0003", "succeeded")
            ]
        );
        let settled = &pg_rows(
            &mut client,
            "SELECT error_message, statements_applied, finished_at IS NOT NULL FROM safeshift.history WHERE version = '0002' ORDER BY id LIMIT 1",
        )[0];
        let message = settled[0].as_deref().unwrap();
        assert!(message.starts_with("interrupted"), "{message}");
        assert!(message.contains("after 2 of 4 statement(s)"), "{message}");
        assert_eq!(settled[1].as_deref(), Some("2"));
        assert_eq!(settled[2].as_deref(), Some("t"));
    }
    assert_eq!(
        ledger(&mut client),
        [
            once("0001", 1),
            once("0002", 1),
            once("0002", 2),
            once("0002", 4),
            once("0003", 1)
        ],
        "every statement ran exactly once in the end"
    );
    assert_eq!(advisory_locks(&mut client), 0);
    assert_eq!(live_leases(&mut client), 0);
    project.run(&["status", "--exit-code"]).expect(exit::OK);
}

#[test]
fn killed_in_a_transactional_migration_with_the_advisory_lock() {
    killed_mid_migration(Route::DirectAdvisory, true);
}

#[test]
fn killed_in_a_transactional_migration_through_pgbouncer_with_the_lease_lock() {
    killed_mid_migration(Route::PgBouncerLease, true);
}

#[test]
fn killed_in_a_non_transactional_migration_with_the_advisory_lock() {
    killed_mid_migration(Route::DirectAdvisory, false);
}

#[test]
fn killed_in_a_non_transactional_migration_through_pgbouncer_with_the_lease_lock() {
    killed_mid_migration(Route::PgBouncerLease, false);
}

/// Rows of a query on the SQLite file, as text.
fn sqlite_rows(path: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let connection = rusqlite::Connection::open(path).expect("open the SQLite file");
    let mut statement = connection
        .prepare(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            (0..columns)
                .map(|i| {
                    row.get_ref(i).map(|value| match value {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string()),
                        ValueRef::Real(x) => Some(x.to_string()),
                        ValueRef::Text(text) | ValueRef::Blob(text) => {
                            Some(String::from_utf8_lossy(text).into_owned())
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Whether another connection holds the SQLite file's write lock (an open write transaction).
fn sqlite_write_locked(path: &Path) -> bool {
    let connection = rusqlite::Connection::open(path).expect("open the SQLite file");
    connection.busy_timeout(Duration::ZERO).unwrap();
    match connection.execute_batch("BEGIN IMMEDIATE; ROLLBACK") {
        Ok(()) => false,
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            true
        }
        Err(error) => panic!("probing the write lock: {error}"),
    }
}

#[test]
fn killed_in_a_transactional_migration_on_sqlite() {
    let project = Project::sqlite();
    let database = project.path().join("app.db");
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version text NOT NULL, statement int NOT NULL);\nCREATE TABLE slow_marker (id int);",
        "DROP TABLE ledger;",
    );
    // Counts to a billion while slow_marker exists (minutes), to 1 once it is gone.
    project.migration(
        "0002_slow.sql",
        "INSERT INTO ledger VALUES ('0002', 1);\n\
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n \
         WHERE x < (SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'slow_marker') THEN 1000000000 ELSE 1 END)) \
         SELECT count(*) FROM n;\n\
         INSERT INTO ledger VALUES ('0002', 3);",
        "DELETE FROM ledger WHERE version = '0002';",
    );
    let runner = spawn_up(&project);
    // 0001 is applied and 0002's transaction has written (it holds the database's write
    // lock): the runner is in the counting statement.
    wait_until("the slow statement runs", DEADLINE, || {
        database.exists()
            && sqlite_rows(&database, "SELECT count(*) FROM sqlite_master WHERE name = 'safeshift_history'")[0][0].as_deref()
                == Some("1")
            && sqlite_rows(&database, "SELECT count(*) FROM safeshift_history WHERE version = '0001' AND status = 'succeeded'")[0][0]
                .as_deref()
                == Some("1")
            && sqlite_write_locked(&database)
    });
    kill(runner);

    // The OS released the file lock with the process.
    let lock_file = std::fs::File::open(project.path().join("app.db.safeshift-lock"))
        .expect("the lock file exists");
    lock_file
        .try_lock()
        .expect("the run lock's file lock is free after the kill");
    lock_file.unlock().unwrap();
    // Opening the database rolls the hot journal back: nothing of 0002 is there, its history
    // row included (it is written in the migration's transaction).
    assert_eq!(
        sqlite_rows(&database, "SELECT count(*) FROM ledger")[0][0].as_deref(),
        Some("0")
    );
    assert_eq!(
        sqlite_rows(
            &database,
            "SELECT version, status FROM safeshift_history ORDER BY id"
        ),
        [vec![Some("0001".to_owned()), Some("succeeded".to_owned())]]
    );

    rusqlite::Connection::open(&database)
        .unwrap()
        .execute_batch("DROP TABLE slow_marker")
        .unwrap();
    let next: Run = project.run(&["up"]);
    next.expect(exit::OK);
    let history = sqlite_rows(
        &database,
        "SELECT version, status, substr(coalesce(error_message, ''), 1, 11) FROM safeshift_history ORDER BY id",
    );
    let expected: Vec<Vec<Option<String>>> = [("0001", "succeeded", ""), ("0002", "succeeded", "")]
        .iter()
        .map(|(v, s, e)| {
            vec![
                Some((*v).to_owned()),
                Some((*s).to_owned()),
                Some((*e).to_owned()),
            ]
        })
        .collect();
    assert_eq!(history, expected);
    assert_eq!(
        sqlite_rows(
            &database,
            "SELECT version, statement, count(*) FROM ledger GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        [
            vec![
                Some("0002".to_owned()),
                Some("1".to_owned()),
                Some("1".to_owned())
            ],
            vec![
                Some("0002".to_owned()),
                Some("3".to_owned()),
                Some("1".to_owned())
            ]
        ]
    );
}

/// Through PgBouncer (lease lock), a killed runner's non-transactional statement keeps running
/// on the server and commits when it ends. The next run must not apply it a second time
/// meanwhile. Fails today: the next run resumes as soon as the lease expires and runs the
/// statement again while the first execution is still going, so both commit.
#[test]
fn a_statement_left_running_by_a_killed_runner_is_not_applied_again() {
    let db = TestDatabase::new();
    let project = Route::PgBouncerLease.project(&db);
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version text NOT NULL, statement int NOT NULL);",
        "DROP TABLE ledger;",
    );
    project.write(
        "0002_backfill.sql",
        "-- migrate:up transaction:false\n\
         INSERT INTO ledger SELECT '0002', 1 FROM pg_sleep(CASE WHEN to_regclass('public.slow_marker') IS NULL THEN 0 ELSE 8 END);\n\n\
         -- migrate:down\nDELETE FROM ledger;\n",
    );
    let mut client = db.client();
    client.batch_execute("CREATE TABLE slow_marker ()").unwrap();
    let runner = spawn_up(&project);
    let mut backend = None;
    wait_until("the slow statement runs", DEADLINE, || {
        backend = backend_running(&mut client, "slow_marker");
        backend.is_some()
    });
    let backend = backend.unwrap();
    kill(runner);
    client.batch_execute("DROP TABLE slow_marker").unwrap();
    wait_until("the killed runner's lease expires", DEADLINE, || {
        live_leases(&mut client) == 0
    });
    let next = project.run(&["up"]);
    wait_until("the killed runner's server process ends", DEADLINE, || {
        !backend_alive(&mut client, &backend)
    });
    next.expect(exit::OK);
    assert_eq!(
        ledger(&mut client),
        [once("0002", 1)],
        "the statement was applied twice"
    );
}

/// A non-transactional statement commits on its own and its progress is recorded by a second
/// statement; a runner killed between the two leaves a statement applied but not recorded, and
/// the next run applies it again. The test holds the history row locked so the runner stops
/// exactly there. Fails today.
#[test]
fn a_statement_killed_before_its_progress_was_recorded_is_not_applied_again() {
    let db = TestDatabase::new();
    let project = Route::DirectAdvisory.project(&db);
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version text NOT NULL, statement int NOT NULL);",
        "DROP TABLE ledger;",
    );
    project.write(
        "0002_backfill.sql",
        "-- migrate:up transaction:false\n\
         DO $$ BEGIN WHILE NOT (SELECT open FROM gate) LOOP PERFORM pg_sleep(0.02); END LOOP; INSERT INTO ledger VALUES ('0002', 1); END $$;\n\
         INSERT INTO ledger VALUES ('0002', 2);\n\n-- migrate:down\nDELETE FROM ledger;\n",
    );
    let mut client = db.client();
    let mut holder = db.client();
    client
        .batch_execute("CREATE TABLE gate (open boolean NOT NULL); INSERT INTO gate VALUES (false)")
        .unwrap();
    let runner = project
        .command(&["--lock-timeout", "60s", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start safeshift");
    let mut backend = None;
    wait_until("statement 1 runs", DEADLINE, || {
        backend = backend_running(&mut client, "FROM gate");
        backend.is_some()
    });
    let backend = backend.unwrap();
    holder
        .batch_execute("BEGIN; SELECT 1 FROM safeshift.history WHERE version = '0002' FOR UPDATE")
        .unwrap();
    client.batch_execute("UPDATE gate SET open = true").unwrap();
    wait_until(
        "the progress update waits for the row lock",
        DEADLINE,
        || {
            pg_value(
                &mut client,
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = {backend} AND wait_event_type = 'Lock'"
                ),
            ) != "0"
        },
    );
    kill(runner);
    wait_until(
        "the killed runner's server process ends",
        BACKEND_GONE_WITHIN,
        || !backend_alive(&mut client, &backend),
    );
    holder.batch_execute("ROLLBACK").unwrap();
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        ledger(&mut client),
        [once("0002", 1), once("0002", 2)],
        "statement 1 was applied twice"
    );
}

/// The same for DDL that `up` runs lock-safely (short lock_timeout, retries): the statement and
/// its progress record commit together, so a runner killed while the record waits leaves the
/// column not added, and the next run adds it once (a second `ADD COLUMN` would fail).
#[test]
fn lock_safe_ddl_killed_before_its_progress_was_recorded_is_not_applied_again() {
    let db = TestDatabase::new();
    let project = Route::DirectAdvisory.project(&db);
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version text NOT NULL, statement int NOT NULL);",
        "DROP TABLE ledger;",
    );
    project.write(
        "0002_note.sql",
        "-- migrate:up transaction:false\n\
         ALTER TABLE ledger ADD COLUMN note text;\n\
         INSERT INTO ledger VALUES ('0002', 2);\n\n-- migrate:down\nALTER TABLE ledger DROP COLUMN note;\n",
    );
    project.run(&["up", "--to", "0001"]).expect(exit::OK);
    let mut client = db.client();
    let mut holder = db.client();
    let mut blocker = db.client();
    // The ALTER waits behind a reader, so the test can hold the attempt's history row before
    // the statement runs.
    blocker
        .batch_execute("BEGIN; LOCK TABLE ledger IN ACCESS SHARE MODE")
        .unwrap();
    let runner = project
        .command(&["--lock-timeout", "60s", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start safeshift");
    wait_until("the 0002 attempt is recorded as running", DEADLINE, || {
        pg_value(
            &mut client,
            "SELECT count(*) FROM safeshift.history WHERE version = '0002'",
        ) != "0"
    });
    holder
        .batch_execute("BEGIN; SELECT 1 FROM safeshift.history WHERE version = '0002' FOR UPDATE")
        .unwrap();
    blocker.batch_execute("COMMIT").unwrap();
    let mut backend = None;
    wait_until(
        "the progress record waits for the row lock",
        DEADLINE,
        || {
            backend = pg_rows(
                &mut client,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%statements_applied%'",
            )
            .into_iter()
            .next()
            .and_then(|row| row[0].clone());
            backend.is_some()
        },
    );
    let backend = backend.unwrap();
    kill(runner);
    wait_until(
        "the killed runner's server process ends",
        BACKEND_GONE_WITHIN,
        || !backend_alive(&mut client, &backend),
    );
    holder.batch_execute("ROLLBACK").unwrap();
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'ledger' AND column_name = 'note'"
        ),
        "1"
    );
    assert_eq!(ledger(&mut client), [once("0002", 2)]);
}
