//! An application that migrates itself through the `safeshift` crate, on a real PostgreSQL: the
//! same lint gate, lock-safe DDL and batched backfills as the command.

use std::path::Path;
use std::time::{Duration, Instant};

use safeshift::{DeployError, Error, Overrides, Project};
use safeshift_lint::RuleId;
use safeshift_testkit::TestDatabase;

fn value(client: &mut postgres::Client, sql: &str) -> String {
    client
        .simple_query(sql)
        .unwrap()
        .into_iter()
        .find_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no value from {sql}"))
}

/// An application directory with `safeshift.toml` and one migration.
fn application(dir: &Path, migration: (&str, &str)) {
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::write(dir.join("migrations").join(migration.0), migration.1).unwrap();
    std::fs::write(dir.join("safeshift.toml"), "directory = \"migrations\"\n").unwrap();
}

fn project(dir: &Path, url: String) -> Project {
    Project::load(&Overrides {
        config: Some(dir.join("safeshift.toml")),
        database_url: Some(url),
        ..Overrides::default()
    })
    .unwrap()
}

#[test]
fn ddl_waits_out_a_long_transaction_outside_the_lock_queue_and_the_backfill_runs_in_batches() {
    let db = TestDatabase::new();
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
             INSERT INTO accounts SELECT g, 'User' || g || '@Example.com' FROM generate_series(1, 2000) g;",
        )
        .unwrap();
    let app = tempfile::tempdir().unwrap();
    application(
        app.path(),
        (
            "0001_normalized_email.sql",
            "-- migrate:up transaction:false\n\
             ALTER TABLE accounts ADD COLUMN email_normalized text;\n\
             -- safeshift:backfill batch=500 min-batch=500 max-batch=500\n\
             UPDATE accounts SET email_normalized = lower(email);\n\n\
             -- migrate:down\nALTER TABLE accounts DROP COLUMN email_normalized;\n",
        ),
    );
    let project = project(app.path(), db.url());

    // A transaction that has read the table stays open: the ALTER cannot have its lock yet.
    let mut reader = db.client();
    reader
        .batch_execute("BEGIN; SELECT * FROM accounts LIMIT 1")
        .unwrap();
    // Older than the DDL's own lock_timeout (100 ms): a long one, waited for outside the queue.
    std::thread::sleep(Duration::from_millis(300));
    let migrating = std::thread::spawn(move || safeshift::migrate(&project));

    // While the migration waits, the application reads and writes, and nothing queues for a
    // lock on the table behind the ALTER.
    let started = Instant::now();
    while value(
        &mut client,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'safeshift%' AND datname = current_database()",
    ) == "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the migration never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..10 {
        client
            .batch_execute(
                "SET statement_timeout = '5s'; SELECT count(*) FROM accounts; \
                 UPDATE accounts SET email = email WHERE id = 1",
            )
            .unwrap();
        assert_eq!(
            value(
                &mut client,
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'accounts'::regclass"
            ),
            "0",
            "nothing queues for a lock on accounts"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!migrating.is_finished(), "the ALTER waited for the reader");
    reader.batch_execute("COMMIT").unwrap();

    let applied = migrating.join().unwrap().unwrap();
    assert_eq!(applied.report.migrations.len(), 1);
    assert_eq!(
        value(
            &mut client,
            "SELECT count(*) FROM accounts WHERE email_normalized = lower(email)"
        ),
        "2000"
    );
    // The UPDATE ran as a backfill in batches of 500 (and one that found the end), not as one
    // statement over every row.
    assert_eq!(
        value(
            &mut client,
            "SELECT (batches >= 4) || ' ' || rows_updated FROM safeshift.backfills"
        ),
        "true 2000"
    );
}

#[test]
fn the_lint_gate_refuses_an_unacknowledged_high_risk_migration() {
    let db = TestDatabase::new();
    let mut client = db.client();
    // A blocking index build on a table this small is low risk when the gate knows its size;
    // emptying a table with data is high whatever its size.
    client
        .batch_execute(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
             INSERT INTO accounts SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 50) g;
             ANALYZE accounts",
        )
        .unwrap();
    let app = tempfile::tempdir().unwrap();
    application(
        app.path(),
        (
            "0001_reset_accounts.sql",
            "-- migrate:up\nTRUNCATE accounts;\n\n-- migrate:down\nSELECT 1;\n",
        ),
    );
    let project = project(app.path(), db.url());
    let error = safeshift::migrate(&project).unwrap_err();
    let Error::Deploy(failure) = &error else {
        panic!("not a deployment failure: {error}");
    };
    let DeployError::Blocked { blocked, .. } = &failure.error else {
        panic!("not refused by the lint gate: {error}");
    };
    assert_eq!(
        blocked.report.files[0].findings[0].rule,
        RuleId::TruncatingTable
    );
    assert_eq!(blocked.grading, safeshift_lint::Grading::TableSizes);
    assert!(error.to_string().contains("above medium risk"), "{error}");
    assert_eq!(
        value(&mut client, "SELECT count(*) FROM accounts"),
        "50",
        "nothing was applied"
    );
}
