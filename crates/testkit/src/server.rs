//! The testkit's servers: `safeshift-pgserver`'s throwaway servers, found, laid out and prepared
//! the way tests want them.

use std::ops::Deref;
use std::sync::OnceLock;

use safeshift_pgserver::{Layout, PgBinaries, ServerOptions, TemplateSetup};

use crate::database;
use crate::error::TestkitError;

/// Overrides the directory the testkit keeps its files in.
pub const DIR_ENV: &str = "SAFESHIFT_TESTKIT_DIR";

/// The PostgreSQL version safeshift tests against first.
const PREFERRED_MAJOR: u32 = 15;

/// Room for many parallel test connections.
const TEST_SETTINGS: &[&str] = &["max_connections=300"];

/// Every test server starts with the template database that test databases are cloned from.
const TEMPLATE: TemplateSetup = TemplateSetup {
    name: database::TEMPLATE_DATABASE,
    prepare: |admin_url| {
        database::ensure_template_database(admin_url).map_err(|error| error.to_string())
    },
};

/// A running throwaway PostgreSQL server on 127.0.0.1, with trust authentication for the
/// superuser `postgres`, prepared for tests (it holds the template database and takes many
/// connections). It is stopped, and its directory removed, when dropped, and at the latest when
/// the process exits (even if the process is killed). Everything else it offers (`url`, `port`,
/// `pid`, `base_dir`, ...) comes from [`safeshift_pgserver::PgServer`].
///
/// ```no_run
/// let server = safeshift_testkit::PgServer::start()?;
/// let mut client = postgres::Client::connect(&server.url("postgres"), postgres::NoTls)?;
/// client.simple_query("SELECT 1")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PgServer {
    server: safeshift_pgserver::PgServer,
}

impl PgServer {
    /// Starts a new server tied to this process.
    pub fn start() -> Result<PgServer, TestkitError> {
        Ok(PgServer {
            server: safeshift_pgserver::PgServer::start(&options()?)?,
        })
    }

    /// Connects to `database` as the superuser, without TLS.
    pub fn connect(&self, database: &str) -> Result<postgres::Client, TestkitError> {
        postgres::Client::connect(&self.url(database), postgres::NoTls).map_err(|source| {
            TestkitError::sql(format!("connecting to {}", self.url(database)), source)
        })
    }
}

impl Deref for PgServer {
    type Target = safeshift_pgserver::PgServer;

    fn deref(&self) -> &safeshift_pgserver::PgServer {
        &self.server
    }
}

/// How the testkit starts servers: its own file layout, the preferred binaries (looked up once
/// per process), many connections, and the template database baked into the template cluster.
pub(crate) fn options() -> Result<ServerOptions, TestkitError> {
    let mut options = ServerOptions::new(layout()?, binaries()?.clone());
    options.settings = TEST_SETTINGS.iter().map(|s| (*s).to_owned()).collect();
    options.template = Some(TEMPLATE);
    Ok(options)
}

/// The testkit's directory (see [`DIR_ENV`]).
pub(crate) fn layout() -> Result<Layout, TestkitError> {
    Ok(Layout::from_env_or_default("safeshift-testkit", DIR_ENV)?)
}

/// The server binaries, preferring PostgreSQL 15, found once per process.
pub(crate) fn binaries() -> Result<&'static PgBinaries, TestkitError> {
    static FOUND: OnceLock<PgBinaries> = OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found);
    }
    let located = PgBinaries::find(Some(PREFERRED_MAJOR))?;
    Ok(FOUND.get_or_init(|| located))
}
