//! Real projects' histories (issue 16) on a real PostgreSQL 15: every file problem of the
//! whole directory, both directions, in the first run and before the lint gate; empty and
//! comment-only down files as explicit no-ops; the advice after a failed `down`.

mod common;

use common::{Project, exit, pg_rows, pg_table_exists};
use safeshift_testkit::TestDatabase;

/// Problems in up files and in down files arrive together, in the first run, before the lint
/// gate looks at anything, and nothing is created, not even the history table.
#[test]
fn every_file_problem_in_both_directions_comes_before_the_lint_gate() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project
        .write(
            "0001_accounts.up.sql",
            "CREATE TABLE accounts (id int PRIMARY KEY);\n",
        )
        .write("0001_accounts.down.sql", "")
        .write(
            "0002_balance.up.sql",
            "BEGIN;\nALTER TABLE accounts ADD COLUMN balance int;\nCOMMIT;\n",
        )
        .write(
            "0002_balance.down.sql",
            "ALTER TABLE accounts DROP COLUMN balance;\n",
        )
        .write(
            "0003_widen.up.sql",
            "ALTER TABLE accounts ALTER COLUMN id TYPE bigint;\n",
        )
        .write(
            "0003_widen.down.sql",
            "-- narrow it again\nBEGIN;\nALTER TABLE accounts ALTER COLUMN id TYPE int;\nCOMMIT;\n",
        );

    let up = project.run(&["up"]);
    up.expect(exit::INVALID_FILES);
    for expected in [
        "migrations/0002_balance.up.sql:1:1",
        "migrations/0003_widen.down.sql:2:1",
        "2 problems in the migration files; nothing was applied",
    ] {
        assert!(
            up.stderr.contains(expected),
            "expected `{expected}` in\n{}",
            up.stderr
        );
    }
    assert!(
        !up.stderr.contains("finding"),
        "the files come before the lint gate:\n{}",
        up.stderr
    );
    let mut client = db.client();
    assert!(!pg_table_exists(&mut client, "safeshift.history"));
    assert!(!pg_table_exists(&mut client, "public.accounts"));

    // `plan` and `up --dry-run` see the same whole list.
    let plan = project.run(&["plan"]);
    plan.expect(exit::INVALID_FILES);
    assert!(
        plan.stderr.contains("0003_widen.down.sql:2:1"),
        "{}",
        plan.stderr
    );
    let dry_run = project.run(&["up", "--dry-run"]);
    dry_run.expect(exit::INVALID_FILES);
    assert!(
        dry_run.stderr.contains("0003_widen.down.sql:2:1"),
        "{}",
        dry_run.stderr
    );
}

