//! Helpers for driving the real `safeshift` binary against real databases.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn safeshift_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_safeshift"))
}

/// A throwaway project directory with a `migrations/` folder.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// The database URL passed with `--database-url`.
    pub url: String,
}

impl Project {
    /// A project whose database is a SQLite file inside it.
    pub fn sqlite() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("migrations")).expect("migrations dir");
        let url = format!("sqlite://{}", dir.path().join("app.db").display());
        Project { dir, url }
    }

    /// A project pointed at a PostgreSQL URL.
    pub fn postgres(url: String) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("migrations")).expect("migrations dir");
        Project { dir, url }
    }

    /// A project pointed at a MySQL or MariaDB URL.
    pub fn mysql(url: String) -> Project {
        Project::postgres(url)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    /// Writes a file under `migrations/`.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> &Self {
        let path = self.migrations().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    /// Writes a native migration with up and down sections.
    pub fn migration(&self, name: &str, up: &str, down: &str) -> &Self {
        self.write(
            name,
            format!("-- migrate:up\n{up}\n\n-- migrate:down\n{down}\n"),
        )
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.migrations().join(name)).unwrap();
    }

    /// A command for the binary, in the project, with the project's URL and an environment
    /// cleared of anything that could leak in from the caller.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(safeshift_bin());
        command
            .current_dir(self.path())
            .args(["--database-url", &self.url])
            .args(args);
        for variable in [
            "DATABASE_URL",
            "SAFESHIFT_DATABASE_URL",
            "SAFESHIFT_CONFIG",
            "SAFESHIFT_MIGRATIONS_DIR",
            "SAFESHIFT_LOCK_MODE",
            "SAFESHIFT_LOCK_WAIT",
            "SAFESHIFT_LOCK_TIMEOUT",
            "SAFESHIFT_STATEMENT_TIMEOUT",
            "SAFESHIFT_RETRIES",
            "SAFESHIFT_HISTORY_SCHEMA",
            "SAFESHIFT_HISTORY_TABLE",
            "SAFESHIFT_ALLOW_OUT_OF_ORDER",
            "PGPASSWORD",
        ] {
            command.env_remove(variable);
        }
        command.env("NO_COLOR", "1");
        command
    }

    /// Runs the binary and returns its outcome.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run safeshift"))
    }
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Both streams.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Exit codes, as documented.
pub mod exit {
    pub const OK: i32 = 0;
    pub const MIGRATION_FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const INVALID_FILES: i32 = 3;
    pub const REFUSED: i32 = 4;
    pub const LOCK: i32 = 5;
    pub const CONNECTION: i32 = 6;
    pub const PENDING: i32 = 7;
}

/// Rows of a query on a PostgreSQL database, as text.
pub fn pg_rows(client: &mut postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The single value of a query on PostgreSQL.
pub fn pg_value(client: &mut postgres::Client, sql: &str) -> String {
    pg_rows(client, sql)
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .unwrap_or_else(|| panic!("no value from {sql}"))
}

/// `(version, direction, status, kind)` of every history row on PostgreSQL, oldest first.
pub fn pg_history(client: &mut postgres::Client) -> Vec<(String, String, String, String)> {
    pg_rows(
        client,
        "SELECT version, direction, status, kind FROM safeshift.history ORDER BY id",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap(),
            r[1].clone().unwrap(),
            r[2].clone().unwrap(),
            r[3].clone().unwrap(),
        )
    })
    .collect()
}

/// Whether a table exists on PostgreSQL.
pub fn pg_table_exists(client: &mut postgres::Client, name: &str) -> bool {
    pg_value(client, &format!("SELECT to_regclass('{name}') IS NOT NULL")) == "t"
}

/// The server process of another session running a statement whose text contains `needle`.
pub fn backend_running(client: &mut postgres::Client, needle: &str) -> Option<String> {
    pg_rows(
        client,
        &format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' \
             AND pid <> pg_backend_pid() AND query LIKE '%{needle}%'"
        ),
    )
    .into_iter()
    .next()
    .and_then(|row| row[0].clone())
}

