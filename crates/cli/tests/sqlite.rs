//! Every command against a real SQLite database (bundled), and every malformed-file error.

mod common;

use common::{Project, exit, snapshot_settings};

fn table_exists(project: &Project, table: &str) -> bool {
    let connection = rusqlite::Connection::open(project.path().join("app.db")).unwrap();
    connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

fn history_rows(project: &Project) -> Vec<(String, String, String, String)> {
    let connection = rusqlite::Connection::open(project.path().join("app.db")).unwrap();
    let mut statement = connection
        .prepare("SELECT version, direction, status, kind FROM safeshift_history ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn row(
    version: &str,
    direction: &str,
    status: &str,
    kind: &str,
) -> (String, String, String, String) {
    (version.into(), direction.into(), status.into(), kind.into())
}

fn two_migrations() -> Project {
    let project = Project::sqlite();
    project
        .migration(
            "0001_create_a.sql",
            "CREATE TABLE a (id INTEGER PRIMARY KEY);",
            "DROP TABLE a;",
        )
        .migration(
            "0002_create_b.sql",
            "CREATE TABLE b (id INTEGER PRIMARY KEY);",
            "DROP TABLE b;",
        );
    project
}

#[test]
fn up_status_down_and_history() {
    let project = two_migrations();
    project
        .run(&["status", "--exit-code"])
        .expect(exit::PENDING);
    assert!(
        !project.path().join("app.db").exists(),
        "status must not create the database"
    );

    let up = project.run(&["up"]);
    up.expect(exit::OK);
    assert!(
        up.stdout.contains("Applied 2 migration(s)"),
        "{}",
        up.stdout
    );
    assert!(table_exists(&project, "a") && table_exists(&project, "b"));
    project.run(&["status", "--exit-code"]).expect(exit::OK);
    assert!(
        project
            .run(&["up"])
            .expect(exit::OK)
            .stdout
            .contains("Nothing to apply")
    );

    project.run(&["down"]).expect(exit::OK);
    assert!(table_exists(&project, "a") && !table_exists(&project, "b"));
    project.run(&["up"]).expect(exit::OK);
    project.run(&["down", "--steps", "2"]).expect(exit::OK);
    assert!(!table_exists(&project, "a") && !table_exists(&project, "b"));
    assert_eq!(
        history_rows(&project),
        [
            row("0001", "up", "succeeded", "migrate"),
            row("0002", "up", "succeeded", "migrate"),
            row("0002", "down", "succeeded", "migrate"),
            row("0002", "up", "succeeded", "migrate"),
            row("0002", "down", "succeeded", "migrate"),
            row("0001", "down", "succeeded", "migrate"),
        ]
    );
    let history = project.run(&["history", "--json"]);
    history.expect(exit::OK);
    let rows = history.json();
    assert_eq!(rows.as_array().unwrap().len(), 6);
    assert_eq!(
        rows[0]["checksum"].as_str().unwrap().len(),
        "sha256:".len() + 64
    );
    assert!(rows[0]["installed_by"].as_str().unwrap().contains('@'));
    assert_eq!(
        rows[0]["tool_version"],
        format!("safeshift {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(rows[0]["statements_total"], 1);
}

#[test]
fn up_to_a_version_and_down_to_a_version() {
    let project = two_migrations();
    project.migration(
        "0003_create_c.sql",
        "CREATE TABLE c (id INTEGER);",
        "DROP TABLE c;",
    );
    project.run(&["up", "--to", "0002"]).expect(exit::OK);
    assert!(table_exists(&project, "b") && !table_exists(&project, "c"));
    project.run(&["up"]).expect(exit::OK);
    project.run(&["down", "--to", "0001"]).expect(exit::OK);
    assert!(
        table_exists(&project, "a") && !table_exists(&project, "b") && !table_exists(&project, "c")
    );
    let unknown = project.run(&["up", "--to", "0042"]);
    unknown.expect(exit::USAGE);
    assert!(
        unknown.stderr.contains("no migration has that version"),
        "{}",
        unknown.stderr
    );
    project.run(&["up", "--to", "banana"]).expect(exit::USAGE);
}

#[test]
fn status_json_and_human_output() {
    let project = two_migrations();
    project.run(&["up", "--to", "0001"]).expect(exit::OK);
    let status = project.run(&["status", "--json"]);
    status.expect(exit::OK);
    let report = status.json();
    assert_eq!(report["pending"], 1);
    assert_eq!(report["engine"], "sqlite");
    assert_eq!(report["entries"][0]["state"], "applied");
    assert_eq!(report["entries"][1]["state"], "pending");
    assert_eq!(report["entries"][1]["has_down"], true);
    let human = project.run(&["status"]);
    snapshot_settings(&project).bind(|| insta::assert_snapshot!("sqlite_status", human.stdout));
}

#[test]
fn dry_run_prints_the_sql_and_changes_nothing() {
    let project = Project::sqlite();
    project.write(
        "0001_orders.sql",
        "-- migrate:up lock_timeout:2s\nCREATE TABLE orders (id INTEGER PRIMARY KEY);\nCREATE INDEX orders_id ON orders (id);\n-- migrate:down\nDROP TABLE orders;\n",
    );
    project.write(
        "0002_vacuum.sql",
        "-- migrate:up transaction:false\nVACUUM;\n",
    );
    let dry = project.run(&["up", "--dry-run"]);
    dry.expect(exit::OK);
    assert!(
        !project.path().join("app.db").exists(),
        "a dry run must not create the database"
    );
    snapshot_settings(&project).bind(|| insta::assert_snapshot!("sqlite_dry_run", dry.stdout));
    let json = project.run(&["up", "--dry-run", "--json"]).json();
    assert_eq!(
        json["steps"][0]["frame"]["before"][0],
        "PRAGMA busy_timeout = 2000"
    );
    assert_eq!(json["steps"][1]["transactional"], false);
}

#[test]
fn a_failed_statement_rolls_back_and_is_recorded() {
    let project = Project::sqlite();
    project.write(
        "0001_bad.sql",
        "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\nINSERT INTO a (id, nme)\n  VALUES (1, 2);\n-- migrate:down\nDROP TABLE a;\n",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    assert!(
        failed.stderr.contains("migrations/0001_bad.sql:3:1"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("statement 2 of 2"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("no column named nme"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("rolled back"), "{}", failed.stderr);
    assert!(
        !table_exists(&project, "a"),
        "the transaction must be rolled back"
    );
    assert_eq!(
        history_rows(&project),
        [row("0001", "up", "failed", "migrate")]
    );
    let history = project.run(&["history", "--json"]).json();
    assert_eq!(history[0]["error_line"], 3);
    assert_eq!(
        history[0]["error_statement"],
        "INSERT INTO a (id, nme)\n  VALUES (1, 2)"
    );
    assert_eq!(history[0]["statements_applied"], 0);
    assert_eq!(
        project.run(&["status", "--json"]).json()["entries"][0]["state"],
        "failed"
    );

    project.write("0001_bad.sql", "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY, nme INTEGER);\nINSERT INTO a (id, nme) VALUES (1, 2);\n-- migrate:down\nDROP TABLE a;\n");
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        history_rows(&project),
        [
            row("0001", "up", "failed", "migrate"),
            row("0001", "up", "succeeded", "migrate")
        ]
    );
}

#[test]
fn failure_output_shows_the_statement() {
    let project = Project::sqlite();
    project.write(
        "0001_bad.sql",
        "-- migrate:up\nCREATE TABLE a (id INTEGER);\nINSERT INTO missing_table VALUES (1);\n",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    snapshot_settings(&project)
        .bind(|| insta::assert_snapshot!("sqlite_failed_statement", failed.stderr));
}

#[test]
fn up_json_reports_success_and_failure() {
    let project = two_migrations();
    let ok = project.run(&["up", "--json"]);
    ok.expect(exit::OK);
    let report = ok.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["report"]["migrations"].as_array().unwrap().len(), 2);
    project.migration(
        "0003_bad.sql",
        "INSERT INTO nowhere VALUES (1);",
        "SELECT 1;",
    );
    let failed = project.run(&["up", "--json"]);
    failed.expect(exit::MIGRATION_FAILED);
    let report = failed.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["error"]["kind"], "migration-failed");
    assert_eq!(report["error"]["exit_code"], 1);
    assert_eq!(report["error"]["migration"]["statement"]["line"], 2);
    let down = project.run(&["down", "--json"]);
    down.expect(exit::OK);
    assert_eq!(down.json()["report"]["migrations"][0]["version"], "0002");
}

#[test]
fn checksum_mismatch_stops_up_and_repair_accepts_it() {
    let project = two_migrations();
    project.run(&["up", "--to", "0001"]).expect(exit::OK);
    // Line endings and a byte-order mark are not changes.
    project.write(
        "0001_create_a.sql",
        "\u{feff}-- migrate:up\r\nCREATE TABLE a (id INTEGER PRIMARY KEY);\r\n\r\n-- migrate:down\r\nDROP TABLE a;\r\n",
    );
    project.run(&["up", "--to", "0001"]).expect(exit::OK);
    // An edit is.
    project.migration(
        "0001_create_a.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY); -- edited",
        "DROP TABLE a;",
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused.stderr.contains("migrations/0001_create_a.sql"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("recorded sha256:") && refused.stderr.contains("now      sha256:"),
        "{}",
        refused.stderr
    );
    assert!(
        !table_exists(&project, "b"),
        "nothing may run after a checksum mismatch"
    );
    assert_eq!(
        project.run(&["status", "--json"]).json()["entries"][0]["state"],
        "changed"
    );

    let repaired = project.run(&["repair", "--reason", "comment only"]);
    repaired.expect(exit::OK);
    assert!(
        repaired
            .stdout
            .contains("accepted migrations/0001_create_a.sql"),
        "{}",
        repaired.stdout
    );
    let history = project.run(&["history", "--json"]).json();
    let repair_row = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "repair")
        .unwrap();
    assert!(
        repair_row["note"]
            .as_str()
            .unwrap()
            .contains("reason: comment only")
    );
    project.run(&["up"]).expect(exit::OK);
    assert!(table_exists(&project, "b"));
    assert!(
        project
            .run(&["repair"])
            .expect(exit::OK)
            .stdout
            .contains("Nothing to repair")
    );
    project.run(&["repair", "0002"]).expect(exit::USAGE);
}

#[test]
fn out_of_order_versions_are_refused_unless_allowed() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    project.migration(
        "0003_c.sql",
        "CREATE TABLE c (id INTEGER);",
        "DROP TABLE c;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_b.sql",
        "CREATE TABLE b (id INTEGER);",
        "DROP TABLE b;",
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused.stderr.contains("0002") && refused.stderr.contains("--allow-out-of-order"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        project.run(&["status", "--json"]).json()["entries"][1]["out_of_order"],
        true
    );
    project
        .run(&["up", "--allow-out-of-order"])
        .expect(exit::OK);
    assert!(table_exists(&project, "b"));
}

#[test]
fn down_requires_a_down_section_and_names_the_migration() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    project.write(
        "0002_b.sql",
        "-- migrate:up\nCREATE TABLE b (id INTEGER);\n-- migrate:down\n-- nothing here\n",
    );
    project.write("0003_c.up.sql", "CREATE TABLE c (id INTEGER);\n");
    project.run(&["up"]).expect(exit::OK);
    let refused = project.run(&["down", "--steps", "3"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused
            .stderr
            .contains("0003: migrations/0003_c.up.sql has no rollback: write 0003_c.down.sql"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("0002: the down section of migrations/0002_b.sql is empty"),
        "{}",
        refused.stderr
    );
    assert!(
        table_exists(&project, "c"),
        "nothing may be rolled back when one of them cannot be"
    );
    project.run(&["down", "--steps", "0"]).expect(exit::USAGE);
}

#[test]
fn resolve_records_manual_changes() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    project.migration(
        "0002_b.sql",
        "CREATE TABLE b (id INTEGER);",
        "DROP TABLE b;",
    );
    project.run(&["up", "--to", "0001"]).expect(exit::OK);
    let resolved = project.run(&[
        "resolve",
        "0002",
        "--applied",
        "--reason",
        "created by hand during the incident",
    ]);
    resolved.expect(exit::OK);
    assert!(
        resolved.stdout.contains("recorded 0002 as applied by hand"),
        "{}",
        resolved.stdout
    );
    project.run(&["status", "--exit-code"]).expect(exit::OK);
    project
        .run(&["resolve", "0002", "--applied"])
        .expect(exit::USAGE);
    project
        .run(&["resolve", "0001", "--rolled-back"])
        .expect(exit::OK);
    project
        .run(&["resolve", "0009", "--applied"])
        .expect(exit::USAGE);
    let history = project.run(&["history", "--json"]).json();
    let resolves: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "resolve")
        .collect();
    assert_eq!(resolves.len(), 2);
    assert!(
        resolves[0]["note"]
            .as_str()
            .unwrap()
            .contains("during the incident")
    );
    assert_eq!(resolves[1]["direction"], "down");
    // Clap requires one of --applied / --rolled-back.
    project.run(&["resolve", "0001"]).expect(exit::USAGE);
}

#[test]
fn init_and_new_write_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| -> common::Run {
        common::Run::from(
            std::process::Command::new(common::safeshift_bin())
                .current_dir(dir.path())
                .env_remove("DATABASE_URL")
                .env("NO_COLOR", "1")
                .args(args)
                .output()
                .unwrap(),
        )
    };
    run(&["init"]).expect(exit::OK);
    assert!(dir.path().join("safeshift.toml").is_file());
    assert!(
        dir.path().join("app.db").is_file(),
        "init creates the history in the configured database"
    );
    assert!(
        run(&["init"])
            .expect(exit::OK)
            .stdout
            .contains("already exists")
    );
    run(&["new", "add", "users", "table"]).expect(exit::OK);
    let first = dir.path().join("migrations/0001_add_users_table.sql");
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(
        text.contains("-- migrate:up") && text.contains("-- migrate:down"),
        "{text}"
    );
    // A second `new` works while the first is still empty.
    run(&["new", "Add e-mail index!"]).expect(exit::OK);
    assert!(
        dir.path()
            .join("migrations/0002_add_e_mail_index.sql")
            .is_file()
    );
    // The empty migration is an error until it is written.
    let status = run(&["status"]);
    status.expect(exit::INVALID_FILES);
    assert!(
        status.stderr.contains("the up section has no statements"),
        "{}",
        status.stderr
    );
    std::fs::write(
        &first,
        text.replace(
            "-- migrate:up\n",
            "-- migrate:up\nCREATE TABLE users (id INTEGER);\n",
        ),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("migrations/0002_add_e_mail_index.sql")).unwrap();
    run(&["up"]).expect(exit::OK);
    run(&["new", "--timestamp", "later"]).expect(exit::OK);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.len() == "20261121000000_later.sql".len() && n.ends_with("_later.sql")),
        "{names:?}"
    );
    run(&["new", "--layout", "pair", "paired"]).expect(exit::OK);
    run(&["new", "!!!"]).expect(exit::USAGE);
}

#[test]
fn new_follows_the_pair_layout_of_the_directory() {
    let project = Project::sqlite();
    project.write("0007_a.up.sql", "CREATE TABLE a (id INTEGER);\n");
    project.write("0007_a.down.sql", "DROP TABLE a;\n");
    project.run(&["new", "second"]).expect(exit::OK);
    assert!(project.migrations().join("0008_second.up.sql").is_file());
    assert!(project.migrations().join("0008_second.down.sql").is_file());
}

/// The malformed-file cases: each named with path and line, exit 3, and nothing applied.
#[test]
fn malformed_files_are_reported_and_nothing_is_applied() {
    let cases: &[(&str, &[u8], &str, &str)] = &[
        (
            "0002_duplicate.sql",
            b"-- migrate:up\nCREATE TABLE dup (id INTEGER);\n",
            "version 0002 is also used by",
            "0002_other.sql",
        ),
        (
            "0002_no_up.sql",
            b"CREATE TABLE x (id INTEGER);\n",
            "no `-- migrate:up` section",
            "0002_no_up.sql:1:1",
        ),
        (
            "0002_option.sql",
            b"-- migrate:up transaction:nope\nSELECT 1;\n",
            "`transaction` takes true or false",
            "0002_option.sql:1:15",
        ),
        (
            "0002_unknown_option.sql",
            b"-- migrate:up retries:3\nSELECT 1;\n",
            "unknown option `retries`",
            "0002_unknown_option.sql:1:15",
        ),
        ("0002_empty.sql", b"", "the file is empty", "0002_empty.sql"),
        (
            "0002_latin1.sql",
            b"-- migrate:up\nINSERT INTO a VALUES ('caf\xe9');\n",
            "not valid UTF-8",
            "0002_latin1.sql:2:",
        ),
        (
            "0002_orphan.down.sql",
            b"DROP TABLE a;\n",
            "down file has no up file",
            "0002_orphan.down.sql",
        ),
    ];
    for (name, contents, message, location) in cases {
        let project = Project::sqlite();
        project.migration(
            "0001_a.sql",
            "CREATE TABLE a (id INTEGER);",
            "DROP TABLE a;",
        );
        if *name == "0002_duplicate.sql" {
            project.write(
                "0002_other.sql",
                b"-- migrate:up\nCREATE TABLE other (id INTEGER);\n",
            );
        }
        project.write(name, contents);
        let run = project.run(&["up"]);
        assert_eq!(run.code, exit::INVALID_FILES, "{name}: {}", run.all());
        assert!(
            run.stderr.contains(message),
            "{name}: expected `{message}` in\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(location),
            "{name}: expected `{location}` in\n{}",
            run.stderr
        );
        assert!(
            !table_exists_or_missing(&project, "a"),
            "{name}: nothing may be applied"
        );
    }
}

fn table_exists_or_missing(project: &Project, table: &str) -> bool {
    project.path().join("app.db").exists() && table_exists(project, table)
}

#[test]
fn malformed_file_output() {
    let project = Project::sqlite();
    project.write(
        "0001_a.sql",
        "-- header\n-- migrate:up transaction:flase\nCREATE TABLE a (id INTEGER);\n",
    );
    let run = project.run(&["status"]);
    run.expect(exit::INVALID_FILES);
    snapshot_settings(&project)
        .bind(|| insta::assert_snapshot!("sqlite_unknown_option", run.stderr));
}

#[test]
fn a_non_transactional_migration_resumes_at_the_failed_statement() {
    let project = Project::sqlite();
    project.migration(
        "0001_log.sql",
        "CREATE TABLE log (step INTEGER);",
        "DROP TABLE log;",
    );
    project.write(
        "0002_steps.sql",
        "-- migrate:up transaction:false\nINSERT INTO log VALUES (1);\nINSERT INTO log VALUES (2);\nINSERT INTO missing VALUES (3);\nINSERT INTO log VALUES (4);\n",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    assert!(
        failed
            .stderr
            .contains("the first 2 statement(s) stay applied"),
        "{}",
        failed.stderr
    );
    let status = project.run(&["status", "--json"]).json();
    assert_eq!(status["entries"][1]["state"], "partial");
    assert_eq!(status["entries"][1]["partial"]["applied"], 2);

    // Changing an applied statement is refused; fixing the failed one resumes.
    project.write(
        "0002_steps.sql",
        "-- migrate:up transaction:false\nINSERT INTO log VALUES (10);\nINSERT INTO log VALUES (2);\nINSERT INTO log VALUES (3);\nINSERT INTO log VALUES (4);\n",
    );
    project.run(&["up"]).expect(exit::REFUSED);
    project.write(
        "0002_steps.sql",
        "-- migrate:up transaction:false\nINSERT INTO log VALUES (1);\nINSERT INTO log VALUES (2);\nINSERT INTO log VALUES (3);\nINSERT INTO log VALUES (4);\n",
    );
    let resumed = project.run(&["up"]);
    resumed.expect(exit::OK);
    assert!(
        resumed.stdout.contains("resuming at statement 3"),
        "{}",
        resumed.stdout
    );
    let connection = rusqlite::Connection::open(project.path().join("app.db")).unwrap();
    let steps: Vec<i64> = connection
        .prepare("SELECT step FROM log ORDER BY rowid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(steps, [1, 2, 3, 4], "each statement exactly once");
}

#[test]
fn sqlite_statements_that_cannot_run_in_a_transaction() {
    let project = Project::sqlite();
    project.write(
        "0001_fk.sql",
        "-- migrate:up\nPRAGMA foreign_keys = off;\nCREATE TABLE a (id INTEGER);\n",
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::INVALID_FILES);
    assert!(
        refused
            .stderr
            .contains("`PRAGMA foreign_keys` has no effect inside a transaction"),
        "{}",
        refused.stderr
    );
    project.write("0001_fk.sql", "-- migrate:up transaction:false\nPRAGMA foreign_keys = off;\nCREATE TABLE a (id INTEGER);\nVACUUM;\n");
    project.run(&["up"]).expect(exit::OK);
}

#[test]
fn configuration_file_environment_and_flags() {
    let project = Project::sqlite();
    std::fs::write(
        project.path().join("safeshift.toml"),
        "directory = \"db/changes\"\n[database]\nurl = \"sqlite://${SAFESHIFT_TEST_DB_NAME:-fallback}.db\"\n[history]\ntable = \"log\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(project.path().join("db/changes")).unwrap();
    std::fs::write(
        project.path().join("db/changes/0001_a.sql"),
        "-- migrate:up\nCREATE TABLE a (id INTEGER);\n",
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(common::safeshift_bin());
        command
            .current_dir(project.path())
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        common::Run::from(command.output().unwrap())
    };
    run(&["up"], &[]).expect(exit::OK);
    assert!(project.path().join("fallback.db").is_file());
    run(&["up"], &[("SAFESHIFT_TEST_DB_NAME", "named")]).expect(exit::OK);
    assert!(project.path().join("named.db").is_file());
    let connection = rusqlite::Connection::open(project.path().join("named.db")).unwrap();
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM safeshift_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the history table name comes from the file");
    // -C runs from another directory; --dir overrides the file.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(common::safeshift_bin());
    command
        .current_dir(elsewhere.path())
        .env_remove("DATABASE_URL")
        .args(["-C", project.path().to_str().unwrap(), "status", "--json"]);
    let status = common::Run::from(command.output().unwrap());
    status.expect(exit::OK);
    assert_eq!(status.json()["pending"], 0);

    std::fs::write(
        project.path().join("safeshift.toml"),
        "[database]\nurl = \"${SAFESHIFT_TEST_UNSET_VARIABLE}\"\n",
    )
    .unwrap();
    let unset = run(&["status"], &[]);
    unset.expect(exit::USAGE);
    assert!(
        unset
            .stderr
            .contains("SAFESHIFT_TEST_UNSET_VARIABLE is not set"),
        "{}",
        unset.stderr
    );
    std::fs::write(
        project.path().join("safeshift.toml"),
        "[databse]\nurl = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let typo = run(&["status"], &[]);
    typo.expect(exit::USAGE);
    assert!(
        typo.stderr.contains("safeshift.toml:1") && typo.stderr.contains("databse"),
        "{}",
        typo.stderr
    );
    std::fs::write(
        project.path().join("safeshift.toml"),
        "[migrate]\nlock_timeout = \"soon\"\n",
    )
    .unwrap();
    run(&["status"], &[]).expect(exit::USAGE);
}

#[test]
fn bad_and_missing_urls_are_usage_errors() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    let mysql = project.run(&["--database-url", "mysql://root:hunter2@db/app", "status"]);
    mysql.expect(exit::USAGE);
    assert!(
        mysql.stderr.contains("not supported yet"),
        "{}",
        mysql.stderr
    );
    assert!(!mysql.all().contains("hunter2"));
    let mut command = std::process::Command::new(common::safeshift_bin());
    command
        .current_dir(project.path())
        .env_remove("DATABASE_URL")
        .arg("status");
    let missing = common::Run::from(command.output().unwrap());
    missing.expect(exit::USAGE);
    assert!(
        missing.stderr.contains("no database URL"),
        "{}",
        missing.stderr
    );
    let nodir = project.run(&["--database-url", "sqlite://nowhere/x/app.db", "up"]);
    nodir.expect(exit::CONNECTION);
    assert!(nodir.stderr.contains("does not exist"), "{}", nodir.stderr);
}

#[test]
fn a_second_runner_waits_for_the_file_lock() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    project.run(&["up"]).expect(exit::OK);
    // Hold the lock file as another run would.
    let lock_path = project.path().join("app.db.safeshift-lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    file.lock().unwrap();
    std::fs::write(&lock_path, "deploy@ci-7 pid 4242 (run abc)").unwrap();
    let waited = project.run(&["--lock-wait", "1s", "down"]);
    waited.expect(exit::LOCK);
    assert!(
        waited
            .stdout
            .contains("waiting for the run lock, held by deploy@ci-7 pid 4242"),
        "{}",
        waited.all()
    );
    assert!(
        waited.stderr.contains("held by deploy@ci-7 pid 4242"),
        "{}",
        waited.stderr
    );
    assert!(table_exists(&project, "a"));
    // status never takes the lock.
    project.run(&["status"]).expect(exit::OK);
    drop(file);
    project.run(&["down"]).expect(exit::OK);
}

#[test]
fn unknown_directives_are_refused_before_anything_runs() {
    let project = Project::sqlite();
    project.write(
        "0001_a.sql",
        "-- migrate:up transaction:false\nCREATE TABLE a (x INTEGER);\n-- safeshift:backfil batch=100\nUPDATE a SET x = 1;\n",
    );
    let run = project.run(&["up"]);
    run.expect(exit::INVALID_FILES);
    assert!(
        run.stderr
            .contains("unknown directive `-- safeshift:backfil`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("0001_a.sql:3:1"), "{}", run.stderr);
    assert!(!table_exists_or_missing(&project, "a"));
    // The linter's own directives are left alone.
    project.write("0001_a.sql", "-- migrate:up\n-- safeshift:allow some-rule the table is tiny\nCREATE TABLE a (x INTEGER);\n");
    project.run(&["up"]).expect(exit::OK);
}