/// A 0-byte down file and a comment-only down section are the same thing: an explicit no-op.
/// `up` accepts both, `down` steps over them with a history row that says so, `--strict`
/// refuses them naming the down file, and `--dry-run` says nothing would run for them.
#[test]
fn empty_and_comment_only_down_files_are_explicit_noops() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project
        .write("0001_a.up.sql", "CREATE TABLE a (id int);\n")
        .write("0001_a.down.sql", "DROP TABLE a;\n")
        .write("0002_b.up.sql", "CREATE TABLE b (id int);\n")
        .write("0002_b.down.sql", "")
        .write(
            "0003_c.sql",
            "-- migrate:up\nCREATE TABLE c (id int);\n-- migrate:down\n-- c stays: other services read it\n",
        );
    project.run(&["up"]).expect(exit::OK);

    let strict = project.run(&["down", "--to", "0", "--strict"]);
    strict.expect(exit::REFUSED);
    for expected in [
        "0002: migrations/0002_b.down.sql has no statements",
        "0003: the down section of migrations/0003_c.sql has no statements",
    ] {
        assert!(
            strict.stderr.contains(expected),
            "expected `{expected}` in\n{}",
            strict.stderr
        );
    }
    let mut client = db.client();
    assert!(
        pg_table_exists(&mut client, "public.a"),
        "--strict rolls back nothing"
    );

    let dry_run = project.run(&["down", "--to", "0", "--dry-run"]);
    dry_run.expect(exit::OK);
    assert!(
        dry_run.stdout.contains(
            "-- 0002 b (migrations/0002_b.down.sql): its down section holds no statements; nothing runs"
        ),
        "{}",
        dry_run.stdout
    );

    let down = project.run(&["down", "--to", "0"]);
    down.expect(exit::OK);
    assert!(
        down.stderr.contains(
            "0002: migrations/0002_b.down.sql has no statements; recorded as rolled back"
        ),
        "{}",
        down.stderr
    );
    assert!(!pg_table_exists(&mut client, "public.a"));
    assert!(
        pg_table_exists(&mut client, "public.b"),
        "a no-op runs nothing"
    );
    let rows = pg_rows(
        &mut client,
        "SELECT version, status, statements_total, note FROM safeshift.history \
         WHERE direction = 'down' ORDER BY id",
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0][0].as_deref(), Some("0003"));
    assert_eq!(rows[0][1].as_deref(), Some("succeeded"));
    assert_eq!(rows[0][2].as_deref(), Some("0"));
    assert!(
        rows[0][3]
            .as_deref()
            .is_some_and(|note| note.contains("no-op rollback: the down section of")),
        "{rows:?}"
    );
    assert!(
        rows[1][3]
            .as_deref()
            .is_some_and(|note| note.contains("0002_b.down.sql has no statements")),
        "{rows:?}"
    );
    let status = project.run(&["status", "--json"]).json();
    assert_eq!(status["pending"], 3);
}

/// After a failed `down`, the advice is about `down`: run the same `down` again (it resumes a
/// rollback stopped part-way), or record a rollback finished by hand; never `up`.
#[test]
fn a_failed_down_advises_down() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project
        .migration(
            "0001_a.sql",
            "CREATE TABLE a (id int);",
            "DROP TABLE a_misspelt;",
        )
        .write(
            "0002_b.sql",
            "-- migrate:up\nCREATE TABLE b (id int);\nCREATE TABLE c (id int);\n-- migrate:down transaction:false\nDROP TABLE c;\nDROP TABLE b_misspelt;\n",
        );
    project.run(&["up"]).expect(exit::OK);

    let partial = project.run(&["down"]);
    partial.expect(exit::MIGRATION_FAILED);
    for expected in [
        "the first 1 statement(s) of the rollback stay applied",
        "run the same `safeshift down` again: it resumes at the failed statement",
        "`safeshift resolve 0002 --rolled-back`",
    ] {
        assert!(
            partial.stderr.contains(expected),
            "expected `{expected}` in\n{}",
            partial.stderr
        );
    }
    assert!(
        !partial.stderr.contains("safeshift up"),
        "{}",
        partial.stderr
    );

    project.write(
        "0002_b.sql",
        "-- migrate:up\nCREATE TABLE b (id int);\nCREATE TABLE c (id int);\n-- migrate:down transaction:false\nDROP TABLE c;\nDROP TABLE b;\n",
    );
    project.run(&["down"]).expect(exit::OK);
    let transactional = project.run(&["down"]);
    transactional.expect(exit::MIGRATION_FAILED);
    assert!(
        transactional.stderr.contains(
            "the rollback's transaction was rolled back: migration 0001 is still applied"
        ),
        "{}",
        transactional.stderr
    );
    assert!(
        transactional
            .stderr
            .contains("run the same `safeshift down` again"),
        "{}",
        transactional.stderr
    );
    assert!(
        !transactional.stderr.contains("safeshift up"),
        "{}",
        transactional.stderr
    );
}

