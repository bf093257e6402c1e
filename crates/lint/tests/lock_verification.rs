//! Lock modes verified, not assumed: every rule's bad example (and good example) runs on a real
//! PostgreSQL 15 inside a transaction, statement by statement. After each statement the test reads
//! `pg_locks` for its own backend and `pg_class.relfilenode` for every table that existed before,
//! and compares them with what the lock model claims:
//!
//! * every table the model says a statement locks shows exactly that mode as the strongest new
//!   lock the statement took on it (or already held it at least as strongly);
//! * every table the statement locked in SHARE UPDATE EXCLUSIVE or stronger is claimed by the model;
//! * the tables whose files were replaced are exactly the ones the model says are rewritten;
//! * every finding's lock is held on its tables when its statement has run;
//! * a rule that says its bad example fails (`server_error`) sees the server fail with that error.
//!
//! Rules whose claim cannot be observed this way say why in their metadata (`unverifiable`); the
//! test prints the reason for each instead of skipping silently.

use std::collections::{BTreeMap, BTreeSet};

use postgres::Client;
use safeshift_lint::{
    ExampleMode, LintOptions, Linter, LockMode, PgVersion, RuleMetadata, StatementEffects,
};
use safeshift_testkit::TestDatabase;

/// A pre-existing table, as the baseline saw it.
#[derive(Debug, Clone)]
struct Relation {
    name: String,
    filenode: u32,
}

fn relations(client: &mut Client) -> BTreeMap<u32, Relation> {
    client
        .query(
            "SELECT c.oid, c.relname, c.relfilenode FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
               AND n.nspname NOT LIKE 'pg_temp%' AND c.relkind IN ('r', 'p', 'm')",
            &[],
        )
        .expect("reading pg_class")
        .iter()
        .map(|row| {
            let oid: u32 = row.get(0);
            (oid, Relation { name: row.get(1), filenode: row.get(2) })
        })
        .collect()
}

/// The modes this backend holds on each relation of `baseline`.
fn held_locks(
    client: &mut Client,
    baseline: &BTreeMap<u32, Relation>,
) -> BTreeMap<String, BTreeSet<LockMode>> {
    let mut held: BTreeMap<String, BTreeSet<LockMode>> = BTreeMap::new();
    for row in client
        .query(
            "SELECT relation, mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation IS NOT NULL",
            &[],
        )
        .expect("reading pg_locks")
    {
        let oid: u32 = row.get(0);
        let mode: String = row.get(1);
        if let (Some(relation), Some(mode)) = (baseline.get(&oid), LockMode::from_pg_locks_name(&mode)) {
            held.entry(relation.name.clone()).or_default().insert(mode);
        }
    }
    held
}

fn filenodes(client: &mut Client, baseline: &BTreeMap<u32, Relation>) -> BTreeSet<String> {
    let mut rewritten = BTreeSet::new();
    for row in client
        .query("SELECT oid, relfilenode FROM pg_class", &[])
        .expect("reading pg_class")
    {
        let oid: u32 = row.get(0);
        let filenode: u32 = row.get(1);
        if let Some(relation) = baseline.get(&oid)
            && relation.filenode != filenode
            && relation.filenode != 0
        {
            rewritten.insert(relation.name.clone());
        }
    }
    rewritten
}

/// What happened when one example ran.
#[derive(Debug, Default)]
struct Outcome {
    /// Per statement: the modes held once it had run.
    held_after: Vec<BTreeMap<String, BTreeSet<LockMode>>>,
    server_error: Option<String>,
    observed: usize,
}

