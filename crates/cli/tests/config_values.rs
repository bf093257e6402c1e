//! Values PostgreSQL cannot take are configuration errors (exit 2, or 3 in a migration file)
//! found before anything connects or runs, naming the setting and the limit, instead of a
//! failure at run time: timeouts past PostgreSQL's range (milliseconds in a 32-bit integer,
//! about 24.8 days) or too short to express, and history names PostgreSQL reserves or cannot
//! store.

mod common;

use common::{Project, Run, exit};
use safeshift_testkit::TestDatabase;

fn project(db: &TestDatabase) -> Project {
    let project = Project::postgres(db.url());
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY);",
        "DROP TABLE accounts;",
    );
    project
}

fn with_config<'a>(project: &'a Project, config: &str) -> &'a Project {
    std::fs::write(project.path().join("safeshift.toml"), config).unwrap();
    project
}

/// The run failed with `code` before any migration ran, with every `needle` in its message.
#[track_caller]
fn assert_rejected(run: &Run, code: i32, needles: &[&str], db: &TestDatabase) {
    run.expect(code);
    let text = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in needles {
        assert!(
            text.contains(needle),
            "`{needle}` missing from:\n{}",
            run.stderr
        );
    }
    let mut client = db.client();
    assert_eq!(
        common::pg_value(
            &mut client,
            "SELECT count(*) FROM pg_class WHERE relname = 'accounts'"
        ),
        "0",
        "a migration ran"
    );
}

#[test]
fn timeouts_past_what_postgresql_accepts_are_usage_errors() {
    let db = TestDatabase::new();
    let project = project(&db);
    for (flag, value) in [
        ("--statement-timeout", "30d"),
        ("--lock-timeout", "18446744073709551615s"),
        ("--lock-timeout", "0.5ms"),
    ] {
        let run = project.run(&[flag, value, "up"]);
        assert_rejected(&run, exit::USAGE, &[flag, value], &db);
    }
    let too_long = project.run(&["--statement-timeout", "30d", "up"]);
    assert!(
        too_long.stderr.contains("2147483647ms"),
        "the limit is named:\n{}",
        too_long.stderr
    );
    // The longest PostgreSQL takes is accepted.
    project
        .run(&[
            "--statement-timeout",
            "2147483647ms",
            "--lock-timeout",
            "24d",
            "up",
        ])
        .expect(exit::OK);
}

#[test]
fn timeouts_past_the_range_in_the_configuration_file_are_usage_errors() {
    let db = TestDatabase::new();
    let project = project(&db);
    for (config, key) in [
        (
            "[migrate]\nstatement_timeout = \"30d\"\n",
            "migrate.statement_timeout",
        ),
        (
            "[migrate]\nlock_timeout = \"0.1ms\"\n",
            "migrate.lock_timeout",
        ),
        ("[lock]\nlease = \"18446744073709551615s\"\n", "lock.lease"),
        ("[online]\nlock_timeout = \"40d\"\n", "online.lock_timeout"),
        (
            "[environments.staging]\nurl = \"sqlite://x.db\"\nstatement_timeout = \"30d\"\n",
            "statement_timeout",
        ),
    ] {
        let args: &[&str] = if config.contains("environments") {
            &["--env", "staging", "up", "--yes"]
        } else {
            &["up"]
        };
        let run = with_config(&project, config).run(args);
        assert_rejected(&run, exit::USAGE, &[key], &db);
    }
}

#[test]
fn a_timeout_past_the_range_in_a_migration_file_is_a_file_error() {
    let db = TestDatabase::new();
    let project = project(&db);
    project.write(
        "0002_slow.sql",
        "-- migrate:up statement_timeout:30d\nSELECT 1;\n-- migrate:down\nSELECT 1;\n",
    );
    let run = project.run(&["up"]);
    assert_rejected(
        &run,
        exit::INVALID_FILES,
        &["0002_slow.sql", "statement_timeout"],
        &db,
    );
    project.write(
        "0002_slow.sql",
        "-- migrate:up transaction:false\n-- safeshift:backfill lock-timeout=30d\n\
         UPDATE accounts SET id = id;\n-- migrate:down\nSELECT 1;\n",
    );
    let run = project.run(&["up"]);
    assert_rejected(
        &run,
        exit::INVALID_FILES,
        &["0002_slow.sql", "lock-timeout"],
        &db,
    );
}

#[test]
fn history_names_postgresql_reserves_or_cannot_store_are_usage_errors() {
    let db = TestDatabase::new();
    let project = project(&db);
    for schema in ["pg_catalog", "information_schema", "pg_toast", "pg_mine"] {
        let run = project.run(&["--history-schema", schema, "up"]);
        assert_rejected(&run, exit::USAGE, &[schema, "history schema"], &db);
    }
    let run = with_config(&project, "[history]\ntable = \"hist\\u0000ory\"\n").run(&["up"]);
    assert_rejected(&run, exit::USAGE, &["history table", "NUL"], &db);
    let run = with_config(&project, "[history]\nschema = \"a\\u0000b\"\n").run(&["status"]);
    assert_rejected(&run, exit::USAGE, &["history schema", "NUL"], &db);
}
