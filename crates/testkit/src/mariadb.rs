//! Real, throwaway MariaDB servers for the MySQL driver's tests: one per test run (started by
//! `scripts/test`, named by `SAFESHIFT_TEST_MYSQL_URL`) or one per test process, and a fresh
//! database per test.
//!
//! The server runs from a directory of its own with `--no-defaults` (nothing from
//! `/etc/mysql`), listens on 127.0.0.1 on a free port, and has a user `safeshift` with every
//! privilege and no password. As root it runs as root (`--user=root`): unlike PostgreSQL,
//! MariaDB allows that when asked explicitly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use safeshift_pgserver::{Lifetime, Registration, ServerUser, free_port, log_tail};

use crate::error::TestkitError;
use crate::server;

/// A MariaDB server started outside the test process (by `scripts/test`), used instead of
/// starting one per process: `mysql://safeshift@127.0.0.1:PORT/mysql?prefer_socket=false`.
pub const MYSQL_URL_ENV: &str = "SAFESHIFT_TEST_MYSQL_URL";
/// The directory holding `mariadbd` and `mariadb-install-db`, when not the Debian defaults.
pub const MARIADB_BIN_ENV: &str = "SAFESHIFT_MARIADB_BIN";

/// The user tests connect as.
const TEST_USER: &str = "safeshift";
/// How long a fresh server may take to accept connections.
const START_WITHIN: Duration = Duration::from_secs(60);
/// Server settings for tests: quick commits, little memory, room for many runners.
const TEST_SETTINGS: &[&str] = &[
    "--skip-name-resolve",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=32M",
    "--max-connections=500",
    "--character-set-server=utf8mb4",
    // Names the holders of metadata locks, as a production server with the plugin would.
    "--plugin-load-add=metadata_lock_info",
];

/// A MariaDB server on 127.0.0.1, stopped (and its directory removed) when dropped, and at the
/// latest when the process exits.
#[derive(Debug)]
pub struct MariaDbServer {
    port: u16,
    base_dir: PathBuf,
    registration: Registration,
}

impl MariaDbServer {
    /// Starts a server tied to this process.
    pub fn start() -> Result<MariaDbServer, TestkitError> {
        let layout = server::layout()?;
        layout.remove_stale_base_dirs();
        let base_dir = layout.new_owned_base_dir("mariadb", ServerUser::get()?)?;
        let (child, port) = launch(&base_dir, Lifetime::Process(libc::SIGTERM))?;
        let registration = safeshift_pgserver::register(child, libc::SIGTERM, base_dir.clone());
        Ok(MariaDbServer {
            port,
            base_dir,
            registration,
        })
    }

    /// A URL for `database` on the server, as the test user.
    pub fn url(&self, database: &str) -> String {
        test_url(self.port, database)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        self.registration.stop();
    }
}

/// The URL tests use for `database` on a server listening on `port`. The `mysql` crate would
/// otherwise switch a 127.0.0.1 connection to the server's socket, where the test user (a TCP
/// user) is unknown.
pub fn test_url(port: u16, database: &str) -> String {
    format!("mysql://{TEST_USER}@127.0.0.1:{port}/{database}?prefer_socket=false")
}

