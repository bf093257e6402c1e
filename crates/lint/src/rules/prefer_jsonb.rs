//! Columns of type `json` rather than `jsonb`.

use super::{Rule, Violation, column_with_type};
use crate::context::StatementContext;
use crate::sql::column_type;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            if column_type(column).is_none_or(|t| t.name != "json") {
                continue;
            }
            let alternative = column_with_type(table, &column.colname, added, "jsonb");
            violations.push(
                Violation::new(format!(
                    "`{}` is `json`, which has no equality operator: SELECT DISTINCT, UNION and GROUP BY on it fail",
                    column.colname
                ))
                .alternative(alternative),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_json_columns() {
        let finding = one(
            "prefer-jsonb",
            "CREATE TABLE t (id int);",
            "ALTER TABLE t ADD COLUMN payload json",
        );
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "ALTER TABLE t ADD COLUMN payload jsonb"
        );
        one("prefer-jsonb", "", "CREATE TABLE e (payload json)");
    }

    #[test]
    fn passes_jsonb() {
        none("prefer-jsonb", "", "CREATE TABLE e (payload jsonb)");
    }
}
