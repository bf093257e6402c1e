//! Online schema change on MySQL and MariaDB with pt-online-schema-change (Percona Toolkit):
//! an `ALTER TABLE` the server would run as a blocking copy is run on an empty copy of the
//! table instead, the rows are copied over in chunks sized to a time budget while triggers
//! carry the writes that happen meanwhile, and an atomic `RENAME TABLE` swaps the tables.
//! The copy pauses while replicas lag or the server is loaded, and stops on critical load.
//!
//! Asked for with `-- safeshift:online-schema-change [chunk-time=0.5s] [max-lag=1s]
//! [max-load=Threads_running=25] [critical-load=Threads_running=50]` above the statement.
//! The tool reaches the server through the driver's 0600 option file; its progress lines
//! become [`OnlineEvent`]s.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use safeshift_driver::{DriverError, ErrorKind, MysqlDriver, redact};
use safeshift_runner::Interrupt;
use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::events::{EventSink, OnlineEvent};

/// The directive that runs an `ALTER TABLE` as an online schema change.
pub const ONLINE_SCHEMA_CHANGE_DIRECTIVE: &str = "online-schema-change";

const TOOL: &str = "pt-online-schema-change";

/// How the copy is paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChangeOptions {
    /// The time each chunk of rows should take; the chunk size adapts to it.
    pub chunk_time: Duration,
    /// Pause while a replica lags further behind than this.
    pub max_lag: Duration,
    /// Pause while a status variable exceeds this (`Threads_running=25`).
    pub max_load: String,
    /// Stop the change while a status variable exceeds this.
    pub critical_load: String,
}

impl Default for SchemaChangeOptions {
    fn default() -> Self {
        SchemaChangeOptions {
            chunk_time: Duration::from_millis(500),
            max_lag: Duration::from_secs(1),
            max_load: "Threads_running=25".into(),
            critical_load: "Threads_running=50".into(),
        }
    }
}

impl SchemaChangeOptions {
    /// Applies a directive's `key=value` arguments.
    pub fn apply(&mut self, arguments: &str) -> Result<(), String> {
        for argument in arguments.split_whitespace() {
            let (key, value) = argument.split_once('=').ok_or_else(|| {
                format!(
                    "`{argument}` is not key=value (chunk-time, max-lag, max-load, critical-load)"
                )
            })?;
            let duration = || {
                safeshift_source::parse_duration(value)
                    .map_err(|message| format!("{key}: {message}"))
            };
            match key {
                "chunk-time" => self.chunk_time = duration()?,
                "max-lag" => self.max_lag = duration()?,
                "max-load" => self.max_load = status_threshold(key, value)?,
                "critical-load" => self.critical_load = status_threshold(key, value)?,
                other => {
                    return Err(format!(
                        "unknown option `{other}` (known: chunk-time, max-lag, max-load, critical-load)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `Threads_running=25`: a status variable and a number, as pt-online-schema-change takes it.
fn status_threshold(key: &str, value: &str) -> Result<String, String> {
    let valid = value.split(',').all(|part| {
        part.split_once([':', '=']).is_some_and(|(name, number)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && number.parse::<u64>().is_ok()
        })
    });
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{key}: `{value}` is not a status variable and a number (e.g. Threads_running=25)"
        ))
    }
}

/// An `ALTER TABLE`, split the way pt-online-schema-change takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// The database, when the statement names one.
    pub database: Option<String>,
    pub table: String,
    /// Everything after the table's name: what to change.
    pub alter: String,
}

impl SchemaChange {
    /// Reads `ALTER TABLE [db.]table <changes>` with MySQL's lexer.
    pub fn parse(sql: &str) -> Result<SchemaChange, String> {
        let not_alter = || {
            "an online schema change runs an `ALTER TABLE <table> …` statement; this is not one"
                .to_owned()
        };
        let tokens = Tokenizer::new(&MySqlDialect {}, sql)
            .tokenize_with_location()
            .map_err(|e| e.to_string())?;
        let code: Vec<_> = tokens
            .iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        let word = |i: usize| match code.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        };
        let mut at = 0;
        if word(at).as_deref() != Some("ALTER") {
            return Err(not_alter());
        }
        at += 1;
        while matches!(word(at).as_deref(), Some("ONLINE" | "IGNORE")) {
            at += 1;
        }
        if word(at).as_deref() != Some("TABLE") {
            return Err(not_alter());
        }
        at += 1;
        if word(at).as_deref() == Some("IF") {
            at += 2;
        }
        let name = |i: usize| match code.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) => Some(w.value.clone()),
            _ => None,
        };
        let first = name(at).ok_or_else(not_alter)?;
        let (database, table, last) = if code.get(at + 1).map(|t| &t.token) == Some(&Token::Period)
        {
            (Some(first), name(at + 2).ok_or_else(not_alter)?, at + 2)
        } else {
            (None, first, at)
        };
        let end = code[last].span.end;
        let offset = byte_offset(sql, end.line, end.column);
        let alter = sql[offset..].trim().to_owned();
        if alter.is_empty() {
            return Err("the ALTER TABLE changes nothing".into());
        }
        Ok(SchemaChange {
            database,
            table,
            alter,
        })
    }
}

