//! The CLI's core scenarios on a real MariaDB server (started by the testkit, or the one
//! `scripts/test` starts for the run): up, down, status, history and dry-run; a failed
//! statement resumed; a syntax error located; checksum drift refused and repaired; lock waits
//! retried; the statement timeout; eight runners at once with `GET_LOCK` and with the lease;
//! and runners killed in the middle of a DDL statement and of a transaction.
//!
//! MySQL commits DDL implicitly, so a migration holding DDL runs statement by statement, each
//! statement recorded as it completes; a migration of DML only runs in one transaction with its
//! history row.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::{Project, Run, exit, my_history, my_rows, my_value, spawn_piped};
use mysql::prelude::Queryable;
use safeshift_testkit::TestMysqlDatabase;

/// Generous: a loaded 2-core machine running several servers.
const DEADLINE: Duration = Duration::from_secs(90);

fn row(version: &str, direction: &str, status: &str) -> (String, String, String, String) {
    (
        version.into(),
        direction.into(),
        status.into(),
        "migrate".into(),
    )
}

fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    common::wait_until(what, DEADLINE, condition)
}

fn finish(child: Child) -> Run {
    common::finish_within(child, DEADLINE)
}

/// The id of another connection running a statement whose text contains `needle`, and what it
/// is doing.
fn connection_running(conn: &mut mysql::Conn, needle: &str) -> Option<(String, String)> {
    my_rows(
        conn,
        &format!(
            "SELECT ID, COALESCE(STATE, '') FROM information_schema.PROCESSLIST \
             WHERE ID <> CONNECTION_ID() AND DB = DATABASE() AND COMMAND = 'Query' \
             AND INFO LIKE '%{needle}%'"
        ),
    )
    .into_iter()
    .next()
    .map(|row| (row[0].clone().unwrap(), row[1].clone().unwrap_or_default()))
}

fn connection_alive(conn: &mut mysql::Conn, id: &str) -> bool {
    my_value(
        conn,
        &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"),
    ) != "0"
}

fn column_count(conn: &mut mysql::Conn, table: &str, column: &str) -> String {
    my_value(
        conn,
        &format!(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = '{table}' AND COLUMN_NAME = '{column}'"
        ),
    )
}

