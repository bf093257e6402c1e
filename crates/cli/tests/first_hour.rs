//! What a new user meets in the first hour (issue 13), on real SQLite and a real PostgreSQL 15:
//! `status` on a fresh project, files that cannot be read, JSON on every failure, messages
//! that name the file and say what to do, durations, and counts that add up.

mod common;

use common::{Project, exit, pg_table_exists};
use safeshift_testkit::TestDatabase;

fn sqlite_history_exists(project: &Project) -> bool {
    let path = project.path().join("app.db");
    if !path.exists() {
        return false;
    }
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'safeshift_history'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

/// `init`, `new x`, `status`: the fresh migration is listed and flagged, with what to do;
/// `status` itself succeeds (`--exit-code` says 3), and `up` refuses.
#[test]
fn status_lists_a_fresh_empty_migration_and_flags_it() {
    let project = Project::sqlite();
    std::fs::remove_dir(project.migrations()).unwrap();
    project.run(&["init"]).expect(exit::OK);
    project.run(&["new", "add users"]).expect(exit::OK);

    let status = project.run(&["status"]);
    status.expect(exit::OK);
    assert!(
        status.stdout.contains("0001     add_users  invalid"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("migrations/0001_add_users.sql:9:1: the up section has no statements"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("1 migration(s): 0 applied, 0 pending, 1 invalid."),
        "{}",
        status.stdout
    );

    let json = project.run(&["status", "--json"]);
    json.expect(exit::OK);
    let report = json.json();
    assert_eq!(report["entries"][0]["state"], "invalid");
    assert_eq!(report["entries"][0]["version"], "0001");
    assert_eq!(
        report["problems"][0]["location"],
        "migrations/0001_add_users.sql:9:1"
    );
    project
        .run(&["status", "--exit-code"])
        .expect(exit::INVALID_FILES);
    let up = project.run(&["up"]);
    up.expect(exit::INVALID_FILES);
    assert!(
        up.stderr.contains("the up section has no statements"),
        "{}",
        up.stderr
    );
}

/// A dangling symbolic link, a loop of links and an upper-case `.SQL` look like migrations but
/// could never run: each is named, in `status` and by `up`, which applies nothing.
#[test]
fn files_that_look_like_migrations_but_cannot_be_read_are_reported() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    let dir = project.migrations();
    std::os::unix::fs::symlink("nowhere.sql", dir.join("0002_dangling.sql")).unwrap();
    std::os::unix::fs::symlink("0003_loop.sql", dir.join("0003_loop.sql")).unwrap();
    project.write(
        "0005_shouting.SQL",
        "-- migrate:up\nCREATE TABLE s (id INTEGER);\n",
    );
    // Not migration-like: ignored, as before.
    project.write("README.md", "notes");

    let status = project.run(&["status"]);
    status.expect(exit::OK);
    for expected in [
        "0002     dangling  invalid",
        "0003     loop      invalid",
        "0005     shouting  invalid",
        "migrations/0002_dangling.sql: a symbolic link to `nowhere.sql`, which does not exist",
        "migrations/0003_loop.sql: a symbolic link to `0003_loop.sql` that cannot be followed",
        "migrations/0005_shouting.SQL: `0005_shouting.SQL` ends in `.SQL`",
        "rename it to 0005_shouting.sql",
        "4 migration(s): 0 applied, 1 pending, 3 invalid.",
    ] {
        assert!(
            status.stdout.contains(expected),
            "expected `{expected}` in\n{}",
            status.stdout
        );
    }
    let up = project.run(&["up"]);
    up.expect(exit::INVALID_FILES);
    for expected in ["0002_dangling.sql", "0003_loop.sql", "0005_shouting.SQL"] {
        assert!(up.stderr.contains(expected), "{expected}: {}", up.stderr);
    }
    assert!(
        !sqlite_history_exists(&project),
        "a run whose files are rejected creates nothing"
    );
}

/// A duplicate version does not hide the other problems: one run names all of them, in both
/// directions (a `BEGIN` in a down section too), with the file and line of each.
#[test]
fn every_file_problem_is_reported_in_one_pass() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    project.write(
        "0002_first.sql",
        "-- migrate:up\nCREATE TABLE b (id INTEGER);\n",
    );
    // A duplicate of 0002 with a problem of its own.
    project.write(
        "0002_second.sql",
        "-- migrate:up transaction:flase\nCREATE TABLE c (id INTEGER);\n",
    );
    project.write("0003_empty_up.sql", "-- migrate:up\n-- migrate:down\n");
    project.write(
        "0004_down_begins.sql",
        "-- migrate:up\nCREATE TABLE d (id INTEGER);\n-- migrate:down\nBEGIN;\nDROP TABLE d;\nCOMMIT;\n",
    );
    project.write("0005_latin1.sql", b"-- migrate:up\nSELECT 'caf\xe9';\n");

    let up = project.run(&["up"]);
    up.expect(exit::INVALID_FILES);
    for expected in [
        "version 0002 is also used by",
        "0002_second.sql:1:15",
        "`transaction` takes true or false",
        "0003_empty_up.sql:1:1",
        "the up section has no statements",
        "0004_down_begins.sql:4:1",
        "`BEGIN` controls the transaction",
        "0005_latin1.sql:2:",
        "5 problems in the migration files; nothing was applied",
    ] {
        assert!(
            up.stderr.contains(expected),
            "expected `{expected}` in\n{}",
            up.stderr
        );
    }
    // The line that holds the bad byte is shown with the byte escaped, not as `�`.
    assert!(up.stderr.contains(r"SELECT 'caf\xE9'"), "{}", up.stderr);
    assert!(!up.stderr.contains('\u{FFFD}'), "{}", up.stderr);
    assert!(!sqlite_history_exists(&project));

    let status = project.run(&["status", "--json"]);
    status.expect(exit::OK);
    let report = status.json();
    assert_eq!(report["problems"].as_array().unwrap().len(), 5);
    let states: Vec<(String, String)> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_str().unwrap().to_owned(),
                e["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("0001", "pending"),
        ("0002", "invalid"),
        ("0003", "invalid"),
        ("0004", "invalid"),
        ("0005", "invalid"),
    ]
    .iter()
    .map(|(v, s)| (v.to_string(), s.to_string()))
    .collect();
    assert_eq!(states, expected);
}

/// The shop example says it can point at PostgreSQL: its SQLite trigger is explained as one,
/// and a run whose files are rejected creates no history table.
#[test]
fn the_shop_example_on_postgres_explains_its_sqlite_trigger_and_creates_nothing() {
    let db = TestDatabase::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let run = common::Run::from(
        std::process::Command::new(common::safeshift_bin())
            .args([
                "-C",
                example.to_str().unwrap(),
                "--database-url",
                &db.url(),
                "up",
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap(),
    );
    run.expect(exit::INVALID_FILES);
    assert!(
        run.stderr.contains("SQLite trigger"),
        "the message says what the statement is:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("`COMMIT` controls the transaction"),
        "{}",
        run.stderr
    );
    let mut client = db.client();
    assert!(
        !pg_table_exists(&mut client, "safeshift.history"),
        "nothing runs when the files are rejected, not even the history's creation"
    );
    assert!(!pg_table_exists(&mut client, "public.customers"));
}
