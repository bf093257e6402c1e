//! Whether a default expression is evaluated once (constant or stable: PostgreSQL 11+ stores it
//! in the catalog, no rewrite) or per row (volatile: every existing row gets its own value, so
//! the table is rewritten).

use pg_query::NodeEnum;

use crate::sql::{inner, strings};

/// What evaluating an expression for every row would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volatility {
    /// A constant, or a stable function such as `now()`: one value for the whole statement.
    OneValue,
    /// A volatile function such as `gen_random_uuid()`: a value per row.
    PerRow { function: String },
    /// A function safeshift does not know: assumed volatile.
    Unknown { function: String },
}

/// Built-in functions that return a new value on every call.
const VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
    "gen_random_bytes",
];

/// Built-in functions that are immutable or stable: one value per statement.
const ONE_VALUE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "lower",
    "upper",
    "btrim",
    "trim",
    "length",
    "coalesce",
    "concat",
    "to_char",
    "to_date",
    "to_timestamp",
    "make_date",
    "make_interval",
    "date_trunc",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "array_fill",
    "timezone",
    "md5",
    "abs",
    "round",
];

/// Classifies an expression by its most volatile part.
pub fn classify(node: &NodeEnum) -> Volatility {
    let mut worst = Volatility::OneValue;
    visit(node, &mut worst);
    worst
}

fn visit(node: &NodeEnum, worst: &mut Volatility) {
    if matches!(worst, Volatility::PerRow { .. }) {
        return;
    }
    match node {
        NodeEnum::FuncCall(call) => {
            let names = strings(&call.funcname);
            let name = names.last().cloned().unwrap_or_default();
            let builtin =
                names.len() == 1 || names.first().is_some_and(|schema| schema == "pg_catalog");
            if builtin && VOLATILE.contains(&name.as_str()) {
                *worst = Volatility::PerRow { function: name };
                return;
            }
            if !(builtin && ONE_VALUE.contains(&name.as_str())) && *worst == Volatility::OneValue {
                *worst = Volatility::Unknown {
                    function: names.join("."),
                };
            }
            for arg in &call.args {
                if let Some(arg) = &arg.node {
                    visit(arg, worst);
                }
            }
        }
        NodeEnum::TypeCast(cast) => {
            if let Some(arg) = inner(&cast.arg) {
                visit(arg, worst);
            }
        }
        NodeEnum::AExpr(expr) => {
            for side in [&expr.lexpr, &expr.rexpr] {
                if let Some(side) = inner(side) {
                    visit(side, worst);
                }
            }
        }
        NodeEnum::CoalesceExpr(coalesce) => {
            for arg in coalesce.args.iter().filter_map(|a| a.node.as_ref()) {
                visit(arg, worst);
            }
        }
        NodeEnum::AArrayExpr(array) => {
            for element in array.elements.iter().filter_map(|a| a.node.as_ref()) {
                visit(element, worst);
            }
        }
        NodeEnum::List(list) => {
            for item in list.items.iter().filter_map(|a| a.node.as_ref()) {
                visit(item, worst);
            }
        }
        // Constants, CURRENT_TIMESTAMP and friends, NULL: one value.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_of(expression: &str) -> Volatility {
        let sql = format!("SELECT {expression}");
        let parsed = pg_query::parse(&sql, pg_query::ParserOptions::default()).unwrap();
        let Some(NodeEnum::SelectStmt(select)) = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .and_then(|s| s.node.as_ref())
        else {
            panic!("not a SELECT");
        };
        let Some(NodeEnum::ResTarget(target)) = &select.target_list[0].node else {
            panic!("no target");
        };
        classify(inner(&target.val).unwrap())
    }

    #[test]
    fn constants_and_stable_functions_give_one_value() {
        for expression in [
            "0",
            "'pending'",
            "'{}'::jsonb",
            "now()",
            "CURRENT_TIMESTAMP",
            "CURRENT_DATE",
            "now() + interval '1 day'",
            "NULL",
        ] {
            assert_eq!(default_of(expression), Volatility::OneValue, "{expression}");
        }
    }

    #[test]
    fn volatile_functions_give_a_value_per_row() {
        for expression in [
            "gen_random_uuid()",
            "clock_timestamp()",
            "nextval('s')",
            "random() * 10",
            "pg_catalog.gen_random_uuid()::text",
        ] {
            assert!(
                matches!(default_of(expression), Volatility::PerRow { .. }),
                "{expression}"
            );
        }
        assert!(matches!(
            default_of("my_schema.next_code()"),
            Volatility::Unknown { .. }
        ));
    }
}
