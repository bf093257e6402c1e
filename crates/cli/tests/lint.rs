//! `safeshift lint`, `safeshift explain`, and the lint gate in `safeshift up`, driven through the
//! real binary (against a real PostgreSQL where a database is involved).

use std::path::Path;
use std::process::Command;

use safeshift_lint::RuleId;
use safeshift_testkit::TestDatabase;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `dir` with a clean environment.
fn safeshift(dir: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_safeshift"));
    command.current_dir(dir).args(args);
    for variable in [
        "DATABASE_URL",
        "SAFESHIFT_DATABASE_URL",
        "SAFESHIFT_CONFIG",
        "SAFESHIFT_MIGRATIONS_DIR",
        "SAFESHIFT_PG_VERSION",
    ] {
        command.env_remove(variable);
    }
    let output = command.output().expect("running safeshift");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The rule count `safeshift explain` states, checked against the lines it lists.
fn safeshift_lint_rule_count(listing: &str) -> usize {
    listing.lines().take_while(|l| !l.is_empty()).count()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}\n{}", run.stdout, run.stderr))
}

#[test]
fn findings_carry_file_position_rule_risk_lock_tables_and_help() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/0001_orders.sql",
        "-- migrate:up\nCREATE TABLE orders (id bigint PRIMARY KEY, status text);\n",
    );
    write(
        dir.path(),
        "migrations/0002_index.sql",
        "-- migrate:up\n\n  CREATE INDEX orders_status_idx\n    ON orders (status);\n",
    );
    let run = safeshift(dir.path(), &["lint", "--format", "json", "migrations"]);
    assert_eq!(run.code, 8, "{}{}", run.stdout, run.stderr);
    let findings = json(&run);
    assert_eq!(findings.as_array().unwrap().len(), 1, "{findings}");
    let finding = &findings[0];
    assert_eq!(finding["kind"], "finding");
    assert_eq!(finding["file"], "migrations/0002_index.sql");
    assert_eq!(
        (finding["line"].as_u64(), finding["column"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        finding["rule"],
        RuleId::RequireConcurrentIndexCreation.as_str()
    );
    assert_eq!(finding["risk"], "high");
    assert_eq!(finding["lock"], "SHARE");
    assert_eq!(finding["tables"], serde_json::json!(["orders"]));
    assert!(finding["help"].as_str().unwrap().contains("CONCURRENTLY"));
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("orders_status_idx")
    );
    assert_eq!(finding["file_risk"], "high");
    // The report format has every file, with its overall risk.
    let report = json(&safeshift(
        dir.path(),
        &["lint", "--format", "json-report", "migrations"],
    ));
    let files = report["files"].as_array().unwrap();
    assert_eq!(files[0]["risk"], Value::Null);
    assert_eq!(files[1]["risk"], "high");
    assert_eq!(report["findings"][0]["rule"], finding["rule"]);

    // A single file is linted with the rest of its directory as history: `orders` exists.
    let single = safeshift(
        dir.path(),
        &["lint", "--format", "json", "migrations/0002_index.sql"],
    );
    assert_eq!(json(&single).as_array().unwrap().len(), 1);

    // --fail-on decides the exit code; the human view names the rule and underlines the statement.
    let passing = safeshift(
        dir.path(),
        &[
            "lint",
            "--fail-on",
            "high",
            "--disable",
            RuleId::RequireConcurrentIndexCreation.as_str(),
            "migrations",
        ],
    );
    assert_eq!(passing.code, 0, "{}{}", passing.stdout, passing.stderr);
    let human = safeshift(dir.path(), &["lint", "migrations"]);
    assert!(
        human
            .stdout
            .contains("high[require-concurrent-index-creation]"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("--> migrations/0002_index.sql:3:3"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("^^^^^^^^"), "{}", human.stdout);
}

#[test]
fn no_false_alarms_on_the_safe_patterns() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/0001_base.sql",
        "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email varchar(100), name varchar, bio text);\n\
         CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);\n\
         -- an index on a table created in the same migration\nCREATE INDEX orders_user_id_idx ON orders (user_id);\n",
    );
    write(
        dir.path(),
        "migrations/0002_safe_changes.sql",
        "-- migrate:up\nALTER TABLE users\n    ADD COLUMN status text NOT NULL DEFAULT 'active',\n    ADD COLUMN created_at timestamptz DEFAULT now(),\n    \
         ADD COLUMN joined date DEFAULT CURRENT_DATE,\n    ADD COLUMN nickname text,\n    ALTER COLUMN email TYPE varchar(200),\n    ALTER COLUMN name TYPE text;\n\
         COMMENT ON COLUMN users.nickname IS 'optional';\n\
         CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active';\n\
         CREATE FUNCTION user_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM users';\n",
    );
    write(
        dir.path(),
        "migrations/0003_fk_not_valid.sql",
        "-- migrate:up\nALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n",
    );
    write(
        dir.path(),
        "migrations/0004_validate.sql",
        "-- migrate:up\nALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;\n",
    );
    write(
        dir.path(),
        "migrations/0005_index.sql",
        "-- migrate:up transaction:false\nDROP INDEX CONCURRENTLY IF EXISTS users_email_idx;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);\n",
    );
    let run = safeshift(dir.path(), &["lint", "--format", "json", "migrations"]);
    let report = json(&run);
    // The only finding is the style note on `varchar(100)` in CREATE TABLE, which the
    // widening test needs; no statement of the safe patterns is flagged.
    let findings: Vec<(&str, &str)> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file"].as_str().unwrap(), f["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        findings,
        [(
            "migrations/0001_base.sql",
            RuleId::PreferTextOverVarchar.as_str()
        )],
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 0);
}