/// Runs `sql` statement by statement after `setup`, checking each against the model; returns the
/// problems found.
fn run_and_compare(
    name: &str,
    setup: &str,
    statements: &[StatementEffects],
    expected_error: Option<&str>,
    problems: &mut Vec<String>,
) -> Outcome {
    let database = TestDatabase::new();
    let mut client = database.client();
    if !setup.trim().is_empty() {
        client
            .batch_execute(setup)
            .unwrap_or_else(|error| panic!("{name}: setup failed: {error}"));
    }
    client.batch_execute("BEGIN").expect("BEGIN");
    let baseline = relations(&mut client);
    let mut outcome = Outcome::default();
    let mut before = held_locks(&mut client, &baseline);
    let mut previously_rewritten = BTreeSet::new();
    for statement in statements {
        let result = client.batch_execute(&statement.sql);
        if let Err(error) = result {
            let message = error
                .as_db_error()
                .map_or_else(|| error.to_string(), |e| e.message().to_owned());
            match expected_error {
                Some(expected) if message.contains(expected) => {
                    outcome.server_error = Some(message);
                    return outcome;
                }
                _ => {
                    problems.push(format!(
                        "{name}: line {}: the server rejected `{}`: {message}",
                        statement.line, statement.sql
                    ));
                    return outcome;
                }
            }
        }
        let after = held_locks(&mut client, &baseline);
        let rewritten = filenodes(&mut client, &baseline);
        outcome.observed += 1;
        let mut claimed_tables = BTreeSet::new();
        for claim in &statement.locks {
            claimed_tables.insert(claim.table.name.clone());
            let held_before = before
                .get(&claim.table.name)
                .and_then(|modes| modes.iter().max().copied());
            let new: BTreeSet<LockMode> = after
                .get(&claim.table.name)
                .map(|modes| {
                    modes
                        .difference(before.get(&claim.table.name).unwrap_or(&BTreeSet::new()))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let strongest_new = new.iter().max().copied();
            let already_held = held_before.is_some_and(|held| held >= claim.mode);
            if strongest_new != Some(claim.mode) && !already_held {
                problems.push(format!(
                    "{name}: line {}: the model claims {} on `{}`, the server took {:?}",
                    statement.line, claim.mode, claim.table, strongest_new
                ));
            }
        }
        for (table, modes) in &after {
            let new: Vec<LockMode> = modes
                .difference(before.get(table).unwrap_or(&BTreeSet::new()))
                .copied()
                .collect();
            if let Some(strongest) = new.iter().max()
                && *strongest >= LockMode::ShareUpdateExclusive
                && !claimed_tables.contains(table)
            {
                problems.push(format!(
                    "{name}: line {}: the server took {strongest} on `{table}`, which the model does not claim",
                    statement.line
                ));
            }
        }
        let claimed_rewrites: BTreeSet<String> =
            statement.rewrites.iter().map(|t| t.name.clone()).collect();
        let this_statement: BTreeSet<String> = rewritten
            .difference(&previously_rewritten)
            .cloned()
            .collect();
        if this_statement != claimed_rewrites {
            problems.push(format!(
                "{name}: line {}: the model claims rewrites of {claimed_rewrites:?}, the server rewrote {this_statement:?}",
                statement.line
            ));
        }
        previously_rewritten.extend(this_statement);
        outcome.held_after.push(after.clone());
        before = after;
    }
    client.batch_execute("ROLLBACK").expect("ROLLBACK");
    if let Some(expected) = expected_error {
        problems.push(format!(
            "{name}: expected the server to fail with `{expected}`, but every statement ran"
        ));
    }
    outcome
}

fn linter_for(metadata: &RuleMetadata) -> Linter {
    Linter::new(LintOptions {
        pg_version: metadata
            .examples
            .pg_version
            .map_or(PgVersion::DEFAULT, PgVersion),
        ..LintOptions::default()
    })
    .expect("default options")
}

/// Statements of an example that can run in the test's transaction.
fn runnable(effects: Vec<StatementEffects>, mode: ExampleMode) -> Option<Vec<StatementEffects>> {
    let transaction_control = effects.iter().any(|s| {
        let upper = s.sql.trim_start().to_ascii_uppercase();
        upper.starts_with("BEGIN") || upper.starts_with("COMMIT") || upper.starts_with("ROLLBACK")
    });
    let outside = effects.iter().any(|s| s.outside_transaction);
    if transaction_control || (outside && mode != ExampleMode::Migration) {
        None
    } else {
        Some(effects)
    }
}

#[test]
fn every_rule_s_lock_claims_match_postgresql() {
    let mut problems = Vec::new();
    let mut report = Vec::new();
    for metadata in safeshift_lint::rules() {
        let examples = &metadata.examples;
        if let Some(reason) = &metadata.unverifiable {
            report.push(format!("{:<48} not verifiable: {reason}", metadata.id));
            continue;
        }
        let linter = linter_for(metadata);
        let bad_effects = linter.example_effects(&examples.setup, &examples.bad, examples.bad_mode);
        let Some(bad_statements) = runnable(bad_effects, examples.bad_mode) else {
            problems.push(format!("{}: the bad example cannot run in a transaction but no `unverifiable` reason is given", metadata.id));
            continue;
        };
        let outcome = run_and_compare(
            &format!("{} (bad)", metadata.id),
            &examples.setup,
            &bad_statements,
            metadata.server_error.as_deref(),
            &mut problems,
        );
        if let Some(error) = &outcome.server_error {
            report.push(format!(
                "{:<48} server refused as claimed: {error}",
                metadata.id
            ));
            continue;
        }
        let bad = linter.lint_example(&examples.setup, &examples.bad, examples.bad_mode);
        let mut claims = Vec::new();
        for finding in bad.findings.iter().filter(|f| f.rule == metadata.id) {
            let held = outcome
                .held_after
                .get(finding.statement)
                .cloned()
                .unwrap_or_default();
            for lock in &finding.locks {
                let modes = held.get(&lock.table.name).cloned().unwrap_or_default();
                if !modes.contains(&lock.mode) {
                    problems.push(format!(
                        "{}: the finding on line {} claims {} on `{}`, the server holds {modes:?}",
                        metadata.id, finding.line, lock.mode, lock.table
                    ));
                }
                claims.push(format!("{} on {}", lock.mode, lock.table));
            }
            if finding.rewrite {
                claims.push("rewrite".to_owned());
            }
        }
        let claims = if claims.is_empty() {
            "no lock on a table in use".to_owned()
        } else {
            claims.join(", ")
        };
        report.push(format!(
            "{:<48} verified: {claims} ({} statements)",
            metadata.id, outcome.observed
        ));
        let good_effects =
            linter.example_effects(&examples.setup, &examples.good, examples.good_mode);
        if let Some(good_statements) = runnable(good_effects, examples.good_mode) {
            run_and_compare(
                &format!("{} (good)", metadata.id),
                &examples.setup,
                &good_statements,
                None,
                &mut problems,
            );
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        problems.is_empty(),
        "the lock model disagrees with PostgreSQL:\n{}",
        problems.join("\n")
    );
}

/// Statements whose lock claims `rehearse` once contradicted, and the cases next to them, run the
/// same way as the rules' examples: the model must agree with the server on each.
#[test]
fn lock_claims_rehearse_contradicted_match_postgresql() {
    const USERS_AND_ORDERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);
         CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint CONSTRAINT orders_user_id_fkey REFERENCES users);
         INSERT INTO users VALUES (1); INSERT INTO orders VALUES (1, 1);";
    let cases: &[(&str, &str, &str)] = &[
        (
            "a self-referencing foreign key in CREATE TABLE locks only the referenced tables in use",
            "CREATE TABLE users (id bigint PRIMARY KEY);",
            "CREATE TABLE categories (id bigint PRIMARY KEY, parent_id bigint REFERENCES categories, owner_id bigint REFERENCES users);",
        ),
        (
            "dropping a foreign key takes ACCESS EXCLUSIVE on both tables",
            USERS_AND_ORDERS,
            "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;",
        ),
        (
            "dropping the column of a foreign key takes ACCESS EXCLUSIVE on both tables",
            USERS_AND_ORDERS,
            "ALTER TABLE orders DROP COLUMN user_id;",
        ),
        (
            "dropping a table with a foreign key takes ACCESS EXCLUSIVE on the referenced table",
            USERS_AND_ORDERS,
            "DROP TABLE orders;",
        ),
        (
            "VALIDATE after ACCESS EXCLUSIVE in the same transaction takes its own mode",
            "CREATE TABLE t (a int); INSERT INTO t VALUES (1);",
            "ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT t_a_check;",
        ),
        (
            "timestamp to timestamptz in a UTC session rewrites nothing",
            "CREATE TABLE events (at timestamp, seen timestamptz); INSERT INTO events VALUES (now(), now());",
            "SET LOCAL timezone = 'UTC';\nALTER TABLE events ALTER COLUMN at TYPE timestamptz;\nALTER TABLE events ALTER COLUMN seen TYPE timestamp;",
        ),
        (
            "timestamp to timestamptz in another time zone rewrites the table",
            "CREATE TABLE events (at timestamp); INSERT INTO events VALUES (now());",
            "SET LOCAL timezone = 'Europe/Paris';\nALTER TABLE events ALTER COLUMN at TYPE timestamptz;",
        ),
        (
            "LOCK TABLE takes the mode it names",
            "CREATE TABLE accounts (id bigint PRIMARY KEY);",
            "LOCK TABLE accounts IN SHARE MODE;\nLOCK TABLE accounts IN ROW EXCLUSIVE MODE;",
        ),
        (
            "TRUNCATE takes ACCESS EXCLUSIVE and replaces the table's files",
            "CREATE TABLE sessions (id bigint PRIMARY KEY); INSERT INTO sessions VALUES (1);",
            "TRUNCATE sessions;",
        ),
    ];
    let linter = Linter::new(LintOptions::default()).expect("default options");
    let mut problems = Vec::new();
    for (name, setup, sql) in cases {
        let effects = linter.example_effects(setup, sql, ExampleMode::Migration);
        let outcome = run_and_compare(name, setup, &effects, None, &mut problems);
        assert_eq!(
            outcome.observed,
            effects.len(),
            "{name}: every statement ran ({problems:?})"
        );
        println!("{name}: verified ({} statements)", outcome.observed);
    }
    assert!(
        problems.is_empty(),
        "the lock model disagrees with PostgreSQL:\n{}",
        problems.join("\n")
    );
}