/// The binaries: `mariadbd` and `mariadb-install-db` (or `mysql_install_db`).
fn binaries() -> Result<(PathBuf, PathBuf), TestkitError> {
    let directories: Vec<PathBuf> = match std::env::var_os(MARIADB_BIN_ENV) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => [
            "/usr/sbin",
            "/usr/bin",
            "/usr/local/bin",
            "/usr/local/mysql/bin",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    };
    let find = |names: &[&str]| {
        directories
            .iter()
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .find(|path| path.is_file())
    };
    match (
        find(&["mariadbd", "mysqld"]),
        find(&["mariadb-install-db", "mysql_install_db"]),
    ) {
        (Some(server), Some(install)) => Ok((server, install)),
        _ => Err(TestkitError::MariaDbNotFound {
            searched: directories
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Initialises a data directory in `base_dir/data` and starts a server on it (retrying on a
/// port taken meanwhile), with the test user created. Returns the server process and its port.
pub(crate) fn launch(base_dir: &Path, lifetime: Lifetime) -> Result<(Child, u16), TestkitError> {
    let (server, install) = binaries()?;
    let data = base_dir.join("data");
    let as_root = unsafe { libc::geteuid() } == 0;
    let mut initialise = Command::new(&install);
    initialise
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    if as_root {
        initialise.arg("--user=root");
    }
    run(initialise, "mariadb-install-db")?;
    let socket = base_dir.join("mysqld.sock");
    // MariaDB adds `.err` to a log file name without an extension.
    let log = base_dir.join("server.err");
    let mut last_error = None;
    for _ in 0..5 {
        let port = free_port()?;
        let mut command = Command::new(&server);
        // Paths go as separate arguments, so that the testkit's cleanup recognises the process
        // as running from this directory.
        command
            .arg("--no-defaults")
            .arg("--datadir")
            .arg(&data)
            .arg("--socket")
            .arg(&socket)
            .arg("--pid-file")
            .arg(base_dir.join("mysqld.pid"))
            // An optional argument: only the `=` form reads it.
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .args(TEST_SETTINGS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if as_root {
            command.arg("--user=root");
        }
        let mut child = safeshift_pgserver::spawn(command, lifetime)
            .map_err(|source| TestkitError::io(format!("starting {}", server.display()), source))?;
        match wait_until_ready(&mut child, &socket, &log) {
            Ok(()) => return Ok((child, port)),
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                let taken = log_tail(&log, 20).contains("Address already in use");
                last_error = Some(error);
                if !taken {
                    break;
                }
            }
        }
    }
    Err(last_error.unwrap_or_else(|| TestkitError::MariaDb {
        context: "starting MariaDB".into(),
        detail: "no free port".into(),
    }))
}

/// Waits for the server's socket to accept root, then creates the test user.
fn wait_until_ready(child: &mut Child, socket: &Path, log: &Path) -> Result<(), TestkitError> {
    let started = Instant::now();
    let opts = mysql::OptsBuilder::new()
        .socket(Some(socket.display().to_string()))
        .user(Some("root"));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(TestkitError::MariaDb {
                context: format!("MariaDB exited ({status}) while starting"),
                detail: log_tail(log, 20),
            });
        }
        match mysql::Conn::new(opts.clone()) {
            Ok(mut root) => {
                return root
                    .query_drop(format!(
                        "CREATE USER IF NOT EXISTS '{TEST_USER}'@'%'; \
                         GRANT ALL ON *.* TO '{TEST_USER}'@'%' WITH GRANT OPTION"
                    ))
                    .map_err(|error| TestkitError::MariaDb {
                        context: "creating the test user".into(),
                        detail: error.to_string(),
                    });
            }
            Err(error) if started.elapsed() > START_WITHIN => {
                return Err(TestkitError::MariaDb {
                    context: format!(
                        "MariaDB did not accept connections within {START_WITHIN:?}: {error}"
                    ),
                    detail: log_tail(log, 20),
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn run(mut command: Command, program: &str) -> Result<(), TestkitError> {
    let output = command
        .output()
        .map_err(|source| TestkitError::io(format!("running {program}"), source))?;
    if output.status.success() {
        return Ok(());
    }
    Err(TestkitError::MariaDb {
        context: format!("{program} failed ({})", output.status),
        detail: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// The MariaDB server the tests of this process share: the one `SAFESHIFT_TEST_MYSQL_URL`
/// names, or one started on first use and stopped when the process exits.
///
/// # Panics
///
/// Panics with the reason if no server can be had; every later call panics with the same.
pub fn shared_mariadb() -> &'static SharedMariaDb {
    static SHARED: OnceLock<Result<SharedMariaDb, String>> = OnceLock::new();
    let shared =
        SHARED.get_or_init(|| SharedMariaDb::from_env_or_start().map_err(|e| e.to_string()));
    match shared {
        Ok(server) => server,
        Err(reason) => panic!("safeshift-testkit has no MariaDB server to test against: {reason}"),
    }
}

/// See [`shared_mariadb`].
#[derive(Debug)]
pub struct SharedMariaDb {
    port: u16,
    _own_server: Option<MariaDbServer>,
}

impl SharedMariaDb {
    fn from_env_or_start() -> Result<SharedMariaDb, TestkitError> {
        if let Some(url) = std::env::var(MYSQL_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            return Ok(SharedMariaDb {
                port: port_of(&url)?,
                _own_server: None,
            });
        }
        let server = MariaDbServer::start()?;
        Ok(SharedMariaDb {
            port: server.port(),
            _own_server: Some(server),
        })
    }

    /// A URL for `database` on the server, as the test user.
    pub fn url(&self, database: &str) -> String {
        test_url(self.port, database)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection to the server (no database selected) as the test user.
    pub fn connect(&self) -> Result<mysql::Conn, TestkitError> {
        connect(&self.url(""))
    }
}

fn port_of(url: &str) -> Result<u16, TestkitError> {
    let invalid = |reason: &str| TestkitError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("mysql://")
        .ok_or_else(|| invalid("it must start with mysql://"))?;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    host_port
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| invalid("it names no port"))
}

pub(crate) fn connect(url: &str) -> Result<mysql::Conn, TestkitError> {
    mysql::Conn::new(url).map_err(|error| TestkitError::MariaDb {
        context: format!("connecting to {url}"),
        detail: error.to_string(),
    })
}

/// A fresh, empty database on the shared MariaDB server (see [`shared_mariadb`]), dropped when
/// this value is dropped.
///
/// ```no_run
/// use mysql::prelude::Queryable;
/// let database = safeshift_testkit::TestMysqlDatabase::new();
/// database.conn().query_drop("CREATE TABLE t (id int PRIMARY KEY)").unwrap();
/// ```
#[derive(Debug)]
pub struct TestMysqlDatabase {
    name: String,
    server: &'static SharedMariaDb,
}

impl TestMysqlDatabase {
    /// Creates a database on the shared server, starting that server first if needed.
    ///
    /// # Panics
    ///
    /// Panics with the reason if no server is available or the database cannot be created.
    pub fn new() -> TestMysqlDatabase {
        let server = shared_mariadb();
        let name = crate::database::unique_name();
        server
            .connect()
            .and_then(|mut admin| {
                admin
                    .query_drop(format!("CREATE DATABASE `{name}`"))
                    .map_err(|error| TestkitError::MariaDb {
                        context: format!("creating the test database {name}"),
                        detail: error.to_string(),
                    })
            })
            .unwrap_or_else(|error| panic!("safeshift-testkit: {error}"));
        TestMysqlDatabase { name, server }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for the database, as the test user.
    pub fn url(&self) -> String {
        self.server.url(&self.name)
    }

    /// A connection to the database.
    ///
    /// # Panics
    ///
    /// Panics with the reason if the connection fails.
    pub fn conn(&self) -> mysql::Conn {
        connect(&self.url()).unwrap_or_else(|error| panic!("safeshift-testkit: {error}"))
    }
}

impl Default for TestMysqlDatabase {
    fn default() -> TestMysqlDatabase {
        TestMysqlDatabase::new()
    }
}

impl Drop for TestMysqlDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = self.server.connect() {
            let _ = admin.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}