#[test]
fn up_down_status_history_and_dry_run_on_mariadb() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY AUTO_INCREMENT, email varchar(200) NOT NULL);\n\
         INSERT INTO accounts (email) VALUES ('it\\'s; a@example.com');\n\
         ALTER TABLE accounts ADD COLUMN name varchar(100);",
        "DROP TABLE accounts;",
    );
    project.migration(
        "0002_backfill.sql",
        "INSERT INTO accounts (email) VALUES ('b@example.com');\nUPDATE accounts SET name = 'n';",
        "DELETE FROM accounts WHERE email = 'b@example.com';",
    );

    let status = project.run(&["status"]);
    status.expect(exit::OK);
    assert!(
        status
            .stdout
            .contains("0001 runs statement by statement: `CREATE TABLE` commits implicitly"),
        "{}",
        status.stdout
    );
    let json = project.run(&["status", "--json"]).json();
    assert_eq!(json["engine"], "mysql");
    assert_eq!(json["entries"][0]["transactional"], false);
    assert_eq!(json["entries"][0]["implicit_commit"], "CREATE TABLE");
    assert_eq!(json["entries"][1]["transactional"], true);

    let dry = project.run(&["up", "--dry-run"]);
    dry.expect(exit::OK);
    assert!(
        dry.stdout
            .contains("-- 0001 accounts (migrations/0001_accounts.sql) statement by statement"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("SET SESSION lock_wait_timeout = 5;"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("in one transaction\n"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("START TRANSACTION;"), "{}", dry.stdout);

    project.run(&["up"]).expect(exit::OK);
    let mut conn = db.conn();
    assert_eq!(
        my_history(&mut conn),
        [
            row("0001", "up", "succeeded"),
            row("0002", "up", "succeeded")
        ]
    );
    assert_eq!(
        my_rows(&mut conn, "SELECT email, name FROM accounts ORDER BY id"),
        [
            vec![Some("it's; a@example.com".to_owned()), Some("n".to_owned())],
            vec![Some("b@example.com".to_owned()), Some("n".to_owned())],
        ]
    );
    assert_eq!(
        my_rows(
            &mut conn,
            "SELECT transactional, statements_applied, statements_total FROM safeshift_history ORDER BY id"
        ),
        [
            vec![
                Some("0".to_owned()),
                Some("3".to_owned()),
                Some("3".to_owned())
            ],
            vec![
                Some("1".to_owned()),
                Some("2".to_owned()),
                Some("2".to_owned())
            ],
        ]
    );
    let status = project.run(&["status", "--json"]).json();
    assert_eq!(status["entries"][1]["state"], "applied");
    assert_eq!(status["pending"], 0);
    let history = project.run(&["history"]);
    history.expect(exit::OK);
    assert!(history.stdout.contains("3/3"), "{}", history.stdout);

    project.run(&["down"]).expect(exit::OK);
    assert_eq!(my_value(&mut conn, "SELECT COUNT(*) FROM accounts"), "1");
    project.run(&["down"]).expect(exit::OK);
    assert_eq!(
        my_value(
            &mut conn,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'accounts'"
        ),
        "0"
    );
    assert_eq!(
        my_history(&mut conn)[2..],
        [
            row("0002", "down", "succeeded"),
            row("0001", "down", "succeeded")
        ]
    );
}

#[test]
fn a_failed_ddl_statement_is_resumed_where_it_stopped() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_people.sql",
        "CREATE TABLE people (id int PRIMARY KEY);\n\
         ALTER TABLE people ADD COLUMN age int;\n\
         ALTER TABLE people\n  ADD COLUMN nick varchar(10),\n  MODIFY COLUMN missing int;\n\
         ALTER TABLE people ADD COLUMN z int;",
        "DROP TABLE people;",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    assert!(
        failed.stderr.contains("failed at statement 3 of 4"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("MySQL 1054"), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("migrations/0001_people.sql:4"),
        "{}",
        failed.stderr
    );
    let mut conn = db.conn();
    assert_eq!(column_count(&mut conn, "people", "age"), "1");
    assert_eq!(column_count(&mut conn, "people", "nick"), "0");
    let status = project.run(&["status", "--json"]).json();
    assert_eq!(status["entries"][0]["state"], "partial");
    assert_eq!(status["entries"][0]["partial"]["applied"], 2);
    assert_eq!(status["entries"][0]["last_error"]["sqlstate"], "MySQL 1054");
    assert_eq!(status["entries"][0]["last_error"]["line"], 4);

    // Only the failed statement changes; the two applied ones run once.
    let file = project.migrations().join("0001_people.sql");
    let fixed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("MODIFY COLUMN missing int", "ADD COLUMN height int");
    std::fs::write(&file, fixed).unwrap();
    let resumed = project.run(&["up"]);
    resumed.expect(exit::OK);
    assert!(
        resumed.stdout.contains("resuming at statement 3"),
        "{}",
        resumed.stdout
    );
    for column in ["age", "nick", "height", "z"] {
        assert_eq!(column_count(&mut conn, "people", column), "1", "{column}");
    }
    assert_eq!(
        my_history(&mut conn),
        [row("0001", "up", "failed"), row("0001", "up", "succeeded")]
    );
}

#[test]
fn a_syntax_error_is_placed_on_its_line_and_a_transactional_failure_leaves_nothing() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.migration(
        "0002_rows.sql",
        "INSERT INTO t VALUES (1);\nINSERT INTO t\n  VALUES (2),\n  (3) oops;",
        "DELETE FROM t;",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    assert!(failed.stderr.contains("MySQL 1064"), "{}", failed.stderr);
    let mut conn = db.conn();
    assert_eq!(
        my_value(
            &mut conn,
            "SELECT error_line FROM safeshift_history WHERE version = '0002'"
        ),
        "5",
        "the line of `oops`"
    );
    assert_eq!(
        my_value(&mut conn, "SELECT COUNT(*) FROM t"),
        "0",
        "the migration's transaction rolled back its first INSERT"
    );
    assert_eq!(
        my_history(&mut conn),
        [row("0001", "up", "succeeded"), row("0002", "up", "failed")]
    );
}

#[test]
fn checksum_drift_is_refused_and_repair_accepts_it() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration("0001_a.sql", "CREATE TABLE a (id int);", "DROP TABLE a;");
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id int); -- edited",
        "DROP TABLE a;",
    );
    project.migration("0002_b.sql", "CREATE TABLE b (id int);", "DROP TABLE b;");
    let refused = project.run(&["up"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused.stderr.contains("migrations/0001_a.sql"),
        "{}",
        refused.stderr
    );
    let mut conn = db.conn();
    assert_eq!(
        my_value(
            &mut conn,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'b'"
        ),
        "0",
        "nothing runs after a checksum mismatch"
    );
    assert_eq!(
        project.run(&["status", "--json"]).json()["entries"][0]["state"],
        "changed"
    );
    project
        .run(&["repair", "--reason", "comment only"])
        .expect(exit::OK);
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        my_rows(&mut conn, "SELECT kind FROM safeshift_history ORDER BY id"),
        [
            vec![Some("migrate".to_owned())],
            vec![Some("repair".to_owned())],
            vec![Some("migrate".to_owned())]
        ]
    );
}

