//! An ACCESS EXCLUSIVE lock taken early in a transaction and held while more statements run.

use super::{Rule, Violation, held_lock_violations};
use crate::context::MigrationEnd;

pub(crate) struct Check;

impl Rule for Check {
    fn finish(&self, end: &MigrationEnd<'_>, violations: &mut Vec<Violation>) {
        held_lock_violations(end, violations, |mode| {
            mode == crate::lock::LockMode::AccessExclusive
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::risk::Risk;
    use crate::rules::testing::{none, one};

    const SETUP: &str =
        "CREATE TABLE users (id bigint, email text); CREATE TABLE orders (id bigint);";

    #[test]
    fn flags_an_access_exclusive_lock_held_through_slow_work() {
        let finding = one(
            "access-exclusive-held-across-statements",
            SETUP,
            "ALTER TABLE users ADD COLUMN age int;\nUPDATE orders SET id = id + 1;",
        );
        assert_eq!(finding.line, 1);
        assert_eq!(finding.risk, Risk::Medium);
    }

    #[test]
    fn passes_quick_statements_after_the_lock() {
        none(
            "access-exclusive-held-across-statements",
            SETUP,
            "ALTER TABLE users ADD COLUMN age int;\nCOMMENT ON TABLE orders IS 'x';\nCREATE VIEW v AS SELECT 1;",
        );
    }

    #[test]
    fn passes_single_statements_and_new_tables() {
        none(
            "access-exclusive-held-across-statements",
            SETUP,
            "ALTER TABLE users ADD COLUMN age int",
        );
        none(
            "access-exclusive-held-across-statements",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN b int; INSERT INTO t VALUES (1, 2)",
        );
    }
}
