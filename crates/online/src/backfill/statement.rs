//! The `UPDATE` a backfill runs, taken apart once so each batch can run it over one key range:
//! the statement is parsed with the PostgreSQL grammar, a placeholder is ANDed into its `WHERE`,
//! and the result deparsed; each batch puts its key range in place of the placeholder.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, BoolExprType};
use safeshift_lint::TableName;

use crate::session::{quote_ident, quote_literal};

/// Stands for the batch's key range in the deparsed statement.
const RANGE_PLACEHOLDER: &str = "safeshift_batch_range";

/// A column of the key a backfill pages on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    /// The type as `format_type` writes it (`bigint`, `character varying(20)`).
    pub type_sql: String,
}

/// A backfill's `UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillStatement {
    /// The table, as written.
    pub table: TableName,
    /// `UPDATE ONLY`: child tables are left alone.
    pub only: bool,
    /// How the statement refers to the table's rows (its alias, else its name), quoted.
    pub reference: String,
    /// The columns it assigns.
    pub assigned: Vec<String>,
    /// The statement deparsed with the placeholder ANDed into its WHERE.
    template: String,
}

impl BackfillStatement {
    /// Takes an `UPDATE … SET … [FROM …] [WHERE …]` apart; anything else is an error that says
    /// what to write instead.
    pub fn parse(sql: &str) -> Result<BackfillStatement, String> {
        if sql.contains(RANGE_PLACEHOLDER) {
            return Err(format!(
                "the statement may not mention `{RANGE_PLACEHOLDER}`"
            ));
        }
        let parsed = pg_query::parse(sql, pg_query::ParserOptions::default())
            .map_err(|e| format!("the statement does not parse: {e}"))?;
        let statements = &parsed.protobuf.stmts;
        if statements.len() != 1 {
            return Err("a backfill is exactly one UPDATE statement".into());
        }
        let Some(NodeEnum::UpdateStmt(update)) =
            statements[0].stmt.as_ref().and_then(|s| s.node.as_ref())
        else {
            return Err("a backfill must be an UPDATE … SET … [WHERE …] statement".into());
        };
        let mut update = (**update).clone();
        if update
            .returning_clause
            .as_ref()
            .is_some_and(|r| !r.exprs.is_empty())
        {
            return Err("a backfill cannot have RETURNING: its rows are never shown".into());
        }
        let relation = update.relation.clone().ok_or("the UPDATE names no table")?;
        if let Some(NodeEnum::CurrentOfExpr(_)) =
            update.where_clause.as_deref().and_then(|n| n.node.as_ref())
        {
            return Err("WHERE CURRENT OF cannot be batched".into());
        }
        let table = TableName::new(Some(&relation.schemaname), &relation.relname);
        let reference = match &relation.alias {
            Some(alias) => quote_ident(&alias.aliasname),
            None => quote_ident(&relation.relname),
        };
        let assigned = update
            .target_list
            .iter()
            .filter_map(|target| match &target.node {
                Some(NodeEnum::ResTarget(target)) => Some(target.name.clone()),
                _ => None,
            })
            .collect();
        let placeholder = pg_query::Node {
            node: Some(NodeEnum::ColumnRef(protobuf::ColumnRef {
                fields: vec![pg_query::Node {
                    node: Some(NodeEnum::String(protobuf::String {
                        sval: RANGE_PLACEHOLDER.to_owned(),
                    })),
                }],
                location: -1,
            })),
        };
        update.where_clause = Some(Box::new(match update.where_clause.take() {
            None => placeholder,
            Some(condition) => pg_query::Node {
                node: Some(NodeEnum::BoolExpr(Box::new(protobuf::BoolExpr {
                    xpr: None,
                    boolop: BoolExprType::AndExpr as i32,
                    args: vec![placeholder, *condition],
                    location: -1,
                }))),
            },
        }));
        let template = NodeEnum::UpdateStmt(Box::new(update))
            .deparse(Default::default())
            .map_err(|e| format!("cannot rebuild the statement: {e}"))?;
        if template.matches(RANGE_PLACEHOLDER).count() != 1 {
            return Err("cannot place the batch's key range in the statement".into());
        }
        Ok(BackfillStatement {
            table,
            only: !relation.inh,
            reference,
            assigned,
            template,
        })
    }

    /// The statement limited to the rows `range` selects (an SQL condition on the key).
    pub fn restricted_to(&self, range: &str) -> String {
        self.template
            .replace(RANGE_PLACEHOLDER, &format!("({range})"))
    }
}

/// `a > b` for one column, `ROW(a1, a2) > ROW(b1, b2)` for several (which PostgreSQL compares
/// lexicographically, and a btree index on the key answers).
pub(crate) fn compare(left: &[String], operator: &str, right: &[String]) -> String {
    if left.len() == 1 {
        format!("{} {operator} {}", left[0], right[0])
    } else {
        format!(
            "ROW({}) {operator} ROW({})",
            left.join(", "),
            right.join(", ")
        )
    }
}

