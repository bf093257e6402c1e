//! A runner killed while a statement that cannot run in a transaction is in flight. Such a
//! statement commits on its own, so the server may finish it after the runner is gone (its
//! progress never recorded), cut it off half-way (leaving something behind), or not have started
//! it. The next `up` must find out which, and say so truthfully: a statement whose effect is
//! present and valid is recorded as applied with an event, a leftover is cleaned up and the
//! statement run again, a half-done detach is finalised.
//!
//! The kill points are exact: the statement is held in its lock wait by a transaction the test
//! keeps open on its table, and its progress record by a row lock the test holds on the history.

mod common;

use std::time::Duration;

use common::{
    Project, Run, backend_alive, exit, kill, pg_history, pg_rows, pg_value, spawn_quiet, wait_until,
};
use safeshift_testkit::TestDatabase;

/// Generous: a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(45);

/// Where the runner is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// The statement finished on the server; the runner is killed while its progress record
    /// waits for a row lock on the history (the server process dies with it).
    AfterTheStatement,
    /// The statement waits for a transaction on its table; the runner is killed then, and the
    /// server cancels the statement within a second.
    DuringTheStatement,
}

fn row(version: &str, status: &str) -> (String, String, String, String) {
    (version.into(), "up".into(), status.into(), "migrate".into())
}

/// The server process running a statement whose text contains `needle`, once it waits for a lock.
fn waiting_backend(client: &mut postgres::Client, needle: &str) -> String {
    let mut backend = None;
    wait_until(
        &format!("a statement with `{needle}` waits for a lock"),
        DEADLINE,
        || {
            backend = pg_rows(
                client,
                &format!(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%{needle}%'"
                ),
            )
            .into_iter()
            .next()
            .and_then(|row| row[0].clone());
            backend.is_some()
        },
    );
    backend.unwrap()
}

/// Runs `up` and kills it at `point` in the statement containing `needle`, which waits for a
/// ROW EXCLUSIVE lock the test holds on `table` (every concurrent DDL statement waits for
/// writers). Returns once the killed runner's server process is gone.
fn kill_in_statement(
    db: &TestDatabase,
    project: &Project,
    needle: &str,
    table: &str,
    point: KillPoint,
) {
    let mut client = db.client();
    let mut writer = db.client();
    writer
        .batch_execute(&format!("BEGIN; LOCK TABLE {table} IN ROW EXCLUSIVE MODE"))
        .unwrap();
    let runner = spawn_quiet(project, &["--lock-timeout", "60s", "up"]);
    let backend = waiting_backend(&mut client, needle);
    match point {
        KillPoint::AfterTheStatement => {
            let mut holder = db.client();
            holder
                .batch_execute(
                    "BEGIN; SELECT 1 FROM safeshift.history WHERE status = 'running' FOR UPDATE",
                )
                .unwrap();
            writer.batch_execute("COMMIT").unwrap();
            let recording = waiting_backend(&mut client, "statements_applied");
            assert_eq!(recording, backend, "the progress record waits");
            kill(runner);
            wait_until("the killed runner's server process ends", DEADLINE, || {
                !backend_alive(&mut client, &backend)
            });
            holder.batch_execute("ROLLBACK").unwrap();
        }
        KillPoint::DuringTheStatement => {
            kill(runner);
            wait_until("the killed runner's server process ends", DEADLINE, || {
                !backend_alive(&mut client, &backend)
            });
            writer.batch_execute("ROLLBACK").unwrap();
        }
    }
}

/// `(name, valid)` of every index on `table`, by name.
fn indexes(client: &mut postgres::Client, table: &str) -> Vec<(String, bool)> {
    pg_rows(
        client,
        &format!(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = '{table}'::regclass ORDER BY 1"
        ),
    )
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].as_deref() == Some("t")))
    .collect()
}

/// `(kind, outcome, summary)` of every run event.
fn events(client: &mut postgres::Client) -> Vec<(String, String, String)> {
    if pg_value(
        client,
        "SELECT to_regclass('safeshift.history_events') IS NULL",
    ) == "t"
    {
        return Vec::new();
    }
    pg_rows(
        client,
        "SELECT kind, outcome, summary FROM safeshift.history_events ORDER BY id",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap(),
            r[1].clone().unwrap(),
            r[2].clone().unwrap(),
        )
    })
    .collect()
}

