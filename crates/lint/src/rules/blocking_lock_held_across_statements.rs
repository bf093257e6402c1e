//! A lock that blocks writes (SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE) held while more statements
//! run in the same transaction.

use super::{Rule, Violation, held_lock_violations};
use crate::context::MigrationEnd;
use crate::lock::LockMode;

pub(crate) struct Check;

impl Rule for Check {
    fn finish(&self, end: &MigrationEnd<'_>, violations: &mut Vec<Violation>) {
        held_lock_violations(end, violations, |mode| {
            mode.blocks_traffic() && mode != LockMode::AccessExclusive
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint PRIMARY KEY); CREATE TABLE orders (id bigint, user_id bigint);";

    #[test]
    fn flags_a_write_blocking_lock_held_through_later_statements() {
        let finding = one(
            "blocking-lock-held-across-statements",
            SETUP,
            "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();\nUPDATE users SET id = id;",
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "SHARE ROW EXCLUSIVE");
    }

    #[test]
    fn passes_when_nothing_follows() {
        none(
            "blocking-lock-held-across-statements",
            SETUP,
            "CREATE INDEX CONCURRENTLY i ON orders (user_id)",
        );
        none(
            "blocking-lock-held-across-statements",
            SETUP,
            "UPDATE users SET id = id WHERE id = 1; CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        );
    }
}
