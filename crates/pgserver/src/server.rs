//! A throwaway PostgreSQL server.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::binaries::PgBinaries;
use crate::cluster;
use crate::error::PgServerError;
use crate::layout::{self, Layout};
use crate::process::{self, Lifetime};
use crate::registry::{self, Registration};
use crate::user::ServerUser;

/// How long a server may take to accept connections (generous: machines can be loaded).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many ports to try when another process takes the free port first.
const PORT_ATTEMPTS: u32 = 5;

/// Settings for a disposable server: local only, and durability off (the data is thrown away).
const DISPOSABLE_SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
];

/// A step run once against a fresh template cluster (for example, creating a database every
/// server should start with). The cached template is keyed by `name`, so a different setup gets
/// its own cache.
#[derive(Clone, Copy, Debug)]
pub struct TemplateSetup {
    /// Names the prepared template (part of the cache key).
    pub name: &'static str,
    /// Runs against the `postgres` database URL of the template cluster while it is up.
    pub prepare: fn(admin_url: &str) -> Result<(), String>,
}

/// How to start a server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Where the server's files (and the cached template cluster) live.
    pub layout: Layout,
    /// The binaries to run.
    pub binaries: PgBinaries,
    /// Extra `name=value` server settings, applied after the disposable defaults (which they
    /// may override), such as `max_connections=300`.
    pub settings: Vec<String>,
    /// A preparation step baked into the cached template cluster.
    pub template: Option<TemplateSetup>,
}

impl ServerOptions {
    /// Options for `binaries`, keeping files in `layout`, with the default settings.
    pub fn new(layout: Layout, binaries: PgBinaries) -> ServerOptions {
        ServerOptions {
            layout,
            binaries,
            settings: Vec::new(),
            template: None,
        }
    }
}

/// A running throwaway PostgreSQL server on 127.0.0.1, with trust authentication for the
/// superuser `postgres`. It is stopped, and its directory removed, when dropped, and at the
/// latest when the process exits (even if the process is killed).
///
/// Starting one takes a fraction of a second: `initdb` runs once per machine and version into a
/// cached template cluster, and each server starts on a copy of it. As root, the server runs as
/// the `postgres` system user, because PostgreSQL refuses to run as root.
///
/// ```no_run
/// use safeshift_pgserver::{Layout, PgBinaries, PgServer, ServerOptions};
///
/// let layout = Layout::from_env_or_default("my-tool", "MY_TOOL_SERVER_DIR")?;
/// let server = PgServer::start(&ServerOptions::new(layout, PgBinaries::find(Some(15))?))?;
/// println!("connect to {}", server.url("postgres"));
/// # Ok::<(), safeshift_pgserver::PgServerError>(())
/// ```
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    base_dir: PathBuf,
    binaries: PgBinaries,
    registration: Registration,
}

impl PgServer {
    /// Starts a new server tied to this process.
    pub fn start(options: &ServerOptions) -> Result<PgServer, PgServerError> {
        let user = ServerUser::get()?;
        options.layout.remove_stale_base_dirs();
        let base_dir = options.layout.new_owned_base_dir("pg", user)?;
        let launched = start_in(options, user, &base_dir, Lifetime::Process(libc::SIGQUIT))
            .inspect_err(|_| {
                let _ = fs::remove_dir_all(&base_dir);
            })?;
        Ok(PgServer {
            port: launched.port,
            registration: registry::register(launched.child, libc::SIGINT, base_dir.clone()),
            base_dir,
            binaries: options.binaries.clone(),
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

    /// The binaries it runs.
    pub fn binaries(&self) -> &PgBinaries {
        &self.binaries
    }

    /// The directory of the PostgreSQL binaries it runs (`pg_dump` and friends are there too).
    pub fn bin_dir(&self) -> &Path {
        self.binaries.dir()
    }

    /// Its private directory: `data/` (the cluster), `sock/` (the Unix socket) and
    /// `server.log`.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The server's log file, useful to explain a failure.
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
pub fn database_url(port: u16, database: &str) -> String {
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
    options: &ServerOptions,
    user: ServerUser,
    base_dir: &Path,
    lifetime: Lifetime,
) -> Result<Launched, PgServerError> {
    let template = cluster::template_data_dir(
        &options.layout,
        &options.binaries,
        user,
        options.template.as_ref(),
    )?;
    cluster::copy_data_dir(&template, &base_dir.join("data"), user)?;
    launch(
        &options.binaries,
        user,
        base_dir,
        &options.settings,
        lifetime,
    )
}

/// Starts `postgres` directly on `base_dir/data` (no `pg_ctl`, so the postmaster is our child
/// and the parent-death signal reaches it) and waits until it accepts connections.
pub(crate) fn launch(
    binaries: &PgBinaries,
    user: ServerUser,
    base_dir: &Path,
    settings: &[String],
    lifetime: Lifetime,
) -> Result<Launched, PgServerError> {
    let socket_dir = base_dir.join("sock");
    layout::create_dir_with_mode(&socket_dir, 0o700)?;
    user.give(&socket_dir)?;
    let log_path = base_dir.join("server.log");
    for attempt in 1..=PORT_ATTEMPTS {
        let port = process::free_port()?;
        let log = File::create(&log_path).map_err(|source| {
            PgServerError::io(format!("creating {}", log_path.display()), source)
        })?;
        let log_for_stdout = log
            .try_clone()
            .map_err(|source| PgServerError::io("duplicating the log file handle", source))?;
        let mut postgres = Command::new(binaries.program("postgres"));
        postgres
            .arg("-D")
            .arg(base_dir.join("data"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&socket_dir);
        for setting in DISPOSABLE_SETTINGS
            .iter()
            .copied()
            .chain(settings.iter().map(String::as_str))
        {
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
            .map_err(|source| PgServerError::io("starting postgres", source))?;
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
        return Err(PgServerError::StartFailed {
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
