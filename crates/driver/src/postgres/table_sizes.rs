//! What the linter reads from a PostgreSQL database: row estimates and sizes of tables, for
//! size-aware grading, and the session's time zone.

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
    /// `pg_class.reltuples`; `None` when the table was never analysed (or, partitioned, one of
    /// its partitions) and holds data, so nobody knows how many rows it has.
    pub rows: Option<u64>,
    /// `pg_total_relation_size`: heap, indexes and TOAST (partitions summed for a partitioned table).
    pub bytes: u64,
}

impl PostgresDriver {
    /// The row estimate and total size of each named table that exists (resolved through the
    /// search path when no schema is given); tables that do not exist are left out. One query,
    /// simple protocol. Reading a size takes ACCESS SHARE on the table, which waits behind a
    /// session queued for an exclusive lock: the query gives up after two seconds.
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
        // reltuples is -1 for a table never analysed (PostgreSQL 14+; 0 before): its row count
        // is unknown unless its heap is empty. A partitioned table's rows are its partitions'.
        let sql = format!(
            "SET LOCAL lock_timeout = '2s'; \
             SELECT wanted.position, \
                    CASE WHEN c.relkind = 'p' \
                         THEN (SELECT CASE WHEN bool_and(p.reltuples > 0 OR pg_relation_size(p.oid) = 0) \
                                           THEN coalesce(sum(GREATEST(p.reltuples, 0)), 0)::bigint END \
                               FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid WHERE i.inhparent = c.oid) \
                         WHEN c.reltuples > 0 OR pg_relation_size(c.oid) = 0 THEN GREATEST(c.reltuples, 0)::bigint \
                    END, \
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
            let (Some(position), rows, Some(bytes)) = (number(0), number(1), number(2)) else {
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

/// One column of a table, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub schema: String,
    pub table: String,
    pub column: String,
    /// `format_type`'s spelling: `character varying(100)`, `timestamp without time zone`.
    pub type_text: String,
}

impl PostgresDriver {
    /// The type of every column of every table, partitioned table and materialized view
    /// outside the system schemas and `excluded_schema` (the history's). Catalog only: no lock
    /// on the tables.
    pub fn column_types(
        &mut self,
        excluded_schema: &str,
    ) -> Result<Vec<CatalogColumn>, DriverError> {
        let sql = format!(
            "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', {}) \
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
            literal(Dialect::Postgres, excluded_schema)
        );
        Ok(self
            .rows(&sql)?
            .into_iter()
            .filter_map(|row| {
                let mut values = row.into_iter().map(Option::unwrap_or_default);
                Some(CatalogColumn {
                    schema: values.next()?,
                    table: values.next()?,
                    column: values.next()?,
                    type_text: values.next()?,
                })
            })
            .collect())
    }

    /// The time zone a new session of this connection's user starts with (`TimeZone`, from
    /// the server, database and role settings).
    pub fn session_time_zone(&mut self) -> Result<String, DriverError> {
        let rows = self.rows("SHOW TimeZone")?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten())
            .unwrap_or_default())
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
