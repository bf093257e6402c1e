//! `safeshift rehearse`, `schema` and `diff`, driven through the binary on real PostgreSQL.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{Project, safeshift_bin};
use safeshift_testkit::{TestDatabase, shared_server};

const REHEARSAL_FAILED: i32 = 11;
const SCHEMAS_DIFFER: i32 = 12;

/// A project rehearsed on the shared test server (a database is created and dropped for it).
fn rehearse(project: &Project, extra: &[&str]) -> common::Run {
    let scratch = shared_server().admin_url();
    let mut args = vec!["rehearse", "--all", "--scratch-url", scratch.as_str()];
    args.extend_from_slice(extra);
    project.run(&args)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_billing_example_rehearses_from_a_clean_checkout_on_a_throwaway_server() {
    let checkout = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/billing");
    copy_dir(&example, checkout.path());
    let started = Instant::now();
    let output = Command::new(safeshift_bin())
        .current_dir(checkout.path())
        .env_remove("DATABASE_URL")
        .env_remove("SAFESHIFT_DATABASE_URL")
        .env("NO_COLOR", "1")
        .args(["rehearse", "--rows", "500", "--details"])
        .output()
        .unwrap();
    let run = common::Run::from(output);
    eprintln!(
        "rehearsing examples/billing took {:.2} s, server start included",
        started.elapsed().as_secs_f64()
    );
    run.expect(0);
    assert!(run.stdout.contains("throwaway server"), "{}", run.stdout);
    assert!(
        run.stdout.contains("9 migrations rehearsed: 9 passed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("filled public.invoices with 500 rows"),
        "{}",
        run.stdout
    );
    // The VALIDATE in 0005 scans payments under SHARE UPDATE EXCLUSIVE, not ACCESS EXCLUSIVE.
    assert!(
        run.stdout
            .contains("SHARE UPDATE EXCLUSIVE  public.payments"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_generated_project_rehearses_up_down_up() {
    let project = Project::sqlite();
    let generator =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/generate-rehearsal-project.sh");
    let status = Command::new("bash")
        .arg(generator)
        .arg(project.path())
        .arg("30")
        .status()
        .unwrap();
    assert!(status.success());
    let run = rehearse(&project, &["--format", "json"]);
    run.expect(0);
    let report = run.json();
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 30);
    for migration in migrations {
        assert_eq!(migration["verdict"], "pass", "{migration:#}");
        assert_eq!(migration["rollback"]["status"], "exact");
        assert_eq!(migration["reapply"]["status"], "succeeded");
    }
}

#[test]
fn a_down_that_forgets_an_index_fails_with_a_diff_naming_it() {
    let project = Project::sqlite();
    project
        .migration(
            "0001_users.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
            "DROP TABLE users;",
        )
        .migration(
            "0002_index.sql",
            "CREATE INDEX users_email_idx ON users (email);",
            "SELECT 1;",
        );
    let run = rehearse(&project, &[]);
    run.expect(REHEARSAL_FAILED);
    assert!(run.stdout.contains("0002 index  FAIL"), "{}", run.stdout);
    assert!(
        run.stdout.contains("+ index users_email_idx on table public.users: only after down: CREATE INDEX users_email_idx ON public.users USING btree (email)"),
        "{}",
        run.stdout
    );
    let markdown = rehearse(&project, &["--format", "markdown"]);
    markdown.expect(REHEARSAL_FAILED);
    assert!(
        markdown.stdout.contains("### ❌ `0002` index"),
        "{}",
        markdown.stdout
    );
    assert!(
        markdown.stdout.contains("Rollback: **not exact**"),
        "{}",
        markdown.stdout
    );
}

#[test]
fn a_migration_that_cannot_run_again_fails_with_the_statement_and_error() {
    let project = Project::sqlite();
    project.migration(
        "0001_audit.sql",
        "CREATE TABLE audit (id bigint);\nCREATE TYPE audit_kind AS ENUM ('a');",
        "DROP TABLE audit;",
    );
    let run = rehearse(&project, &[]);
    run.expect(REHEARSAL_FAILED);
    assert!(run.stdout.contains("re-run failed"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("line 3: CREATE TYPE audit_kind AS ENUM ('a')"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("ERROR 42710"), "{}", run.stdout);
}

/// A project whose 0002 rewrites `orders` under ACCESS EXCLUSIVE.
fn widening_project() -> Project {
    let project = Project::sqlite();
    project
        .migration(
            "0001_orders.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, total integer);",
            "DROP TABLE orders;",
        )
        .migration(
            "0002_widen.sql",
            "ALTER TABLE orders ALTER COLUMN total TYPE bigint;",
            "ALTER TABLE orders ALTER COLUMN total TYPE integer;",
        );
    project
}

#[test]
fn a_rewrite_under_access_exclusive_without_sizes_is_a_lock_policy_warning() {
    let project = widening_project();
    let run = rehearse(&project, &["--format", "json"]);
    // Without sizes the tables are empty: the violation is reported, graded MEDIUM, a warning.
    run.expect(0);
    let report = run.json();
    let widen = &report["migrations"][1];
    let violation = &widen["policy_violations"][0];
    assert_eq!(violation["rule"], "rewrite-under-access-exclusive");
    assert_eq!(violation["risk"], "medium", "{violation:#}");
    assert_eq!(violation["time_under_lock_ms"], serde_json::Value::Null);
    assert!(
        violation["grade"]
            .as_str()
            .unwrap()
            .contains("rehearse with --rows N or --from-database URL"),
        "{violation:#}"
    );
    assert_eq!(widen["verdict"], "warn");
    // Statements count from 1 in JSON, as in the text reports.
    assert_eq!(widen["policy_violations"][0]["statement"], 1);
    assert_eq!(widen["statements"][0]["number"], 1);
    assert_eq!(
        widen["statements"][0]["rewrites"][0]["relation"],
        "public.orders"
    );
    let locks = widen["statements"][0]["locks"].as_array().unwrap();
    assert!(
        locks.iter().any(
            |lock| lock["relation"] == "public.orders" && lock["mode"] == "AccessExclusiveLock"
        ),
        "{locks:#?}"
    );
}

/// The rehearsal grades with the project's `[lint]` risk policy, as `lint`, `plan` and `up` do:
/// with a small-table limit of 100 rows, 500 rows is no longer small (MEDIUM), and with a lock
/// budget of 0 s any time under the lock is over it (HIGH, a failure).
#[test]
fn the_lint_risk_policy_settings_grade_the_rehearsal_too() {
    let project = widening_project();
    let violation = |run: &common::Run| run.json()["migrations"][1]["policy_violations"][0].clone();
    std::fs::write(
        project.path().join("safeshift.toml"),
        "[lint]\nsmall_table_rows = 100\n",
    )
    .unwrap();
    let run = rehearse(&project, &["--rows", "500", "--format", "json"]);
    run.expect(0);
    let graded = violation(&run);
    assert_eq!(graded["risk"], "medium", "{graded:#}");
    assert!(
        graded["grade"]
            .as_str()
            .unwrap()
            .contains("not a small table (~500 rows in the rehearsal, 100 or more)"),
        "{graded:#}"
    );

    std::fs::write(
        project.path().join("safeshift.toml"),
        "[lint]\nlock_budget = \"0s\"\n",
    )
    .unwrap();
    let run = rehearse(&project, &["--rows", "500", "--format", "json"]);
    run.expect(REHEARSAL_FAILED);
    assert_eq!(violation(&run)["risk"], "high", "{:#}", violation(&run));
}

#[test]
fn lock_policy_violations_are_graded_by_the_sizes_the_rehearsal_knows() {
    let project = widening_project();
    let violation = |run: &common::Run| run.json()["migrations"][1]["policy_violations"][0].clone();

    // --rows under the small-table threshold (1,000, lint's default): LOW, a warning.
    let small = rehearse(&project, &["--rows", "500", "--format", "json"]);
    small.expect(0);
    let graded = violation(&small);
    assert_eq!(graded["risk"], "low", "{graded:#}");
    assert_eq!(graded["table_rows"], 500);
    assert!(graded["time_under_lock_ms"].as_f64().unwrap() < 1000.0);
    assert!(
        graded["grade"]
            .as_str()
            .unwrap()
            .contains("a small table (~500 rows in the rehearsal, under 1,000)"),
        "{graded:#}"
    );

    // --rows at the threshold: not small, within the 1 s budget: MEDIUM, still a warning.
    let medium = rehearse(&project, &["--rows", "1000"]);
    medium.expect(0);
    assert!(
        medium.stdout.contains("0002 widen  WARN"),
        "{}",
        medium.stdout
    );
    assert!(
        medium.stdout.contains(
            "lock policy rewrite-under-access-exclusive (medium): public.orders is rewritten"
        ),
        "{}",
        medium.stdout
    );
    assert!(
        medium
            .stdout
            .contains("not a small table (~1,000 rows in the rehearsal, 1,000 or more)"),
        "{}",
        medium.stdout
    );

    // A real table of ~70 MB: the rewrite, scaled from the empty rehearsal table (16 kB) to its
    // size, is over the budget even at a fraction of a millisecond here: HIGH, a failure.
    let production = TestDatabase::new();
    production
        .client()
        .batch_execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, total integer, note text);
             INSERT INTO orders SELECT g, g, repeat('x', 300) FROM generate_series(1, 200000) g;
             ANALYZE orders;",
        )
        .unwrap();
    let production_project = Project::sqlite();
    production_project.migration(
        "0002_widen.sql",
        "ALTER TABLE orders ALTER COLUMN total TYPE bigint;",
        "ALTER TABLE orders ALTER COLUMN total TYPE integer;",
    );
    let scratch = shared_server().admin_url();
    let large = production_project.run(&[
        "rehearse",
        "--from-database",
        &production.url(),
        "--scratch-url",
        &scratch,
        "--format",
        "json",
    ]);
    large.expect(REHEARSAL_FAILED);
    let report = large.json();
    let widen = &report["migrations"][0];
    let graded = &widen["policy_violations"][0];
    assert_eq!(graded["risk"], "high", "{graded:#}");
    assert_eq!(widen["verdict"], "fail");
    assert!(
        graded["table_rows"].as_u64().unwrap() > 150_000,
        "{graded:#}"
    );
    assert!(
        graded["time_under_lock_ms"].as_f64().unwrap() > 1000.0,
        "{graded:#}"
    );
    assert!(
        graded["grade"]
            .as_str()
            .unwrap()
            .contains("under the lock, over the 1 s lock budget"),
        "{graded:#}"
    );
}

#[test]
fn keep_going_continues_from_the_up_state_after_a_failed_rerun() {
    let project = Project::sqlite();
    project
        .migration(
            "0001_users.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY);",
            "DROP TABLE users;",
        )
        // The down forgets the type: up cannot run again.
        .migration(
            "0002_audit.sql",
            "CREATE TABLE audit (id bigint);\nCREATE TYPE audit_kind AS ENUM ('a');",
            "DROP TABLE audit;",
        )
        // Needs both of 0002's objects: it passes only from the state after 0002's up.
        .migration(
            "0003_audit_kind.sql",
            "ALTER TABLE audit ADD COLUMN kind audit_kind;",
            "ALTER TABLE audit DROP COLUMN kind;",
        )
        .migration(
            "0004_posts.sql",
            "CREATE TABLE posts (id bigint PRIMARY KEY, author bigint REFERENCES users);",
            "DROP TABLE posts;",
        );
    let stopped = rehearse(&project, &["--format", "json"]);
    stopped.expect(REHEARSAL_FAILED);
    let report = stopped.json();
    assert_eq!(report["migrations"].as_array().unwrap().len(), 2);
    assert_eq!(report["not_rehearsed"], serde_json::json!(["0003", "0004"]));

    let run = rehearse(&project, &["--keep-going", "--format", "json"]);
    run.expect(REHEARSAL_FAILED);
    let report = run.json();
    assert_eq!(report["keep_going"], true);
    assert_eq!(report["not_rehearsed"], serde_json::json!([]));
    let migrations = report["migrations"].as_array().unwrap();
    let verdicts: Vec<&str> = migrations
        .iter()
        .map(|m| m["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["pass", "fail", "pass", "pass"], "{report:#}");
    assert_eq!(migrations[1]["reapply"]["status"], "failed");
    let continued = migrations[1]["continued"].as_str().unwrap();
    assert!(
        continued.contains("rebuilt to the state after this migration's up")
            && continued.contains("the up of 2 pending migrations replayed"),
        "{continued}"
    );
    assert!(!continued.contains("differs"), "{continued}");
    assert_eq!(migrations[2]["rollback"]["status"], "exact");
    assert_eq!(migrations[0]["continued"], serde_json::Value::Null);

    let human = rehearse(&project, &["--keep-going"]);
    human.expect(REHEARSAL_FAILED);
    assert!(
        human
            .stdout
            .contains("↻ --keep-going: the scratch database was rebuilt"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("4 migrations rehearsed: 3 passed, 0 with warnings, 1 failed"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stderr
            .contains("--keep-going: rebuilding the state after 0002's up (2 ups to replay)"),
        "{}",
        human.stderr
    );
}

#[test]
fn keep_going_stops_at_a_failed_first_up_and_rebuilds_after_a_failed_non_transactional_down() {
    let project = Project::sqlite();
    project
        .write(
            "0001_users.sql",
            "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n\n\
             -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY users_missing_idx;\nDROP TABLE users;\n",
        )
        .migration(
            "0002_index.sql",
            "CREATE INDEX users_email_idx ON users (email);",
            "DROP INDEX users_email_idx;",
        )
        .migration(
            "0003_broken.sql",
            "ALTER TABLE nowhere ADD COLUMN x integer;",
            "SELECT 1;",
        )
        .migration(
            "0004_after.sql",
            "CREATE TABLE after_broken (id bigint);",
            "DROP TABLE after_broken;",
        );
    let run = rehearse(&project, &["--keep-going", "--format", "json"]);
    run.expect(REHEARSAL_FAILED);
    let report = run.json();
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 3, "{report:#}");
    assert_eq!(migrations[0]["rollback"]["status"], "failed");
    assert!(
        migrations[0]["continued"]
            .as_str()
            .unwrap()
            .contains("rebuilt to the state after this migration's up"),
        "{report:#}"
    );
    // 0002 needs 0001's table: rehearsed from the rebuilt state.
    assert_eq!(migrations[1]["verdict"], "pass", "{report:#}");
    // A failed first up has no up state to go on from.
    assert!(migrations[2]["up_failure"].is_object());
    assert_eq!(migrations[2]["continued"], serde_json::Value::Null);
    assert_eq!(report["not_rehearsed"], serde_json::json!(["0004"]));
}

#[test]
fn keep_going_says_when_the_rebuilt_schema_differs_from_the_first_up() {
    let project = Project::sqlite();
    project
        // Not deterministic: each run creates a table of another name; the down leaves both.
        .migration(
            "0001_random.sql",
            "CREATE TABLE fixed (id integer);\n\
             DO $$ BEGIN EXECUTE format('CREATE TABLE random_%s (id integer)', \
             floor(random() * 1e9)::bigint); END $$;",
            "SELECT 1;",
        )
        .migration(
            "0002_next.sql",
            "ALTER TABLE fixed ADD COLUMN note text;",
            "ALTER TABLE fixed DROP COLUMN note;",
        );
    let run = rehearse(&project, &["--keep-going", "--format", "json"]);
    run.expect(REHEARSAL_FAILED);
    let report = run.json();
    let continued = report["migrations"][0]["continued"].as_str().unwrap();
    assert!(
        continued.contains("the rebuilt schema differs from the one the first up made in 2 places"),
        "{continued}"
    );
    assert_eq!(report["migrations"][1]["verdict"], "pass", "{report:#}");
}

#[test]
fn a_migration_without_down_whose_up_changes_the_schema_is_reported_irreversible() {
    let project = Project::sqlite();
    project
        .write(
            "0001_tokens.sql",
            "-- migrate:up\nCREATE EXTENSION IF NOT EXISTS pgcrypto;\n\
             CREATE TABLE tokens (id uuid PRIMARY KEY DEFAULT gen_random_uuid());\n",
        )
        .write(
            "0002_seed.sql",
            "-- migrate:up\nINSERT INTO tokens DEFAULT VALUES;\n",
        );
    let run = rehearse(&project, &["--format", "json"]);
    run.expect(0);
    let report = run.json();
    let tokens = &report["migrations"][0];
    assert_eq!(tokens["verdict"], "warn");
    assert_eq!(tokens["rollback"]["status"], "no-down");
    let irreversible: Vec<&str> = tokens["irreversible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change.as_str().unwrap())
        .collect();
    assert!(
        irreversible.contains(&"created extension pgcrypto")
            && irreversible.contains(&"created table public.tokens"),
        "{irreversible:?}"
    );
    let reason = tokens["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("irreversible: no down section, and up created")
            && reason.contains("`safeshift down` refuses to go past it"),
        "{reason}"
    );
    let seed = &report["migrations"][1];
    assert_eq!(seed["irreversible"], serde_json::json!([]));
    assert_eq!(
        seed["reasons"][0],
        "no down section: rollback not rehearsed (up changed no schema object)"
    );
    let strict = rehearse(&project, &["--strict"]);
    strict.expect(REHEARSAL_FAILED);
    assert!(
        strict.stdout.contains("0001 tokens  FAIL")
            && strict
                .stdout
                .contains("irreversible: no down section, and up created"),
        "{}",
        strict.stdout
    );
}

#[test]
fn expectations_that_are_not_met_fail() {
    let project = Project::sqlite();
    project.migration(
        "0001_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
        "DROP TABLE users;",
    );
    let expect = project.path().join("expect.yaml");
    std::fs::write(
        &expect,
        "migrations:\n  \"0001\":\n    add:\n      tables: [users]\n",
    )
    .unwrap();
    rehearse(&project, &["--expect", expect.to_str().unwrap()]).expect(0);
    std::fs::write(
        &expect,
        "migrations:\n  \"0001\":\n    add:\n      tables: [users]\n      indexes: [users.users_email_idx]\n",
    )
    .unwrap();
    let run = rehearse(&project, &["--expect", expect.to_str().unwrap()]);
    run.expect(REHEARSAL_FAILED);
    assert!(
        run.stdout
            .contains("expected index public.users.users_email_idx to be added, but it was not"),
        "{}",
        run.stdout
    );
}

#[test]
fn from_database_copies_the_schema_and_scales_durations() {
    let production = TestDatabase::new();
    production
        .client()
        .batch_execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, kind text);
             INSERT INTO events SELECT g, 'k' || g FROM generate_series(1, 20000) g;
             ANALYZE events;",
        )
        .unwrap();
    let project = Project::sqlite();
    project.migration(
        "0001_index_events.sql",
        "CREATE INDEX events_kind_idx ON events (kind);",
        "DROP INDEX events_kind_idx;",
    );
    let scratch = shared_server().admin_url();
    let run = project.run(&[
        "rehearse",
        "--from-database",
        &production.url(),
        "--scratch-url",
        &scratch,
        "--rows",
        "100",
        "--format",
        "json",
    ]);
    run.expect(0);
    let report = run.json();
    assert_eq!(report["starting_point"]["kind"], "copied");
    let statement = &report["migrations"][0]["statements"][0];
    assert_eq!(statement["scans"][0]["relation"], "public.events");
    let basis = statement["estimate"]["basis"].as_str().unwrap();
    assert!(basis.contains("for public.events"), "{basis}");
    assert!(
        report["estimate_method"]
            .as_str()
            .unwrap()
            .contains("scaled linearly")
    );
}

#[test]
fn schema_and_diff_describe_and_compare_databases() {
    let first = TestDatabase::new();
    let second = TestDatabase::new();
    first
        .client()
        .batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)")
        .unwrap();
    second
        .client()
        .batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, email text)")
        .unwrap();
    let project = Project::postgres(first.url());
    let schema = project.run(&["schema"]);
    schema.expect(0);
    assert!(
        schema.stdout.contains("table public.users"),
        "{}",
        schema.stdout
    );
    assert!(
        schema.stdout.contains("  email text NOT NULL"),
        "{}",
        schema.stdout
    );
    let json = project.run(&["schema", "--json"]);
    assert_eq!(
        json.json()["tables"]["public.users"]["columns"]["email"]["not_null"],
        true
    );

    let same = project.run(&["diff", &first.url(), &first.url(), "--exit-code"]);
    same.expect(0);
    assert!(same.stdout.contains("the schemas are the same"));
    let differ = project.run(&["diff", &first.url(), &second.url(), "--exit-code"]);
    differ.expect(SCHEMAS_DIFFER);
    assert!(
        differ
            .stdout
            .contains("~ column email on table public.users: not null is true in A, false in B"),
        "{}",
        differ.stdout
    );
}

/// A long history's report leads with one line per migration, then only what did not pass,
/// with long SQL folded; the Markdown fits a pull-request comment (65,536 characters) and points
/// at the full report, which `--full-report` writes.
#[test]
fn a_long_history_report_leads_with_a_summary_and_fits_a_pull_request_comment() {
    let project = Project::sqlite();
    let generator =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/generate-rehearsal-project.sh");
    let status = Command::new("bash")
        .arg(generator)
        .arg(project.path())
        .arg("150")
        .status()
        .unwrap();
    assert!(status.success());
    // Every index migration (2, 7, 12, …) forgets its index in its down: 30 failures, each
    // with a diff, and one long statement in each.
    let mut failing = Vec::new();
    for i in (2..=150).step_by(5) {
        let base = (i - 1) / 5 * 5 + 1;
        let padding = "x".repeat(400);
        let name = format!("{i:04}_index_t{base}_name.sql");
        project.write(
            &name,
            format!(
                "-- migrate:up\nCREATE INDEX IF NOT EXISTS t{base}_name_idx ON t{base} (name);\nALTER TABLE t{base} ADD COLUMN note text DEFAULT '{padding}';\n\n-- migrate:down\nALTER TABLE t{base} DROP COLUMN note;\n"
            ),
        );
        failing.push(format!("{i:04}"));
    }
    let full = project.path().join("full.md");
    let markdown = rehearse(
        &project,
        &[
            "--format",
            "markdown",
            "--full-report",
            full.to_str().unwrap(),
        ],
    );
    markdown.expect(REHEARSAL_FAILED);
    let comment = markdown.stdout.trim_end();
    assert!(
        comment.chars().count() <= 65_536,
        "{} characters",
        comment.chars().count()
    );
    assert!(
        comment.contains("150 migrations, 120 passed"),
        "{}",
        &comment[..500]
    );
    for version in ["0001", "0075", "0150"] {
        assert!(
            comment.contains(&format!("| `{version}` |")),
            "{version} in the summary"
        );
    }
    assert!(
        comment.contains("full.md"),
        "the comment points at the full report"
    );
    let full_text = std::fs::read_to_string(&full).unwrap();
    for version in &failing {
        assert!(
            full_text.contains(&format!("### ❌ `{version}`")),
            "{version} in the full report"
        );
    }
    assert!(full_text.chars().count() > comment.chars().count());

    let human = rehearse(&project, &[]);
    human.expect(REHEARSAL_FAILED);
    let lines: Vec<&str> = human.stdout.lines().collect();
    let first_details = lines
        .iter()
        .position(|line| line.contains("LINE") && line.contains("STATEMENT"))
        .expect("a statement table");
    let last_summary_row = lines
        .iter()
        .rposition(|line| line.starts_with("0150 "))
        .expect("a summary row for 0150");
    assert!(
        last_summary_row < first_details,
        "the summary comes before the details"
    );
    let longest = lines.iter().map(|l| l.chars().count()).max().unwrap();
    assert!(longest <= 200, "a line of {longest} characters");
    // Passing migrations have their summary line only.
    assert!(
        !human.stdout.contains("0001 create_table_t1  PASS"),
        "{}",
        &human.stdout[..2000]
    );
    assert!(human.stdout.contains("0002 index_t1_name  FAIL"));
}

/// A long view definition that changed deep inside: the diff shows where.
#[test]
fn a_schema_diff_shows_the_changed_part() {
    let project = Project::sqlite();
    let columns: Vec<String> = (1..=40).map(|i| format!("c{i}")).collect();
    let table = format!(
        "CREATE TABLE wide (id bigint, {});",
        columns
            .iter()
            .map(|c| format!("{c} integer"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let view = |condition: &str| {
        format!(
            "CREATE VIEW wide_view AS SELECT id, {} FROM wide WHERE {condition};",
            columns.join(", ")
        )
    };
    project
        .migration("0001_wide.sql", &table, "DROP TABLE wide;")
        .migration("0002_view.sql", &view("c40 > 0"), "DROP VIEW wide_view;")
        .migration(
            "0003_replace.sql",
            "SELECT 1;",
            &format!("DROP VIEW wide_view;\n{}", view("c40 >= 0")),
        );
    let run = rehearse(&project, &[]);
    run.expect(REHEARSAL_FAILED);
    let line = run
        .stdout
        .lines()
        .find(|line| line.contains("view public.wide_view"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("> 0") && line.contains(">= 0"), "{line}");
    assert!(line.chars().count() <= 300, "{line}");
}

#[test]
fn the_lock_model_agrees_with_what_the_rehearsal_observes() {
    // The tables exist (applied) before the rehearsed migrations, so the linter predicts locks
    // on them, which the rehearsal compares with what the server does.
    let database = TestDatabase::new();
    let project = Project::postgres(database.url());
    project
        .migration(
            "0001_tables.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY);\n\
             CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint CONSTRAINT orders_user_id_fkey REFERENCES users, total int);",
            "DROP TABLE orders, users;",
        )
        .migration(
            "0002_categories.sql",
            "CREATE TABLE categories (id bigint PRIMARY KEY, parent_id bigint REFERENCES categories, owner_id bigint REFERENCES users);",
            "DROP TABLE categories;",
        )
        .migration(
            "0003_check.sql",
            "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total > 0) NOT VALID;\n\
             ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;",
            "ALTER TABLE orders DROP CONSTRAINT orders_total_check;",
        )
        .migration(
            "0004_foreign_key.sql",
            "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;\n\
             ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users NOT VALID;\n\
             ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;",
            "ALTER TABLE orders DROP CONSTRAINT orders_user_fk;\n\
             ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users;",
        );
    project.run(&["up", "--to", "0001"]).expect(0);
    let scratch = shared_server().admin_url();
    let run = project.run(&["rehearse", "--scratch-url", &scratch, "--format", "json"]);
    let report = run.json();
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for migration in report["migrations"].as_array().unwrap() {
        for statement in migration["statements"].as_array().unwrap() {
            compared += statement["locks"].as_array().unwrap().len();
            for disagreement in statement["lint_disagreements"].as_array().unwrap() {
                disagreements.push(format!(
                    "{} line {}: {disagreement}",
                    migration["version"], statement["line"]
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "the rehearsal contradicts the lock model:\n{}",
        disagreements.join("\n")
    );
    assert_eq!(
        report["migrations"].as_array().unwrap().len(),
        3,
        "the pending ones: {}",
        run.stdout
    );
    assert!(
        compared > 5,
        "locks were observed on the tables in use: {}",
        run.stdout
    );
}
