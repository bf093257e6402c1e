//! `TRUNCATE … CASCADE`: empties every table that references the named ones.

use pg_query::NodeEnum;
use pg_query::protobuf::DropBehavior;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, range_vars};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::TruncateStmt(truncate) = context.node else {
            return;
        };
        if truncate.behavior() != DropBehavior::DropCascade {
            return;
        }
        let tables: Vec<String> = range_vars(&truncate.relations)
            .map(|r| TableName::from_range_var(r).sql())
            .collect();
        violations.push(
            Violation::new(format!(
                "TRUNCATE … CASCADE also empties every table with a foreign key to {}, including ones this statement does not name",
                tables.join(", ")
            ))
            .alternative(format!("-- name every table to empty explicitly:\nTRUNCATE {};", tables.join(", "))),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint PRIMARY KEY); CREATE TABLE orders (user_id bigint REFERENCES users);";

    #[test]
    fn flags_cascading_truncate() {
        let finding = one("truncate-cascade", SETUP, "TRUNCATE users CASCADE");
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "-- name every table to empty explicitly:\nTRUNCATE users;"
        );
    }

    #[test]
    fn passes_plain_truncate() {
        none("truncate-cascade", SETUP, "TRUNCATE orders");
    }
}