/// A connection that holds a shared metadata lock on `table` (an open transaction that read
/// it), so DDL on it waits.
fn hold_metadata_lock(db: &TestMysqlDatabase, table: &str) -> mysql::Conn {
    let mut blocker = db.conn();
    blocker
        .query_drop(format!("START TRANSACTION; SELECT * FROM {table} LIMIT 1"))
        .unwrap();
    blocker
}

#[test]
fn a_metadata_lock_wait_times_out_and_is_retried_with_each_attempt_logged() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_alter.sql",
        "ALTER TABLE t ADD COLUMN b int;",
        "ALTER TABLE t DROP COLUMN b;",
    );
    let mut blocker = hold_metadata_lock(&db, "t");
    let run = project.run(&["--lock-timeout", "1s", "--retries", "1", "up"]);
    run.expect(exit::MIGRATION_FAILED);
    assert!(run.stderr.contains("after 2 attempts"), "{}", run.stderr);
    assert!(run.stderr.contains("MySQL 1205"), "{}", run.stderr);
    let mut conn = db.conn();
    assert_eq!(
        my_rows(
            &mut conn,
            "SELECT attempt, status, error_sqlstate FROM safeshift_history WHERE version = '0002' ORDER BY id"
        ),
        [
            vec![
                Some("1".into()),
                Some("failed".into()),
                Some("MySQL 1205".into())
            ],
            vec![
                Some("2".into()),
                Some("failed".into()),
                Some("MySQL 1205".into())
            ],
        ]
    );
    // Released during the retries, the lock lets the next attempt through.
    let runner = spawn_piped(&project, &["--lock-timeout", "1s", "--retries", "20", "up"]);
    wait_until("the runner has retried once", || {
        my_value(
            &mut conn,
            "SELECT COUNT(*) FROM safeshift_history WHERE version = '0002' AND status = 'failed'",
        ) != "2"
    });
    blocker.query_drop("COMMIT").unwrap();
    let run = finish(runner);
    run.expect(exit::OK);
    assert!(run.stdout.contains("retry"), "{}", run.stdout);
    assert_eq!(column_count(&mut conn, "t", "b"), "1");
}

#[test]
fn the_statement_timeout_kills_a_long_statement() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.write(
        "0001_slow.sql",
        "-- migrate:up statement_timeout:500ms\nSELECT SLEEP(20);\n",
    );
    let started = Instant::now();
    let run = project.run(&["up"]);
    run.expect(exit::MIGRATION_FAILED);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the statement must be killed, not waited for"
    );
    assert!(
        run.stderr.contains("statement_timeout (500 ms) expired"),
        "{}",
        run.stderr
    );
}

const RUNNERS: usize = 8;
const MIGRATIONS: usize = 16;

