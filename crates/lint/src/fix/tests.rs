//! `--fix` on migrations directories: each rewrite before and after, names, suppressions,
//! section options, and that a second run changes nothing.

use std::path::Path;

use safeshift_source::MigrationSet;

use super::{FileFix, encode_like};
use crate::linter::{AppliedMigrations, Linter, Scope};
use crate::options::{LintOptions, PgVersion};

const SETUP: &str = "-- migrate:up
CREATE TABLE users (id bigint PRIMARY KEY, email text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric, status text, code text NOT NULL);
";

/// The fix of `name` (written with `text`) in a directory whose first migration is [`SETUP`].
fn fix_in(dir: &Path, name: &str, text: &str) -> Option<FileFix> {
    std::fs::write(dir.join("0001_setup.sql"), SETUP).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
    fix_directory(dir, PgVersion::DEFAULT, None)
        .into_iter()
        .find(|fix| fix.path.ends_with(name))
}

fn fix_directory(
    dir: &Path,
    pg_version: PgVersion,
    applied: Option<&AppliedMigrations>,
) -> Vec<FileFix> {
    let set = MigrationSet::load(dir).unwrap();
    let linter = Linter::new(LintOptions {
        pg_version,
        ..LintOptions::default()
    })
    .unwrap();
    linter.fix_set(&set, applied, &Scope::All)
}

/// Fixes `text` as migration 0002, asserts that fixing the result again changes nothing, and
/// returns the fix.
fn fix(text: &str) -> FileFix {
    let dir = tempfile::tempdir().unwrap();
    let fix = fix_in(dir.path(), "0002_change.sql", text).expect("something to fix");
    if let Some(fixed) = &fix.fixed {
        let again = fix_in(dir.path(), "0002_change.sql", fixed);
        assert!(
            again
                .as_ref()
                .is_none_or(|again| again.fixed.is_none() && again.warnings.is_empty()),
            "a second --fix changed the file again: {again:#?}"
        );
    }
    fix
}

fn fixed(text: &str) -> String {
    let fix = fix(text);
    fix.fixed
        .unwrap_or_else(|| panic!("nothing was rewritten: {:#?}", fix.left_alone))
}

fn left_alone_reason(text: &str) -> String {
    let fix = fix(text);
    assert!(fix.fixed.is_none(), "rewritten: {:?}", fix.fixed);
    assert_eq!(fix.left_alone.len(), 1, "{:#?}", fix.left_alone);
    fix.left_alone[0].reason.clone()
}

#[test]
fn builds_indexes_concurrently_and_keeps_the_rest_of_the_file() {
    let text = "-- migrate:up\n-- speeds up the status page\n  CREATE INDEX orders_status_idx\n    ON orders (status); -- hot path\n\n-- migrate:down\nDROP INDEX orders_status_idx;\n";
    assert_eq!(
        fixed(text),
        "-- migrate:up transaction:false\n-- speeds up the status page\n  CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx\n    ON orders (status); -- hot path\n\n-- migrate:down\nDROP INDEX orders_status_idx;\n"
    );
}

#[test]
fn names_an_unnamed_index_the_way_postgresql_would() {
    assert_eq!(
        fixed("-- migrate:up\nCREATE UNIQUE INDEX ON orders (user_id, lower(status));\n"),
        "-- migrate:up transaction:false\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_expr_idx ON orders (user_id, lower(status));\n"
    );
}

#[test]
fn drops_indexes_concurrently_one_at_a_time() {
    let setup_index = "-- migrate:up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0002_index.sql"),
        setup_index.replace("up\n", "up transaction:false\n"),
    )
    .unwrap();
    let fix = fix_in(
        dir.path(),
        "0003_drop.sql",
        "-- migrate:up\nDROP INDEX orders_status_idx;\n",
    )
    .unwrap();
    assert_eq!(
        fix.fixed.as_deref(),
        Some(
            "-- migrate:up transaction:false\nDROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
        )
    );
    let reason = left_alone_reason("-- migrate:up\nDROP INDEX a_idx, b_idx;\n");
    assert!(reason.contains("one index at a time"), "{reason}");
}

