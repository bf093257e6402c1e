//! `TRUNCATE` of tables other sessions use: every row is deleted. `TRUNCATE … CASCADE` is
//! `truncate-cascade`'s.

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
        if truncate.behavior() == DropBehavior::DropCascade {
            return;
        }
        let tables: Vec<TableName> = range_vars(&truncate.relations)
            .map(TableName::from_range_var)
            .filter(|table| context.is_existing(table))
            .collect();
        if tables.is_empty() {
            return;
        }
        let names: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
        let listed: Vec<String> = tables.iter().map(TableName::sql).collect();
        violations.push(
            Violation::new(format!(
                "TRUNCATE deletes every row of {} for good, under an ACCESS EXCLUSIVE lock",
                names.join(", ")
            ))
            .alternative(format!(
                "-- the rows can go and a backup exists (`safeshift backup`):\n\
                 -- safeshift:allow truncating-table <why the rows are not needed>\n\
                 TRUNCATE {};",
                listed.join(", ")
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE sessions (id bigint); CREATE TABLE events (id bigint);";

    #[test]
    fn flags_truncating_tables_in_use() {
        let finding = one("truncating-table", SETUP, "TRUNCATE sessions, events");
        assert_eq!(finding.risk, crate::risk::Risk::High);
        assert_eq!(finding.tables, ["sessions", "events"]);
        assert!(finding.rewrite, "TRUNCATE replaces the table's files");
        assert_eq!(finding.lock.unwrap().sql_name(), "ACCESS EXCLUSIVE");
    }

    #[test]
    fn passes_new_tables_and_leaves_cascade_to_its_rule() {
        none(
            "truncating-table",
            "",
            "CREATE TABLE scratch (id bigint); TRUNCATE scratch",
        );
        none("truncating-table", SETUP, "TRUNCATE sessions CASCADE");
    }
}
