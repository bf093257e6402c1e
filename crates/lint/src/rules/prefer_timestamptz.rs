//! `timestamp` (without time zone) columns.

use super::{Rule, Violation, column_with_type};
use crate::context::StatementContext;
use crate::sql::column_type;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            if column_type(column).is_none_or(|t| t.name != "timestamp") {
                continue;
            }
            violations.push(
                Violation::new(format!(
                    "`{}` is timestamp without time zone: the values mean different instants depending on each session's TimeZone",
                    column.colname
                ))
                .alternative(column_with_type(table, &column.colname, added, "timestamptz")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_timestamp_without_time_zone() {
        one(
            "prefer-timestamptz",
            "",
            "CREATE TABLE t (created_at timestamp)",
        );
        one(
            "prefer-timestamptz",
            "",
            "CREATE TABLE t (created_at timestamp(3) without time zone)",
        );
    }

    #[test]
    fn passes_timestamptz() {
        none(
            "prefer-timestamptz",
            "",
            "CREATE TABLE t (created_at timestamptz, b timestamp with time zone)",
        );
    }
}
