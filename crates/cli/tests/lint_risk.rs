//! The risk policy on a real, populated PostgreSQL: floors by operation, the small-table limit
//! and the lock budget, in both modes (files alone and database connected), and `lint`, `plan`
//! and `up` grading the same migrations identically.

mod common;

use std::collections::BTreeMap;

use common::{Project, Run, exit};
use safeshift_testkit::TestDatabase;
use serde_json::Value;

/// Tables of 100,000 rows (`accounts`, `orders`) and one of 500 (`small`), created by an applied
/// migration and analysed.
fn populated() -> (TestDatabase, Project) {
    let database = TestDatabase::new();
    let project = Project::postgres(database.url());
    project.migration(
        "0001_tables.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(100), name text NOT NULL, status text, n integer);\n\
         INSERT INTO accounts SELECT g, 'a' || g || '@example.com', 'name ' || g, 'new', g FROM generate_series(1, 100000) g;\n\
         CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint, total numeric(10, 2), note text);\n\
         INSERT INTO orders SELECT g, g, g, 'note' FROM generate_series(1, 100000) g;\n\
         CREATE TABLE small (id bigint PRIMARY KEY, code text, n integer);\n\
         INSERT INTO small SELECT g, 'c' || g, g FROM generate_series(1, 500) g;\n\
         ANALYZE accounts, orders, small;",
        "DROP TABLE accounts, orders, small;",
    );
    project.run(&["up"]).expect(exit::OK);
    (database, project)
}

/// The statements of the risky migration, each with its rule and the risk expected with the
/// database and with the files alone.
const RISKY: &[(&str, &str, &str, &str)] = &[
    (
        "CREATE INDEX accounts_email_idx ON accounts (email);",
        "require-concurrent-index-creation",
        "medium",
        "high",
    ),
    (
        "CREATE INDEX small_code_idx ON small (code);",
        "require-concurrent-index-creation",
        "low",
        "high",
    ),
    (
        "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
        "setting-not-null-on-existing-column",
        "medium",
        "high",
    ),
    (
        "ALTER TABLE small ALTER COLUMN code SET NOT NULL;",
        "setting-not-null-on-existing-column",
        "medium",
        "high",
    ),
    (
        "ALTER TABLE accounts ALTER COLUMN n TYPE bigint;",
        "changing-column-type",
        "medium",
        "high",
    ),
    (
        "ALTER TABLE small ALTER COLUMN n TYPE bigint;",
        "changing-column-type",
        "medium",
        "high",
    ),
    (
        "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);",
        "adding-foreign-key-without-not-valid",
        "medium",
        "high",
    ),
    (
        "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total > 0);",
        "adding-check-without-not-valid",
        "medium",
        "high",
    ),
    (
        "ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);",
        "adding-unique-constraint",
        "medium",
        "high",
    ),
    (
        "ALTER TABLE accounts ALTER COLUMN email TYPE varchar(200);",
        "",
        "",
        "",
    ),
    (
        "UPDATE accounts SET status = 'active';",
        "unbatched-data-change",
        "high",
        "high",
    ),
    (
        "ALTER TABLE accounts RENAME COLUMN name TO full_name;",
        "renaming-column",
        "high",
        "high",
    ),
    (
        "ALTER TABLE accounts ALTER COLUMN full_name DROP NOT NULL;",
        "dropping-not-null",
        "low",
        "low",
    ),
    (
        "ALTER TABLE orders DROP COLUMN note;",
        "dropping-column",
        "high",
        "high",
    ),
    (
        "LOCK TABLE small IN SHARE MODE;",
        "locking-table",
        "medium",
        "medium",
    ),
    (
        "DELETE FROM small;",
        "unbatched-data-change",
        "high",
        "high",
    ),
    ("TRUNCATE orders;", "truncating-table", "high", "high"),
    (
        "DROP TABLE IF EXISTS scratch_import;",
        "dropping-table",
        "low",
        "low",
    ),
];

fn write_risky(project: &Project, acknowledge_high: bool) {
    let mut sql = String::new();
    for (statement, rule, with_database, _) in RISKY {
        if acknowledge_high && *with_database == "high" {
            sql.push_str(&format!(
                "-- safeshift:allow {rule} reviewed for the test\n"
            ));
        }
        sql.push_str(statement);
        sql.push('\n');
    }
    project.migration("0002_risky.sql", &sql, "SELECT 1;");
}

