//! `char(n)` columns: blank-padded, and no faster than `text`.

use super::{Rule, Violation, column_with_type};
use crate::context::StatementContext;
use crate::sql::column_type;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            if column_type(column).is_none_or(|t| t.name != "bpchar") {
                continue;
            }
            violations.push(
                Violation::new(format!(
                    "`{}` is char(n): values are padded with spaces, which comparisons and lengths then trip over",
                    column.colname
                ))
                .alternative(column_with_type(table, &column.colname, added, "text")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_char_columns() {
        one("avoid-char-type", "", "CREATE TABLE t (code char(3))");
        one("avoid-char-type", "", "CREATE TABLE t (code character(3))");
    }

    #[test]
    fn passes_text() {
        none(
            "avoid-char-type",
            "",
            "CREATE TABLE t (code text, name varchar)",
        );
    }
}