fn eight_runners_apply_every_migration_once(lock_mode: &str) {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version varchar(10) NOT NULL);\nINSERT INTO ledger VALUES ('0001');",
        "DROP TABLE ledger;",
    );
    for number in 2..=MIGRATIONS {
        let version = format!("{number:04}");
        // Half DDL and DML (statement by statement), half DML only (one transaction).
        let body = if number % 2 == 0 {
            format!("CREATE TABLE t_{version} (id int);\nINSERT INTO ledger VALUES ('{version}');")
        } else {
            format!("INSERT INTO ledger VALUES ('{version}');\nDO SLEEP(0.02);")
        };
        project.migration(
            &format!("{version}_step.sql"),
            &body,
            &format!("DELETE FROM ledger WHERE version = '{version}';"),
        );
    }
    let children: Vec<Child> = (0..RUNNERS)
        .map(|runner| {
            let target = format!("{:04}", (runner + 1) * MIGRATIONS / RUNNERS);
            spawn_piped(
                &project,
                &[
                    "--lock-mode",
                    lock_mode,
                    "--lock-wait",
                    "120s",
                    "up",
                    "--to",
                    &target,
                ],
            )
        })
        .collect();
    for child in children {
        let run = finish(child);
        assert_eq!(run.code, exit::OK, "{}\n{}", run.stdout, run.stderr);
    }
    let mut conn = db.conn();
    let expected: Vec<_> = (1..=MIGRATIONS)
        .map(|n| row(&format!("{n:04}"), "up", "succeeded"))
        .collect();
    assert_eq!(my_history(&mut conn), expected);
    let ledger = my_rows(
        &mut conn,
        "SELECT version, COUNT(*) FROM ledger GROUP BY version ORDER BY version",
    );
    let expected_ledger: Vec<Vec<Option<String>>> = (1..=MIGRATIONS)
        .map(|n| vec![Some(format!("{n:04}")), Some("1".to_owned())])
        .collect();
    assert_eq!(ledger, expected_ledger, "every statement ran exactly once");
    // The lock serialised the runs: each run's rows are one unbroken stretch of the log.
    let run_ids: Vec<String> = my_rows(
        &mut conn,
        "SELECT run_id FROM safeshift_history ORDER BY id",
    )
    .into_iter()
    .map(|row| row[0].clone().unwrap())
    .collect();
    let mut seen: Vec<&String> = Vec::new();
    for (index, run_id) in run_ids.iter().enumerate() {
        if index > 0 && run_ids[index - 1] == *run_id {
            continue;
        }
        assert!(!seen.contains(&run_id), "runs interleaved: {run_ids:?}");
        seen.push(run_id);
    }
    if lock_mode == "lease" {
        assert_eq!(
            my_value(&mut conn, "SELECT COUNT(*) FROM safeshift_history_lock"),
            "0",
            "a finished run deletes its lease row"
        );
    }
}

#[test]
fn eight_runners_at_once_with_get_lock() {
    eight_runners_apply_every_migration_once("advisory");
}

#[test]
fn eight_runners_at_once_with_the_lease() {
    eight_runners_apply_every_migration_once("lease");
}

#[test]
fn a_waiting_runner_and_status_name_the_lock_holder() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_alter.sql",
        "ALTER TABLE t ADD COLUMN b int;",
        "ALTER TABLE t DROP COLUMN b;",
    );
    let mut blocker = hold_metadata_lock(&db, "t");
    let holder = spawn_piped(&project, &["--lock-timeout", "60s", "up"]);
    let mut conn = db.conn();
    wait_until("the ALTER waits for its metadata lock", || {
        connection_running(&mut conn, "ADD COLUMN b")
            .is_some_and(|(_, state)| state.contains("metadata lock"))
    });
    let status = project.run(&["status"]);
    status.expect(exit::OK);
    assert!(
        status.stdout.contains("the run lock is held by connection"),
        "{}",
        status.stdout
    );
    let waiting = project.run(&["--lock-wait", "1s", "up"]);
    waiting.expect(exit::LOCK);
    assert!(waiting.all().contains("connection"), "{}", waiting.all());
    blocker.query_drop("COMMIT").unwrap();
    finish(holder).expect(exit::OK);
}

