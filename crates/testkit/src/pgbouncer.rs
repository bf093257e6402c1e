//! A throwaway PgBouncer in front of a test server.

use std::fmt;
use std::fs::{self, File};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use safeshift_pgserver::{
    Lifetime, PgServerError, Registration, ServerUser, database_url, find_executable, free_port,
    log_tail, spawn, stop_child,
};

use crate::error::TestkitError;
use crate::server;

/// Overrides where the `pgbouncer` binary is.
pub const PGBOUNCER_BIN_ENV: &str = "SAFESHIFT_PGBOUNCER_BIN";

/// How long PgBouncer may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports to try when another process takes the free port first.
const PORT_ATTEMPTS: u32 = 5;

/// When PgBouncer hands a server connection back to the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolMode {
    /// After the client disconnects.
    Session,
    /// After each transaction: session state (`SET`, prepared statements, advisory locks held
    /// outside a transaction) does not follow the client. This is what most production
    /// deployments use, and the mode safeshift must survive.
    #[default]
    Transaction,
    /// After each statement; multi-statement transactions are refused.
    Statement,
}

impl PoolMode {
    /// The name PgBouncer uses for the mode (`pool_mode = ...`).
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

impl fmt::Display for PoolMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A running PgBouncer on 127.0.0.1 in front of a PostgreSQL server, with trust authentication
/// for `postgres` and a wildcard `[databases]` entry, so every database on the server
/// (including per-test ones) is reachable through it by name. `postgres` is also an admin
/// user, so `url("pgbouncer")` reaches the admin console (`SHOW POOLS`, simple queries only).
///
/// PgBouncer 1.18 cannot track named prepared statements, so through a transaction-mode pool the
/// `postgres` crate's extended-protocol calls (`query`, `execute`, `prepare`) can fail with
/// `prepared statement "s0" already exists`; `simple_query` and `batch_execute` work.
///
/// It is stopped, and its directory removed, when dropped or when the process exits.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
    pool_mode: PoolMode,
    base_dir: PathBuf,
    registration: Registration,
}

impl PgBouncer {
    /// Starts a PgBouncer in front of the server listening on `127.0.0.1:server_port`.
    pub fn start(server_port: u16, pool_mode: PoolMode) -> Result<PgBouncer, TestkitError> {
        PgBouncer::start_in_front_of("127.0.0.1", server_port, pool_mode)
    }

    /// Starts a PgBouncer in front of the server listening on `server_host:server_port`.
    pub fn start_in_front_of(
        server_host: &str,
        server_port: u16,
        pool_mode: PoolMode,
    ) -> Result<PgBouncer, TestkitError> {
        let user = ServerUser::get()?;
        let layout = server::layout()?;
        layout.remove_stale_base_dirs();
        let base_dir = layout.new_owned_base_dir("pgbouncer", user)?;
        let target = Target {
            host: server_host,
            port: server_port,
            pool_mode,
        };
        let launched = launch(&target, user, &base_dir, Lifetime::Process(libc::SIGKILL))
            .inspect_err(|_| {
                let _ = fs::remove_dir_all(&base_dir);
            })?;
        Ok(PgBouncer {
            port: launched.port,
            pool_mode,
            registration: safeshift_pgserver::register(
                launched.child,
                libc::SIGTERM,
                base_dir.clone(),
            ),
            base_dir,
        })
    }

    /// The TCP port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its pool mode.
    pub fn pool_mode(&self) -> PoolMode {
        self.pool_mode
    }

    /// A URL for `database` through this PgBouncer:
    /// `postgres://postgres@127.0.0.1:PORT/<database>`.
    pub fn url(&self, database: &str) -> String {
        database_url(self.port, database)
    }

    /// The URL of its admin console (the `pgbouncer` database).
    pub fn admin_url(&self) -> String {
        self.url("pgbouncer")
    }

    /// Its private directory: `pgbouncer.ini`, `userlist.txt`, `pgbouncer.log`, the pid file and
    /// the Unix socket.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The PgBouncer process id, or `None` once it is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.registration.pid()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.registration.stop();
    }
}

/// The server a PgBouncer pools connections to, and how.
pub(crate) struct Target<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) pool_mode: PoolMode,
}

