//! `ADD FOREIGN KEY` (or `ADD COLUMN … REFERENCES`) without `NOT VALID` on a table other sessions use.

use pg_query::NodeEnum;
use pg_query::protobuf::ConstrType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::effects::TableLock;
use crate::lock::LockMode;
use crate::risk::Risk;
use crate::sql::{TableName, added_constraints, column_list, constraints, quote_ident, strings};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, constraint) in added_constraints(context.node) {
            if constraint.contype() != ConstrType::ConstrForeign
                || constraint.skip_validation
                || !context.is_existing(&table)
            {
                continue;
            }
            let Some(referenced) = constraint.pktable.as_ref().map(TableName::from_range_var)
            else {
                continue;
            };
            let columns = strings(&constraint.fk_attrs);
            let name = if constraint.conname.is_empty() {
                format!("{}_{}_fkey", table.name, columns.join("_"))
            } else {
                constraint.conname.clone()
            };
            let mut not_valid = context.node.clone();
            if let NodeEnum::AlterTableStmt(alter) = &mut not_valid {
                mark_not_valid(alter, &name);
            }
            violations.push(
                Violation::new(format!(
                    "adding foreign key `{name}` checks every row of `{table}` while holding SHARE ROW EXCLUSIVE locks on `{table}` and `{referenced}`: writes to both wait"
                ))
                .locks(both(context, &table, &referenced))
                .alternative(format!(
                    "{};\n-- in a later migration (its own transaction):\nALTER TABLE {} VALIDATE CONSTRAINT {};",
                    crate::sql::deparse(&not_valid),
                    table.sql(),
                    quote_ident(&name)
                )),
            );
        }
        for &(ref table, column, added) in &context.columns {
            if !added || !context.is_existing(table) {
                continue;
            }
            for constraint in constraints(&column.constraints)
                .filter(|c| c.contype() == ConstrType::ConstrForeign)
            {
                let Some(referenced) = constraint.pktable.as_ref().map(TableName::from_range_var)
                else {
                    continue;
                };
                let name = format!("{}_{}_fkey", table.name, column.colname);
                let pk_columns = strings(&constraint.pk_attrs);
                let target = if pk_columns.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", column_list(&pk_columns))
                };
                violations.push(
                    Violation::new(format!(
                        "the REFERENCES on new column `{}` is validated at once, scanning `{table}` under SHARE ROW EXCLUSIVE locks on `{table}` and `{referenced}`",
                        column.colname
                    ))
                    .risk(Risk::Medium)
                    .locks(both(context, table, &referenced))
                    .alternative(format!(
                        "{};\nALTER TABLE {t} ADD CONSTRAINT {n} FOREIGN KEY ({c}) REFERENCES {r}{target} NOT VALID;\n-- in a later migration:\nALTER TABLE {t} VALIDATE CONSTRAINT {n};",
                        crate::sql::add_column_sql(table, column),
                        t = table.sql(),
                        n = quote_ident(&name),
                        c = quote_ident(&column.colname),
                        r = referenced.sql()
                    )),
                );
            }
        }
    }
}

fn both(
    context: &StatementContext<'_>,
    table: &TableName,
    referenced: &TableName,
) -> Vec<TableLock> {
    let mut locks = context.lock_on(table);
    if context.is_existing(referenced) {
        locks.push(TableLock {
            table: referenced.clone(),
            mode: context
                .effects
                .mode_on(referenced)
                .unwrap_or(LockMode::ShareRowExclusive),
        });
    }
    locks
}

fn mark_not_valid(alter: &mut pg_query::protobuf::AlterTableStmt, name: &str) {
    for command in &mut alter.cmds {
        if let Some(NodeEnum::AlterTableCmd(command)) = &mut command.node
            && let Some(NodeEnum::Constraint(constraint)) =
                command.def.as_deref_mut().and_then(|d| d.node.as_mut())
            && constraint.contype() == ConstrType::ConstrForeign
        {
            constraint.skip_validation = true;
            constraint.initially_valid = false;
            if constraint.conname.is_empty() {
                constraint.conname = name.to_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint PRIMARY KEY); CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);";

    #[test]
    fn flags_validated_foreign_keys() {
        let finding = one(
            "adding-foreign-key-without-not-valid",
            SETUP,
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)",
        );
        assert_eq!(finding.tables, ["orders", "users"]);
        assert_eq!(finding.lock.unwrap().sql_name(), "SHARE ROW EXCLUSIVE");
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n\
             -- in a later migration (its own transaction):\nALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;"
        );
        one(
            "adding-foreign-key-without-not-valid",
            SETUP,
            "ALTER TABLE orders ADD COLUMN buyer_id bigint REFERENCES users",
        );
    }

    #[test]
    fn passes_not_valid_and_new_tables() {
        none(
            "adding-foreign-key-without-not-valid",
            SETUP,
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        );
        none(
            "adding-foreign-key-without-not-valid",
            SETUP,
            "CREATE TABLE carts (id bigint, user_id bigint REFERENCES users)",
        );
        none(
            "adding-foreign-key-without-not-valid",
            SETUP,
            "CREATE TABLE carts (id bigint, user_id bigint); ALTER TABLE carts ADD FOREIGN KEY (user_id) REFERENCES users",
        );
    }
}