/// Killed while its DDL statement waits on the server, the runner leaves the statement running
/// there: MySQL finishes a statement whose client is gone. The next run refuses to run it a
/// second time while it runs; once it has finished, its progress is recorded (it went to the
/// server with the statement), so the next run resumes after it and applies the rest once.
#[test]
fn a_runner_killed_during_ddl_leaves_it_applied_once_and_recorded() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version varchar(10), statement int);",
        "DROP TABLE ledger;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_note.sql",
        "INSERT INTO ledger VALUES ('0002', 1);\n\
         ALTER TABLE ledger ADD COLUMN note text;\n\
         INSERT INTO ledger VALUES ('0002', 3, 'after');",
        "ALTER TABLE ledger DROP COLUMN note;",
    );
    let mut blocker = hold_metadata_lock(&db, "ledger");
    let runner = spawn_piped(&project, &["--lock-timeout", "60s", "up"]);
    let mut conn = db.conn();
    let mut alter = None;
    wait_until("the ALTER waits for its metadata lock", || {
        alter = connection_running(&mut conn, "ADD COLUMN note");
        alter
            .as_ref()
            .is_some_and(|(_, state)| state.contains("metadata lock"))
    });
    let (connection, _) = alter.unwrap();
    common::kill(runner);
    // Still running: the next run must not run it again.
    let refused = project.run(&["up"]);
    refused.expect(exit::MIGRATION_FAILED);
    assert!(
        refused.stderr.contains("still running on the server")
            && refused
                .stderr
                .contains(&format!("in connection {connection},")),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&format!("KILL QUERY {connection}")),
        "{}",
        refused.stderr
    );
    blocker.query_drop("COMMIT").unwrap();
    wait_until("the killed runner's connection ends", || {
        !connection_alive(&mut conn, &connection)
    });
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(column_count(&mut conn, "ledger", "note"), "1");
    assert_eq!(
        my_rows(
            &mut conn,
            "SELECT version, statement FROM ledger ORDER BY statement"
        ),
        [
            vec![Some("0002".into()), Some("1".into())],
            vec![Some("0002".into()), Some("3".into())],
        ],
        "every statement applied once"
    );
    let attempts = my_rows(
        &mut conn,
        "SELECT status, statements_applied FROM safeshift_history WHERE version = '0002' ORDER BY id",
    );
    assert_eq!(
        attempts,
        [
            vec![Some("failed".into()), Some("2".into())],
            vec![Some("failed".into()), Some("1".into())],
            vec![Some("succeeded".into()), Some("3".into())],
        ],
        "the killed attempt counts the ALTER the server finished for it; the refused one applied nothing"
    );
}

/// Killed while its transaction waits for a row lock, the runner's transaction is rolled back
/// by the server: nothing of the migration is applied, and the next run applies it once.
#[test]
fn a_runner_killed_in_a_transaction_leaves_nothing_applied() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (id int PRIMARY KEY, statement int);\nINSERT INTO ledger VALUES (1, 0);",
        "DROP TABLE ledger;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_rows.sql",
        "INSERT INTO ledger VALUES (2, 1);\nUPDATE ledger SET statement = 2 WHERE id = 1;",
        "DELETE FROM ledger WHERE id = 2;",
    );
    let mut blocker = db.conn();
    blocker
        .query_drop("START TRANSACTION; SELECT * FROM ledger WHERE id = 1 FOR UPDATE")
        .unwrap();
    let runner = spawn_piped(&project, &["--lock-timeout", "60s", "up"]);
    let mut conn = db.conn();
    let mut update = None;
    wait_until("the UPDATE waits for its row lock", || {
        update = connection_running(&mut conn, "SET statement = 2");
        update.is_some()
    });
    let (connection, _) = update.unwrap();
    common::kill(runner);
    blocker.query_drop("COMMIT").unwrap();
    wait_until("the killed runner's connection ends", || {
        !connection_alive(&mut conn, &connection)
    });
    assert_eq!(
        my_value(&mut conn, "SELECT COUNT(*) FROM ledger"),
        "1",
        "the killed transaction was rolled back"
    );
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        my_rows(&mut conn, "SELECT id, statement FROM ledger ORDER BY id"),
        [
            vec![Some("1".into()), Some("2".into())],
            vec![Some("2".into()), Some("1".into())],
        ]
    );
}

