//! Zero-downtime operations through the real binary on a real PostgreSQL 15: backfills that
//! survive SIGKILL and concurrent writers, lock-safe DDL that waits outside the lock queue,
//! concurrent index builds cleaned up and retried, expand/contract migrations under writes, and
//! `safeshift backfill` on its own. Nothing here asserts on timing: waits poll with deadlines.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Project, exit, pg_rows, pg_value};
use safeshift_testkit::TestDatabase;

const DEADLINE: Duration = Duration::from_secs(90);

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: Child) -> common::Run {
    common::Run::from(child.wait_with_output().expect("wait for safeshift"))
}

/// Rows the backfill named `name` has visited, 0 before its checkpoint exists.
fn rows_visited(client: &mut postgres::Client, name: &str) -> u64 {
    if pg_value(client, "SELECT to_regclass('safeshift.backfills') IS NULL") == "t" {
        return 0;
    }
    pg_value(
        client,
        &format!(
            "SELECT coalesce(max(rows_scanned), 0) FROM safeshift.backfills WHERE name = '{name}'"
        ),
    )
    .parse()
    .unwrap()
}

#[test]
fn a_backfill_killed_with_sigkill_resumes_and_updates_every_row_exactly_once() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_items.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);\n\
         INSERT INTO items (id) SELECT g FROM generate_series(1, 40000) g;",
        "DROP TABLE items;",
    );
    // Not idempotent: a row updated twice ends at 2.
    project.write(
        "0002_count_items.sql",
        "-- migrate:up transaction:false\n\
         -- safeshift:backfill batch=200 min-batch=200 max-batch=200 pause=5ms\n\
         UPDATE items SET n = n + 1;\n\n\
         -- migrate:down transaction:false\nUPDATE items SET n = n - 1;\n",
    );
    let child = project
        .command(&["up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = db.client();
    wait_until("the backfill has done a few batches", || {
        rows_visited(&mut client, "0002/up/1") >= 2_000
    });
    let mut child = child;
    child.kill().unwrap();
    let killed = finish(child);
    assert_ne!(killed.code, 0, "{}", killed.all());
    let done = pg_value(&mut client, "SELECT count(*) FROM items WHERE n = 1");
    let done: u64 = done.parse().unwrap();
    assert!(
        done > 0 && done < 40_000,
        "the kill came mid-way: {done} rows done"
    );

    let run = project.run(&["up"]);
    run.expect(exit::OK);
    assert!(run.stderr.contains("resuming after"), "{}", run.all());
    assert_eq!(
        pg_rows(&mut client, "SELECT count(*), min(n), max(n) FROM items"),
        vec![vec![
            Some("40000".into()),
            Some("1".into()),
            Some("1".into())
        ]],
        "every row updated exactly once"
    );
    assert_eq!(
        pg_rows(
            &mut client,
            "SELECT rows_scanned, rows_updated, finished_at IS NOT NULL FROM safeshift.backfills WHERE name = '0002/up/1'"
        ),
        vec![vec![
            Some("40000".into()),
            Some("40000".into()),
            Some("t".into())
        ]]
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT status FROM safeshift.history WHERE version = '0002' ORDER BY id DESC LIMIT 1"
        ),
        "succeeded"
    );

    // Rolled back and applied again, the backfill starts over rather than trusting the old
    // checkpoint.
    project.run(&["down"]).expect(exit::OK);
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM items WHERE n <> 1"),
        "0"
    );
}