/// The byte offset of the lexer's 1-based line and character column.
fn byte_offset(text: &str, line: u64, column: u64) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let rest = &text[line_start..];
    line_start
        + rest
            .char_indices()
            .nth(column.saturating_sub(1) as usize)
            .map_or(rest.len(), |(offset, _)| offset)
}

/// Where a run of the tool stands, from its output.
#[derive(Debug, Clone, PartialEq)]
enum ToolLine {
    /// `Copying `db`.`t`:  37% 00:12 remain`
    Progress {
        percent: f64,
        remaining: String,
    },
    /// `Pausing because Threads_running=26.` or a replica lag wait.
    Paused(String),
    Other,
}

fn read_line(line: &str) -> ToolLine {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("Copying ")
        && let Some((_, after)) = rest.rsplit_once(": ")
    {
        let mut parts = after.split_whitespace();
        let percent = parts
            .next()
            .and_then(|p| p.strip_suffix('%'))
            .and_then(|p| p.parse().ok());
        if let Some(percent) = percent {
            return ToolLine::Progress {
                percent,
                remaining: parts.next().unwrap_or_default().to_owned(),
            };
        }
    }
    if line.starts_with("Pausing because") || line.contains("lag is") {
        return ToolLine::Paused(line.to_owned());
    }
    ToolLine::Other
}

/// Runs the change with pt-online-schema-change. An earlier attempt's leftovers (its triggers
/// and the `_<table>_new` copy) are removed first when `resuming` (they are this statement's own);
/// otherwise they stop the change with what to do.
pub fn run(
    driver: &mut MysqlDriver,
    change: &SchemaChange,
    options: &SchemaChangeOptions,
    lock_timeout: Duration,
    resuming: bool,
    interrupt: &Interrupt,
    sink: &EventSink,
) -> Result<(), DriverError> {
    let tool = find_tool()?;
    let database = match &change.database {
        Some(database) => database.clone(),
        None => driver
            .query_rows("SELECT DATABASE()")?
            .first()
            .and_then(|row| row[0].clone())
            .unwrap_or_default(),
    };
    clear_leftovers(driver, &database, &change.table, resuming)?;
    // Kept until the tool ends: it reads the connection settings from this file.
    let option_file = driver.client_option_file()?;
    let target = format!(
        "F={},D={},t={}",
        option_file.path().display(),
        dsn_value(&database),
        dsn_value(&change.table)
    );
    let mut child = tool_command(&tool, change, options, lock_timeout, &target)
        .spawn()
        .map_err(|error| {
            DriverError::new(
                ErrorKind::Statement,
                format!("cannot start {TOOL}: {error}"),
            )
        })?;
    let started = Instant::now();
    let table = format!("{database}.{}", change.table);
    sink(&OnlineEvent::SchemaChangeStarted {
        table: table.clone(),
        tool: TOOL.to_owned(),
    });
    let outcome = watch_tool(&mut child, &table, interrupt, sink)?;
    if outcome.status.success() && !outcome.interrupted {
        sink(&OnlineEvent::SchemaChangeFinished {
            table,
            duration: started.elapsed(),
        });
        return Ok(());
    }
    Err(tool_failure(&outcome, &database, &change.table))
}

