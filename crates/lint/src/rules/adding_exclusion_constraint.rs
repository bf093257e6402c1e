//! `ADD CONSTRAINT … EXCLUDE` on a table other sessions use: no online way exists.

use pg_query::protobuf::ConstrType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::added_constraints;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, constraint) in added_constraints(context.node) {
            if constraint.contype() != ConstrType::ConstrExclusion || !context.is_existing(&table) {
                continue;
            }
            violations.push(
                Violation::new(format!(
                    "adding an exclusion constraint builds its index and checks every row of `{table}` under an ACCESS EXCLUSIVE lock, and it cannot be added NOT VALID"
                ))
                .alternative(format!(
                    "-- no online path exists: create a new table with the constraint, copy rows in batches\n\
                     -- (dual-writing with a trigger), then swap names in one short transaction:\n\
                     CREATE TABLE {t}_new (LIKE {t} INCLUDING ALL);\n\
                     ALTER TABLE {t}_new ADD CONSTRAINT … EXCLUDE …;",
                    t = table.sql()
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_exclusion_constraints_on_existing_tables() {
        one(
            "adding-exclusion-constraint",
            "CREATE TABLE rooms (id bigint, during tsrange);",
            "ALTER TABLE rooms ADD CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)",
        );
    }

    #[test]
    fn passes_new_tables() {
        none(
            "adding-exclusion-constraint",
            "",
            "CREATE TABLE rooms (id bigint, during tsrange, EXCLUDE USING gist (during WITH &&))",
        );
    }
}