#[test]
fn a_backfill_runs_while_another_connection_inserts_and_updates_rows() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (id bigserial PRIMARY KEY, amount int NOT NULL, doubled int);\n\
         INSERT INTO ledger (amount) SELECT g % 97 FROM generate_series(1, 30000) g;",
        "DROP TABLE ledger;",
    );
    project.run(&["up"]).expect(exit::OK);
    // New code already writes `doubled`; the backfill fills in the rows it has not touched.
    project.write(
        "0002_doubled.sql",
        "-- migrate:up transaction:false\n\
         -- safeshift:backfill batch=300 max-batch=300 pause=2ms\n\
         UPDATE ledger SET doubled = amount * 2 WHERE doubled IS NULL;\n\n\
         -- migrate:down transaction:false\nUPDATE ledger SET doubled = NULL;\n",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let url = db.url();
        let stop = Arc::clone(&stop);
        let writes = Arc::clone(&writes);
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut i: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let id = (i * 7919) % 30_000 + 1;
                client
                    .batch_execute(&format!(
                        "BEGIN; \
                         UPDATE ledger SET amount = amount + 1, doubled = (amount + 1) * 2 WHERE id = {id}; \
                         INSERT INTO ledger (amount, doubled) VALUES ({m}, {m} * 2); \
                         COMMIT",
                        m = i % 50
                    ))
                    .unwrap();
                writes.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    wait_until("the writer is writing", || {
        writes.load(Ordering::SeqCst) > 20
    });
    let before = writes.load(Ordering::SeqCst);
    let run = project.run(&["up"]);
    let during = writes.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    run.expect(exit::OK);
    assert!(during > 0, "the writer kept writing during the backfill");
    let mut client = db.client();
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM ledger WHERE doubled IS DISTINCT FROM amount * 2"
        ),
        "0",
        "no row left behind and no concurrent update lost"
    );
    // The backfill visited the rows that existed when it started (every id up to the highest
    // one then), not those inserted since.
    let visited: u64 = pg_value(
        &mut client,
        "SELECT rows_scanned FROM safeshift.backfills WHERE name = '0002/up/1'",
    )
    .parse()
    .unwrap();
    let existing: u64 = pg_value(
        &mut client,
        "SELECT count(*) FROM ledger WHERE id <= (SELECT (upper_key::json->>0)::bigint FROM safeshift.backfills WHERE name = '0002/up/1')",
    )
    .parse()
    .unwrap();
    let all: u64 = pg_value(&mut client, "SELECT count(*) FROM ledger")
        .parse()
        .unwrap();
    assert_eq!(visited, existing);
    assert!(visited >= 30_000 && all > visited, "{visited} of {all}");
}

#[test]
fn ddl_waits_for_a_long_transaction_outside_the_lock_queue() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);",
        "DROP TABLE t;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_add_note.sql",
        "ALTER TABLE t ADD COLUMN note text;",
        "ALTER TABLE t DROP COLUMN note;",
    );
    // A long transaction that has read the table (ACCESS SHARE, idle in transaction).
    let mut reader = db.client();
    let reader_pid = pg_value(&mut reader, "SELECT pg_backend_pid()");
    reader.batch_execute("BEGIN; SELECT * FROM t").unwrap();
    // Older than the DDL's own lock_timeout (100ms): long, so waited for outside the queue.
    std::thread::sleep(Duration::from_millis(300));
    let child = project
        .command(&["--lock-timeout", "60s", "up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = db.client();
    wait_until("the migration has started", || {
        pg_value(
            &mut client,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'safeshift%' AND datname = current_database()",
        ) != "0"
    });
    // While it waits, the application's reads and writes go through: the ALTER is not queued.
    for _ in 0..10 {
        client
            .batch_execute(
                "SET statement_timeout = '5s'; SELECT count(*) FROM t; UPDATE t SET id = id WHERE id = 1",
            )
            .unwrap();
        assert_eq!(
            pg_value(
                &mut client,
                "SELECT count(*) FROM pg_locks l WHERE NOT l.granted AND l.relation = 't'::regclass"
            ),
            "0",
            "nothing queues for a lock on t"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.batch_execute("COMMIT").unwrap();
    let run = finish(child);
    run.expect(exit::OK);
    assert!(
        run.stderr
            .contains(&format!("pid {reader_pid} (idle in transaction")),
        "{}",
        run.all()
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'note'"
        ),
        "1"
    );
}

#[test]
fn ddl_behind_a_transaction_that_never_ends_fails_as_a_lock_timeout_naming_it() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY);",
        "DROP TABLE t;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_add_note.sql",
        "ALTER TABLE t ADD COLUMN note text;",
        "ALTER TABLE t DROP COLUMN note;",
    );
    let mut reader = db.client();
    let reader_pid = pg_value(&mut reader, "SELECT pg_backend_pid()");
    reader.batch_execute("BEGIN; SELECT * FROM t").unwrap();
    let run = project.run(&["--lock-timeout", "300ms", "--retries", "1", "up"]);
    run.expect(exit::MIGRATION_FAILED);
    assert!(run.stderr.contains("after 2 attempts"), "{}", run.all());
    assert!(
        run.stderr.contains(&format!("pid {reader_pid}")),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("pg_terminate_backend"), "{}", run.all());
    reader.batch_execute("COMMIT").unwrap();
    project.run(&["up"]).expect(exit::OK);
}