/// A started PgBouncer.
pub(crate) struct Launched {
    pub(crate) port: u16,
    pub(crate) child: Child,
}

/// Writes the configuration into `base_dir`, starts PgBouncer in the foreground (so it stays our
/// child and the parent-death signal reaches it) and waits until it accepts connections.
pub(crate) fn launch(
    target: &Target<'_>,
    user: ServerUser,
    base_dir: &Path,
    lifetime: Lifetime,
) -> Result<Launched, TestkitError> {
    let program = pgbouncer_binary()?;
    let user_list = base_dir.join("userlist.txt");
    write_owned(&user_list, "\"postgres\" \"\"\n", user)?;
    let log_path = base_dir.join("pgbouncer.log");
    for attempt in 1..=PORT_ATTEMPTS {
        let port = free_port()?;
        let config_path = base_dir.join("pgbouncer.ini");
        write_owned(&config_path, &config(target, port, base_dir), user)?;
        let log = File::create(&log_path).map_err(|source| {
            TestkitError::io(format!("creating {}", log_path.display()), source)
        })?;
        let log_for_stdout = log
            .try_clone()
            .map_err(|source| TestkitError::io("duplicating the log file handle", source))?;
        let mut pgbouncer = Command::new(&program);
        pgbouncer
            .arg(&config_path)
            .current_dir(base_dir)
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log);
        user.configure(&mut pgbouncer);
        let mut child = spawn(pgbouncer, lifetime).map_err(|source| {
            TestkitError::io(format!("starting {}", program.display()), source)
        })?;
        let reason = match wait_until_listening(&mut child, port) {
            Ok(()) => return Ok(Launched { port, child }),
            Err(reason) => reason,
        };
        stop_child(&mut child, libc::SIGKILL, Duration::ZERO);
        let log_tail = log_tail(&log_path, 20);
        if log_tail.contains("Address already in use") && attempt < PORT_ATTEMPTS {
            continue;
        }
        return Err(TestkitError::Server(PgServerError::StartFailed {
            what: "PgBouncer",
            reason,
            log: log_path,
            log_tail,
        }));
    }
    unreachable!("the last attempt always returns")
}

/// Finds `pgbouncer`: `SAFESHIFT_PGBOUNCER_BIN`, then `PATH`, then `/usr/sbin` (which is not on
/// a non-root user's `PATH` on Debian).
fn pgbouncer_binary() -> Result<PathBuf, TestkitError> {
    let explicit = std::env::var_os(PGBOUNCER_BIN_ENV).map(PathBuf::from);
    let found = match &explicit {
        Some(path) => path.is_file().then(|| path.clone()),
        None => find_executable("pgbouncer", &[Path::new("/usr/sbin")]),
    };
    found.ok_or_else(|| TestkitError::PgBouncerNotFound {
        searched: match explicit {
            Some(path) => path.display().to_string(),
            None => "PATH, /usr/sbin".to_owned(),
        },
    })
}

/// The `pgbouncer.ini` for a throwaway PgBouncer.
fn config(target: &Target<'_>, port: u16, base_dir: &Path) -> String {
    let base = base_dir.display();
    format!(
        "[databases]\n\
         * = host={host} port={server_port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir = {base}\n\
         auth_type = trust\n\
         auth_file = {base}/userlist.txt\n\
         admin_users = postgres\n\
         pool_mode = {pool_mode}\n\
         max_client_conn = 500\n\
         default_pool_size = 20\n\
         ignore_startup_parameters = extra_float_digits,options\n\
         pidfile = {base}/pgbouncer.pid\n",
        host = target.host,
        server_port = target.port,
        pool_mode = target.pool_mode,
    )
}

fn write_owned(path: &Path, contents: &str, user: ServerUser) -> Result<(), TestkitError> {
    fs::write(path, contents)
        .map_err(|source| TestkitError::io(format!("writing {}", path.display()), source))?;
    Ok(user.give(path)?)
}

/// Polls until PgBouncer accepts TCP connections (it only listens once it is ready).
fn wait_until_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not listening after {} s", START_TIMEOUT.as_secs()));
        }
        thread::sleep(Duration::from_millis(5));
    }
}