/// A user with a password, allowed on `db` only, and a project that connects as that user.
fn password_project(db: &TestMysqlDatabase, password: &str) -> Project {
    let user = format!("u{}", &db.name()[db.name().len().saturating_sub(12)..]);
    let mut conn = db.conn();
    conn.query_drop(format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT ALL ON *.* TO '{user}'@'%'"
    ))
    .unwrap();
    let url = db
        .url()
        .replacen("safeshift@", &format!("{user}:{password}@"), 1);
    Project::mysql(url)
}

#[test]
fn backups_are_dumped_verified_and_restored_without_showing_the_password() {
    const PASSWORD: &str = "s3cret-Pw";
    let db = TestMysqlDatabase::new();
    let project = password_project(&db, PASSWORD);
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id int PRIMARY KEY, note text);\n\
         INSERT INTO accounts VALUES (1, 'a (b); c'), (2, 'it\\'s\\nthere');",
        "DROP TABLE accounts;",
    );
    project.run(&["up"]).expect(exit::OK);
    let created = project.run(&["backup", "create"]);
    created.expect(exit::OK);
    let dir = project.path().join("backups");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "sql"))
        .expect("a .sql dump");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let metadata = std::fs::read_to_string(file.with_extension("sql.json")).unwrap();
    assert!(metadata.contains("mariadb-dump"), "{metadata}");
    let file_arg = file.display().to_string();
    let verified = project.run(&["backup", "verify", "--deep", &file_arg]);
    verified.expect(exit::OK);
    assert!(verified.stdout.contains("0 differ"), "{}", verified.stdout);

    let mut conn = db.conn();
    conn.query_drop("DELETE FROM accounts WHERE id = 2; INSERT INTO accounts VALUES (3, 'later')")
        .unwrap();
    project
        .run(&["backup", "restore", &file_arg, "--yes"])
        .expect(exit::OK);
    assert_eq!(
        my_rows(&mut conn, "SELECT id, note FROM accounts ORDER BY id"),
        [
            vec![Some("1".into()), Some("a (b); c".into())],
            vec![Some("2".into()), Some("it's\nthere".into())],
        ]
    );
    let copy = format!("copy{}", &db.name()[db.name().len().saturating_sub(12)..]);
    project
        .run(&["backup", "restore", &file_arg, "--to", &copy, "--yes"])
        .expect(exit::OK);
    assert_eq!(
        my_value(
            &mut conn,
            &format!("SELECT COUNT(*) FROM `{copy}`.accounts")
        ),
        "2"
    );
    conn.query_drop(format!("DROP DATABASE `{copy}`")).unwrap();

    // A dump cut short is caught by its checksum, and by its missing last line.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &text[..text.len() / 2]).unwrap();
    let damaged = project.run(&["backup", "verify", &file_arg]);
    assert_ne!(damaged.code, exit::OK, "{}", damaged.all());
    assert!(damaged.all().contains("checksum"), "{}", damaged.all());

    for run in [&created, &verified, &damaged] {
        assert!(!run.all().contains(PASSWORD), "{}", run.all());
    }
    assert!(!metadata.contains(PASSWORD), "{metadata}");
}

/// DDL waiting behind an open transaction: `activity` shows the waiting ALTER under the
/// transaction that blocks it, and the watchdog names the blocker and, past its lock-wait limit,
/// stops the run (the statement is killed, the attempt recorded as interrupted).
#[test]
fn activity_and_the_watchdog_name_the_transaction_blocking_ddl() {
    const GUARD: i32 = 9;
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration("0001_t.sql", "CREATE TABLE t (a int);", "DROP TABLE t;");
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_alter.sql",
        "ALTER TABLE t ADD COLUMN b int;",
        "ALTER TABLE t DROP COLUMN b;",
    );
    let mut blocker = hold_metadata_lock(&db, "t");
    let blocker_id = my_value(&mut blocker, "SELECT CONNECTION_ID()");
    let runner = spawn_piped(
        &project,
        &["up", "--abort-on", "lock-wait=2s", "--lock-timeout", "60s"],
    );
    let mut conn = db.conn();
    let mut alter = None;
    wait_until("the ALTER waits for its metadata lock", || {
        alter = connection_running(&mut conn, "ADD COLUMN b");
        alter
            .as_ref()
            .is_some_and(|(_, state)| state.contains("metadata lock"))
    });
    let (alter_id, _) = alter.unwrap();
    let activity = project.run(&["activity"]);
    activity.expect(exit::OK);
    assert!(
        activity.stdout.contains(&format!("pid {blocker_id} (")),
        "{}",
        activity.stdout
    );
    assert!(
        activity
            .stdout
            .contains(&format!("└ waits for the one above: pid {alter_id} (")),
        "{}",
        activity.stdout
    );
    let json = project.run(&["activity", "--json"]).json();
    assert_eq!(json["engine"], "MariaDB");
    let run = finish(runner);
    run.expect(GUARD);
    assert!(
        run.stderr.contains(&format!("pid {blocker_id} (")),
        "the watchdog names the blocker:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("watchdog: the migration has waited"),
        "{}",
        run.stderr
    );
    blocker.query_drop("COMMIT").unwrap();
    assert_eq!(column_count(&mut conn, "t", "b"), "0");
    assert_eq!(
        my_rows(
            &mut conn,
            "SELECT status FROM safeshift_history WHERE version = '0002'"
        ),
        [vec![Some("failed".to_owned())]]
    );
}