/// A generated history of 250 migrations with the shapes real projects have (up files that
/// open and commit their own transaction, down files that do, empty down files): the first run
/// reports every problem of both directions at once; fixed, the history goes up, down to 0 and
/// rehearses in one pass each.
#[test]
fn a_history_of_250_migrations_is_checked_in_one_pass_then_goes_up_down_and_rehearses() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    let generator = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/generate-rehearsal-project.sh");
    let status = std::process::Command::new("bash")
        .arg(generator)
        .arg(project.path())
        .arg("250")
        .status()
        .unwrap();
    assert!(status.success());
    let mut transaction_in_up = Vec::new();
    let mut transaction_in_down = Vec::new();
    let mut noop_downs = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(project.migrations())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let version: u32 = name[..4].parse().unwrap();
        let path = project.migrations().join(&name);
        let text = std::fs::read_to_string(&path).unwrap();
        let (up, down) = text.split_once("-- migrate:down\n").unwrap();
        let up = up.trim_start_matches("-- migrate:up\n").trim();
        if version % 50 == 10 {
            project.write(
                &name,
                format!("-- migrate:up\nBEGIN;\n{up}\nCOMMIT;\n\n-- migrate:down\n{down}"),
            );
            transaction_in_up.push(name);
        } else if version % 50 == 20 {
            project.write(
                &name,
                format!(
                    "-- migrate:up\n{up}\n\n-- migrate:down\nBEGIN;\n{}\nCOMMIT;\n",
                    down.trim()
                ),
            );
            transaction_in_down.push(name);
        } else if name.contains("_function_") && version % 20 == 4 {
            // Functions nothing else depends on: their rollback is an explicit no-op.
            project.remove(&name);
            let stem = name.trim_end_matches(".sql");
            project
                .write(&format!("{stem}.up.sql"), format!("{up}\n"))
                .write(&format!("{stem}.down.sql"), "");
            noop_downs.push(format!("{stem}.down.sql"));
        }
    }
    assert_eq!((transaction_in_up.len(), transaction_in_down.len()), (5, 5));

    let first = project.run(&["up"]);
    first.expect(exit::INVALID_FILES);
    for name in transaction_in_up.iter().chain(&transaction_in_down) {
        assert!(
            first.stderr.contains(name.as_str()),
            "{name}:\n{}",
            first.stderr
        );
    }
    assert!(
        first
            .stderr
            .contains("10 problems in the migration files; nothing was applied"),
        "{}",
        first.stderr
    );
    let mut client = db.client();
    assert!(!pg_table_exists(&mut client, "safeshift.history"));

    // What the messages say to do: manage the transaction themselves, without safeshift's.
    for name in &transaction_in_up {
        let text = std::fs::read_to_string(project.migrations().join(name)).unwrap();
        project.write(
            name,
            text.replacen("-- migrate:up\n", "-- migrate:up transaction:false\n", 1),
        );
    }
    for name in &transaction_in_down {
        let text = std::fs::read_to_string(project.migrations().join(name)).unwrap();
        project.write(
            name,
            text.replacen(
                "-- migrate:down\n",
                "-- migrate:down transaction:false\n",
                1,
            ),
        );
    }
    let up = project.run(&["up"]);
    up.expect(exit::OK);
    assert!(
        up.stdout.contains("Applied 250 migration(s)"),
        "{}",
        up.stdout
    );
    let down = project.run(&["down", "--to", "0"]);
    down.expect(exit::OK);
    assert!(
        down.stdout.contains("Rolled back 250 migration(s)"),
        "{}",
        down.stdout
    );
    for name in &noop_downs {
        assert!(
            down.stderr.contains(name.as_str()),
            "{name}: {}",
            down.stderr
        );
    }
    let scratch = safeshift_testkit::shared_server().admin_url();
    let rehearsal = project.run(&["rehearse", "--all", "--scratch-url", &scratch]);
    rehearsal.expect(exit::OK);
    assert!(
        rehearsal.stdout.contains("250 migrations rehearsed")
            && rehearsal.stdout.contains(" 0 failed"),
        "{}",
        rehearsal.stdout
    );
}