#[test]
fn a_failed_concurrent_index_is_dropped_and_built_again() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    // The build's waits for writers give up after 300ms, so an open write transaction fails it.
    std::fs::write(
        project.path().join("safeshift.toml"),
        "[online]\nwait_for_transactions = \"300ms\"\nindex_retries = 5\n",
    )
    .unwrap();
    project.migration(
        "0001_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;",
        "DROP TABLE t;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.write(
        "0002_index.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n\n\
         -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_v_idx;\n",
    );
    let mut writer = db.client();
    writer
        .batch_execute("BEGIN; UPDATE t SET v = v WHERE id = 1")
        .unwrap();
    let mut child = project
        .command(&["up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the writer go once the first build has failed (its INVALID index is dropped once the
    // writer is gone, and the build tried again).
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut output = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        output.push_str(&line);
        output.push('\n');
        if line.contains("index build failed: t_v_idx") {
            writer.batch_execute("COMMIT").unwrap();
            break;
        }
    }
    let run = finish(child);
    run.expect(exit::OK);
    assert!(output.contains("55P03"), "{output}");
    let mut client = db.client();
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass"
        ),
        "t"
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM pg_class WHERE relname LIKE 't_v_idx%'"
        ),
        "1",
        "no INVALID copy left behind"
    );
}

#[test]
fn a_concurrent_index_that_cannot_be_built_leaves_no_invalid_index() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 7), (2, 7);",
        "DROP TABLE t;",
    );
    project.write(
        "0002_unique.sql",
        "-- migrate:up transaction:false\nCREATE UNIQUE INDEX CONCURRENTLY t_v_key ON t (v);\n\n\
         -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_v_key;\n",
    );
    let run = project.run(&["up"]);
    run.expect(exit::MIGRATION_FAILED);
    assert!(run.all().contains("23505"), "{}", run.all());
    assert!(
        run.stderr
            .contains("dropped the INVALID index t_v_key the failed build left"),
        "{}",
        run.all()
    );
    let mut client = db.client();
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM pg_class WHERE relname = 't_v_key'"
        ),
        "0"
    );
    // Fixed data, and the resumed migration builds it.
    client
        .batch_execute("UPDATE t SET v = 8 WHERE id = 2")
        .unwrap();
    project.run(&["up"]).expect(exit::OK);
}

/// Old code writes `balance`, new code writes `balance_new`; at every step both agree.
fn assert_columns_agree(client: &mut postgres::Client, new_column: &str) {
    assert_eq!(
        pg_value(
            client,
            &format!(
                "SELECT count(*) FROM accounts WHERE {new_column} IS DISTINCT FROM balance::bigint"
            )
        ),
        "0",
        "old and new columns agree"
    );
}

/// Writes through one column until stopped, inserting ids from `first_id` on; returns how many
/// transactions it made.
fn writer(
    url: String,
    column: &'static str,
    first_id: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut count = 0;
        while !stop.load(Ordering::SeqCst) {
            count += 1;
            let id = (count * 131) % 5_000 + 1;
            // Statements that fail because a column is not there (yet, or any more) are not
            // this writer's version of the code: skip them, as a rolling deploy would.
            let _ = client.batch_execute(&format!(
                "UPDATE accounts SET {column} = {column} + 3 WHERE id = {id}; \
                 INSERT INTO accounts (id, {column}) VALUES ({}, {count})",
                first_id + count
            ));
            std::thread::sleep(Duration::from_millis(2));
        }
        count
    })
}

#[test]
fn expand_contract_migrations_apply_roll_back_and_keep_both_columns_equal_under_writes() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL DEFAULT 0);\n\
         CREATE INDEX accounts_balance_idx ON accounts (balance);\n\
         INSERT INTO accounts SELECT g, g % 1000 FROM generate_series(1, 5000) g;",
        "DROP TABLE accounts;",
    );
    project.run(&["up"]).expect(exit::OK);
    let new = project.run(&["new", "--change-type", "accounts.balance", "bigint"]);
    new.expect(exit::OK);
    assert!(
        new.stdout
            .contains("0002_expand_accounts_balance_to_bigint.sql"),
        "{}",
        new.stdout
    );
    assert!(
        new.stdout
            .contains("0003_contract_accounts_balance_to_bigint.sql"),
        "{}",
        new.stdout
    );
    let expand = std::fs::read_to_string(
        project
            .migrations()
            .join("0002_expand_accounts_balance_to_bigint.sql"),
    )
    .unwrap();
    assert!(expand.contains("-- safeshift:backfill"), "{expand}");
    assert!(
        expand.contains("CREATE INDEX CONCURRENTLY \"accounts_balance_new_idx\""),
        "{expand}"
    );

    let mut client = db.client();
    // Expand while old code writes `balance`.
    let stop = Arc::new(AtomicBool::new(false));
    let old_code = writer(db.url(), "balance", 100_000, Arc::clone(&stop));
    let run = project.run(&["up", "--to", "0002"]);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    assert!(old_code.join().unwrap() > 0);
    run.expect(exit::OK);
    assert_columns_agree(&mut client, "balance_new");
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'balance_new'"
        ),
        "t"
    );

    // New code writes `balance_new`; the trigger keeps `balance` equal for old code.
    let stop = Arc::new(AtomicBool::new(false));
    let new_code = writer(db.url(), "balance_new", 1_000_000, Arc::clone(&stop));
    wait_until("new code has written", || {
        pg_value(
            &mut client,
            "SELECT count(*) FROM accounts WHERE id > 1000000",
        ) != "0"
    });
    stop.store(true, Ordering::SeqCst);
    new_code.join().unwrap();
    assert_columns_agree(&mut client, "balance_new");

    // Contract: the old column goes; rolled back, it comes back filled and in sync.
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'balance'"
        ),
        "0"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let new_code = writer(db.url(), "balance_new", 2_000_000, Arc::clone(&stop));
    let run = project.run(&["down"]);
    stop.store(true, Ordering::SeqCst);
    new_code.join().unwrap();
    run.expect(exit::OK);
    assert_columns_agree(&mut client, "balance_new");

    // And the expand rolls back to the table as it was.
    let rows_before = pg_value(&mut client, "SELECT count(*) FROM accounts");
    project.run(&["down"]).expect(exit::OK);
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'accounts'"
        ),
        "id,balance"
    );
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM accounts"),
        rows_before
    );
}

