//! `DROP TABLE` of a table other sessions use.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::policy::Hazard;
use crate::risk::Risk;
use crate::sql::TableName;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::DropStmt(drop) = context.node else {
            return;
        };
        if drop.remove_type() != ObjectType::ObjectTable {
            return;
        }
        for name in drop.objects.iter().filter_map(|o| match &o.node {
            Some(NodeEnum::List(list)) => TableName::from_names(&list.items),
            _ => None,
        }) {
            if !context.is_existing(&name) {
                continue;
            }
            if drop.missing_ok && context.schema.table(&name).is_none() {
                // A scratch table dropped before it is made again is the usual reason: only the
                // database can tell whether there is anything to lose.
                violations.push(
                    Violation::new(format!(
                        "no earlier migration creates `{name}`: if it exists all the same (made outside the migrations), dropping it deletes its data"
                    ))
                    .risk(Risk::Low)
                    .hazard(Some(Hazard::DataLossIfPresent))
                    .locks(context.lock_on(&name))
                    .alternative(format!(
                        "-- a scratch table: create it as TEMPORARY (gone at the end of the session), or drop it where it is made
                         DROP TABLE IF EXISTS {};",
                        name.sql()
                    )),
                );
                continue;
            }
            violations.push(
                Violation::new(format!("dropping `{name}` deletes its data for good, and running code that uses it fails"))
                    .locks(context.lock_on(&name))
                    .alternative(format!(
                        "-- first release: stop using `{name}`; keep a copy if the data matters:\n\
                         ALTER TABLE {t} RENAME TO {t}_deprecated;  -- reversible, and fails loudly if anything still uses it\n\
                         -- a later release: DROP TABLE {t}_deprecated;",
                        t = name.sql()
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::Hazard;
    use crate::risk::Risk;
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_dropping_existing_tables() {
        let finding = one(
            "dropping-table",
            "CREATE TABLE audit (id bigint);",
            "DROP TABLE audit",
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "ACCESS EXCLUSIVE");
    }

    #[test]
    fn a_table_no_migration_creates_is_low_when_dropped_if_it_exists() {
        let finding = one(
            "dropping-table",
            "",
            "DROP TABLE IF EXISTS tmp_import; CREATE TEMPORARY TABLE tmp_import (id bigint)",
        );
        assert_eq!(finding.risk, Risk::Low);
        assert_eq!(finding.hazard, Some(Hazard::DataLossIfPresent));
        assert!(finding.message.contains("no earlier migration creates"));
        let created = one(
            "dropping-table",
            "CREATE TABLE audit (id bigint);",
            "DROP TABLE IF EXISTS audit",
        );
        assert_eq!(created.risk, Risk::High, "the history made it: its data goes");
        let asserted = one("dropping-table", "", "DROP TABLE audit");
        assert_eq!(asserted.risk, Risk::High, "without IF EXISTS it must exist");
    }

    #[test]
    fn passes_tables_created_in_the_migration() {
        none(
            "dropping-table",
            "",
            "CREATE TABLE scratch (id bigint); DROP TABLE scratch",
        );
    }
}