#[test]
fn lint_grades_alters_by_what_the_connected_server_does_online() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(20) NOT NULL, note text);",
        "DROP TABLE accounts;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_changes.sql",
        "ALTER TABLE accounts ADD COLUMN age int;\n\
         ALTER TABLE accounts MODIFY COLUMN email bigint NOT NULL;",
        "ALTER TABLE accounts DROP COLUMN age;",
    );
    let lint = project.run(&["lint"]);
    lint.expect(8);
    assert!(
        lint.stdout.contains(
            "high[mysql-alter-copies-table]: `MODIFY COLUMN email` copies accounts on MariaDB"
        ),
        "{}",
        lint.stdout
    );
    assert!(
        lint.stdout
            .contains("         ALTER TABLE accounts ADD COLUMN age int, ALGORITHM=INSTANT"),
        "{}",
        lint.stdout
    );
    assert!(
        lint.stdout
            .contains("migrations/0002_changes.sql (version 0002): risk high"),
        "{}",
        lint.stdout
    );
    assert!(
        !lint.stdout.contains("0001_accounts"),
        "applied migrations are not reported: {}",
        lint.stdout
    );
    let json = project.run(&["lint", "--format", "json"]).json();
    assert_eq!(json["files"][0]["findings"][1]["algorithm"], "copy");
    assert_eq!(json["files"][0]["findings"][1]["blocks_writes"], true);
    // Without a server, the version given decides: MySQL 8.0.20 adds a column in place only
    // as the last column, instantly.
    let offline = project.run(&[
        "lint",
        "--all",
        "--mysql-version",
        "8.0.20",
        "--fail-on",
        "low",
    ]);
    offline.expect(8);
    assert!(
        offline.stdout.contains("for MySQL 8.0.20"),
        "{}",
        offline.stdout
    );
}