/// The statements the history says were applied by the last 0002 attempt, and its status.
fn last_attempt(client: &mut postgres::Client) -> (String, String) {
    let row = &pg_rows(
        client,
        "SELECT statements_applied, status FROM safeshift.history WHERE version = '0002' ORDER BY id DESC LIMIT 1",
    )[0];
    (row[0].clone().unwrap(), row[1].clone().unwrap())
}

/// 0001 creates `big` (with `extra`); 0002 runs `statement` without a transaction, then writes
/// a ledger row, so the test sees the statements after it run exactly once.
fn project_with(db: &TestDatabase, setup: &str, statement: &str) -> Project {
    let project = Project::postgres(db.url());
    project.migration(
        "0001_big.sql",
        &format!(
            "CREATE TABLE ledger (statement int NOT NULL);\n\
             CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL);\n\
             INSERT INTO big SELECT g, g % 100 FROM generate_series(1, 1000) g;\n{setup}"
        ),
        "DROP TABLE big; DROP TABLE ledger;",
    );
    project.write(
        "0002_statement.sql",
        format!(
            "-- migrate:up transaction:false\n{statement}\nINSERT INTO ledger VALUES (2);\n\n\
             -- migrate:down\nDELETE FROM ledger;\n"
        ),
    );
    project.run(&["up", "--to", "0001"]).expect(exit::OK);
    project
}

/// The rerun after the kill: succeeds, settles the killed attempt, and the statement after the
/// interrupted one runs exactly once.
fn rerun(project: &Project, client: &mut postgres::Client) -> Run {
    let rerun = project.run(&["up"]);
    rerun.expect(exit::OK);
    assert!(
        rerun
            .stderr
            .contains("never finished; recorded it as interrupted"),
        "{}",
        rerun.stderr
    );
    assert_eq!(
        pg_history(client),
        [
            row("0001", "succeeded"),
            row("0002", "failed"),
            row("0002", "succeeded")
        ]
    );
    assert_eq!(
        last_attempt(client),
        ("2".to_owned(), "succeeded".to_owned())
    );
    assert_eq!(
        pg_value(client, "SELECT count(*) FROM ledger WHERE statement = 2"),
        "1"
    );
    project.run(&["status", "--exit-code"]).expect(exit::OK);
    rerun
}

/// The settled attempt's message does not claim more than the runner knew: the statement in
/// flight ran outside a transaction, so whether it finished was unknown then.
fn assert_settled_truthfully(client: &mut postgres::Client) {
    let message = pg_value(
        client,
        "SELECT error_message FROM safeshift.history WHERE version = '0002' AND status = 'failed'",
    );
    assert!(message.starts_with("interrupted"), "{message}");
    assert!(
        message.contains("statement 1")
            && message.contains("outside a transaction")
            && message.contains("checks"),
        "the settled message says statement 1 may have finished and that the next run checks: {message}"
    );
}

#[test]
fn a_concurrent_index_build_that_finished_after_its_runner_died_is_recorded_as_applied() {
    let db = TestDatabase::new();
    let project = project_with(&db, "", "CREATE INDEX CONCURRENTLY big_n ON big (n, id);");
    kill_in_statement(
        &db,
        &project,
        "CREATE INDEX CONCURRENTLY",
        "big",
        KillPoint::AfterTheStatement,
    );
    let mut client = db.client();
    let oid = pg_value(&mut client, "SELECT 'big_n'::regclass::oid");
    assert_eq!(
        indexes(&mut client, "big"),
        [("big_n".to_owned(), true), ("big_pkey".to_owned(), true)],
        "the build finished on the server"
    );
    assert_eq!(
        last_attempt(&mut client),
        ("0".to_owned(), "running".to_owned())
    );

    let rerun = rerun(&project, &mut client);
    assert_settled_truthfully(&mut client);
    assert!(
        rerun.stdout.contains(
            "statement 1 is already in effect: index big_n exists, is valid and has the statement's definition; recorded it as applied without running it again"
        ),
        "{}",
        rerun.stdout
    );
    assert_eq!(
        pg_value(&mut client, "SELECT 'big_n'::regclass::oid"),
        oid,
        "the index was kept, not built again"
    );
    assert_eq!(
        indexes(&mut client, "big"),
        [("big_n".to_owned(), true), ("big_pkey".to_owned(), true)]
    );
    let events = events(&mut client);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "reconcile");
    assert_eq!(events[0].1, "succeeded");
    assert!(
        events[0]
            .2
            .contains("0002 statement 1 recorded as applied without running it again"),
        "{events:?}"
    );
}

