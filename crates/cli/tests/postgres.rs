//! Every command against a real PostgreSQL 15, plus what only PostgreSQL has: transactional
//! DDL with the history row in the same transaction, lock and statement timeouts with retries,
//! CONCURRENTLY outside transactions, TLS, and secrets kept out of every output.

mod common;

use std::time::{Duration, Instant};

use common::{
    Project, exit, pg_history, pg_rows, pg_table_exists, pg_value, postgres_snapshot_settings,
};
use safeshift_testkit::TestDatabase;

fn project(db: &TestDatabase) -> Project {
    Project::postgres(db.url())
}

fn h(version: &str, direction: &str, status: &str) -> (String, String, String, String) {
    (
        version.into(),
        direction.into(),
        status.into(),
        "migrate".into(),
    )
}

#[test]
fn up_down_status_history_on_postgres() {
    let db = TestDatabase::new();
    let project = project(&db);
    project
        .migration("0001_accounts.sql", "CREATE TABLE accounts (id bigint PRIMARY KEY);", "DROP TABLE accounts;")
        .migration(
            "0002_orders.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));\nCREATE INDEX orders_account_idx ON orders (account_id);",
            "DROP TABLE orders;",
        );
    project
        .run(&["status", "--exit-code"])
        .expect(exit::PENDING);
    let mut client = db.client();
    assert!(
        !pg_table_exists(&mut client, "safeshift.history"),
        "status must not create the history"
    );
    project.run(&["up"]).expect(exit::OK);
    assert!(pg_table_exists(&mut client, "public.orders"));
    project.run(&["down"]).expect(exit::OK);
    assert!(!pg_table_exists(&mut client, "public.orders"));
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        pg_history(&mut client),
        [
            h("0001", "up", "succeeded"),
            h("0002", "up", "succeeded"),
            h("0002", "down", "succeeded"),
            h("0002", "up", "succeeded")
        ]
    );
    let status = project.run(&["status", "--json"]).json();
    assert_eq!(status["engine"], "postgres");
    assert!(
        status["server_version"]
            .as_str()
            .unwrap()
            .starts_with("15.")
    );
    assert_eq!(status["pending"], 0);
    let row = &pg_rows(
        &mut client,
        "SELECT transactional, statements_total, statements_applied, db_user, finished_at IS NOT NULL, duration_ms IS NOT NULL FROM safeshift.history WHERE version = '0002' ORDER BY id LIMIT 1",
    )[0];
    assert_eq!(
        row.iter()
            .map(|v| v.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["t", "2", "2", "postgres", "t", "t"]
    );
    let history = project.run(&["history", "--version", "0002"]);
    history.expect(exit::OK);
    assert_eq!(
        history
            .stdout
            .lines()
            .filter(|l| l.contains(" 0002 "))
            .count(),
        3,
        "{}",
        history.stdout
    );
}

#[test]
fn a_failed_migration_leaves_no_trace_but_its_failure_row() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration(
        "0001_partial.sql",
        "CREATE TABLE first (id int);\nCREATE TABLE second (id int);\nALTER TABLE first ADD COLUMN oops nosuchtype;",
        "DROP TABLE second; DROP TABLE first;",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    let status = project.run(&["status"]);
    status.expect(exit::OK);
    postgres_snapshot_settings(&project, db.name()).bind(|| {
        insta::assert_snapshot!("postgres_failed_up", failed.stderr);
        insta::assert_snapshot!("postgres_status_after_a_failure", status.stdout);
    });
    let mut client = db.client();
    assert!(
        !pg_table_exists(&mut client, "public.first"),
        "DDL must be rolled back with the transaction"
    );
    assert_eq!(pg_history(&mut client), [h("0001", "up", "failed")]);
    let row = &pg_rows(
        &mut client,
        "SELECT error_sqlstate, error_line, statements_applied, error_message FROM safeshift.history",
    )[0];
    assert_eq!(row[0].as_deref(), Some("42704"));
    assert_eq!(row[1].as_deref(), Some("4"));
    assert_eq!(row[2].as_deref(), Some("0"));
    assert!(row[3].as_deref().unwrap().contains("nosuchtype"));
}

