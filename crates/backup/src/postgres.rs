//! PostgreSQL backups with the server's own tools: `pg_dump -Fc` (of the server's major version,
//! or newer), `pg_restore`, all pointed at the database through libpq's environment so no secret
//! is on a command line.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use postgres::Client;
use sha2::{Digest, Sha256};

use safeshift_driver::{
    ClientEnvironment, ConnectOptions, DatabaseUrl, DriverError, ErrorKind, PostgresDriver, redact,
};

use crate::Dumped;
use crate::error::BackupError;
use crate::fingerprint::{self, TableFingerprint, postgres_message, simple_rows};
use crate::metadata::create_private;
use crate::restore_watch;

/// A connection to the database being backed up or restored, and the environment for the
/// client programs.
pub(crate) struct Connection {
    pub driver: PostgresDriver,
    pub environment: ClientEnvironment,
}

impl Connection {
    pub fn open(url: &DatabaseUrl) -> Result<Connection, BackupError> {
        let options = ConnectOptions {
            application_name: format!("safeshift {} backup", env!("CARGO_PKG_VERSION")),
            create: false,
            ..ConnectOptions::default()
        };
        Ok(Connection {
            driver: PostgresDriver::connect(url, &options)?,
            environment: ClientEnvironment::for_url(url)?,
        })
    }

    pub fn major(&self) -> u32 {
        use safeshift_driver::Driver;
        self.driver.server().version_number / 10000
    }

    pub fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, BackupError> {
        Ok(simple_rows(self.driver.client(), sql)?)
    }

    pub fn database_size(&mut self) -> Result<u64, BackupError> {
        let rows = self.rows("SELECT pg_database_size(current_database())")?;
        Ok(first_number(&rows))
    }
}

pub(crate) fn first_number(rows: &[Vec<Option<String>>]) -> u64 {
    rows.first()
        .and_then(|row| row.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A client program for a server of this major version.
pub(crate) fn client_program(program: &str, server_major: u32) -> Result<PathBuf, BackupError> {
    safeshift_pgserver::find_client_program(program, server_major, None)
        .map_err(|error| BackupError::ClientProgram(error.to_string()))
}

/// `pg_dump (PostgreSQL) 15.18 (Debian …)`.
pub(crate) fn program_version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| program.display().to_string())
}

/// Dumps the database into `file` (created 0600) with `pg_dump -Fc`, fingerprinting its tables
/// in the very snapshot the dump reads, when asked.
pub(crate) fn dump(
    connection: &mut Connection,
    file: &Path,
    fingerprints: bool,
) -> Result<Dumped, BackupError> {
    let pg_dump = client_program("pg_dump", connection.major())?;
    let dump_tool = program_version(&pg_dump);
    // A repeatable-read transaction whose snapshot pg_dump imports: the fingerprints below and
    // the dump see exactly the same data.
    let snapshot = {
        let client = connection.driver.client();
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| database_error(&e))?;
        let rows = simple_rows(client, "SELECT pg_export_snapshot()")?;
        rows.first()
            .and_then(|row| row.first().cloned().flatten())
            .unwrap_or_default()
    };
    let mut output = create_private(file)?;
    let mut command = Command::new(&pg_dump);
    command
        .args(["--format=custom", "--no-password"])
        .arg(format!("--snapshot={snapshot}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    connection.environment.apply(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| BackupError::io(format!("starting {}", pg_dump.display()), e))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || read_all(stderr));
    let copier = std::thread::spawn(move || -> std::io::Result<(u64, String)> {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let read = stdout.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            output.write_all(&buffer[..read])?;
            size += read as u64;
        }
        output.sync_all()?;
        Ok((size, crate::metadata::sha256_text(hasher)))
    });
    let tables = if fingerprints {
        fingerprint::postgres(connection.driver.client())
    } else {
        Ok(Vec::new())
    };
    let copied = copier.join().expect("copy thread");
    let status = child
        .wait()
        .map_err(|e| BackupError::io("waiting for pg_dump", e))?;
    let message = errors.join().unwrap_or_default();
    let _ = connection.driver.client().batch_execute("COMMIT");
    if !status.success() {
        return Err(BackupError::Tool {
            program: "pg_dump".into(),
            message: tool_message(&message, status.code()),
        });
    }
    let (size, sha256) =
        copied.map_err(|e| BackupError::io(format!("writing {}", file.display()), e))?;
    Ok(Dumped {
        size,
        sha256,
        dump_tool,
        tables: tables?,
    })
}

/// What `pg_restore --list` says an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveContents {
    /// Entries in the table of contents.
    pub entries: usize,
    /// `schema.table` of every table the archive creates.
    pub tables: Vec<String>,
    /// Tables whose data the archive holds.
    pub table_data: usize,
    /// `Dumped from database version: …`
    pub dumped_from: Option<String>,
}

/// Reads an archive's table of contents with `pg_restore --list`.
pub(crate) fn contents(file: &Path, server_major: u32) -> Result<ArchiveContents, BackupError> {
    let pg_restore = client_program("pg_restore", server_major)?;
    let output = Command::new(&pg_restore)
        .arg("--list")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BackupError::io(format!("running {}", pg_restore.display()), e))?;
    if !output.status.success() {
        return Err(BackupError::Tool {
            program: "pg_restore --list".into(),
            message: tool_message(
                &String::from_utf8_lossy(&output.stderr),
                output.status.code(),
            ),
        });
    }
    Ok(parse_list(&String::from_utf8_lossy(&output.stdout)))
}

