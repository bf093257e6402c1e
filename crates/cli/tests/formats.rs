//! Other tools' layouts read as they are by every command (status, lint, up, down), templates
//! expanded with --var or refused with the file and line, and adoption on SQLite.

mod common;

use common::{Project, exit, pg_table_exists};
use safeshift_testkit::TestDatabase;

#[test]
fn go_template_placeholders_are_refused_with_their_place_or_expanded_with_var() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.write(
        "0001_schema.sql",
        "-- migrate:up\nCREATE SCHEMA {{ .Schema }};\nCREATE TABLE {{ .Schema }}.users (id int);\n-- migrate:down\nDROP SCHEMA {{ .Schema }} CASCADE;\n",
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::INVALID_FILES);
    assert!(
        refused.stderr.contains("0001_schema.sql:2:15"),
        "the file and line are named: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--var Schema=VALUE"),
        "{}",
        refused.stderr
    );
    project
        .run(&["--var", "Schema=billing", "up"])
        .expect(exit::OK);
    let mut client = db.client();
    assert!(pg_table_exists(&mut client, "billing.users"));
    // Another value does not change the file's checksum: the file as written is checksummed.
    let status = project
        .run(&["--var", "Schema=crm", "status", "--json"])
        .json();
    assert_eq!(status["entries"][0]["state"], "applied");
    project
        .run(&["--var", "Schema=billing", "down"])
        .expect(exit::OK);
    assert!(!pg_table_exists(&mut client, "billing.users"));
}

#[test]
fn goose_envsub_takes_the_environment_and_a_missing_variable_is_named() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.write(
        "00001_role.sql",
        "-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE ${TABLE_NAME} (id int);\n-- +goose ENVSUB OFF\n-- +goose Down\nDROP TABLE audit;\n",
    );
    let missing = project.run(&["status"]);
    missing.expect(exit::INVALID_FILES);
    assert!(
        missing.stderr.contains("00001_role.sql:3:14"),
        "{}",
        missing.stderr
    );
    assert!(
        missing
            .stderr
            .contains("goose takes `TABLE_NAME` from the environment")
    );
    let up = project
        .command(&["up"])
        .env("TABLE_NAME", "audit")
        .output()
        .unwrap();
    common::Run::from(up).expect(exit::OK);
    assert!(pg_table_exists(&mut db.client(), "audit"));
}

#[test]
fn lint_reads_other_layouts_and_names_their_files() {
    let project = Project::sqlite();
    project.write(
        "00001_users.sql",
        "-- +goose Up\nCREATE TABLE users (id int);\n-- +goose Down\nDROP TABLE users;\n",
    );
    project.write(
        "00002_email.sql",
        "-- +goose Up\nALTER TABLE users ADD COLUMN email text NOT NULL;\n-- +goose Down\nALTER TABLE users DROP COLUMN email;\n",
    );
    let lint = project.run(&["lint", "migrations", "--format", "json"]);
    let findings = lint.json();
    let files: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("00002_email.sql")),
        "{}",
        lint.stdout
    );
}

#[test]
fn a_forced_format_that_does_not_fit_is_refused() {
    let project = Project::sqlite();
    project.migration("0001_a.sql", "CREATE TABLE a (id int);", "DROP TABLE a;");
    let forced = project.run(&["--migration-format", "goose", "status"]);
    forced.expect(exit::INVALID_FILES);
    assert!(
        forced.stderr.contains("`-- migrate:up` markers"),
        "{}",
        forced.stderr
    );
    let unknown = project.run(&["--migration-format", "liquibase", "status"]);
    unknown.expect(exit::USAGE);
    assert!(
        unknown.stderr.contains("not a format"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn goose_history_is_adopted_on_sqlite_too() {
    let project = Project::sqlite();
    for i in 1..=3 {
        project.write(
            &format!("{i:05}_t{i}.sql"),
            format!(
                "-- +goose Up\nCREATE TABLE t{i} (id INTEGER);\n-- +goose Down\nDROP TABLE t{i};\n"
            ),
        );
    }
    let database = project.path().join("app.db");
    let connection = rusqlite::Connection::open(&database).unwrap();
    // goose's table as its SQLite dialect creates it.
    connection
        .execute_batch(
            "CREATE TABLE goose_db_version (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                version_id INTEGER NOT NULL,
                is_applied INTEGER NOT NULL,
                tstamp TIMESTAMP DEFAULT (datetime('now'))
            );
            INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1);
            CREATE TABLE t1 (id INTEGER); CREATE TABLE t2 (id INTEGER);",
        )
        .unwrap();
    drop(connection);
    let adopted = project.run(&["adopt"]);
    adopted.expect(exit::OK);
    assert!(
        adopted.stdout.contains("recorded 2 migration(s)"),
        "{}",
        adopted.stdout
    );
    let up = project.run(&["up"]);
    up.expect(exit::OK);
    assert!(
        up.stdout.contains("Applied 1 migration(s)"),
        "{}",
        up.stdout
    );
    let connection = rusqlite::Connection::open(&database).unwrap();
    let goose_rows: i64 = connection
        .query_row("SELECT count(*) FROM goose_db_version", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(goose_rows, 3, "goose's table is left as it was");
}
