//! Row estimates and sizes of tables, for the linter's size-aware grading.

use super::PostgresDriver;
use crate::Dialect;
use crate::error::DriverError;
use crate::history_sql::literal;

/// The size of one table as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableSize {
    /// The name as asked for: schema (if given) and table.
    pub schema: Option<String>,
    pub table: String,
    /// `pg_class.reltuples`; 0 when the table was never analysed.
    pub rows: u64,
    /// `pg_total_relation_size`: heap, indexes and TOAST (partitions summed for a partitioned table).
    pub bytes: u64,
}

impl PostgresDriver {
    /// The row estimate and total size of each named table that exists (resolved through the
    /// search path when no schema is given); tables that do not exist are left out. One query,
    /// simple protocol, no locks taken.
    pub fn table_sizes(
        &mut self,
        tables: &[(Option<String>, String)],
    ) -> Result<Vec<TableSize>, DriverError> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<String> = tables
            .iter()
            .enumerate()
            .map(|(position, (schema, table))| {
                let qualified = match schema {
                    Some(schema) => {
                        format!("{}.{}", quote_identifier(schema), quote_identifier(table))
                    }
                    None => quote_identifier(table),
                };
                format!(
                    "({position}, to_regclass({}))",
                    literal(Dialect::Postgres, &qualified)
                )
            })
            .collect();
        let sql = format!(
            "SELECT wanted.position, GREATEST(c.reltuples, 0)::bigint, \
                    CASE WHEN c.relkind = 'p' \
                         THEN (SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i WHERE i.inhparent = c.oid) \
                         ELSE pg_total_relation_size(c.oid) END \
             FROM (VALUES {}) AS wanted(position, oid) JOIN pg_class c ON c.oid = wanted.oid",
            values.join(", ")
        );
        let mut sizes = Vec::new();
        for row in self.rows(&sql)? {
            let number = |i: usize| {
                row.get(i)
                    .cloned()
                    .flatten()
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let (Some(position), Some(rows), Some(bytes)) = (number(0), number(1), number(2))
            else {
                continue;
            };
            let Some((schema, table)) = tables.get(position as usize) else {
                continue;
            };
            sizes.push(TableSize {
                schema: schema.clone(),
                table: table.clone(),
                rows,
                bytes,
            });
        }
        Ok(sizes)
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
