//! What the online operations read from PostgreSQL's catalog: the key a table can be paged on,
//! its size, and the definition of a column about to be changed.

use safeshift_driver::{DriverError, ErrorKind};
use safeshift_lint::TableName;
use serde::Deserialize;

use crate::backfill::KeyColumn;
use crate::session::{Session, parse_number, quote_ident, quote_literal};

/// The table's oid expression, failing clearly when the table does not exist.
fn regclass(table: &TableName) -> String {
    format!("{}::regclass", quote_literal(&table.sql()))
}

/// Whether the table exists.
pub fn table_exists(session: &mut dyn Session, table: &TableName) -> Result<bool, DriverError> {
    Ok(session
        .value(&format!(
            "SELECT to_regclass({}) IS NOT NULL",
            quote_literal(&table.sql())
        ))?
        .as_deref()
        == Some("t"))
}

#[derive(Deserialize)]
struct IndexRow {
    name: String,
    primary: bool,
    columns: Vec<(String, String, bool)>,
}

/// The key a backfill pages on: the primary key, else the narrowest unique index whose
/// columns are all NOT NULL (no expressions, no predicate).
pub fn paging_key(
    session: &mut dyn Session,
    table: &TableName,
) -> Result<Vec<KeyColumn>, DriverError> {
    if !table_exists(session, table)? {
        return Err(DriverError::new(
            ErrorKind::Statement,
            format!("table {} does not exist", table.sql()),
        ));
    }
    let rows = session.rows(&format!(
        "SELECT json_build_object('name', c.relname, 'primary', i.indisprimary, 'columns', \
            (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull) ORDER BY k.n) \
             FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE k.n <= i.indnkeyatts))::text \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_am am ON am.oid = c.relam \
         WHERE i.indrelid = {} AND i.indisunique AND i.indisvalid AND i.indpred IS NULL \
           AND i.indexprs IS NULL AND am.amname = 'btree' \
         ORDER BY i.indisprimary DESC, i.indnkeyatts, c.relname",
        regclass(table)
    ))?;
    let indexes: Vec<IndexRow> = rows
        .iter()
        .filter_map(|row| row.first().cloned().flatten())
        .filter_map(|json| serde_json::from_str(&json).ok())
        .collect();
    let chosen = indexes
        .iter()
        .find(|index| index.primary)
        .or_else(|| {
            indexes
                .iter()
                .find(|index| index.columns.iter().all(|(_, _, not_null)| *not_null))
        })
        .ok_or_else(|| {
            DriverError::new(
                ErrorKind::Statement,
                format!(
                    "table {} has no primary key and no unique index on NOT NULL columns to page on",
                    table.sql()
                ),
            )
            .with_hint("add a primary key (or a unique index on NOT NULL columns, built CONCURRENTLY) before the backfill")
        })?;
    let _ = &chosen.name;
    Ok(chosen
        .columns
        .iter()
        .map(|(name, type_sql, _)| KeyColumn {
            name: name.clone(),
            type_sql: type_sql.clone(),
        })
        .collect())
}

/// The highest key in the table now, as text (`None` when the table is empty).
pub fn highest_key(
    session: &mut dyn Session,
    table: &TableName,
    only: bool,
    key: &[KeyColumn],
) -> Result<Option<Vec<String>>, DriverError> {
    let names: Vec<String> = key.iter().map(|k| quote_ident(&k.name)).collect();
    // Aliased, so that ORDER BY reads the typed columns rather than their text.
    let as_text: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n}::text AS safeshift_key_{i}"))
        .collect();
    let descending: Vec<String> = names.iter().map(|n| format!("{n} DESC")).collect();
    let rows = session.rows(&format!(
        "SELECT {} FROM {}{} ORDER BY {} LIMIT 1",
        as_text.join(", "),
        if only { "ONLY " } else { "" },
        table.sql(),
        descending.join(", ")
    ))?;
    Ok(rows
        .into_iter()
        .next()
        .map(|row| row.into_iter().map(Option::unwrap_or_default).collect()))
}

/// The table's row estimate (`pg_class.reltuples`, summed over partitions), counted when the
/// table was never analysed.
pub fn estimated_rows(session: &mut dyn Session, table: &TableName) -> Result<u64, DriverError> {
    let estimate: f64 = parse_number(
        session
            .value(&format!(
                "SELECT coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples >= 0), -1) \
                 FROM pg_class c WHERE c.oid = {t} OR c.oid IN (SELECT relid FROM pg_partition_tree({t}) WHERE isleaf)",
                t = regclass(table)
            ))?
            .as_deref(),
            "row estimate",
        )?;
    if estimate >= 0.0 {
        return Ok(estimate as u64);
    }
    parse_number(
        session
            .value(&format!("SELECT count(*) FROM {}", table.sql()))?
            .as_deref(),
        "row count",
    )
}

