//! `ADD CONSTRAINT … CHECK` without `NOT VALID` on a table other sessions use.

use pg_query::protobuf::ConstrType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{added_constraints, deparse_expression, inner, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, constraint) in added_constraints(context.node) {
            if constraint.contype() != ConstrType::ConstrCheck
                || constraint.skip_validation
                || !context.is_existing(&table)
            {
                continue;
            }
            let name = if constraint.conname.is_empty() {
                format!("{}_check", table.name)
            } else {
                constraint.conname.clone()
            };
            let expression = inner(&constraint.raw_expr)
                .map(deparse_expression)
                .unwrap_or_default();
            let t = table.sql();
            let n = quote_ident(&name);
            violations.push(
                Violation::new(format!(
                    "adding CHECK `{name}` evaluates it on every row of `{table}` under an ACCESS EXCLUSIVE lock: no reads or writes until it is done"
                ))
                .alternative(format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({expression}) NOT VALID;\n-- in a later migration (its own transaction):\nALTER TABLE {t} VALIDATE CONSTRAINT {n};"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE orders (id bigint, total numeric);";

    #[test]
    fn flags_validated_checks() {
        let finding = one(
            "adding-check-without-not-valid",
            SETUP,
            "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0)",
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "ACCESS EXCLUSIVE");
        assert!(finding.safe_alternative.unwrap().starts_with(
            "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID;"
        ));
    }

    #[test]
    fn passes_not_valid_and_new_tables() {
        none(
            "adding-check-without-not-valid",
            SETUP,
            "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID",
        );
        none(
            "adding-check-without-not-valid",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t ADD CHECK (a > 0)",
        );
    }
}