fn parse_list(text: &str) -> ArchiveContents {
    let mut contents = ArchiveContents {
        entries: 0,
        tables: Vec::new(),
        table_data: 0,
        dumped_from: None,
    };
    for line in text.lines() {
        if let Some(header) = line.strip_prefix(';') {
            if let Some(version) = header.trim().strip_prefix("Dumped from database version:") {
                contents.dumped_from = Some(version.trim().to_owned());
            }
            continue;
        }
        // `3339; 1259 16390 TABLE public accounts postgres`
        let Some((_, rest)) = line.split_once("; ") else {
            continue;
        };
        contents.entries += 1;
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.get(2..) {
            Some(["TABLE", "DATA", schema, table, ..]) => {
                let _ = (schema, table);
                contents.table_data += 1;
            }
            Some(["TABLE", schema, table, ..]) => {
                contents.tables.push(format!("{schema}.{table}"));
            }
            _ => {}
        }
    }
    contents
}

/// How `pg_restore` writes into a database.
pub(crate) enum RestoreInto {
    /// Drop what the archive holds and create it again (`--clean --if-exists`).
    Replace,
    /// Into an empty database.
    Empty,
}

/// Restores `file` into `database` with `pg_restore`, in one transaction: it either all
/// happens or none of it. A lock wait longer than `lock_timeout` is given up on (watched through
/// `watcher`, a connection to the same server; see `restore_watch`) instead of hanging behind the
/// application's sessions.
pub(crate) fn restore(
    file: &Path,
    environment: &ClientEnvironment,
    server_major: u32,
    into: RestoreInto,
    lock_timeout: Duration,
    watcher: &mut Client,
) -> Result<(), BackupError> {
    let pg_restore = client_program("pg_restore", server_major)?;
    let mut command = Command::new(&pg_restore);
    command.args(["--single-transaction", "--exit-on-error", "--no-password"]);
    if matches!(into, RestoreInto::Replace) {
        command.args(["--clean", "--if-exists"]);
    }
    command
        .arg("--dbname")
        .arg(environment.database())
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    environment.apply(&mut command);
    let application = restore_watch::application_name();
    command.env("PGAPPNAME", &application);
    let running = |e| BackupError::io(format!("running {}", pg_restore.display()), e);
    let mut child = command.spawn().map_err(running)?;
    let stderr = child
        .stderr
        .take()
        .map(|s| std::thread::spawn(move || read_all(s)));
    let mut gave_up = None;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(running)? {
            break status;
        }
        if gave_up.is_none() {
            gave_up =
                restore_watch::give_up_on_long_lock_wait(watcher, &application, lock_timeout)?;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let message = tool_message(&stderr, status.code());
    Err(match gave_up {
        Some(waited_for) => restore_watch::gave_up(&waited_for, lock_timeout, &message),
        None => BackupError::Tool {
            program: "pg_restore".into(),
            message,
        },
    })
}

/// Creates an empty database (from `template0`).
pub(crate) fn create_database(connection: &mut Connection, name: &str) -> Result<(), BackupError> {
    connection
        .driver
        .client()
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            quote(name)
        ))
        .map_err(|e| database_error(&e))?;
    Ok(())
}

/// Drops a database, disconnecting its sessions on servers that can (13 and newer).
pub(crate) fn drop_database(connection: &mut Connection, name: &str) -> Result<(), BackupError> {
    let force = if connection.major() >= 13 {
        " WITH (FORCE)"
    } else {
        ""
    };
    connection
        .driver
        .client()
        .batch_execute(&format!("DROP DATABASE IF EXISTS {}{force}", quote(name)))
        .map_err(|e| database_error(&e))?;
    Ok(())
}

pub(crate) fn database_exists(
    connection: &mut Connection,
    name: &str,
) -> Result<bool, BackupError> {
    let rows = connection.rows(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = {}",
        postgres_protocol_literal(name)
    ))?;
    Ok(first_number(&rows) > 0)
}

/// Fingerprints of every table of another database on the same server.
pub(crate) fn fingerprints_of(
    connection: &Connection,
    database: &str,
) -> Result<Vec<TableFingerprint>, BackupError> {
    let mut client: Client = connection.driver.connect_to_database(database)?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(|e| database_error(&e))?;
    let tables = fingerprint::postgres(&mut client)?;
    let _ = client.batch_execute("COMMIT");
    Ok(tables)
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn postgres_protocol_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn database_error(error: &postgres::Error) -> BackupError {
    BackupError::Database(DriverError::new(
        ErrorKind::Statement,
        postgres_message(error),
    ))
}

fn read_all(mut stream: impl Read) -> String {
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// A tool's error output, trimmed and with any connection string's password redacted.
fn tool_message(stderr: &str, code: Option<i32>) -> String {
    let text = redact(stderr.trim());
    let text = if text.is_empty() {
        "no error output".to_owned()
    } else {
        text
    };
    match code {
        Some(code) => format!("{text} (exit code {code})"),
        None => format!("{text} (killed by a signal)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_table_of_contents() {
        let text = ";\n; Archive created at 2025-01-01 00:00:00 UTC\n;     dbname: shop\n\
                    ; Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)\n;\n\
                    215; 1259 16385 TABLE public accounts postgres\n\
                    216; 1259 16390 SEQUENCE public accounts_id_seq postgres\n\
                    3340; 0 16385 TABLE DATA public accounts postgres\n";
        let contents = parse_list(text);
        assert_eq!(contents.entries, 3);
        assert_eq!(contents.tables, ["public.accounts"]);
        assert_eq!(contents.table_data, 1);
        assert_eq!(
            contents.dumped_from.as_deref(),
            Some("15.18 (Debian 15.18-0+deb12u1)")
        );
    }

    #[test]
    fn tool_errors_are_redacted() {
        let message = tool_message("could not connect to postgres://u:hunter2@h/d\n", Some(1));
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.ends_with("(exit code 1)"));
    }
}
