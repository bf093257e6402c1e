//! A throwaway PostgreSQL server.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::binaries::PgBinaries;
use crate::cluster;
use crate::error::TestkitError;
use crate::layout;
use crate::process::{self, Lifetime, ServerUser};
use crate::registry::{self, Registration};

/// How long a server may take to accept connections (generous: CI machines can be loaded).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many ports to try when another process takes the free port first.
const PORT_ATTEMPTS: u32 = 5;

/// Settings for a disposable server: durability off (the data is thrown away), and room for
/// many parallel test connections.
const SERVER_SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
];

/// A running throwaway PostgreSQL server on 127.0.0.1, with trust authentication for the
/// superuser `postgres`. It is stopped, and its directory removed, when dropped, and at the
/// latest when the process exits (even if the process is killed).
///
/// Starting one takes a fraction of a second: `initdb` runs once per machine into a cached
/// template cluster, and each server starts on a copy of it.
///
/// ```no_run
/// let server = safeshift_testkit::PgServer::start()?;
/// let mut client = postgres::Client::connect(&server.url("postgres"), postgres::NoTls)?;
/// client.simple_query("SELECT 1")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    base_dir: PathBuf,
    bin_dir: PathBuf,
    registration: Registration,
}

impl PgServer {
    /// Starts a new server tied to this process.
    pub fn start() -> Result<PgServer, TestkitError> {
        let binaries = PgBinaries::get()?;
        let user = ServerUser::get()?;
        layout::remove_stale_base_dirs();
        let base_dir = layout::new_owned_base_dir("pg", user)?;
        let launched = start_in(binaries, user, &base_dir, Lifetime::Process(libc::SIGQUIT))
            .inspect_err(|_| {
                let _ = fs::remove_dir_all(&base_dir);
            })?;
        Ok(PgServer {
            port: launched.port,
            registration: registry::register(launched.child, libc::SIGINT, base_dir.clone()),
            base_dir,
            bin_dir: binaries.dir().to_path_buf(),
        })
    }

    /// The TCP port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for the superuser `postgres` and `database`:
    /// `postgres://postgres@127.0.0.1:PORT/<database>`.
    pub fn url(&self, database: &str) -> String {
        database_url(self.port, database)
    }

    /// A URL for the `postgres` maintenance database, for creating and dropping databases.
    pub fn admin_url(&self) -> String {
        admin_url(self.port)
    }

    /// Connects to `database` as the superuser, without TLS.
    pub fn connect(&self, database: &str) -> Result<postgres::Client, TestkitError> {
        postgres::Client::connect(&self.url(database), postgres::NoTls).map_err(|source| {
            TestkitError::sql(format!("connecting to {}", self.url(database)), source)
        })
    }

    /// The directory of the PostgreSQL binaries it runs (`pg_dump` and friends are there too).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Its private directory: `data/` (the cluster), `sock/` (the Unix socket) and
    /// `server.log`.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The server's log file, useful when a test needs to explain a failure.
    pub fn log_path(&self) -> PathBuf {
        self.base_dir.join("server.log")
    }

    /// The postmaster's process id, or `None` once it is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.registration.pid()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.registration.stop();
    }
}

/// `postgres://postgres@127.0.0.1:PORT/<database>`.
pub(crate) fn database_url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

/// The URL of the `postgres` maintenance database on a local server.
pub(crate) fn admin_url(port: u16) -> String {
    database_url(port, "postgres")
}

/// A started postmaster.
pub(crate) struct Launched {
    pub(crate) port: u16,
    pub(crate) child: Child,
}

/// Copies the template cluster into `base_dir/data` and starts a server on it.
pub(crate) fn start_in(
    binaries: &PgBinaries,
    user: ServerUser,
    base_dir: &Path,
    lifetime: Lifetime,
) -> Result<Launched, TestkitError> {
    let template = cluster::template_data_dir(binaries, user)?;
    cluster::copy_data_dir(&template, &base_dir.join("data"), user)?;
    launch(binaries, user, base_dir, lifetime)
}

/// Starts `postgres` directly on `base_dir/data` (no `pg_ctl`, so the postmaster is our child
/// and the parent-death signal reaches it) and waits until it accepts connections.
pub(crate) fn launch(
    binaries: &PgBinaries,
    user: ServerUser,
    base_dir: &Path,
    lifetime: Lifetime,
) -> Result<Launched, TestkitError> {
    let socket_dir = base_dir.join("sock");
    layout::create_dir_with_mode(&socket_dir, 0o700)?;
    user.give(&socket_dir)?;
    let log_path = base_dir.join("server.log");
    for attempt in 1..=PORT_ATTEMPTS {
        let port = process::free_port()?;
        let log = File::create(&log_path).map_err(|source| {
            TestkitError::io(format!("creating {}", log_path.display()), source)
        })?;
        let log_for_stdout = log
            .try_clone()
            .map_err(|source| TestkitError::io("duplicating the log file handle", source))?;
        let mut postgres = Command::new(binaries.program("postgres"));
        postgres
            .arg("-D")
            .arg(base_dir.join("data"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&socket_dir);
        for setting in SERVER_SETTINGS {
            postgres.args(["-c", setting]);
        }
        postgres
            .current_dir(base_dir)
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log);
        user.configure(&mut postgres);
        let mut child = process::spawn(postgres, lifetime)
            .map_err(|source| TestkitError::io("starting postgres", source))?;
        let pid_file = base_dir.join("data").join("postmaster.pid");
        let reason = match wait_until_ready(&mut child, &pid_file, port) {
            Ok(()) => return Ok(Launched { port, child }),
            Err(reason) => reason,
        };
        process::stop_child(&mut child, libc::SIGQUIT, Duration::from_secs(5));
        let log_tail = process::log_tail(&log_path, 20);
        if log_tail.contains("Address already in use") && attempt < PORT_ATTEMPTS {
            continue;
        }
        return Err(TestkitError::StartFailed {
            what: "PostgreSQL",
            reason,
            log: log_path,
            log_tail,
        });
    }
    unreachable!("the last attempt always returns")
}

/// Waits until the postmaster reports `ready` in its pid file, the same signal `pg_ctl -w`
/// waits for, which saves polling with connection attempts.
fn wait_until_ready(child: &mut Child, pid_file: &Path, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status}"));
        }
        if let Ok(contents) = fs::read_to_string(pid_file) {
            // Line 4 is the port and line 8 the postmaster status.
            let lines: Vec<&str> = contents.lines().collect();
            let port_matches = lines.get(3).map(|line| line.trim()) == Some(&port.to_string());
            let ready = lines.get(7).map(|line| line.trim()) == Some("ready");
            if port_matches && ready {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after {} s", START_TIMEOUT.as_secs()));
        }
        thread::sleep(Duration::from_millis(2));
    }
}
