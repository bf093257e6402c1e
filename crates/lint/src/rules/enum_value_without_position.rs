//! `ALTER TYPE … ADD VALUE` without `BEFORE` or `AFTER`.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::AlterEnumStmt(alter) = context.node else {
            return;
        };
        if !alter.old_val.is_empty() || !alter.new_val_neighbor.is_empty() {
            return;
        }
        violations.push(
            Violation::new(format!(
                "'{}' is appended after the last value: enum values sort by position, so comparisons and ORDER BY on the column place it last",
                alter.new_val
            ))
            .locks(Vec::new())
            .alternative(format!("{} AFTER '<the value it should follow>';", context.sql)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TYPE order_status AS ENUM ('new', 'shipped');";

    #[test]
    fn flags_values_without_a_position() {
        one(
            "enum-value-without-position",
            SETUP,
            "ALTER TYPE order_status ADD VALUE 'paid'",
        );
    }

    #[test]
    fn passes_positioned_values() {
        none(
            "enum-value-without-position",
            SETUP,
            "ALTER TYPE order_status ADD VALUE 'paid' BEFORE 'shipped'",
        );
    }
}
