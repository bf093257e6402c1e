//! `ADD CONSTRAINT … UNIQUE` (or `ADD COLUMN … UNIQUE`) that builds its index under the table lock.

use pg_query::protobuf::ConstrType;

use super::{Rule, Violation, index_backed_constraint_alternative};
use crate::context::StatementContext;
use crate::sql::{added_constraints, constraints, strings};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let mut found = Vec::new();
        for (table, constraint) in added_constraints(context.node) {
            if constraint.contype() == ConstrType::ConstrUnique && constraint.indexname.is_empty() {
                found.push((table, constraint.conname.clone(), strings(&constraint.keys)));
            }
        }
        for &(ref table, column, added) in &context.columns {
            if added
                && constraints(&column.constraints).any(|c| c.contype() == ConstrType::ConstrUnique)
            {
                found.push((table.clone(), String::new(), vec![column.colname.clone()]));
            }
        }
        for (table, name, columns) in found {
            if !context.is_existing(&table) {
                continue;
            }
            let name = if name.is_empty() {
                format!("{}_{}_key", table.name, columns.join("_"))
            } else {
                name
            };
            violations.push(
                Violation::new(format!(
                    "adding UNIQUE `{name}` builds its index on `{table}` under an ACCESS EXCLUSIVE lock: no reads or writes until the build is done"
                ))
                .alternative(index_backed_constraint_alternative(&table, &name, &columns, "UNIQUE")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint, email text);";

    #[test]
    fn flags_unique_constraints_that_build_an_index() {
        let finding = one(
            "adding-unique-constraint",
            SETUP,
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        );
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "-- migration 1, marked `-- migrate:up transaction:false`:\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key_idx ON users (email);\n\
             -- migration 2:\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key_idx;"
        );
        one(
            "adding-unique-constraint",
            SETUP,
            "ALTER TABLE users ADD COLUMN handle text UNIQUE",
        );
    }

    #[test]
    fn passes_using_index_and_new_tables() {
        none(
            "adding-unique-constraint",
            "CREATE TABLE users (id bigint, email text); CREATE UNIQUE INDEX CONCURRENTLY u ON users (email);",
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX u",
        );
        none(
            "adding-unique-constraint",
            "",
            "CREATE TABLE t (a int UNIQUE); ALTER TABLE t ADD CONSTRAINT k UNIQUE (a)",
        );
    }
}