/// Advisory locks held in this database.
pub fn advisory_locks(client: &mut postgres::Client) -> i64 {
    pg_value(
        client,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .parse()
    .unwrap()
}

/// Lease rows that still hold the lock (not expired).
pub fn live_leases(client: &mut postgres::Client) -> i64 {
    if pg_value(
        client,
        "SELECT to_regclass('safeshift.history_lock') IS NULL",
    ) == "t"
    {
        return 0;
    }
    pg_value(
        client,
        "SELECT count(*) FROM safeshift.history_lock WHERE expires_at > clock_timestamp()",
    )
    .parse()
    .unwrap()
}

/// Rows of a query on MySQL or MariaDB, as text.
pub fn my_rows(conn: &mut mysql::Conn, sql: &str) -> Vec<Vec<Option<String>>> {
    use mysql::prelude::Queryable;
    let rows: Vec<mysql::Row> = conn.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|value| match value {
                    mysql::Value::NULL => None,
                    mysql::Value::Bytes(bytes) => {
                        Some(String::from_utf8_lossy(&bytes).into_owned())
                    }
                    other => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect()
}

/// The single value of a query on MySQL.
pub fn my_value(conn: &mut mysql::Conn, sql: &str) -> String {
    my_rows(conn, sql)
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .unwrap_or_else(|| panic!("no value from {sql}"))
}

/// `(version, direction, status, kind)` of every history row on MySQL, oldest first.
pub fn my_history(conn: &mut mysql::Conn) -> Vec<(String, String, String, String)> {
    my_rows(
        conn,
        "SELECT version, direction, status, kind FROM safeshift_history ORDER BY id",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap(),
            r[1].clone().unwrap(),
            r[2].clone().unwrap(),
            r[3].clone().unwrap(),
        )
    })
    .collect()
}

/// Filters for snapshots of the human output: times, durations, users, run ids and temporary
/// paths vary between runs.
pub fn snapshot_settings(project: &Project) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    add_run_filters(&mut settings, project);
    settings
}

fn add_run_filters(settings: &mut insta::Settings, project: &Project) {
    settings.add_filter(
        &regex_escape(&project.path().display().to_string()),
        "[project]",
    );
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[time]");
    settings.add_filter(r"\b\d+(\.\d+)? (ms|s)\b", "[duration]");
    settings.add_filter(r"\b[\w.-]+@[\w.-]+\b", "[user@host]");
    settings.add_filter(r"sqlite \d+\.\d+\.\d+", "sqlite [version]");
    settings.add_filter(r"\b[0-9a-f]{8}\b", "[run]");
}

/// [`snapshot_settings`] for a project on PostgreSQL: also the URL, the database's name, the
/// server's version, server process ids and sizes.
pub fn postgres_snapshot_settings(project: &Project, database: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // Before the user@host filter, which would take the URL's user and host apart.
    settings.add_filter(&regex_escape(&project.url), "[database url]");
    settings.add_filter(&format!(r"\b{}\b", regex_escape(database)), "[database]");
    settings.add_filter(
        r"(PostgreSQL|postgres) \d+\.\d+( \([^)]*\))?",
        "$1 [version]",
    );
    settings.add_filter(r"\bpid \d+", "pid [pid]");
    settings.add_filter(r"\b\d+(\.\d)? (B|KiB|MiB|GiB|TiB)\b", "[size]");
    add_run_filters(&mut settings, project);
    settings
}

pub fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Polls `condition` every 25 ms until it holds, failing the test with `what` after `within`.
#[track_caller]
pub fn wait_until(what: &str, within: std::time::Duration, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// Starts the binary with its output piped, for [`finish_within`].
pub fn spawn_piped(project: &Project, args: &[&str]) -> std::process::Child {
    spawn_with_output(project, args, std::process::Stdio::piped)
}

/// Starts the binary with its stdout and stderr each made by `output`.
fn spawn_with_output(
    project: &Project,
    args: &[&str],
    output: fn() -> std::process::Stdio,
) -> std::process::Child {
    project
        .command(args)
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("start safeshift")
}

/// Waits for a binary started by [`spawn_piped`] to exit, reading its output as it comes (so a
/// full pipe never stalls it); past `within` it is killed and the test fails with its output.
#[track_caller]
pub fn finish_within(mut child: std::process::Child, within: std::time::Duration) -> Run {
    use std::io::Read;
    fn drain(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            text
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = std::time::Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for safeshift") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "safeshift (pid {}) still running after {within:?}\n--- stdout\n{}\n--- stderr\n{}",
                child.id(),
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Starts `up` with its output thrown away (it is killed anyway).
pub fn spawn_up(project: &Project) -> std::process::Child {
    spawn_quiet(project, &["up"])
}

/// Starts the binary with its output thrown away.
pub fn spawn_quiet(project: &Project, args: &[&str]) -> std::process::Child {
    spawn_with_output(project, args, std::process::Stdio::null)
}

/// SIGKILL, and reap the process so it is really gone.
#[track_caller]
pub fn kill(mut child: std::process::Child) {
    child.kill().expect("SIGKILL safeshift");
    let status = child.wait().expect("reap safeshift");
    assert!(
        status.code().is_none(),
        "safeshift ended on its own before the kill: {status:?}"
    );
}

/// Whether the server process `pid` still exists.
pub fn backend_alive(client: &mut postgres::Client, pid: &str) -> bool {
    pg_value(
        client,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
    ) != "0"
}