/// Key values (as text) as typed literals: `'42'::bigint`.
pub(crate) fn literals(keys: &[KeyColumn], values: &[String]) -> Vec<String> {
    keys.iter()
        .zip(values)
        .map(|(key, value)| format!("{}::{}", quote_literal(value), key.type_sql))
        .collect()
}

/// Everything one batch needs to know.
pub(crate) struct Batch<'a> {
    pub statement: &'a BackfillStatement,
    pub keys: &'a [KeyColumn],
    /// The checkpoint table, quoted.
    pub checkpoint_table: &'a str,
    pub name: &'a str,
    /// The last key done (None before the first batch).
    pub after: Option<&'a [String]>,
    /// The highest key when the backfill started: rows above it are not visited.
    pub upper: &'a [String],
    pub size: u64,
    /// The checkpoint's batch count this batch expects (another run may have moved on).
    pub expected_batches: u64,
    /// `SET LOCAL` values, already formatted.
    pub lock_timeout: String,
    pub statement_timeout: String,
}

impl Batch<'_> {
    /// One transaction, one round trip: lock the checkpoint row (so two runs of the same
    /// backfill take turns), find where the next `size` keys end (an index-only scan), update
    /// the rows up to there, and advance the checkpoint in the same statement, so the rows and
    /// the checkpoint commit (or vanish) together. That also makes `synchronous_commit = off`
    /// safe: a commit lost in a crash loses its checkpoint with it, and the batch runs again.
    /// The last statement returns the rows visited, the rows updated, the last key and whether
    /// this was the final batch; no row when another run had moved the checkpoint on.
    pub fn sql(&self) -> String {
        let names: Vec<String> = self.keys.iter().map(|k| quote_ident(&k.name)).collect();
        let referenced: Vec<String> = names
            .iter()
            .map(|n| format!("{}.{n}", self.statement.reference))
            .collect();
        let upper = literals(self.keys, self.upper);
        let token = format!(
            "(SELECT batches FROM {} WHERE name = {}) = {}",
            self.checkpoint_table,
            quote_literal(self.name),
            self.expected_batches
        );
        let mut range = Vec::new();
        let mut update_conditions = Vec::new();
        if let Some(after) = self.after {
            let lower = literals(self.keys, after);
            range.push(compare(&names, ">", &lower));
            update_conditions.push(compare(&referenced, ">", &lower));
        }
        range.push(compare(&names, "<=", &upper));
        let range = range.join(" AND ");
        let last: Vec<String> = names
            .iter()
            .map(|n| format!("(SELECT {n} FROM safeshift_last)"))
            .collect();
        update_conditions.push(compare(&referenced, "<=", &last));
        let as_text: Vec<String> = names.iter().map(|n| format!("{n}::text")).collect();
        let upper_as_columns: Vec<String> = upper
            .iter()
            .zip(&names)
            .map(|(value, name)| format!("{value} AS {name}"))
            .collect();
        let only = if self.statement.only { "ONLY " } else { "" };
        let table = format!("{only}{}", self.statement.table.sql());
        format!(
            "BEGIN; SET LOCAL lock_timeout = {lock_timeout}; SET LOCAL statement_timeout = {statement_timeout}; SET LOCAL synchronous_commit = off;\n\
             SELECT 1 FROM {checkpoint} WHERE name = {name} FOR UPDATE;\n\
             WITH safeshift_end AS (\n  SELECT {keys} FROM {table} WHERE {token} AND {range} ORDER BY {keys} OFFSET {offset} LIMIT 1\n\
             ), safeshift_last AS (\n  SELECT {keys} FROM safeshift_end\n  UNION ALL SELECT {upper_as_columns} WHERE {token} AND NOT EXISTS (SELECT FROM safeshift_end)\n\
             ), safeshift_updated AS (\n  {update} RETURNING 1\n\
             ), safeshift_counts AS (\n  SELECT CASE WHEN EXISTS (SELECT FROM safeshift_end) THEN {size} ELSE (SELECT count(*) FROM {table} WHERE {range}) END AS scanned,\n\
             \x20        (SELECT count(*) FROM safeshift_updated) AS updated,\n\
             \x20        (SELECT json_build_array({as_text})::text FROM safeshift_last) AS last_key,\n\
             \x20        NOT EXISTS (SELECT FROM safeshift_end) AS final\n\
             )\n\
             UPDATE {checkpoint} AS checkpoint SET batches = checkpoint.batches + 1, last_key = counts.last_key,\n  \
             rows_scanned = checkpoint.rows_scanned + counts.scanned, rows_updated = checkpoint.rows_updated + counts.updated, updated_at = clock_timestamp()\n\
             FROM safeshift_counts AS counts WHERE checkpoint.name = {name} AND counts.last_key IS NOT NULL\n\
             RETURNING counts.scanned, counts.updated, counts.last_key, counts.final;\n\
             COMMIT",
            lock_timeout = self.lock_timeout,
            statement_timeout = self.statement_timeout,
            checkpoint = self.checkpoint_table,
            name = quote_literal(self.name),
            keys = names.join(", "),
            offset = self.size.saturating_sub(1),
            upper_as_columns = upper_as_columns.join(", "),
            size = self.size,
            update = self
                .statement
                .restricted_to(&update_conditions.join(" AND ")),
            as_text = as_text.join(", "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_an_update_apart() {
        let statement = BackfillStatement::parse(
            "UPDATE public.accounts SET new_balance = abalance WHERE new_balance IS NULL OR new_balance <> abalance",
        )
        .unwrap();
        assert_eq!(statement.table.sql(), "public.accounts");
        assert_eq!(statement.reference, "\"accounts\"");
        assert!(!statement.only);
        assert_eq!(statement.assigned, vec!["new_balance"]);
        let restricted = statement.restricted_to("id > 5");
        assert_eq!(
            restricted,
            "UPDATE public.accounts SET new_balance = abalance WHERE (id > 5) AND (new_balance IS NULL OR new_balance <> abalance)"
        );
    }

    #[test]
    fn keeps_aliases_from_and_only() {
        let statement = BackfillStatement::parse(
            "UPDATE ONLY orders o SET total = s.total FROM order_sums s WHERE s.order_id = o.id",
        )
        .unwrap();
        assert!(statement.only);
        assert_eq!(statement.reference, "\"o\"");
        assert!(
            statement
                .restricted_to("x")
                .contains("FROM order_sums s WHERE (x) AND s.order_id = o.id")
        );
        let unfiltered = BackfillStatement::parse("UPDATE t SET n = n + 1").unwrap();
        assert_eq!(
            unfiltered.restricted_to("k > 1"),
            "UPDATE t SET n = n + 1 WHERE (k > 1)"
        );
    }

    #[test]
    fn refuses_what_cannot_be_batched() {
        for (sql, wanted) in [
            ("DELETE FROM t", "must be an UPDATE"),
            ("UPDATE t SET a = 1 RETURNING a", "RETURNING"),
            ("UPDATE t SET a = 1; UPDATE t SET b = 2", "exactly one"),
            ("UPDATE t SET", "does not parse"),
            ("UPDATE t SET a = 1 WHERE CURRENT OF c", "CURRENT OF"),
        ] {
            let error = BackfillStatement::parse(sql).unwrap_err();
            assert!(error.contains(wanted), "{sql}: {error}");
        }
    }

    #[test]
    fn compares_single_and_composite_keys() {
        assert_eq!(compare(&["a".into()], ">", &["1".into()]), "a > 1");
        assert_eq!(
            compare(&["a".into(), "b".into()], "<=", &["1".into(), "2".into()]),
            "ROW(a, b) <= ROW(1, 2)"
        );
        let keys = [KeyColumn {
            name: "id".into(),
            type_sql: "text".into(),
        }];
        assert_eq!(literals(&keys, &["it's".into()]), vec!["'it''s'::text"]);
    }

    #[test]
    fn a_batch_is_one_transaction_that_moves_the_checkpoint() {
        let statement = BackfillStatement::parse("UPDATE t SET n = n + 1").unwrap();
        let keys = [
            KeyColumn {
                name: "a".into(),
                type_sql: "integer".into(),
            },
            KeyColumn {
                name: "b".into(),
                type_sql: "text".into(),
            },
        ];
        let after = ["1".to_owned(), "x".to_owned()];
        let upper = ["9".to_owned(), "z".to_owned()];
        let batch = Batch {
            statement: &statement,
            keys: &keys,
            checkpoint_table: "\"safeshift\".\"backfills\"",
            name: "0001/up/2",
            after: Some(&after),
            upper: &upper,
            size: 500,
            expected_batches: 7,
            lock_timeout: "'100ms'".into(),
            statement_timeout: "'30000ms'".into(),
        };
        let sql = batch.sql();
        assert!(sql.starts_with("BEGIN; SET LOCAL lock_timeout = '100ms'"));
        assert!(sql.ends_with("COMMIT"));
        assert!(sql.contains("SET LOCAL synchronous_commit = off"));
        assert!(sql.contains("WHERE name = '0001/up/2') = 7"));
        assert!(sql.contains("ROW(\"a\", \"b\") > ROW('1'::integer, 'x'::text) AND ROW(\"a\", \"b\") <= ROW('9'::integer, 'z'::text) ORDER BY \"a\", \"b\" OFFSET 499 LIMIT 1"));
        assert!(sql.contains("UNION ALL SELECT '9'::integer AS \"a\", 'z'::text AS \"b\""));
        assert!(sql.contains(
            "UPDATE t SET n = n + 1 WHERE (ROW(\"t\".\"a\", \"t\".\"b\") > ROW('1'::integer, 'x'::text) AND ROW(\"t\".\"a\", \"t\".\"b\") <= ROW((SELECT \"a\" FROM safeshift_last), (SELECT \"b\" FROM safeshift_last))) RETURNING 1"
        ));
    }
}