/// The tool's command line: `target` is the DSN naming the option file, database and table.
/// The tool is ended with SIGTERM if the thread that starts it ends.
fn tool_command(
    tool: &std::path::Path,
    change: &SchemaChange,
    options: &SchemaChangeOptions,
    lock_timeout: Duration,
    target: &str,
) -> Command {
    let seconds = lock_timeout.as_secs().max(1);
    let mut command = Command::new(tool);
    command
        .arg("--execute")
        .arg("--alter")
        .arg(&change.alter)
        .arg("--chunk-time")
        .arg(format!("{:.3}", options.chunk_time.as_secs_f64()))
        .arg("--max-lag")
        .arg(format!("{:.3}", options.max_lag.as_secs_f64()))
        .arg("--check-interval")
        .arg("1")
        .arg("--max-load")
        .arg(&options.max_load)
        .arg("--critical-load")
        .arg(&options.critical_load)
        .arg("--set-vars")
        .arg(format!("lock_wait_timeout={seconds}"))
        .arg("--progress")
        .arg("time,1")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Left running by a killed runner, the tool would swap the tables behind a history that
    // says the change is not applied: the kernel sends it SIGTERM when the thread that started
    // it ends (this one, which waits for it), so a killed runner takes it along.
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// How a run of the tool ended, with everything it printed.
struct ToolOutcome {
    status: std::process::ExitStatus,
    output: Vec<String>,
    /// Whether the run was told to stop because the user interrupted safeshift.
    interrupted: bool,
}

/// Waits for the tool to end, turning its progress and pause lines into events as they come
/// and passing an interrupt on to it.
fn watch_tool(
    child: &mut Child,
    table: &str,
    interrupt: &Interrupt,
    sink: &EventSink,
) -> Result<ToolOutcome, DriverError> {
    let (lines, incoming) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        })
    })
    .collect();
    drop(lines);
    let mut output: Vec<String> = Vec::new();
    let mut interrupted = false;
    let status = loop {
        match incoming.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                report_tool_line(&line, table, sink);
                output.push(line);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both streams closed: the tool is ending; wait for it without spinning.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(20))
            }
        }
        if interrupt.is_requested() && !interrupted {
            // The tool drops its triggers and its copy when it is told to stop.
            interrupted = true;
            // SAFETY: kill with a pid of our own child has no memory effects.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        if let Some(status) = child.try_wait().map_err(|error| {
            DriverError::new(ErrorKind::Statement, format!("waiting for {TOOL}: {error}"))
        })? {
            break status;
        }
    };
    for reader in readers {
        let _ = reader.join();
    }
    output.extend(incoming.try_iter());
    Ok(ToolOutcome {
        status,
        output,
        interrupted,
    })
}

/// Sends the event a line of the tool's output stands for, if any.
fn report_tool_line(line: &str, table: &str, sink: &EventSink) {
    match read_line(line) {
        ToolLine::Progress { percent, remaining } => sink(&OnlineEvent::SchemaChangeProgress {
            table: table.to_owned(),
            percent,
            remaining,
        }),
        ToolLine::Paused(reason) => sink(&OnlineEvent::SchemaChangeThrottled {
            table: table.to_owned(),
            reason,
        }),
        ToolLine::Other => {}
    }
}

/// The error for a run of the tool that failed or was interrupted, quoting the last lines it
/// printed, redacted: the tool's output can name the server it connects to.
fn tool_failure(outcome: &ToolOutcome, database: &str, table: &str) -> DriverError {
    let tail: Vec<&str> = outcome
        .output
        .iter()
        .rev()
        .filter(|line| !line.trim().is_empty())
        .take(6)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let kind = if outcome.interrupted {
        ErrorKind::Canceled
    } else {
        ErrorKind::Statement
    };
    DriverError::new(
        kind,
        redact(&format!("{TOOL} {}: {}", outcome.status, tail.join(" / "))),
    )
    .with_hint(format!(
        "nothing was changed on {database}.{table}; the tool removed its triggers and its copy (check for \
         `_{table}_new` if it was killed)"
    ))
}

