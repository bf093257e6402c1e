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
        .args(["rehearse", "--rows", "500"])
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

#[test]
fn a_rewrite_under_access_exclusive_breaks_the_lock_policy() {
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
    let run = rehearse(&project, &["--format", "json"]);
    run.expect(REHEARSAL_FAILED);
    let report = run.json();
    let widen = &report["migrations"][1];
    assert_eq!(
        widen["policy_violations"][0]["rule"],
        "rewrite-under-access-exclusive"
    );
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