#[test]
fn a_statement_that_does_not_parse_is_located_and_the_file_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "change.sql",
        "SELECT 1;\nALTER TABLE users ADD COLUMN email text NOT NUL;\nCREATE INDEX users_email_idx ON users (email);\n",
    );
    let run = safeshift(dir.path(), &["lint", "--format", "json", "change.sql"]);
    assert_eq!(run.code, 8);
    let report = json(&run);
    let diagnostic = &report[0];
    assert_eq!(diagnostic["kind"], "error");
    assert_eq!(diagnostic["rule"], "parse-error");
    assert_eq!(diagnostic["risk"], "high");
    assert_eq!(
        (diagnostic["line"].as_u64(), diagnostic["column"].as_u64()),
        (Some(2), Some(45))
    );
    assert!(diagnostic["message"].as_str().unwrap().contains("NUL"));
    let rules: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "finding")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&RuleId::RequireConcurrentIndexCreation.as_str()),
        "{rules:?}"
    );
}

#[test]
fn suppressions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/0001_t.sql",
        "-- migrate:up\nCREATE TABLE t (a int);\n",
    );
    write(
        dir.path(),
        "migrations/0002_ok.sql",
        "-- migrate:up\n-- safeshift:allow require-concurrent-index-creation t holds ten rows\nCREATE INDEX t_a ON t (a);\n",
    );
    let acknowledged = safeshift(dir.path(), &["lint", "--format", "json", "migrations"]);
    assert_eq!(acknowledged.code, 0, "{}", acknowledged.stdout);
    assert_eq!(json(&acknowledged)[0]["suppressed"], "t holds ten rows");

    write(
        dir.path(),
        "migrations/0003_bad.sql",
        "-- migrate:up\n-- safeshift:allow require-concurent-index-creation typo\n-- safeshift:allow-file dropping-table\n\
         -- safeshift:allow renaming-table nothing here renames\nALTER TABLE t ADD COLUMN b int;\n",
    );
    let run = safeshift(dir.path(), &["lint", "--format", "json", "migrations"]);
    assert_eq!(run.code, 8);
    let kinds: Vec<(String, String)> = json(&run)
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] != "finding")
        .map(|d| {
            (
                d["rule"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("unknown-rule".to_owned(), "error".to_owned()),
            ("missing-reason".to_owned(), "error".to_owned()),
            ("unused-suppression".to_owned(), "warning".to_owned()),
        ]
    );
}

#[test]
fn explain_prints_a_rule_page_and_lists_rules() {
    let dir = tempfile::tempdir().unwrap();
    let page = safeshift(
        dir.path(),
        &["explain", RuleId::AddingForeignKeyWithoutNotValid.as_str()],
    );
    assert_eq!(page.code, 0);
    assert!(
        page.stdout.contains("lock: SHARE ROW EXCLUSIVE"),
        "{}",
        page.stdout
    );
    assert!(page.stdout.contains("blocks: writes and schema changes"));
    assert!(page.stdout.contains("VALIDATE CONSTRAINT"));
    let list = safeshift(dir.path(), &["explain"]);
    let high_rules = list
        .stdout
        .lines()
        .filter(|l| l.contains("  high  "))
        .count();
    assert!(high_rules >= 10, "{}", list.stdout);
    assert!(list.stdout.contains(&format!(
        "{} rules.",
        safeshift_lint_rule_count(&list.stdout)
    )));
    let unknown = safeshift(dir.path(), &["explain", "no-such-rule"]);
    assert_eq!(unknown.code, 2);
}

#[test]
fn migration_files_named_one_by_one_are_linted_as_their_directory_is() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/0001_users.sql",
        "-- migrate:up\nCREATE TABLE users (id bigint, email varchar(50));\n",
    );
    write(
        dir.path(),
        "migrations/0002_widen.sql",
        "-- migrate:up\nALTER TABLE users ALTER COLUMN email TYPE varchar(80);\nCREATE INDEX users_email ON users (email);\n",
    );
    write(
        dir.path(),
        "migrations/0003_drop.sql",
        "-- migrate:up\nALTER TABLE users DROP COLUMN email;\n",
    );
    let directory = safeshift(dir.path(), &["lint", "--format", "json", "migrations"]);
    let files = safeshift(
        dir.path(),
        &[
            "lint",
            "--format",
            "json",
            "migrations/0001_users.sql",
            "migrations/0002_widen.sql",
            "migrations/0003_drop.sql",
        ],
    );
    assert_eq!(directory.code, 8);
    assert_eq!(
        directory.stdout, files.stdout,
        "naming every file is linting the directory"
    );
    let only = safeshift(
        dir.path(),
        &["lint", "--format", "json", "migrations/0002_widen.sql"],
    );
    let findings = json(&only);
    let rules: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"require-concurrent-index-creation")
            && !rules.contains(&"changing-column-type"),
        "the history gives the old type, so the widening is not flagged: {rules:?}"
    );
}

