//! `ADD PRIMARY KEY` that builds its index (and sets NOT NULL) under the table lock.

use pg_query::protobuf::ConstrType;

use super::{Rule, Violation, index_backed_constraint_alternative};
use crate::context::StatementContext;
use crate::sql::{added_constraints, strings};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, constraint) in added_constraints(context.node) {
            if constraint.contype() != ConstrType::ConstrPrimary || !context.is_existing(&table) {
                continue;
            }
            let columns = strings(&constraint.keys);
            let name = if constraint.conname.is_empty() {
                format!("{}_pkey", table.name)
            } else {
                constraint.conname.clone()
            };
            let nullable: Vec<&String> = match context.schema.table(&table) {
                Some(known) => columns
                    .iter()
                    .filter(|c| known.column(c).is_some_and(|c| !c.not_null))
                    .collect(),
                None => Vec::new(),
            };
            let nullable_note = if nullable.is_empty() {
                String::new()
            } else {
                format!(
                    "; `{}` must first become NOT NULL, which scans the table (see setting-not-null-on-existing-column)",
                    nullable
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join("`, `")
                )
            };
            if !constraint.indexname.is_empty() {
                if nullable.is_empty() {
                    continue;
                }
                violations.push(Violation::new(format!(
                    "ADD PRIMARY KEY USING INDEX sets NOT NULL on nullable columns of `{table}`, scanning it under an ACCESS EXCLUSIVE lock{nullable_note}"
                )));
                continue;
            }
            violations.push(
                Violation::new(format!(
                    "adding primary key `{name}` builds its index on `{table}` under an ACCESS EXCLUSIVE lock: no reads or writes until the build is done{nullable_note}"
                ))
                .alternative(index_backed_constraint_alternative(&table, &name, &columns, "PRIMARY KEY")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE events (id bigint NOT NULL, payload text);";

    #[test]
    fn flags_primary_keys_that_build_an_index() {
        let finding = one(
            "adding-primary-key",
            SETUP,
            "ALTER TABLE events ADD PRIMARY KEY (id)",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .contains("ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx")
        );
        let nullable = one(
            "adding-primary-key",
            "CREATE TABLE events (id bigint);",
            "ALTER TABLE events ADD PRIMARY KEY (id)",
        );
        assert!(nullable.message.contains("must first become NOT NULL"));
    }

    #[test]
    fn passes_using_index_on_not_null_columns_and_new_tables() {
        none(
            "adding-primary-key",
            "CREATE TABLE events (id bigint NOT NULL); CREATE UNIQUE INDEX CONCURRENTLY e ON events (id);",
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX e",
        );
        none(
            "adding-primary-key",
            "",
            "CREATE TABLE t (id bigint); ALTER TABLE t ADD PRIMARY KEY (id)",
        );
    }
}