/// The last statement of a migration's transaction is sent with its history row and the
/// COMMIT: what fails there is still told apart and nothing of it stays.
#[test]
fn the_last_statement_commits_with_its_history_row() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration(
        "0001_slow.sql",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(0.3);",
        "DROP TABLE slow;",
    );
    project.run(&["up"]).expect(exit::OK);
    let mut client = db.client();
    let row = &pg_rows(
        &mut client,
        "SELECT status, statements_applied, duration_ms, finished_at >= started_at FROM safeshift.history",
    )[0];
    assert_eq!(row[0].as_deref(), Some("succeeded"));
    assert_eq!(row[1].as_deref(), Some("2"));
    let duration: i64 = row[2].as_deref().unwrap().parse().unwrap();
    assert!(
        (300..10_000).contains(&duration),
        "the server times the attempt, its last statement included: {duration} ms"
    );
    assert_eq!(row[3].as_deref(), Some("t"));

    // A deferred foreign key fails at COMMIT: nothing of the migration stays.
    project.migration(
        "0002_deferred.sql",
        "CREATE TABLE parent (id int PRIMARY KEY);\n\
         CREATE TABLE child (parent_id int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);\n\
         INSERT INTO child VALUES (1);",
        "DROP TABLE child; DROP TABLE parent;",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    assert!(
        failed.stderr.contains("SQLSTATE 23503"),
        "{}",
        failed.stderr
    );
    assert!(!pg_table_exists(&mut client, "public.child"));
    assert_eq!(
        pg_history(&mut client),
        [h("0001", "up", "succeeded"), h("0002", "up", "failed")]
    );

    // A last statement the grammar rejects is reported with its own error and line, not as a
    // fault in what follows it.
    project.remove("0002_deferred.sql");
    project.migration(
        "0002_unclosed.sql",
        "CREATE TABLE fine (id int);\nCREATE TABLE broken (id int;",
        "DROP TABLE fine;",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    postgres_snapshot_settings(&project, db.name())
        .bind(|| insta::assert_snapshot!("postgres_failed_up_unclosed_statement", failed.stderr));
    assert!(!pg_table_exists(&mut client, "public.fine"));

    // A history table that cannot take the row: the migration is not applied, and the failure
    // is the completion's, not the statement's.
    project.remove("0002_unclosed.sql");
    project.migration(
        "0002_fine.sql",
        "CREATE TABLE fine (id int);",
        "DROP TABLE fine;",
    );
    client
        .batch_execute(
            "ALTER TABLE safeshift.history ADD CONSTRAINT no_more CHECK (version < '0002') NOT VALID",
        )
        .unwrap();
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    assert!(failed.stderr.contains("no_more"), "{}", failed.stderr);
    assert!(
        !failed.stderr.contains("statement 1 of 1"),
        "the statement did not fail: {}",
        failed.stderr
    );
    assert!(!pg_table_exists(&mut client, "public.fine"));
}

/// The first statement of a migration's transaction is sent with the transaction's opening: an
/// error in it still points at its own line and column.
#[test]
fn an_error_in_the_first_statement_points_into_it() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration(
        "0001_first.sql",
        "CREATE TABLE kept (id int);\n  ALTER TABLE kept ADD COLUMN x nosuchtype;",
        "DROP TABLE kept;",
    );
    project.migration(
        "0002_first.sql",
        "ALTER TABLE kept ADD COLUMN x nosuchtype;\nCREATE TABLE z (id int);",
        "DROP TABLE z;",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    postgres_snapshot_settings(&project, db.name())
        .bind(|| insta::assert_snapshot!("postgres_failed_up_indented_statement", failed.stderr));
    project.migration(
        "0001_first.sql",
        "CREATE TABLE kept (id int);",
        "DROP TABLE kept;",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    postgres_snapshot_settings(&project, db.name())
        .bind(|| insta::assert_snapshot!("postgres_failed_up_first_statement", failed.stderr));
    let mut client = db.client();
    let row = &pg_rows(
        &mut client,
        "SELECT error_line, error_statement FROM safeshift.history WHERE version = '0002'",
    )[0];
    assert_eq!(row[0].as_deref(), Some("2"));
    assert_eq!(
        row[1].as_deref(),
        Some("ALTER TABLE kept ADD COLUMN x nosuchtype")
    );
    assert!(!pg_table_exists(&mut client, "public.z"));
}

#[test]
fn concurrently_in_a_transactional_migration_is_refused_before_anything_runs() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.write(
        "0002_idx.sql",
        "-- migrate:up\nCREATE INDEX CONCURRENTLY t_a_idx ON t (a);\n",
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::INVALID_FILES);
    assert!(
        refused
            .stderr
            .contains("`CREATE INDEX CONCURRENTLY` cannot run inside a transaction block"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("-- migrate:up transaction:false"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("0002_idx.sql:2:1"),
        "{}",
        refused.stderr
    );
    let mut client = db.client();
    assert!(
        !pg_table_exists(&mut client, "public.t"),
        "nothing is applied when a pending migration is invalid"
    );
}

#[test]
fn timeouts_are_set_for_every_migration_and_per_migration_options_win() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.write(
        "0001_defaults.sql",
        "-- migrate:up\nCREATE TABLE settings_seen AS SELECT 'run' AS source, current_setting('lock_timeout') AS lock_timeout, current_setting('statement_timeout') AS statement_timeout;\n",
    );
    project.write(
        "0002_own.sql",
        "-- migrate:up lock_timeout:1500ms statement_timeout:1min\nINSERT INTO settings_seen SELECT 'migration', current_setting('lock_timeout'), current_setting('statement_timeout');\n",
    );
    project.write(
        "0003_outside.sql",
        "-- migrate:up transaction:false lock_timeout:250ms\nCREATE TABLE settings_outside AS SELECT current_setting('lock_timeout') AS lock_timeout;\n",
    );
    project
        .run(&["--lock-timeout", "3s", "--statement-timeout", "10s", "up"])
        .expect(exit::OK);
    let mut client = db.client();
    let rows = pg_rows(
        &mut client,
        "SELECT source, lock_timeout, statement_timeout FROM settings_seen ORDER BY source DESC",
    );
    assert_eq!(
        rows[0]
            .iter()
            .map(|v| v.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["run", "3s", "10s"]
    );
    assert_eq!(
        rows[1]
            .iter()
            .map(|v| v.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["migration", "1500ms", "1min"]
    );
    assert_eq!(
        pg_value(&mut client, "SELECT lock_timeout FROM settings_outside"),
        "250ms"
    );
}

#[test]
fn a_lock_timeout_is_retried_with_backoff_and_each_attempt_logged() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_alter.sql",
        "ALTER TABLE t ADD COLUMN b int;",
        "ALTER TABLE t DROP COLUMN b;",
    );
    // Another session holds a conflicting lock for a while, then lets go.
    let url = db.url();
    let holder = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE; SELECT pg_sleep(2.5); COMMIT")
            .unwrap();
    });
    let mut client = db.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg_value(
        &mut client,
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 't' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) == "0"
    {
        assert!(
            Instant::now() < deadline,
            "the blocking session never took its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = project.run(&["--lock-timeout", "300ms", "--retries", "10", "up"]);
    holder.join().unwrap();
    run.expect(exit::OK);
    assert!(run.stdout.contains("retry"), "{}", run.stdout);
    let attempts = pg_rows(
        &mut client,
        "SELECT status, attempt, error_sqlstate FROM safeshift.history WHERE version = '0002' ORDER BY id",
    );
    assert!(attempts.len() >= 2, "{attempts:?}");
    for (i, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt[1].as_deref(), Some((i + 1).to_string().as_str()));
        if i + 1 < attempts.len() {
            assert_eq!(attempt[0].as_deref(), Some("failed"));
            assert_eq!(attempt[2].as_deref(), Some("55P03"), "lock_not_available");
        }
    }
    assert_eq!(attempts.last().unwrap()[0].as_deref(), Some("succeeded"));
}

#[test]
fn retries_run_out_with_a_clear_failure() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_alter.sql",
        "ALTER TABLE t ADD COLUMN b int;",
        "ALTER TABLE t DROP COLUMN b;",
    );
    let mut blocker = db.client();
    blocker
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .unwrap();
    let run = project.run(&["--lock-timeout", "100ms", "--retries", "1", "up"]);
    run.expect(exit::MIGRATION_FAILED);
    assert!(run.stderr.contains("after 2 attempts"), "{}", run.stderr);
    assert!(run.stderr.contains("lock timeout"), "{}", run.stderr);
    blocker.batch_execute("COMMIT").unwrap();
    let mut client = db.client();
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM safeshift.history WHERE version = '0002' AND status = 'failed'"
        ),
        "2"
    );
    project.run(&["up"]).expect(exit::OK);
}