/// `(line, rule)` → risk of every finding in a `--format json` list.
fn risks(run: &Run) -> BTreeMap<(u64, String), String> {
    run.json()
        .as_array()
        .expect("a list of findings")
        .iter()
        .filter(|f| f["kind"] == "finding")
        .map(|f| {
            (
                (
                    f["line"].as_u64().unwrap(),
                    f["rule"].as_str().unwrap().to_owned(),
                ),
                f["risk"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The finding of `rule` on the line of `statement` (the migration's body starts on line 2).
fn risk_of(
    risks: &BTreeMap<(u64, String), String>,
    statement: usize,
    rule: &str,
) -> Option<String> {
    risks.get(&(statement as u64 + 2, rule.to_owned())).cloned()
}

#[test]
fn with_a_database_every_blocking_or_data_losing_statement_is_medium_or_high_and_a_small_index_is_low()
 {
    let (_database, project) = populated();
    write_risky(&project, false);
    let with_database = project.run(&["lint", "--format", "json"]);
    with_database.expect(8);
    let files_alone = project.run(&["lint", "--no-database", "--format", "json"]);
    files_alone.expect(8);
    let (with_database, files_alone) = (risks(&with_database), risks(&files_alone));
    for (index, (statement, rule, expected_with_database, expected_alone)) in
        RISKY.iter().enumerate()
    {
        if rule.is_empty() {
            // varchar(100) → varchar(200) is binary-coercible: nothing to say in either mode.
            assert!(
                !with_database
                    .keys()
                    .chain(files_alone.keys())
                    .any(|(line, rule)| {
                        *line == index as u64 + 2 && rule == "changing-column-type"
                    }),
                "{statement} is flagged"
            );
            continue;
        }
        assert_eq!(
            risk_of(&with_database, index, rule).as_deref(),
            Some(*expected_with_database),
            "with the database: {statement}\n{with_database:#?}"
        );
        assert_eq!(
            risk_of(&files_alone, index, rule).as_deref(),
            Some(*expected_alone),
            "files alone: {statement}\n{files_alone:#?}"
        );
    }
}

#[test]
fn up_refuses_the_high_ones_unless_acknowledged_and_names_its_evaluation() {
    let (database, project) = populated();
    write_risky(&project, false);
    let refused = project.run(&["up"]);
    refused.expect(exit::REFUSED);
    let high = RISKY.iter().filter(|r| r.2 == "high").count();
    assert!(
        refused.stderr.contains(&format!(
            "{high} findings above medium risk in 1 migration stop `up`"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("Linted 1 pending migration, 18 statements (graded with the table sizes)"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("medium["),
        "only what blocks is shown: {}",
        refused.stderr
    );
    let mut client = database.client();
    assert_eq!(
        common::pg_value(&mut client, "SELECT count(*) FROM orders"),
        "100000",
        "nothing was applied"
    );

    write_risky(&project, true);
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        common::pg_value(&mut client, "SELECT count(*) FROM orders"),
        "0"
    );
    assert_eq!(
        common::pg_value(
            &mut client,
            "SELECT count(*) FROM pg_indexes WHERE indexname IN ('accounts_email_idx', 'small_code_idx')"
        ),
        "2"
    );
}

#[test]
fn lint_plan_and_up_grade_the_same_migrations_identically() {
    let (_database, project) = populated();
    write_risky(&project, false);
    let lint = risks(&project.run(&["lint", "--format", "json"]));
    let plan = project.run(&["plan", "--format", "json"]);
    plan.expect(exit::OK);
    let plan: Value = plan.json();
    assert_eq!(plan["sized"], true);
    let planned: BTreeMap<(u64, String), String> = plan["migrations"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                (
                    f["line"].as_u64().unwrap(),
                    f["rule"].as_str().unwrap().to_owned(),
                ),
                f["risk"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(lint, planned, "lint and plan disagree");
    let lint_high = lint.values().filter(|r| *r == "high").count();
    let refused = project.run(&["up"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused
            .stderr
            .contains(&format!("{lint_high} findings above medium risk")),
        "up counts what lint counts ({lint_high} high): {}",
        refused.stderr
    );
}

#[test]
fn the_lock_budget_and_the_small_table_limit_are_settings() {
    let (_database, project) = populated();
    // An index build on 100,000 rows takes tens of milliseconds: over a 1 ms budget.
    std::fs::write(
        project.path().join("safeshift.toml"),
        "[lint]\nlock_budget = \"1ms\"\nsmall_table_rows = 100\n",
    )
    .unwrap();
    project.migration(
        "0002_changes.sql",
        "CREATE INDEX accounts_status_idx ON accounts (status);\n\
         CREATE INDEX small_n_idx ON small (n);",
        "SELECT 1;",
    );
    let run = project.run(&["lint", "--format", "json"]);
    let risks = risks(&run);
    assert_eq!(
        risks
            .get(&(2, "require-concurrent-index-creation".into()))
            .map(String::as_str),
        Some("high"),
        "{risks:#?}"
    );
    // 500 rows is not small under a limit of 100: MEDIUM at least, and over the 1 ms budget
    // only if the estimate says so.
    assert_ne!(
        risks
            .get(&(3, "require-concurrent-index-creation".into()))
            .map(String::as_str),
        Some("low"),
        "{risks:#?}"
    );
}

#[test]
fn lint_finds_the_database_the_way_up_does() {
    let (database, project) = populated();
    write_risky(&project, false);
    std::fs::write(
        project.path().join("safeshift.toml"),
        format!("[database]\nurl = \"{}\"\n", database.url()),
    )
    .unwrap();
    let lint_without_flag = |args: &[&str]| {
        let mut command = std::process::Command::new(common::safeshift_bin());
        command.current_dir(project.path()).args(args);
        for variable in ["DATABASE_URL", "SAFESHIFT_DATABASE_URL", "SAFESHIFT_CONFIG"] {
            command.env_remove(variable);
        }
        Run::from(command.output().unwrap())
    };
    let connected = lint_without_flag(&["lint", "--format", "json-report"]);
    let report = connected.json();
    assert_eq!(
        report["files"].as_array().unwrap().len(),
        1,
        "only the pending migration, as with --database-url: {}",
        connected.stdout
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| !f["estimate"].is_null()),
        "graded with sizes"
    );
    let alone = lint_without_flag(&["lint", "--no-database", "--format", "json-report"]);
    let report = alone.json();
    assert_eq!(report["files"].as_array().unwrap().len(), 2, "every file");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["estimate"].is_null())
    );

    std::fs::write(
        project.path().join("safeshift.toml"),
        "[database]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n",
    )
    .unwrap();
    let unreachable = lint_without_flag(&["lint"]);
    unreachable.expect(exit::CONNECTION);
    assert!(
        unreachable.stderr.contains("--no-database"),
        "says how to lint without it: {}",
        unreachable.stderr
    );
    lint_without_flag(&["lint", "--no-database"]).expect(8);
}

#[test]
fn a_fresh_up_is_not_stopped_by_scratch_tables_or_type_changes_in_utc() {
    let database = TestDatabase::new();
    let project = Project::postgres(database.url());
    project.migration(
        "0001_events.sql",
        "CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamp, updated_at timestamp);",
        "DROP TABLE events;",
    );
    let mut conversions = String::from("SET timezone = 'UTC';\n");
    for column in ["created_at", "updated_at"] {
        conversions.push_str(&format!(
            "ALTER TABLE events ALTER COLUMN {column} TYPE timestamptz;\n"
        ));
    }
    project.migration(
        "0002_timestamptz.sql",
        &conversions,
        "ALTER TABLE events ALTER COLUMN created_at TYPE timestamp;",
    );
    project.migration(
        "0003_import.sql",
        "DROP TABLE IF EXISTS tmp_import;\n\
         CREATE TEMPORARY TABLE tmp_import (id bigint);\n\
         INSERT INTO tmp_import VALUES (1);\n\
         INSERT INTO events (id) SELECT id FROM tmp_import;\n\
         DROP TABLE tmp_import;",
        "DELETE FROM events WHERE id = 1;",
    );
    for args in [
        &["lint", "--no-database", "--format", "json"][..],
        &["lint", "--format", "json"],
    ] {
        let run = project.run(args);
        let risks = risks(&run);
        assert!(
            !risks.values().any(|r| r == "high"),
            "{args:?}: no HIGH finding: {risks:#?}"
        );
        assert!(
            !risks.keys().any(|(_, rule)| rule == "changing-column-type"),
            "{args:?}: {risks:#?}"
        );
    }
    project.run(&["up"]).expect(exit::OK);
    let mut client = database.client();
    assert_eq!(
        common::pg_value(
            &mut client,
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'created_at'"
        ),
        "timestamp with time zone"
    );
}

#[test]
fn dropping_a_table_no_migration_creates_is_high_only_when_the_database_has_it() {
    let database = TestDatabase::new();
    let mut client = database.client();
    client
        .batch_execute(
            "CREATE TABLE legacy_import (id bigint); INSERT INTO legacy_import SELECT generate_series(1, 10); ANALYZE legacy_import;",
        )
        .unwrap();
    let project = Project::postgres(database.url());
    project.migration(
        "0001_cleanup.sql",
        "DROP TABLE IF EXISTS legacy_import;\nDROP TABLE IF EXISTS never_existed;",
        "SELECT 1;",
    );
    let connected = risks(&project.run(&["lint", "--format", "json"]));
    assert_eq!(
        connected
            .get(&(2, "dropping-table".into()))
            .map(String::as_str),
        Some("high"),
        "the database has it, with rows: {connected:#?}"
    );
    assert_eq!(
        connected
            .get(&(3, "dropping-table".into()))
            .map(String::as_str),
        Some("low"),
        "{connected:#?}"
    );
    let alone = risks(&project.run(&["lint", "--no-database", "--format", "json"]));
    assert_eq!(
        alone.get(&(2, "dropping-table".into())).map(String::as_str),
        Some("low")
    );
    project.run(&["up"]).expect(exit::REFUSED);
}

#[test]
fn the_old_type_of_a_column_no_migration_creates_comes_from_the_database() {
    let database = TestDatabase::new();
    let mut client = database.client();
    client
        .batch_execute("CREATE TABLE adopted (id integer PRIMARY KEY, email varchar(50));")
        .unwrap();
    let project = Project::postgres(database.url());
    project.migration(
        "0001_widen.sql",
        "ALTER TABLE adopted ALTER COLUMN email TYPE varchar(80);\nALTER TABLE adopted ALTER COLUMN email TYPE text;\nALTER TABLE adopted ALTER COLUMN id TYPE bigint;",
        "SELECT 1;",
    );
    let connected = project.run(&["lint", "--format", "json"]);
    let findings: Vec<Value> = connected
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "changing-column-type")
        .cloned()
        .collect();
    assert_eq!(
        findings.len(),
        1,
        "only integer → bigint rewrites: {findings:#?}"
    );
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("from integer to bigint")
    );
    let alone = project.run(&["lint", "--no-database", "--format", "json"]);
    let unknown: Vec<Value> = alone
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "changing-column-type")
        .cloned()
        .collect();
    assert_eq!(unknown.len(), 3);
    assert!(
        unknown[0]["message"]
            .as_str()
            .unwrap()
            .contains("the old type of `email` is unknown"),
        "{unknown:#?}"
    );
}

#[test]
fn the_check_before_up_counts_every_pending_migration_not_only_the_refused_ones() {
    let (_database, project) = populated();
    for number in 2..=30 {
        project.migration(
            &format!("{number:04}_change.sql"),
            &format!("ALTER TABLE small ADD COLUMN c{number} text;"),
            &format!("ALTER TABLE small DROP COLUMN c{number};"),
        );
    }
    project.migration(
        "0031_drop.sql",
        "ALTER TABLE orders DROP COLUMN note;",
        "SELECT 1;",
    );
    let refused = project.run(&["up"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused
            .stderr
            .contains("Linted 30 pending migrations, 30 statements (graded with the table sizes)"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("1 finding above medium risk in 1 migration stop `up`"),
        "{}",
        refused.stderr
    );
    // `up --to` checks only what it would apply.
    project.run(&["up", "--to", "0030"]).expect(exit::OK);
}