#[test]
fn adds_check_and_foreign_key_not_valid_then_validates_them() {
    assert_eq!(
        fixed("-- migrate:up\nALTER TABLE orders ADD CHECK (total >= 0);\n"),
        "-- migrate:up transaction:false\nALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;\n"
    );
    assert_eq!(
        fixed(
            "-- migrate:up\nALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0 OR status = 'free');\n"
        ),
        "-- migrate:up transaction:false\nALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0 OR status = 'free') NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT positive;\n"
    );
    assert_eq!(
        fixed(
            "-- migrate:up\n    ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;\n"
        ),
        "-- migrate:up transaction:false\n    ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE NOT VALID;\n    ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;\n"
    );
}

#[test]
fn sets_not_null_through_a_validated_check() {
    assert_eq!(
        fixed("-- migrate:up\nALTER TABLE orders ALTER COLUMN status SET NOT NULL;\n"),
        "-- migrate:up transaction:false\n\
         ALTER TABLE orders ADD CONSTRAINT orders_status_not_null CHECK (status IS NOT NULL) NOT VALID;\n\
         ALTER TABLE orders VALIDATE CONSTRAINT orders_status_not_null;\n\
         ALTER TABLE orders ALTER COLUMN status SET NOT NULL;\n\
         ALTER TABLE orders DROP CONSTRAINT orders_status_not_null;\n"
    );
}

#[test]
fn set_not_null_before_postgresql_12_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_setup.sql"), SETUP).unwrap();
    std::fs::write(
        dir.path().join("0002_change.sql"),
        "-- migrate:up\nALTER TABLE orders ALTER COLUMN status SET NOT NULL;\n",
    )
    .unwrap();
    let fixes = fix_directory(dir.path(), "11".parse().unwrap(), None);
    assert!(fixes[0].fixed.is_none());
    assert!(
        fixes[0].left_alone[0].reason.contains("PostgreSQL 11"),
        "{:?}",
        fixes[0].left_alone
    );
}

#[test]
fn builds_unique_and_primary_key_indexes_concurrently_then_attaches_them() {
    assert_eq!(
        fixed("-- migrate:up\nALTER TABLE users ADD UNIQUE (email);\n"),
        "-- migrate:up transaction:false\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key ON users (email);\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;\n"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0002_codes.sql"),
        "-- migrate:up\nCREATE TABLE codes (code text NOT NULL, note text);\n",
    )
    .unwrap();
    let fix = fix_in(
        dir.path(),
        "0003_key.sql",
        "-- migrate:up\nALTER TABLE codes ADD PRIMARY KEY (code);\n",
    )
    .unwrap();
    assert_eq!(
        fix.fixed.as_deref(),
        Some(
            "-- migrate:up transaction:false\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS codes_pkey ON codes (code);\nALTER TABLE codes ADD CONSTRAINT codes_pkey PRIMARY KEY USING INDEX codes_pkey;\n"
        )
    );
    let fix = fix_in(
        dir.path(),
        "0003_key.sql",
        "-- migrate:up\nALTER TABLE codes ADD PRIMARY KEY (note);\n",
    )
    .unwrap();
    assert!(fix.fixed.is_none());
    assert!(
        fix.left_alone[0].reason.contains("`note` may hold NULLs"),
        "{:?}",
        fix.left_alone
    );
}

#[test]
fn long_names_are_truncated_like_postgresql_truncates_them() {
    let dir = tempfile::tempdir().unwrap();
    let table = "t".repeat(40);
    let column = "c".repeat(40);
    std::fs::write(
        dir.path().join("0002_long.sql"),
        format!("-- migrate:up\nCREATE TABLE {table} ({column} int);\n"),
    )
    .unwrap();
    let fix = fix_in(
        dir.path(),
        "0003_check.sql",
        &format!("-- migrate:up\nALTER TABLE {table} ADD CHECK ({column} > 0);\n"),
    )
    .unwrap();
    let expected = format!("{}_{}_check", "t".repeat(28), "c".repeat(28));
    assert_eq!(expected.len(), 63);
    assert!(
        fix.fixed
            .as_deref()
            .unwrap()
            .contains(&format!("VALIDATE CONSTRAINT {expected};")),
        "{:?}",
        fix.fixed
    );
}

