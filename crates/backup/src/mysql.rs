//! MySQL and MariaDB backups with the server's own tools: `mariadb-dump` (or `mysqldump`)
//! `--single-transaction`, a consistent snapshot that blocks no writer, restored with the
//! `mariadb` (or `mysql`) client. Credentials reach the programs through an option file of mode
//! 0600 (`--defaults-extra-file`), never their command line or environment.
//!
//! MySQL cannot share a snapshot between connections, so table fingerprints cannot be read in
//! the dump's snapshot the way PostgreSQL's are. They are read from the dump itself instead:
//! the rows its `INSERT` statements hold per table, which a deep verification compares with a
//! copy restored into a scratch database (row counts only: the content of a restored copy has
//! nothing of the dump's to be hashed against).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use safeshift_driver::{
    ClientOptionFile, ConnectOptions, DatabaseUrl, Driver, MysqlDriver, MysqlFlavor, TableSize,
    redact,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::Dumped;
use crate::error::BackupError;
use crate::fingerprint::TableFingerprint;
use crate::metadata::create_private;

/// What the hash of a MySQL fingerprint is: only the row count is compared.
pub(crate) const ROWS_ONLY: &str = "rows-only";
/// The last line `mariadb-dump` and `mysqldump` write when a dump is complete.
const COMPLETED: &str = "-- Dump completed";

/// A connection to the database being backed up or restored, and how its client programs reach
/// the server.
pub(crate) struct Connection {
    pub driver: MysqlDriver,
    options_file: ClientOptionFile,
}

impl Connection {
    pub fn open(url: &DatabaseUrl) -> Result<Connection, BackupError> {
        let options = ConnectOptions {
            create: false,
            ..ConnectOptions::default()
        };
        let driver = MysqlDriver::connect(url, &options)?;
        let options_file = driver.client_option_file()?;
        Ok(Connection {
            driver,
            options_file,
        })
    }

    /// A command for one of the client programs, reading the option file first.
    fn client_command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.arg(format!(
            "--defaults-extra-file={}",
            self.options_file.path().display()
        ));
        command
    }

    pub fn database(&self) -> String {
        self.driver.server().database.clone()
    }

    fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, BackupError> {
        Ok(self.driver.query_rows(sql)?)
    }

    pub fn database_size(&mut self) -> Result<u64, BackupError> {
        Ok(self.tables()?.iter().map(|(_, bytes)| bytes).sum())
    }

    /// Every base table of the database with its size (data and indexes, as the server
    /// estimates them).
    pub fn tables(&mut self) -> Result<Vec<(String, u64)>, BackupError> {
        Ok(self
            .driver
            .table_sizes()?
            .into_iter()
            .map(|TableSize { table, bytes, .. }| (table, bytes))
            .collect())
    }

    pub fn database_exists(&mut self, name: &str) -> Result<bool, BackupError> {
        let rows = self.rows(&format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}'",
            name.replace('\'', "''").replace('\\', "\\\\")
        ))?;
        Ok(rows.first().and_then(|row| row[0].as_deref()) != Some("0"))
    }

    pub fn create_database(&mut self, name: &str) -> Result<(), BackupError> {
        self.rows(&format!("CREATE DATABASE {}", quote(name)))
            .map(drop)
    }

    pub fn drop_database(&mut self, name: &str) -> Result<(), BackupError> {
        self.rows(&format!("DROP DATABASE IF EXISTS {}", quote(name)))
            .map(drop)
    }

    /// Row counts of every table of `database` (another database on the same server).
    pub fn row_counts(&mut self, database: &str) -> Result<Vec<TableFingerprint>, BackupError> {
        let tables = self.rows(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' \
             AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            database.replace('\'', "''")
        ))?;
        let mut counts = Vec::new();
        for table in tables.into_iter().filter_map(|row| row[0].clone()) {
            let rows = self.rows(&format!(
                "SELECT COUNT(*) FROM {}.{}",
                quote(database),
                quote(&table)
            ))?;
            counts.push(TableFingerprint {
                schema: None,
                table,
                rows: rows
                    .first()
                    .and_then(|row| row[0].as_deref())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                hash: ROWS_ONLY.to_owned(),
            });
        }
        Ok(counts)
    }
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The first of `names` found on `PATH`, MariaDB's names first on MariaDB.
fn client_program(flavor: MysqlFlavor, mariadb: &str, mysql: &str) -> Result<PathBuf, BackupError> {
    let names = match flavor {
        MysqlFlavor::Mariadb => [mariadb, mysql],
        MysqlFlavor::Mysql => [mysql, mariadb],
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            BackupError::ClientProgram(format!(
                "neither {mariadb} nor {mysql} is installed (Debian: `apt-get install mariadb-client`)"
            ))
        })
}

/// Dumps the database into `file` (created 0600) with `mariadb-dump --single-transaction`, and
/// counts the rows it holds per table when asked.
pub(crate) fn dump(
    connection: &mut Connection,
    file: &Path,
    fingerprints: bool,
) -> Result<Dumped, BackupError> {
    let program = client_program(connection.driver.flavor(), "mariadb-dump", "mysqldump")?;
    create_private(file)?;
    let output = connection
        .client_command(&program)
        .args([
            "--single-transaction",
            "--quick",
            "--routines",
            "--triggers",
            "--hex-blob",
            "--no-tablespaces",
            "--skip-dump-date",
        ])
        .arg(format!("--result-file={}", file.display()))
        .arg("--")
        .arg(connection.database())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BackupError::io(format!("running {}", program.display()), e))?;
    if !output.status.success() {
        return Err(tool_error(&program, &output));
    }
    let contents = contents(file)?;
    if !contents.complete {
        return Err(BackupError::Tool {
            program: program.display().to_string(),
            message: "the dump ends before its `-- Dump completed` line".into(),
        });
    }
    let (size, sha256) = crate::sqlite::checksum(file)?;
    let version = Command::new(&program)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| program.display().to_string());
    Ok(Dumped {
        size,
        sha256,
        dump_tool: version,
        tables: if fingerprints {
            contents.row_counts
        } else {
            Vec::new()
        },
    })
}