#[test]
fn statement_timeout_cancels_a_long_statement() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.write(
        "0001_slow.sql",
        "-- migrate:up statement_timeout:300ms\nSELECT pg_sleep(5);\n",
    );
    let started = Instant::now();
    let run = project.run(&["up"]);
    run.expect(exit::MIGRATION_FAILED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the statement must be cancelled, not waited for"
    );
    assert!(run.stderr.contains("SQLSTATE 57014"), "{}", run.stderr);
}

#[test]
fn a_failed_non_transactional_migration_resumes_from_the_failed_statement() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration(
        "0001_log.sql",
        "CREATE TABLE log (step int);",
        "DROP TABLE log;",
    );
    project.write(
        "0002_steps.sql",
        "-- migrate:up transaction:false\nINSERT INTO log VALUES (1);\nINSERT INTO log VALUES (2);\nINSERT INTO log VALUES ('three');\nINSERT INTO log VALUES (4);\n",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    let mut client = db.client();
    assert_eq!(
        pg_rows(&mut client, "SELECT status, statements_applied, statements_total FROM safeshift.history WHERE version = '0002'")[0]
            .iter()
            .map(|v| v.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["failed", "2", "4"]
    );
    let dry = project.run(&["up", "--dry-run"]);
    assert!(
        dry.stdout.contains("resuming: the first 2 statement(s)"),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains("VALUES (1)"), "{}", dry.stdout);
    project.write(
        "0002_steps.sql",
        "-- migrate:up transaction:false\nINSERT INTO log VALUES (1);\nINSERT INTO log VALUES (2);\nINSERT INTO log VALUES (3);\nINSERT INTO log VALUES (4);\n",
    );
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT string_agg(step::text, ',' ORDER BY step) FROM log"
        ),
        "1,2,3,4"
    );
    // The user's own BEGIN … COMMIT in a non-transactional migration is theirs to manage.
    project.write(
        "0003_own_transaction.sql",
        "-- migrate:up transaction:false\nBEGIN;\nINSERT INTO log VALUES (5);\nINSERT INTO log VALUES ('six');\nCOMMIT;\n",
    );
    project.run(&["up"]).expect(exit::MIGRATION_FAILED);
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM log WHERE step = 5"),
        "0",
        "their transaction rolled back"
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT statements_applied FROM safeshift.history WHERE version = '0003'"
        ),
        "0",
        "progress recorded inside their transaction rolls back with it"
    );
    project.write(
        "0003_own_transaction.sql",
        "-- migrate:up transaction:false\nBEGIN;\nINSERT INTO log VALUES (5);\nINSERT INTO log VALUES (6);\nCOMMIT;\n",
    );
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(pg_value(&mut client, "SELECT count(*) FROM log"), "6");
}