#[test]
fn reindexes_and_detaches_concurrently() {
    assert_eq!(
        fixed("-- migrate:up\nREINDEX TABLE orders;\n"),
        "-- migrate:up transaction:false\nREINDEX TABLE CONCURRENTLY orders;\n"
    );
    assert_eq!(
        fixed("-- migrate:up\nALTER TABLE events DETACH PARTITION events_2020;\n"),
        "-- migrate:up transaction:false\nALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;\n"
    );
}

#[test]
fn refreshes_concurrently_only_with_a_unique_index() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0002_view.sql"),
        "-- migrate:up\nCREATE MATERIALIZED VIEW totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;\nCREATE MATERIALIZED VIEW statuses AS SELECT DISTINCT status FROM orders;\nCREATE UNIQUE INDEX totals_user_id ON totals (user_id);\n",
    )
    .unwrap();
    let fix = fix_in(
        dir.path(),
        "0003_refresh.sql",
        "-- migrate:up\nREFRESH MATERIALIZED VIEW totals;\nREFRESH MATERIALIZED VIEW statuses;\n",
    )
    .unwrap();
    assert_eq!(
        fix.fixed.as_deref(),
        Some(
            "-- migrate:up\nREFRESH MATERIALIZED VIEW CONCURRENTLY totals;\nREFRESH MATERIALIZED VIEW statuses;\n"
        ),
        "a concurrent refresh runs in a transaction: the section keeps its own"
    );
    assert_eq!(fix.left_alone.len(), 1);
    assert!(
        fix.left_alone[0].reason.contains("unique index"),
        "{:?}",
        fix.left_alone
    );
}

#[test]
fn batches_a_whole_table_update_as_a_backfill() {
    assert_eq!(
        fixed(
            "-- migrate:up\nALTER TABLE orders ADD COLUMN currency text;\n  UPDATE orders SET currency = 'EUR';\n"
        ),
        "-- migrate:up transaction:false\nALTER TABLE orders ADD COLUMN currency text;\n  -- safeshift:backfill\n  UPDATE orders SET currency = 'EUR';\n"
    );
    let reason = left_alone_reason("-- migrate:up\nDELETE FROM orders;\n");
    assert!(reason.contains("UPDATE statements only"), "{reason}");
}

#[test]
fn a_backfill_needs_a_key_to_page_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0002_log.sql"),
        "-- migrate:up\nCREATE TABLE log (message text);\n",
    )
    .unwrap();
    let fix = fix_in(
        dir.path(),
        "0003_update.sql",
        "-- migrate:up\nUPDATE log SET message = lower(message);\n",
    )
    .unwrap();
    assert!(fix.fixed.is_none());
    assert!(
        fix.left_alone[0].reason.contains("primary key"),
        "{:?}",
        fix.left_alone
    );
}

#[test]
fn warns_when_other_statements_lose_their_shared_transaction() {
    let mixed = fix(
        "-- migrate:up\nCREATE TABLE notes (id bigint PRIMARY KEY);\nCREATE INDEX orders_total_idx ON orders (total);\n",
    );
    assert_eq!(
        mixed.section_change.as_deref(),
        Some("set `transaction:false` on the `-- migrate:up` line (line 1)")
    );
    assert_eq!(mixed.warnings.len(), 1);
    assert!(
        mixed.warnings[0].contains("statement on line 2 no longer commits"),
        "{}",
        mixed.warnings[0]
    );
    assert!(
        fix("-- migrate:up\nCREATE INDEX orders_total_idx ON orders (total);\n")
            .warnings
            .is_empty()
    );
}

