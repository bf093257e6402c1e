//! The locks and rewrites a rehearsal reports equal what PostgreSQL shows: `pg_locks` in the
//! statement's transaction, and `pg_relation_filenode` before and after it.

mod common;

use std::collections::BTreeSet;

use safeshift_testkit::TestDatabase;

/// `(relation, pg_locks mode)` for every lock the statement takes on relations that existed
/// before it, and the relations whose file node it changes, measured directly.
fn measured(setup: &str, statement: &str) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let database = TestDatabase::new();
    let mut client = database.client();
    client.batch_execute(setup).unwrap();
    let existing_sql = "SELECT c.oid::int8, c.oid::regclass::text, coalesce(pg_relation_filenode(c.oid)::int8, 0) \
                        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'";
    let existing: Vec<(i64, String, i64)> = client
        .query(existing_sql, &[])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let mut transaction = client.transaction().unwrap();
    transaction.batch_execute(statement).unwrap();
    let locks: BTreeSet<(String, String)> = transaction
        .query(
            "SELECT relation::int8, mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted",
            &[],
        )
        .unwrap()
        .iter()
        .filter_map(|row| {
            let oid: i64 = row.get(0);
            let mode: String = row.get(1);
            existing
                .iter()
                .find(|(existing, ..)| *existing == oid)
                .map(|(_, name, _)| (format!("public.{name}"), mode))
        })
        .collect();
    let mut rewritten = BTreeSet::new();
    for (oid, name, filenode) in &existing {
        let now: Option<i64> = transaction
            .query_one("SELECT pg_relation_filenode($1::int8::oid)::int8", &[oid])
            .unwrap()
            .get(0);
        if now.is_some_and(|now| now != *filenode) {
            rewritten.insert(format!("public.{name}"));
        }
    }
    transaction.rollback().unwrap();
    (locks, rewritten)
}

/// `(relation, mode)` and rewritten relations the rehearsal reports for the statement.
fn rehearsed(setup: &str, statement: &str) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let report = common::rehearse(&[
        ("0001_setup.sql", setup, ""),
        ("0002_change.sql", statement, "SELECT 1"),
    ]);
    let change = common::migration(&report, "0002");
    assert!(change.up_failure.is_none(), "{change:#?}");
    let observed = &change.statements[0];
    let locks = observed
        .locks
        .iter()
        .map(|lock| (lock.relation.clone(), lock.mode.pg_locks_name().to_owned()))
        .collect();
    let rewrites = observed
        .rewrites
        .iter()
        .map(|r| r.relation.clone())
        .collect();
    (locks, rewrites)
}

const TABLES: &str = "CREATE TABLE customers (id bigint PRIMARY KEY, email text, age integer);
CREATE INDEX customers_age_idx ON customers (age);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total numeric);
INSERT INTO customers SELECT g, 'c' || g, g FROM generate_series(1, 50) g;
INSERT INTO orders SELECT g, g, g FROM generate_series(1, 50) g;";

fn check(setup: &str, statement: &str) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let expected = measured(setup, statement);
    let reported = rehearsed(setup, statement);
    assert_eq!(
        reported, expected,
        "for `{statement}`: (rehearsal, pg_locks and file nodes)"
    );
    assert!(!expected.0.is_empty(), "`{statement}` takes some lock");
    reported
}

#[test]
fn add_column_takes_access_exclusive_without_a_rewrite() {
    let (locks, rewrites) = check(
        TABLES,
        "ALTER TABLE customers ADD COLUMN note text DEFAULT 'x'",
    );
    assert!(locks.contains(&("public.customers".into(), "AccessExclusiveLock".into())));
    assert!(rewrites.is_empty());
}

#[test]
fn create_index_takes_share_on_the_table() {
    let (locks, rewrites) = check(
        TABLES,
        "CREATE INDEX customers_email_idx ON customers (email)",
    );
    assert!(locks.contains(&("public.customers".into(), "ShareLock".into())));
    assert!(rewrites.is_empty());
}

#[test]
fn add_foreign_key_locks_both_tables() {
    let (locks, _) = check(
        TABLES,
        "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)",
    );
    assert!(locks.contains(&("public.orders".into(), "ShareRowExclusiveLock".into())));
    assert!(locks.contains(&("public.customers".into(), "ShareRowExclusiveLock".into())));
}

#[test]
fn validate_constraint_takes_share_update_exclusive() {
    let setup = format!(
        "{TABLES}\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;"
    );
    let (locks, rewrites) = check(
        &setup,
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk",
    );
    assert!(locks.contains(&("public.orders".into(), "ShareUpdateExclusiveLock".into())));
    assert!(locks.contains(&("public.customers".into(), "RowShareLock".into())));
    assert!(rewrites.is_empty());
}

#[test]
fn set_not_null_takes_access_exclusive_without_a_rewrite() {
    let (locks, rewrites) = check(
        TABLES,
        "ALTER TABLE customers ALTER COLUMN email SET NOT NULL",
    );
    assert!(locks.contains(&("public.customers".into(), "AccessExclusiveLock".into())));
    assert!(rewrites.is_empty());
}

#[test]
fn alter_column_type_rewrites_the_table() {
    // The table and its other indexes get new file nodes; the index on the changed column is
    // rebuilt as a new relation (the old one is dropped), so it has no file node to compare.
    let (locks, rewrites) = check(TABLES, "ALTER TABLE customers ALTER COLUMN age TYPE bigint");
    assert!(locks.contains(&("public.customers".into(), "AccessExclusiveLock".into())));
    assert_eq!(
        rewrites,
        BTreeSet::from([
            "public.customers".to_owned(),
            "public.customers_pkey".to_owned()
        ])
    );
}

#[test]
fn a_type_change_that_needs_no_rewrite_reports_none() {
    let setup = "CREATE TABLE notes (id bigint PRIMARY KEY, body varchar(10));";
    let (_, rewrites) = check(
        setup,
        "ALTER TABLE notes ALTER COLUMN body TYPE varchar(20)",
    );
    assert!(rewrites.is_empty(), "{rewrites:?}");
}

#[test]
fn set_unlogged_rewrites_the_table() {
    let (locks, rewrites) = check(TABLES, "ALTER TABLE orders SET UNLOGGED");
    assert!(locks.contains(&("public.orders".into(), "AccessExclusiveLock".into())));
    assert!(rewrites.contains("public.orders"), "{rewrites:?}");
}
