//! Rollbacks that do not restore the schema, and migrations that cannot run again, fail the
//! rehearsal with a diff or the statement and error that say why.

mod common;

use safeshift_rehearse::{ReapplyCheck, RollbackCheck, Verdict};

const CUSTOMERS: &str = "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, status text DEFAULT 'new', CONSTRAINT customers_email_check CHECK (email <> ''));";

fn rollback_differences(up: &str, down: &str) -> Vec<String> {
    let report = common::rehearse(&[
        ("0001_customers.sql", CUSTOMERS, "DROP TABLE customers;"),
        ("0002_change.sql", up, down),
    ]);
    assert_eq!(common::migration(&report, "0001").verdict, Verdict::Pass);
    let change = common::migration(&report, "0002");
    assert_eq!(change.verdict, Verdict::Fail, "{change:#?}");
    assert!(report.failed());
    match &change.rollback {
        RollbackCheck::Differs { diff, .. } => diff
            .differences
            .iter()
            .map(|d| {
                format!(
                    "{} [{}]: {:?} -> {:?}",
                    d.object(),
                    d.property.clone().unwrap_or_default(),
                    d.left,
                    d.right
                )
            })
            .collect(),
        other => panic!("expected a differing rollback, got {other:?}"),
    }
}

#[test]
fn a_down_that_forgets_an_index_names_the_index() {
    let differences = rollback_differences(
        "CREATE INDEX customers_status_idx ON customers (status);\nALTER TABLE customers ADD COLUMN phone text;",
        "ALTER TABLE customers DROP COLUMN phone;",
    );
    assert_eq!(differences.len(), 1, "{differences:#?}");
    assert!(
        differences[0].starts_with("index customers_status_idx on table public.customers []: None -> Some(\"CREATE INDEX customers_status_idx"),
        "{differences:#?}"
    );
}

#[test]
fn a_down_that_forgets_a_default_names_the_column_and_the_default() {
    let differences = rollback_differences(
        "ALTER TABLE customers ALTER COLUMN status DROP DEFAULT;",
        "SELECT 1;",
    );
    assert_eq!(
        differences,
        vec![
            "column status on table public.customers [default]: Some(\"'new'::text\") -> Some(\"(none)\")"
        ]
    );
}

#[test]
fn a_down_that_forgets_a_dropped_constraint_names_the_constraint() {
    let differences = rollback_differences(
        "ALTER TABLE customers DROP CONSTRAINT customers_email_check;",
        "SELECT 1;",
    );
    assert_eq!(
        differences,
        vec![
            "constraint customers_email_check on table public.customers []: Some(\"CHECK ((email <> ''::text))\") -> None"
        ]
    );
}

#[test]
fn a_lost_not_null_is_named() {
    let differences = rollback_differences(
        "ALTER TABLE customers ALTER COLUMN email DROP NOT NULL;",
        "SELECT 1;",
    );
    assert_eq!(
        differences,
        vec![
            "column email on table public.customers [not null]: Some(\"true\") -> Some(\"false\")"
        ]
    );
}

#[test]
fn a_column_re_added_at_the_end_is_only_a_warning_unless_strict() {
    let migrations = [
        ("0001_customers.sql", CUSTOMERS, "DROP TABLE customers;"),
        (
            "0002_drop_email.sql",
            "ALTER TABLE customers DROP COLUMN email;",
            "ALTER TABLE customers ADD COLUMN email text NOT NULL;\nALTER TABLE customers ADD CONSTRAINT customers_email_check CHECK (email <> '');",
        ),
    ];
    let report = common::rehearse(&migrations);
    let change = common::migration(&report, "0002");
    assert_eq!(change.verdict, Verdict::Warn, "{change:#?}");
    let RollbackCheck::ColumnOrderOnly { diff, .. } = &change.rollback else {
        panic!("{:?}", change.rollback);
    };
    assert_eq!(diff.column_order[0].object, "table public.customers");
    assert_eq!(diff.column_order[0].left, vec!["id", "email", "status"]);
    assert_eq!(diff.column_order[0].right, vec!["id", "status", "email"]);
    let mut strict = common::options();
    strict.strict = true;
    let report = common::rehearse_with(&migrations, &strict);
    assert_eq!(common::migration(&report, "0002").verdict, Verdict::Fail);
}

#[test]
fn a_migration_that_cannot_run_again_fails_with_the_statement_and_error() {
    let report = common::rehearse(&[
        ("0001_customers.sql", CUSTOMERS, "DROP TABLE customers;"),
        (
            "0002_audit.sql",
            "CREATE TABLE audit (id bigint);\nCREATE SEQUENCE audit_seq;",
            "DROP TABLE audit;",
        ),
        (
            "0003_later.sql",
            "CREATE TABLE later (id bigint);",
            "DROP TABLE later;",
        ),
    ]);
    let audit = common::migration(&report, "0002");
    assert_eq!(audit.verdict, Verdict::Fail);
    let ReapplyCheck::Failed { failure } = &audit.reapply else {
        panic!("{:?}", audit.reapply);
    };
    assert_eq!(failure.sql, "CREATE SEQUENCE audit_seq");
    assert_eq!(failure.line, 3);
    assert!(failure.error.contains("42P07"), "{}", failure.error);
    assert!(
        failure.error.contains("already exists"),
        "{}",
        failure.error
    );
    assert_eq!(report.not_rehearsed, vec!["0003"]);
}

#[test]
fn an_exact_rollback_and_rerun_pass() {
    let report = common::rehearse(&[
        ("0001_customers.sql", CUSTOMERS, "DROP TABLE customers;"),
        (
            "0002_orders.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id));\nCREATE INDEX orders_customer_idx ON orders (customer_id);\nCREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 100;",
            "DROP VIEW big_orders;\nDROP TABLE orders;",
        ),
    ]);
    assert!(!report.failed(), "{report:#?}");
    for migration in &report.migrations {
        assert_eq!(migration.verdict, Verdict::Pass, "{migration:#?}");
        assert!(matches!(migration.rollback, RollbackCheck::Exact { .. }));
        assert!(matches!(migration.reapply, ReapplyCheck::Succeeded { .. }));
    }
}