/// An index of the statement's name with another definition is not the statement's work: the
/// rerun refuses to record it (and to build over it) and says what differs.
#[test]
fn an_index_of_the_same_name_but_another_definition_is_not_taken_for_the_statement() {
    let db = TestDatabase::new();
    let project = project_with(&db, "", "CREATE INDEX CONCURRENTLY big_n ON big (n, id);");
    kill_in_statement(
        &db,
        &project,
        "CREATE INDEX CONCURRENTLY",
        "big",
        KillPoint::AfterTheStatement,
    );
    let mut client = db.client();
    client
        .batch_execute("DROP INDEX big_n; CREATE INDEX big_n ON big (id)")
        .unwrap();
    let refused = project.run(&["up"]);
    refused.expect(exit::MIGRATION_FAILED);
    let stderr = refused
        .stderr
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        stderr.contains("index big_n exists with another definition"),
        "{}",
        refused.stderr
    );
    assert!(stderr.contains("USING btree (id)"), "{}", refused.stderr);
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM ledger"),
        "0",
        "nothing after the statement ran"
    );
    assert_eq!(
        last_attempt(&mut client),
        ("0".to_owned(), "failed".to_owned())
    );
}

#[test]
fn a_concurrent_index_build_cut_off_by_the_kill_is_dropped_and_built_again() {
    let db = TestDatabase::new();
    let project = project_with(&db, "", "CREATE INDEX CONCURRENTLY big_n ON big (n, id);");
    kill_in_statement(
        &db,
        &project,
        "CREATE INDEX CONCURRENTLY",
        "big",
        KillPoint::DuringTheStatement,
    );
    let mut client = db.client();
    assert_eq!(
        indexes(&mut client, "big"),
        [("big_n".to_owned(), false), ("big_pkey".to_owned(), true)],
        "the cancelled build left an INVALID index"
    );
    let rerun = rerun(&project, &mut client);
    assert_settled_truthfully(&mut client);
    assert!(
        rerun
            .stdout
            .contains("dropped the INVALID index big_n left by the failed attempt"),
        "{}",
        rerun.stdout
    );
    assert_eq!(
        indexes(&mut client, "big"),
        [("big_n".to_owned(), true), ("big_pkey".to_owned(), true)]
    );
}

#[test]
fn a_concurrent_index_drop_that_finished_after_its_runner_died_is_recorded_as_applied() {
    let db = TestDatabase::new();
    let project = project_with(
        &db,
        "CREATE INDEX big_n ON big (n);",
        "DROP INDEX CONCURRENTLY big_n;",
    );
    kill_in_statement(
        &db,
        &project,
        "DROP INDEX CONCURRENTLY",
        "big",
        KillPoint::AfterTheStatement,
    );
    let mut client = db.client();
    assert_eq!(indexes(&mut client, "big"), [("big_pkey".to_owned(), true)]);
    let rerun = rerun(&project, &mut client);
    assert!(
        rerun.stdout.contains(
            "statement 1 is already in effect: index big_n no longer exists; recorded it as applied without running it again"
        ),
        "{}",
        rerun.stdout
    );
    assert_eq!(events(&mut client).len(), 1);
}

#[test]
fn a_concurrent_reindex_cut_off_by_the_kill_leaves_no_ccnew_index_behind() {
    let db = TestDatabase::new();
    let project = project_with(
        &db,
        "CREATE INDEX big_n ON big (n);",
        "REINDEX INDEX CONCURRENTLY big_n;",
    );
    kill_in_statement(
        &db,
        &project,
        "REINDEX INDEX CONCURRENTLY",
        "big",
        KillPoint::DuringTheStatement,
    );
    let mut client = db.client();
    assert_eq!(
        indexes(&mut client, "big"),
        [
            ("big_n".to_owned(), true),
            ("big_n_ccnew".to_owned(), false),
            ("big_pkey".to_owned(), true)
        ],
        "the cancelled REINDEX left its new copy INVALID"
    );
    let rerun = rerun(&project, &mut client);
    assert!(
        rerun.stdout.contains(
            "dropped the INVALID index big_n_ccnew left by an interrupted REINDEX CONCURRENTLY; running statement 1 again"
        ),
        "{}",
        rerun.stdout
    );
    assert_eq!(
        indexes(&mut client, "big"),
        [("big_n".to_owned(), true), ("big_pkey".to_owned(), true)]
    );
}