#[test]
fn resolve_finishes_a_partial_migration_by_hand() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.write(
        "0001_two.sql",
        "-- migrate:up transaction:false\nCREATE TABLE one (a int);\nCREATE TABLE two (a nosuchtype);\n",
    );
    project.run(&["up"]).expect(exit::MIGRATION_FAILED);
    assert_eq!(
        project.run(&["status", "--json"]).json()["entries"][0]["state"],
        "partial"
    );
    let mut client = db.client();
    client.batch_execute("CREATE TABLE two (a int)").unwrap();
    project
        .run(&[
            "resolve",
            "0001",
            "--applied",
            "--reason",
            "created by hand",
        ])
        .expect(exit::OK);
    assert_eq!(
        project.run(&["status", "--json"]).json()["entries"][0]["state"],
        "applied"
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT note FROM safeshift.history WHERE kind = 'resolve'"
        ),
        "marked applied by hand; reason: created by hand"
    );
}

#[test]
fn history_schema_and_table_are_configurable() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project
        .run(&[
            "--history-schema",
            "ops",
            "--history-table",
            "migrations_log",
            "up",
        ])
        .expect(exit::OK);
    let mut client = db.client();
    assert!(pg_table_exists(&mut client, "ops.migrations_log"));
    assert!(!pg_table_exists(&mut client, "safeshift.history"));
    project
        .run(&[
            "--history-schema",
            "ops",
            "--history-table",
            "migrations_log",
            "status",
            "--exit-code",
        ])
        .expect(exit::OK);
}