/// A value for a Percona DSN, where `,` separates keys.
fn dsn_value(text: &str) -> String {
    text.replace(',', "\\,")
}

fn find_tool() -> Result<PathBuf, DriverError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(TOOL))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            DriverError::new(
                ErrorKind::Statement,
                format!("{TOOL} is not installed, so the online schema change cannot run"),
            )
            .with_hint("install Percona Toolkit (Debian: `apt-get install percona-toolkit`), or remove the `-- safeshift:online-schema-change` line to run the ALTER as it is")
        })
}

/// The triggers and the `_<table>_new` copy a killed run of the tool leaves: removed when they
/// are this statement's own, else an error saying how to remove them.
fn clear_leftovers(
    driver: &mut MysqlDriver,
    database: &str,
    table: &str,
    resuming: bool,
) -> Result<(), DriverError> {
    let literal = |text: &str| format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"));
    let copy = format!("_{table}_new");
    let triggers: Vec<String> = driver
        .query_rows(&format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {} \
             AND EVENT_OBJECT_TABLE = {} AND TRIGGER_NAME LIKE 'pt\\_osc\\_%'",
            literal(database),
            literal(table)
        ))?
        .into_iter()
        .filter_map(|row| row[0].clone())
        .collect();
    let copy_exists = driver
        .query_rows(&format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
            literal(database),
            literal(&copy)
        ))?
        .first()
        .and_then(|row| row[0].as_deref())
        != Some("0");
    if triggers.is_empty() && !copy_exists {
        return Ok(());
    }
    let quote = |name: &str| format!("`{}`", name.replace('`', "``"));
    let mut statements: Vec<String> = triggers
        .iter()
        .map(|trigger| format!("DROP TRIGGER {}.{}", quote(database), quote(trigger)))
        .collect();
    if copy_exists {
        statements.push(format!("DROP TABLE {}.{}", quote(database), quote(&copy)));
    }
    if !resuming {
        return Err(DriverError::new(
            ErrorKind::Statement,
            format!(
                "{database}.{table} has an unfinished online schema change's triggers or copy (`{copy}`), not this run's"
            ),
        )
        .with_hint(format!(
            "if no schema change is running, remove them ({}) and run `safeshift up` again",
            statements.join("; ")
        )));
    }
    for statement in statements {
        driver.query_rows(&statement)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_the_changes_are_split() {
        let change = SchemaChange::parse(
            "ALTER TABLE `shop`.orders\n  MODIFY COLUMN total decimal(12,2) NOT NULL, ADD INDEX i (total)",
        )
        .unwrap();
        assert_eq!(change.database.as_deref(), Some("shop"));
        assert_eq!(change.table, "orders");
        assert_eq!(
            change.alter,
            "MODIFY COLUMN total decimal(12,2) NOT NULL, ADD INDEX i (total)"
        );
        assert!(SchemaChange::parse("UPDATE orders SET x = 1").is_err());
        assert!(SchemaChange::parse("ALTER TABLE orders").is_err());
    }

    #[test]
    fn progress_and_pauses_are_read() {
        assert_eq!(
            read_line("Copying `shop`.`orders`:  37% 00:12 remain"),
            ToolLine::Progress {
                percent: 37.0,
                remaining: "00:12".into()
            }
        );
        assert!(matches!(
            read_line("Pausing because Threads_running=26."),
            ToolLine::Paused(_)
        ));
    }

    #[test]
    fn options_come_from_the_directive() {
        let mut options = SchemaChangeOptions::default();
        options
            .apply("chunk-time=200ms max-lag=3s max-load=Threads_running=10")
            .unwrap();
        assert_eq!(options.chunk_time, Duration::from_millis(200));
        assert_eq!(options.max_lag, Duration::from_secs(3));
        assert_eq!(options.max_load, "Threads_running=10");
        assert!(options.apply("max-load=Threads_running").is_err());
        assert!(options.apply("speed=fast").is_err());
    }
}