/// What a dump file holds, read from its text: the tables it creates, the rows it inserts per
/// table, and whether it is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DumpContents {
    pub tables: Vec<String>,
    pub row_counts: Vec<TableFingerprint>,
    pub complete: bool,
}

/// Reads a dump line by line: `mariadb-dump` starts each `CREATE TABLE` and each (extended)
/// `INSERT` on a line of its own and escapes newlines in strings, so an `INSERT` ends with the
/// first line that ends with `;`.
pub(crate) fn contents(file: &Path) -> Result<DumpContents, BackupError> {
    let reader = BufReader::new(
        std::fs::File::open(file)
            .map_err(|e| BackupError::io(format!("reading {}", file.display()), e))?,
    );
    let mut tables: Vec<String> = Vec::new();
    let mut row_counts: Vec<TableFingerprint> = Vec::new();
    let mut complete = false;
    let mut insert: Option<String> = None;
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| BackupError::io(format!("reading {}", file.display()), e))?;
        let line = String::from_utf8_lossy(&line);
        if let Some(statement) = insert.as_mut() {
            statement.push('\n');
            statement.push_str(&line);
        } else if line.starts_with(COMPLETED) {
            complete = true;
        } else if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            if let Some(name) = quoted_name(rest) {
                tables.push(name.clone());
                row_counts.push(TableFingerprint {
                    schema: None,
                    table: name,
                    rows: 0,
                    hash: ROWS_ONLY.to_owned(),
                });
            }
        } else if line.starts_with("INSERT INTO ") {
            insert = Some(line.into_owned());
        }
        if insert.as_ref().is_some_and(|s| s.trim_end().ends_with(';')) {
            let statement = insert.take().unwrap_or_default();
            let name = statement.strip_prefix("INSERT INTO ").and_then(quoted_name);
            if let (Some(name), Some(rows)) = (name, inserted_rows(&statement))
                && let Some(count) = row_counts.iter_mut().find(|t| t.table == name)
            {
                count.rows += rows;
            }
        }
    }
    Ok(DumpContents {
        tables,
        row_counts,
        complete,
    })
}

/// The backquoted name a line starts with.
fn quoted_name(text: &str) -> Option<String> {
    let rest = text.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            if chars.peek() == Some(&'`') {
                chars.next();
                name.push('`');
            } else {
                return Some(name);
            }
        } else {
            name.push(c);
        }
    }
    None
}

/// The rows an `INSERT … VALUES (…),(…);` statement inserts: the parenthesised groups after
/// `VALUES` at the top level, found with MySQL's lexer (so parentheses in strings do not count).
fn inserted_rows(line: &str) -> Option<u64> {
    let tokens = Tokenizer::new(&MySqlDialect {}, line).tokenize().ok()?;
    let values = tokens.iter().position(
        |t| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("VALUES")),
    )?;
    let mut depth = 0u32;
    let mut rows = 0;
    for token in &tokens[values + 1..] {
        match token {
            Token::LParen => {
                if depth == 0 {
                    rows += 1;
                }
                depth += 1;
            }
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Some(rows)
}

/// Loads a dump into `database` with the `mariadb` client, stopping at the first error. Lock
/// waits give up after `lock_timeout`. A dump drops and creates each table it holds, so in
/// place it replaces those tables (one by one: MySQL cannot do DDL in a transaction) and
/// leaves the others.
pub(crate) fn restore(
    connection: &Connection,
    file: &Path,
    database: &str,
    lock_timeout: Duration,
) -> Result<(), BackupError> {
    let program = client_program(connection.driver.flavor(), "mariadb", "mysql")?;
    let input = std::fs::File::open(file)
        .map_err(|e| BackupError::io(format!("reading {}", file.display()), e))?;
    let seconds = lock_timeout.as_millis().div_ceil(1000).max(1);
    let output = connection
        .client_command(&program)
        .arg("--batch")
        .arg(format!(
            "--init-command=SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}"
        ))
        .arg(format!("--database={database}"))
        .stdin(Stdio::from(input))
        .output()
        .map_err(|e| BackupError::io(format!("running {}", program.display()), e))?;
    if !output.status.success() {
        return Err(tool_error(&program, &output));
    }
    Ok(())
}

fn tool_error(program: &Path, output: &std::process::Output) -> BackupError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    BackupError::Tool {
        program: program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        message: redact(stderr.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_by_the_lexer() {
        assert_eq!(
            inserted_rows("INSERT INTO `t` VALUES (1,'a (b), c'),(2,'it\\'s ('),(3,NULL);"),
            Some(3)
        );
        assert_eq!(
            inserted_rows("INSERT INTO `t` VALUES\n(1,'x;'),\n(2,'y');"),
            Some(2)
        );
        assert_eq!(quoted_name("`odd``name` (").as_deref(), Some("odd`name"));
    }
}