#[test]
fn connection_failures_say_what_to_check() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let project = Project::postgres(format!(
        "postgres://app:hunter2secret@127.0.0.1:{port}/app?connect_timeout=2"
    ));
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    let run = project.run(&["up"]);
    run.expect(exit::CONNECTION);
    assert!(
        run.stderr
            .contains("could not connect to postgres://app:***@127.0.0.1"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("hunter2secret"));
}

/// A password in the URL appears in no output of any command, in any format.
#[test]
fn no_command_prints_the_password() {
    const SECRET: &str = "correct-horse-battery-staple";
    let db = TestDatabase::new();
    // The test server trusts local connections, so the password is accepted and ignored.
    let url = db.url().replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{SECRET}@"),
        1,
    );
    assert!(url.contains(SECRET));
    let project = Project::postgres(url);
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.migration("0002_bad.sql", "SELECT * FROM missing;", "SELECT 1;");
    let runs = [
        project.run(&["status"]),
        project.run(&["status", "--json"]),
        project.run(&["up", "--dry-run"]),
        project.run(&["up", "--dry-run", "--json"]),
        project.run(&["up"]),
        project.run(&["up", "--json"]),
        project.run(&["history"]),
        project.run(&["history", "--json"]),
        project.run(&["down", "--dry-run"]),
        project.run(&["--lock-mode", "lease", "down", "--json"]),
        project.run(&["repair"]),
        project.run(&["resolve", "0002", "--applied"]),
        project.run(&[
            "--database-url",
            &format!("postgres://u:{SECRET}@127.0.0.1:1/x?connect_timeout=1"),
            "status",
        ]),
        project.run(&[
            "--database-url",
            &format!("postgres://u:{SECRET}@127.0.0.1:1/x?sslmode=bogus"),
            "status",
        ]),
        project.run(&[
            "--database-url",
            &format!("host=127.0.0.1 port=1 password={SECRET} connect_timeout=1"),
            "up",
            "--json",
        ]),
    ];
    for run in &runs {
        assert!(
            !run.all().contains(SECRET),
            "password printed:\n{}",
            run.all()
        );
    }
    assert!(
        runs[0].stdout.contains("postgres://postgres:***@"),
        "{}",
        runs[0].stdout
    );
    let mut client = db.client();
    let stored = pg_value(
        &mut client,
        "SELECT count(*) FROM safeshift.history WHERE concat_ws(' ', note, error_message, installed_by) LIKE '%correct-horse%'",
    );
    assert_eq!(stored, "0");
}