#[test]
fn up_refuses_an_unacknowledged_high_risk_migration() {
    let database = TestDatabase::new();
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    // A lock budget of a millisecond makes an index build on 20,000 rows HIGH, as a budget of a
    // second does on a table of gigabytes.
    write(
        dir.path(),
        "safeshift.toml",
        "[lint]\nlock_budget = \"1ms\"\n",
    );
    write(
        dir.path(),
        "migrations/0001_t.sql",
        "-- migrate:up\nCREATE TABLE t (a int);\nINSERT INTO t SELECT g FROM generate_series(1, 20000) g;\nANALYZE t;\n",
    );
    let first = safeshift(dir.path(), &["--database-url", &url, "up"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    write(
        dir.path(),
        "migrations/0002_index.sql",
        "-- migrate:up\nCREATE INDEX t_a ON t (a);\n",
    );
    let refused = safeshift(dir.path(), &["--database-url", &url, "up"]);
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("high[require-concurrent-index-creation]"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("under the lock, over the 1 ms lock budget"),
        "the refusal says why: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(
            "Linted 1 pending migration, 1 statement (graded with the table sizes): 1 high, 0 medium, 0 low, 0 acknowledged. 1 finding above medium risk in 1 migration stop `up`."
        ),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--allow-risk high"),
        "{}",
        refused.stderr
    );
    let mut client = database.client();
    let indexes: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 't_a'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(indexes, 0, "nothing was applied");

    let allowed = safeshift(
        dir.path(),
        &["--database-url", &url, "up", "--allow-risk", "high"],
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);

    write(
        dir.path(),
        "migrations/0003_index.sql",
        "-- migrate:up\n-- safeshift:allow require-concurrent-index-creation t is a ten-row lookup table\nCREATE INDEX t_a2 ON t (a);\n",
    );
    let acknowledged = safeshift(dir.path(), &["--database-url", &url, "up"]);
    assert_eq!(acknowledged.code, 0, "{}", acknowledged.stderr);
}

#[test]
fn with_a_database_lint_reports_pending_migrations_graded_by_table_size() {
    let database = TestDatabase::new();
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/0001_t.sql",
        "-- migrate:up\nCREATE TABLE t (a int);\nINSERT INTO t SELECT g FROM generate_series(1, 500) g;\nANALYZE t;\n",
    );
    assert_eq!(
        safeshift(dir.path(), &["--database-url", &url, "up"]).code,
        0
    );
    write(
        dir.path(),
        "migrations/0002_token.sql",
        "-- migrate:up\nALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid();\n",
    );
    let run = safeshift(
        dir.path(),
        &["--database-url", &url, "lint", "--format", "json-report"],
    );
    let report = json(&run);
    let files = report["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        1,
        "only the pending migration is reported: {}",
        run.stdout
    );
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == RuleId::AddingColumnWithVolatileDefault.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        finding["risk"], "low",
        "a rewrite of 500 rows is quick: {finding}"
    );
    assert_eq!(finding["estimate"]["rows"], 500);
    assert_eq!(finding["estimate"]["static_risk"], "high");
    assert_eq!(run.code, 0);
}

