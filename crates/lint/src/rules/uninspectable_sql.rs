//! SQL whose effects the linter cannot see: `DO` blocks, `CALL`, dynamic `EXECUTE`, and `SELECT`s
//! that call functions outside the built-ins.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::strings;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let what = match context.node {
            NodeEnum::DoStmt(_) => "a DO block".to_owned(),
            NodeEnum::CallStmt(call) => {
                let name = call
                    .funccall
                    .as_ref()
                    .map(|f| strings(&f.funcname).join("."))
                    .unwrap_or_default();
                format!("CALL {name}")
            }
            NodeEnum::ExecuteStmt(execute) => format!("EXECUTE {}", execute.name),
            NodeEnum::SelectStmt(select) if select.from_clause.is_empty() => {
                let Some(function) = user_function(select) else {
                    return;
                };
                format!("SELECT {function}(…)")
            }
            _ => return,
        };
        violations.push(
            Violation::new(format!(
                "{what} runs code safeshift cannot inspect: its locks, rewrites and data changes are not checked"
            ))
            .locks(Vec::new())
            .alternative("-- write the schema changes as plain statements, or review this one and acknowledge it:\n-- safeshift:allow uninspectable-sql <why it is safe>"),
        );
    }
}

/// Built-in functions a migration commonly selects for their effect, which are not hidden code.
const KNOWN_FUNCTIONS: &[&str] = &[
    "now",
    "version",
    "set_config",
    "current_setting",
    "pg_sleep",
    "setval",
    "nextval",
    "pg_advisory_lock",
    "pg_advisory_unlock",
    "pg_advisory_xact_lock",
    "pg_try_advisory_lock",
    "pg_notify",
    "pg_reload_conf",
    "count",
];

/// The first function in the target list that is user code: schema-qualified outside `pg_catalog`,
/// or unqualified and not a known built-in.
fn user_function(select: &pg_query::protobuf::SelectStmt) -> Option<String> {
    select.target_list.iter().find_map(|target| {
        let NodeEnum::ResTarget(target) = target.node.as_ref()? else {
            return None;
        };
        let NodeEnum::FuncCall(call) = crate::sql::inner(&target.val)? else {
            return None;
        };
        let names = strings(&call.funcname);
        let user_code = match names.as_slice() {
            [name] => !KNOWN_FUNCTIONS.contains(&name.as_str()),
            [schema, ..] => schema != "pg_catalog",
            [] => false,
        };
        user_code.then(|| names.join("."))
    })
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_code_the_linter_cannot_see() {
        one(
            "uninspectable-sql",
            "",
            "DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD COLUMN c int'; END $$",
        );
        one("uninspectable-sql", "", "SELECT app.backfill_orders()");
        one("uninspectable-sql", "", "CALL app.rebuild()");
    }

    #[test]
    fn passes_plain_statements() {
        none("uninspectable-sql", "", "SELECT 1");
        none("uninspectable-sql", "", "SELECT now()");
        none(
            "uninspectable-sql",
            "",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        );
    }
}