/// TLS through `sslmode`, against a private server with a self-signed certificate.
#[test]
fn tls_follows_libpq_sslmode() {
    let server = safeshift_testkit::PgServer::start().expect("private server");
    let data = server.base_dir().join("data");
    let certificate = data.join("server.crt");
    let key = data.join("server.key");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .output()
        .expect("openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let owner = std::fs::metadata(&data).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for file in [&certificate, &key] {
        std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut admin = server.connect("postgres").unwrap();
    admin.batch_execute("ALTER SYSTEM SET ssl = on").unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca.crt");
    std::fs::copy(&certificate, &ca).unwrap();
    let port = server.port();
    let check = |url: String, expect_ssl: Option<&str>| {
        let project = Project::postgres(url);
        project.write(
            "0001_tls.sql",
            "-- migrate:up\nCREATE TABLE IF NOT EXISTS tls_seen (ssl boolean);\nINSERT INTO tls_seen SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n",
        );
        let run = project.run(&["--history-table", &format!("h{}", fastrand_suffix()), "up"]);
        match expect_ssl {
            Some(_) => run.expect(exit::OK),
            None => run.expect(exit::CONNECTION),
        };
        run
    };
    let base = format!("postgres://postgres@localhost:{port}/postgres");
    check(format!("{base}?sslmode=require"), Some("t"));
    check(format!("{base}?sslmode=disable"), Some("f"));
    check(
        format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display()),
        Some("t"),
    );
    // The certificate names localhost, not 127.0.0.1: verify-full refuses, verify-ca accepts.
    let mismatch = check(
        format!(
            "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
            ca.display()
        ),
        None,
    );
    assert!(
        mismatch.stderr.contains("could not connect"),
        "{}",
        mismatch.stderr
    );
    check(
        format!(
            "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-ca&sslrootcert={}",
            ca.display()
        ),
        Some("t"),
    );
    // Without the root certificate, verify-full cannot trust a self-signed server.
    check(format!("{base}?sslmode=verify-full"), None);
    let seen = pg_rows(
        &mut admin,
        "SELECT ssl::text, count(*) FROM tls_seen GROUP BY ssl ORDER BY ssl",
    );
    assert_eq!(
        seen,
        vec![
            vec![Some("false".into()), Some("1".into())],
            vec![Some("true".into()), Some("3".into())]
        ]
    );
}

fn fastrand_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

#[test]
fn two_concurrent_indexes_in_one_non_transactional_migration() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration("0001_t.sql", "CREATE TABLE t (a int, b int);\nINSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;", "DROP TABLE t;");
    project.write(
        "0002_indexes.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_a_idx ON t (a);\nCREATE INDEX CONCURRENTLY t_b_idx ON t (b);\n\n-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_b_idx;\nDROP INDEX CONCURRENTLY t_a_idx;\n",
    );
    project.run(&["up"]).expect(exit::OK);
    let mut client = db.client();
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('t_a_idx', 't_b_idx') AND i.indisvalid"
        ),
        "2"
    );
    project.run(&["down"]).expect(exit::OK);
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM pg_class WHERE relname IN ('t_a_idx', 't_b_idx')"
        ),
        "0"
    );
}

/// A migration role that was given a ready-made schema, but may not create schemas in the
/// database, can run safeshift in both lock modes.
#[test]
fn a_role_without_create_on_the_database_uses_a_prepared_schema() {
    let db = TestDatabase::new();
    let mut admin = db.client();
    let role = format!("app_{}", db.name());
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; REVOKE CREATE ON DATABASE {db} FROM PUBLIC; \
             CREATE SCHEMA safeshift AUTHORIZATION {role}; GRANT CREATE ON SCHEMA public TO {role};",
            db = db.name()
        ))
        .unwrap();
    let url = db
        .url()
        .replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let project = Project::postgres(url);
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.run(&["up"]).expect(exit::OK);
    project.migration("0002_u.sql", "CREATE TABLE u (a int);", "DROP TABLE u;");
    project
        .run(&["--lock-mode", "lease", "up"])
        .expect(exit::OK);
    assert!(pg_table_exists(&mut admin, "public.u"));
    assert!(pg_table_exists(&mut admin, "safeshift.history_lock"));
    admin
        .batch_execute(&format!("DROP OWNED BY {role} CASCADE; DROP ROLE {role}"))
        .unwrap();
}