/// Runs the binary in `dir` against `url`.
fn safeshift_on(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--database-url", url];
    all.extend_from_slice(args);
    safeshift(dir, &all)
}

fn pg_text(client: &mut postgres::Client, sql: &str) -> String {
    let row = client
        .query_one(&format!("SELECT ({sql})::text"), &[])
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    row.get::<_, Option<String>>(0).unwrap_or_default()
}

#[test]
fn fix_rewrites_pending_migrations_that_then_apply_on_postgresql_and_roll_back() {
    let database = TestDatabase::new();
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/0001_tables.sql",
        "-- migrate:up
CREATE TABLE users (id bigint PRIMARY KEY, email text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric, status text);
CREATE TABLE codes (code text NOT NULL);
INSERT INTO users SELECT g, 'user' || g FROM generate_series(1, 200) g;
INSERT INTO orders SELECT g, g, g FROM generate_series(1, 200) g;
INSERT INTO codes SELECT 'code' || g FROM generate_series(1, 20) g;

-- migrate:down
DROP TABLE codes;
DROP TABLE orders;
DROP TABLE users;
",
    );
    write(
        dir.path(),
        "migrations/0002_users_email.sql",
        "-- migrate:up\nCREATE INDEX users_email_idx ON users (email);\n\n-- migrate:down\nDROP INDEX users_email_idx;\n",
    );
    let applied = safeshift_on(dir.path(), &url, &["up", "--allow-risk", "high"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    // The down section names what the unsafe statements would have created: the fixed ones
    // must create the same names, so the rollback written for them still works.
    let pending = "-- migrate:up
-- Orders are checked, keyed and indexed.
CREATE INDEX orders_status_idx ON orders (status);
ALTER TABLE orders ADD CHECK (total >= 0);
ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE users ADD UNIQUE (email);
ALTER TABLE codes ADD PRIMARY KEY (code);
UPDATE orders SET status = 'new';
ALTER TABLE orders ALTER COLUMN status SET NOT NULL;

-- migrate:down
ALTER TABLE orders ALTER COLUMN status DROP NOT NULL;
ALTER TABLE codes DROP CONSTRAINT codes_pkey;
ALTER TABLE users DROP CONSTRAINT users_email_key;
ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;
ALTER TABLE orders DROP CONSTRAINT orders_total_check;
DROP INDEX orders_status_idx;
";
    write(dir.path(), "migrations/0003_orders.sql", pending);
    // Without a database the findings keep their static risk (the tables here are tiny).
    let before = safeshift(dir.path(), &["lint", "migrations/0003_orders.sql"]);
    assert_eq!(before.code, 8, "{}{}", before.stdout, before.stderr);

    let fixed = safeshift_on(dir.path(), &url, &["lint", "--fix", "--all"]);
    assert_eq!(fixed.code, 0, "{}{}", fixed.stdout, fixed.stderr);
    assert!(
        fixed.stdout.contains("line 2: require-concurrent-index-creation left alone: the database has applied this migration"),
        "{}",
        fixed.stdout
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("migrations/0002_users_email.sql")).unwrap(),
        "-- migrate:up\nCREATE INDEX users_email_idx ON users (email);\n\n-- migrate:down\nDROP INDEX users_email_idx;\n",
        "an applied migration is never rewritten"
    );
    assert!(
        fixed.stdout.contains("fixed migrations/0003_orders.sql")
            && fixed
                .stdout
                .contains("--fix: 7 statements rewritten in 1 file"),
        "{}",
        fixed.stdout
    );
    let text = std::fs::read_to_string(dir.path().join("migrations/0003_orders.sql")).unwrap();
    let (up, down) = text.split_once("-- migrate:down").unwrap();
    assert_eq!(
        up,
        "-- migrate:up transaction:false
-- Orders are checked, keyed and indexed.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;
ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key ON users (email);
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS codes_pkey ON codes (code);
ALTER TABLE codes ADD CONSTRAINT codes_pkey PRIMARY KEY USING INDEX codes_pkey;
-- safeshift:backfill
UPDATE orders SET status = 'new';
ALTER TABLE orders ADD CONSTRAINT orders_status_not_null CHECK (status IS NOT NULL) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_status_not_null;
ALTER TABLE orders ALTER COLUMN status SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_status_not_null;

"
    );
    assert!(pending.ends_with(down), "the down section is untouched");

    let again = safeshift_on(
        dir.path(),
        &url,
        &["lint", "--fix", "--format", "json-report"],
    );
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(
        json(&again)["fixes"],
        serde_json::json!([]),
        "a second --fix has nothing to do"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("migrations/0003_orders.sql")).unwrap(),
        text
    );

    let up = safeshift_on(dir.path(), &url, &["up"]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    let mut client = database.client();
    for (constraint, kind) in [
        ("orders_total_check", "c"),
        ("orders_user_id_fkey", "f"),
        ("users_email_key", "u"),
        ("codes_pkey", "p"),
    ] {
        assert_eq!(
            pg_text(
                &mut client,
                &format!(
                    "SELECT contype || convalidated FROM pg_constraint WHERE conname = '{constraint}'"
                )
            ),
            format!("{kind}true"),
            "{constraint}"
        );
    }
    assert_eq!(
        pg_text(
            &mut client,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'orders_status_not_null'"
        ),
        "0",
        "the helper CHECK is dropped once NOT NULL holds"
    );
    for index in ["orders_status_idx", "users_email_key", "codes_pkey"] {
        assert_eq!(
            pg_text(
                &mut client,
                &format!(
                    "SELECT indisvalid AND indisready FROM pg_index WHERE indexrelid = '{index}'::regclass"
                )
            ),
            "true",
            "{index}"
        );
    }
    assert_eq!(
        pg_text(
            &mut client,
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'status'"
        ),
        "true"
    );
    assert_eq!(
        pg_text(
            &mut client,
            "SELECT count(*) FILTER (WHERE status = 'new') FROM orders"
        ),
        "200",
        "the backfill updated every row"
    );

    let down = safeshift_on(dir.path(), &url, &["down"]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert_eq!(
        pg_text(
            &mut client,
            "SELECT count(*) FROM pg_constraint WHERE conname IN ('orders_total_check', 'orders_user_id_fkey', 'users_email_key', 'codes_pkey')"
        ),
        "0"
    );
    assert_eq!(
        pg_text(
            &mut client,
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'status'"
        ),
        "false"
    );
}

#[test]
fn fix_refuses_formats_it_cannot_report_in() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/0001_t.sql",
        "-- migrate:up\nCREATE TABLE t (a int);\n",
    );
    let run = safeshift(dir.path(), &["lint", "--fix", "--format", "sarif"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--fix"), "{}", run.stderr);
}