/// `server_version_num`.
pub fn server_version_num(session: &mut dyn Session) -> Result<u32, DriverError> {
    parse_number(
        session
            .value("SELECT current_setting('server_version_num')")?
            .as_deref(),
        "server version",
    )
}

/// What an expand/contract needs to know about the column it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnFacts {
    pub table: TableName,
    pub column: String,
    /// `format_type`: `integer`, `character varying(40)`.
    pub type_sql: String,
    pub not_null: bool,
    /// The default expression, as `pg_get_expr` writes it.
    pub default: Option<String>,
    /// `CREATE INDEX` statements of the indexes that use the column.
    pub indexes: Vec<IndexDefinition>,
    /// Constraints (other than NOT NULL) that use the column: `name: definition`.
    pub constraints: Vec<String>,
    /// Whether the column is part of the primary key (expand/contract cannot replace those).
    pub in_primary_key: bool,
    /// Whether a foreign key of another table references it.
    pub referenced: bool,
    /// Server version, to choose the safe forms it supports.
    pub server_version_num: u32,
}

/// An index on the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: String,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// The index covers exactly this one column, with no expression or predicate.
    pub simple: bool,
    pub unique: bool,
}

/// Reads a column's definition.
pub fn column_facts(
    session: &mut dyn Session,
    table: &TableName,
    column: &str,
) -> Result<ColumnFacts, DriverError> {
    if !table_exists(session, table)? {
        return Err(DriverError::new(
            ErrorKind::Statement,
            format!("table {} does not exist", table.sql()),
        ));
    }
    let rows = session.rows(&format!(
        "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attnum \
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = {t} AND a.attname = {c} AND NOT a.attisdropped",
        t = regclass(table),
        c = quote_literal(column)
    ))?;
    let Some(row) = rows.into_iter().next() else {
        return Err(DriverError::new(
            ErrorKind::Statement,
            format!("table {} has no column {column}", table.sql()),
        ));
    };
    let attnum = row[3].clone().unwrap_or_default();
    let indexes = session
        .rows(&format!(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), \
                    (i.indnatts = 1 AND i.indexprs IS NULL AND i.indpred IS NULL), i.indisunique \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = {t} AND NOT i.indisprimary \
               AND ({attnum} = ANY (i.indkey) OR pg_get_expr(i.indexprs, i.indrelid) ~ {pattern} \
                    OR pg_get_expr(i.indpred, i.indrelid) ~ {pattern}) \
             ORDER BY c.relname",
            t = regclass(table),
            pattern = quote_literal(&format!("\\m{}\\M", regex_escape(column))),
        ))?
        .into_iter()
        .map(|row| IndexDefinition {
            name: row[0].clone().unwrap_or_default(),
            definition: row[1].clone().unwrap_or_default(),
            simple: row[2].as_deref() == Some("t"),
            unique: row[3].as_deref() == Some("t"),
        })
        .collect();
    let constraint_rows = session.rows(&format!(
        "SELECT con.conname, pg_get_constraintdef(con.oid), con.contype, \
                (con.confrelid = {t} AND {attnum} = ANY (con.confkey)) \
         FROM pg_constraint con \
         WHERE (con.conrelid = {t} AND {attnum} = ANY (con.conkey)) \
            OR (con.confrelid = {t} AND {attnum} = ANY (con.confkey)) \
         ORDER BY con.conname",
        t = regclass(table),
    ))?;
    let mut constraints = Vec::new();
    let mut in_primary_key = false;
    let mut referenced = false;
    for row in constraint_rows {
        let kind = row[2].clone().unwrap_or_default();
        let definition = row[1].clone().unwrap_or_default();
        if kind == "p" {
            in_primary_key = true;
        }
        if row[3].as_deref() == Some("t") {
            referenced = true;
        }
        constraints.push(format!(
            "{}: {definition}",
            row[0].clone().unwrap_or_default()
        ));
    }
    Ok(ColumnFacts {
        table: table.clone(),
        column: column.to_owned(),
        type_sql: row[0].clone().unwrap_or_default(),
        not_null: row[1].as_deref() == Some("t"),
        default: row[2].clone(),
        indexes,
        constraints,
        in_primary_key,
        referenced,
        server_version_num: server_version_num(session)?,
    })
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}