#[test]
fn safeshift_backfill_runs_on_its_own_continues_and_lists_checkpoints() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE pairs (a int, b text, n int NOT NULL DEFAULT 0, PRIMARY KEY (a, b));\n\
             INSERT INTO pairs (a, b) SELECT g % 100, 'k' || g FROM generate_series(1, 5000) g;",
        )
        .unwrap();
    let statement = "UPDATE pairs SET n = n + 1";
    let run = project.run(&[
        "backfill",
        statement,
        "--name",
        "pairs-once",
        "--batch",
        "300",
        "--json",
    ]);
    run.expect(exit::OK);
    let report = run.json();
    assert_eq!(report["backfill"]["rows_updated"], 5000);
    assert_eq!(report["backfill"]["key"], serde_json::json!(["a", "b"]));
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM pairs WHERE n <> 1"),
        "0"
    );
    // The same name again: already finished, nothing updated twice.
    let again = project.run(&["backfill", statement, "--name", "pairs-once"]);
    again.expect(exit::OK);
    assert!(
        again.stdout.contains("already finished"),
        "{}",
        again.stdout
    );
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM pairs WHERE n <> 1"),
        "0"
    );
    // Another statement under the same name is refused.
    let changed = project.run(&[
        "backfill",
        "UPDATE pairs SET n = n + 2",
        "--name",
        "pairs-once",
    ]);
    changed.expect(exit::MIGRATION_FAILED);
    assert!(
        changed.stderr.contains("changed since it started"),
        "{}",
        changed.stderr
    );
    let status = project.run(&["backfill", "--status"]);
    status.expect(exit::OK);
    assert!(status.stdout.contains("pairs-once"), "{}", status.stdout);
    assert!(status.stdout.contains("finished"), "{}", status.stdout);
    // Not an UPDATE: a usage error before anything runs.
    project
        .run(&["backfill", "DELETE FROM pairs"])
        .expect(exit::USAGE);
}

/// A section without a transaction may open its own with BEGIN … COMMIT; lock-safe DDL inside
/// it retries under a savepoint and never commits the section's transaction early, so a failure
/// later in that transaction undoes the DDL too.
#[test]
fn lock_safe_ddl_inside_a_sections_own_transaction_stays_in_it() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY);",
        "DROP TABLE t;",
    );
    project.write(
        "0002_columns.sql",
        "-- migrate:up transaction:false\n\
         BEGIN;\n\
         ALTER TABLE t ADD COLUMN a int;\n\
         ALTER TABLE t ADD COLUMN b int;\n\
         SELECT 1 / (SELECT count(*) FROM t)::int;\n\
         COMMIT;\n\n\
         -- migrate:down\nALTER TABLE t DROP COLUMN b;\nALTER TABLE t DROP COLUMN a;\n",
    );
    let failed = project.run(&["up"]);
    failed.expect(exit::MIGRATION_FAILED);
    assert!(failed.stderr.contains("22012"), "{}", failed.all());
    let mut client = db.client();
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name IN ('a', 'b')"
        ),
        "0",
        "the failed transaction took both columns with it"
    );
    client.batch_execute("INSERT INTO t VALUES (1)").unwrap();
    project.run(&["up"]).expect(exit::OK);
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name IN ('a', 'b')"
        ),
        "2"
    );
}
