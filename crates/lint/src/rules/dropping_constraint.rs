//! `DROP CONSTRAINT` on a table other sessions use.

use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::schema::ConstraintKind;
use crate::sql::alter_commands_of;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, command) in alter_commands_of(context.node, AlterTableType::AtDropConstraint) {
            if !context.is_existing(&table) {
                continue;
            }
            let kind = match context
                .schema
                .table(&table)
                .and_then(|t| t.constraint(&command.name))
                .map(|c| &c.kind)
            {
                Some(ConstraintKind::ForeignKey { .. }) => "foreign key",
                Some(ConstraintKind::Check { .. }) => "check constraint",
                Some(ConstraintKind::PrimaryKey) => "primary key",
                Some(ConstraintKind::Unique) => "unique constraint",
                Some(ConstraintKind::Exclusion) => "exclusion constraint",
                None => "constraint",
            };
            violations.push(
                Violation::new(format!(
                    "dropping {kind} `{}` on `{table}` stops PostgreSQL from enforcing it: bad rows can arrive silently",
                    command.name
                ))
                .alternative(format!(
                    "-- make sure the application (or a replacement constraint) enforces this first, then:\n{};",
                    context.sql
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_dropped_constraints() {
        let finding = one(
            "dropping-constraint",
            "CREATE TABLE orders (id bigint, total numeric CONSTRAINT total_positive CHECK (total >= 0));",
            "ALTER TABLE orders DROP CONSTRAINT total_positive",
        );
        assert!(finding.message.contains("check constraint"));
    }

    #[test]
    fn passes_new_tables() {
        none(
            "dropping-constraint",
            "",
            "CREATE TABLE t (a int CONSTRAINT c CHECK (a > 0)); ALTER TABLE t DROP CONSTRAINT c",
        );
    }
}
