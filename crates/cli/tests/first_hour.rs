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

/// With `--json`, a failure of any kind prints the same `{"ok": false, "error": …}` object on
/// stdout: a connection failure, malformed files and a usage error alike.
#[test]
fn every_failure_with_json_prints_the_error_object() {
    let unreachable = Project::postgres("postgres://nobody@127.0.0.1:1/nothing".into());
    for args in [
        &["status", "--json"][..],
        &["up", "--json"],
        &["history", "--json"],
    ] {
        let run = unreachable.run(args);
        run.expect(exit::CONNECTION);
        let value = run.json();
        assert_eq!(value["ok"], false, "{args:?}: {value}");
        assert_eq!(value["error"]["kind"], "database", "{args:?}: {value}");
        assert_eq!(value["error"]["exit_code"], 6, "{args:?}: {value}");
        assert!(
            value["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("could not connect")),
            "{args:?}: {value}"
        );
    }

    let project = Project::sqlite();
    project.write("0001_a.sql", "-- migrate:up\n");
    for args in [
        &["up", "--json"][..],
        &["down", "--json"],
        &["plan", "--format", "json"],
    ] {
        let run = project.run(args);
        run.expect(exit::INVALID_FILES);
        let value = run.json();
        assert_eq!(value["ok"], false, "{args:?}: {value}");
        assert_eq!(
            value["error"]["kind"], "invalid-migration-files",
            "{args:?}"
        );
        assert_eq!(
            value["error"]["problems"][0]["message"],
            "the up section has no statements"
        );
    }
    let usage = project.run(&["history", "--json", "--version", "x1"]);
    usage.expect(exit::USAGE);
    assert_eq!(usage.json()["error"]["kind"], "usage");
}

/// `history --version V` with no rows says so, on a history that has rows; `--limit 0` is a
/// usage error.
#[test]
fn history_says_what_was_asked() {
    let project = Project::sqlite();
    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    let empty = project.run(&["history"]);
    empty.expect(exit::OK);
    assert!(
        empty.stdout.contains("The history is empty."),
        "{}",
        empty.stdout
    );

    project.run(&["up"]).expect(exit::OK);
    let none = project.run(&["history", "--version", "42"]);
    none.expect(exit::OK);
    assert!(
        none.stdout
            .contains("No history rows for version 42 (the history has 1 row)."),
        "{}",
        none.stdout
    );
    let zero = project.run(&["history", "--limit", "0"]);
    zero.expect(exit::USAGE);
    assert!(zero.stderr.contains("--limit"), "{}", zero.stderr);
    let one = project.run(&["history", "--limit", "1"]);
    one.expect(exit::OK);
    assert!(one.stdout.contains("0001"), "{}", one.stdout);
}

/// After a runner was killed, the running attempt is counted: the counts add up.
#[test]
fn status_counts_add_up_after_a_killed_runner() {
    let project = Project::sqlite();
    project
        .migration(
            "0001_a.sql",
            "CREATE TABLE a (id INTEGER);",
            "DROP TABLE a;",
        )
        .migration(
            "0002_b.sql",
            "CREATE TABLE b (id INTEGER);",
            "DROP TABLE b;",
        )
        .migration(
            "0003_c.sql",
            "CREATE TABLE c (id INTEGER);",
            "DROP TABLE c;",
        );
    project.run(&["up", "--to", "0001"]).expect(exit::OK);
    // What a runner killed in the middle of 0002 leaves: its attempt still marked running.
    rusqlite::Connection::open(project.path().join("app.db"))
        .unwrap()
        .execute(
            "INSERT INTO safeshift_history (run_id, kind, version, name, file, direction, status, \
             transactional, statements_total, installed_by, db_user, tool_version) \
             VALUES ('killed', 'migrate', '0002', 'b', '0002_b.sql', 'up', 'running', 1, 1, 'u@h', 'main', 't')",
            [],
        )
        .unwrap();
    let status = project.run(&["status"]);
    status.expect(exit::OK);
    assert!(
        status
            .stdout
            .contains("3 migration(s): 1 applied, 1 pending, 1 running."),
        "{}",
        status.stdout
    );
    let counts = project.run(&["status", "--json"]).json()["counts"].clone();
    assert_eq!(counts["applied"], 1);
    assert_eq!(counts["pending"], 1);
    assert_eq!(counts["running"], 1);
}

/// The small things a new user notices: `explain` in columns, the same `[env: …]` in every
/// line of `--help`, a colon after the version in a status note.
#[test]
fn explain_help_and_status_notes_read_cleanly() {
    let project = Project::sqlite();
    let explain = project.run(&["explain"]);
    explain.expect(exit::OK);
    let columns: Vec<usize> = explain
        .stdout
        .lines()
        .filter(|line| {
            line.contains("  high  ") || line.contains("  low  ") || line.contains("  medium  ")
        })
        .map(|line| {
            let id_end = line.find(' ').unwrap();
            let risk_start = id_end + line[id_end..].find(|c: char| c != ' ').unwrap();
            let risk_end = risk_start + line[risk_start..].find(' ').unwrap();
            risk_end + line[risk_end..].find(|c: char| c != ' ').unwrap()
        })
        .collect();
    assert!(columns.len() > 10, "{}", explain.stdout);
    assert!(
        columns.iter().all(|c| *c == columns[0]),
        "the titles start in one column:\n{}",
        explain.stdout
    );

    let help = project.run(&["--help"]);
    help.expect(exit::OK);
    assert!(
        help.stdout.contains("[env: SAFESHIFT_CONFIG]"),
        "{}",
        help.stdout
    );
    assert!(
        help.stdout.contains("[env: SAFESHIFT_DATABASE_URL]"),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains("=]"), "{}", help.stdout);

    project.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);\nINSERT INTO nowhere VALUES (1);",
        "DROP TABLE a;",
    );
    project.run(&["up"]).expect(exit::MIGRATION_FAILED);
    let status = project.run(&["status"]);
    assert!(
        status.stdout.contains("! 0001: its last attempt failed"),
        "{}",
        status.stdout
    );
}