/// The advisory lock key for the default history table, as the driver derives it.
fn advisory_key() -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(b"safeshift:safeshift.history");
    i64::from_be_bytes(digest[..8].try_into().unwrap())
}

/// Through PgBouncer in transaction pooling, a session advisory lock lives on whatever server
/// connection a statement lands on. The default advisory mode notices and refuses; lease mode
/// works.
#[test]
fn the_advisory_lock_refuses_a_transaction_pooler_and_the_lease_works() {
    let db = TestDatabase::new();
    // Another run's lock, left on the pooled server connection (transaction pooling hands that
    // connection to the next client with the session lock still held).
    let mut other = postgres::Client::connect(&db.pgbouncer_url(), postgres::NoTls).unwrap();
    other
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({}); SELECT set_config('safeshift.run_lock_owner', 'another-run', false)",
            advisory_key()
        ))
        .unwrap();
    let project = Project::postgres(db.pgbouncer_url());
    // A sequence's nextval survives a rollback: it shows whether the statement ran at all.
    db.client().batch_execute("CREATE SEQUENCE probe").unwrap();
    project.migration(
        "0001_t.sql",
        "SELECT nextval('probe');\nCREATE TABLE t (a int);",
        "DROP TABLE t;",
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::LOCK);
    assert_eq!(
        pg_value(&mut db.client(), "SELECT is_called FROM probe"),
        "f",
        "the first migration's statements did not run"
    );
    assert!(
        refused.stderr.contains("transaction-pooling proxy"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--lock-mode lease"),
        "{}",
        refused.stderr
    );
    let mut client = db.client();
    assert!(!pg_table_exists(&mut client, "public.t"));
    project
        .run(&["--lock-mode", "lease", "up"])
        .expect(exit::OK);
    assert!(pg_table_exists(&mut client, "public.t"));
    drop(other);
}

/// Ctrl-C during a long statement: the statement is cancelled, the attempt recorded as
/// interrupted with the reason, the lock released, and exit code 130.
#[test]
fn ctrl_c_cancels_records_and_releases_the_lock() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.migration(
        "0001_slow.sql",
        "CREATE TABLE t (a int);\nSELECT pg_sleep(60);",
        "DROP TABLE t;",
    );
    let child = project
        .command(&["up"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = db.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg_value(
        &mut client,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(60)%'",
    ) == "0"
    {
        assert!(
            Instant::now() < deadline,
            "the migration never started its slow statement"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let run = common::Run::from(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the statement must be cancelled, not waited for"
    );
    assert_eq!(run.code, 130, "{}", run.all());
    assert!(run.stderr.contains("Ctrl-C"), "{}", run.stderr);
    let row = &pg_rows(
        &mut client,
        "SELECT status, error_message, error_sqlstate FROM safeshift.history",
    )[0];
    assert_eq!(row[0].as_deref(), Some("failed"));
    assert!(
        row[1]
            .as_deref()
            .unwrap()
            .starts_with("interrupted (Ctrl-C)"),
        "{row:?}"
    );
    assert_eq!(row[2].as_deref(), Some("57014"));
    assert!(
        !pg_table_exists(&mut client, "public.t"),
        "the transaction rolled back"
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        "0"
    );
    project.migration(
        "0001_slow.sql",
        "CREATE TABLE t (a int);\nSELECT pg_sleep(0);",
        "DROP TABLE t;",
    );
    project.run(&["repair"]).expect(exit::OK);
    project.run(&["up"]).expect(exit::OK);
}