/// 0001 makes `big` a partitioned table's partition instead (`parts` with `parts_1`).
fn partitioned_project(db: &TestDatabase) -> Project {
    project_with(
        db,
        "CREATE TABLE parts (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);\n\
         CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');",
        "ALTER TABLE parts DETACH PARTITION parts_1 CONCURRENTLY;",
    )
}

fn attached(client: &mut postgres::Client) -> String {
    pg_value(
        client,
        "SELECT coalesce((SELECT CASE WHEN inhdetachpending THEN 'pending' ELSE 'attached' END \
         FROM pg_inherits WHERE inhrelid = 'parts_1'::regclass), 'detached')",
    )
}

#[test]
fn a_concurrent_detach_that_finished_after_its_runner_died_is_recorded_as_applied() {
    let db = TestDatabase::new();
    let project = partitioned_project(&db);
    kill_in_statement(
        &db,
        &project,
        "DETACH PARTITION",
        "parts",
        KillPoint::AfterTheStatement,
    );
    let mut client = db.client();
    assert_eq!(attached(&mut client), "detached");
    let rerun = rerun(&project, &mut client);
    assert!(
        rerun.stdout.contains(
            "statement 1 is already in effect: parts_1 is no longer a partition of parts; recorded it as applied without running it again"
        ),
        "{}",
        rerun.stdout
    );
    assert_eq!(attached(&mut client), "detached");
}

#[test]
fn a_concurrent_detach_cut_off_by_the_kill_is_finalized() {
    let db = TestDatabase::new();
    let project = partitioned_project(&db);
    kill_in_statement(
        &db,
        &project,
        "DETACH PARTITION",
        "parts",
        KillPoint::DuringTheStatement,
    );
    let mut client = db.client();
    assert_eq!(attached(&mut client), "pending");
    let rerun = rerun(&project, &mut client);
    assert!(
        rerun.stdout.contains(
            "statement 1 was cut off half-way: parts_1 is still pending detach from parts; finishing it with ALTER TABLE \"parts\" DETACH PARTITION \"parts_1\" FINALIZE"
        ),
        "{}",
        rerun.stdout
    );
    assert_eq!(attached(&mut client), "detached");
}

/// Without a name the server picks one, so only the definition tells: a finished build is
/// recorded as applied rather than built twice (`big_n_id_idx1` beside `big_n_id_idx`), and a
/// cut-off one's INVALID index is dropped before the build runs again.
#[test]
fn an_unnamed_concurrent_index_build_is_recognised_by_its_definition() {
    for point in [KillPoint::AfterTheStatement, KillPoint::DuringTheStatement] {
        let db = TestDatabase::new();
        let project = project_with(&db, "", "CREATE INDEX CONCURRENTLY ON big (n, id);");
        kill_in_statement(&db, &project, "CREATE INDEX CONCURRENTLY", "big", point);
        let mut client = db.client();
        let valid = point == KillPoint::AfterTheStatement;
        assert_eq!(
            indexes(&mut client, "big"),
            [
                ("big_n_id_idx".to_owned(), valid),
                ("big_pkey".to_owned(), true)
            ],
            "{point:?}"
        );
        let rerun = rerun(&project, &mut client);
        let expected = if valid {
            "statement 1 is already in effect: index big_n_id_idx on big is valid and has the statement's definition"
        } else {
            "dropped the INVALID index big_n_id_idx left by the failed attempt; running statement 1 again"
        };
        assert!(
            rerun.stdout.contains(expected),
            "{point:?}\n{}",
            rerun.stdout
        );
        assert_eq!(
            indexes(&mut client, "big"),
            [
                ("big_n_id_idx".to_owned(), true),
                ("big_pkey".to_owned(), true)
            ],
            "{point:?}: one index, valid"
        );
    }
}