#[test]
fn keeps_other_options_and_turns_transaction_true_off() {
    assert_eq!(
        fixed(
            "-- migrate:up lock_timeout:2s transaction:true\nCREATE INDEX orders_total_idx ON orders (total);\n"
        ),
        "-- migrate:up lock_timeout:2s transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_idx ON orders (total);\n"
    );
}

#[test]
fn an_up_file_of_a_pair_gets_a_marker_line_for_its_options() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0002_index.down.sql"),
        "DROP INDEX orders_total_idx;\n",
    )
    .unwrap();
    let fix = fix_in(
        dir.path(),
        "0002_index.up.sql",
        "CREATE INDEX orders_total_idx ON orders (total);\n",
    )
    .unwrap();
    let fixed = fix.fixed.unwrap();
    assert_eq!(
        fixed,
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_idx ON orders (total);\n"
    );
    std::fs::write(dir.path().join("0002_index.up.sql"), &fixed).unwrap();
    let set = MigrationSet::load(dir.path()).unwrap();
    assert!(
        !set.migrations[1].up.options.transaction,
        "the marker is read as the file's options"
    );
}

#[test]
fn acknowledged_findings_are_not_rewritten() {
    let fix = fix(
        "-- migrate:up\n-- safeshift:allow require-concurrent-index-creation orders has ten rows\nCREATE INDEX orders_total_idx ON orders (total);\n",
    );
    assert!(fix.fixed.is_none());
    assert!(
        fix.left_alone[0].reason.contains("orders has ten rows"),
        "{:?}",
        fix.left_alone
    );
}

#[test]
fn statements_in_the_files_own_transaction_are_left_alone() {
    let reason = left_alone_reason(
        "-- migrate:up transaction:false\nBEGIN;\nALTER TABLE orders ADD CHECK (total >= 0);\nCOMMIT;\n",
    );
    assert!(reason.contains("BEGIN … COMMIT"), "{reason}");
}

#[test]
fn applied_migrations_are_never_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_setup.sql"), SETUP).unwrap();
    std::fs::write(
        dir.path().join("0002_index.sql"),
        "-- migrate:up\nCREATE INDEX orders_total_idx ON orders (total);\n",
    )
    .unwrap();
    let mut applied = AppliedMigrations::default();
    applied.versions.insert("0001".into(), None);
    applied.versions.insert("0002".into(), None);
    let fixes = fix_directory(dir.path(), PgVersion::DEFAULT, Some(&applied));
    assert_eq!(fixes.len(), 1);
    assert!(fixes[0].fixed.is_none());
    assert!(
        fixes[0].left_alone[0].reason.contains("applied"),
        "{:?}",
        fixes[0].left_alone
    );
}

#[test]
fn several_fixes_in_one_file() {
    let text = "-- migrate:up
-- Orders get a currency, checked and indexed.
ALTER TABLE orders ADD COLUMN currency text;
UPDATE orders SET currency = 'EUR';
ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;
ALTER TABLE orders ADD CONSTRAINT currency_code CHECK (length(currency) = 3);
CREATE INDEX orders_currency_idx ON orders (currency);
ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);

-- migrate:down
ALTER TABLE orders DROP COLUMN currency;
";
    let fix = fix(text);
    let rules: Vec<&str> = fix.rewrites.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "unbatched-data-change",
            "setting-not-null-on-existing-column",
            "adding-check-without-not-valid",
            "require-concurrent-index-creation",
            "adding-foreign-key-without-not-valid"
        ]
    );
    insta::assert_snapshot!(fix.fixed.unwrap());
}

#[test]
fn line_endings_and_byte_order_mark_are_kept() {
    assert_eq!(encode_like(b"a\nb\n", "a\nx\nb\n").unwrap(), b"a\nx\nb\n");
    assert_eq!(
        encode_like(b"\xEF\xBB\xBFa\r\nb\r\n", "a\nx\nb\n").unwrap(),
        b"\xEF\xBB\xBFa\r\nx\r\nb\r\n"
    );
    assert!(encode_like(b"a\r\nb\n", "a\nb\n").is_err());
}