/// A value of the wrong type in safeshift.toml says what to write instead.
#[test]
fn configuration_type_errors_say_what_to_write() {
    let project = Project::sqlite();
    std::fs::write(
        project.path().join("safeshift.toml"),
        "[migrate]\nlock_timeout = 5\n",
    )
    .unwrap();
    let run = project.run(&["status"]);
    run.expect(exit::USAGE);
    assert!(run.stderr.contains("safeshift.toml:2"), "{}", run.stderr);
    assert!(
        run.stderr.contains(r#"write `lock_timeout = "5s"`"#),
        "{}",
        run.stderr
    );

    std::fs::write(
        project.path().join("safeshift.toml"),
        "[migrate]\nretries = \"3\"\n",
    )
    .unwrap();
    let run = project.run(&["status"]);
    run.expect(exit::USAGE);
    assert!(run.stderr.contains("write `retries = 3`"), "{}", run.stderr);
}

/// SIGTERM comes from a process manager, not a keyboard: the message says to send it again,
/// not to press anything.
#[test]
fn sigterm_says_to_send_it_again() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration("0001_slow.sql", "SELECT pg_sleep(60);", "SELECT 1;");
    let child = project
        .command(&["up"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = db.client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while common::backend_running(&mut client, "pg_sleep(60)").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the statement never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let run = common::Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{}", run.all());
    assert!(
        run.stderr.contains("(send SIGTERM again to exit at once)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("press"), "{}", run.stderr);
}

/// Each way a connection fails gets its own advice: a missing database (with the command that
/// creates it), a missing role, a refused or missing password, a server without TLS for
/// `sslmode=require`, and nothing listening.
#[test]
fn connection_failures_say_what_is_wrong() {
    let db = TestDatabase::new();
    let url = db.url();
    let (base, _) = url.rsplit_once('/').unwrap();
    let failure = |url: String| {
        let run = Project::postgres(url).run(&["status"]);
        run.expect(exit::CONNECTION);
        run.stderr
    };

    let missing_database = failure(format!("{base}/no_such_db"));
    assert!(
        missing_database.contains("createdb") && missing_database.contains("no_such_db"),
        "{missing_database}"
    );
    assert!(
        missing_database.contains(r#"CREATE DATABASE "no_such_db";"#),
        "{missing_database}"
    );

    let missing_role =
        failure(format!("{base}/postgres").replacen("postgres@", "no_such_role@", 1));
    assert!(
        missing_role.contains(r#"CREATE ROLE "no_such_role" LOGIN"#),
        "{missing_role}"
    );

    let no_tls = failure(format!("{base}/postgres?sslmode=require"));
    assert!(
        no_tls.contains("does not accept TLS") && no_tls.contains("sslmode=prefer"),
        "{no_tls}"
    );

    let nothing_listening = failure("postgres://postgres@127.0.0.1:1/postgres".into());
    assert!(
        nothing_listening.contains("nothing is listening on 127.0.0.1:1"),
        "{nothing_listening}"
    );

    // A refused and a missing password, on a server of our own that asks for one.
    let server = safeshift_testkit::PgServer::start().expect("private server");
    let mut admin = server.connect("postgres").unwrap();
    admin
        .batch_execute("CREATE ROLE app LOGIN PASSWORD 'right-horse'")
        .unwrap();
    let hba = server.base_dir().join("data/pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all app 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let port = server.port();
    let refused = failure(format!(
        "postgres://app:wrong-horse@127.0.0.1:{port}/postgres"
    ));
    assert!(
        refused.contains("password for role app was refused"),
        "{refused}"
    );
    assert!(!refused.contains("wrong-horse"), "{refused}");
    let missing = failure(format!("postgres://app@127.0.0.1:{port}/postgres"));
    assert!(missing.contains("PGPASSWORD"), "{missing}");
}

/// The milliseconds in a line like `applied 0001 a (1 statement(s), 19 ms)`.
fn printed_ms(output: &str, prefix: &str) -> u64 {
    let line = output
        .lines()
        .find(|line| line.contains(prefix))
        .unwrap_or_else(|| panic!("no line with `{prefix}` in\n{output}"));
    let (number, unit) = line
        .rsplit_once(", ")
        .or_else(|| line.rsplit_once('('))
        .map(|(_, rest)| rest.trim_end_matches(')'))
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("no duration in `{line}`"));
    let value: f64 = number.parse().unwrap_or_else(|_| panic!("`{line}`"));
    match unit {
        "ms" => value as u64,
        "s" => (value * 1000.0) as u64,
        other => panic!("unit `{other}` in `{line}`"),
    }
}

/// One meaning of a migration's duration: what `up` prints is what the history records and
/// `status` shows, on SQLite (whose commit waits for the disk) as on PostgreSQL.
#[test]
fn up_prints_the_duration_the_history_records() {
    let sqlite = Project::sqlite();
    sqlite.migration(
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER);",
        "DROP TABLE a;",
    );
    let db = TestDatabase::new();
    let postgres = Project::postgres(db.url());
    postgres.migration(
        "0001_a.sql",
        "CREATE TABLE a (id int);\nSELECT pg_sleep(0.05);",
        "DROP TABLE a;",
    );
    for project in [&sqlite, &postgres] {
        let up = project.run(&["up"]);
        up.expect(exit::OK);
        let printed = printed_ms(&up.all(), "applied 0001 a");
        let status = project.run(&["status", "--json"]).json();
        let recorded = status["entries"][0]["duration_ms"].as_u64().unwrap();
        assert_eq!(printed, recorded, "{}", up.all());
    }
}

/// A migration without a transaction reports each statement's own time, not the time since
/// the migration started.
#[test]
fn statement_progress_shows_each_statements_own_time() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.write(
        "0001_slow_then_quick.sql",
        "-- migrate:up transaction:false\nSELECT pg_sleep(0.6);\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\nDROP TABLE a;\n",
    );
    let up = project.run(&["up"]);
    up.expect(exit::OK);
    let output = up.all();
    assert!(printed_ms(&output, "statement 1/3 done") >= 600, "{output}");
    assert!(
        printed_ms(&output, "statement 3/3 done") < 500,
        "an instant CREATE TABLE after a 0.6 s statement:\n{output}"
    );
}

/// A statement already applied by a migration without a transaction changed before the resume:
/// the message names the file, the statement and its line, shows the text applied and the text
/// now, and offers a command that works.
#[test]
fn a_changed_applied_statement_is_named_and_shown() {
    changed_applied_statement(&Project::sqlite());
    let db = TestDatabase::new();
    changed_applied_statement(&Project::postgres(db.url()));
}

fn changed_applied_statement(project: &Project) {
    let file = "0001_steps.sql";
    let text = |first: &str, third: &str| {
        format!(
            "-- migrate:up transaction:false\n{first};\nCREATE TABLE b (id INTEGER);\n{third};\n-- migrate:down\nDROP TABLE b;\nDROP TABLE a;\n"
        )
    };
    project.write(
        file,
        text(
            "CREATE TABLE a (id INTEGER)",
            "INSERT INTO nowhere VALUES (1)",
        ),
    );
    project.run(&["up"]).expect(exit::MIGRATION_FAILED);
    // The failed statement is fixed, and the first one edited by mistake.
    project.write(
        file,
        text(
            "CREATE TABLE a (id INTEGER, name TEXT)",
            "CREATE TABLE c (id INTEGER)",
        ),
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::REFUSED);
    for expected in [
        "migrations/0001_steps.sql: statement 1 (line 2) of migration 0001 was applied before it changed",
        "applied: CREATE TABLE a (id INTEGER)",
        "now:     CREATE TABLE a (id INTEGER, name TEXT)",
        "`safeshift resolve 0001 --applied`",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "expected `{expected}` in\n{}",
            refused.stderr
        );
    }
    assert!(
        !refused.stderr.contains("statement 2 (line 3)"),
        "{}",
        refused.stderr
    );
    // Restoring the applied statement lets the run resume.
    project.write(
        file,
        text("CREATE TABLE a (id INTEGER)", "CREATE TABLE c (id INTEGER)"),
    );
    project.run(&["up"]).expect(exit::OK);

    // The command offered works as written; a missing resolution says both choices.
    let usage = project.run(&["resolve", "0001"]);
    usage.expect(exit::USAGE);
    assert!(usage.stderr.contains("--rolled-back"), "{}", usage.stderr);
}
