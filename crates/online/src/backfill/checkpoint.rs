//! A backfill's checkpoint: one row per backfill in `<history schema>.backfills`, advanced in
//! the same transaction as each batch's rows, so that after a crash it says exactly which rows
//! are done.

use safeshift_driver::DriverError;

use crate::session::{Session, parse_number, quote_ident, quote_literal};

/// The checkpoint table's name, quoted.
pub fn table(schema: &str) -> String {
    format!("{}.backfills", quote_ident(schema))
}

/// A backfill's saved state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checkpoint {
    pub name: String,
    /// The statement's checksum: a changed statement must not continue an old checkpoint.
    pub statement_checksum: String,
    pub table: String,
    pub key: Vec<String>,
    /// The highest key when it started (`None`: the table was empty).
    pub upper: Option<Vec<String>>,
    /// The last key done (`None`: no batch yet).
    pub last: Option<Vec<String>>,
    pub batches: u64,
    pub rows_scanned: u64,
    pub rows_updated: u64,
    /// The table's estimated rows when it started.
    pub rows_total: u64,
    pub finished: bool,
    pub started_at: String,
    pub updated_at: String,
}

/// Creates the checkpoint table (and its schema) when missing.
pub fn ensure_table(session: &mut dyn Session, schema: &str) -> Result<(), DriverError> {
    let exists = session.value(&format!(
        "SELECT to_regclass({}) IS NOT NULL",
        quote_literal(&table(schema))
    ))?;
    if exists.as_deref() == Some("t") {
        return Ok(());
    }
    let schema_exists = session.value(&format!(
        "SELECT to_regnamespace({}) IS NOT NULL",
        quote_literal(&quote_ident(schema))
    ))?;
    let create_schema = if schema_exists.as_deref() == Some("t") {
        String::new()
    } else {
        format!("CREATE SCHEMA IF NOT EXISTS {}; ", quote_ident(schema))
    };
    session.run(&format!(
        "{create_schema}CREATE TABLE IF NOT EXISTS {} (
            name text PRIMARY KEY,
            statement_checksum text NOT NULL,
            table_name text NOT NULL,
            key_columns text NOT NULL,
            upper_key text,
            last_key text,
            batches bigint NOT NULL DEFAULT 0,
            rows_scanned bigint NOT NULL DEFAULT 0,
            rows_updated bigint NOT NULL DEFAULT 0,
            rows_total bigint NOT NULL DEFAULT 0,
            started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            finished_at timestamptz
        )",
        table(schema)
    ))
}

const COLUMNS: &str = "name, statement_checksum, table_name, key_columns, upper_key, last_key, batches, rows_scanned, rows_updated, rows_total, finished_at IS NOT NULL, started_at::text, updated_at::text";

/// One backfill's checkpoint, if it has one.
pub fn load(
    session: &mut dyn Session,
    schema: &str,
    name: &str,
) -> Result<Option<Checkpoint>, DriverError> {
    session
        .rows(&format!(
            "SELECT {COLUMNS} FROM {} WHERE name = {}",
            table(schema),
            quote_literal(name)
        ))?
        .into_iter()
        .next()
        .map(|row| from_row(&row))
        .transpose()
}

/// Every checkpoint, newest first.
pub fn list(session: &mut dyn Session, schema: &str) -> Result<Vec<Checkpoint>, DriverError> {
    session
        .rows(&format!(
            "SELECT {COLUMNS} FROM {} ORDER BY updated_at DESC",
            table(schema)
        ))?
        .iter()
        .map(|row| from_row(row))
        .collect()
}

fn from_row(row: &[Option<String>]) -> Result<Checkpoint, DriverError> {
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let keys = |i: usize| -> Option<Vec<String>> {
        row.get(i)
            .cloned()
            .flatten()
            .and_then(|json| serde_json::from_str(&json).ok())
    };
    Ok(Checkpoint {
        name: text(0),
        statement_checksum: text(1),
        table: text(2),
        key: keys(3).unwrap_or_default(),
        upper: keys(4),
        last: keys(5),
        batches: parse_number(row[6].as_deref(), "batch count")?,
        rows_scanned: parse_number(row[7].as_deref(), "row count")?,
        rows_updated: parse_number(row[8].as_deref(), "row count")?,
        rows_total: parse_number(row[9].as_deref(), "row count")?,
        finished: text(10) == "t",
        started_at: text(11),
        updated_at: text(12),
    })
}

/// Starts a backfill afresh (replacing any earlier checkpoint of that name).
pub fn start(
    session: &mut dyn Session,
    schema: &str,
    checkpoint: &Checkpoint,
) -> Result<(), DriverError> {
    let json = |keys: &Option<Vec<String>>| match keys {
        Some(keys) => quote_literal(&serde_json::Value::from(keys.clone()).to_string()),
        None => "NULL".to_owned(),
    };
    session.run(&format!(
        "INSERT INTO {table} (name, statement_checksum, table_name, key_columns, upper_key, last_key, rows_total) \
         VALUES ({name}, {checksum}, {table_name}, {key}, {upper}, NULL, {total}) \
         ON CONFLICT (name) DO UPDATE SET statement_checksum = excluded.statement_checksum, table_name = excluded.table_name, \
           key_columns = excluded.key_columns, upper_key = excluded.upper_key, last_key = NULL, batches = 0, rows_scanned = 0, \
           rows_updated = 0, rows_total = excluded.rows_total, started_at = clock_timestamp(), updated_at = clock_timestamp(), finished_at = NULL",
        table = table(schema),
        name = quote_literal(&checkpoint.name),
        checksum = quote_literal(&checkpoint.statement_checksum),
        table_name = quote_literal(&checkpoint.table),
        key = json(&Some(checkpoint.key.clone())),
        upper = json(&checkpoint.upper),
        total = checkpoint.rows_total,
    ))
}

/// Marks a backfill finished.
pub fn finish(session: &mut dyn Session, schema: &str, name: &str) -> Result<(), DriverError> {
    session.run(&format!(
        "UPDATE {} SET finished_at = clock_timestamp(), updated_at = clock_timestamp() WHERE name = {}",
        table(schema),
        quote_literal(name)
    ))
}

/// Forgets a backfill's checkpoint. Returns whether there was one.
pub fn delete(session: &mut dyn Session, schema: &str, name: &str) -> Result<bool, DriverError> {
    Ok(session
        .rows(&format!(
            "DELETE FROM {} WHERE name = {} RETURNING 1",
            table(schema),
            quote_literal(name)
        ))?
        .len()
        == 1)
}
