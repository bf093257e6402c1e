//! New `varchar(n)` columns: changing the limit later locks the table (and shrinking it rewrites).

use super::{Rule, Violation, column_with_type};
use crate::context::StatementContext;
use crate::sql::{column_type, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            let Some(column_type) = column_type(column) else {
                continue;
            };
            let Some(limit) = column_type
                .modifiers
                .first()
                .filter(|_| column_type.is("varchar"))
            else {
                continue;
            };
            let name = quote_ident(&column.colname);
            let check = quote_ident(&format!("{}_{}_length", table.name, column.colname));
            violations.push(
                Violation::new(format!(
                    "`{}` is varchar({limit}); changing the limit later takes an ACCESS EXCLUSIVE lock, and lowering it rewrites the table",
                    column.colname
                ))
                .alternative(format!(
                    "{}{}\nALTER TABLE {} ADD CONSTRAINT {check} CHECK (length({name}) <= {limit}) NOT VALID;",
                    column_with_type(table, &column.colname, added, "text"),
                    if added { ";" } else { "" },
                    table.sql()
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_limited_varchar() {
        let finding = one(
            "prefer-text-over-varchar",
            "",
            "CREATE TABLE users (email varchar(255))",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .contains("CHECK (length(email) <= 255) NOT VALID")
        );
    }

    #[test]
    fn passes_text_and_unlimited_varchar() {
        none(
            "prefer-text-over-varchar",
            "",
            "CREATE TABLE users (email text, name varchar)",
        );
    }
}