/// `-- safeshift:online-schema-change` runs a copying ALTER with pt-online-schema-change:
/// writes go on during the copy, the change lands, the step is recorded, and progress is shown.
/// Leftovers of a change that is not this run's stop it with how to remove them.
#[test]
fn an_online_schema_change_lets_writes_through_and_is_recorded() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_orders.sql",
        "CREATE TABLE orders (id int PRIMARY KEY AUTO_INCREMENT, total int NOT NULL);\n\
         INSERT INTO orders (total) SELECT seq FROM seq_1_to_20000;",
        "DROP TABLE orders;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.write(
        "0002_total.sql",
        "-- migrate:up\n-- safeshift:online-schema-change chunk-time=0.05s max-load=Threads_running=400\n\
         ALTER TABLE orders MODIFY COLUMN total bigint NOT NULL;\n\n\
         -- migrate:down\nALTER TABLE orders MODIFY COLUMN total int NOT NULL;\n",
    );
    let mut conn = db.conn();
    conn.query_drop("CREATE TABLE _orders_new (id int)")
        .unwrap();
    let refused = project.run(&["up"]);
    refused.expect(exit::MIGRATION_FAILED);
    assert!(refused.stderr.contains("DROP TABLE"), "{}", refused.stderr);
    conn.query_drop("DROP TABLE _orders_new").unwrap();

    let url = db.url();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut conn = mysql::Conn::new(url.as_str()).unwrap();
            let mut written = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match conn.query_drop("INSERT INTO orders (total) VALUES (7)") {
                    Ok(()) => written += 1,
                    // The tool's chunk copy reads with shared locks, which can deadlock with
                    // the trigger's insert: the insert is rolled back, and an application
                    // retries it, as here.
                    Err(mysql::Error::MySqlError(error)) if error.code == 1213 => {}
                    Err(error) => panic!("a write failed during the change: {error}"),
                }
            }
            written
        })
    };
    let run = project.run(&["up"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.join().unwrap();
    run.expect(exit::OK);
    assert!(
        run.stderr.contains("online schema change of"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("swapped in the new"), "{}", run.stderr);
    assert!(written > 0);
    assert_eq!(
        my_value(
            &mut conn,
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'total'"
        ),
        "bigint"
    );
    assert_eq!(
        my_value(&mut conn, "SELECT COUNT(*) FROM orders"),
        (20_000 + written).to_string(),
        "every row written during the copy is in the new table"
    );
    assert_eq!(
        my_value(
            &mut conn,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        ),
        "0",
        "the tool's triggers are gone"
    );
    assert_eq!(
        my_history(&mut conn).last().unwrap(),
        &row("0002", "up", "succeeded")
    );
}

/// A runner killed during an online schema change takes pt-online-schema-change with it (left
/// running, the tool would swap the tables behind a history that says the change is not
/// applied); the next run drops what the tool left and runs the change once.
#[test]
fn a_runner_killed_during_an_online_schema_change_stops_the_tool_and_the_next_run_finishes_it() {
    let db = TestMysqlDatabase::new();
    let project = Project::mysql(db.url());
    project.migration(
        "0001_orders.sql",
        "CREATE TABLE orders (id int PRIMARY KEY AUTO_INCREMENT, total int NOT NULL);\n\
         INSERT INTO orders (total) SELECT seq FROM seq_1_to_5000;",
        "DROP TABLE orders;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.write(
        "0002_total.sql",
        "-- migrate:up\n-- safeshift:online-schema-change\n\
         ALTER TABLE orders ADD COLUMN note varchar(20) NULL;\n\n\
         -- migrate:down\nALTER TABLE orders DROP COLUMN note;\n",
    );
    // A row lock the tool's chunk copy (a shared-lock read) waits for.
    let mut blocker = db.conn();
    blocker
        .query_drop("START TRANSACTION; SELECT * FROM orders WHERE id = 10 FOR UPDATE")
        .unwrap();
    let runner = spawn_piped(&project, &["up"]);
    let mut conn = db.conn();
    wait_until("the tool's chunk copy waits for the row lock", || {
        connection_running(&mut conn, "_orders_new").is_some()
    });
    assert!(tool_running_on(db.name()));
    common::kill(runner);
    // At once, not whenever the tool next writes to its dead runner's pipe.
    let killed = Instant::now();
    while tool_running_on(db.name()) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "pt-online-schema-change outlived its runner"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    blocker.query_drop("COMMIT").unwrap();
    wait_until("the tool's connections are gone", || {
        connection_running(&mut conn, "_orders_new").is_none()
    });
    let resumed = project.run(&["up"]);
    resumed.expect(exit::OK);
    assert!(
        resumed.stderr.contains("swapped in the new"),
        "{}",
        resumed.stderr
    );
    assert_eq!(column_count(&mut conn, "orders", "note"), "1");
    assert_eq!(my_value(&mut conn, "SELECT COUNT(*) FROM orders"), "5000");
    assert_eq!(
        my_value(
            &mut conn,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME LIKE '\\_%'"
        ),
        "0",
        "no copy of the table is left"
    );
    assert_eq!(
        my_history(&mut conn).last().unwrap(),
        &row("0002", "up", "succeeded")
    );
}

/// Whether a pt-online-schema-change process works on `database` (read from /proc).
fn tool_running_on(database: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
            let text = String::from_utf8_lossy(&cmdline);
            text.contains("pt-online-schema-change") && text.contains(&format!("D={database},"))
        })
    })
}
