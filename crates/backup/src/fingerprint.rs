//! Per-table fingerprints: a row count and an order-independent content hash, taken when a backup
//! is made and again from a restored copy, so a deep verification can say table by table whether
//! the copy holds the same data.
//!
//! The hash is the sum of a 64-bit hash of every row's text form, so it needs no sort and reads
//! each table once.

use postgres::Client;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use safeshift_driver::{DriverError, ErrorKind};

/// One table's row count and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFingerprint {
    /// The schema (PostgreSQL); `None` on SQLite.
    pub schema: Option<String>,
    pub table: String,
    pub rows: u64,
    pub hash: String,
}

impl TableFingerprint {
    /// `schema.table`, or `table`.
    pub fn name(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.table),
            None => self.table.clone(),
        }
    }
}

/// A table whose copy differs from the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableMismatch {
    pub table: String,
    /// `(rows, hash)` recorded at backup time; `None` when the table was not there.
    pub expected: Option<(u64, String)>,
    /// `(rows, hash)` of the copy; `None` when the copy lacks the table.
    pub actual: Option<(u64, String)>,
}

/// The tables whose counts or hashes differ between `expected` and `actual`.
pub fn compare(expected: &[TableFingerprint], actual: &[TableFingerprint]) -> Vec<TableMismatch> {
    let mut mismatches = Vec::new();
    for table in expected {
        let found = actual
            .iter()
            .find(|other| other.schema == table.schema && other.table == table.table);
        match found {
            Some(other) if other.rows == table.rows && other.hash == table.hash => {}
            other => mismatches.push(TableMismatch {
                table: table.name(),
                expected: Some((table.rows, table.hash.clone())),
                actual: other.map(|o| (o.rows, o.hash.clone())),
            }),
        }
    }
    for table in actual {
        if !expected
            .iter()
            .any(|e| e.schema == table.schema && e.table == table.table)
        {
            mismatches.push(TableMismatch {
                table: table.name(),
                expected: None,
                actual: Some((table.rows, table.hash.clone())),
            });
        }
    }
    mismatches
}

/// The user tables a dump carries: ordinary tables outside the system schemas, extension members
/// left out (their data is the extension's business).
const POSTGRES_TABLES: &str = "SELECT n.nspname, c.relname FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                     AND d.objid = c.oid AND d.deptype = 'e') \
     ORDER BY 1, 2";

/// Fingerprints every user table, in whatever transaction (snapshot) `client` has open. Simple
/// query protocol only, so it works through PgBouncer.
pub fn postgres(client: &mut Client) -> Result<Vec<TableFingerprint>, DriverError> {
    let tables = simple_rows(client, POSTGRES_TABLES)?;
    let mut fingerprints = Vec::with_capacity(tables.len());
    for row in tables {
        let (Some(schema), Some(table)) = (row[0].clone(), row[1].clone()) else {
            continue;
        };
        let quoted = format!("{}.{}", quote(&schema), quote(&table));
        // ROW(r.*) rather than r: a column named like the alias would win over the alias.
        let sql = format!(
            "SELECT count(*), coalesce(sum(('x' || left(md5(ROW(r.*)::text), 16))::bit(64)::bigint::numeric), 0)::text \
             FROM {quoted} AS r"
        );
        let values = simple_rows(client, &sql)?;
        let first = values.first().cloned().unwrap_or_default();
        fingerprints.push(TableFingerprint {
            schema: Some(schema),
            table,
            rows: first
                .first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            hash: first.get(1).cloned().flatten().unwrap_or_default(),
        });
    }
    Ok(fingerprints)
}

/// Fingerprints every table of a SQLite database.
pub fn sqlite(connection: &Connection) -> Result<Vec<TableFingerprint>, DriverError> {
    let sqlite_error = |e: rusqlite::Error| DriverError::new(ErrorKind::Statement, e.to_string());
    let mut names = connection
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .map_err(sqlite_error)?;
    let tables: Vec<String> = names
        .query_map([], |row| row.get(0))
        .map_err(sqlite_error)?
        .collect::<Result<_, _>>()
        .map_err(sqlite_error)?;
    let mut fingerprints = Vec::with_capacity(tables.len());
    for table in tables {
        let mut statement = connection
            .prepare(&format!("SELECT * FROM {}", quote(&table)))
            .map_err(sqlite_error)?;
        let columns = statement.column_count();
        let mut rows = statement.query([]).map_err(sqlite_error)?;
        let mut count = 0u64;
        let mut sum = 0u128;
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            let mut hasher = Sha256::new();
            for i in 0..columns {
                use rusqlite::types::ValueRef;
                match row.get_ref(i).map_err(sqlite_error)? {
                    ValueRef::Null => hasher.update([0u8]),
                    ValueRef::Integer(v) => {
                        hasher.update([1u8]);
                        hasher.update(v.to_le_bytes());
                    }
                    ValueRef::Real(v) => {
                        hasher.update([2u8]);
                        hasher.update(v.to_le_bytes());
                    }
                    ValueRef::Text(v) => {
                        hasher.update([3u8]);
                        hasher.update((v.len() as u64).to_le_bytes());
                        hasher.update(v);
                    }
                    ValueRef::Blob(v) => {
                        hasher.update([4u8]);
                        hasher.update((v.len() as u64).to_le_bytes());
                        hasher.update(v);
                    }
                }
            }
            let digest = hasher.finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            sum = sum.wrapping_add(u128::from(u64::from_be_bytes(first)));
            count += 1;
        }
        fingerprints.push(TableFingerprint {
            schema: None,
            table,
            rows: count,
            hash: format!("{sum:x}"),
        });
    }
    Ok(fingerprints)
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) fn simple_rows(
    client: &mut Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, DriverError> {
    let messages = client
        .simple_query(sql)
        .map_err(|e| DriverError::new(ErrorKind::Statement, postgres_message(&e)))?;
    Ok(messages
        .into_iter()
        .filter_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// The server's message for a `postgres` error, or the error itself.
pub(crate) fn postgres_message(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => safeshift_driver::redact(&error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, rows: u64, hash: &str) -> TableFingerprint {
        TableFingerprint {
            schema: Some("public".into()),
            table: name.into(),
            rows,
            hash: hash.into(),
        }
    }

    #[test]
    fn compare_names_every_difference() {
        let expected = vec![table("a", 1, "x"), table("b", 2, "y"), table("c", 0, "0")];
        let actual = vec![table("a", 1, "x"), table("b", 2, "z"), table("d", 0, "0")];
        let mismatches = compare(&expected, &actual);
        let names: Vec<&str> = mismatches.iter().map(|m| m.table.as_str()).collect();
        assert_eq!(names, ["public.b", "public.c", "public.d"]);
        assert!(compare(&expected, &expected).is_empty());
    }

    #[test]
    fn sqlite_hash_ignores_row_order_but_not_content() {
        let one = Connection::open_in_memory().unwrap();
        one.execute_batch(
            "CREATE TABLE t (a, b); INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, x'00');",
        )
        .unwrap();
        let two = Connection::open_in_memory().unwrap();
        two.execute_batch(
            "CREATE TABLE t (a, b); INSERT INTO t VALUES (3, x'00'), (1, 'x'), (2, NULL);",
        )
        .unwrap();
        assert_eq!(sqlite(&one).unwrap(), sqlite(&two).unwrap());
        two.execute_batch("UPDATE t SET b = 'y' WHERE a = 1")
            .unwrap();
        assert_ne!(sqlite(&one).unwrap(), sqlite(&two).unwrap());
    }
}
